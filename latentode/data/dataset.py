"""Series → tensors and back: `IrregularDataset` encodes series and returns results to pandas."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from latentode._validation import check_choice
from latentode.data.batch import IrregularBatch
from latentode.data.collate import ItemCovariates, SeriesItem, collate
from latentode.data.covariates import CovariateSchema, CovariateSeries
from latentode.data.frame import LongFormat, arrays_to_frame, frame_to_series
from latentode.data.scaling import ORIGINS, TimeScaler
from latentode.data.series import Series

__all__ = ["EventSeries", "IrregularDataset", "cover_events"]


@dataclass(frozen=True, eq=False)
class EventSeries:
    """The events of one series, in user time units.

    Attributes:
        times: ``(n_events,)`` float64, non-decreasing (events may coincide).
        kinds: ``(n_events,)`` int64 event-kind index, ≥ 0.
    """

    times: np.ndarray
    kinds: np.ndarray


def cover_events(s: Series, events: EventSeries) -> Series:
    """``s`` with its window widened to its events: an all-missing row at each outlying end.

    A series' *window* runs from its first observation-or-event to its last. The Poisson
    likelihood integrates the intensity over it (from the first row of the series to the
    last), so a window must hold every event; events after the last observation, the usual
    case in clinical data, are then scored over the time they actually span. A fully masked
    row only marks time: the encoder skips it, the values' likelihood ignores it, and it is not
    an observation (``IrregularBatch.outside_window`` and the series' time origin do not see
    it).

    Args:
        s: One series, in user units.
        events: Its events (same units); non-finite times are left for the caller to refuse.

    Returns:
        ``s`` itself when its rows already span its events, else a new :class:`Series` with
        one all-missing row at the first event (when before the first row) and/or one at the
        last event (when after the last row).
    """
    times = np.asarray(events.times, dtype=np.float64)
    if times.size == 0 or not np.all(np.isfinite(times)):
        return s
    before = [times.min()] if times.min() < s.times[0] else []
    after = [times.max()] if times.max() > s.times[-1] else []
    if not before and not after:
        return s
    n_before, n_after = len(before), len(after)
    pad_values = np.zeros((1, s.n_features))  # an all-missing row: value 0, mask False
    pad_mask = np.zeros((1, s.n_features), dtype=bool)
    return Series(
        id=s.id,
        times=np.concatenate([before, s.times, after]),  # (n_before + n_obs + n_after,)
        values=np.concatenate([pad_values[:n_before], s.values, pad_values[:n_after]]),
        mask=np.concatenate([pad_mask[:n_before], s.mask, pad_mask[:n_after]]),
    )


class IrregularDataset(Dataset):
    """Irregular series encoded for the model, with everything needed to go back to pandas.

    Args:
        series: The series (from :func:`~latentode.data.frame_to_series`).
        fmt: How the user's frame was laid out (columns, time kind and unit).
        scaler: A fitted :class:`TimeScaler`.
        events: Optional event streams, one :class:`EventSeries` per series, in the same order.
            Each series' window is widened to cover its events (:func:`cover_events`); its
            time origin stays that of its observation rows.
        covariates: Optional static features and known inputs, one
            :class:`~latentode.data.covariates.CovariateSeries` per series in user units, with
            the :class:`~latentode.data.covariates.CovariateSchema` (fitted) that scales them.
        dtype: Floating dtype of the tensors. Default ``torch.float32``.

    Example:
        >>> data = IrregularDataset.from_frame(df, id_col="patient", time_col="t")  # doctest: +SKIP
        >>> batch = data.batch()                       # every series, padded  # doctest: +SKIP
        >>> data.to_frame(batch).equals(...)           # back to the user's frame  # doctest: +SKIP
    """

    def __init__(
        self,
        series: Sequence[Series],
        fmt: LongFormat,
        scaler: TimeScaler,
        *,
        events: Sequence[EventSeries] | None = None,
        covariates: tuple[CovariateSchema, Sequence[CovariateSeries]] | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if len(series) == 0:
            raise ValueError("an IrregularDataset needs at least one series; got none")
        if not dtype.is_floating_point:
            raise TypeError(f"`dtype` must be a floating torch dtype; got {dtype}")
        if events is not None and len(events) != len(series):
            raise ValueError(
                f"`events` must hold one EventSeries per series ({len(series)}); got {len(events)}"
            )
        self.fmt = fmt
        self.scaler = scaler
        self.dtype = dtype
        self.ids: list[Hashable] = [s.id for s in series]
        # Origins come from the observation rows alone: events never move a series' time 0,
        # so the same frame predicts the same with or without its events.
        self.origins: np.ndarray = scaler.origins(series)  # (n_series,) user units
        self.series = list(series)
        if events is not None:
            self.series = [cover_events(s, ev) for s, ev in zip(series, events, strict=True)]
        self.covariate_schema: CovariateSchema | None = None
        self.covariates: list[CovariateSeries] | None = None
        if covariates is not None:
            self.covariate_schema, given = covariates
            if len(given) != len(series):
                raise ValueError(
                    f"`covariates` must hold one CovariateSeries per series ({len(series)}); "
                    f"got {len(given)}"
                )
            self.covariates = list(given)
        self._items = [self._encode(i, events) for i in range(len(self.series))]

    def _encode(self, i: int, events: Sequence[EventSeries] | None) -> SeriesItem:
        s, origin = self.series[i], self.origins[i]
        event_times = event_kinds = None
        if events is not None:
            ev = events[i]
            times = np.asarray(ev.times, dtype=np.float64)
            if times.size and (not np.all(np.isfinite(times)) or np.any(np.diff(times) < 0)):
                raise ValueError(
                    f"events of series {s.id!r} must be finite and sorted by time; "
                    "sort them and drop NaN times"
                )
            kinds = np.asarray(ev.kinds)
            if kinds.shape != times.shape or (kinds.size and kinds.min() < 0):
                raise ValueError(
                    f"events of series {s.id!r} need one kind index ≥ 0 per event time"
                )
            event_times = torch.as_tensor(self.scaler.transform(times, origin), dtype=self.dtype)
            event_kinds = torch.as_tensor(kinds, dtype=torch.long)
        covariates = None
        if self.covariates is not None:
            c = self.covariate_schema.transform(self.covariates[i], origin, self.scaler.scale_)
            covariates = ItemCovariates.of(c, self.dtype)
        return SeriesItem(
            index=i,
            times=torch.as_tensor(self.scaler.transform(s.times, origin), dtype=self.dtype),
            values=torch.as_tensor(s.values, dtype=self.dtype),
            mask=torch.as_tensor(s.mask, dtype=self.dtype),
            event_times=event_times,
            event_kinds=event_kinds,
            covariates=covariates,
        )

    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        *,
        id_col: str = "id",
        time_col: str = "time",
        value_cols: Sequence[str] | None = None,
        time_unit: str | None = None,
        fmt: LongFormat | None = None,
        scaler: TimeScaler | None = None,
        origin: str = "series",
        dtype: torch.dtype = torch.float32,
    ) -> IrregularDataset:
        """Validate a long frame and encode it.

        Training data: leave ``fmt`` and ``scaler`` as None; both are learned here. New data
        for a fitted model: pass the training dataset's ``fmt`` and ``scaler``, so columns,
        time units and the time scale match.
        """
        series, fmt = frame_to_series(
            df,
            id_col=id_col,
            time_col=time_col,
            value_cols=value_cols,
            time_unit=time_unit,
            fmt=fmt,
        )
        if scaler is None:
            scaler = TimeScaler(origin=check_choice("origin", origin, ORIGINS)).fit(series)
        return cls(series, fmt, scaler, dtype=dtype)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i: int) -> SeriesItem:
        return self._items[i]

    @property
    def n_features(self) -> int:
        return self.series[0].n_features

    def batch(self, indices: Sequence[int] | None = None) -> IrregularBatch:
        """Collate the series at ``indices`` (default: all) into one padded batch."""
        rows = range(len(self)) if indices is None else indices
        return collate([self._items[i] for i in rows])

    def to_frame(
        self,
        batch: IrregularBatch,
        values: torch.Tensor | None = None,
        *,
        times: torch.Tensor | None = None,
        value_cols: Sequence[str] | None = None,
        mask: torch.Tensor | None = None,
    ) -> pd.DataFrame:
        """A long frame in the user's ids, time units and column names.

        Args:
            batch: A batch of this dataset (its ``index`` maps rows to series).
            values: ``(batch, n_times, d)`` to write out; default ``batch.values``.
            times: ``(batch, n_times)`` scaled times of ``values``; default ``batch.times``
                (then padding is dropped using ``batch.lengths`` and missing values are NaN).
            value_cols: Output column names for the ``d`` columns; default the fitted features.
            mask: ``(batch, n_times, d)`` where False/0 becomes NaN; default ``batch.mask``
                when ``values`` and ``times`` are the batch's own, else all observed.
        """
        if batch.index is None:
            raise ValueError("`batch` carries no `index`; build it with this dataset's batch()")
        own = values is None and times is None
        index = batch.index.cpu().numpy()
        values = batch.values if values is None else values
        scaled = batch.times if times is None else times
        if mask is None and own:
            mask = batch.mask
        user_times = self.scaler.inverse_transform(
            scaled.detach().cpu().double().numpy(), self.origins[index][:, None]
        )  # (batch, n_times)
        return arrays_to_frame(
            [self.ids[i] for i in index],
            user_times,
            values.detach().cpu().double().numpy(),
            self.fmt,
            lengths=batch.lengths.cpu().numpy() if times is None else None,
            mask=None if mask is None else mask.detach().cpu().numpy() > 0,
            value_cols=value_cols,
        )
