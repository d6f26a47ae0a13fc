"""Seeded synthetic irregular time series with known ground truth.

Two toy problems from the latent-ODE literature, each returning a :class:`SyntheticData`:

- :func:`make_periodic`: the one-feature sinusoids of Rubanova et al. (2019), *Latent ODEs for
  Irregularly-Sampled Time Series*, on one irregular grid shared by all series, each series
  observing its own random half of it.
- :func:`make_spiral`: the two-feature clockwise / counter-clockwise Archimedean spirals of the
  latent-ODE experiment of Chen et al. (2018), *Neural Ordinary Differential Equations*, each a
  random window of a dense grid, irregularly subsampled.
- :func:`make_clinical_events`: a latent health curve that drives a visit rate, for the
  Poisson-process head: visits are an inhomogeneous Poisson process, more frequent when the
  patient is unwell, and a lab value is measured either at the visits or on its own schedule.

Frames are long (``["id", "time", *features]``, see DESIGN.md "Data conventions"); ``truth``
holds the noise-free values on every point of each series' dense grid, so a model can be scored
at observed and unobserved times alike. Only numpy and pandas are used here: generating data must
not need torch.

The first two are registered by name, with the panel families of :mod:`latentode.data.panels`,
in :mod:`latentode.data.generators` (``GENERATORS``, ``make_dataset``).

Example:
    >>> from latentode.data.synthetic import make_periodic
    >>> data = make_periodic(n_series=2, n_points=10, random_state=0)
    >>> data.observed.shape, data.truth.shape, list(data.params.columns)
    ((10, 3), (20, 3), ['id', 'frequency', 'phase'])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd

from latentode._validation import check_int, check_real

__all__ = [
    "SyntheticData",
    "clinical_intensity",
    "make_clinical_events",
    "make_periodic",
    "make_spiral",
    "spiral_truth",
]

RandomState = int | np.random.Generator | None


@dataclass(frozen=True)
class SyntheticData:
    """A generated dataset together with its ground truth.

    Attributes:
        observed: Long frame ``["id", "time", *features]``: one row per observed time, values
            with observation noise, rows sorted by ``id`` then ``time``.
        truth: Long frame with the same columns: noise-free values at every point of each
            series' dense time grid, observed or not.
        params: One row per series: ``"id"`` plus the parameters that generated the series.
        events: For event datasets, the long frame ``["id", "time", "kind"]`` of events.
        intensity: For event datasets, the true intensity ``["id", "time", "intensity"]`` on
            each series' dense grid.
    """

    observed: pd.DataFrame
    truth: pd.DataFrame
    params: pd.DataFrame
    events: pd.DataFrame | None = None
    intensity: pd.DataFrame | None = None


# ---------------------------------------------------------------------------------------------
# boundary helpers


def _as_generator(random_state: Any) -> np.random.Generator:
    """Turn an int seed, None or a Generator into a Generator (a Generator is used as is)."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or (
        isinstance(random_state, Integral) and not isinstance(random_state, bool)
    ):
        return np.random.default_rng(None if random_state is None else int(random_state))
    raise TypeError(
        "`random_state` must be an int, None or a numpy.random.Generator; got "
        f"{random_state!r} ({type(random_state).__name__}). Pass e.g. random_state=0"
    )


def _check_freq_range(freq_range: Any) -> tuple[float, float]:
    if isinstance(freq_range, str | bytes) or not isinstance(freq_range, Sequence | np.ndarray):
        raise TypeError(
            f"`freq_range` must be a (low, high) pair of frequencies; got {freq_range!r} "
            f"({type(freq_range).__name__})"
        )
    if len(freq_range) != 2:
        raise ValueError(
            f"`freq_range` must be a (low, high) pair; got {len(freq_range)} values: "
            f"{tuple(freq_range)!r}"
        )
    # Frequencies are in cycles per time unit, so the lower end must be positive.
    low = check_real("freq_range[0]", freq_range[0], positive=True)
    high = check_real("freq_range[1]", freq_range[1], positive=True)
    if low >= high:
        raise ValueError(
            f"`freq_range` must have low < high; got ({low}, {high}). Swap them, or widen the "
            "range (use a tiny range for a near-constant frequency)"
        )
    return low, high


def _long_frame(
    ids: np.ndarray, times: np.ndarray, values: np.ndarray, features: Sequence[str]
) -> pd.DataFrame:
    """``ids (rows,)``, ``times (rows,)``, ``values (rows, n_features)`` → long frame."""
    columns: dict[str, np.ndarray] = {
        "id": ids.astype(np.int64),
        "time": times.astype(np.float64),
    }
    for j, name in enumerate(features):
        columns[name] = values[:, j].astype(np.float64)
    return pd.DataFrame(columns)


