"""Numerical faults end in clear errors: exploding solves, and non-finite training losses."""

from __future__ import annotations

import warnings

import pytest

from latentode.core import SolverError
from latentode.data import make_periodic
from latentode.estimator import LatentODE
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
