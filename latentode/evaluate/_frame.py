"""Checks and conversions shared by the evaluation modules: the long-frame boundary.

Every public function of :mod:`latentode.evaluate` takes long frames (one row per observation
time of one series; an id column, a time column, one column per feature, NaN = not observed)
and checks them here once. Times are read in one of three kinds: numbers (float64 as they
are), datetimes or timedeltas (exact int64 nanoseconds). Every baseline is invariant to the time
unit, so nanoseconds need no stated unit.

Only numpy and pandas are imported here.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

_MAX_LISTED = 5  # ids, pairs or columns named in one message


@dataclass(frozen=True)
class Layout:
    """Column names of a long frame, resolved once at the boundary."""

    id_col: Hashable
    time_col: Hashable
    value_cols: tuple[Hashable, ...]


def show(value: Any) -> str:
    """``repr`` for messages, numpy scalars as plain Python (``4.0``, not ``np.float64(4.0)``)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def list_labels(labels: Sequence[Any]) -> str:
    """``'a', 'b'`` or ``'a', 'b', 'c', 'd', 'e', ... (12 in all)'`` for messages."""
    labels = list(labels)
    shown = ", ".join(show(v) for v in labels[:_MAX_LISTED])
    return shown if len(labels) <= _MAX_LISTED else f"{shown}, ... ({len(labels)} in all)"


def check_frame(df: Any, name: str) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"`{name}` must be a pandas DataFrame; got {type(df).__name__}")
    return df


def resolve_layout(
    df: pd.DataFrame,
    name: str,
    *,
    id_col: Hashable,
    time_col: Hashable,
    value_cols: Sequence[Hashable] | None,
) -> Layout:
    """Check that the columns exist and the features are numeric; ``None`` = every other column.

    Raises:
        TypeError: ``df`` is not a DataFrame, ``value_cols`` is a bare string, or a feature
            column is not numeric.
        ValueError: a named column is missing, or there is no feature column.
    """
    check_frame(df, name)
    if isinstance(value_cols, str) or (
        value_cols is not None and not isinstance(value_cols, Sequence | pd.Index)
    ):
        raise TypeError(
            f"`value_cols` must be a sequence of column names or None; got {value_cols!r} "
            f"(for one feature, wrap it in a list: [{value_cols!r}])"
        )
    if value_cols is None:
        value_cols = [c for c in df.columns if c not in (id_col, time_col)]
    cols = tuple(value_cols)
    missing = [c for c in (id_col, time_col, *cols) if c not in df.columns]
    if missing:
        raise ValueError(
            f"`{name}` must have columns {show(id_col)} (id), {show(time_col)} (time) and the "
            f"features; missing {list_labels(missing)}; pass id_col=, time_col=, value_cols= "
            "to name yours"
        )
    if not cols:
        raise ValueError(
            f"`{name}` must have at least one feature column besides {show(id_col)} and "
            f"{show(time_col)}; found none"
        )
    if len(set(cols)) != len(cols) or id_col in cols or time_col in cols:
        raise ValueError(
            f"`value_cols` must be distinct features other than the id and time columns; "
            f"got {list(cols)}"
        )
    bad = [c for c in cols if not is_numeric(df[c])]
    if bad:
        raise TypeError(
            f"`{name}` feature columns must be numeric; {list_labels(bad)} "
            f"{'is' if len(bad) == 1 else 'are'} not (dtype "
            f"{', '.join(str(df[c].dtype) for c in bad[:_MAX_LISTED])}); convert with "
            "pd.to_numeric or leave them out of value_cols"
        )
    return Layout(id_col, time_col, cols)


def is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


def check_ids(df: pd.DataFrame, name: str, id_col: Hashable) -> None:
    if id_col not in df.columns:
        raise ValueError(f"`{name}` must have the id column {show(id_col)}; it is missing")
    n_missing = int(df[id_col].isna().sum())
    if n_missing:
        raise ValueError(
            f"`{name}` id column {show(id_col)} must have no missing values; found {n_missing}; "
            "drop those rows or give them an id"
        )


