"""The pandas boundary: a long DataFrame ⇄ a list of :class:`~latentode.data.series.Series`.

A user's frame has one row per observation time of one series: an id column, a time column and
one column per feature, with NaN meaning "not observed". :func:`frame_to_series` checks such a
frame once, converts its times to float64 in the user's units and returns one sorted
:class:`Series` per id together with a :class:`LongFormat`, the record of how to go back.
:func:`series_to_frame` and :func:`arrays_to_frame` go back: to the user's ids, time type
(numbers, tz-naive or tz-aware datetimes, timedeltas) and column names.

Times become floats as follows:

- numbers (numpy or nullable ints and floats) are taken as they are;
- datetimes need a stated ``time_unit``: ``float = (t - reference) / Timedelta(1, time_unit)``,
  with ``reference`` the earliest time of the frame the format was fitted on;
- timedeltas likewise, with reference ``Timedelta(0)``.

Only numpy and pandas are imported here: no torch, Lightning or scikit-learn.
"""

from __future__ import annotations

import datetime as _dt
import numbers
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
import pandas as pd

from latentode._validation import check_choice, format_choices
from latentode.data.series import Series

__all__ = [
    "TIME_KINDS",
    "TIME_UNITS",
    "LongFormat",
    "arrays_to_frame",
    "frame_to_series",
    "rows_to_frame",
    "series_to_frame",
]

TimeKind = Literal["numeric", "datetime", "timedelta"]
TIME_KINDS: tuple[str, ...] = ("numeric", "datetime", "timedelta")

# pandas unit string -> nanoseconds in one unit
_NS_PER_UNIT: dict[str, int] = {
    "D": 86_400 * 10**9,
    "h": 3_600 * 10**9,
    "min": 60 * 10**9,
    "s": 10**9,
    "ms": 10**6,
    "us": 10**3,
    "ns": 1,
}
TIME_UNITS: tuple[str, ...] = tuple(_NS_PER_UNIT)

# Strings users reach for that mean something else to pandas, or to a calendar.
_AMBIGUOUS_UNITS: dict[str, str] = {
    "m": "'m' is ambiguous (minutes or months); pass time_unit='min' for minutes",
    "M": "'M' means months, which have no fixed length; pass a fixed unit such as 'D'",
    "Y": "'Y' means years, which have no fixed length; pass a fixed unit such as 'D'",
    "y": "'y' means years, which have no fixed length; pass a fixed unit such as 'D'",
}

_MAX_LISTED = 5  # row labels or ids named in one message

# Canonical times after classification: float64 (n,), or a DatetimeIndex / TimedeltaIndex.
_Times = np.ndarray | pd.DatetimeIndex | pd.TimedeltaIndex


def _check_time_unit(time_unit: Any) -> str:
    """Return ``time_unit`` if it is one of :data:`TIME_UNITS`, else raise with the fix."""
    if not isinstance(time_unit, str):
        raise TypeError(
            f"`time_unit` must be a string, one of {', '.join(map(repr, TIME_UNITS))}; "
            f"got {time_unit!r} ({type(time_unit).__name__})"
        )
    if time_unit in _AMBIGUOUS_UNITS:
        raise ValueError(f"`time_unit` {_AMBIGUOUS_UNITS[time_unit]}")
    if time_unit not in _NS_PER_UNIT:
        raise ValueError(
            f"`time_unit` must be one of {', '.join(map(repr, TIME_UNITS))}; got {time_unit!r}"
        )
    return time_unit


def _list_labels(labels: Sequence[Any]) -> str:
    """``'3, 7, 9'`` or ``'3, 7, 9, 10, 11, ... (12 in all)'`` for messages."""
    shown = ", ".join(_show(v) for v in list(labels)[:_MAX_LISTED])
    return shown if len(labels) <= _MAX_LISTED else f"{shown}, ... ({len(labels)} in all)"


def _show(value: Any) -> str:
    """``repr`` of a value for messages, numpy scalars as plain Python (``4.0``, not
    ``np.float64(4.0)``)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _check_no_missing(s: pd.Series, what: str, labels: pd.Index, fix: str) -> None:
    missing = s.isna().to_numpy()
    if missing.any():
        rows = labels[np.flatnonzero(missing)]
        raise ValueError(
            f"{what} must have no missing values; found {int(missing.sum())} "
            f"(rows {_list_labels(rows)}); {fix}"
        )


# ----------------------------------------------------------------------------------------------
# Time columns: classify once, then convert.
# ----------------------------------------------------------------------------------------------


def _value_kind(v: Any) -> str:
    """Coarse kind of one Python value in an object column, for error messages."""
    if isinstance(v, bool | np.bool_):
        return "bool"
    if isinstance(v, numbers.Real | np.number):
        return "number"
    if isinstance(v, _dt.datetime | _dt.date | np.datetime64):
        return "datetime"
    if isinstance(v, _dt.timedelta | np.timedelta64):
        return "timedelta"
    if isinstance(v, str | bytes):
        return "string"
    return type(v).__name__


def _convert_hint(ref: str) -> str:
    return (
        f"convert it first: pd.to_datetime({ref}) for dates, pd.to_timedelta({ref}) for "
        f"durations, pd.to_numeric({ref}) for numbers"
    )


def _raise_bad_object_times(s: pd.Series, what: str, labels: pd.Index, ref: str) -> None:
    """Name the first unusable value: a string, or one whose type differs from the first's."""
    present = np.flatnonzero(s.notna().to_numpy())
    kinds = [_value_kind(v) for v in s.iloc[present]]
    bad = next((i for i, k in zip(present, kinds, strict=True) if k == "string"), None)
    if bad is None:
        bad = next((i for i, k in zip(present, kinds, strict=True) if k != kinds[0]), None)
    if bad is None:  # one kind, but not a time kind (e.g. all booleans)
        v = s.iloc[present[0]]
        raise TypeError(
            f"{what} must hold numbers, datetimes or timedeltas; found {_show(v)} "
            f"({type(v).__name__}) at row {_show(labels[present[0]])}; " + _convert_hint(ref)
        )
    v = s.iloc[bad]
    found = f"{_show(v)} ({type(v).__name__}) at row {_show(labels[bad])}"
    if kinds[0] == "string" or _value_kind(v) == kinds[0]:
        raise TypeError(
            f"{what} must hold numbers, datetimes or timedeltas; found strings, e.g. {found}; "
            + _convert_hint(ref)
        )
    first = s.iloc[present[0]]
    raise TypeError(
        f"{what} must hold one type of time (numbers, datetimes or timedeltas); found a mix: "
        f"{found}, but {_show(first)} ({type(first).__name__}) at row {_show(labels[present[0]])}; "
        + _convert_hint(ref)
    )


