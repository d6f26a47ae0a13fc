"""Children's growth curves on roughly yearly occasions (after nlme's ``Oxboys``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from latentode._validation import check_int, check_real
from latentode.data.panels._common import (
    _keep_occasions,
    _observed_frame,
    _truth_frame,
)
from latentode.data.synthetic import RandomState, SyntheticData, _as_generator

__all__ = ["make_growth"]

# Oxboys-like growth: 9 occasions a year apart, jittered and sometimes missed.
_GROWTH_OCCASIONS = 9
_GROWTH_JITTER = 0.3
_GROWTH_DROP = 0.1
_GROWTH_CURVATURE = 0.08


def make_growth(
    n_series: int = 100,
    *,
    noise_std: float = 0.5,
    random_state: RandomState = 0,
) -> SyntheticData:
    """Children's heights (cm) on roughly yearly occasions: own level and slope, shared bend.

    Child ``i`` has ``h(t) = a_i + b_i t - c t²`` with ``a_i ~ N(140, 8²)`` cm,
    ``b_i ~ N(6, 1.2²)`` cm per year and ``c = 0.08``, ``t`` the years since the first visit.
    Nine occasions are planned, at ``t = 0, 1, ..., 8``; each later one is moved by
    ``U(-0.3, 0.3)`` years and missed with probability 0.1 (if all were, the last is kept); the
    first visit defines ``t = 0`` and always takes place. Heights carry ``N(0, noise_std²)``
    measurement error.

    Args:
        n_series: Number of children, ≥ 1. Ids are ``0 .. n_series - 1``.
        noise_std: Standard deviation of the measurement error in cm, ≥ 0.
        random_state: Int seed, None (fresh entropy) or a ``numpy.random.Generator``.

    Returns:
        :class:`SyntheticData` with the feature ``"height"``; ``params`` has columns ``id``,
        ``level`` (``a_i``), ``slope`` (``b_i``), ``curvature`` (``c``).

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: An argument is out of range.

    Example:
        >>> data = make_growth(n_series=50, random_state=0)
        >>> int(data.observed.groupby("id").size().max())
        9
    """
    n_series = check_int("n_series", n_series, minimum=1)
    noise_std = check_real("noise_std", noise_std, nonnegative=True)
    rng = _as_generator(random_state)

    level = rng.normal(140.0, 8.0, size=n_series)  # (n_series,)
    slope = rng.normal(6.0, 1.2, size=n_series)

    def values_at(ids: np.ndarray, t: np.ndarray) -> np.ndarray:
        return (level[ids] + slope[ids] * t - _GROWTH_CURVATURE * t**2)[:, None]  # (rows, 1)

    shift = rng.uniform(-_GROWTH_JITTER, _GROWTH_JITTER, size=(n_series, _GROWTH_OCCASIONS))
    shift[:, 0] = 0.0  # the first visit is t = 0 by definition
    # Occasions a year apart moved by < 0.3 years each stay in order: no sort needed.
    ages = np.arange(_GROWTH_OCCASIONS, dtype=np.float64)[None, :] + shift  # (n_series, 9)
    rows, cols = np.nonzero(_keep_occasions(rng, n_series, _GROWTH_OCCASIONS, _GROWTH_DROP))
    ids, times = rows, ages[rows, cols]
    noisy = values_at(ids, times) + rng.normal(0.0, noise_std, size=(ids.size, 1))

    observed = _observed_frame(ids, times, noisy, ["height"])
    params = pd.DataFrame(
        {
            "id": np.arange(n_series, dtype=np.int64),
            "level": level,
            "slope": slope,
            "curvature": np.full(n_series, _GROWTH_CURVATURE),
        }
    )
    truth = _truth_frame(observed, n_series, values_at, ["height"])
    return SyntheticData(observed=observed, truth=truth, params=params)
