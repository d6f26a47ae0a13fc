"""Sparse sines: a few noisy points of a slow sine per series."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from latentode._validation import check_int, check_real
from latentode.data.panels._common import (
    _observed_frame,
    _truth_frame,
    _uniform_times,
)
from latentode.data.synthetic import RandomState, SyntheticData, _as_generator

__all__ = ["make_sparse_sines"]


def _check_points_range(points_range: Any) -> tuple[int, int]:
    if isinstance(points_range, str | bytes) or not isinstance(points_range, Sequence | np.ndarray):
        raise TypeError(
            f"`points_range` must be a (low, high) pair of point counts; got {points_range!r} "
            f"({type(points_range).__name__})"
        )
    if len(points_range) != 2:
        raise ValueError(
            f"`points_range` must be a (low, high) pair; got {len(points_range)} values: "
            f"{tuple(points_range)!r}"
        )
    # Two points at least: a series needs a window [first, last] for its truth grid.
    low = check_int("points_range[0]", points_range[0], minimum=2)
    high = check_int("points_range[1]", points_range[1], minimum=2)
    if low > high:
        raise ValueError(
            f"`points_range` must have low <= high; got ({low}, {high}). Swap them (equal "
            "values give every series the same count)"
        )
    return low, high


def make_sparse_sines(
    n_series: int = 200,
    *,
    points_range: tuple[int, int] = (4, 12),
    t_max: float = 10.0,
    noise_std: float = 0.2,
    random_state: RandomState = 0,
) -> SyntheticData:
    """A few noisy points of a slow sine per series: the sparse, low-information regime.

    Series ``i`` is ``y(t) = A_i sin(2π f_i t + φ_i) + m_i`` with ``A_i ~ U(0.5, 2)``,
    ``f_i ~ U(0.05, 0.2)`` cycles per time unit, ``φ_i ~ U(0, 2π)`` and ``m_i ~ N(0, 1)``,
    observed at ``n_i`` times (``n_i`` uniform on ``points_range``, both ends included) drawn
    uniformly in ``[0, t_max)`` and sorted (not forced to start at 0), with ``N(0, noise_std²)``
    noise.

    Args:
        n_series: Number of series, ≥ 1. Ids are ``0 .. n_series - 1``.
        points_range: ``(low, high)`` integers with ``2 <= low <= high``.
        t_max: End of the time window, > 0.
        noise_std: Standard deviation of the observation noise, ≥ 0.
        random_state: Int seed, None (fresh entropy) or a ``numpy.random.Generator``.

    Returns:
        :class:`SyntheticData` with the feature ``"y"``; ``params`` has columns ``id``,
        ``amplitude``, ``frequency``, ``phase``, ``offset``.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: An argument is out of range.

    Example:
        >>> data = make_sparse_sines(n_series=100, random_state=0)
        >>> sizes = data.observed.groupby("id").size()
        >>> int(sizes.min()), int(sizes.max())
        (4, 12)
    """
    n_series = check_int("n_series", n_series, minimum=1)
    low, high = _check_points_range(points_range)
    t_max = check_real("t_max", t_max, positive=True)
    noise_std = check_real("noise_std", noise_std, nonnegative=True)
    rng = _as_generator(random_state)

    amplitude = rng.uniform(0.5, 2.0, size=n_series)  # (n_series,)
    frequency = rng.uniform(0.05, 0.2, size=n_series)
    phase = rng.uniform(0.0, 2.0 * np.pi, size=n_series)
    offset = rng.normal(0.0, 1.0, size=n_series)

    def values_at(ids: np.ndarray, t: np.ndarray) -> np.ndarray:
        wave = np.sin(2.0 * np.pi * frequency[ids] * t + phase[ids])
        return (amplitude[ids] * wave + offset[ids])[:, None]  # (rows, 1)

    counts = rng.integers(low, high + 1, size=n_series)  # (n_series,)
    ids, times = _uniform_times(rng, counts, t_max, from_zero=False)
    noisy = values_at(ids, times) + rng.normal(0.0, noise_std, size=(ids.size, 1))

    observed = _observed_frame(ids, times, noisy, ["y"])
    params = pd.DataFrame(
        {
            "id": np.arange(n_series, dtype=np.int64),
            "amplitude": amplitude,
            "frequency": frequency,
            "phase": phase,
            "offset": offset,
        }
    )
    truth = _truth_frame(observed, n_series, values_at, ["y"])
    return SyntheticData(observed=observed, truth=truth, params=params)