def _object_datetimes(s: pd.Series, what: str, labels: pd.Index, ref: str) -> pd.DatetimeIndex:
    """Python datetimes / Timestamps in an object column → one ``DatetimeIndex``."""
    zones = [getattr(v, "tzinfo", None) for v in s]
    aware = np.array([z is not None for z in zones])
    if aware.any() and not aware.all():
        i, j = int(np.argmax(aware)), int(np.argmin(aware))
        raise TypeError(
            f"{what} must hold only tz-aware or only tz-naive datetimes; found a mix: "
            f"{s.iloc[i]!r} at row {_show(labels[i])} is aware, "
            f"{s.iloc[j]!r} at row {_show(labels[j])} is naive; make them all aware, e.g. "
            f"pd.to_datetime({ref}, utc=True) after localizing the naive ones"
        )
    names = sorted({str(z) for z in zones}) if aware.any() else []
    if len(names) > 1:
        raise TypeError(
            f"{what} must hold datetimes of one time zone; found {_list_labels(names)}; "
            f"put them in one zone with pd.to_datetime({ref}, utc=True)"
        )
    try:
        if names:  # pandas converts aware Python datetimes only via UTC
            return pd.DatetimeIndex(pd.to_datetime(s, utc=True)).tz_convert(zones[0])
        return pd.DatetimeIndex(pd.to_datetime(s))
    except (ValueError, TypeError, OverflowError) as err:
        raise TypeError(
            f"{what} must hold datetimes pandas can represent; converting them failed ({err}); "
            f"convert them yourself with pd.to_datetime({ref}, utc=True)"
        ) from None


def _classify_times(s: pd.Series, what: str, labels: pd.Index, ref: str) -> tuple[str, _Times]:
    """Sort a time column into numeric / datetime / timedelta and convert it canonically.

    Args:
        s: ``(n,)`` times with no missing values (checked by the caller).
        what: How messages name the times (``"time column 'time'"``).
        labels: ``(n,)`` row labels of ``s``, for messages.
        ref: Code naming the times in a suggested fix (``"df['time']"``).

    Returns:
        The kind, and the times as float64 ``(n,)``, a ``DatetimeIndex`` or a
        ``TimedeltaIndex``.
    """
    dtype = s.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        raise TypeError(
            f"{what} must hold numbers, datetimes or timedeltas; found a categorical column; "
            f"convert it, e.g. {ref}.astype(float) or pd.to_datetime({ref}.astype(str))"
        )
    if isinstance(dtype, pd.PeriodDtype):
        raise TypeError(
            f"{what} must hold numbers, datetimes or timedeltas; found periods ({dtype}); "
            f"convert them with {ref}.dt.to_timestamp()"
        )
    if pd.api.types.is_bool_dtype(dtype):
        raise TypeError(
            f"{what} must hold numbers, datetimes or timedeltas; found booleans; "
            "pass the column that holds the times as `time_col`"
        )
    if pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_float_dtype(dtype):
        return "numeric", s.to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime", pd.DatetimeIndex(s)
    if pd.api.types.is_timedelta64_dtype(dtype):
        return "timedelta", pd.TimedeltaIndex(s)
    if pd.api.types.is_object_dtype(dtype):
        inferred = pd.api.types.infer_dtype(s, skipna=True)
        if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
            return "numeric", s.to_numpy(dtype=np.float64)
        if inferred in ("datetime", "datetime64", "date"):
            return "datetime", _object_datetimes(s, what, labels, ref)
        if inferred in ("timedelta", "timedelta64"):
            return "timedelta", pd.TimedeltaIndex(pd.to_timedelta(s))
        _raise_bad_object_times(s, what, labels, ref)
    if pd.api.types.is_string_dtype(dtype):
        _raise_bad_object_times(s, what, labels, ref)
    raise TypeError(
        f"{what} must hold numbers, datetimes or timedeltas; found dtype {dtype}; "
        + _convert_hint(ref)
    )


