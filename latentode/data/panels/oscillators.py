"""Damped harmonic oscillators: position and scaled velocity, entries missing at random."""

from __future__ import annotations

import numpy as np
import pandas as pd

from latentode._validation import check_int, check_real
from latentode.data.panels._common import (
    _check_missing,
    _counts_around,
    _observe_entries,
    _observed_frame,
    _truth_frame,
    _uniform_times,
)
from latentode.data.synthetic import RandomState, SyntheticData, _as_generator

__all__ = ["make_oscillators"]


def _oscillator(
    t: np.ndarray, omega: np.ndarray, zeta: np.ndarray, amplitude: np.ndarray, phase: np.ndarray
) -> np.ndarray:
    """Closed-form underdamped solution, all ``(rows,)`` → ``(rows, 2)``: ``x`` and ``x'/ω``."""
    damped = np.sqrt(1.0 - zeta**2)
    angle = omega * damped * t + phase
    envelope = amplitude * np.exp(-zeta * omega * t)
    x = envelope * np.cos(angle)
    # x' = -ω · envelope · (ζ cos + √(1-ζ²) sin); dividing by ω keeps v on the scale of x.
    v = -envelope * (zeta * np.cos(angle) + damped * np.sin(angle))
    return np.stack([x, v], axis=1)  # (rows, 2)


def make_oscillators(
    n_series: int = 120,
    *,
    n_points: int = 40,
    t_max: float = 10.0,
    missing: float = 0.2,
    noise_std: float = 0.05,
    random_state: RandomState = 0,
) -> SyntheticData:
    """Damped harmonic oscillators, position and velocity, each on its own irregular times.

    Series ``i`` solves ``x'' + 2 ζ_i ω_i x' + ω_i² x = 0`` in closed form (underdamped):

        ``x(t) = A_i e^{-ζ_i ω_i t} cos(ω_i √(1-ζ_i²) t + φ_i)``,  ``v(t) = x'(t) / ω_i``,

    with ``ω_i ~ U(0.8, 2.0)`` rad per time unit, ``ζ_i ~ U(0.02, 0.15)``, ``A_i ~ U(0.5, 1.5)``
    and ``φ_i ~ U(0, 2π)``; ``v`` is the velocity over ``ω_i``, so both features share a scale.
    Each series has ``n_i`` times (uniform on ``round(0.8 n_points) .. round(1.2 n_points)``,
    at least 2): ``t = 0`` and ``n_i - 1`` uniform times in ``(0, t_max]``. Each entry is
    missing with probability ``missing``, independently; rows with nothing observed are left
    out, except a series' first and last rows, which get one random feature back so the window
    ``[0, last time]`` stays. Observed values carry ``N(0, noise_std²)`` noise.

    Args:
        n_series: Number of series, ≥ 1. Ids are ``0 .. n_series - 1``.
        n_points: Typical number of times per series, ≥ 2 (each series ±20%).
        t_max: End of the time window, > 0.
        missing: Chance that an entry is unobserved, in ``[0, 1)``.
        noise_std: Standard deviation of the observation noise, ≥ 0.
        random_state: Int seed, None (fresh entropy) or a ``numpy.random.Generator``.

    Returns:
        :class:`SyntheticData` with features ``"x"`` and ``"v"``; ``params`` has columns
        ``id``, ``omega``, ``zeta``, ``amplitude``, ``phase``.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: An argument is out of range.

    Example:
        >>> data = make_oscillators(n_series=3, random_state=0)
        >>> list(data.observed.columns), data.observed.groupby("id")["time"].min().tolist()
        (['id', 'time', 'x', 'v'], [0.0, 0.0, 0.0])
    """
    n_series = check_int("n_series", n_series, minimum=1)
    n_points = check_int("n_points", n_points, minimum=2)
    t_max = check_real("t_max", t_max, positive=True)
    missing = _check_missing(missing)
    noise_std = check_real("noise_std", noise_std, nonnegative=True)
    rng = _as_generator(random_state)

    omega = rng.uniform(0.8, 2.0, size=n_series)  # (n_series,)
    zeta = rng.uniform(0.02, 0.15, size=n_series)
    amplitude = rng.uniform(0.5, 1.5, size=n_series)
    phase = rng.uniform(0.0, 2.0 * np.pi, size=n_series)

    def values_at(ids: np.ndarray, t: np.ndarray) -> np.ndarray:
        return _oscillator(t, omega[ids], zeta[ids], amplitude[ids], phase[ids])

    ids, times = _uniform_times(rng, _counts_around(rng, n_series, n_points), t_max, from_zero=True)
    noisy = values_at(ids, times) + rng.normal(0.0, noise_std, size=(ids.size, 2))
    seen = _observe_entries(rng, ids, 2, missing)  # (rows, 2)

    features = ["x", "v"]
    observed = _observed_frame(ids, times, noisy, features, seen)
    params = pd.DataFrame(
        {
            "id": np.arange(n_series, dtype=np.int64),
            "omega": omega,
            "zeta": zeta,
            "amplitude": amplitude,
            "phase": phase,
        }
    )
    truth = _truth_frame(observed, n_series, values_at, features)
    return SyntheticData(observed=observed, truth=truth, params=params)
