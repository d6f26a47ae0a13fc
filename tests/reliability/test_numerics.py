"""Numerical faults end in clear errors: exploding solves, and non-finite training losses."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from latentode.core import SolverError
from latentode.data import make_periodic
from latentode.estimator import LatentODE, NonFiniteModelError
from latentode.lightning import NonFiniteLossError

TINY = {"latent_dim": 2, "encoder_hidden": 4, "decoder_width": 4, "decoder_depth": 1}
DF = make_periodic(n_series=8, n_points=8, random_state=0).observed


@pytest.mark.timeout(120)
def test_an_exploding_decoder_fails_prediction_clearly_instead_of_returning_nan():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LatentODE(**TINY, max_epochs=1, random_state=0).fit(DF)
    field = model.module_.model.decoder.field
    field.forward = lambda t, z: 10.0 * (1.0 + z**2)  # tan-like: blows up in finite time
    with pytest.raises(SolverError, match=r"rtol=.*atol=.*max_num_steps=") as info:
        model.predict(DF, times=[0.0, 50.0], num_samples=3)
    assert "Fixes:" in str(info.value)


def test_a_non_finite_training_loss_stops_training_at_once_with_the_fix():
    """The policy: the first NaN/inf loss stops the fit with NonFiniteLossError (no skipping)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator = LatentODE(**TINY, likelihood_std=1e-30, max_epochs=3, random_state=0)
        with pytest.raises(NonFiniteLossError, match=r"lower learning rate.*gradient_clip_val"):
            estimator.fit(DF)
    assert not hasattr(estimator, "module_")  # nothing half-trained is left behind as fitted


# --- any finite data gives finite answers on its own scale ------------------------------------

_BASE = make_periodic(n_series=8, n_points=10, random_state=0).observed
_VALUES = [c for c in _BASE.columns if c not in ("id", "time")]


def _scaled(factor: float, shift: float = 0.0):
    frame = _BASE.copy()
    frame[_VALUES] = frame[_VALUES] * factor + shift
    return frame


def _fit_predict(frame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LatentODE(**TINY, max_epochs=1, random_state=0).fit(frame)
        out = model.predict(frame, num_samples=5, quantiles=(0.05, 0.95))
    return out.iloc[:, 2:].to_numpy(), model


@pytest.fixture(scope="module")
def unit_predictions():
    return _fit_predict(_BASE)[0]


@pytest.mark.parametrize("factor", [1e-300, 1e-200, 1e-160, 1e160, 1e200, 1e300, 1e307])
def test_data_at_any_finite_scale_is_predicted_on_that_scale(unit_predictions, factor):
    """Standardising is scale-free: the fit on x * f predicts f times the fit on x. Squaring
    raw values (the old way) overflowed above ~1e154 (NaN predictions) and underflowed below
    ~1e-154 (predictions off by the factor)."""
    predictions, model = _fit_predict(_scaled(factor))
    assert np.isfinite(predictions).all()
    np.testing.assert_allclose(predictions / factor, unit_predictions, rtol=1e-4, atol=1e-6)
    assert np.isfinite(model.score(_scaled(factor)))


def test_values_near_the_float_limit_with_both_signs_stay_finite():
    frame = _scaled(1e308 / 3)  # |x| up to ~1e308: x - mean would overflow
    predictions, _ = _fit_predict(frame)
    assert np.isfinite(predictions).all()
    assert np.nanmax(np.abs(predictions)) < 1.8e308


def test_a_huge_offset_with_a_tiny_spread_keeps_the_spread(unit_predictions):
    predictions, _ = _fit_predict(_scaled(1.0, shift=1e12))
    np.testing.assert_allclose(predictions - 1e12, unit_predictions, atol=2e-3)


# --- non-finite weights or read-outs are refused, never returned ------------------------------


@pytest.fixture(scope="module")
def poisoned():
    import copy

    from latentode.data import make_clinical_events

    events = make_clinical_events(n_series=6, n_labs=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LatentODE(**TINY, max_epochs=1, random_state=0, poisson=True).fit(
            events.observed, events=events.events
        )
    broken = copy.deepcopy(model)
    with torch.no_grad():
        broken.module_.model.decoder.readout.bias.fill_(float("nan"))
    return broken, events.observed


@pytest.mark.parametrize(
    "call",
    [
        lambda m, df: m.predict(df),
        lambda m, df: m.predict(df, interval="mean"),
        lambda m, df: m.sample(2, times=[0.0, 1.0], df=df),
        lambda m, df: m.sample(2, times=[0.0, 1.0]),
        lambda m, df: m.score(df),
        lambda m, df: m.predict_intensity(df),
        lambda m, df: m.sample_events(df),
    ],
    ids=[
        "predict",
        "predict mean",
        "sample posterior",
        "sample prior",
        "score",
        "intensity",
        "sample_events",
    ],
)
def test_a_model_with_nan_weights_refuses_to_answer(poisoned, call):
    model, df = poisoned
    with pytest.raises(NonFiniteModelError, match=r"NaN or infinity \(model.decoder.readout"):
        call(model, df)


def test_a_read_out_that_overflows_is_refused_not_returned():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LatentODE(**TINY, max_epochs=1, random_state=0).fit(DF)
    with torch.no_grad():
        model.module_.model.decoder.readout.weight.fill_(3e38)  # finite, but z · w overflows
    with pytest.raises(NonFiniteModelError, match=r"prediction is NaN or infinite at"):
        model.predict(DF)


# --- training that diverges ends in NonFiniteLossError, never a garbage model ----------------


@pytest.mark.parametrize(
    "settings",
    [
        {"lr": 1e6},
        {"lr": 1e3},
        {"lr": 1e2, "optimizer": "sgd"},
        {"lr": 1e3, "val_fraction": 0.0},
    ],
    ids=["lr 1e6", "lr 1e3", "sgd lr 1e2", "lr 1e3 without validation"],
)
def test_a_diverging_fit_raises_instead_of_returning_a_garbage_model(settings):
    frame = make_periodic(n_series=16, n_points=10, random_state=0).observed
    estimator = LatentODE(**TINY, max_epochs=20, random_state=0, **settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(NonFiniteLossError, match=r"lower learning rate"):
            estimator.fit(frame)
    assert not hasattr(estimator, "module_")


def test_the_cli_writes_no_table_when_the_read_out_overflows(tmp_path):
    from latentode.cli import main

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LatentODE(**TINY, max_epochs=1, random_state=0).fit(DF)
    with torch.no_grad():
        model.module_.model.decoder.readout.weight.fill_(3e38)
    folder = model.save(tmp_path / "model")  # finite weights: saved and loaded
    DF.to_csv(tmp_path / "data.csv", index=False)
    out = tmp_path / "out.csv"
    argv = ["predict", "--model", str(folder), "--data", str(tmp_path / "data.csv")]
    with pytest.raises(SystemExit) as info:
        main([*argv, "--out", str(out)])
    assert "NaN or infinite" in str(info.value.code)
    assert not out.exists()
