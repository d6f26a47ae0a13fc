"""Synthetic generators: frame contracts, ground truth, noise, reproducibility, bad arguments."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import latentode.data.synthetic as synthetic
from latentode.data.synthetic import SyntheticData, make_periodic, make_spiral, spiral_truth

# The two literature toys of this module; the registry of every generator is tested in
# test_generators.py.
TOYS = {"periodic": make_periodic, "spiral": make_spiral}

SMALL = {
    "periodic": {"n_series": 6, "n_points": 30},
    "spiral": {"n_series": 6, "n_points": 20, "n_grid": 120},
}
FEATURES = {"periodic": ["x"], "spiral": ["x", "y"]}


def _make(name, **overrides):
    return TOYS[name](**{**SMALL[name], **overrides})


def _observed_with_truth(data):
    """Observed rows joined to the truth at the same (id, time); every row must find its match."""
    merged = data.observed.merge(
        data.truth, on=["id", "time"], how="left", suffixes=("", "_true"), validate="1:1"
    )
    assert len(merged) == len(data.observed)
    return merged


# --- contracts --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TOYS))
def test_frames_have_long_columns_and_dtypes(name):
    data = _make(name)
    assert isinstance(data, SyntheticData)
    columns = ["id", "time", *FEATURES[name]]
    for frame in (data.observed, data.truth):
        assert list(frame.columns) == columns
        assert frame["id"].dtype == np.int64
        assert all(frame[c].dtype == np.float64 for c in columns[1:])
        assert frame.notna().all().all()
        assert frame.index.equals(pd.RangeIndex(len(frame)))
    assert data.params["id"].tolist() == list(range(SMALL[name]["n_series"]))
    assert set(data.observed["id"]) == set(data.params["id"]) == set(data.truth["id"])


def test_result_is_frozen():
    data = _make("periodic")
    with pytest.raises(AttributeError):
        data.observed = data.truth  # type: ignore[misc]


def test_periodic_shapes():
    data = make_periodic(n_series=4, n_points=30, observed_fraction=0.5, random_state=0)
    assert data.observed.shape == (4 * 15, 3)
    assert data.truth.shape == (4 * 30, 3)
    assert list(data.params.columns) == ["id", "frequency", "phase"]
    assert data.params.dtypes.tolist() == [np.int64, np.float64, np.float64]


def test_spiral_shapes():
    data = make_spiral(n_series=5, n_points=20, n_grid=100, window=50, random_state=0)
    assert data.observed.shape == (5 * 20, 4)
    assert data.truth.shape == (5 * 50, 4)
    assert list(data.params.columns) == ["id", "clockwise", "t_start"]
    assert data.params["clockwise"].dtype == bool
    assert data.params["t_start"].dtype == np.float64


def test_defaults_follow_the_papers_setups():
    periodic = make_periodic(n_series=3, random_state=0)
    assert periodic.observed.groupby("id").size().tolist() == [50] * 3
    assert periodic.truth.groupby("id").size().tolist() == [100] * 3
    assert periodic.truth["time"].max() <= 5.0
    # Rubanova et al.'s frequencies: U(0.4, 0.8), checked on many series.
    freqs = make_periodic(n_series=2000, n_points=5, random_state=1).params["frequency"]
    assert 0.4 <= freqs.min() < 0.41
    assert 0.79 < freqs.max() <= 0.8
    spiral = make_spiral(n_series=3, random_state=0)
    assert spiral.observed.groupby("id").size().tolist() == [100] * 3
    assert spiral.truth.groupby("id").size().tolist() == [200] * 3  # window = 2 * n_points
    assert np.isin(spiral.truth["time"], np.linspace(0.0, 6 * np.pi, 500)).all()


def test_module_imports_only_numpy_pandas_and_stdlib():
    tree = ast.parse(Path(synthetic.__file__).read_text())
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    stdlib = {"__future__", "collections.abc", "dataclasses", "numbers", "typing"}
    assert modules <= stdlib | {"numpy", "pandas", "latentode._validation"}


# --- randomness -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TOYS))
def test_same_seed_gives_identical_frames(name):
    first, second = _make(name, random_state=7), _make(name, random_state=7)
    for field in ("observed", "truth", "params"):
        pd.testing.assert_frame_equal(getattr(first, field), getattr(second, field))


@pytest.mark.parametrize("name", sorted(TOYS))
def test_different_seed_gives_different_frames(name):
    first, second = _make(name, random_state=1), _make(name, random_state=2)
    assert not first.params.equals(second.params)
    assert not first.observed.equals(second.observed)


@pytest.mark.parametrize("name", sorted(TOYS))
def test_generator_numpy_int_and_none_are_accepted(name):
    from_int = _make(name, random_state=5)
    for state in (np.random.default_rng(5), np.int64(5)):
        pd.testing.assert_frame_equal(_make(name, random_state=state).observed, from_int.observed)
    # A shared Generator advances, so two calls give two different datasets.
    rng = np.random.default_rng(5)
    assert not _make(name, random_state=rng).params.equals(_make(name, random_state=rng).params)
    assert len(_make(name, random_state=None).params) == SMALL[name]["n_series"]


# --- time grids -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TOYS))
def test_observed_times_lie_on_the_truth_grid_and_increase(name):
    data = _make(name)
    for series_id, obs in data.observed.groupby("id"):
        grid = data.truth.loc[data.truth["id"] == series_id, "time"].to_numpy()
        assert np.all(np.diff(grid) > 0)
        times = obs["time"].to_numpy()
        assert np.all(np.diff(times) > 0)
        assert np.isin(times, grid).all()


def test_periodic_grid_is_shared_and_spans_zero_to_t_max():
    data = make_periodic(n_series=5, n_points=40, t_max=3.0, random_state=0)
    grids = [g["time"].to_numpy() for _, g in data.truth.groupby("id")]
    for grid in grids[1:]:
        np.testing.assert_array_equal(grid, grids[0])
    assert len(grids[0]) == 40
    assert grids[0][0] == 0.0
    assert grids[0][1] > 0.0
    assert grids[0][-1] <= 3.0
    # Each series observes its own subset of the shared grid.
    subsets = {tuple(g["time"]) for _, g in data.observed.groupby("id")}
    assert len(subsets) > 1


def test_spiral_times_are_the_linspace_grid_in_a_window():
    n_grid, t_max, window = 80, 10.0, 30
    data = make_spiral(n_series=8, n_points=12, n_grid=n_grid, window=window, t_max=t_max)
    grid = np.linspace(0.0, t_max, n_grid)
    for series_id, truth in data.truth.groupby("id"):
        times = truth["time"].to_numpy()
        start = int(np.flatnonzero(grid == times[0])[0])
        np.testing.assert_array_equal(times, grid[start : start + window])
        assert data.params.loc[series_id, "t_start"] == times[0]


def test_spiral_window_starts_vary_and_are_not_shifted_to_zero():
    data = make_spiral(n_series=40, n_points=10, n_grid=200, window=20, random_state=0)
    assert data.params["t_start"].nunique() > 10
    assert (data.params["t_start"] > 0).any()


def test_spiral_default_window_is_twice_n_points_capped_at_n_grid():
    data = make_spiral(n_series=3, n_points=10, n_grid=100, random_state=0)
    assert data.truth.groupby("id").size().tolist() == [20, 20, 20]
    capped = make_spiral(n_series=3, n_points=10, n_grid=15, random_state=0)
    assert capped.truth.groupby("id").size().tolist() == [15, 15, 15]
    assert (capped.params["t_start"] == 0.0).all()


# --- counts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_points", "fraction", "expected"),
    [(30, 0.5, 15), (31, 0.5, 16), (10, 1.0, 10), (10, 0.33, 3), (10, 0.01, 2), (2, 0.1, 2)],
)
def test_periodic_observed_count_is_rounded_fraction(n_points, fraction, expected):
    assert expected == max(2, round(fraction * n_points))
    data = make_periodic(n_series=4, n_points=n_points, observed_fraction=fraction)
    assert data.observed.groupby("id").size().tolist() == [expected] * 4


def test_spiral_observed_count_is_n_points():
    data = make_spiral(n_series=7, n_points=13, n_grid=60, window=13, random_state=0)
    assert data.observed.groupby("id").size().tolist() == [13] * 7
    # window == n_points: every window point is observed.
    np.testing.assert_array_equal(data.observed["time"], data.truth["time"])


# --- ground truth -----------------------------------------------------------------------------


def test_periodic_truth_follows_the_sine_formula():
    data = make_periodic(n_series=5, n_points=25, amplitude=2.5, random_state=1)
    truth = data.truth.merge(data.params, on="id")
    expected = 2.5 * np.sin(2 * np.pi * truth["frequency"] * truth["time"] + truth["phase"])
    np.testing.assert_allclose(truth["x"], expected, rtol=0, atol=1e-12)


def test_periodic_parameters_lie_in_their_ranges():
    data = make_periodic(n_series=300, n_points=5, freq_range=(1.0, 2.0), random_state=0)
    freq, phase = data.params["frequency"], data.params["phase"]
    assert freq.between(1.0, 2.0).all()
    assert phase.between(0.0, 2 * np.pi).all()
    # Spread over the whole range, not stuck at one value.
    assert freq.min() < 1.1
    assert freq.max() > 1.9
    assert phase.min() < 0.3
    assert phase.max() > 2 * np.pi - 0.3


@pytest.mark.parametrize(("a", "b"), [(0.0, 0.3), (0.5, 0.1)])
def test_spiral_truth_matches_spiral_truth_of_its_params(a, b):
    data = make_spiral(n_series=20, n_points=10, n_grid=100, a=a, b=b, random_state=0)
    assert data.params["clockwise"].any()  # both directions are covered
    assert not data.params["clockwise"].all()
    for series_id, truth in data.truth.groupby("id"):
        clockwise = data.params.loc[series_id, "clockwise"]
        expected = spiral_truth(truth["time"].to_numpy(), clockwise, a=a, b=b)
        np.testing.assert_allclose(truth[["x", "y"]].to_numpy(), expected, atol=1e-12)


def test_spiral_truth_formula_and_direction_flips_y():
    t = np.linspace(0.0, 4 * np.pi, 50)
    ccw = spiral_truth(t, clockwise=False, a=0.2, b=0.5)
    cw = spiral_truth(t, clockwise=True, a=0.2, b=0.5)
    r = 0.2 + 0.5 * t
    assert ccw.shape == (50, 2)
    np.testing.assert_allclose(ccw, np.stack([r * np.cos(t), r * np.sin(t)], axis=1))
    np.testing.assert_allclose(np.hypot(*ccw.T), r)  # Archimedean: r = a + b θ
    np.testing.assert_array_equal(cw[:, 0], ccw[:, 0])
    np.testing.assert_array_equal(cw[:, 1], -ccw[:, 1])
    # Counter-clockwise: the angle of (x, y) increases; clockwise: it decreases.
    assert np.all(np.diff(np.unwrap(np.arctan2(ccw[1:, 1], ccw[1:, 0]))) > 0)
    assert np.all(np.diff(np.unwrap(np.arctan2(cw[1:, 1], cw[1:, 0]))) < 0)
    # Accepts numpy booleans, as read back from params.
    np.testing.assert_array_equal(spiral_truth(t, np.bool_(True), a=0.2, b=0.5), cw)


def test_spiral_direction_is_roughly_balanced():
    data = make_spiral(n_series=400, n_points=2, n_grid=10, random_state=0)
    assert 0.4 < data.params["clockwise"].mean() < 0.6


# --- noise ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TOYS))
def test_zero_noise_observes_the_truth_exactly(name):
    merged = _observed_with_truth(_make(name, noise_std=0.0))
    for feature in FEATURES[name]:
        np.testing.assert_array_equal(merged[feature], merged[f"{feature}_true"])


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("periodic", {"n_series": 40, "n_points": 200, "observed_fraction": 1.0}),
        ("spiral", {"n_series": 40, "n_points": 100, "n_grid": 300}),
    ],
)
@pytest.mark.parametrize("noise_std", [0.05, 0.3])
def test_residual_std_matches_noise_std(name, kwargs, noise_std):
    data = TOYS[name](**kwargs, noise_std=noise_std, random_state=0)
    merged = _observed_with_truth(data)
    residuals = np.concatenate([merged[f] - merged[f"{f}_true"] for f in FEATURES[name]])
    assert len(residuals) >= 8000
    assert abs(residuals.mean()) < 0.05 * noise_std
    assert residuals.std() == pytest.approx(noise_std, rel=0.05)


# --- bad arguments ----------------------------------------------------------------------------

BAD_COMMON = [
    ({"n_series": 0}, ValueError, r"`n_series` must be at least 1; got 0"),
    ({"n_series": 2.5}, TypeError, r"`n_series` must be an integer; got 2.5"),
    ({"n_series": True}, TypeError, r"`n_series` must be an integer; got True"),
    ({"n_points": 1}, ValueError, r"`n_points` must be at least 2; got 1"),
    ({"t_max": 0.0}, ValueError, r"`t_max` must be > 0; got 0.0"),
    ({"t_max": -1.0}, ValueError, r"`t_max` must be > 0; got -1.0"),
    ({"t_max": np.inf}, ValueError, r"`t_max` must be finite"),
    ({"t_max": "5"}, TypeError, r"`t_max` must be a real number; got '5'"),
    ({"noise_std": -0.1}, ValueError, r"`noise_std` must be >= 0; got -0.1"),
    ({"noise_std": np.nan}, ValueError, r"`noise_std` must be finite"),
    ({"random_state": "0"}, TypeError, r"`random_state` must be an int, None or a numpy"),
    ({"random_state": 1.5}, TypeError, r"`random_state` must be .*; got 1.5 \(float\)"),
    ({"random_state": True}, TypeError, r"`random_state` must be .*; got True \(bool\)"),
]


@pytest.mark.parametrize("name", sorted(TOYS))
@pytest.mark.parametrize(("kwargs", "error", "match"), BAD_COMMON)
def test_bad_common_arguments_raise(name, kwargs, error, match):
    with pytest.raises(error, match=match):
        _make(name, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"observed_fraction": 0.0}, ValueError, r"`observed_fraction` must be > 0; got 0.0"),
        ({"observed_fraction": -0.2}, ValueError, r"`observed_fraction` must be > 0"),
        ({"observed_fraction": 1.5}, ValueError, r"`observed_fraction` must be in \(0, 1\]"),
        ({"observed_fraction": None}, TypeError, r"`observed_fraction` must be a real number"),
        ({"freq_range": (0.8, 0.4)}, ValueError, r"low < high; got \(0.8, 0.4\)\. Swap them"),
        ({"freq_range": (0.5, 0.5)}, ValueError, r"`freq_range` must have low < high"),
        ({"freq_range": (0.0, 1.0)}, ValueError, r"`freq_range\[0\]` must be > 0; got 0.0"),
        ({"freq_range": (-1.0, 1.0)}, ValueError, r"`freq_range\[0\]` must be > 0"),
        ({"freq_range": (0.1, 0.2, 0.3)}, ValueError, r"a \(low, high\) pair; got 3 values"),
        ({"freq_range": 0.5}, TypeError, r"`freq_range` must be a \(low, high\) pair.*float"),
        ({"freq_range": "ab"}, TypeError, r"`freq_range` must be a \(low, high\) pair"),
        ({"freq_range": (0.1, "x")}, TypeError, r"`freq_range\[1\]` must be a real number"),
        ({"amplitude": 0.0}, ValueError, r"`amplitude` must be > 0; got 0.0"),
    ],
)
def test_bad_periodic_arguments_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        _make("periodic", **kwargs)


def test_freq_range_accepts_list_and_array():
    as_tuple = make_periodic(n_series=3, n_points=5, freq_range=(1.0, 2.0))
    for pair in ([1.0, 2.0], np.array([1.0, 2.0])):
        other = make_periodic(n_series=3, n_points=5, freq_range=pair)
        pd.testing.assert_frame_equal(other.params, as_tuple.params)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_grid": 1, "n_points": 2}, ValueError, r"`n_grid` must be at least 2; got 1"),
        ({"n_grid": 10, "n_points": 11}, ValueError, r"`n_points` must be at most n_grid=10"),
        ({"n_points": 20, "window": 19}, ValueError, r"`window` must be at least 20 .*got 19"),
        ({"n_points": 20, "window": 121}, ValueError, r"at most n_grid=120; got 121\. Raise"),
        ({"window": 30.0}, TypeError, r"`window` must be an integer; got 30.0"),
        ({"b": 0.0}, ValueError, r"`b` must be > 0; got 0.0"),
        ({"a": "0"}, TypeError, r"`a` must be a real number"),
    ],
)
def test_bad_spiral_arguments_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        _make("spiral", **kwargs)


def test_bad_spiral_truth_arguments_raise():
    with pytest.raises(ValueError, match=r"`times` must be 1-D; got shape \(2, 2\)"):
        spiral_truth(np.zeros((2, 2)), clockwise=True)
    with pytest.raises(TypeError, match=r"`clockwise` must be True or False; got 1 \(int\)"):
        spiral_truth([0.0, 1.0], clockwise=1)  # type: ignore[arg-type]
