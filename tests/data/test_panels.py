"""Panel families: frame contracts, ground truth, noise, each family's physics, bad arguments."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import latentode.data as data_pkg
import latentode.data.panels as panels
from latentode.data import frame_to_series
from latentode.data.panels import (
    PANELS,
    make_absorption,
    make_growth,
    make_lotka_volterra,
    make_oscillators,
    make_sparse_sines,
)
from latentode.data.synthetic import SyntheticData

SMALL = {
    "oscillators": {"n_series": 8, "n_points": 15},
    "absorption": {"n_series": 8},
    "growth": {"n_series": 8},
    "lotka_volterra": {"n_series": 8, "n_points": 15, "t_max": 5.0},
    "sparse_sines": {"n_series": 8},
}
FEATURES = {
    "oscillators": ["x", "v"],
    "absorption": ["conc"],
    "growth": ["height"],
    "lotka_volterra": ["prey", "predator"],
    "sparse_sines": ["y"],
}
PARAMS = {
    "oscillators": ["id", "omega", "zeta", "amplitude", "phase"],
    "absorption": ["id", "ka", "ke", "volume", "dose"],
    "growth": ["id", "level", "slope", "curvature"],
    "lotka_volterra": ["id", "alpha", "beta", "delta", "gamma", "prey0", "predator0"],
    "sparse_sines": ["id", "amplitude", "frequency", "phase", "offset"],
}
NAMES = sorted(PANELS)


def _make(name, **overrides):
    return PANELS[name](**{**SMALL[name], **overrides})


def _observed_with_truth(data):
    """Observed rows joined to the truth at the same (id, time); every row must find its match."""
    merged = data.observed.merge(
        data.truth, on=["id", "time"], how="left", suffixes=("", "_true"), validate="1:1"
    )
    assert len(merged) == len(data.observed)
    return merged


def _residuals(data, name):
    merged = _observed_with_truth(data)
    parts = [(merged[f] - merged[f"{f}_true"]).dropna() for f in FEATURES[name]]
    return np.concatenate(parts)


# --- registry ---------------------------------------------------------------------------------


def test_registry_and_package_exports():
    assert list(PANELS) == ["oscillators", "absorption", "growth", "lotka_volterra", "sparse_sines"]
    assert data_pkg.PANELS is PANELS
    for name, func in PANELS.items():
        assert getattr(data_pkg, func.__name__) is func
        assert getattr(panels, func.__name__) is func
        assert func.__name__ == f"make_{name}"
        assert func.__module__ == f"latentode.data.panels.{name}"  # one family per module
    assert sorted(panels.__all__) == sorted(["PANELS", *(f.__name__ for f in PANELS.values())])


def test_package_imports_only_numpy_pandas_and_the_synthetic_module():
    package = Path(panels.__file__).parent
    families = {f"latentode.data.panels.{name}" for name in PANELS}
    allowed = {"__future__", "collections.abc", "typing", "numpy", "pandas"}
    allowed |= {"latentode._validation", "latentode.data.synthetic"}
    allowed |= {"latentode.data.panels._common", *families}
    for path in sorted(package.glob("*.py")):
        modules = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules.add(node.module)
        assert modules <= allowed, (path.name, modules - allowed)


# --- frame contracts --------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_frames_have_long_columns_dtypes_and_order(name):
    data = _make(name)
    assert isinstance(data, SyntheticData)
    columns = ["id", "time", *FEATURES[name]]
    n_series = SMALL[name]["n_series"]
    for frame in (data.observed, data.truth):
        assert list(frame.columns) == columns
        assert frame["id"].dtype == np.int64
        assert all(frame[c].dtype == np.float64 for c in columns[1:])
        assert frame.index.equals(pd.RangeIndex(len(frame)))
        assert frame["id"].unique().tolist() == list(range(n_series))  # sorted, none missing
        assert (frame.groupby("id")["time"].diff().dropna() > 0).all()  # strictly increasing
        assert frame[["id", "time"]].notna().all().all()
    assert data.observed[FEATURES[name]].notna().any(axis=1).all()  # ≥ 1 observed per row
    assert data.truth.notna().all().all()
    assert list(data.params.columns) == PARAMS[name]
    assert data.params["id"].tolist() == list(range(n_series))
    assert (data.params.dtypes.iloc[1:] == np.float64).all()


@pytest.mark.parametrize("name", NAMES)
def test_observed_frames_pass_the_data_layer(name):
    series, fmt = frame_to_series(_make(name).observed)
    assert len(series) == SMALL[name]["n_series"]
    assert list(fmt.value_cols) == FEATURES[name]


@pytest.mark.parametrize("name", NAMES)
def test_each_series_has_its_own_times(name):
    data = _make(name)
    grids = {tuple(g["time"]) for _, g in data.observed.groupby("id")}
    assert len(grids) == SMALL[name]["n_series"]


@pytest.mark.parametrize("name", NAMES)
def test_truth_covers_observed_times_and_a_dense_window_grid(name):
    data = _make(name)
    _observed_with_truth(data)  # every observed (id, time) is in truth, once
    for series_id, obs in data.observed.groupby("id"):
        times = data.truth.loc[data.truth["id"] == series_id, "time"].to_numpy()
        first, last = obs["time"].iloc[0], obs["time"].iloc[-1]
        assert times[0] == first
        assert times[-1] == last
        assert len(times) >= 50
        grid = np.linspace(first, last, 50)
        nearest = np.abs(times[None, :] - grid[:, None]).min(axis=1)
        assert nearest.max() < 1e-9 * max(1.0, last)


# --- randomness -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_frames_different_seed_different(name):
    first, again = _make(name, random_state=7), _make(name, random_state=7)
    for field in ("observed", "truth", "params"):
        pd.testing.assert_frame_equal(getattr(first, field), getattr(again, field))
    other = _make(name, random_state=8)
    assert not first.params.equals(other.params)
    assert not first.observed.equals(other.observed)


@pytest.mark.parametrize("name", NAMES)
def test_generator_numpy_int_and_none_are_accepted(name):
    from_int = _make(name, random_state=5)
    for state in (np.random.default_rng(5), np.int64(5)):
        pd.testing.assert_frame_equal(_make(name, random_state=state).observed, from_int.observed)
    rng = np.random.default_rng(5)
    assert not _make(name, random_state=rng).params.equals(_make(name, random_state=rng).params)
    assert len(_make(name, random_state=None).params) == SMALL[name]["n_series"]


# --- noise ------------------------------------------------------------------------------------

ZERO_NOISE = {"absorption": {"noise_std": 0.0, "prop_noise": 0.0}}


@pytest.mark.parametrize("name", NAMES)
def test_zero_noise_observes_the_truth_exactly(name):
    data = _make(name, **ZERO_NOISE.get(name, {"noise_std": 0.0}))
    assert _residuals(data, name).max(initial=0.0) == 0.0
    assert _residuals(data, name).min(initial=0.0) == 0.0


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("oscillators", {"n_series": 60}),
        ("growth", {"n_series": 300}),
        ("lotka_volterra", {"n_series": 60}),
        ("sparse_sines", {"n_series": 500}),
    ],
)
def test_additive_noise_has_the_requested_variance(name, kwargs):
    data = PANELS[name](**kwargs)  # the default noise_std, which the benchmark uses
    noise_std = inspect.signature(PANELS[name]).parameters["noise_std"].default
    residuals = _residuals(data, name)
    assert len(residuals) >= 2000
    assert abs(residuals.mean()) < 0.1 * noise_std
    assert np.mean(residuals**2) == pytest.approx(noise_std**2, rel=0.12)


def test_absorption_noise_is_additive_plus_proportional():
    data = make_absorption(n_series=300, noise_std=0.05, prop_noise=0.1, random_state=1)
    merged = _observed_with_truth(data)
    high = merged[merged["conc_true"] > 1.0]  # clipping at 0 is 9 sd away: negligible
    z = (high["conc"] - high["conc_true"]) / np.sqrt(0.05**2 + (0.1 * high["conc_true"]) ** 2)
    assert len(z) > 1500
    assert abs(z.mean()) < 0.1
    assert z.std() == pytest.approx(1.0, rel=0.1)


# --- oscillators ------------------------------------------------------------------------------


def test_oscillator_velocity_is_the_derivative_of_position_over_omega():
    # A short window makes the 50-point grid fine enough for a second-order difference.
    data = make_oscillators(n_series=10, n_points=10, t_max=2.0, random_state=0)
    omega = data.params.set_index("id")["omega"]
    for series_id, truth in data.truth.groupby("id"):
        t, x, v = (truth[c].to_numpy() for c in ("time", "x", "v"))
        slope = np.gradient(x, t, edge_order=2) / omega[series_id]
        np.testing.assert_allclose(slope[1:-1], v[1:-1], atol=5e-3)


def test_oscillator_truth_follows_the_damped_solution():
    data = make_oscillators(n_series=5, random_state=2)
    t = data.truth.merge(data.params, on="id")
    decay = t["amplitude"] * np.exp(-t["zeta"] * t["omega"] * t["time"])
    angle = t["omega"] * np.sqrt(1 - t["zeta"] ** 2) * t["time"] + t["phase"]
    np.testing.assert_allclose(t["x"], decay * np.cos(angle), atol=1e-12)
    # With v = x'/ω the energy x² + v² has derivative -4ζ x'²/ω: it never grows.
    energy = (t["x"] ** 2 + t["v"] ** 2).groupby(t["id"]).diff().dropna()
    assert energy.max() <= 1e-12
    assert energy.min() < 0


def test_oscillator_times_missingness_and_parameter_ranges():
    data = make_oscillators(n_series=200, n_points=20, missing=0.3, random_state=0)
    obs = data.observed
    assert (obs.groupby("id")["time"].min() == 0.0).all()
    assert obs["time"].max() <= 10.0
    sizes = obs.groupby("id").size()
    assert sizes.max() <= 24
    # Rows with both entries missing are left out: the missing share among the kept rows is
    # m / (1 + m) for two features.
    share = obs[["x", "v"]].isna().to_numpy().mean()
    assert share == pytest.approx(0.3 / 1.3, abs=0.02)
    assert make_oscillators(n_series=5, missing=0.0).observed.notna().all().all()
    p = data.params
    assert p["omega"].between(0.8, 2.0).all()
    assert p["zeta"].between(0.02, 0.15).all()
    assert p["amplitude"].between(0.5, 1.5).all()
    assert p["phase"].between(0.0, 2 * np.pi).all()


def test_oscillators_keep_every_series_under_heavy_missingness():
    data = make_oscillators(n_series=50, n_points=2, missing=0.9, random_state=0)
    assert data.observed["id"].unique().tolist() == list(range(50))
    assert (data.observed.groupby("id").size() == 2).all()
    assert (data.truth.groupby("id").size() == 50).all()


# --- absorption -------------------------------------------------------------------------------


def test_absorption_truth_is_the_one_compartment_curve():
    data = make_absorption(n_series=30, random_state=0)
    t = data.truth.merge(data.params, on="id")
    ka, ke, time = t["ka"], t["ke"], t["time"]
    expected = (
        t["dose"] * ka / (t["volume"] * (ka - ke)) * (np.exp(-ke * time) - np.exp(-ka * time))
    )
    np.testing.assert_allclose(t["conc"], expected, rtol=1e-12)
    assert (data.observed["conc"] >= 0).all()
    assert (data.truth["conc"] >= 0).all()
    for series_id, truth in data.truth.groupby("id"):
        assert truth["time"].iloc[0] == 0.0
        assert truth["conc"].iloc[0] == 0.0
        peak = truth["time"].iloc[truth["conc"].argmax()]
        p = data.params.loc[series_id]
        assert peak > 0.0
        step = truth["time"].iloc[-1] / 49
        assert peak == pytest.approx(np.log(p["ka"] / p["ke"]) / (p["ka"] - p["ke"]), abs=step)
    # Concentrations of order 1-10.
    assert 1.0 < data.truth["conc"].max() < 20.0


def test_absorption_schedule_is_jittered_and_thinned():
    data = make_absorption(n_series=400, random_state=0)
    obs = data.observed
    sizes = obs.groupby("id").size()
    assert sizes.max() <= 11
    assert (obs.groupby("id")["time"].min() == 0.0).all()
    assert obs["time"].max() <= 24 * 1.15
    # 10 non-zero times per subject, each dropped with probability 0.15.
    kept = (sizes - 1).sum() / (10 * 400)
    assert kept == pytest.approx(0.85, abs=0.02)
    late = obs.loc[obs["time"] > 15, "time"]
    assert late.between(24 * 0.85, 24 * 1.15).all()
    assert late.std() > 1.0
    p = data.params
    assert p["ka"].between(0.8, 3.0).all()
    assert p["ke"].between(0.05, 0.2).all()
    assert p["volume"].between(0.7, 1.4).all()
    assert (p["dose"] == 10.0).all()


def test_absorption_clips_negative_concentrations_to_zero():
    data = make_absorption(n_series=200, noise_std=0.5, random_state=0)
    assert (data.observed["conc"] >= 0).all()
    assert (data.observed["conc"] == 0.0).sum() > 50  # at t = 0 about half are clipped


# --- growth -----------------------------------------------------------------------------------


def test_growth_slopes_are_recovered_by_least_squares():
    data = make_growth(n_series=100, random_state=0)
    c = data.params["curvature"].iloc[0]
    assert c == 0.08
    errors = []
    for series_id, obs in data.observed.groupby("id"):
        t = obs["time"].to_numpy()
        design = np.stack([np.ones_like(t), t], axis=1)
        (_level, slope), *_ = np.linalg.lstsq(design, obs["height"] + c * t**2, rcond=None)
        errors.append(slope - data.params.loc[series_id, "slope"])
    errors = np.asarray(errors)
    # Slope standard error is about 0.5 / sqrt(Σ (t - t̄)²) ≈ 0.07 cm per year.
    assert np.abs(errors).max() < 0.4
    assert np.sqrt(np.mean(errors**2)) < 0.12


def test_growth_occasions_levels_and_slopes():
    data = make_growth(n_series=400, random_state=0)
    obs = data.observed
    sizes = obs.groupby("id").size()
    assert sizes.max() <= 9
    assert (obs.groupby("id")["time"].min() == 0.0).all()
    off = obs["time"] - obs["time"].round()
    assert off.abs().max() <= 0.3
    assert off.abs().max() > 0.25
    assert obs["time"].max() <= 8.3
    assert (sizes - 1).sum() / (8 * 400) == pytest.approx(0.9, abs=0.02)
    p = data.params
    assert p["level"].mean() == pytest.approx(140, abs=1.5)
    assert p["level"].std() == pytest.approx(8, rel=0.15)
    assert p["slope"].mean() == pytest.approx(6, abs=0.2)
    assert p["slope"].std() == pytest.approx(1.2, rel=0.15)
    assert obs["height"].between(100, 250).all()


# --- Lotka–Volterra ---------------------------------------------------------------------------


def test_lotka_volterra_conserves_its_first_integral():
    data = make_lotka_volterra(n_series=20, random_state=0)
    t = data.truth.merge(data.params, on="id")
    first_integral = (
        t["delta"] * t["prey"]
        - t["gamma"] * np.log(t["prey"])
        + t["beta"] * t["predator"]
        - t["alpha"] * np.log(t["predator"])
    )
    by_series = first_integral.groupby(t["id"])
    drift = (by_series.max() - by_series.min()) / by_series.mean().abs()
    assert drift.max() < 1e-4


def test_lotka_volterra_starts_at_its_initial_state_and_cycles():
    data = make_lotka_volterra(n_series=20, random_state=0)
    start = data.truth.groupby("id").first()
    np.testing.assert_array_equal(start["time"], 0.0)
    np.testing.assert_array_equal(start["prey"], data.params["prey0"])
    np.testing.assert_array_equal(start["predator"], data.params["predator0"])
    assert (data.truth[["prey", "predator"]] > 0).all().all()
    # Over 15 time units (more than one period of about 2π/√(αγ)) prey rises and falls.
    for _, truth in data.truth.groupby("id"):
        turns = np.sign(np.diff(truth["prey"].to_numpy()))
        assert (np.diff(turns) != 0).sum() >= 2
    p = data.params
    assert p["alpha"].between(0.8, 1.2).all()
    assert p["gamma"].between(0.8, 1.2).all()
    assert p["beta"].between(0.4, 0.6).all()
    assert p["delta"].between(0.4, 0.6).all()
    assert p[["prey0", "predator0"]].stack().between(0.5, 2.0).all()


def test_lotka_volterra_values_do_not_depend_on_the_other_times():
    # Truth at a time comes from the integrator, not from interpolation between sampled times:
    # the same series observed more sparsely has the same truth at the shared times.
    dense = make_lotka_volterra(n_series=5, n_points=40, missing=0.0, random_state=3)
    sparse = make_lotka_volterra(n_series=5, n_points=5, missing=0.0, random_state=3)
    pd.testing.assert_frame_equal(dense.params, sparse.params)
    assert (sparse.observed.groupby("id")["time"].min() == 0.0).all()
    both = dense.truth.merge(sparse.truth, on=["id", "time"], suffixes=("_d", "_s"))
    assert len(both) >= 5  # at least t = 0 per series
    np.testing.assert_allclose(both["prey_d"], both["prey_s"], rtol=1e-12)


# --- sparse sines -----------------------------------------------------------------------------


def test_sparse_sine_counts_times_and_formula():
    data = make_sparse_sines(n_series=300, random_state=0)
    sizes = data.observed.groupby("id").size()
    assert sizes.between(4, 12).all()
    assert set(sizes) == set(range(4, 13))  # both ends of the range are reached
    starts = data.observed.groupby("id")["time"].min()
    assert (starts > 0).mean() > 0.9  # not forced to start at 0
    assert data.observed["time"].between(0.0, 10.0).all()
    t = data.truth.merge(data.params, on="id")
    wave = np.sin(2 * np.pi * t["frequency"] * t["time"] + t["phase"])
    np.testing.assert_allclose(t["y"], t["amplitude"] * wave + t["offset"], atol=1e-12)
    p = data.params
    assert p["amplitude"].between(0.5, 2.0).all()
    assert p["frequency"].between(0.05, 0.2).all()
    assert p["offset"].std() == pytest.approx(1.0, rel=0.15)
    fixed = make_sparse_sines(n_series=4, points_range=[5, 5], random_state=0)
    assert fixed.observed.groupby("id").size().tolist() == [5] * 4


# --- bad arguments ----------------------------------------------------------------------------

BAD_COMMON = [
    ({"n_series": 0}, ValueError, r"`n_series` must be at least 1; got 0"),
    ({"n_series": 2.5}, TypeError, r"`n_series` must be an integer; got 2.5"),
    ({"n_series": True}, TypeError, r"`n_series` must be an integer; got True"),
    ({"noise_std": -0.1}, ValueError, r"`noise_std` must be >= 0; got -0.1"),
    ({"noise_std": np.nan}, ValueError, r"`noise_std` must be finite"),
    ({"noise_std": "0.1"}, TypeError, r"`noise_std` must be a real number; got '0.1'"),
    ({"random_state": "0"}, TypeError, r"`random_state` must be an int, None or a numpy"),
    ({"random_state": 1.5}, TypeError, r"`random_state` must be .*; got 1.5 \(float\)"),
    ({"random_state": True}, TypeError, r"`random_state` must be .*; got True \(bool\)"),
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("kwargs", "error", "match"), BAD_COMMON)
def test_bad_common_arguments_raise(name, kwargs, error, match):
    with pytest.raises(error, match=match):
        _make(name, **kwargs)


BAD_TIMES = [
    ({"n_points": 1}, ValueError, r"`n_points` must be at least 2; got 1"),
    ({"n_points": 10.0}, TypeError, r"`n_points` must be an integer; got 10.0"),
    ({"t_max": 0.0}, ValueError, r"`t_max` must be > 0; got 0.0"),
    ({"t_max": np.inf}, ValueError, r"`t_max` must be finite"),
    ({"missing": 1.0}, ValueError, r"`missing` must be in \[0, 1\) .*; got 1.0"),
    ({"missing": -0.1}, ValueError, r"`missing` must be >= 0; got -0.1"),
    ({"missing": None}, TypeError, r"`missing` must be a real number; got None"),
]


@pytest.mark.parametrize("name", ["oscillators", "lotka_volterra"])
@pytest.mark.parametrize(("kwargs", "error", "match"), BAD_TIMES)
def test_bad_time_and_missingness_arguments_raise(name, kwargs, error, match):
    with pytest.raises(error, match=match):
        _make(name, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"points_range": (6, 4)}, ValueError, r"low <= high; got \(6, 4\)\. Swap them"),
        ({"points_range": (1, 4)}, ValueError, r"`points_range\[0\]` must be at least 2; got 1"),
        ({"points_range": (2, 3, 4)}, ValueError, r"a \(low, high\) pair; got 3 values"),
        ({"points_range": 5}, TypeError, r"`points_range` must be a \(low, high\) pair.*int"),
        ({"points_range": "ab"}, TypeError, r"`points_range` must be a \(low, high\) pair"),
        ({"points_range": (4, 8.5)}, TypeError, r"`points_range\[1\]` must be an integer"),
        ({"t_max": -1.0}, ValueError, r"`t_max` must be > 0; got -1.0"),
    ],
)
def test_bad_sparse_sine_arguments_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        _make("sparse_sines", **kwargs)


def test_bad_absorption_arguments_raise():
    with pytest.raises(ValueError, match=r"`prop_noise` must be >= 0; got -0.2"):
        make_absorption(prop_noise=-0.2)
    with pytest.raises(TypeError, match=r"`prop_noise` must be a real number; got None"):
        make_absorption(prop_noise=None)


def test_options_after_n_series_are_keyword_only():
    with pytest.raises(TypeError, match="positional argument"):
        make_growth(10, 0.5)  # type: ignore[misc]