def _tz_name(index: pd.DatetimeIndex) -> str | None:
    """A name pandas rebuilds the zone of ``index`` from (None when naive)."""
    tz = index.tz
    if tz is None:
        return None
    if isinstance(tz, _dt.timezone):  # fixed offset; its own name ("CET") may mean a real zone
        minutes = int(tz.utcoffset(None).total_seconds()) // 60
        sign = "-" if minutes < 0 else "+"
        return "UTC" if minutes == 0 else f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    path = getattr(tz, "_filename", None)  # dateutil zone files: .../zoneinfo/Europe/Paris
    candidates = [
        getattr(tz, "key", None),  # zoneinfo
        getattr(tz, "zone", None),  # pytz
        path.rpartition("zoneinfo/")[2] if isinstance(path, str) else None,
        "UTC" if tz.utcoffset(None) == _dt.timedelta(0) else None,  # dateutil tzutc()
        str(tz),
    ]
    ends = index[[0, -1]]
    for name in filter(None, candidates):
        try:
            if (ends.tz_convert(name).strftime("%z") == ends.strftime("%z")).all():
                return name
        except Exception:  # pandas raises several types for an unknown zone name
            continue
    raise TypeError(
        f"datetimes must be in a time zone pandas can rebuild from its name; {tz!r} has none; "
        "convert them to a named zone first, e.g. .dt.tz_convert('UTC')"
    )


def _kind_words(kind: str, tz: str | None = None) -> str:
    if kind == "datetime":
        return f"tz-aware datetimes ({tz})" if tz else "tz-naive datetimes"
    return {"numeric": "numbers", "timedelta": "timedeltas"}[kind]