def _random_subsets(rng: np.random.Generator, n_rows: int, size: int, k: int) -> np.ndarray:
    """Per row, ``k`` distinct positions out of ``range(size)``, ascending: ``(n_rows, k)``.

    Ranking i.i.d. uniforms gives a uniformly random permutation per row; its first ``k``
    entries are a uniformly random ``k``-subset.
    """
    ranks = np.argsort(rng.random((n_rows, size)), axis=1)  # (n_rows, size)
    return np.sort(ranks[:, :k], axis=1)  # (n_rows, k)


# ---------------------------------------------------------------------------------------------
# periodic (Rubanova et al. 2019)


def make_periodic(
    n_series: int = 1000,
    n_points: int = 100,
    t_max: float = 5.0,
    freq_range: tuple[float, float] = (0.4, 0.8),
    amplitude: float = 1.0,
    noise_std: float = 0.01,
    observed_fraction: float = 0.5,
    random_state: RandomState = 0,
) -> SyntheticData:
    """Sinusoids on one shared irregular grid, each observed at its own random subset of it.

    The grid is ``t = 0`` plus ``n_points - 1`` times drawn uniformly in ``(0, t_max]``, sorted,
    and is shared by every series. Series ``i`` is

        ``x_i(t) = amplitude · sin(2π f_i t + φ_i)``,  ``f_i ~ U(freq_range)``,
        ``φ_i ~ U(0, 2π)``,

    with ``f_i`` in cycles per time unit. Each series observes ``round(observed_fraction ·
    n_points)`` grid points (at least 2), chosen at random independently per series, with
    ``N(0, noise_std²)`` noise added.

    Args:
        n_series: Number of series, ≥ 1. Ids are ``0 .. n_series - 1``.
        n_points: Points on the shared grid, ≥ 2 (``t = 0`` is always one of them).
        t_max: End of the time window, > 0.
        freq_range: ``(low, high)`` with ``0 < low < high``.
        amplitude: Amplitude of every sinusoid, > 0.
        noise_std: Standard deviation of the observation noise, ≥ 0.
        observed_fraction: Share of the grid each series observes, in ``(0, 1]``.
        random_state: Int seed, None (fresh entropy) or a ``numpy.random.Generator``.

    Returns:
        :class:`SyntheticData` with the single feature ``"x"``; ``truth`` has ``n_points`` rows
        per series and ``params`` has columns ``id``, ``frequency``, ``phase``.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: An argument is out of range.

    Example:
        >>> data = make_periodic(n_series=3, n_points=20, random_state=0)
        >>> data.observed.groupby("id").size().tolist()
        [10, 10, 10]
        >>> len(data.truth), list(data.observed.columns)
        (60, ['id', 'time', 'x'])
    """
    n_series = check_int("n_series", n_series, minimum=1)
    n_points = check_int("n_points", n_points, minimum=2)
    t_max = check_real("t_max", t_max, positive=True)
    low, high = _check_freq_range(freq_range)
    amplitude = check_real("amplitude", amplitude, positive=True)
    noise_std = check_real("noise_std", noise_std, nonnegative=True)
    fraction = check_real("observed_fraction", observed_fraction, positive=True)
    if fraction > 1:
        raise ValueError(
            f"`observed_fraction` must be in (0, 1] (the share of grid points each series "
            f"observes); got {fraction}"
        )
    rng = _as_generator(random_state)

    # t_max · (1 - U[0, 1)) lies in (0, t_max], so no drawn time collides with t = 0.
    drawn = t_max * (1.0 - rng.random(n_points - 1))
    grid = np.concatenate([[0.0], np.sort(drawn)])  # (n_points,)
    frequency = rng.uniform(low, high, size=n_series)  # (n_series,)
    phase = rng.uniform(0.0, 2.0 * np.pi, size=n_series)  # (n_series,)
    # (n_series, 1) * (1, n_points) -> (n_series, n_points)
    clean = amplitude * np.sin(2.0 * np.pi * frequency[:, None] * grid[None, :] + phase[:, None])

    n_obs = max(2, round(fraction * n_points))
    chosen = _random_subsets(rng, n_series, n_points, n_obs)  # (n_series, n_obs) grid indices
    clean_obs = np.take_along_axis(clean, chosen, axis=1)  # (n_series, n_obs)
    noisy = clean_obs + rng.normal(0.0, noise_std, size=clean_obs.shape)

    ids = np.arange(n_series)
    observed = _long_frame(
        np.repeat(ids, n_obs), grid[chosen].ravel(), noisy.reshape(-1, 1), ["x"]
    )  # (n_series · n_obs) rows
    truth = _long_frame(
        np.repeat(ids, n_points), np.tile(grid, n_series), clean.reshape(-1, 1), ["x"]
    )  # (n_series · n_points) rows
    params = pd.DataFrame({"id": ids.astype(np.int64), "frequency": frequency, "phase": phase})
    return SyntheticData(observed=observed, truth=truth, params=params)


