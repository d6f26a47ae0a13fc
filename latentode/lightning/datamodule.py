"""`IrregularTimeSeriesDataModule`: a DataFrame or built-in dataset → seeded splits and batches."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Subset

from latentode._validation import check_bool, check_choice, check_int, check_real
from latentode.data import (
    GENERATORS,
    TABLE_SUFFIXES,
    IrregularBatch,
    IrregularDataset,
    TimeScaler,
    frame_to_series,
    make_dataset,
    read_table,
)
from latentode.data.covariates import (
    CovariateSchema,
    check_known_from,
    check_known_until,
    frames_to_covariates,
    schema_from_frames,
)
from latentode.data.events import frame_to_events, infer_kinds
from latentode.data.real import DATASETS, load_dataset
from latentode.data.scaling import ORIGINS, FeatureScaler
from latentode.lightning.tasks import TASKS, split_items

__all__ = ["BUILT_IN", "SPLITS", "IrregularTimeSeriesDataModule"]

BUILT_IN = (*GENERATORS, *DATASETS)
"""Names ``data`` takes: synthetic generators and real datasets (``latentode.data.real``)."""

SPLITS = ("train", "val", "test")
"""The splits of the series; ``predict_split`` names one."""


class IrregularTimeSeriesDataModule(pl.LightningDataModule):
    """Train/val/test batches of (conditioning points, target points) from irregular series.

    Args:
        data: A long DataFrame, a path to a ``.csv``/``.parquet`` file of one, or the name of a
            built-in dataset: synthetic (``"periodic"``, ``"spiral"``, ``"oscillators"``,
            ``"absorption"``, ``"growth"``, ``"lotka_volterra"``, ``"sparse_sines"``; see
            :mod:`latentode.data.generators`) or real (``"hopper"``,
            ``"pbcseq"``, ``"co2"``, ``"coal"``; see :mod:`latentode.data.real`, which also
            supplies their time unit and, for ``"coal"``, the events).
        val_data: Optional long DataFrame of validation series, in the layout of ``data``; when
            given, it is the validation split and ``val_fraction`` is not used.
        id_col, time_col, value_cols, time_unit: Frame layout (see ``frame_to_series``).
            ``time_unit`` is the unit of datetime and duration times; a *file* whose times are
            numbers does not use it (they are taken as they are), so one config fits both.
        parse_dates: How the time column of a ``.csv``/``.parquet`` file is read when it holds
            text (:func:`latentode.data.read_table`): None (default) parses ISO-8601 dates
            and date-times, or durations, when every value is one; True requires ISO-8601
            dates; False leaves text as read. A file's id column is read as text, verbatim.
        dataset_kwargs: Options of the built-in generator or loader (e.g. ``{"n_series": 200}``,
            ``{"n_trajectories": 1000}``).
        task: ``"interpolation"`` (a random ``cond_fraction`` of each series' observed points
            conditions; all points are targets) or ``"extrapolation"`` (points before
            ``extrap_cut`` of each series' span condition; points after are targets).
        cond_fraction: Share of the observed points that condition: of all of them for
            interpolation (default 0.5), of those before the cut for extrapolation (default 1,
            all of them). A random subset, drawn afresh each training epoch. A pair
            ``(low, high)`` draws each series' share uniformly from that range, so the model
            learns to use however many points it is given.
        extrap_cut: Where to cut each series' span, in (0, 1), for extrapolation.
        val_fraction, test_fraction: Shares of series held out (split over series, seeded).
        predict_split: The series ``trainer.predict`` runs on: ``"test"`` (default),
            ``"val"`` or ``"train"``. They are batched as held-out series are, in split order
            and with the conditioning points ``test_dataloader`` draws for them (fixed, not
            redrawn per call), so predictions line up with what ``trainer.test`` scores.
        standardize: Scale each feature to mean 0, std 1 over the training series' observed
            values (:class:`~latentode.data.FeatureScaler`, kept as ``feature_scaler``), so
            features in different units weigh alike. Off by default: outputs stay in data units.
        batch_size: Series per batch.
        origin: Time origin of the :class:`TimeScaler` (``"series"`` or ``"global"``).
        time_gaps_per_unit: ``gaps_per_unit`` of the :class:`TimeScaler`: None (default) maps
            the longest training span to one model time unit; a number ``k`` makes one model
            time unit ``k`` median gaps between observations.
        time_scale: A fixed scale instead: data time units per model time unit (``1.0`` keeps
            the data's own units, as Rubanova et al.'s code does). Default None: learned as
            ``time_gaps_per_unit`` says. Give one of the two, not both.
        num_workers: DataLoader workers.
        seed: Seeds the split, the shuffling and the conditioning subsets.
        events: Optional event streams for a Poisson head: a long frame (or ``.csv``/
            ``.parquet`` path) with the id and time columns of ``data`` and optionally
            ``"kind"``, covering series of ``data`` and ``val_data``. A series' window runs
            from its first observation-or-event to its last; see :mod:`latentode.data.events`.
        event_kinds: The kinds to model, in order; default: the sorted kinds in ``events``.
        inputs: Known inputs (doses, infusion rates, controls): a long frame (or a .csv/
            .parquet path) with the id and time columns of ``data`` and one column per input,
            a row per change point; see
            :mod:`latentode.data.covariates`. Every series needs rows from its first
            observation to its last.
        static: Static features: a frame (or a .csv/.parquet path) with the id column and
            one row per series.
        input_kind: ``{column: "held" | "impulse"}``; inputs not named are held.

    Attributes:
        event_kinds_: The modelled kinds (after :meth:`setup`; None without ``events``).
        covariate_schema: The covariates' columns, kinds and scaling, fitted on the training
            series (after :meth:`setup`; None without ``inputs`` or ``static``).
    """

    def __init__(
        self,
        data: str | os.PathLike | pd.DataFrame = "periodic",
        *,
        val_data: pd.DataFrame | None = None,
        id_col: str = "id",
        time_col: str = "time",
        value_cols: Sequence[str] | None = None,
        time_unit: str | None = None,
        parse_dates: bool | None = None,
        dataset_kwargs: dict[str, Any] | None = None,
        task: str = "interpolation",
        cond_fraction: float | tuple[float, float] | None = None,
        extrap_cut: float = 0.5,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        predict_split: str = "test",
        batch_size: int = 50,
        origin: str = "series",
        time_gaps_per_unit: float | None = None,
        time_scale: float | None = None,
        standardize: bool = False,
        num_workers: int = 0,
        seed: int = 0,
        events: str | os.PathLike | pd.DataFrame | None = None,
        event_kinds: Sequence[Any] | None = None,
        inputs: str | os.PathLike | pd.DataFrame | None = None,
        static: str | os.PathLike | pd.DataFrame | None = None,
        input_kind: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.inputs = _table_argument("inputs", inputs)
        self.static = _table_argument("static", static)
        self.input_kind = None if input_kind is None else dict(input_kind)
        self.covariate_schema: CovariateSchema | None = None
        events = _table_argument("events", events, "a long DataFrame")
        if event_kinds is not None:
            if isinstance(event_kinds, str | bytes) or not isinstance(event_kinds, Sequence):
                raise TypeError(f"`event_kinds` must be a list of kinds; got {event_kinds!r}")
            if len(event_kinds) == 0 or len(set(event_kinds)) != len(event_kinds):
                raise ValueError(
                    f"`event_kinds` must be a non-empty list of distinct kinds; got "
                    f"{list(event_kinds)}"
                )
        self.events = events
        self.event_kinds = None if event_kinds is None else list(event_kinds)
        if isinstance(data, os.PathLike):
            data = os.fspath(data)
        if isinstance(data, str) and data.lower().endswith(TABLE_SUFFIXES):
            if not Path(data).is_file():
                raise FileNotFoundError(f"no data file at {data!r}")
        elif isinstance(data, str):
            if data not in GENERATORS and data not in DATASETS:
                raise ValueError(
                    f"`data` must be one of {', '.join(map(repr, sorted(BUILT_IN)))} or a path "
                    f"ending in {' or '.join(TABLE_SUFFIXES)}; got {data!r}"
                )
        elif not isinstance(data, pd.DataFrame):
            raise TypeError(
                "`data` must be a long DataFrame, a .csv/.parquet path or a built-in dataset "
                f"name ({', '.join(map(repr, sorted(BUILT_IN)))}); got {type(data).__name__}"
            )
        if val_data is not None and not isinstance(val_data, pd.DataFrame):
            raise TypeError(
                f"`val_data` must be a long DataFrame or None; got {type(val_data).__name__}"
            )
        self.data = data
        self.val_data = val_data
        self.standardize = check_bool("standardize", standardize)
        self.layout = {
            "id_col": id_col,
            "time_col": time_col,
            "value_cols": value_cols,
            "time_unit": time_unit,
        }
        if parse_dates is not None and not isinstance(parse_dates, bool):
            raise TypeError(
                f"`parse_dates` must be None (detect dates), True or False; got {parse_dates!r}"
            )
        self.parse_dates = parse_dates
        self.dataset_kwargs = dict(dataset_kwargs or {})
        self.task = check_choice("task", task, TASKS)
        if cond_fraction is None:
            cond_fraction = 0.5 if self.task == "interpolation" else 1.0
        self.cond_fraction = _check_cond_fraction(cond_fraction)
        self.extrap_cut = check_real("extrap_cut", extrap_cut, positive=True)
        if self.extrap_cut >= 1:
            raise ValueError(
                f"`extrap_cut` must be strictly inside (0, 1) so both sides keep points; "
                f"got {extrap_cut}"
            )
        self.val_fraction = check_real("val_fraction", val_fraction, nonnegative=True)
        self.test_fraction = check_real("test_fraction", test_fraction, nonnegative=True)
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError(
                "`val_fraction + test_fraction` must leave series to train on; got "
                f"{self.val_fraction} + {self.test_fraction}"
            )
        self.predict_split = check_choice("predict_split", predict_split, SPLITS)
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.origin = check_choice("origin", origin, ORIGINS)
        self.time_gaps_per_unit = check_real(
            "time_gaps_per_unit", time_gaps_per_unit, positive=True, allow_none=True
        )
        self.time_scale = check_real("time_scale", time_scale, positive=True, allow_none=True)
        if self.time_scale is not None and self.time_gaps_per_unit is not None:
            raise ValueError(
                f"give `time_scale` ({time_scale}) or `time_gaps_per_unit` "
                f"({time_gaps_per_unit}), not both: one fixes the time scale, the other learns it"
            )
        self.num_workers = check_int("num_workers", num_workers, minimum=0)
        self.seed = check_int("seed", seed)
        self.dataset: IrregularDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        """Validate the frame, split series (seeded) and fit the time scale on training series."""
        if self.dataset is not None:
            return
        frame = self.data
        layout = dict(self.layout)
        from_file = isinstance(frame, str) and frame.lower().endswith(TABLE_SUFFIXES)
        if from_file:
            frame = self._read(frame)
            time_col = layout["time_col"]
            if time_col in frame.columns and pd.api.types.is_numeric_dtype(frame[time_col]):
                layout["time_unit"] = None  # numbers are used as they are
        elif isinstance(frame, str) and frame in DATASETS:
            real = load_dataset(frame, **self.dataset_kwargs)
            frame = real.observed
            if layout["time_unit"] is None:
                layout["time_unit"] = self.layout["time_unit"] = real.time_unit
            if self.events is None and real.events is not None:
                self.events = real.events
        elif isinstance(frame, str):
            frame = make_dataset(
                frame, **{"random_state": self.seed, **self.dataset_kwargs}
            ).observed
        series, fmt = frame_to_series(frame, **layout)
        n = len(series)
        order = np.random.default_rng(self.seed).permutation(n)
        n_val = 0 if self.val_data is not None else round(self.val_fraction * n)
        n_test = round(self.test_fraction * n)
        if n - n_val - n_test < 1:
            raise ValueError(
                f"{n} series leave none to train on after the val/test split; lower "
                "val_fraction/test_fraction or give more series"
            )
        self.split = {
            "val": order[:n_val].tolist(),
            "test": order[n_val : n_val + n_test].tolist(),
            "train": order[n_val + n_test :].tolist(),
        }
        if self.val_data is not None:
            val_series, _ = frame_to_series(self.val_data, fmt=fmt)
            self.split["val"] = list(range(n, n + len(val_series)))
            series = series + val_series
        train = [series[i] for i in self.split["train"]]
        _check_time_axes(series, train)
        scaler = TimeScaler(
            origin=self.origin, scale=self.time_scale, gaps_per_unit=self.time_gaps_per_unit
        ).fit(train)
        self.feature_scaler: FeatureScaler | None = None
        if self.standardize:
            self.feature_scaler = FeatureScaler().fit(train, names=fmt.value_cols)
            series = [self.feature_scaler.transform_series(s) for s in series]
        event_series = None
        self.event_kinds_: list[Any] | None = None
        if self.events is not None:
            events = self.events
            if isinstance(events, str):  # its ids as text when the series' ids are
                events = self._read(events, text_ids=from_file)
            self.event_kinds_ = self.event_kinds or infer_kinds(events, fmt)
            event_series = frame_to_events(events, series, fmt, self.event_kinds_)
        covariates = None
        if self.inputs is not None and self.origin == "global":
            raise ValueError(
                "known inputs need origin='series': with a global origin every series is "
                "decoded from the earliest time in the data, where its inputs are not known"
            )
        if self.inputs is not None or self.static is not None:
            inputs, static = (
                self._read(f, text_ids=from_file) if isinstance(f, str) else f
                for f in (self.inputs, self.static)
            )
            schema = schema_from_frames(inputs, static, fmt, self.input_kind)
            given = frames_to_covariates(series, fmt, schema, inputs, static)
            check_known_until(given, [s.id for s in series], _window_ends(series, event_series),
                              fmt, "its observations and events")  # fmt: skip
            self.covariate_schema = schema.fit([given[i] for i in self.split["train"]])
            covariates = (schema, given)
        self.dataset = IrregularDataset(
            series, fmt, scaler, events=event_series, covariates=covariates
        )
        if covariates is not None:  # windows widened to events must be covered too
            starts = np.array([float(s.times[0]) for s in self.dataset.series])
            check_known_from(covariates[1], self.dataset.ids, starts, fmt, "its events")

    def _read(self, path: str, text_ids: bool = True) -> pd.DataFrame:
        """A table file with its ids as text and its text times parsed (``parse_dates``)."""
        return read_table(
            path,
            id_col=self.layout["id_col"] if text_ids else None,
            time_col=self.layout["time_col"],
            parse_dates=self.parse_dates,
        )

    def event_rates(self, n_kinds: int) -> np.ndarray | None:
        """Mean event rate of each kind over the training series, per model time unit.

        Events are those of ``events``, or each feature's observation times without it. None
        when the training windows have no length (every series a single time).
        """
        if self.dataset is None:
            self.setup()
        items = [self.dataset[i] for i in self.split["train"]]
        span = float(sum(float(it.times[-1] - it.times[0]) for it in items))
        if span <= 0:
            return None
        counts = np.zeros(n_kinds)
        for it in items:
            if it.event_kinds is not None:
                counts += np.bincount(it.event_kinds.numpy(), minlength=n_kinds)[:n_kinds]
            else:
                counts += it.mask.sum(0).double().numpy()[:n_kinds]
        # half an event where a kind has none, so its rate starts small but positive
        return np.maximum(counts, 0.5) / span

    def series_batches(self, stage: str = "train", size: int = 256) -> Iterator[IrregularBatch]:
        """Whole series of a split (every point, no conditioning subset), ``size`` at a time."""
        if self.dataset is None:
            self.setup()
        rows = self.split[check_choice("stage", stage, tuple(self.split))]
        for start in range(0, len(rows), size):
            yield self.dataset.batch(rows[start : start + size])

    def _schema_size(self, name: str) -> int:
        if self.dataset is None:
            self.setup()
        return 0 if self.covariate_schema is None else getattr(self.covariate_schema, name)

    @property
    def n_held_inputs(self) -> int:
        """Held inputs the batches carry (0 without ``inputs``)."""
        return self._schema_size("n_held")

    @property
    def n_impulse_inputs(self) -> int:
        """Impulse inputs the batches carry (0 without ``inputs``)."""
        return self._schema_size("n_impulse")

    @property
    def n_static_features(self) -> int:
        """Static features the batches carry (0 without ``static``)."""
        return self._schema_size("n_static")

    @property
    def n_features(self) -> int:
        """Features per observation (reads and splits the data on first use)."""
        if self.dataset is None:
            self.setup()
        return self.dataset.n_features

    def _collate(self, training: bool, sampler: _EpochShuffle | None):
        seed = self.seed

        def collate_fn(items):
            # The conditioning subsets are a pure function of (seed, epoch, series): the same
            # in every DataLoader worker, in any worker count, and after a resumed fit. Held-out
            # batches use epoch 0 always, so they condition on the same points every epoch.
            epoch = sampler.epoch if sampler is not None else 0
            key = [seed, 7919 * epoch + (1 if training else 0)]
            key += [int(it.index) for it in items]
            generator = torch.Generator().manual_seed(_mix(key))
            # Held-out batches score only the points that do not condition, so validation
            # measures the task (filling gaps, forecasting), not reconstruction.
            return split_items(
                items,
                self.task,
                cond_fraction=self.cond_fraction,
                extrap_cut=self.extrap_cut,
                generator=generator,
                held_out=not training,
            )

        return collate_fn

    def _loader(self, split: str, training: bool = False) -> DataLoader:
        """Batches of the series of ``split``: shuffled per epoch with fresh conditioning
        subsets when ``training``, else in split order with fixed subsets (held out)."""
        if self.dataset is None:
            self.setup()
        subset = Subset(self.dataset, self.split[split])
        sampler = _EpochShuffle(len(subset), self.seed) if training else None
        return DataLoader(
            subset,
            batch_size=self.batch_size,
            sampler=sampler,
            collate_fn=self._collate(training, sampler),
            num_workers=self.num_workers,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", training=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        """The series of ``predict_split``, batched as held-out series (see the class)."""
        return self._loader(self.predict_split)


def _check_cond_fraction(value: Any) -> float | tuple[float, float]:
    """A share in (0, 1], or a ``(low, high)`` range of them with low <= high."""
    if isinstance(value, Sequence | np.ndarray) and not isinstance(value, str | bytes):
        if len(value) != 2:
            raise ValueError(
                f"`cond_fraction` must be a share in (0, 1] or a (low, high) pair; got {value!r}"
            )
        low, high = (_check_share(v) for v in value)
        if low > high:
            raise ValueError(f"`cond_fraction` range must have low <= high; got {tuple(value)}")
        return (low, high)
    return _check_share(value)


def _check_share(value: Any) -> float:
    if isinstance(value, np.generic):
        value = value.item()
    share = check_real("cond_fraction", value, positive=True)
    if share > 1:
        raise ValueError(f"`cond_fraction` must be in (0, 1]; got {value}")
    return share


def _mix(key: Sequence[int]) -> int:
    """A 63-bit seed from integers, stable across processes (numpy's SeedSequence hashing)."""
    return int(
        np.random.SeedSequence([int(k) % 2**63 for k in key]).generate_state(1, np.uint64)[0] >> 1
    )


class _EpochShuffle(torch.utils.data.Sampler[int]):
    """A random order of ``range(n)`` that is a pure function of (seed, epoch).

    Lightning calls :meth:`set_epoch` before each training epoch, so the order needs no saved
    state: a resumed fit shuffles epoch k as the uninterrupted one did.
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        generator = torch.Generator().manual_seed(_mix([self.seed, self.epoch, 104729]))
        return iter(torch.randperm(self.n, generator=generator).tolist())


_MIN_SPAN_RATIO = 1e-9  # a series shorter than this share of the longest vanishes in float32


def _table_argument(name: str, value: Any, kind: str = "a DataFrame") -> str | pd.DataFrame | None:
    """A frame, a path to an existing .csv/.parquet table (as a string), or None; else refused."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str):
        if not value.lower().endswith(TABLE_SUFFIXES) or not Path(value).is_file():
            raise FileNotFoundError(
                f"`{name}` must be a DataFrame or an existing {' or '.join(TABLE_SUFFIXES)} "
                f"file; no such file: {value!r}"
            )
    elif value is not None and not isinstance(value, pd.DataFrame):
        raise TypeError(
            f"`{name}` must be {kind}, a .csv/.parquet path or None; got {type(value).__name__}"
        )
    return value


def _window_ends(series, events) -> np.ndarray:
    """``(n,)`` the last time of each series' window: its last observation or event."""
    ends = np.array([float(s.times[-1]) for s in series])
    if events is not None:
        for i, ev in enumerate(events):
            if len(ev.times):
                ends[i] = max(ends[i], float(np.max(ev.times)))
    return ends


def _check_time_axes(series: Sequence[Any], train: Sequence[Any]) -> None:
    """Refuse time axes a latent ODE cannot learn from, with the fix.

    - Every training series observed at a single time: there are no dynamics to learn.
    - A series whose span is below 1e-9 of the longest: the model's time unit is the longest
      span, so that series would occupy 1e-9 of it, below what float32 solvers and their
      tolerances resolve (the classic source of NaNs and silent nonsense with raw timestamps).
    """
    if all(s.n_obs == 1 for s in train):
        raise ValueError(
            f"every training series ({len(train)}) is observed at a single time, so there are "
            "no dynamics to learn; give series with at least two observation times"
        )
    spans = np.array([s.times[-1] - s.times[0] for s in series])
    longest = spans.max()
    tiny = np.flatnonzero((spans > 0) & (spans < _MIN_SPAN_RATIO * longest))
    if tiny.size:
        k = tiny[0]
        raise ValueError(
            f"series {series[k].id!r} spans {spans[k]:g} time units but the longest spans "
            f"{longest:g} ({longest / spans[k]:.1e} times more): the model's time unit follows "
            "the longest series, so the short one would be squeezed below float32 resolution. "
            "Check the time column's unit (e.g. nanosecond timestamps read as numbers), drop "
            "or split the outlying series, or fit the two time scales separately"
        )
