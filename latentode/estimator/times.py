"""Times in a request: grids, frames of (id, time) pairs, horizons, and plain numbers.

One rule for plain numbers: they are amounts of the model's ``time_unit``. A timedelta model's
axis has a zero, so a number is the duration itself; a datetime model's has none, so it counts
from each series' first observation (as ``horizon`` counts from its last); a prior draw's
times count from the new series' start.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd

from latentode._validation import check_int
from latentode.data import IrregularDataset, LongFormat
from latentode.data.covariates import check_known_until, show_time

__all__ = [
    "HORIZON_POINTS",
    "horizon_in_units",
    "numbers_to_float",
    "one_time",
    "plain_numbers",
    "prior_offsets",
    "target_times",
    "window_edge",
]

HORIZON_POINTS = 20  # times per series that `horizon=` asks for, by default
_MAX_HORIZON_POINTS = 100_000


def target_times(
    fmt: LongFormat,
    ds: IrregularDataset,
    times: Any,
    horizon: Any,
    horizon_points: int = HORIZON_POINTS,
) -> list[np.ndarray]:
    """Per series, the user-unit float times to predict at.

    With known inputs, every series' times must lie where its inputs are known.
    """
    out = _target_times(fmt, ds, times, horizon, horizon_points)
    if ds.covariates is not None:
        check_inputs_cover(
            ds,
            [t.min(initial=np.inf) for t in out],
            [t.max(initial=-np.inf) for t in out],
            "the requested times",
        )
    return out


def check_inputs_cover(ds: IrregularDataset, lo, hi, what: str) -> None:
    """Refuse times outside where each series' inputs are known (``lo``, ``hi`` per series)."""
    if ds.covariates is None or ds.covariate_schema is None or not ds.covariate_schema.has_inputs:
        return
    check_known_until(ds.covariates, ds.ids, np.asarray(hi, dtype=np.float64), ds.fmt, what)
    for c, sid, t in zip(ds.covariates, ds.ids, lo, strict=True):
        if np.isfinite(t) and t < c.times[0]:
            first, asked = show_time(ds.fmt, c.times[0]), show_time(ds.fmt, t)
            raise ValueError(
                f"the inputs of series {sid!r} start at {first}, but {what} reach back to "
                f"{asked}; inputs must be known over the whole window: add a row at or "
                f"before {asked} to the inputs frame"
            )


def _target_times(
    fmt: LongFormat,
    ds: IrregularDataset,
    times: Any,
    horizon: Any,
    horizon_points: int,
) -> list[np.ndarray]:
    if times is not None and horizon is not None:
        raise ValueError("give `times` or `horizon`, not both")
    n_points = check_int("horizon_points", horizon_points, minimum=1)
    if n_points > _MAX_HORIZON_POINTS:
        raise ValueError(
            f"`horizon_points` must be at most {_MAX_HORIZON_POINTS:,}; got {n_points:,}. "
            "For a finer grid, pass the times themselves (`times=`)"
        )
    if horizon is not None:
        step = horizon_in_units(fmt, horizon)
        grid = np.linspace(0.0, step, n_points + 1)[1:]  # evenly spaced past the end
        return [s.times[-1] + grid for s in ds.series]
    if times is None:
        return [s.times for s in ds.series]
    if isinstance(times, pd.DataFrame):
        for col in (fmt.id_col, fmt.time_col):
            if col not in times.columns:
                raise ValueError(
                    f"a `times` frame needs columns {fmt.id_col!r} and {fmt.time_col!r}; "
                    f"{col!r} is missing"
                )
        known = {sid: i for i, sid in enumerate(ds.ids)}
        unknown = [i for i in pd.unique(times[fmt.id_col]) if i not in known]
        if unknown:
            raise ValueError(
                f"`times` names series {unknown[:5]} that are not in `df`; every series to "
                "predict needs its observations in `df`"
            )
        numbers = plain_numbers(times[fmt.time_col])
        if numbers is not None and fmt.time_kind != "numeric":
            floats = numbers_to_float(fmt, numbers, ds, [known[i] for i in times[fmt.id_col]])
        else:
            floats = fmt.times_to_float(times[fmt.time_col])
        out: list[list[float]] = [[] for _ in ds.series]
        for sid, t in zip(times[fmt.id_col], floats, strict=True):
            out[known[sid]].append(float(t))
        return [np.unique(np.asarray(t, dtype=np.float64)) for t in out]
    if isinstance(times, str | bytes) or np.isscalar(times):
        raise TypeError(
            "`times` must be an array-like of times or a DataFrame of (id, time) pairs; "
            f"got {type(times).__name__}"
        )
    numbers = plain_numbers(times)
    if numbers is not None and fmt.time_kind == "datetime":
        if numbers.size == 0:
            raise ValueError("`times` is empty; give at least one time")
        numbers_to_float(fmt, numbers, ds, [0] * numbers.size)  # checks them
        grid = np.unique(numbers)
        return [s.times[0] + grid for s in ds.series]
    try:
        if numbers is not None and fmt.time_kind == "timedelta":
            floats = numbers_to_float(fmt, numbers, ds, [0] * numbers.size)
        else:
            floats = fmt.times_to_float(times)
    except (TypeError, ValueError) as err:
        raise type(err)(f"bad `times`: {err}") from None
    if floats.size == 0:
        raise ValueError("`times` is empty; give at least one time")
    grid = np.unique(floats)
    return [grid for _ in ds.series]