# ----------------------------------------------------------------------------------------------
# LongFormat
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LongFormat:
    """How a user's long frame was laid out, and how to turn float times back into its times.

    Fitted by :func:`frame_to_series` on the training frame and reused for every later frame,
    so all frames share columns, time type, unit and reference.

    Attributes:
        id_col: Name of the series-id column.
        time_col: Name of the time column.
        value_cols: Names of the feature columns, in order.
        time_kind: ``"numeric"``, ``"datetime"`` or ``"timedelta"``.
        time_unit: ``None`` for numeric times; else a pandas unit, one of :data:`TIME_UNITS`.
        time_reference: For datetimes, the ISO-8601 instant that float time 0.0 means (the
            earliest time of the fitted frame); else ``None``.
        tz: The time-zone name of tz-aware datetimes; else ``None``.
    """

    id_col: str
    time_col: str
    value_cols: tuple[str, ...]
    time_kind: TimeKind
    time_unit: str | None
    time_reference: str | None
    tz: str | None

    def __post_init__(self) -> None:
        if isinstance(self.value_cols, str) or not isinstance(self.value_cols, Sequence):
            raise TypeError(
                f"`value_cols` must be a sequence of column names; got {self.value_cols!r}"
            )
        object.__setattr__(self, "value_cols", tuple(self.value_cols))
        _check_columns(self.id_col, self.time_col, self.value_cols)
        check_choice("time_kind", self.time_kind, TIME_KINDS)
        if self.time_kind == "numeric":
            if self.time_unit is not None:
                raise ValueError(
                    "`time_unit` applies only to datetime or timedelta times; got "
                    f"{self.time_unit!r} for numeric times; leave it as None"
                )
        else:
            if self.time_unit is None:
                raise ValueError(
                    f"{self.time_kind} times need a `time_unit`, one of "
                    f"{', '.join(map(repr, TIME_UNITS))}; got None"
                )
            _check_time_unit(self.time_unit)
        if self.time_kind != "datetime":
            if self.time_reference is not None or self.tz is not None:
                raise ValueError(
                    "`time_reference` and `tz` apply only to datetime times; got "
                    f"{self.time_reference!r} and {self.tz!r} for {self.time_kind} times"
                )
            return
        if not isinstance(self.time_reference, str):
            raise ValueError(
                "datetime times need `time_reference`, an ISO-8601 string; "
                f"got {self.time_reference!r}"
            )
        if self.tz is not None and not isinstance(self.tz, str):
            raise TypeError(f"`tz` must be a time-zone name or None; got {self.tz!r}")
        self._reference()  # parses, or raises

    # -- serialisation ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (``value_cols`` as a list); inverse of :meth:`from_dict`."""
        return {
            "id_col": self.id_col,
            "time_col": self.time_col,
            "value_cols": list(self.value_cols),
            "time_kind": self.time_kind,
            "time_unit": self.time_unit,
            "time_reference": self.time_reference,
            "tz": self.tz,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LongFormat:
        """Rebuild a format from :meth:`to_dict` output; unknown or missing keys raise."""
        if not isinstance(d, dict):
            raise TypeError(f"LongFormat.from_dict needs a dict; got {type(d).__name__}")
        expected = [f.name for f in fields(cls)]
        unknown = sorted((k for k in d if k not in expected), key=str)
        missing = [k for k in expected if k not in d]
        if unknown or missing:
            raise ValueError(
                f"LongFormat.from_dict needs exactly the keys {format_choices(expected)}; "
                f"unknown keys: {unknown or 'none'}; missing keys: {missing or 'none'}"
            )
        return cls(**d)

    # -- time conversion -------------------------------------------------------------------

    def _reference(self) -> pd.Timestamp:
        """The instant that float 0.0 means (datetime kind), in this format's zone."""
        try:
            ref = pd.Timestamp(self.time_reference)
        except (ValueError, TypeError):
            ref = pd.NaT
        if ref is pd.NaT:
            raise ValueError(
                f"`time_reference` must be an ISO-8601 datetime string; got {self.time_reference!r}"
            )
        if self.tz is None:
            if ref.tz is not None:
                raise ValueError(
                    f"`time_reference` {self.time_reference!r} has a UTC offset but `tz` is "
                    "None; drop the offset or set `tz`"
                )
            return ref
        try:
            return ref.tz_localize(self.tz) if ref.tz is None else ref.tz_convert(self.tz)
        except Exception:  # pandas raises several types for an unknown zone name
            raise ValueError(
                f"`tz` must be a time-zone name pandas knows; got {self.tz!r}"
            ) from None

    def times_to_float(self, times: pd.Series | pd.Index | np.ndarray | list) -> np.ndarray:
        """User times → float64 in this format's units.

        Used for new frames at predict time and for ``times=`` grids.

        Args:
            times: ``(n,)`` times of this format's kind: numbers; datetimes (tz-aware exactly
                when the fitted times were; any zone then); or timedeltas. A scalar counts as
                ``(1,)``.

        Returns:
            ``(n,)`` float64: the numbers themselves, or ``(t - reference) / Timedelta(1,
            time_unit)``.

        Raises:
            TypeError: times of another kind, or tz-aware vs tz-naive mismatch.
            ValueError: missing (NaN / NaT) or infinite times.
        """
        s = _as_series(times)
        labels = pd.RangeIndex(len(s))
        _check_no_missing(s, "`times`", labels, "drop them")
        kind, canon = _classify_times(s, "`times`", labels, "times")
        return self._to_float(kind, canon, "`times`", labels, "times")

    def _to_float(
        self, kind: str, canon: _Times, what: str, labels: pd.Index, ref: str
    ) -> np.ndarray:
        """Classified times → ``(n,)`` float64; shared by times_to_float and frame_to_series."""
        tz = _tz_name(canon) if kind == "datetime" else None
        if kind != self.time_kind:
            fix = {
                "numeric": f"pd.to_numeric({ref})",
                "datetime": f"pd.to_datetime({ref})",
                "timedelta": f"pd.to_timedelta({ref})",
            }[self.time_kind]
            raise TypeError(
                f"{what} must be {_kind_words(self.time_kind, self.tz)}, like the frame this "
                f"format was fitted on; got {_kind_words(kind, tz)}; convert them with {fix}"
            )
        if kind == "numeric":
            bad = np.flatnonzero(~np.isfinite(canon))
            if bad.size:
                raise ValueError(
                    f"{what} must be finite; found {canon[bad[0]]} at row {_show(labels[bad[0]])} "
                    f"({bad.size} in all); drop those rows"
                )
            return np.asarray(canon, dtype=np.float64)
        unit = pd.Timedelta(1, unit=self.time_unit)
        if kind == "timedelta":
            return np.asarray(canon / unit, dtype=np.float64)
        if (tz is None) != (self.tz is None):
            fix = (
                f"localize them with {ref}.dt.tz_localize({self.tz!r})"
                if tz is None
                else f"make them naive with {ref}.dt.tz_localize(None)"
            )
            raise TypeError(
                f"{what} must be {_kind_words('datetime', self.tz)}, like the frame this "
                f"format was fitted on; got {_kind_words('datetime', tz)}; {fix}"
            )
        return np.asarray((canon - self._reference()) / unit, dtype=np.float64)

    def float_to_times(self, x: np.ndarray | Sequence[float]) -> pd.Series | np.ndarray:
        """Float64 times in this format's units → the user's times; inverse of times_to_float.

        Args:
            x: ``(n,)`` finite floats (a scalar counts as ``(1,)``).

        Returns:
            ``(n,)``: a float64 ndarray for numeric times; else a ``pd.Series`` with a
            ``RangeIndex`` of ``datetime64[ns]`` (in ``tz`` when the format has one) or
            ``timedelta64[ns]``, rounded to the nearest nanosecond.
        """
        x = np.atleast_1d(np.asarray(x, dtype=np.float64))
        if x.ndim != 1:
            raise ValueError(f"`x` must be 1-D float times; got shape {x.shape}")
        bad = np.flatnonzero(~np.isfinite(x))
        if bad.size:
            raise ValueError(
                f"`x` must hold finite float times; found {x[bad[0]]} at position "
                f"{int(bad[0])} ({bad.size} in all)"
            )
        if self.time_kind == "numeric":
            return x.copy()
        ns = x * _NS_PER_UNIT[self.time_unit]
        if x.size and np.abs(ns).max() >= 2.0**63:
            raise ValueError(
                "`x` must lie within ±292 years of the reference (nanoseconds in int64); got "
                f"{x[np.argmax(np.abs(ns))]} {self.time_unit}"
            )
        delta = pd.TimedeltaIndex(np.round(ns).astype(np.int64).astype("m8[ns]"))
        if self.time_kind == "timedelta":
            return pd.Series(delta)
        try:
            return pd.Series(self._reference() + delta)
        except (OverflowError, pd.errors.OutOfBoundsDatetime):
            raise ValueError(
                "`x` must map to datetimes pandas can represent (years 1677-2262 in "
                f"nanoseconds); reference {self.time_reference}, unit {self.time_unit!r}"
            ) from None


def _as_series(times: Any) -> pd.Series:
    """A 0-D/1-D array-like of times → a ``pd.Series`` with a ``RangeIndex``."""
    if isinstance(times, pd.DataFrame):
        raise TypeError("`times` must be 1-D; got a DataFrame; pass one column")
    if isinstance(times, pd.Series | pd.Index):
        return pd.Series(times).reset_index(drop=True)
    if np.ndim(times) == 0:
        times = [times]
    elif np.ndim(times) != 1:
        raise ValueError(f"`times` must be 1-D; got shape {np.shape(times)}")
    return pd.Series(times)


# ----------------------------------------------------------------------------------------------
# Column checks
# ----------------------------------------------------------------------------------------------


def _check_columns(id_col: Any, time_col: Any, value_cols: tuple[Any, ...]) -> None:
    """Names are strings, distinct, and the three roles do not overlap."""
    for name, value in (("id_col", id_col), ("time_col", time_col)):
        if not isinstance(value, str):
            raise TypeError(
                f"`{name}` must be a column name (str); got {value!r} ({type(value).__name__}); "
                "rename the columns with df.rename(columns=str)"
            )
    if id_col == time_col:
        raise ValueError(f"`id_col` and `time_col` must be different columns; both are {id_col!r}")
    if len(value_cols) == 0:
        raise ValueError("`value_cols` must name at least one feature column; got none")
    for c in value_cols:
        if not isinstance(c, str):
            raise TypeError(
                f"`value_cols` must hold column names (str); got {c!r} ({type(c).__name__}); "
                "rename the columns with df.rename(columns=str)"
            )
    dups = sorted({c for c in value_cols if value_cols.count(c) > 1})
    if dups:
        raise ValueError(f"`value_cols` must name each column once; {_list_labels(dups)} repeated")
    for role, name in (("id", id_col), ("time", time_col)):
        if name in value_cols:
            raise ValueError(f"`value_cols` must not include the {role} column {name!r}; remove it")


def _check_frame(df: Any) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"`df` must be a pandas DataFrame; got {type(df).__name__}")
    if isinstance(df.columns, pd.MultiIndex):
        raise ValueError(
            "`df` must have flat column names; found a MultiIndex on the columns; flatten it, "
            "e.g. df.columns = ['_'.join(map(str, c)) for c in df.columns]"
        )
    if df.columns.has_duplicates:
        dups = df.columns[df.columns.duplicated()].unique().tolist()
        raise ValueError(
            f"`df` must have unique column names; {_list_labels(dups)} appear more than once; "
            "rename or drop the duplicates"
        )
    if len(df) == 0:
        raise ValueError(
            "`df` must have at least one row; got an empty frame. Check the filter or the "
            "file that produced it"
        )