def time_keys(df: pd.DataFrame, name: str, time_col: Hashable) -> tuple[str, np.ndarray]:
    """The kind of a time column and its exact keys, ``(n,)``.

    Returns:
        ``("numeric", float64)``, or ``("datetime"/"datetime[<tz>]"/"timedelta", int64)``
        nanoseconds (tz-aware datetimes as UTC nanoseconds).
    """
    s = df[time_col]
    what = f"`{name}` time column {show(time_col)}"
    if s.isna().any():
        raise ValueError(
            f"{what} must have no missing values; found {int(s.isna().sum())}; drop those rows"
        )
    dtype = s.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        index = pd.DatetimeIndex(s)
        kind = "datetime" if index.tz is None else f"datetime[{index.tz}]"
        return kind, index.as_unit("ns").asi8.copy()
    if pd.api.types.is_timedelta64_dtype(dtype):
        return "timedelta", pd.TimedeltaIndex(s).as_unit("ns").asi8.copy()
    if is_numeric(s):
        values = s.to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            raise ValueError(f"{what} must be finite; found inf; drop or fix those rows")
        return "numeric", values
    raise TypeError(
        f"{what} must hold numbers, datetimes or timedeltas; found dtype {dtype}; convert it "
        f"first: pd.to_datetime(...), pd.to_timedelta(...) or pd.to_numeric(...)"
    )


def same_kind(kinds: Sequence[tuple[str, str]]) -> None:
    """Raise unless every ``(frame name, time kind)`` has the same kind."""
    first_name, first = kinds[0]
    for name, kind in kinds[1:]:
        if kind != first:
            raise TypeError(
                f"`{name}` and `{first_name}` must have times of one kind; got {kind} and "
                f"{first}; convert one to the other's type"
            )


def float_times(*keys: np.ndarray) -> list[np.ndarray]:
    """Times as float64 with one shared origin (the smallest key), so that int64 nanoseconds
    since 1970 (~1.7e18) keep their precision as differences."""
    nonempty = [k for k in keys if k.size]
    origin = min(k.min() for k in nonempty) if nonempty else 0
    return [(k - origin).astype(np.float64) for k in keys]


def check_unique(
    df: pd.DataFrame,
    name: str,
    layout: Layout,
    keys: np.ndarray,
    by: Hashable | None = None,
) -> None:
    """Raise if an ``(id, time)`` pair (within each ``by`` group, when given) repeats."""
    frame = pd.DataFrame({"id": df[layout.id_col].to_numpy(), "t": keys})
    if by is not None:
        frame["by"] = df[by].to_numpy()
    dup = np.flatnonzero(frame.duplicated(keep="first").to_numpy())
    if dup.size:
        pairs = [
            (df[layout.id_col].iloc[i], df[layout.time_col].iloc[i]) for i in dup[:_MAX_LISTED]
        ]
        within = "" if by is None else f" within each {show(by)}"
        raise ValueError(
            f"`{name}` must have at most one row per (id, time){within}; found {dup.size} "
            f"repeated, e.g. {', '.join(map(show, pairs))}; aggregate them first, e.g. "
            "df.groupby([id_col, time_col], as_index=False).mean()"
        )


def feature_values(df: pd.DataFrame, cols: Sequence[Hashable]) -> np.ndarray:
    """``(n, F)`` float64 values of the feature columns, NaN where not observed."""
    return df[list(cols)].to_numpy(dtype=np.float64, na_value=np.nan)


@dataclass(frozen=True)
class LongFrame:
    """A checked long frame: its layout, time kind and exact time keys ``(n,)``."""

    df: pd.DataFrame
    layout: Layout
    kind: str
    keys: np.ndarray


def read_long(
    df: Any,
    name: str,
    *,
    id_col: Hashable,
    time_col: Hashable,
    value_cols: Sequence[Hashable] | None,
) -> LongFrame:
    """Check a long frame once: columns, numeric features, ids, times, unique (id, time)."""
    layout = resolve_layout(df, name, id_col=id_col, time_col=time_col, value_cols=value_cols)
    check_ids(df, name, id_col)
    kind, keys = time_keys(df, name, time_col)
    check_unique(df, name, layout, keys)
    return LongFrame(df, layout, kind, keys)


def read_times(
    df: Any, name: str, *, id_col: Hashable, time_col: Hashable
) -> tuple[str, np.ndarray]:
    """Check a frame of ``(id, time)`` pairs (other columns ignored); its time kind and keys."""
    check_frame(df, name)
    missing = [c for c in (id_col, time_col) if c not in df.columns]
    if missing:
        raise ValueError(
            f"`{name}` must have columns {show(id_col)} (id) and {show(time_col)} (time); "
            f"missing {list_labels(missing)}"
        )
    check_ids(df, name, id_col)
    return time_keys(df, name, time_col)
