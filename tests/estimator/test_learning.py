"""The estimator learns: at its defaults (a short budget), it beats simple per-series baselines.

Tests that cannot fail prove nothing, so each claim here is paired with a control that must
fail it: the same fitted model with its latent initial state replaced by the prior mean (the
decoder then ignores each series' observations except its level) must lose to the baselines.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.distributions import Normal

from latentode.data import make_dataset
from latentode.estimator import LatentODE
from latentode.evaluate import compare, holdout_interior


def _ratio(model, test, split) -> float:
    table = compare(model, test, "interpolation", split=split, num_samples=20)
    return float(table.query("method == 'latentode' and feature == 'all'")["ratio"].iloc[0])


@pytest.fixture(scope="module")
def fitted():
    # Absorption-elimination curves: a quick rise and a slow decay, each subject with its own
    # rates, about ten irregular noisy samples, sparse around the peak that linear
    # interpolation cuts off. Fresh subjects of the same population are the test set.
    train = make_dataset("absorption", n_series=80, random_state=0).observed
    test = make_dataset("absorption", n_series=40, random_state=1).observed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LatentODE(max_steps=400, random_state=0).fit(train)
    return model, test, holdout_interior(test, 0.3, random_state=0)


def test_interpolation_beats_every_baseline(fitted):
    model, test, split = fitted
    assert _ratio(model, test, split) < 0.8  # 0.50 when written


def test_the_same_model_without_its_latent_state_loses(fitted, monkeypatch):
    model, test, split = fitted
    encoder = model.module_.model.encoder
    forward = encoder.forward

    def prior_mean(batch, static=None):
        q = forward(batch, static)
        return Normal(torch.zeros_like(q.loc), torch.full_like(q.scale, 1e-4))

    monkeypatch.setattr(encoder, "forward", prior_mean)
    assert _ratio(model, test, split) > 1.5  # 2.71 when written