def _value_cols_tuple(value_cols: Sequence[str]) -> tuple[str, ...]:
    if isinstance(value_cols, str):
        raise TypeError(
            "`value_cols` must be a sequence of column names, not a string; "
            f"did you mean value_cols=[{value_cols!r}]?"
        )
    return tuple(value_cols)


def _resolve_columns(
    df: pd.DataFrame, id_col: str, time_col: str, value_cols: Sequence[str] | None
) -> tuple[str, ...]:
    available = list(df.columns)
    if value_cols is None:
        value_cols = tuple(c for c in available if c not in (id_col, time_col))
        if not value_cols:
            raise ValueError(
                f"`df` must have at least one feature column besides {id_col!r} and "
                f"{time_col!r}; found only the columns {available}"
            )
    value_cols = _value_cols_tuple(value_cols)
    _check_columns(id_col, time_col, value_cols)
    missing = [c for c in (id_col, time_col, *value_cols) if c not in df.columns]
    if missing:
        raise ValueError(
            f"`df` must have the column(s) {_list_labels(missing)}; not found among the "
            f"available columns {available}; pass id_col=, time_col= or value_cols= to name yours"
        )
    return value_cols


def _feature_matrix(df: pd.DataFrame, value_cols: tuple[str, ...]) -> np.ndarray:
    """Feature columns → ``(n_rows, n_features)`` float64, NaN where not observed."""
    out = np.empty((len(df), len(value_cols)), dtype=np.float64)  # (rows, features)
    for j, c in enumerate(value_cols):
        col = df[c]
        dtype = col.dtype
        numeric = not isinstance(dtype, pd.CategoricalDtype) and (
            pd.api.types.is_bool_dtype(dtype)
            or pd.api.types.is_integer_dtype(dtype)
            or pd.api.types.is_float_dtype(dtype)
        )
        if not numeric and pd.api.types.is_object_dtype(dtype):  # e.g. floats and None
            inferred = pd.api.types.infer_dtype(col, skipna=True)
            numeric = inferred in ("integer", "floating", "mixed-integer-float", "boolean", "empty")
        if not numeric:
            _raise_non_numeric(col, c, df.index)
        out[:, j] = col.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def _raise_non_numeric(col: pd.Series, name: str, labels: pd.Index) -> None:
    if isinstance(col.dtype, pd.CategoricalDtype):
        found = "a categorical column"
        fix = (
            f"encode it as numbers, e.g. pd.get_dummies(df, columns=[{name!r}], dtype=float), "
            "or leave it out of value_cols"
        )
    else:
        found = f"dtype {col.dtype}"
        fix = (
            f"convert it with pd.to_numeric(df[{name!r}], errors='coerce') (what does not "
            "parse becomes NaN, i.e. unobserved), or leave it out of value_cols"
        )
    present = np.flatnonzero(col.notna().to_numpy())
    if pd.api.types.is_object_dtype(col.dtype):  # point at a value that is not a number
        present = present[[_value_kind(v) not in ("number", "bool") for v in col.iloc[present]]]
    if present.size:
        i = int(present[0])
        found += (
            f", e.g. {_show(col.iloc[i])} ({type(col.iloc[i]).__name__}) at row {_show(labels[i])}"
        )
    raise TypeError(f"feature column {name!r} must hold numbers or booleans; found {found}; {fix}")