# ---------------------------------------------------------------------------------------------
# spirals (Chen et al. 2018)


def spiral_truth(
    times: Any, clockwise: bool | np.bool_, a: float = 0.0, b: float = 0.3
) -> np.ndarray:
    """The noise-free Archimedean spiral at arbitrary times.

    Counter-clockwise: ``r = a + b·t``, ``(x, y) = (r cos t, r sin t)`` (the angle is the time).
    Clockwise: the mirror image ``(x, -y)``.

    Args:
        times: 1-D array-like of times, shape ``(n,)``.
        clockwise: Direction of the spiral (``params["clockwise"]`` of :func:`make_spiral`).
        a: Radius at ``t = 0``.
        b: Radius growth per radian.

    Returns:
        Array of shape ``(n, 2)``: columns ``x`` and ``y``.

    Example:
        >>> spiral_truth([0.0, np.pi / 2], clockwise=True, a=1.0, b=0.0).round(6).tolist()
        [[1.0, -0.0], [0.0, -1.0]]
    """
    t = np.asarray(times, dtype=np.float64)
    if t.ndim != 1:
        raise ValueError(
            f"`times` must be 1-D; got shape {t.shape}. Flatten it, e.g. np.ravel(times)"
        )
    if not isinstance(clockwise, bool | np.bool_):
        raise TypeError(
            f"`clockwise` must be True or False; got {clockwise!r} ({type(clockwise).__name__})"
        )
    a = check_real("a", a)
    b = check_real("b", b)
    radius = a + b * t  # (n,)
    y_sign = -1.0 if clockwise else 1.0
    return np.stack([radius * np.cos(t), y_sign * radius * np.sin(t)], axis=1)  # (n, 2)


