"""Event streams from pandas: an ``(id, time[, kind])`` frame → one `EventSeries` per series.

Events live on the same time axis as the observations (same time type and unit). A series'
*window* runs from its first observation-or-event to its last: events after the last
observation (the usual case: events keep happening after the last lab draw) or before the
first one widen it, and the Poisson likelihood integrates the intensity over all of it, so
every event is scored and none is dropped. The window does not move the series' time origin,
which stays at its first row in the observation frame. To score a longer window than the events
span (e.g. a follow-up that ended with no events), add a row at its end to the observation
frame (all-NaN rows are allowed; they only mark time).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from latentode.data.dataset import EventSeries
from latentode.data.frame import LongFormat
from latentode.data.series import Series

__all__ = ["KIND_COL", "frame_to_events", "infer_kinds"]

KIND_COL = "kind"
"""Column of an events frame naming each event's kind; optional (one kind without it)."""

DEFAULT_KIND = "event"
"""The one kind of an events frame without a ``kind`` column."""

_MAX_LISTED = 5


def _plain(values: Any) -> list[Any]:
    """Values as Python scalars, so messages read ``[999]``, not ``[np.int64(999)]``."""
    return [v.item() if isinstance(v, np.generic) else v for v in values]


def _check_events_frame(events: Any, fmt: LongFormat) -> pd.DataFrame:
    if not isinstance(events, pd.DataFrame):
        raise TypeError(
            f"`events` must be a DataFrame with columns {fmt.id_col!r}, {fmt.time_col!r} and "
            f"optionally {KIND_COL!r}; got {type(events).__name__}"
        )
    missing = [c for c in (fmt.id_col, fmt.time_col) if c not in events.columns]
    if missing:
        raise ValueError(
            f"`events` lacks column(s) {', '.join(map(repr, missing))}; it needs the id and time "
            f"columns of the observation frame ({fmt.id_col!r}, {fmt.time_col!r}) and optionally "
            f"{KIND_COL!r}"
        )
    clash = [c for c in (fmt.id_col, fmt.time_col) if c == KIND_COL]
    if clash:
        raise ValueError(
            f"an events frame names each event's kind in a column {KIND_COL!r}, which is also "
            f"your {'id' if clash[0] == fmt.id_col else 'time'} column; rename that column "
            "(in the observations and the events alike) and fit again"
        )
    if events.columns.duplicated().any():
        dup = sorted({str(c) for c in events.columns[events.columns.duplicated()]})
        raise ValueError(f"`events` has duplicate column names {dup}; rename or drop them")
    return events


def infer_kinds(events: pd.DataFrame | None, fmt: LongFormat | None = None) -> list[Hashable]:
    """The event kinds of an events frame, sorted; ``["event"]`` without a ``kind`` column.

    With ``fmt``, the frame's columns are checked against it first.
    """
    if events is not None and fmt is not None:
        events = _check_events_frame(events, fmt)
    if events is None or KIND_COL not in events.columns:
        return [DEFAULT_KIND]
    labels = events[KIND_COL]
    if labels.isna().any():
        row = labels.index[np.flatnonzero(labels.isna().to_numpy())[0]]
        raise ValueError(
            f"`events` has a missing {KIND_COL!r} at row {row!r}; give every event a kind or "
            f"drop the {KIND_COL!r} column for a single kind"
        )
    unique = list(pd.unique(labels))
    try:
        return sorted(unique)
    except TypeError:
        return sorted(unique, key=str)


def frame_to_events(
    events: pd.DataFrame,
    series: Sequence[Series],
    fmt: LongFormat,
    kinds: Sequence[Hashable],
) -> list[EventSeries]:
    """One :class:`EventSeries` per series of ``series`` (in its order), from an events frame.

    Events may lie anywhere on the time axis: :class:`~latentode.data.IrregularDataset` widens
    each series' window to its events (see :func:`~latentode.data.dataset.cover_events`).

    Args:
        events: Long frame with ``fmt.id_col``, ``fmt.time_col`` and optionally ``"kind"``.
        series: The observed series, in the order of the output.
        fmt: The observation frame's layout (time type and unit are shared).
        kinds: The modelled kinds; an event's kind index is its position here.

    Raises:
        TypeError: ``events`` is not a frame, or its times are of another type than the
            observations'.
        ValueError: missing columns, NaN/NaT or infinite times, ids that are not series, or
            kinds not in ``kinds``.
    """
    events = _check_events_frame(events, fmt)
    try:
        times = fmt.times_to_float(events[fmt.time_col])
    except (TypeError, ValueError) as err:
        raise type(err)(f"bad event times in column {fmt.time_col!r}: {err}") from None
    position = {s.id: i for i, s in enumerate(series)}
    ids = events[fmt.id_col].to_numpy()
    unknown = _plain(dict.fromkeys(i for i in ids if i not in position))
    if unknown:
        raise ValueError(
            f"`events` names {len(unknown)} series that are not in the observation frame, e.g. "
            f"{unknown[:_MAX_LISTED]}; every event's series needs its observations (at least "
            "one row) in the frame; drop those events or add the series"
        )
    kind_index = {k: j for j, k in enumerate(kinds)}
    if KIND_COL in events.columns:
        labels = events[KIND_COL].to_numpy()
        strange = _plain(dict.fromkeys(k for k in labels if k not in kind_index))
        if strange:
            raise ValueError(
                f"`events` has kinds {strange[:_MAX_LISTED]} that are not among the modelled "
                f"kinds {list(kinds)}; add them to event_kinds or drop those events"
            )
        codes = np.array([kind_index[k] for k in labels], dtype=np.int64)
    else:
        if len(kinds) != 1:
            raise ValueError(
                f"`events` has no {KIND_COL!r} column, but {len(kinds)} kinds are modelled "
                f"({list(kinds)}); add a {KIND_COL!r} column"
            )
        codes = np.zeros(len(events), dtype=np.int64)
    rows = np.array([position[i] for i in ids], dtype=np.int64)
    out = []
    order = np.lexsort((codes, times, rows))  # by series, then time
    rows, times, codes = rows[order], times[order], codes[order]
    bounds = np.searchsorted(rows, np.arange(len(series) + 1))
    for i in range(len(series)):
        part = slice(bounds[i], bounds[i + 1])
        out.append(EventSeries(times=times[part].copy(), kinds=codes[part].copy()))
    return out
