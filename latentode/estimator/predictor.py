"""`Predictor`: a fitted model's answers to new frames, in chunks that fit memory, on a device.

The estimator, :meth:`LatentODE.from_lightning` and the command line all predict through one
:class:`Predictor` built from a fitted state (module, data layout, scalers, transforms, seed),
so chunking, seeding and device handling are written once. Every series draws its latent and
observation noise from seeds made of its id and a salt, so its answer does not depend on what
else is in the frame or in which order.
"""

from __future__ import annotations

import ctypes
import functools
import sys
from collections.abc import Hashable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from latentode._validation import check_bool, check_choice, check_int, check_real
from latentode.calibration import band_quantiles
from latentode.data import (
    FeatureScaler,
    IrregularDataset,
    LongFormat,
    TimeScaler,
    arrays_to_frame,
    frame_to_series,
    rows_to_frame,
)
from latentode.data.collate import _pad_repeating_last
from latentode.data.covariates import (
    CovariateSchema,
    check_known_from,
    frames_to_covariates,
)
from latentode.data.events import frame_to_events
from latentode.data.transforms import FeatureTransform
from latentode.estimator.new_series import new_series_covariates
from latentode.estimator.seeds import as_seed, series_seed
from latentode.estimator.times import (
    HORIZON_POINTS,
    prior_offsets,
    target_times,
)
from latentode.lightning import LatentODEModule

__all__ = ["INTERVALS", "MEMORY_BUDGET", "NonFiniteModelError", "Predictor"]

INTERVALS = ("predictive", "mean")
_MAX_SAMPLES = 100_000  # posterior/prior draws per call; more is a typo, not a request
_MAX_SERIES_PER_CHUNK = 200
# Bytes one prediction call may hold at once for its decoded samples, whatever the request:
# series, samples and times are cut into blocks that fit (see Predictor.blocks).
MEMORY_BUDGET = 256 * 2**20


class NonFiniteModelError(ValueError):
    """A model whose weights, or whose answer to a request, hold NaN or infinity.

    Raised instead of returning NaN: by :meth:`LatentODE.load` for such weights, and by the
    prediction methods when a fitted model's weights or read-outs are not finite.
    """