def make_spiral(
    n_series: int = 1000,
    n_points: int = 100,
    n_grid: int = 500,
    window: int | None = None,
    t_max: float = 6 * np.pi,
    a: float = 0.0,
    b: float = 0.3,
    noise_std: float = 0.3,
    random_state: RandomState = 0,
) -> SyntheticData:
    """Clockwise and counter-clockwise Archimedean spirals, each a random irregular window.

    A dense grid of ``n_grid`` times ``np.linspace(0, t_max, n_grid)``. Each series is
    clockwise with probability 1/2 and spans ``window`` consecutive grid points starting at a
    uniformly random grid index; it observes ``n_points`` of them chosen at random without
    replacement (kept in time order), with ``N(0, noise_std²)`` noise on both coordinates.
    Times are the grid times themselves (not shifted to start at 0); the curve is
    :func:`spiral_truth`.

    Args:
        n_series: Number of spirals, ≥ 1. Ids are ``0 .. n_series - 1``.
        n_points: Observed points per spiral, ≥ 2 and ≤ ``window``.
        n_grid: Points of the dense grid, ≥ 2.
        window: Consecutive grid points each spiral spans, ``n_points ≤ window ≤ n_grid``.
            Default ``2 · n_points``, lowered to ``n_grid`` when the grid is shorter.
        t_max: End of the grid, > 0; the angle runs over ``[0, t_max]``.
        a: Radius at angle 0 (finite).
        b: Radius growth per radian, > 0.
        noise_std: Standard deviation of the observation noise, ≥ 0.
        random_state: Int seed, None (fresh entropy) or a ``numpy.random.Generator``.

    Returns:
        :class:`SyntheticData` with features ``"x"``, ``"y"``; ``truth`` has ``window`` rows
        per series and ``params`` has columns ``id``, ``clockwise`` (bool), ``t_start`` (the
        window's first grid time).

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: An argument is out of range.

    Example:
        >>> data = make_spiral(n_series=4, n_points=30, random_state=1)
        >>> data.observed.groupby("id").size().tolist()
        [30, 30, 30, 30]
        >>> list(data.params.columns)
        ['id', 'clockwise', 't_start']
    """
    n_series = check_int("n_series", n_series, minimum=1)
    n_points = check_int("n_points", n_points, minimum=2)
    n_grid = check_int("n_grid", n_grid, minimum=2)
    if n_points > n_grid:
        raise ValueError(
            f"`n_points` must be at most n_grid={n_grid} (points are drawn from the grid "
            f"without replacement); got {n_points}. Raise n_grid or lower n_points"
        )
    if window is None:
        window = min(2 * n_points, n_grid)
    window = check_int("window", window)
    if window < n_points:
        raise ValueError(
            f"`window` must be at least {n_points} (n_points: the observed points are drawn from "
            f"the window); got {window}. Widen the window or lower n_points"
        )
    if window > n_grid:
        raise ValueError(
            f"`window` must be at most n_grid={n_grid}; got {window}. Raise n_grid or narrow "
            "the window (window=None gives 2 * n_points, capped at n_grid)"
        )
    t_max = check_real("t_max", t_max, positive=True)
    a = check_real("a", a)
    b = check_real("b", b, positive=True)
    noise_std = check_real("noise_std", noise_std, nonnegative=True)
    rng = _as_generator(random_state)

    grid = np.linspace(0.0, t_max, n_grid)  # (n_grid,)
    clockwise = rng.random(n_series) < 0.5  # (n_series,)
    starts = rng.integers(0, n_grid - window + 1, size=n_series)  # (n_series,)
    window_idx = starts[:, None] + np.arange(window)[None, :]  # (n_series, window)
    window_t = grid[window_idx]  # (n_series, window)

    # Counter-clockwise curve for every series, then mirror y where clockwise: one vectorised
    # pass instead of one spiral_truth call per series.
    clean = spiral_truth(window_t.ravel(), clockwise=False, a=a, b=b)
    clean = clean.reshape(n_series, window, 2)  # (n_series, window, 2)
    clean[..., 1] *= np.where(clockwise, -1.0, 1.0)[:, None]  # (n_series, 1) broadcast

    picked = _random_subsets(rng, n_series, window, n_points)  # (n_series, n_points)
    clean_obs = np.take_along_axis(clean, picked[..., None], axis=1)  # (n_series, n_points, 2)
    noisy = clean_obs + rng.normal(0.0, noise_std, size=clean_obs.shape)
    obs_t = np.take_along_axis(window_t, picked, axis=1)  # (n_series, n_points)

    ids = np.arange(n_series)
    observed = _long_frame(
        np.repeat(ids, n_points), obs_t.ravel(), noisy.reshape(-1, 2), ["x", "y"]
    )  # (n_series · n_points) rows
    truth = _long_frame(
        np.repeat(ids, window), window_t.ravel(), clean.reshape(-1, 2), ["x", "y"]
    )  # (n_series · window) rows
    params = pd.DataFrame(
        {"id": ids.astype(np.int64), "clockwise": clockwise, "t_start": grid[starts]}
    )
    return SyntheticData(observed=observed, truth=truth, params=params)


# ---------------------------------------------------------------------------------------------
# registry

# ---------------------------------------------------------------------------------------------
# clinical-style events (for the Poisson-process head)


def clinical_intensity(
    times: Any, frequency: float, phase: float, base_rate: float, modulation: float
) -> np.ndarray:
    """The true visit rate of :func:`make_clinical_events`: ``base · (1 + m · sin(2π f t + φ))``.

    ``times`` ``(n,)`` → ``(n,)``; the health curve ``sin(2π f t + φ)`` is 1 when most unwell.
    """
    t = np.asarray(times, dtype=np.float64)
    return base_rate * (1.0 + modulation * np.sin(2.0 * np.pi * frequency * t + phase))


