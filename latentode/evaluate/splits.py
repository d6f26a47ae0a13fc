"""Series-aware splits of a long frame: hide points inside each series, at its end, or whole series.

A *point* is a row with at least one observed feature; rows whose features are all NaN carry
nothing to condition on or to score, so the point splits drop them. Context and target keep
the frame's columns and dtypes (ids and datetimes untouched), sorted by ``(id, time)`` with a
fresh ``RangeIndex``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from latentode._validation import check_int, check_real
from latentode.evaluate._frame import (
    check_frame,
    check_ids,
    feature_values,
    float_times,
    read_long,
    show,
)

__all__ = ["Holdout", "holdout_interior", "holdout_last", "holdout_series"]


@dataclass(frozen=True)
class Holdout:
    """A split of a long frame into what a method sees and what it is scored on.

    Attributes:
        context: Rows given to the model or baseline to condition on.
        target: Held-out rows with their true values; each series in it also has context.
    """

    context: pd.DataFrame
    target: pd.DataFrame


@dataclass(frozen=True)
class _Points:
    """Observed rows sorted by (id, time); series ``s`` is rows ``starts[s]:ends[s]``."""

    df: pd.DataFrame
    times: np.ndarray  # (n,) float64, one origin for the frame
    starts: np.ndarray  # (n_series,)
    ends: np.ndarray  # (n_series,)


def _points(
    df: Any, id_col: Hashable, time_col: Hashable, value_cols: Sequence[Hashable] | None
) -> _Points:
    frame = read_long(df, "df", id_col=id_col, time_col=time_col, value_cols=value_cols)
    observed = ~np.isnan(feature_values(df, frame.layout.value_cols)).all(axis=1)
    codes, _ = pd.factorize(df[id_col], sort=True)  # sorted ids → codes in id order
    (times,) = float_times(frame.keys)
    rows = np.flatnonzero(observed)
    order = rows[np.lexsort((times[rows], codes[rows]))]
    cuts = np.flatnonzero(np.diff(codes[order])) + 1
    edges = np.concatenate([[0], cuts, [order.size]]) if order.size else np.zeros(1, np.int64)
    return _Points(
        df=df.iloc[order].reset_index(drop=True),
        times=times[order],
        starts=edges[:-1],
        ends=edges[1:],
    )


def _split(points: _Points, is_target: np.ndarray, why: str) -> Holdout:
    if not is_target.any():
        raise ValueError(f"`df` yields no target points: {why}")
    return Holdout(
        context=points.df[~is_target].reset_index(drop=True),
        target=points.df[is_target].reset_index(drop=True),
    )


def _check_fraction(value: Any) -> float:
    fraction = check_real("fraction", value)
    if not 0.0 < fraction < 1.0:
        raise ValueError(
            f"`fraction` must be in (0, 1), the share to hold out; got {value!r} "
            "(for a quarter, pass 0.25)"
        )
    return fraction


def _rng(random_state: Any) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator) or random_state is None:
        return np.random.default_rng(random_state)
    return np.random.default_rng(check_int("random_state", random_state, minimum=0))


def holdout_interior(
    df: pd.DataFrame,
    fraction: float = 0.25,
    *,
    random_state: int | np.random.Generator | None = 0,
    id_col: Hashable = "id",
    time_col: Hashable = "time",
    value_cols: Sequence[Hashable] | None = None,
) -> Holdout:
    """Hide random interior points of each series: an interpolation task.

    The interior points of a series are those strictly between its first and last point. Of
    ``n`` interior points, ``min(n, max(1, round(fraction * n)))`` become targets, chosen by
    ``numpy.random.default_rng(random_state)`` visiting series in sorted id order. Series with
    fewer than 3 points stay whole in the context.

    Args:
        df: Long frame; one row per (id, time), NaN = not observed.
        fraction: Share of each series' interior points to hide, in (0, 1).
        random_state: Seed (or Generator) of the choice; the same seed gives the same split.
        id_col, time_col, value_cols: Column names; ``value_cols=None`` = every other column.

    Returns:
        A :class:`Holdout` whose target rows all lie inside their series' context window.

    Raises:
        ValueError: ``fraction`` outside (0, 1), or every series has fewer than 3 points.
    """
    fraction = _check_fraction(fraction)
    rng = _rng(random_state)
    points = _points(df, id_col, time_col, value_cols)
    is_target = np.zeros(len(points.df), dtype=bool)
    for start, end in zip(points.starts, points.ends, strict=True):
        n_interior = int(end - start) - 2
        if n_interior < 1:
            continue
        k = min(n_interior, max(1, round(fraction * n_interior)))
        is_target[start + 1 + rng.choice(n_interior, size=k, replace=False)] = True
    return _split(
        points,
        is_target,
        "every series has fewer than 3 points (rows with an observed value), so none has an "
        "interior point to hide; give longer series",
    )


def holdout_last(
    df: pd.DataFrame,
    n: int | None = None,
    *,
    fraction: float | None = None,
    id_col: Hashable = "id",
    time_col: Hashable = "time",
    value_cols: Sequence[Hashable] | None = None,
) -> Holdout:
    """Hide the end of each series: a forecasting (extrapolation) task.

    Give exactly one of ``n`` and ``fraction`` (neither: ``n=2``).

    - ``n``: the last ``n`` points of each series with at least ``n + 1`` points are targets.
    - ``fraction``: points with ``t > t_first + (1 - fraction) * (t_last - t_first)`` are
      targets, in series that keep at least one context point and get at least one target.

    Other series stay whole in the context.

    Args:
        df: Long frame; one row per (id, time), NaN = not observed.
        n: Points to hide at the end of each series, ≥ 1.
        fraction: Share of each series' time span to hide, in (0, 1).
        id_col, time_col, value_cols: Column names; ``value_cols=None`` = every other column.

    Returns:
        A :class:`Holdout` whose target rows all come after their series' context.

    Raises:
        ValueError: both ``n`` and ``fraction`` given, a bad value, or no series long enough.
    """
    if n is not None and fraction is not None:
        raise ValueError(f"give `n` or `fraction`, not both; got n={n!r}, fraction={fraction!r}")
    if fraction is not None:
        fraction = _check_fraction(fraction)
    else:
        n = 2 if n is None else check_int("n", n, minimum=1)
    points = _points(df, id_col, time_col, value_cols)
    is_target = np.zeros(len(points.df), dtype=bool)
    for start, end in zip(points.starts, points.ends, strict=True):
        if fraction is None:
            if end - start > n:
                is_target[end - n : end] = True
            continue
        t = points.times[start:end]
        hide = (t - t[0]) > (1.0 - fraction) * (t[-1] - t[0])
        if hide.any() and not hide.all():
            is_target[start:end] = hide
    why = (
        f"every series has at most n={n} points (rows with an observed value); lower `n`"
        if fraction is None
        else f"no series has a point in the last fraction={fraction:g} of its time span; "
        "raise `fraction` or pass `n`"
    )
    return _split(points, is_target, why)


def holdout_series(
    df: pd.DataFrame,
    fraction: float = 0.2,
    *,
    random_state: int | np.random.Generator | None = 0,
    id_col: Hashable = "id",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split whole series into a training and a test frame.

    The sorted ids are permuted by ``numpy.random.default_rng(random_state)``; the first
    ``round(fraction * n_series)`` (at least 1, at most ``n_series - 1``) go to the test frame.
    Rows are untouched (all of them, in their original order, with a fresh ``RangeIndex``).

    Args:
        df: Long frame.
        fraction: Share of series for the test frame, in (0, 1).
        random_state: Seed (or Generator) of the permutation.
        id_col: Name of the series-id column.

    Returns:
        ``(train, test)``, with no id in both.

    Raises:
        ValueError: ``fraction`` outside (0, 1), or fewer than 2 series.
    """
    check_frame(df, "df")
    check_ids(df, "df", id_col)
    fraction = _check_fraction(fraction)
    rng = _rng(random_state)
    _, ids = pd.factorize(df[id_col], sort=True)
    if len(ids) < 2:
        raise ValueError(
            f"`df` must have at least 2 series to split by series; found {len(ids)} "
            f"(id column {show(id_col)}); use holdout_interior or holdout_last within a series"
        )
    n_test = min(len(ids) - 1, max(1, round(fraction * len(ids))))
    test_ids = ids[rng.permutation(len(ids))[:n_test]]
    in_test = df[id_col].isin(test_ids).to_numpy()
    return df[~in_test].reset_index(drop=True), df[in_test].reset_index(drop=True)