class Predictor:
    """Predictions, samples and scores of a fitted model on new frames.

    Args:
        module: The fitted :class:`~latentode.lightning.LatentODEModule` (moved to ``device``).
        fmt: The data layout the model was fitted on.
        time_scaler, feature_scaler, transforms: The fitted time scaling, feature scaling and
            feature transforms.
        seed: The fitted model's seed; with the series ids it seeds every draw.
        conformal: Conformal factors ``(n_features, n_bands)``, or None.
        event_kinds: The modelled event kinds (None without a Poisson head).
        event_source: ``"events"`` or ``"observations"`` (None without a Poisson head).
        device: Where to decode; default: where the module is.
        covariate_schema: The fitted covariates' columns, kinds and scaling (None: none).
        memory_budget: Bytes of decoded samples one block may hold (default
            :data:`MEMORY_BUDGET`, 256 MiB).
    """

    def __init__(
        self,
        module: LatentODEModule,
        fmt: LongFormat,
        time_scaler: TimeScaler,
        feature_scaler: FeatureScaler,
        transforms: FeatureTransform,
        seed: int,
        *,
        conformal: list[list[float]] | None = None,
        event_kinds: list[Hashable] | None = None,
        event_source: str | None = None,
        device: str | torch.device | None = None,
        memory_budget: int | None = None,
        covariate_schema: CovariateSchema | None = None,
    ) -> None:
        self.device = _as_device(device, module)
        self.covariate_schema = covariate_schema
        self.module = module.to(self.device).eval()
        self.fmt = fmt
        self.time_scaler = time_scaler
        self.feature_scaler = feature_scaler
        self.transforms = transforms
        self.seed = seed
        self.conformal = conformal
        self.event_kinds = event_kinds
        self.event_source = event_source
        self.n_features = len(fmt.value_cols)
        self.memory_budget = (
            MEMORY_BUDGET
            if memory_budget is None
            else check_int("memory_budget", memory_budget, minimum=2**20)
        )

    def check_finite(self, values: np.ndarray, what: str) -> np.ndarray:
        """``values`` unchanged when all finite; else :class:`NonFiniteModelError`."""
        finite = np.isfinite(values)
        if finite.all():
            return values
        raise NonFiniteModelError(
            f"the model's {what} is NaN or infinite at {int((~finite).sum()):,} of "
            f"{values.size:,} values, so it is not returned. The learned dynamics overflow "
            "at these times (far from the training data, or in units beyond float range); ask "
            "for times nearer the observations, or refit with tighter solver tolerances"
        )

    def check_added_columns(
        self, method: str, added: Sequence[str], *, with_features: bool = True
    ) -> None:
        """Refuse a call whose output columns would overwrite or duplicate the user's own.

        ``added`` are the columns ``method`` adds beside the id, time (and, with
        ``with_features``, feature) columns the model was fitted with.
        """
        fmt = self.fmt
        own = {fmt.id_col: "the id column", fmt.time_col: "the time column"}
        if with_features:
            own.update(dict.fromkeys(fmt.value_cols, "a feature"))
        clashes = [f"{c!r} ({own[c]})" for c in dict.fromkeys(added) if c in own]
        if clashes:
            raise ValueError(
                f"{method}() adds the column(s) {', '.join(clashes)}, which this model's data "
                "already uses; the output would overwrite them. Rename those columns in your "
                "frame and fit again (the model keeps its training names), or ask for other "
                "quantile levels if the clash is a quantile column"
            )

    def encode_frame(
        self,
        df: pd.DataFrame,
        events: pd.DataFrame | None = None,
        inputs: pd.DataFrame | None = None,
        static: pd.DataFrame | None = None,
    ) -> IrregularDataset:
        """A new frame → a dataset in the fitted layout, scaling and time origins.

        ``events`` (a frame as in ``fit``) are attached to the series, for models whose
        events came from an events frame; ``inputs`` and ``static`` (frames as in ``fit``,
        required exactly when the model was fitted with them) likewise.
        """
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"`df` must be a pandas DataFrame; got {type(df).__name__}")
        fmt = self.fmt
        missing = [c for c in (fmt.id_col, fmt.time_col, *fmt.value_cols) if c not in df.columns]
        if missing:
            raise ValueError(
                f"`df` lacks column(s) {', '.join(map(repr, missing))} that the model was fitted "
                f"on (id {fmt.id_col!r}, time {fmt.time_col!r}, features "
                f"{list(fmt.value_cols)}); rename or add them"
            )
        # Series in id order, whatever the row order: the batch (and with it the solver's
        # error norm and steps) is then the same for any ordering of the same series.
        df = self.transforms.apply(df, fmt.id_col, fmt.time_col)
        series, _ = frame_to_series(_canonical_order(df, fmt.id_col), fmt=fmt)
        event_series = None
        if events is None and getattr(self.module.model, "event_inputs", False):
            raise ValueError(
                "this model reads each series' past events (it was fitted with an events "
                "frame): pass `events=` with the series' events, as in fit (a frame with no "
                "rows for a series that had none)"
            )
        if events is not None:
            if self.event_source != "events":
                raise ValueError(
                    "`events` were given, but this model's events are "
                    + (
                        "the observation times of each feature; leave events out"
                        if self.event_source == "observations"
                        else "absent (it was fitted without poisson=True)"
                    )
                )
            event_series = frame_to_events(events, series, fmt, self.event_kinds)
        covariates = None
        if self.covariate_schema is not None or inputs is not None or static is not None:
            schema = self.covariate_schema or CovariateSchema()
            covariates = (schema, frames_to_covariates(series, fmt, schema, inputs, static))
        series = [self.feature_scaler.transform_series(s) for s in series]
        ds = IrregularDataset(
            series, fmt, self.time_scaler, events=event_series, covariates=covariates
        )
        if covariates is not None and covariates[0].has_inputs:  # windows widened to events
            starts = np.array([float(s.times[0]) for s in ds.series])
            check_known_from(covariates[1], ds.ids, starts, fmt, "its events")
        return ds

    def chunks(self, n_series: int, n_times: int, n_samples: int) -> Iterator[range]:
        """Whole series per block, as many as :attr:`memory_budget` allows for ``n_times``
        each, and at least one (for work that cannot cut a series, e.g. its likelihood)."""
        size = self.series_per_block(n_series, n_times, n_samples)
        for start in range(0, n_series, size):
            yield range(start, min(start + size, n_series))
            if size < n_series:
                _release_freed_memory()

    def block_bytes(self, size: int, n_times: int, n_samples: int, width: int = 0) -> int:
        """Bytes a block of ``size`` series × ``n_times`` × ``n_samples`` holds at its peak.

        The decoder solves each series at its own times: per output time its steps' stages
        hold ~5 latent states; the block also holds ``width`` user-unit values per time
        (default 5 per feature: the draws, noise and quantiles).
        """
        model = self.module.model
        width = width or 5 * model.n_features
        return n_samples * size * n_times * (model.latent_dim * 4 * 5 + width * 8)

    def series_per_block(self, n_series: int, n_times: int, n_samples: int, width: int = 0) -> int:
        """The most whole series (of ``n_times`` each) a block of the budget holds; >= 1."""
        size = min(_MAX_SERIES_PER_CHUNK, max(n_series, 1))
        while size > 1 and self.block_bytes(size, n_times, n_samples, width) > self.memory_budget:
            size = max(1, size // 2)
        return size

    def blocks(
        self, user_times: list[np.ndarray], n_samples: int, width: int = 0
    ) -> Iterator[tuple[range, list[np.ndarray], int]]:
        """Cut a request into blocks that fit :data:`self.memory_budget`.

        Yields ``(rows, times, block)``: the series of the block, the per-series times to use
        (``user_times`` itself, or for a block of one series' times a copy with that series'
        entry cut to the block), and the block's number within its series (0 unless the
        series is cut). A block's bytes count every sample × series × time × (the solve's
        latent states, ~5 per output time, + ``width`` user-unit values held per feature;
        default ~5, the draws, noise and quantiles).
        """
        n_series = len(user_times)
        max_t = max(t.size for t in user_times)

        def cost(size: int, n_times: int) -> int:
            return self.block_bytes(size, n_times, n_samples, width)

        size = self.series_per_block(n_series, max_t, n_samples, width)
        if cost(size, max_t) <= self.memory_budget:
            for start in range(0, n_series, size):
                yield range(start, min(start + size, n_series)), user_times, 0
                if size < n_series:
                    _release_freed_memory()
            return
        for i in range(n_series):  # one series per block, its times cut to fit
            times = user_times[i]
            step = 1
            while step < times.size and cost(1, step * 2) <= self.memory_budget:
                step *= 2
            if cost(1, times.size) <= self.memory_budget:
                step = times.size
            for block, start in enumerate(range(0, times.size, step)):
                view = list(user_times)
                view[i] = times[start : start + step]
                yield range(i, i + 1), view, block
                _release_freed_memory()

    def scaled_times(
        self, ds: IrregularDataset, rows: range, user_times: list[np.ndarray]
    ) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """Padded model times ``(B, T)``, padded user times and lengths for series ``rows``."""
        lengths = np.array([user_times[i].size for i in rows])
        scaled = [
            torch.as_tensor(
                self.time_scaler.transform(user_times[i], ds.origins[i]), dtype=torch.float32
            )
            for i in rows
        ]
        times = _pad_repeating_last(scaled, int(lengths.max()))
        padded_user = np.zeros(times.shape)
        for b, i in enumerate(rows):
            padded_user[b, : lengths[b]] = user_times[i]
        return times, padded_user, lengths

    def decode_samples(
        self,
        ds: IrregularDataset,
        rows: range,
        user_times: list[np.ndarray],
        n_samples: int,
        salt: int,
        *,
        noise: bool = False,
        block: int = 0,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Posterior samples for the series ``rows``: ``(S, B, T, F)`` in user units.

        Returns the decoded curves, the padded user times ``(B, T)``, the lengths, and with
        ``noise`` the predictive noise to add to the curves for new observations
        (:class:`~latentode.heads.predictive.PredictiveNoise`, independent at each time),
        ``(S, B, T, F)`` in user units (else None). Each series draws its own latent and
        observation noise from seeds made of its id and ``salt``, so a series gets the same
        samples whatever else is in the frame and in whatever row order, and the same curves
        with or without observation noise.
        """
        model = self.module.model
        batch = ds.batch(list(rows)).to(self.device)
        times, padded_user, lengths = self.scaled_times(ds, rows, user_times)  # (B, T)
        times = times.to(self.device)
        ids = [ds.ids[i] for i in rows]
        eps = self.latent_noise(ids, n_samples, salt)  # (S, B, latent)
        with torch.no_grad():
            q, anchor = model.encode(batch)
            # (S, B, T, F)
            draws = model.decode(q.loc + q.scale * eps, times, anchor, batch.covariates)
            noisy = None
            if noise:
                std = model.noise_std(batch, times, draws)  # (S, B, T, F), standardised
                outside = batch.outside_window(times.to(batch.times.dtype)).cpu().numpy()  # (B, T)
                unit = self.observation_noise(ids, lengths, draws.shape, salt, outside, block)
                noisy = draws + unit * std
        # Padding repeats each series' last time, so every entry is a real read-out.
        values = self.check_finite(self.to_user(draws), "prediction")  # (S, B, T, F)
        if noisy is not None:
            noisy = self.check_finite(self.to_user(noisy), "predictive draw")
        return values, padded_user, lengths, noisy

    def to_user(self, draws: torch.Tensor) -> np.ndarray:
        """Standardised, transformed model values ``(..., F)`` → the user's units."""
        scaled = self.feature_scaler.inverse_transform(draws.double().cpu().numpy())
        return self.transforms.inverse(scaled)

    def latent_noise(self, ids: list[Hashable], n_samples: int, salt: int) -> torch.Tensor:
        """``(n_samples, len(ids), latent)`` standard normal noise, seeded per series."""
        latent = self.module.model.latent_dim
        return torch.stack(
            [
                torch.randn(
                    n_samples,
                    latent,
                    generator=torch.Generator().manual_seed(series_seed(i, salt)),
                )
                for i in ids
            ],
            dim=1,
        ).to(self.device)  # drawn on the CPU: the same draws on every device

    def observation_noise(
        self,
        ids: list[Hashable],
        lengths: np.ndarray,
        shape: torch.Size,
        salt: int,
        outside: np.ndarray,
        block: int = 0,
    ) -> torch.Tensor:
        """Unit-scale noise ``shape = (S, B, T, F)``: each feature's t, per series seeded.

        ``outside (B, T)`` marks times outside each series' observed window, which draw from
        that window's law. A series draws exactly ``(S, its own n_times, F)`` values (padding
        stays 0) from a seed of its id and ``salt``, so its noise does not depend on its
        batch-mates.
        """
        noise = self.module.model.noise
        n_samples, _, _, n_features = shape
        out = np.zeros(tuple(shape))
        for b, (sid, n) in enumerate(zip(ids, lengths, strict=True)):
            # a series cut into blocks of times draws each block from its own stream
            key = ("observation", sid) if block == 0 else ("observation", sid, block)
            rng = np.random.default_rng(series_seed(key, salt))
            where = outside[b, : int(n), None]  # (n, 1)
            out[:, b, : int(n)] = noise.standard_draws(rng, (n_samples, int(n), n_features), where)
        return torch.as_tensor(out, dtype=torch.float32, device=self.device)

    def predict(
        self,
        df: pd.DataFrame,
        times: Any = None,
        *,
        horizon: Any = None,
        horizon_points: int = HORIZON_POINTS,
        quantiles: Sequence[float] = (0.05, 0.5, 0.95),
        num_samples: int = 100,
        interval: str = "predictive",
        inputs: pd.DataFrame | None = None,
        static: pd.DataFrame | None = None,
        events: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """See :meth:`LatentODE.predict`."""
        levels = check_quantiles(quantiles)
        n_samples = check_num_samples(num_samples, "num_samples")
        predictive = check_choice("interval", interval, INTERVALS) == "predictive"
        ds = self.encode_frame(df, events=events, inputs=inputs, static=static)
        user_times = target_times(self.fmt, ds, times, horizon, horizon_points)
        names = list(self.fmt.value_cols)
        added = [f"{f}_q{q:g}" for q in levels for f in names]
        self.check_added_columns("predict", added)
        columns = names + added
        # the answer, filled block by block in place (rows grouped by series, in order)
        counts = np.array([t.size for t in user_times], dtype=np.int64)
        out_times = np.empty(int(counts.sum()))
        out_values = np.empty((int(counts.sum()), len(columns)), order="F")
        filled = 0
        for rows, block_times, block in self.blocks(user_times, n_samples):
            curves, padded, lengths, noisy = self.decode_samples(
                ds, rows, block_times, n_samples, self.seed, noise=predictive, block=block
            )
            draws = curves if noisy is None else noisy  # (S, B, T, F)
            bands = band_quantiles(draws, levels)  # (Q, B, T, F)
            if predictive and self.conformal is not None:
                bands = self.widen(bands, np.median(draws, axis=0), ds, rows, padded)
            # Without a transform the noise has mean 0, and the curves' mean is exact; with
            # one, a new observation's mean is the back-transformed draws' (e.g. lognormal).
            mean = (draws if self.transforms.spec else curves).mean(axis=0)
            stats = [mean, *bands]
            out = np.concatenate(stats, axis=-1)  # (B, T, F * (1 + n_quantiles))
            keep = np.arange(padded.shape[1]) < lengths[:, None]  # (B, T) without the padding
            done = filled + int(keep.sum())
            out_times[filled:done] = padded[keep]
            out_values[filled:done] = out[keep]
            filled = done
        return rows_to_frame(ds.ids, counts, out_times, out_values, self.fmt, value_cols=columns)

    def widen(
        self,
        bands: np.ndarray,
        median: np.ndarray,
        ds: IrregularDataset,
        rows: range,
        padded: np.ndarray,
    ) -> np.ndarray:
        """Quantiles ``(Q, B, T, F)`` moved from the median by the conformal factors.

        Each time uses its feature's factor for its task band: interpolation inside the
        series' observed window, extrapolation outside it.
        """
        first = np.array([ds.series[i].times[0] for i in rows])[:, None]  # (B, 1)
        last = np.array([ds.series[i].times[-1] for i in rows])[:, None]
        outside = (padded < first) | (padded > last)  # (B, T)
        factors = np.asarray(self.conformal)  # (F, n_bands)
        k = np.where(outside[..., None], factors[:, 1], factors[:, 0])  # (B, T, F)
        return median + k * (bands - median)

    def sample(
        self,
        n_samples: int,
        times: Any,
        *,
        df: pd.DataFrame | None = None,
        random_state: int | np.random.Generator | None = None,
        noise: bool = True,
        inputs: pd.DataFrame | None = None,
        static: pd.DataFrame | None = None,
        events: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """See :meth:`LatentODE.sample`."""
        n = check_num_samples(n_samples, "n_samples")
        seed = as_seed(random_state)
        check_bool("noise", noise)
        self.check_added_columns("sample", ["sample"])
        if (
            df is None
            and self.covariate_schema is None
            and (inputs is not None or static is not None)
        ):
            raise ValueError(
                "this model was fitted without covariates; leave `inputs`/`static` out"
            )
        if df is not None:
            ds = self.encode_frame(df, events=events, inputs=inputs, static=static)
            user_times = target_times(self.fmt, ds, times, None)
            frames = []
            for rows, block_times, block in self.blocks(
                user_times, n, 3 * len(self.fmt.value_cols)
            ):
                curves, padded, lengths, noisy = self.decode_samples(
                    ds, rows, block_times, n, seed, noise=noise, block=block
                )
                values = curves if noisy is None else noisy
                ids = [ds.ids[i] for i in rows]
                for k in range(n):
                    part = _arrays_frame(ids, padded, values[k], lengths, self.fmt, None)
                    frames.append(part.assign(sample=k))
            out = pd.concat(frames, ignore_index=True)
            out = out.sort_values(["sample"], kind="stable", ignore_index=True)
            return out[["sample", *[c for c in out.columns if c != "sample"]]]
        offsets = prior_offsets(self.fmt, times)
        scaled = torch.as_tensor(
            offsets / self.time_scaler.scale_, dtype=torch.float32, device=self.device
        )
        covariates = new_series_covariates(self, offsets, inputs, static)
        model = self.module.model
        per_sample = offsets.size * (model.latent_dim * 4 + 3 * model.n_features * 8)
        chunk = max(1, min(n, self.memory_budget // max(1, per_sample)))
        parts = []
        for block, start in enumerate(range(0, n, chunk)):
            size = min(chunk, n - start)
            # one block draws from the seed itself; further blocks from streams of their own
            generator = torch.Generator(device=self.device).manual_seed(
                seed if block == 0 else series_seed(("prior", block), seed)
            )
            with torch.no_grad():
                draws = model.sample_prior(
                    scaled.unsqueeze(0), n_samples=size, generator=generator, covariates=covariates
                )  # (size, 1, T, F)
                if noise:  # a new series has no observations: the noise at an observed time
                    std = model.noise.std(torch.zeros_like(draws), draws)  # (size, 1, T, F)
                    eps = self.observation_noise(
                        ["prior"],
                        np.array([offsets.size]),
                        draws.shape,
                        seed,
                        np.zeros((1, offsets.size), dtype=bool),
                        block,
                    )
                    draws = draws + eps * std
            parts.append(self.check_finite(self.to_user(draws[:, 0]), "prior draw"))
        values = np.concatenate(parts)  # (n, T, F)
        fmt = self.fmt
        time_values = fmt.float_to_times(offsets) if fmt.time_kind == "numeric" else None
        if time_values is None:
            unit = pd.Timedelta(1, unit=fmt.time_unit)
            time_values = pd.to_timedelta(offsets * unit.value, unit="ns")
        frame = pd.DataFrame(
            {
                "sample": np.repeat(np.arange(n), offsets.size),
                fmt.time_col: np.tile(np.asarray(time_values), n),
            }
        )
        for j, name in enumerate(fmt.value_cols):
            frame[name] = values[:, :, j].reshape(-1)
        return frame


def check_quantiles(quantiles: Any) -> list[float]:
    if isinstance(quantiles, str | bytes) or not isinstance(quantiles, Sequence | np.ndarray):
        raise TypeError(f"`quantiles` must be a sequence of levels; got {quantiles!r}")
    levels = []
    for q in quantiles:
        value = check_real("quantiles", q)
        if not 0 < value < 1:
            raise ValueError(f"`quantiles` must lie strictly inside (0, 1); got {q!r}")
        levels.append(value)
    if len(set(levels)) != len(levels):
        raise ValueError(f"`quantiles` must be distinct; got {list(quantiles)}")
    return levels


def check_num_samples(value: Any, name: str) -> int:
    n = check_int(name, value, minimum=1)
    if n > _MAX_SAMPLES:
        raise ValueError(
            f"`{name}` must be at most {_MAX_SAMPLES:,} per call; got {n:,}. Draw in several "
            "calls with different random_state values"
        )
    return n


def _release_freed_memory() -> None:
    """Hand memory freed by the last block back to the system (glibc only; else nothing).

    Blocks of a long request allocate and free arrays of a few hundred megabytes again and
    again; glibc keeps the freed pages in its heap, fragmented, and the process grew by ~20 MB
    a block (7 GB over one series x 5000 times x 100,000 samples) though nothing was kept.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return None


def _non_finite_weights(state: dict[str, Any]) -> list[str]:
    """Names of the floating-point tensors in ``state`` that hold NaN or infinity."""
    return [
        name
        for name, value in state.items()
        if isinstance(value, torch.Tensor)
        and value.is_floating_point()
        and not bool(torch.isfinite(value).all())
    ]


def _canonical_order(df: Any, id_col: str) -> Any:
    """``df`` with its series in id order, so a fit does not depend on row or series order.

    Ids that cannot be compared with each other (mixed types) are ordered by their text.
    Anything that is not a frame with ``id_col`` is passed on for the data layer to refuse.
    """
    if not isinstance(df, pd.DataFrame) or id_col not in df.columns:
        return df
    ids = df[id_col]
    try:
        order = np.argsort(ids.to_numpy(), kind="stable")
    except TypeError:
        order = np.argsort(ids.astype(str).to_numpy(), kind="stable")
    return df.iloc[order]


def _arrays_frame(
    ids: list[Hashable],
    times: np.ndarray,
    values: np.ndarray,
    lengths: np.ndarray,
    fmt: LongFormat,
    columns: list[str] | None,
) -> pd.DataFrame:
    return arrays_to_frame(
        ids, times, values, fmt, lengths=lengths.astype(np.int64), value_cols=columns
    )


def _as_device(device: Any, module: LatentODEModule) -> torch.device:
    """``device`` checked, or the module's own device."""
    if device is None:
        return next(module.parameters()).device
    try:
        resolved = torch.device(device)
    except (TypeError, RuntimeError) as err:
        raise ValueError(
            f"`device` must name a torch device ('cpu', 'cuda', 'cuda:1', 'mps'); got {device!r}"
        ) from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"`device={device!r}` asks for a GPU, but torch sees none (torch.cuda.is_available() "
            "is False); use device='cpu'"
        )
    return resolved