def make_clinical_events(
    n_series: int = 300,
    t_max: float = 10.0,
    base_rate: float = 3.0,
    modulation: float = 0.6,
    freq_range: tuple[float, float] = (0.08, 0.16),
    n_labs: int = 20,
    labs_at_visits: bool = False,
    noise_std: float = 0.05,
    random_state: RandomState = 0,
) -> SyntheticData:
    """Patients whose visits come faster when they are unwell, with a lab value per patient.

    Patient ``i`` has a health curve ``x_i(t) = sin(2π f_i t + φ_i)`` on ``[0, t_max]``
    (``f_i ~ U(freq_range)``, ``φ_i ~ U(0, 2π)``; 1 is most unwell). Visits are an
    inhomogeneous Poisson process of rate ``λ_i(t) = base_rate · (1 + modulation · x_i(t))``,
    drawn exactly by thinning under its maximum ``base_rate · (1 + modulation)``. The lab ``x``
    is measured with ``N(0, noise_std²)`` noise:

    - ``labs_at_visits=False``: at ``t = 0``, ``t = t_max`` and ``n_labs - 2`` uniform times (the
      visits come as a separate ``events`` frame; each series' window is ``[0, t_max]``);
    - ``labs_at_visits=True``: at every visit, so the observation times *are* the events (the
      setting of Rubanova et al. 2019); patients with fewer than 2 visits are dropped.

    Args:
        n_series: Patients, ≥ 1. Ids are ``0 .. n_series - 1``.
        t_max: Follow-up length, > 0.
        base_rate: Mean visit rate, > 0.
        modulation: Relative swing of the rate, in ``[0, 1)``.
        freq_range: ``(low, high)`` health-curve frequencies, cycles per time unit.
        n_labs: Lab times per patient when ``labs_at_visits`` is False, ≥ 2.
        labs_at_visits: Measure the lab at the visits instead.
        noise_std: Lab noise std, ≥ 0.
        random_state: Int seed, None or a ``numpy.random.Generator``.

    Returns:
        :class:`SyntheticData` with feature ``"x"``, ``events`` (kind ``"visit"``),
        ``intensity`` (the true rate on a 200-point grid per patient) and ``params`` (``id``,
        ``frequency``, ``phase``, ``base_rate``, ``modulation``).

    Example:
        >>> data = make_clinical_events(n_series=2, random_state=0)
        >>> list(data.events.columns), data.events["kind"].unique().tolist()
        (['id', 'time', 'kind'], ['visit'])
    """
    n_series = check_int("n_series", n_series, minimum=1)
    t_max = check_real("t_max", t_max, positive=True)
    base_rate = check_real("base_rate", base_rate, positive=True)
    modulation = check_real("modulation", modulation, nonnegative=True)
    if modulation >= 1:
        raise ValueError(f"`modulation` must be in [0, 1) so the rate stays > 0; got {modulation}")
    low, high = _check_freq_range(freq_range)
    n_labs = check_int("n_labs", n_labs, minimum=2)
    noise_std = check_real("noise_std", noise_std, nonnegative=True)
    rng = _as_generator(random_state)

    frequency = rng.uniform(low, high, size=n_series)
    phase = rng.uniform(0.0, 2.0 * np.pi, size=n_series)
    peak = base_rate * (1.0 + modulation)
    grid = np.linspace(0.0, t_max, 200)
    obs_rows, event_rows, truth_rows, rate_rows, kept = [], [], [], [], []
    for i in range(n_series):
        rate = lambda t, i=i: clinical_intensity(t, frequency[i], phase[i], base_rate, modulation)  # noqa: E731
        health = lambda t, i=i: np.sin(2.0 * np.pi * frequency[i] * t + phase[i])  # noqa: E731
        candidates = np.sort(rng.uniform(0.0, t_max, size=rng.poisson(peak * t_max)))
        visits = candidates[rng.random(candidates.size) * peak < rate(candidates)]
        if labs_at_visits:
            if visits.size < 2:
                continue
            lab_times = visits
        else:
            inner = np.sort(rng.uniform(0.0, t_max, size=n_labs - 2))
            lab_times = np.unique(np.concatenate([[0.0, t_max], inner]))
        labs = health(lab_times) + rng.normal(0.0, noise_std, size=lab_times.size)
        kept.append(i)
        obs_rows.append(pd.DataFrame({"id": i, "time": lab_times, "x": labs}))
        event_rows.append(pd.DataFrame({"id": i, "time": visits, "kind": "visit"}))
        truth_rows.append(pd.DataFrame({"id": i, "time": grid, "x": health(grid)}))
        rate_rows.append(pd.DataFrame({"id": i, "time": grid, "intensity": rate(grid)}))
    if not kept:
        raise ValueError("no patient had 2 visits; raise base_rate, t_max or n_series")
    ids = np.asarray(kept, dtype=np.int64)
    params = pd.DataFrame(
        {
            "id": ids,
            "frequency": frequency[ids],
            "phase": phase[ids],
            "base_rate": base_rate,
            "modulation": modulation,
        }
    )

    def stack(rows: list[pd.DataFrame]) -> pd.DataFrame:
        out = pd.concat(rows, ignore_index=True)
        return out.astype({"id": np.int64})

    return SyntheticData(
        observed=stack(obs_rows),
        truth=stack(truth_rows),
        params=params,
        events=stack(event_rows),
        intensity=stack(rate_rows),
    )