# ----------------------------------------------------------------------------------------------
# Frame → series
# ----------------------------------------------------------------------------------------------


def _sort_order(codes: np.ndarray, times: np.ndarray, n_ids: int) -> np.ndarray:
    """Row order sorting by (id code, time): ``(rows,)`` int.

    Equal to a stable lexsort whenever no (id, time) pair repeats (repeats are refused right
    after), and several times faster: an unstable sort by time, then a stable (radix, for
    < 2**15 ids) sort by code. Frames already in order cost one pass.
    """
    if codes.size > 1:
        step = np.diff(codes)
        if (step >= 0).all() and ((step > 0) | (np.diff(times) >= 0)).all():
            return np.arange(codes.size)
    small = np.int16 if n_ids < 2**15 else np.int32 if n_ids < 2**31 else np.int64
    by_time = np.argsort(times)
    return by_time[np.argsort(codes[by_time].astype(small), kind="stable")]


def frame_to_series(
    df: pd.DataFrame,
    *,
    id_col: str = "id",
    time_col: str = "time",
    value_cols: Sequence[str] | None = None,
    time_unit: str | None = None,
    fmt: LongFormat | None = None,
) -> tuple[list[Series], LongFormat]:
    """Check a long frame and split it into one sorted :class:`Series` per id.

    Args:
        df: One row per observation time of one series: an id column, a time column and one
            column per feature (NaN = not observed). Other columns are ignored when
            ``value_cols`` is given.
        id_col: Name of the id column (any hashable values, categorical included).
        time_col: Name of the time column: numbers, datetimes (naive or tz-aware) or
            timedeltas.
        value_cols: Feature columns, in order. Default: every column but id and time, in
            frame order.
        time_unit: Required for datetime and timedelta times, refused for numeric ones: the
            unit of the float times, one of :data:`TIME_UNITS`.
        fmt: A fitted format (for a frame arriving at predict time). Its columns, time kind,
            unit, reference and zone are used; ``id_col``, ``time_col``, ``value_cols`` and
            ``time_unit`` must then be left at their defaults or equal ``fmt``'s.

    Returns:
        ``(series, fmt)``: the series in order of each id's first appearance in ``df``, each
        sorted by time, with ``times`` ``(n_obs,)`` float64 in user units, ``values``
        ``(n_obs, n_features)`` float64 (0.0 where missing) and ``mask`` ``(n_obs,
        n_features)`` bool (True = observed); and the format (``fmt`` itself when given).

    Raises:
        TypeError: ``df`` is not a DataFrame; non-numeric features; times that are not
            numbers, datetimes or timedeltas, are mixed, or are of another kind than ``fmt``'s.
        ValueError: missing, clashing or repeated columns; an empty frame; missing ids or
            times; infinite values; duplicate (id, time) pairs; a series with nothing
            observed; a missing or invalid ``time_unit``.
    """
    # -- check ------------------------------------------------------------------------------
    _check_frame(df)
    if fmt is not None:
        if not isinstance(fmt, LongFormat):
            raise TypeError(f"`fmt` must be a LongFormat or None; got {type(fmt).__name__}")
        given = {
            "id_col": (id_col, "id"),
            "time_col": (time_col, "time"),
            "value_cols": (None if value_cols is None else _value_cols_tuple(value_cols), None),
            "time_unit": (time_unit, None),
        }
        for name, (value, default) in given.items():
            if value != default and value != getattr(fmt, name):
                raise ValueError(
                    f"`{name}` must be left out when `fmt` is given, or equal fmt.{name} "
                    f"({getattr(fmt, name)!r}); got {value!r}"
                )
        id_col, time_col, value_cols = fmt.id_col, fmt.time_col, fmt.value_cols
    elif time_unit is not None:
        _check_time_unit(time_unit)
    value_cols = _resolve_columns(df, id_col, time_col, value_cols)
    labels = df.index
    ids, t = df[id_col], df[time_col]
    _check_no_missing(
        ids, f"id column {id_col!r}", labels, f"drop those rows: df.dropna(subset=[{id_col!r}])"
    )
    what, ref = f"time column {time_col!r}", f"df[{time_col!r}]"
    _check_no_missing(t, what, labels, f"drop those rows: df.dropna(subset=[{time_col!r}])")

    # -- dispatch: classify the times; fit a format unless one is given ----------------------
    kind, canon = _classify_times(t, what, labels, ref)
    if fmt is None:
        fmt = _fit_format(kind, canon, id_col, time_col, value_cols, time_unit)
    times = fmt._to_float(kind, canon, what, labels, ref)  # (rows,)
    values = _feature_matrix(df, value_cols)  # (rows, features), NaN = unobserved
    try:
        codes, uniques = pd.factorize(ids, sort=False)  # codes in first-appearance order
    except TypeError as err:
        raise TypeError(f"id column {id_col!r} must hold hashable values; {err}") from None
    id_values: list[Hashable] = uniques.tolist()
    inf = np.isinf(values)
    if inf.any():
        row, j = np.argwhere(inf)[0]
        raise ValueError(
            f"feature column {value_cols[j]!r} must be finite or NaN; found {values[row, j]} "
            f"for series {_show(id_values[codes[row]])} at row {_show(labels[row])} "
            f"({int(inf[:, j].sum())} in that column); replace them with NaN, e.g. "
            "df.replace([np.inf, -np.inf], np.nan)"
        )

    # -- compute: one sort by (id code, time), then split at the id boundaries ---------------
    order = _sort_order(codes, times, len(id_values))  # (rows,)
    codes_s, times_s = codes[order], times[order]
    same = (codes_s[1:] == codes_s[:-1]) & (times_s[1:] == times_s[:-1])  # (rows - 1,)
    if same.any():
        k = int(np.argmax(same))
        r0, r1 = sorted((int(order[k]), int(order[k + 1])))
        raise ValueError(
            f"each series must have one row per time; series {_show(id_values[codes_s[k]])} has "
            f"several rows at time {_show(t.iloc[r0])} "
            f"(rows {_show(labels[r0])} and {_show(labels[r1])}; "
            f"{int(same.sum())} repeated (id, time) pairs in all); aggregate them, e.g. "
            f"df.groupby([{id_col!r}, {time_col!r}], as_index=False).mean()"
        )
    values_s = values[order]  # (rows, features)
    mask_s = ~np.isnan(values_s)  # (rows, features)
    values_s[~mask_s] = 0.0
    starts = np.flatnonzero(np.diff(codes_s, prepend=-1))  # (n_ids,) first row of each series
    observed = np.logical_or.reduceat(mask_s.any(axis=1), starts)  # (n_ids,)
    if not observed.all():
        empty = [id_values[i] for i in np.flatnonzero(~observed)]
        raise ValueError(
            f"each series must have at least one observed value; series {_list_labels(empty)} "
            f"have none (all of {list(value_cols)} are NaN); drop them, e.g. "
            f"df = df[~df[{id_col!r}].isin(empty_ids)]"
        )

    # -- format ------------------------------------------------------------------------------
    cuts = starts[1:]
    series = [
        Series(id=i, times=tt, values=vv, mask=mm)
        for i, tt, vv, mm in zip(
            id_values,
            np.split(times_s, cuts),
            np.split(values_s, cuts),
            np.split(mask_s, cuts),
            strict=True,
        )
    ]
    return series, fmt


