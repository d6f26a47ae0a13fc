"""Helpers shared by the panel families: argument checks, irregular times, masks, frames."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from latentode._validation import check_real
from latentode.data.synthetic import _long_frame

# Evenly spaced truth times per series, over its own [first, last observed time].
_GRID_POINTS = 50


def _check_missing(missing: Any) -> float:
    missing = check_real("missing", missing, nonnegative=True)
    if missing >= 1:
        raise ValueError(
            f"`missing` must be in [0, 1) (the chance that each entry is unobserved); got {missing}"
        )
    return missing


def _series_edges(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boolean ``(rows,)`` masks of each series' first and last row (``ids`` sorted)."""
    change = ids[1:] != ids[:-1]
    return np.r_[True, change], np.r_[change, True]


def _counts_around(rng: np.random.Generator, n_series: int, n_points: int) -> np.ndarray:
    """Per-series point counts, uniform on ``round(0.8 n) .. round(1.2 n)``, never below 2."""
    low = max(2, round(0.8 * n_points))
    high = max(low, round(1.2 * n_points))
    return rng.integers(low, high + 1, size=n_series)  # (n_series,)


def _uniform_times(
    rng: np.random.Generator, counts: np.ndarray, t_max: float, *, from_zero: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, times)`` ``(rows,)``: ``counts[i]`` uniform times in ``[0, t_max]`` per series.

    Sorted by id then time. With ``from_zero`` each series' first time is 0 and the others lie
    in ``(0, t_max]``, so none collides with it.
    """
    ids = np.repeat(np.arange(counts.size), counts)  # (rows,)
    if from_zero:
        times = t_max * (1.0 - rng.random(ids.size))  # (0, t_max]
        times[_series_edges(ids)[0]] = 0.0
    else:
        times = t_max * rng.random(ids.size)  # [0, t_max)
    return ids, times[np.lexsort((times, ids))]  # ids already sorted: only times move


def _observe_entries(
    rng: np.random.Generator, ids: np.ndarray, n_features: int, missing: float
) -> np.ndarray:
    """Observed-entry mask ``(rows, n_features)``: each entry missing with prob ``missing``.

    A row left with nothing observed is dropped by the caller, except each series' first and
    last row, which get one random feature back: every series keeps its window and ≥ 2 rows.
    """
    seen = rng.random((ids.size, n_features)) >= missing  # (rows, n_features)
    put_back = rng.integers(0, n_features, size=ids.size)  # drawn for all rows: fixed stream
    first, last = _series_edges(ids)
    blank = (first | last) & ~seen.any(axis=1)
    seen[blank, put_back[blank]] = True
    return seen


def _keep_occasions(
    rng: np.random.Generator, n_series: int, n_occasions: int, p_drop: float
) -> np.ndarray:
    """Kept mask ``(n_series, n_occasions)``: the first occasion always, later ones w.p. 1-p.

    A series that would keep its first occasion only keeps its last one too (a window needs
    two times); with the defaults that happens about once in 10⁸ series.
    """
    kept = rng.random((n_series, n_occasions)) >= p_drop  # (n_series, n_occasions)
    kept[:, 0] = True
    kept[kept.sum(axis=1) < 2, -1] = True
    return kept


def _observed_frame(
    ids: np.ndarray,
    times: np.ndarray,
    values: np.ndarray,
    features: Sequence[str],
    seen: np.ndarray | None = None,
) -> pd.DataFrame:
    """Rows with ≥ 1 observed entry; values ``(rows, n_features)`` are NaN where not ``seen``."""
    if seen is None:
        return _long_frame(ids, times, values, features)
    keep = seen.any(axis=1)  # (rows,)
    masked = np.where(seen, values, np.nan)  # (rows, n_features)
    return _long_frame(ids[keep], times[keep], masked[keep], features)


def _truth_frame(
    observed: pd.DataFrame,
    n_series: int,
    values_at: Callable[[np.ndarray, np.ndarray], np.ndarray],
    features: Sequence[str],
) -> pd.DataFrame:
    """Noise-free values at every observed time and at a dense grid over each series' window.

    ``values_at(ids (rows,), times (rows,)) -> (rows, n_features)``. The grid is
    ``_GRID_POINTS`` evenly spaced times from the series' first to its last observed time; the
    union with the observed times is sorted and duplicate times (the window ends) appear once.
    """
    ids = observed["id"].to_numpy()
    times = observed["time"].to_numpy()
    first, last = _series_edges(ids)
    # np.linspace sets the last point to `stop` exactly, so the window ends match observed times.
    grid = np.linspace(times[first], times[last], _GRID_POINTS, axis=1)  # (n_series, points)
    all_ids = np.concatenate([ids, np.repeat(np.arange(n_series), _GRID_POINTS)])
    all_times = np.concatenate([times, grid.ravel()])  # (rows + n_series · points,)
    order = np.lexsort((all_times, all_ids))
    all_ids, all_times = all_ids[order], all_times[order]
    fresh = np.r_[True, (np.diff(all_ids) != 0) | (np.diff(all_times) != 0)]
    all_ids, all_times = all_ids[fresh], all_times[fresh]
    return _long_frame(all_ids, all_times, values_at(all_ids, all_times), features)
