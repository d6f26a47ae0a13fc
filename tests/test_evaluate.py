"""latentode.evaluate: splits, baselines and metrics checked against hand-computed answers, and
compare() against fake models whose answers are known (no training)."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from latentode.evaluate import (
    BASELINES,
    COLUMNS,
    DEFAULT_BASELINES,
    TASKS,
    Holdout,
    compare,
    coverage,
    crps,
    format_comparison,
    holdout_interior,
    holdout_last,
    holdout_series,
    linear_gaussian,
    linear_interpolation,
    linear_trend,
    locf,
    loo_linear_std,
    pinball,
    point_errors,
    population_mean,
)

START = pd.Timestamp("2024-03-01 08:00")


def _lines(n_series=4, n_points=9, seed=0):
    """Series on straight lines (x = a + b t, y = c - t) at irregular times, with gaps."""
    rng = np.random.default_rng(seed)
    parts = []
    for i in range(n_series):
        t = np.sort(rng.uniform(0.0, 10.0, n_points))
        x = 1.0 + i + (0.5 + i) * t
        y = 3.0 - t
        y[1::3] = np.nan  # y is missing now and then
        parts.append(pd.DataFrame({"id": f"s{i}", "time": t, "x": x, "y": y}))
    return pd.concat(parts, ignore_index=True)


def _curves(n_series=6, n_points=12, seed=0):
    rng = np.random.default_rng(seed)
    parts = []
    for i in range(n_series):
        t = np.sort(rng.uniform(0.0, 10.0, n_points))
        parts.append(pd.DataFrame({"id": i, "time": t, "x": np.sin(t) + 0.1 * i, "y": 3 * t**2}))
    return pd.concat(parts, ignore_index=True)


def _keys(frame):
    return set(zip(frame["id"], frame["time"], strict=True))


# ---------------------------------------------------------------------------------------------
# Baselines
# ---------------------------------------------------------------------------------------------


def test_linear_interpolation_recovers_lines_exactly():
    df = _lines()
    split = holdout_interior(df, 0.4)
    pred = linear_interpolation(split.context, split.target)
    assert list(pred.columns) == ["id", "time", "x", "y"]
    pd.testing.assert_frame_equal(pred[["id", "time"]], split.target[["id", "time"]])
    truth = 1.0 + pred["id"].str[1:].astype(int) * (1 + pred["time"]) + 0.5 * pred["time"]
    np.testing.assert_allclose(pred["x"], truth, rtol=1e-12)
    inside = split.target["y"].notna()  # y's own observed neighbours may not enclose every t
    t = pred["time"]
    ctx_y = split.context.dropna(subset=["y"]).groupby("id")["time"].agg(["min", "max"])
    within = (t >= ctx_y.loc[pred["id"], "min"].to_numpy()) & (
        t <= ctx_y.loc[pred["id"], "max"].to_numpy()
    )
    np.testing.assert_allclose(pred.loc[within & inside, "y"], 3.0 - t[within & inside])


def test_linear_interpolation_is_constant_beyond_the_ends_and_keeps_target_order():
    ctx = pd.DataFrame({"id": [1, 1, 2], "time": [1.0, 3.0, 0.0], "x": [10.0, 30.0, 5.0]})
    targets = pd.DataFrame({"id": [2, 1, 1, 1], "time": [9.0, 0.0, 2.0, 4.0]}, index=[7, 3, 5, 1])
    pred = linear_interpolation(ctx, targets)
    assert pred["x"].tolist() == [5.0, 10.0, 20.0, 30.0]
    assert pred["id"].tolist() == [2, 1, 1, 1]
    assert pred.index.tolist() == [0, 1, 2, 3]


def test_locf_carries_the_last_observation_forward_and_the_first_backward():
    ctx = pd.DataFrame(
        {"id": ["a"] * 4, "time": [1.0, 2.0, 4.0, 6.0], "x": [1.0, np.nan, 4.0, 6.0]}
    )
    targets = pd.DataFrame({"id": ["a"] * 6, "time": [0.0, 1.0, 3.0, 4.0, 5.0, 9.0]})
    assert locf(ctx, targets)["x"].tolist() == [1.0, 1.0, 1.0, 4.0, 4.0, 6.0]


def test_linear_trend_through_the_last_k_points_extrapolates_a_line_exactly():
    t = np.array([0.0, 1.0, 2.0, 3.0, 4.5, 5.0])
    x = np.where(t < 2.5, 100.0 * t**2, 2.0 - 3.0 * t)  # only the last 3 points are a line
    ctx = pd.DataFrame({"id": 0, "time": t, "x": x})
    targets = pd.DataFrame({"id": 0, "time": [4.0, 7.0, 20.0]})
    np.testing.assert_allclose(linear_trend(ctx, targets)["x"], 2.0 - 3.0 * targets["time"])
    assert not np.allclose(linear_trend(ctx, targets, k=4)["x"], 2.0 - 3.0 * targets["time"])
    one = pd.DataFrame({"id": 0, "time": [2.0, 3.0], "x": [np.nan, 7.0]})
    assert linear_trend(one, targets)["x"].tolist() == [7.0, 7.0, 7.0]


def test_population_mean_of_identical_series_is_that_series():
    t = np.array([0.0, 1.0, 2.5, 4.0, 7.0])
    x = np.array([3.0, -1.0, 2.0, 8.0, 0.0])
    starts = [0.0, 10.0, 100.0, 5.0, 2.0, 40.0, 7.0]  # 35 points: 6 bins ≥ 5 distinct offsets
    ctx = pd.concat([pd.DataFrame({"id": i, "time": s + t, "x": x}) for i, s in enumerate(starts)])
    pred = population_mean(ctx, ctx[["id", "time"]])
    np.testing.assert_allclose(pred["x"], np.tile(x, len(starts)))
    # on the raw time axis the shifted copies no longer line up
    assert not np.allclose(population_mean(ctx, ctx, origin="global")["x"], pred["x"])


def test_population_mean_bins_pool_points_by_quantile_and_hold_flat_beyond():
    t = np.arange(16.0)
    ctx = pd.DataFrame({"id": 0, "time": t, "x": 2.0 * t})  # 16 points → 4 bins of 4
    pred = population_mean(ctx, pd.DataFrame({"id": 0, "time": [-5.0, 1.5, 7.5, 40.0]}))
    np.testing.assert_allclose(pred["x"], [3.0, 3.0, 15.0, 27.0])  # bin means at t=1.5,...,13.5


def test_a_feature_a_series_never_observed_falls_back_to_the_pooled_mean():
    ctx = pd.DataFrame(
        {"id": [1, 1, 2, 2], "time": [0.0, 1.0, 0.0, 1.0], "x": [1.0, 3.0, np.nan, np.nan]}
    )
    targets = pd.DataFrame({"id": [2, 2], "time": [0.5, 3.0]})
    for name in ("linear", "locf", "trend"):
        assert BASELINES[name](ctx, targets)["x"].tolist() == [2.0, 2.0]


def test_baselines_raise_on_unknown_ids_and_never_observed_features():
    ctx = pd.DataFrame({"id": [1, 1], "time": [0.0, 1.0], "x": [1.0, 2.0], "z": np.nan})
    with pytest.raises(ValueError, match=r"'z' is NaN everywhere"):
        locf(ctx, pd.DataFrame({"id": [1], "time": [0.5]}))
    with pytest.raises(ValueError, match=r"no rows in `context`: 9, 8"):
        locf(ctx, pd.DataFrame({"id": [9, 8, 1], "time": [0.5, 0.5, 0.5]}), value_cols=["x"])
    with pytest.raises(ValueError, match=r"missing 'time'"):
        locf(ctx, pd.DataFrame({"id": [1]}), value_cols=["x"])
    with pytest.raises(TypeError, match=r"times of one kind"):
        locf(ctx, pd.DataFrame({"id": [1], "time": [START]}), value_cols=["x"])
    with pytest.raises(ValueError, match=r"`k` must be at least 1"):
        linear_trend(ctx, ctx, k=0, value_cols=["x"])
    with pytest.raises(ValueError, match=r"`origin` must be one of 'global', 'series'"):
        population_mean(ctx, ctx, origin="start", value_cols=["x"])


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baselines_are_invariant_to_the_time_unit(name):
    df = _curves(n_series=3, n_points=8)
    split = holdout_interior(df, 0.5)
    hours = BASELINES[name](split.context, split.target)

    def as_datetimes(frame):
        return frame.assign(time=START + pd.to_timedelta(frame["time"] * 3600.0, unit="s"))

    for convert in (as_datetimes, lambda f: f.assign(time=pd.to_timedelta(f["time"], unit="h"))):
        out = BASELINES[name](convert(split.context), convert(split.target))
        np.testing.assert_allclose(out[["x", "y"]], hours[["x", "y"]], rtol=1e-9, atol=1e-9)
        assert out["time"].dtype == convert(split.target)["time"].dtype


def test_baseline_registry_and_defaults():
    assert set(BASELINES) == {"linear", "locf", "trend", "mean"}
    assert set(DEFAULT_BASELINES) == set(TASKS)
    assert all(set(names) <= set(BASELINES) for names in DEFAULT_BASELINES.values())


# ---------------------------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------------------------


def _with_short_and_empty_rows():
    df = _lines(n_series=5, n_points=9)
    extra = pd.DataFrame(
        {
            "id": ["short", "short", "s0", "lonely"],
            "time": [0.0, 1.0, 50.0, 3.0],
            "x": [1.0, 2.0, np.nan, 5.0],
            "y": [np.nan, np.nan, np.nan, np.nan],  # s0 at t=50 observes nothing: dropped
        }
    )
    return pd.concat([df, extra], ignore_index=True).sample(frac=1.0, random_state=1)


def test_holdout_interior_is_a_disjoint_cover_of_the_observed_rows():
    df = _with_short_and_empty_rows()
    split = holdout_interior(df, 0.3, random_state=4)
    observed = df.dropna(subset=["x", "y"], how="all")
    assert not _keys(split.context) & _keys(split.target)
    assert _keys(split.context) | _keys(split.target) == _keys(observed)
    assert list(split.context.columns) == list(df.columns)
    assert (split.context.dtypes == df.dtypes).all()
    for part in (split.context, split.target):
        assert part.equals(part.sort_values(["id", "time"]).reset_index(drop=True))
    counts = split.target.groupby("id").size()
    assert counts.to_dict() == {f"s{i}": 2 for i in range(5)}  # round(0.3 * 7) interior points
    assert {"short", "lonely"} <= set(split.context["id"])  # fewer than 3 points: all context
    bounds = split.context.groupby("id")["time"].agg(["min", "max"]).loc[split.target["id"]]
    assert (split.target["time"].to_numpy() > bounds["min"].to_numpy()).all()
    assert (split.target["time"].to_numpy() < bounds["max"].to_numpy()).all()


def test_holdout_interior_is_reproducible_by_random_state():
    df = _lines(n_series=6, n_points=12)
    a, b = holdout_interior(df, random_state=3), holdout_interior(df, random_state=3)
    pd.testing.assert_frame_equal(a.target, b.target)
    pd.testing.assert_frame_equal(a.context, b.context)
    assert not holdout_interior(df, random_state=4).target.equals(a.target)
    # row order of the input does not matter: series are visited in sorted id order
    shuffled = holdout_interior(df.sample(frac=1.0, random_state=0), random_state=3)
    pd.testing.assert_frame_equal(shuffled.target, a.target)


def test_splits_work_with_datetime_times_and_keep_their_dtype():
    df = _lines(n_series=3, n_points=6)
    df["time"] = START + pd.to_timedelta(df["time"], unit="h")
    split = holdout_interior(df, 0.5)
    assert split.target["time"].dtype == df["time"].dtype
    assert len(split.target) == 3 * 2
    last = holdout_last(df, fraction=0.2)
    assert last.target["time"].dtype == df["time"].dtype
    context_end = last.context.groupby("id")["time"].max()
    assert (context_end < last.target.groupby("id")["time"].min()).all()


def test_holdout_last_hides_the_last_n_points_of_long_enough_series():
    df = pd.DataFrame(
        {"id": [1] * 5 + [2] * 2, "time": [0.0, 1, 2, 3, 4, 0, 1], "x": [0.0, 1, 2, 3, 4, 5, 6]}
    )
    split = holdout_last(df)  # n=2 by default
    assert split.target["time"].tolist() == [3.0, 4.0]
    assert len(split.context) == 5  # series 2 has 2 points < n + 1: whole in context
    assert len(holdout_last(df, 1).target) == 2


def test_holdout_last_by_fraction_hides_the_end_of_each_time_span():
    df = pd.DataFrame(
        {"id": [1] * 5 + [2] * 3, "time": [0.0, 1, 2, 9, 10, 0, 1, 2], "x": np.arange(8.0)}
    )
    split = holdout_last(df, fraction=0.25)  # t > 7.5 in series 1, t > 1.5 in series 2
    assert _keys(split.target) == {(1, 9.0), (1, 10.0), (2, 2.0)}


def test_holdout_series_splits_whole_series_reproducibly():
    df = _lines(n_series=10, n_points=3)
    train, test = holdout_series(df, 0.3, random_state=5)
    assert set(train["id"]).isdisjoint(test["id"])
    assert test["id"].nunique() == 3
    assert len(train) + len(test) == len(df)
    again, _ = holdout_series(df, 0.3, random_state=5)
    pd.testing.assert_frame_equal(train, again)
    two = df[df["id"].isin(["s0", "s1"])]
    train, test = holdout_series(two, 0.01)
    assert train["id"].nunique() == test["id"].nunique() == 1


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda df: holdout_interior(df, 1.0), ValueError, r"`fraction` must be in \(0, 1\)"),
        (lambda df: holdout_interior(df, 0.0), ValueError, r"`fraction` must be in \(0, 1\)"),
        (lambda df: holdout_interior(df, "a"), TypeError, r"`fraction` must be a real number"),
        (lambda df: holdout_interior(df, random_state=-1), ValueError, r"`random_state`"),
        (lambda df: holdout_last(df, 2, fraction=0.5), ValueError, r"not both"),
        (lambda df: holdout_last(df, 0), ValueError, r"`n` must be at least 1"),
        (lambda df: holdout_last(df, 9), ValueError, r"every series has at most n=9 points"),
        (lambda df: holdout_series(df[df["id"] == "s0"]), ValueError, r"at least 2 series"),
        (lambda df: holdout_series(df, 1.5), ValueError, r"`fraction` must be in"),
        (lambda df: holdout_interior(df.values), TypeError, r"`df` must be a pandas DataFrame"),
        (lambda df: holdout_interior(df, time_col="t"), ValueError, r"missing 't'"),
        (lambda df: holdout_interior(df, value_cols="x"), TypeError, r"wrap it in a list"),
        (lambda df: holdout_interior(df.assign(x="a")), TypeError, r"must be numeric; 'x'"),
        (lambda df: holdout_interior(pd.concat([df, df])), ValueError, r"one row per \(id, time"),
        (lambda df: holdout_interior(df.head(2)), ValueError, r"fewer than 3 points"),
        (lambda df: holdout_interior(df.assign(time=np.nan)), ValueError, r"no missing values"),
    ],
)
def test_split_errors(call, error, match):
    with pytest.raises(error, match=match):
        call(_lines(n_series=3, n_points=5))


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def truth():
    return pd.DataFrame(
        {
            "id": [1, 1, 2, 2],
            "time": [0.0, 1.0, 0.0, 5.0],
            "x": [1.0, np.nan, 3.0, np.nan],
            "y": [2.0, 4.0, np.nan, np.nan],  # (2, 5.0) observes nothing: needs no prediction
        }
    )


@pytest.fixture
def pred():
    return pd.DataFrame(
        {
            "id": [2, 1, 1, 9],  # shuffled, with an extra row
            "time": [0.0, 1.0, 0.0, 0.0],
            "x": [5.0, 99.0, 1.0, 0.0],
            "y": [-7.0, 5.0, 3.0, 0.0],
            "x_q0.1": [4.0, 0.0, 1.5, 0.0],
            "x_q0.9": [6.0, 0.0, 2.0, 0.0],
            "y_q0.1": [0.0, 4.0, 1.0, 0.0],
            "y_q0.9": [0.0, 6.0, 2.0, 0.0],
        }
    )


def test_point_errors_by_hand(truth, pred):
    table = point_errors(pred, truth, scale={"x": 2.0})
    assert table.index.tolist() == ["x", "y", "all"]
    assert table["n"].tolist() == [2, 2, 4]
    # x: errors 0 and 2; y: errors 1 and 1; all: 0, 1, 1, 1 (x divided by 2)
    np.testing.assert_allclose(table["mse"], [2.0, 1.0, 0.75])
    np.testing.assert_allclose(table["mae"], [1.0, 1.0, 0.75])
    np.testing.assert_allclose(table["rmse"], np.sqrt([2.0, 1.0, 0.75]))


def test_pinball_and_coverage_by_hand(truth, pred):
    # x at (1,0): y=1, q0.1=1.5 → 0.9*0.5, q0.9=2 → 0.1*1; at (2,0): y=3, q0.1=4 → 0.9, q0.9=6 → 0.3
    # y at (1,0): y=2, q0.1=1 → 0.1, q0.9=2 → 0; at (1,1): y=4, q0.1=4 → 0, q0.9=6 → 0.2
    table = pinball(pred, truth)
    x = [(0.45 + 0.1) / 2, (0.9 + 0.3) / 2]
    y = [0.05, 0.1]
    np.testing.assert_allclose(table["pinball"], [np.mean(x), np.mean(y), np.mean(x + y)])
    pd.testing.assert_frame_equal(pinball(pred, truth, quantiles=[0.1, 0.9]), table)
    cover = coverage(pred, truth, lower=0.1, upper=0.9)
    # x: 1 ∉ [1.5, 2], 3 ∉ [4, 6]; y: 2 ∈ [1, 2], 4 ∈ [4, 6] (bounds inclusive)
    assert cover["coverage"].tolist() == [0.0, 1.0, 0.5]
    assert cover["n"].tolist() == [2, 2, 4]


def test_garbage_where_the_truth_is_nan_changes_no_metric(truth, pred):
    samples = pd.concat([pred.assign(sample=k) for k in range(3)], ignore_index=True)
    before = [
        point_errors(pred, truth),
        pinball(pred, truth),
        coverage(pred, truth, lower=0.1, upper=0.9),
        crps(samples, truth),
    ]
    messy = pred.copy()
    messy.loc[messy["id"].eq(2) & messy["time"].eq(0.0), ["y", "y_q0.1", "y_q0.9"]] = [1e9, -5, 9]
    messy.loc[messy["id"].eq(1) & messy["time"].eq(1.0), ["x", "x_q0.1", "x_q0.9"]] = np.nan
    messy_samples = pd.concat([messy.assign(sample=k) for k in range(3)], ignore_index=True)
    after = [
        point_errors(messy, truth),
        pinball(messy, truth),
        coverage(messy, truth, lower=0.1, upper=0.9),
        crps(messy_samples, truth),
    ]
    for a, b in zip(before, after, strict=True):
        pd.testing.assert_frame_equal(a, b)


def _normal_crps(y, mu, s):
    z = (y - mu) / s
    return s * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / np.sqrt(np.pi))


def _draws_frame(draws):
    """``(m, n)`` draws for series 0..n-1 at time 0 → a samples frame."""
    m, n = draws.shape
    return pd.DataFrame(
        {
            "sample": np.repeat(np.arange(m), n),
            "id": np.tile(np.arange(n), m),
            "time": 0.0,
            "x": draws.reshape(-1),
        }
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_crps_of_normal_samples_matches_the_closed_form(seed):
    mu, s, m = 1.0, 1.0, 20_000
    ys = np.array([-0.5, 0.5, 1.0, 2.5])
    truth = pd.DataFrame({"id": np.arange(4), "time": 0.0, "x": ys})
    samples = _draws_frame(np.random.default_rng(seed).normal(mu, s, size=(m, 4)))
    exact = _normal_crps(ys, mu, s)
    np.testing.assert_allclose(crps(samples, truth).loc["x", "crps"], exact.mean(), atol=1e-2)
    for i in range(4):
        one = crps(samples[samples["id"] == i], truth[truth["id"] == i])
        np.testing.assert_allclose(one.loc["x", "crps"], exact[i], atol=1e-2)


def test_crps_of_normal_quantile_samples_matches_the_closed_form_closely():
    # m evenly spaced quantiles of N(mu, s): no sampling noise, so the sorted-sample formula
    # itself is checked, at every distance of y from the mean (and s ≠ 1)
    mu, s, m = 0.5, 2.0, 20_000
    ys = np.array([-6.0, -2.0, 0.5, 1.0, 4.0, 9.0])
    grid = mu + s * norm.ppf((np.arange(m) + 0.5) / m)  # (m,)
    samples = _draws_frame(np.repeat(grid[:, None], ys.size, axis=1))
    truth = pd.DataFrame({"id": np.arange(ys.size), "time": 0.0, "x": ys})
    per_entry = [
        crps(samples[samples["id"] == i], truth[truth["id"] == i]).loc["x", "crps"]
        for i in range(ys.size)
    ]
    np.testing.assert_allclose(per_entry, _normal_crps(ys, mu, s), atol=1e-4)


def test_crps_by_hand_and_with_one_sample_is_the_absolute_error(truth, pred):
    single = crps(pred.assign(sample=0), truth, scale={"y": 0.5})
    errors = point_errors(pred, truth, scale={"y": 0.5})
    np.testing.assert_allclose(single["crps"], errors["mae"])
    two = pd.DataFrame({"draw": [0, 1], "id": 0, "time": 0.0, "x": [0.0, 2.0]})
    out = crps(two, pd.DataFrame({"id": [0], "time": [0.0], "x": [1.0]}), sample_col="draw")
    assert out.loc["x", "crps"] == pytest.approx(0.5)  # E|X-y| = 1, E|X-X'| = 1


def test_metrics_align_datetime_times(truth, pred):
    def as_dates(frame):
        return frame.assign(time=START + pd.to_timedelta(frame["time"], unit="D"))

    pd.testing.assert_frame_equal(
        point_errors(as_dates(pred), as_dates(truth)), point_errors(pred, truth)
    )


def test_metric_errors(truth, pred):
    with pytest.raises(ValueError, match=r"`pred` must have a row for every \(id, time\).*\(2, 0"):
        point_errors(pred[pred["id"] != 2], truth)
    with pytest.raises(ValueError, match=r"at most one row per \(id, time\)"):
        point_errors(pd.concat([pred, pred]), truth)
    with pytest.raises(ValueError, match=r"`pred` must have columns 'y'"):
        point_errors(pred.drop(columns="y"), truth)
    with pytest.raises(ValueError, match=r"must not be NaN where the truth of 'x' is observed"):
        point_errors(pred.assign(x=np.nan), truth)
    with pytest.raises(ValueError, match=r"`scale` names features that are not scored: 'z'"):
        point_errors(pred, truth, scale={"z": 1.0})
    with pytest.raises(ValueError, match=r"`scale\['x'\]` must be > 0"):
        point_errors(pred, truth, scale={"x": 0.0})
    with pytest.raises(ValueError, match=r"missing 'x_q0.5', 'y_q0.5'"):
        pinball(pred, truth, quantiles=[0.5])
    with pytest.raises(ValueError, match=r"quantile columns for feature 'x'"):
        pinball(pred.drop(columns=["x_q0.1", "x_q0.9"]), truth)
    with pytest.raises(ValueError, match=r"interval columns 'x_q0.05', 'x_q0.95'"):
        coverage(pred, truth)
    with pytest.raises(ValueError, match=r"`lower` must be below `upper`"):
        coverage(pred, truth, lower=0.9, upper=0.1)
    with pytest.raises(ValueError, match=r"sample column 'sample'"):
        crps(pred, truth)
    uneven = pd.concat([pred.assign(sample=0), pred.iloc[:1].assign(sample=1)])
    with pytest.raises(ValueError, match=r"same number of samples"):
        crps(uneven, truth)
    with pytest.raises(TypeError, match=r"`truth` must be a pandas DataFrame"):
        point_errors(pred, truth.to_numpy())


# ---------------------------------------------------------------------------------------------
# compare
# ---------------------------------------------------------------------------------------------


class _FakeModel:
    """Duck-typed stand-in for a fitted LatentODE: ``guess(context, times)`` gives its means;
    its samples and quantiles all equal the mean (a point mass)."""

    format_ = SimpleNamespace(id_col="id", time_col="time", value_cols=("x", "y"))

    def __init__(self, guess):
        self.guess = guess
        self.calls = []

    def predict(self, df, times=None, *, quantiles=(0.05, 0.5, 0.95), num_samples=100):
        self.calls.append(("predict", len(df), len(times), tuple(quantiles), num_samples))
        out = self.guess(df, times)[["id", "time", "x", "y"]]
        return out.assign(**{f"{f}_q{q:g}": out[f] for q in quantiles for f in ("x", "y")})

    def sample(self, n_samples, times, *, df=None, random_state=None):
        self.calls.append(("sample", n_samples, random_state))
        out = self.guess(df, times)[["id", "time", "x", "y"]]
        return pd.concat([out.assign(sample=k) for k in range(n_samples)], ignore_index=True)


def _oracle(df):
    return _FakeModel(lambda context, times: times.merge(df, on=["id", "time"], how="left"))


def test_compare_with_a_model_that_knows_the_truth():
    df = _curves()
    model = _oracle(df)
    table = compare(model, df, num_samples=7, random_state=3)
    assert list(table.columns) == [*COLUMNS[:-1], "coverage_50", "coverage_90", "ratio"]
    assert table["method"].unique().tolist() == ["latentode", "linear", "locf", "mean"]
    assert table["feature"].tolist()[:3] == ["x", "y", "all"]
    ours = table[table["method"] == "latentode"].set_index("feature")
    assert (ours["ratio"] == 0.0).all()
    assert (ours["mse"] == 0.0).all()
    assert (ours["coverage"] == 1.0).all()
    assert (ours["pinball"] == 0.0).all()
    np.testing.assert_allclose(ours["crps"], 0.0, atol=1e-12)  # point-mass samples
    assert (ours[["coverage_50", "coverage_90"]] == 1.0).all().all()
    # linear interpolation carries its Gaussian band; the other baselines have none
    linear = table[table["method"] == "linear"]
    assert linear[["crps", "pinball", "coverage", "coverage_90"]].notna().all().all()
    others = table[~table["method"].isin(["latentode", "linear"])]
    assert others[["crps", "pinball", "coverage"]].isna().all().all()
    baselines = table[table["method"] != "latentode"]
    assert (baselines.groupby("feature")["ratio"].min() == 1.0).all()
    assert (table["task"] == "interpolation").all()
    n = table[table["feature"] == "all"]["n"]
    assert (n == n.iloc[0]).all()
    assert set(table.attrs["best_baseline"]) == {"x", "y", "all"}
    assert model.calls[1] == ("sample", 7, 3)
    text = format_comparison(table)
    header = ["method", "n", "rmse", "mae", "crps", "cover50", "cover90", "ratio"]
    assert text.splitlines()[1].split() == header
    assert len(text.splitlines()) == 2 + 4
    assert "latentode" in text.splitlines()[2]


def test_compare_a_model_that_interpolates_linearly_ties_the_linear_baseline():
    df = _curves()
    model = _FakeModel(lambda context, times: linear_interpolation(context, times))
    table = compare(model, df, baselines=["linear"])
    assert table[table["method"] == "latentode"]["ratio"].tolist() == [1.0, 1.0, 1.0]
    by_method = table.set_index(["method", "feature"])["mse"]
    assert by_method["latentode"].equals(by_method["linear"])


def test_compare_extrapolation_and_a_reused_split():
    df = _curves()
    table = compare(_oracle(df), df, "extrapolation", n_last=3)
    assert table["method"].unique().tolist() == ["latentode", *DEFAULT_BASELINES["extrapolation"]]
    assert table.loc[table["feature"] == "x", "n"].iloc[0] == 6 * 3
    split = holdout_last(df, fraction=0.3)
    reused = compare(_oracle(df), df, "extrapolation", split=split, baselines=["trend"])
    assert reused.loc[reused["feature"] == "x", "n"].iloc[0] == len(split.target)
    assert isinstance(split, Holdout)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"task": "forecast"}, ValueError, r"`task` must be one of 'extrapolation', 'interp"),
        ({"fraction": 1.2}, ValueError, r"`fraction` must be in \(0, 1\)"),
        ({"n_last": 2}, ValueError, r"`n_last` is for task='extrapolation'"),
        ({"baselines": ["linear", "spline"]}, ValueError, r"`baselines` must be one of"),
        ({"baselines": "linear"}, TypeError, r"wrap it in a list"),
        ({"baselines": []}, ValueError, r"at least one distinct baseline"),
        ({"quantiles": [0.5]}, ValueError, r"at least 2 distinct levels"),
        ({"num_samples": 0}, ValueError, r"`num_samples` must be at least 1"),
        ({"split": "half"}, TypeError, r"`split` must be a Holdout"),
    ],
)
def test_compare_errors(kwargs, error, match):
    df = _curves(n_series=2, n_points=5)
    with pytest.raises(error, match=match):
        compare(_oracle(df), df, **kwargs)


def test_compare_refuses_a_model_without_predict_and_a_frame_without_its_columns():
    df = _curves(n_series=2, n_points=5)
    model = _oracle(df)
    model.predict = None
    with pytest.raises(TypeError, match=r"`model` must be a fitted LatentODE"):
        compare(model, df)
    with pytest.raises(ValueError, match=r"`df` must have columns .* missing 'y'"):
        compare(_oracle(df), df.drop(columns="y"))
    split = holdout_interior(df)
    with pytest.raises(ValueError, match=r"give `split` or `fraction`/`n_last`, not both"):
        compare(_oracle(df), df, split=split, fraction=0.5)
    with pytest.raises(ValueError, match=r"must be the DataFrame compare\(\) returns"):
        format_comparison(pd.DataFrame({"method": ["x"]}))


def test_evaluate_imports_without_torch_sklearn_or_lightning():
    code = (
        "import sys, latentode.evaluate\n"
        "bad = ['torch', 'sklearn', 'pytorch_lightning', 'lightning', 'latentode.estimator']\n"
        "print(','.join(m for m in bad if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# ---------------------------------------------------------------------------------------------
# the Gaussian band of linear interpolation


def test_loo_linear_std_recovers_the_noise_of_straight_lines():
    rng = np.random.default_rng(0)
    t = np.arange(200.0)
    frames = [
        pd.DataFrame({"id": i, "time": t, "x": 3.0 * t + i + rng.normal(0, 0.5, t.size)})
        for i in range(20)
    ]
    df = pd.concat(frames, ignore_index=True)
    # a point minus the mean of its two neighbours: variance σ² (1 + 1/2) on an even grid
    assert loo_linear_std(df)["x"] == pytest.approx(0.5 * np.sqrt(1.5), rel=0.03)


def test_linear_gaussian_is_linear_interpolation_with_a_gaussian_band():
    from scipy.stats import norm

    df = _curves()
    split = holdout_interior(df, 0.3, random_state=0)
    pred, samples = linear_gaussian(split.context, split.target, quantiles=(0.05, 0.5, 0.95))
    mean = linear_interpolation(split.context, split.target)
    std = loo_linear_std(split.context)
    np.testing.assert_allclose(pred["x"], mean["x"])
    np.testing.assert_allclose(pred["x_q0.95"] - pred["x"], norm.ppf(0.95) * std["x"])
    assert samples.groupby(["id", "time"]).size().eq(100).all()
    # its sample CRPS is the Gaussian's closed form to a few per mille
    truth = split.target
    z = (truth["x"].to_numpy() - mean["x"].to_numpy()) / std["x"]
    closed = std["x"] * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / np.sqrt(np.pi))
    got = crps(samples, truth)["crps"]["x"]
    assert got == pytest.approx(closed.mean(), rel=5e-3)
