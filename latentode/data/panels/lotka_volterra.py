"""Lotka–Volterra predator–prey cycles, integrated with fixed-step RK4."""

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

__all__ = ["make_lotka_volterra"]

# RK4 step for Lotka–Volterra: its global error (~step⁴) is far below any noise level here.
_LV_STEP = 0.01


def _lotka_volterra_field(
    state: np.ndarray, alpha: np.ndarray, beta: np.ndarray, delta: np.ndarray, gamma: np.ndarray
) -> np.ndarray:
    """``(rows, 2)`` state (prey, predator), ``(rows,)`` rates → ``(rows, 2)`` derivative."""
    prey, predator = state[:, 0], state[:, 1]
    return np.stack(
        [alpha * prey - beta * prey * predator, delta * prey * predator - gamma * predator],
        axis=1,
    )  # (rows, 2)


def _rk4_step(
    state: np.ndarray, dt: np.ndarray | float, rates: tuple[np.ndarray, ...]
) -> np.ndarray:
    """One classical RK4 step of ``_lotka_volterra_field``; ``dt`` scalar or ``(rows, 1)``."""
    k1 = _lotka_volterra_field(state, *rates)
    k2 = _lotka_volterra_field(state + 0.5 * dt * k1, *rates)
    k3 = _lotka_volterra_field(state + 0.5 * dt * k2, *rates)
    k4 = _lotka_volterra_field(state + dt * k3, *rates)
    return state + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def make_lotka_volterra(
    n_series: int = 100,
    *,
    n_points: int = 30,
    t_max: float = 15.0,
    missing: float = 0.1,
    noise_std: float = 0.05,
    random_state: RandomState = 0,
) -> SyntheticData:
    """Predator–prey cycles, each series its own rates, start and irregular times.

    Series ``i`` solves ``x' = α x - β x y``, ``y' = δ x y - γ y`` (``x`` prey, ``y`` predator)
    with ``α, γ ~ U(0.8, 1.2)``, ``β, δ ~ 0.5 · U(0.8, 1.2)`` and ``x(0), y(0) ~ U(0.5, 2)``.
    The system is integrated with classical RK4 at step 0.01 up to ``t_max``; a value at time
    ``t`` is one more RK4 step, of length ``t - 0.01 · floor(t / 0.01)``, from the last grid state,
    so truth is exact to the integrator (no interpolation). Its conserved quantity
    ``δ x - γ ln x + β y - α ln y`` drifts by far less than 1e-6. Times, missingness and
    noise are drawn as in :func:`~latentode.data.panels.make_oscillators`: ``t = 0`` plus
    uniform times in ``(0, t_max]`` (``n_points`` ± 20% per series), each entry missing with
    probability ``missing``, ``N(0, noise_std²)`` noise.

    Args:
        n_series: Number of series, ≥ 1. Ids are ``0 .. n_series - 1``.
        n_points: Typical number of times per series, ≥ 2 (each series ±20%).
        t_max: End of the time window, > 0. Memory grows as ``n_series · t_max / 0.01``.
        missing: Chance that an entry is unobserved, in ``[0, 1)``.
        noise_std: Standard deviation of the observation noise, ≥ 0.
        random_state: Int seed, None (fresh entropy) or a ``numpy.random.Generator``.

    Returns:
        :class:`SyntheticData` with features ``"prey"`` and ``"predator"``; ``params`` has
        columns ``id``, ``alpha``, ``beta``, ``delta``, ``gamma``, ``prey0``, ``predator0``.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: An argument is out of range.

    Example:
        >>> data = make_lotka_volterra(n_series=2, random_state=0)
        >>> list(data.truth.columns), bool((data.truth[["prey", "predator"]] > 0).all().all())
        (['id', 'time', 'prey', 'predator'], True)
    """
    n_series = check_int("n_series", n_series, minimum=1)
    n_points = check_int("n_points", n_points, minimum=2)
    t_max = check_real("t_max", t_max, positive=True)
    missing = _check_missing(missing)
    noise_std = check_real("noise_std", noise_std, nonnegative=True)
    rng = _as_generator(random_state)

    alpha = rng.uniform(0.8, 1.2, size=n_series)  # (n_series,)
    beta = 0.5 * rng.uniform(0.8, 1.2, size=n_series)
    delta = 0.5 * rng.uniform(0.8, 1.2, size=n_series)
    gamma = rng.uniform(0.8, 1.2, size=n_series)
    start = rng.uniform(0.5, 2.0, size=(n_series, 2))  # (n_series, 2): prey, predator

    n_steps = int(np.ceil(t_max / _LV_STEP))
    states = np.empty((n_steps + 1, n_series, 2))  # (steps + 1, n_series, 2): state at k·step
    states[0] = start
    rates = (alpha, beta, delta, gamma)
    for k in range(n_steps):
        states[k + 1] = _rk4_step(states[k], _LV_STEP, rates)

    def values_at(ids: np.ndarray, t: np.ndarray) -> np.ndarray:
        k = np.minimum(np.floor(t / _LV_STEP).astype(np.int64), n_steps)  # (rows,)
        # t / step may round up to k, leaving dt a hair below 0: a tiny backward step, exact.
        dt = (t - k * _LV_STEP)[:, None]  # (rows, 1)
        row_rates = tuple(rate[ids] for rate in rates)
        return _rk4_step(states[k, ids], dt, row_rates)  # (rows, 2)

    ids, times = _uniform_times(rng, _counts_around(rng, n_series, n_points), t_max, from_zero=True)
    noisy = values_at(ids, times) + rng.normal(0.0, noise_std, size=(ids.size, 2))
    seen = _observe_entries(rng, ids, 2, missing)  # (rows, 2)

    features = ["prey", "predator"]
    observed = _observed_frame(ids, times, noisy, features, seen)
    params = pd.DataFrame(
        {
            "id": np.arange(n_series, dtype=np.int64),
            "alpha": alpha,
            "beta": beta,
            "delta": delta,
            "gamma": gamma,
            "prey0": start[:, 0],
            "predator0": start[:, 1],
        }
    )
    truth = _truth_frame(observed, n_series, values_at, features)
    return SyntheticData(observed=observed, truth=truth, params=params)
