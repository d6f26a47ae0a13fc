"""One-compartment pharmacokinetics with first-order absorption, on a jittered schedule."""

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

__all__ = ["make_absorption"]

# A typical oral-dose PK schedule (hours), as in R's Theoph; times are jittered multiplicatively.
_PK_TIMES = np.array([0.0, 0.25, 0.5, 1.0, 2.0, 3.5, 5.0, 7.0, 9.0, 12.0, 24.0])
_PK_DOSE = 10.0
_PK_JITTER = (0.85, 1.15)
_PK_DROP = 0.15


def _log_uniform(rng: np.random.Generator, low: float, high: float, size: int) -> np.ndarray:
    return np.exp(rng.uniform(np.log(low), np.log(high), size=size))


def make_absorption(
    n_series: int = 100,
    *,
    noise_std: float = 0.05,
    prop_noise: float = 0.1,
    random_state: RandomState = 0,
) -> SyntheticData:
    """Drug concentrations after one oral dose, on a jittered clinical sampling schedule.

    Subject ``i`` follows the one-compartment model with first-order absorption (times in
    hours):

        ``C(t) = D k_a / (V (k_a - k_e)) · (e^{-k_e t} - e^{-k_a t})``,

    with ``D = 10``, ``k_a ~ logU(0.8, 3)``, ``k_e ~ logU(0.05, 0.2)`` per hour and
    ``V ~ logU(0.7, 1.4)``, so ``C(0) = 0``, the peak is at ``ln(k_a/k_e) / (k_a - k_e)`` and
    concentrations are of order 1-10. Sampling follows a PK study: the nominal times
    ``0, 0.25, 0.5, 1, 2, 3.5, 5, 7, 9, 12, 24`` are each scaled by ``U(0.85, 1.15)`` (0 stays
    0; neighbours may swap, and times are sorted), and each non-zero time is dropped with
    probability 0.15 (if all were, the last is kept). Observed values are
    ``max(0, C + ε_add + C · ε_prop)`` with ``ε_add ~ N(0, noise_std²)`` and
    ``ε_prop ~ N(0, prop_noise²)``: concentrations are never negative.

    Args:
        n_series: Number of subjects, ≥ 1. Ids are ``0 .. n_series - 1``.
        noise_std: Standard deviation of the additive error, ≥ 0.
        prop_noise: Standard deviation of the proportional (relative) error, ≥ 0.
        random_state: Int seed, None (fresh entropy) or a ``numpy.random.Generator``.

    Returns:
        :class:`SyntheticData` with the feature ``"conc"``; ``params`` has columns ``id``,
        ``ka``, ``ke``, ``volume``, ``dose``.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: An argument is out of range.

    Example:
        >>> data = make_absorption(n_series=2, random_state=0)
        >>> float(data.truth.loc[data.truth["time"] == 0.0, "conc"].abs().max())
        0.0
    """
    n_series = check_int("n_series", n_series, minimum=1)
    noise_std = check_real("noise_std", noise_std, nonnegative=True)
    prop_noise = check_real("prop_noise", prop_noise, nonnegative=True)
    rng = _as_generator(random_state)

    ka = _log_uniform(rng, 0.8, 3.0, n_series)  # (n_series,)
    ke = _log_uniform(rng, 0.05, 0.2, n_series)  # below ka always: no ka = ke singularity
    volume = _log_uniform(rng, 0.7, 1.4, n_series)

    def values_at(ids: np.ndarray, t: np.ndarray) -> np.ndarray:
        a, e = ka[ids], ke[ids]
        scale = _PK_DOSE * a / (volume[ids] * (a - e))
        return (scale * (np.exp(-e * t) - np.exp(-a * t)))[:, None]  # (rows, 1)

    jitter = rng.uniform(*_PK_JITTER, size=(n_series, _PK_TIMES.size))
    schedule = np.sort(_PK_TIMES[None, :] * jitter, axis=1)  # (n_series, n_times), 0 first
    rows, cols = np.nonzero(_keep_occasions(rng, n_series, _PK_TIMES.size, _PK_DROP))
    ids, times = rows, schedule[rows, cols]  # np.nonzero is row-major: sorted by id, then time
    clean = values_at(ids, times)  # (rows, 1)
    additive = rng.normal(0.0, noise_std, size=clean.shape)
    relative = rng.normal(0.0, prop_noise, size=clean.shape)
    noisy = np.clip(clean + additive + clean * relative, 0.0, None)

    observed = _observed_frame(ids, times, noisy, ["conc"])
    params = pd.DataFrame(
        {
            "id": np.arange(n_series, dtype=np.int64),
            "ka": ka,
            "ke": ke,
            "volume": volume,
            "dose": np.full(n_series, _PK_DOSE),
        }
    )
    truth = _truth_frame(observed, n_series, values_at, ["conc"])
    return SyntheticData(observed=observed, truth=truth, params=params)
