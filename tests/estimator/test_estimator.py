"""The LatentODE estimator: scikit-learn's contract, pandas in and out, invariances, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from latentode.data import make_periodic
from latentode.estimator import LatentODE

TINY = {
    "latent_dim": 3,
    "encoder_hidden": 6,
    "decoder_width": 8,
    "decoder_depth": 1,
    "max_epochs": 2,
    "batch_size": 8,
    "random_state": 0,
}


@pytest.fixture(scope="module")
def frame():
    data = make_periodic(n_series=20, n_points=12, random_state=0).observed
    data = data.assign(y=np.where(np.arange(len(data)) % 3 == 0, np.nan, data["x"] * 2 + 10))
    return data


@pytest.fixture(scope="module")
def fitted(frame):
    return LatentODE(**TINY).fit(frame)


def _sorted(df):
    keys = [c for c in ("sample", "id", "time") if c in df.columns]
    return df.sort_values(keys, kind="stable", ignore_index=True)


def test_init_stores_parameters_only_and_clone_works():
    model = LatentODE(latent_dim=5, trainer_kwargs={"gradient_clip_val": 1.0})
    assert model.get_params()["latent_dim"] == 5
    assert not [k for k in vars(model) if k.endswith("_")]
    twin = clone(model)
    assert twin.get_params() == model.get_params()
    twin.set_params(latent_dim=7)
    assert (twin.latent_dim, model.latent_dim) == (7, 5)


def test_unfitted_model_refuses_to_predict(frame):
    with pytest.raises(NotFittedError):
        LatentODE().predict(frame)


def test_fit_returns_self_and_learns_its_attributes(frame):
    model = LatentODE(**TINY)
    assert model.fit(frame) is model
    assert model.n_features_in_ == 2
    assert list(model.feature_names_in_) == ["x", "y"]
    assert model.n_epochs_ == 2
    assert model.best_epoch_ in (0, 1)


def test_fit_leaves_the_frame_and_the_folder_alone(frame, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = frame.copy(deep=True)
    LatentODE(**TINY).fit(frame)
    pd.testing.assert_frame_equal(frame, before)
    assert list(tmp_path.iterdir()) == []


def test_same_random_state_same_model_and_predictions(frame, fitted):
    again = LatentODE(**TINY).fit(frame)
    pd.testing.assert_frame_equal(
        fitted.predict(frame, num_samples=5), again.predict(frame, num_samples=5)
    )


def test_row_and_series_order_do_not_matter(frame, fitted):
    shuffled = frame.sample(frac=1.0, random_state=3)
    refit = LatentODE(**TINY).fit(shuffled)
    a = _sorted(fitted.predict(frame, num_samples=5))
    b = _sorted(refit.predict(shuffled, num_samples=5))
    pd.testing.assert_frame_equal(a, b)


def test_predict_layout_units_and_quantile_order(frame, fitted):
    pred = fitted.predict(frame, times=[0.0, 1.0, 7.5], quantiles=(0.1, 0.9), num_samples=30)
    assert list(pred.columns) == ["id", "time", "x", "y", "x_q0.1", "y_q0.1", "x_q0.9", "y_q0.9"]
    assert len(pred) == 20 * 3
    assert set(pred["time"]) == {0.0, 1.0, 7.5}
    assert (pred["x_q0.1"] <= pred["x_q0.9"]).all()
    assert np.isfinite(pred[["x", "y"]].to_numpy()).all()
    # y was fitted around 10 in user units: predictions come back in user units
    assert abs(pred["y"].mean() - frame["y"].mean()) < 5


def test_predict_times_per_series_and_horizon(frame, fitted):
    pairs = pd.DataFrame({"id": [0, 0, 3], "time": [0.5, 1.5, 2.0]})
    pred = fitted.predict(frame, times=pairs, num_samples=5)
    assert pred.groupby("id").size().to_dict() == {0: 2, 3: 1}
    ahead = fitted.predict(frame, horizon=2.0, num_samples=5)
    last = frame.groupby("id")["time"].max()
    first_ahead = ahead.groupby("id")["time"].min()
    assert (first_ahead > last.loc[first_ahead.index]).all()
    assert (ahead.groupby("id")["time"].max() - last).abs().max() < 2.0 + 1e-9


def test_sampling_is_reproducible(frame, fitted):
    prior = fitted.sample(4, [0.0, 1.0, 2.0], random_state=7)
    assert list(prior.columns) == ["sample", "time", "x", "y"]
    assert len(prior) == 12
    pd.testing.assert_frame_equal(prior, fitted.sample(4, [0.0, 1.0, 2.0], random_state=7))
    assert not prior.equals(fitted.sample(4, [0.0, 1.0, 2.0], random_state=8))
    post = fitted.sample(3, [0.0, 2.0], df=frame.head(30), random_state=1)
    assert list(post.columns[:3]) == ["sample", "id", "time"]
    pd.testing.assert_frame_equal(
        post, fitted.sample(3, [0.0, 2.0], df=frame.head(30), random_state=1)
    )


def test_score_is_a_finite_mean_log_likelihood(frame, fitted):
    score = fitted.score(frame)
    assert np.isfinite(score)
    assert score == pytest.approx(fitted.score(frame.sample(frac=1.0, random_state=0)), rel=1e-6)


def test_save_load_round_trip_gives_identical_predictions(frame, fitted, tmp_path):
    fitted.save(tmp_path / "model")
    again = LatentODE.load(tmp_path / "model")
    pd.testing.assert_frame_equal(
        fitted.predict(frame, num_samples=5), again.predict(frame, num_samples=5)
    )
    assert again.get_params() == fitted.get_params()


def test_datetime_times_round_trip(fitted):
    df = pd.DataFrame(
        {
            "patient": np.repeat(["a", "b", "c", "d"], 5),
            "when": pd.Timestamp("2024-03-01")
            + pd.to_timedelta(np.tile([0, 2, 5, 9, 14], 4) + np.repeat([0, 1, 3, 2], 5), "D"),
            "hb": np.linspace(10, 14, 20),
        }
    )
    model = LatentODE(**{**TINY, "val_fraction": 0.0}).fit(
        df, id_col="patient", time_col="when", time_unit="D"
    )
    grid = pd.to_datetime(["2024-03-02", "2024-03-20"])
    pred = model.predict(df, times=grid, num_samples=5)
    assert pred["when"].dtype.kind == "M"
    assert set(pred["when"]) == set(grid)
    new = model.sample(2, pd.to_timedelta([0, 1, 2], "D"), random_state=0)
    assert new["when"].dtype.kind == "m"


# --- bad input: each case a clear error ------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"encoder": "lstm"}, ValueError, r"`encoder` must be one of"),
        ({"latent_dim": 0}, ValueError, r"`latent_dim` must be at least 1"),
        ({"rtol": -1.0}, ValueError, r"`rtol` must be > 0"),
        ({"val_fraction": 1.0}, ValueError, r"`val_fraction` must be in \[0, 1\)"),
        ({"trainer_kwargs": {"max_epochs": 3}}, ValueError, r"may not set max_epochs"),
        (
            {"trainer_kwargs": {"gradient_clip_val": 1.0}},
            ValueError,
            r"may not set gradient_clip_val",
        ),
        ({"trainer_kwargs": {"max_steps": 10}}, ValueError, r"may not set max_steps"),
        (
            {"trainer_kwargs": {"check_val_every_n_epoch": 5}},
            ValueError,
            r"may not set check_val_every_n_epoch",
        ),
        (
            {"trainer_kwargs": {"accumulate_grad_batches": 2}},
            ValueError,
            r"may not set accumulate_grad_batches",
        ),
        ({"trainer_kwargs": [1]}, TypeError, r"`trainer_kwargs` must be a dict"),
        ({"random_state": "zero"}, TypeError, r"`random_state` must be an int"),
        ({"max_steps": None, "max_epochs": None}, ValueError, r"give a training budget"),
        ({"max_steps": 0}, ValueError, r"`max_steps` must be at least 1"),
        ({"max_time": -5.0}, ValueError, r"`max_time` must be > 0"),
        ({"batch_size": 0}, ValueError, r"`batch_size` must be at least 1"),
        ({"lr_schedule": "step"}, ValueError, r"`lr_schedule` must be one of 'constant', 'cosine'"),
        ({"optimizer": "lbfgs"}, ValueError, r"`optimizer` must be one of"),
        ({"gradient_clip": 0.0}, ValueError, r"`gradient_clip` must be > 0"),
        ({"kl_warmup": 1.0}, ValueError, r"`kl_warmup` is the share of the step budget"),
        ({"kl_weight": -0.1}, ValueError, r"`kl_weight` must be >= 0"),
        ({"level": "global"}, ValueError, r"`level` must be one of 'none', 'series'"),
        ({"time_gaps_per_unit": 0.0}, ValueError, r"`time_gaps_per_unit` must be > 0"),
        (
            {"learn_std": True, "likelihood_std": 1e-4},
            ValueError,
            r"stays above 0.001; got likelihood_std=0.0001",
        ),
        ({"decoder": "sde"}, ValueError, r"`decoder` must be one of 'flow', 'ode'"),
        ({"decoder": "flow", "flow": "spline"}, ValueError, r"`flow` must be one of 'coupling'"),
        (
            {"decoder": "flow", "adjoint": True},
            ValueError,
            r"decoder='flow' solves no ODE for its paths, so adjoint=True",
        ),
    ],
)
def test_bad_parameters_are_refused_in_fit(frame, kwargs, error, match):
    with pytest.raises(error, match=match):
        LatentODE(**{**TINY, **kwargs}).fit(frame)


def test_unknown_columns_in_fit(frame):
    with pytest.raises(ValueError, match=r"patient"):
        LatentODE(**TINY).fit(frame, id_col="patient")


def test_predict_on_other_features(frame, fitted):
    with pytest.raises(ValueError, match=r"lacks column\(s\) 'y'"):
        fitted.predict(frame.drop(columns="y").assign(z=1.0))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"times": "tomorrow"}, TypeError, r"`times` must be an array-like"),
        ({"times": 3.0}, TypeError, r"`times` must be an array-like"),
        ({"times": [0.0, np.nan]}, ValueError, r"`times`"),
        ({"times": pd.to_datetime(["2024-01-01"])}, TypeError, r"`times` must be numbers"),
        ({"num_samples": 0}, ValueError, r"`num_samples` must be at least 1"),
        ({"num_samples": 10**9}, ValueError, r"at most 100,000"),
        ({"quantiles": (0.0, 0.5)}, ValueError, r"strictly inside \(0, 1\)"),
        ({"quantiles": (0.5, 1.2)}, ValueError, r"strictly inside \(0, 1\)"),
        ({"horizon": 0.0}, ValueError, r"`horizon` must be finite and > 0"),
        ({"horizon": -1.0}, ValueError, r"`horizon` must be finite and > 0"),
        ({"horizon": float("nan")}, ValueError, r"`horizon` must be finite and > 0"),
        ({"horizon": 1.0, "times": [1.0]}, ValueError, r"not both"),
        ({"horizon": 1.0, "horizon_points": 0}, ValueError, r"`horizon_points` must be at"),
        ({"horizon": 1.0, "horizon_points": 2.5}, TypeError, r"`horizon_points` must be an int"),
        ({"horizon": 1.0, "horizon_points": 10**6}, ValueError, r"at most 100,000"),
        ({"times": pd.DataFrame({"id": [99], "time": [1.0]})}, ValueError, r"not in `df`"),
    ],
)
def test_bad_predict_arguments(frame, fitted, kwargs, error, match):
    with pytest.raises(error, match=match):
        fitted.predict(frame, **kwargs)


def test_load_refuses_missing_and_corrupt_files(frame, fitted, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"not a folder"):
        LatentODE.load(tmp_path / "nothing")
    folder = fitted.save(tmp_path / "m")
    (folder / "weights.pt").unlink()
    with pytest.raises(FileNotFoundError, match=r"weights.pt is missing"):
        LatentODE.load(folder)
    folder = fitted.save(tmp_path / "m2")
    (folder / "latentode.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=r"not valid JSON"):
        LatentODE.load(folder)
    folder = fitted.save(tmp_path / "m3")
    (folder / "weights.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"is corrupt"):
        LatentODE.load(folder)


def test_fit_is_quiet_unless_verbose(frame, capsys):
    LatentODE(**TINY).fit(frame)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""


# --- the training recipe -------------------------------------------------------------------


def test_the_budget_is_counted_in_optimiser_steps(frame):
    model = LatentODE(**{**TINY, "max_epochs": None, "batch_size": None, "max_steps": 30})
    model.fit(frame)
    # 16 training series: batches of 4 (4 steps an epoch); 30 steps round up to 8 epochs
    assert (model.n_steps_, model.n_epochs_) == (32, 8)
    # checks during the KL warm-up (the first 6 steps) never count, whatever their score
    assert model.best_epoch_ >= 1
    capped = LatentODE(**{**TINY, "max_epochs": 3, "batch_size": None, "max_steps": 30})
    assert capped.fit(frame).n_steps_ == 12


def test_max_time_caps_the_fit(frame):
    model = LatentODE(**{**TINY, "max_epochs": None, "max_steps": 10_000, "max_time": 0.001})
    assert model.fit(frame).n_steps_ < 10_000


def test_the_recipe_survives_save_and_load(frame, fitted, tmp_path):
    fitted.save(tmp_path / "m")
    again = LatentODE.load(tmp_path / "m")
    assert again.n_steps_ == fitted.n_steps_
    assert again.get_params()["level"] == "series"
    pd.testing.assert_frame_equal(
        fitted.predict(frame, num_samples=5), again.predict(frame, num_samples=5)
    )


def test_score_punishes_levels_far_from_the_training_data(frame, fitted):
    """The level shift fits any level exactly; score must integrate it out, not reward it."""
    usual = fitted.score(frame)
    moved = fitted.score(frame.assign(x=frame["x"] + 50.0))
    assert moved < usual - 5.0
    one_point = frame.groupby("id").head(1).assign(x=-55.0)
    assert fitted.score(one_point) < usual - 5.0


def test_a_model_saved_before_the_recipe_loads_with_its_own_parameters(frame, tmp_path):
    import json

    old_style = {"level": "none", "time_gaps_per_unit": None, "max_epochs": 2, "max_steps": None}
    model = LatentODE(**{**TINY, **old_style}).fit(frame)
    model.save(tmp_path / "m")
    config_file = tmp_path / "m" / "latentode.json"
    config = json.loads(config_file.read_text())
    for key in ("max_steps", "max_time", "optimizer", "lr_schedule", "gradient_clip"):
        del config["params"][key]
    for key in ("kl_warmup", "kl_weight", "level", "time_gaps_per_unit"):
        del config["params"][key]
    for key in ("level", "lr_schedule", "min_lr_ratio", "gradient_clip"):
        del config["module_hparams"][key]
    del config["n_steps"]
    config_file.write_text(json.dumps(config))
    again = LatentODE.load(tmp_path / "m")
    params = again.get_params()
    assert (params["level"], params["time_gaps_per_unit"], params["max_steps"]) == (
        "none",
        None,
        None,
    )
    assert (params["kl_weight"], params["lr_schedule"], params["gradient_clip"]) == (
        1.0,
        "constant",
        None,
    )
    assert again.n_steps_ is None
    pd.testing.assert_frame_equal(
        model.predict(frame, num_samples=5), again.predict(frame, num_samples=5)
    )


def test_horizon_points_sets_how_many_times_each_series_gets(frame, fitted):
    part = frame[frame["id"] < 2]
    pred = fitted.predict(part, horizon=3.0, horizon_points=5, num_samples=4)
    assert pred.groupby("id").size().tolist() == [5, 5]
    last = part.groupby("id")["time"].max()
    for sid, rows in pred.groupby("id"):
        np.testing.assert_allclose(rows["time"], last[sid] + np.linspace(0.6, 3.0, 5))
    default = fitted.predict(part, horizon=3.0, num_samples=4)
    assert default.groupby("id").size().tolist() == [20, 20]


def test_output_columns_never_overwrite_the_users_own(frame):
    # a feature named like a column that sample() adds
    named = frame.rename(columns={"y": "sample"})
    model = LatentODE(**TINY).fit(named)
    part = named[named["id"] < 2]
    assert "sample" in model.predict(part, num_samples=4).columns  # predict adds no "sample"
    with pytest.raises(ValueError, match=r"sample\(\) adds the column\(s\) 'sample' \(a feature\)"):
        model.sample(2, [0.0, 1.0], df=part)
    with pytest.raises(ValueError, match=r"'sample' \(a feature\)"):
        model.sample(2, [0.0, 1.0])
    # a feature named like a quantile column of another
    quantiled = frame.rename(columns={"y": "x_q0.05"})
    model = LatentODE(**TINY).fit(quantiled)
    part = quantiled[quantiled["id"] < 2]
    with pytest.raises(ValueError, match=r"predict\(\) adds the column\(s\) 'x_q0.05'"):
        model.predict(part, num_samples=4)
    pred = model.predict(part, num_samples=4, quantiles=(0.1, 0.9))
    assert len(set(pred.columns)) == len(pred.columns)


def test_a_verbose_fit_into_a_pipe_prints_one_plain_line_per_epoch(frame, capsys):
    LatentODE(**{**TINY, "max_epochs": 3, "max_steps": None}, verbose=True).fit(frame)
    out = capsys.readouterr().out  # pytest's capture is not a terminal
    assert "\r" not in out
    lines = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert [line.split(",")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert "train/loss" in lines[-1]


def test_the_adjoint_fits_like_the_direct_gradients(frame):
    """adjoint=True trains through the native per-row adjoint: its gradients are the direct
    ones to the solver's tolerance, so a short fit ends close to the direct fit."""
    kwargs = {"max_steps": 5, "random_state": 0, "latent_dim": 4, "encoder_hidden": 8}
    direct = LatentODE(**kwargs).fit(frame)
    adjoint = LatentODE(adjoint=True, **kwargs).fit(frame)
    part = frame[frame["id"] == frame["id"].iloc[0]]
    a = adjoint.predict(part, interval="mean")["x"].to_numpy()
    d = direct.predict(part, interval="mean")["x"].to_numpy()
    np.testing.assert_allclose(a, d, rtol=1e-2, atol=1e-2 * float(np.abs(d).max()))


@pytest.mark.parametrize("flow", ["resnet", "gru", "coupling"])
def test_a_flow_decoder_fits_predicts_and_round_trips(frame, tmp_path, flow):
    model = LatentODE(**{**TINY, "decoder": "flow", "flow": flow}).fit(frame)
    assert type(model.module_.model.decoder).__name__ == "FlowDecoder"
    pred = model.predict(frame, horizon=2.0)
    assert np.isfinite(pred.filter(like="x").to_numpy()).all()
    model.save(tmp_path / "m")
    again = LatentODE.load(tmp_path / "m")
    assert again.get_params()["flow"] == flow
    pd.testing.assert_frame_equal(pred, again.predict(frame, horizon=2.0))