def numbers_to_float(
    fmt: LongFormat, numbers: np.ndarray, ds: IrregularDataset, rows: Sequence[int]
) -> np.ndarray:
    """Plain numbers given to a datetime or timedelta model → float user-unit times.

    One rule: a number is an amount of the model's ``time_unit``. A timedelta model's
    axis has a zero, so it is the duration itself; a datetime model's has none, so it
    counts from the first observation of the series at ``rows`` (as ``horizon`` counts
    from the last).
    """
    if not np.isfinite(numbers).all():
        raise ValueError("`times` must be finite; found NaN or inf")
    if fmt.time_kind == "timedelta":
        return numbers.astype(np.float64)
    firsts = np.array([ds.series[i].times[0] for i in rows], dtype=np.float64)
    return firsts + numbers


def horizon_in_units(fmt: LongFormat, horizon: Any) -> float:
    if isinstance(horizon, pd.Timedelta | np.timedelta64):
        if fmt.time_kind == "numeric":
            raise TypeError("`horizon` must be a number for numeric times; got a timedelta")
        value = pd.Timedelta(horizon) / pd.Timedelta(1, unit=fmt.time_unit)
    elif isinstance(horizon, Real) and not isinstance(horizon, bool):
        value = float(horizon)
    else:
        raise TypeError(
            f"`horizon` must be a positive number (in the model's time unit) or a "
            f"timedelta; got {horizon!r}"
        )
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"`horizon` must be finite and > 0; got {horizon!r}")
    return value


def prior_offsets(fmt: LongFormat, times: Any) -> np.ndarray:
    if times is None or isinstance(times, str | bytes | pd.DataFrame) or np.isscalar(times):
        raise TypeError(
            "`times` for prior samples must be an array-like of times since the start of a "
            f"series; got {type(times).__name__}"
        )
    numbers = plain_numbers(times)
    if numbers is not None:  # in the model's time unit, whatever its kind of time
        offsets = numbers
    elif fmt.time_kind == "numeric":
        arr = np.asarray(times)
        if not np.issubdtype(arr.dtype, np.number) or arr.ndim != 1:
            raise TypeError(
                "`times` for prior samples must be a 1-D array of numbers (time since the "
                f"series' start); got dtype {arr.dtype} and shape {arr.shape}"
            )
        offsets = arr.astype(np.float64)
    else:
        if any(isinstance(v, Real) and not isinstance(v, bool) for v in list(times)):
            raise TypeError(
                "`times` for prior samples mixes plain numbers with other times; give all "
                f"numbers (in the model's time unit, {fmt.time_unit!r}) or all timedeltas"
            )
        try:
            deltas = pd.to_timedelta(pd.Series(list(times)))
        except (TypeError, ValueError) as err:
            raise TypeError(
                "`times` for prior samples must be numbers (in the model's time unit, "
                f"{fmt.time_unit!r}) or timedeltas since the series' start; {err}"
            ) from None
        offsets = np.asarray(deltas / pd.Timedelta(1, unit=fmt.time_unit), dtype=np.float64)
    if offsets.size == 0:
        raise ValueError("`times` is empty; give at least one time")
    if not np.isfinite(offsets).all():
        raise ValueError("`times` must be finite; found NaN or inf")
    return np.unique(offsets)


def window_edge(fmt: LongFormat, value: Any, name: str, ds: IrregularDataset) -> np.ndarray:
    """``(n_series,)`` float user times of one window edge given for every series.

    A plain number is in the model's time unit (for datetimes, since each series' first
    observation); a datetime or timedelta is used as it is.
    """
    numbers = plain_numbers(value) if np.isscalar(value) else None
    if numbers is not None and fmt.time_kind != "numeric":
        try:
            return numbers_to_float(fmt, np.repeat(numbers, len(ds)), ds, range(len(ds)))
        except ValueError as err:
            raise ValueError(f"bad `{name}`: {err}") from None
    return np.full(len(ds), one_time(fmt, value, name))


def one_time(fmt: LongFormat, value: Any, name: str) -> float:
    """One user time (number, datetime or timedelta as in training) → float user units."""
    try:
        floats = fmt.times_to_float([value])
    except (TypeError, ValueError) as err:
        raise type(err)(f"bad `{name}`: {err}") from None
    return float(floats[0])


def plain_numbers(values: Any) -> np.ndarray | None:
    """``values`` as a 1-D float64 array when they are plain real numbers (not bools, not
    datetimes or timedeltas, not text); else None."""
    if isinstance(values, str | bytes) or (np.isscalar(values) and not isinstance(values, Real)):
        return None
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError):
        return None
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.dtype == object and arr.size:
        if not all(isinstance(v, Real) and not isinstance(v, bool) for v in arr.ravel()):
            return None
        arr = arr.astype(np.float64)
    if arr.ndim != 1 or arr.dtype.kind not in "iuf":
        return None
    return arr.astype(np.float64)