def _fit_format(
    kind: str,
    canon: _Times,
    id_col: str,
    time_col: str,
    value_cols: tuple[str, ...],
    time_unit: str | None,
) -> LongFormat:
    """Learn the time kind, zone and reference of a training frame's time column."""
    if kind == "numeric" and time_unit is not None:
        raise ValueError(
            f"time_unit applies only to datetime or timedelta times; time column {time_col!r} "
            f"holds numbers, got time_unit={time_unit!r}; leave time_unit as None (numeric "
            "times are used as they are)"
        )
    if kind != "numeric" and time_unit is None:
        raise ValueError(
            f"time column {time_col!r} holds {kind}s, which need a unit for the float times; "
            f"got time_unit=None; pass time_unit='h' (or one of "
            f"{', '.join(map(repr, TIME_UNITS))})"
        )
    reference = tz = None
    if kind == "datetime":
        tz = _tz_name(canon)
        reference = canon.min().isoformat()
    return LongFormat(
        id_col=id_col,
        time_col=time_col,
        value_cols=value_cols,
        time_kind=kind,
        time_unit=time_unit,
        time_reference=reference,
        tz=tz,
    )


# ----------------------------------------------------------------------------------------------
# Series / arrays → frame
# ----------------------------------------------------------------------------------------------


def _long_frame(
    ids: Sequence[Hashable],
    counts: np.ndarray,
    times: np.ndarray,
    values: np.ndarray,
    mask: np.ndarray | None,
    fmt: LongFormat,
    value_cols: tuple[str, ...],
) -> pd.DataFrame:
    """Flat rows → the user's long frame; the one place output frames are assembled.

    Args:
        ids: ``(B,)`` one id per series.
        counts: ``(B,)`` rows per series; rows come grouped by series, in ``ids`` order.
        times: ``(rows,)`` float64 in user units.
        values: ``(rows, F)`` float64.
        mask: ``(rows, F)`` bool, False → NaN; None = all observed.
        fmt: Names the id and time columns and converts the times.
        value_cols: ``F`` feature column names.
    """
    if mask is not None:
        values = np.where(mask, values, np.nan)  # (rows, F)
    id_column = pd.Series(list(ids)).take(np.repeat(np.arange(len(ids)), counts))  # (rows,)
    user_times = fmt.float_to_times(times)  # (rows,)
    if isinstance(user_times, pd.Series):
        user_times = user_times.array
    columns: dict[str, Any] = {fmt.id_col: id_column.array, fmt.time_col: user_times}
    for j, c in enumerate(value_cols):
        columns[c] = values[:, j]
    # the arrays are the caller's fresh ones: the frame takes them without another copy
    return pd.DataFrame(columns, index=pd.RangeIndex(len(times)), copy=False)


def rows_to_frame(
    ids: Sequence[Hashable],
    counts: np.ndarray,
    times: np.ndarray,
    values: np.ndarray,
    fmt: LongFormat,
    *,
    value_cols: Sequence[str],
) -> pd.DataFrame:
    """Rows already flat and grouped by series → the user's long frame, without a copy.

    For results filled block by block into arrays allocated once: the frame's value columns
    are views of ``values``' columns (give it Fortran order for contiguous columns), so the
    answer is not held twice while the frame is built.

    Args:
        ids: ``(B,)`` one id per series.
        counts: ``(B,)`` rows of each series; the rows come grouped by series, in ``ids`` order.
        times: ``(rows,)`` float64 times in user units.
        values: ``(rows, F)`` float64.
        fmt: The format of the user's frame.
        value_cols: The ``F`` column names.

    Returns:
        Columns ``[id_col, time_col, *value_cols]`` with a fresh ``RangeIndex``.
    """
    value_cols = _value_cols_tuple(value_cols)
    _check_columns(fmt.id_col, fmt.time_col, value_cols)
    counts = np.asarray(counts, dtype=np.int64)
    rows = int(counts.sum())
    if len(counts) != len(ids) or times.shape != (rows,) or values.shape != (rows, len(value_cols)):
        raise ValueError(
            f"rows_to_frame needs len(counts) == len(ids) ({len(counts)} vs {len(ids)}), "
            f"times ({rows},) and values ({rows}, {len(value_cols)}); got {times.shape} and "
            f"{values.shape}"
        )
    return _long_frame(ids, counts, times, values, None, fmt, value_cols)


