"""A pharmacokinetic simulation with known inputs: irregular infusions, weight-scaled volume.

One-compartment model with first-order elimination, per patient ``i``:

    dA/dt = R(t) − k_i · A,        C(t) = A(t) / V_i,        V_i = v · weight_i,

where ``R(t)`` is the infusion rate (mg/h, piecewise constant: a few infusions of random
rate and length at irregular hours), ``k_i`` the patient's elimination rate and ``V_i`` the
volume, proportional to body weight. Concentrations are measured at irregular hours with
Gaussian noise. Between change points of ``R`` the solution is exact
(``A(t) = R/k + (A₀ − R/k)·e^{−k(t−t₀)}``), so the truth under any schedule, a doubled dose
included, is computed exactly: :func:`pk_concentration`.

The inputs frame holds the rate at each change point (a held input) and ends with a row at
the end of the window, so the rate is known over all of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from latentode._validation import check_int, check_real

__all__ = ["PKData", "make_pk", "pk_concentration"]


@dataclass(frozen=True)
class PKData:
    """A simulated cohort.

    Attributes:
        observed: ``id, time, conc``: noisy concentrations (mg/L) at irregular hours.
        inputs: ``id, time, rate``: the infusion rate (mg/h) from each change point on.
        static: ``id, weight``: body weight (kg), one row per patient.
        elimination: ``(n,)`` each patient's ``k`` (1/h).
        volume: ``(n,)`` each patient's ``V`` (L).
        t_max: The window's end (h).
    """

    observed: pd.DataFrame
    inputs: pd.DataFrame
    static: pd.DataFrame
    elimination: np.ndarray
    volume: np.ndarray
    t_max: float


def pk_concentration(
    times: np.ndarray, change: np.ndarray, rate: np.ndarray, k: float, volume: float
) -> np.ndarray:
    """Exact ``C(times)`` from ``A(0) = 0`` under the rate ``rate[j]`` from ``change[j]`` on.

    Args:
        times: ``(n,)`` hours ≥ 0.
        change: ``(m,)`` sorted change points (the first at or before 0).
        rate: ``(m,)`` the rate in force from each.
        k: Elimination rate (1/h). volume: Volume (L).

    Returns:
        ``(n,)`` concentrations (mg/L).
    """
    times = np.asarray(times, dtype=np.float64)
    out = np.empty_like(times)
    order = np.argsort(times)
    amount, now, j = 0.0, 0.0, int(np.searchsorted(change, 0.0, side="right")) - 1
    for idx in order:
        t = times[idx]
        while j + 1 < len(change) and change[j + 1] <= t:  # run to the next change point
            amount = _advance(amount, rate[j], k, change[j + 1] - now)
            now, j = change[j + 1], j + 1
        amount = _advance(amount, rate[j], k, t - now)
        now = t
        out[idx] = amount / volume
    return out


def _advance(amount: float, rate: float, k: float, dt: float) -> float:
    steady = rate / k
    return steady + (amount - steady) * np.exp(-k * dt)


def make_pk(
    n_patients: int = 200,
    *,
    t_max: float = 24.0,
    n_obs: tuple[int, int] = (12, 20),
    n_infusions: tuple[int, int] = (2, 4),
    noise_std: float = 0.05,
    random_state: int = 0,
) -> PKData:
    """Simulate a cohort (see the module docstring).

    Args:
        n_patients: Patients.
        t_max: Hours of follow-up; infusions and measurements fall in ``[0, t_max]``.
        n_obs: Measurements per patient, drawn uniformly from this range (inclusive).
        n_infusions: Infusions per patient, likewise.
        noise_std: Measurement noise (mg/L).
        random_state: Seed.
    """
    n = check_int("n_patients", n_patients, minimum=1)
    t_max = check_real("t_max", t_max, positive=True)
    noise = check_real("noise_std", noise_std, nonnegative=True)
    rng = np.random.default_rng(random_state)
    weight = rng.uniform(50.0, 110.0, n)  # kg
    volume = 0.5 * weight  # L: 0.5 L/kg
    k = rng.lognormal(np.log(0.25), 0.3, n)  # 1/h, half-life ~2.8 h
    observed, inputs = [], []
    for i in range(n):
        m = int(rng.integers(n_infusions[0], n_infusions[1] + 1))
        starts = np.sort(rng.uniform(0.0, t_max - 2.0, m))
        change, rates = [0.0], [0.0]
        for start in starts:
            if start < change[-1]:  # the previous infusion still runs: start after it
                start = change[-1] + 0.25
            length = rng.uniform(0.5, 2.0)
            change += [start, start + length]
            rates += [rng.uniform(20.0, 60.0), 0.0]
        change.append(t_max)
        rates.append(0.0)
        change_a, rate_a = np.array(change), np.array(rates)
        keep = np.r_[True, np.diff(change_a) > 0]
        change_a, rate_a = change_a[keep], rate_a[keep]
        count = int(rng.integers(n_obs[0], n_obs[1] + 1))
        times = np.sort(np.r_[0.0, rng.uniform(0.0, t_max, count - 1)])
        conc = pk_concentration(times, change_a, rate_a, float(k[i]), float(volume[i]))
        conc = conc + noise * rng.standard_normal(times.size)
        observed.append(pd.DataFrame({"id": i, "time": times, "conc": conc}))
        inputs.append(pd.DataFrame({"id": i, "time": change_a, "rate": rate_a}))
    return PKData(
        observed=pd.concat(observed, ignore_index=True),
        inputs=pd.concat(inputs, ignore_index=True),
        static=pd.DataFrame({"id": np.arange(n), "weight": weight}),
        elimination=k,
        volume=volume,
        t_max=t_max,
    )