def series_to_frame(series: Sequence[Series], fmt: LongFormat) -> pd.DataFrame:
    """Series → the user's long frame; inverse of :func:`frame_to_series`.

    Args:
        series: Series whose features are ``fmt.value_cols``.
        fmt: The format the series came from.

    Returns:
        Columns ``[id_col, time_col, *value_cols]``, one row per series time, rows in series
        order then each series' own (time) order, NaN where ``mask`` is False, times converted
        with :meth:`LongFormat.float_to_times`, a fresh ``RangeIndex``.
    """
    if not isinstance(fmt, LongFormat):
        raise TypeError(f"`fmt` must be a LongFormat; got {type(fmt).__name__}")
    series = list(series)
    if not series:
        raise ValueError("`series` must hold at least one Series; got none")
    n_features = len(fmt.value_cols)
    for s in series:
        if not isinstance(s, Series):
            raise TypeError(f"`series` must hold Series; got {type(s).__name__}")
        if s.n_features != n_features:
            raise ValueError(
                f"every series must have {n_features} features ({list(fmt.value_cols)}); "
                f"series {_show(s.id)} has {s.n_features}"
            )
    return _long_frame(
        [s.id for s in series],
        np.array([s.n_obs for s in series], dtype=np.int64),  # (B,)
        np.concatenate([s.times for s in series]).astype(np.float64),  # (rows,)
        np.concatenate([s.values for s in series]).astype(np.float64),  # (rows, F)
        np.concatenate([s.mask for s in series]).astype(bool),  # (rows, F)
        fmt,
        fmt.value_cols,
    )


def arrays_to_frame(
    ids: Sequence[Hashable],
    times: np.ndarray,
    values: np.ndarray,
    fmt: LongFormat,
    *,
    lengths: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    value_cols: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Padded arrays (e.g. model outputs) → the user's long frame.

    Args:
        ids: ``(B,)`` the id of each row of the arrays.
        times: ``(B, N)`` float64 times in user units (as in :class:`Series`).
        values: ``(B, N, F)`` values.
        fmt: The format of the user's frame.
        lengths: ``(B,)`` ints in ``[0, N]``; positions ``>= lengths[b]`` are padding and
            dropped. Default: keep all ``N`` positions.
        mask: ``(B, N, F)`` bool; False becomes NaN. Default: all observed.
        value_cols: The ``F`` output feature names (e.g. ``["x_mean"]``). Default
            ``fmt.value_cols``.

    Returns:
        Columns ``[id_col, time_col, *value_cols]``; rows in series order then position order
        (padding dropped; times are not re-sorted); a fresh ``RangeIndex``.
    """
    if not isinstance(fmt, LongFormat):
        raise TypeError(f"`fmt` must be a LongFormat; got {type(fmt).__name__}")
    if value_cols is None:
        value_cols = fmt.value_cols
    else:
        value_cols = _value_cols_tuple(value_cols)
        _check_columns(fmt.id_col, fmt.time_col, value_cols)
    ids = list(ids)
    times = np.asarray(times, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    b = len(ids)
    if times.ndim != 2 or times.shape[0] != b:
        raise ValueError(
            f"`times` must have shape (B, N) with B = len(ids) = {b}; got {times.shape}"
        )
    n, f = times.shape[1], len(value_cols)
    if values.shape != (b, n, f):
        raise ValueError(
            f"`values` must have shape (B, N, F) = {(b, n, f)} (F = number of value columns); "
            f"got {values.shape}"
        )
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != values.shape:
            raise ValueError(
                f"`mask` must have the shape of `values` {values.shape}; got {mask.shape}"
            )
        mask = mask.astype(bool)
    if lengths is None:
        lengths = np.full(b, n, dtype=np.int64)
    else:
        lengths = np.asarray(lengths)
        if lengths.shape != (b,) or not np.issubdtype(lengths.dtype, np.integer):
            raise ValueError(
                f"`lengths` must be {b} integers, one per series; got shape {lengths.shape} "
                f"and dtype {lengths.dtype}"
            )
        if b and (lengths.min() < 0 or lengths.max() > n):
            raise ValueError(f"`lengths` must lie in [0, N={n}]; got {lengths.tolist()}")
    keep = np.arange(n)[None, :] < lengths[:, None]  # (B, N)
    bad = keep & ~np.isfinite(times)
    if bad.any():
        i, k = np.argwhere(bad)[0]
        raise ValueError(
            f"`times` must be finite at kept positions (< lengths); series {_show(ids[i])} has "
            f"{times[i, k]} at position {k}; pass `lengths` to drop padding"
        )
    return _long_frame(
        ids,
        lengths,
        times[keep],  # (rows,)
        values[keep],  # (rows, F)
        None if mask is None else mask[keep],  # (rows, F)
        fmt,
        value_cols,
    )
