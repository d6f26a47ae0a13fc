"""A series' prediction does not depend on the other series it is predicted with (issue 15)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from latentode.data import make_periodic
from latentode.estimator import LatentODE

TINY = {
    "latent_dim": 4,
    "encoder_hidden": 8,
    "decoder_width": 16,
    "decoder_depth": 1,
    "max_epochs": 2,
    "batch_size": 16,
    "random_state": 0,
}


@pytest.fixture(scope="module")
def frame():
    # 41 series with their own (irregular) times
    return make_periodic(n_series=41, n_points=15, random_state=3).observed


def test_one_series_predicted_alone_or_among_forty_agrees(frame):
    model = LatentODE(**TINY).fit(frame)
    first = frame["id"].iloc[0]
    alone = frame[frame["id"] == first]
    kwargs = {"num_samples": 8, "interval": "mean"}
    solo = model.predict(alone, **kwargs)
    among = model.predict(frame, **kwargs)
    among = among[among["id"] == first].reset_index(drop=True)
    pd.testing.assert_frame_equal(solo[["id", "time"]], among[["id", "time"]])
    values = [c for c in solo.columns if c not in ("id", "time")]
    np.testing.assert_allclose(
        among[values].to_numpy(), solo[values].to_numpy(), rtol=1e-6, atol=1e-7
    )


@pytest.fixture(scope="module")
def default_model(frame):
    """The default architecture (its encoder's matrix products are wide enough to round
    differently for a batch of one), briefly fitted."""
    return LatentODE(max_steps=10, random_state=0).fit(frame)


def test_the_encoder_gives_a_series_the_same_bits_alone_or_among_forty(default_model):
    predictor = default_model._predictor()
    ds = predictor.encode_frame(make_periodic(n_series=41, n_points=15, random_state=4).observed)
    model = predictor.module.model
    with torch.no_grad():
        alone, _ = model.encode(ds.batch([0]))
        among, _ = model.encode(ds.batch(list(range(41))))
    assert torch.equal(alone.loc[0], among.loc[0])
    assert torch.equal(alone.scale[0], among.scale[0])


def test_the_default_model_predicts_a_series_alone_as_among_forty(default_model, frame):
    """One ulp in z0 can change an adaptive solve's steps; so the bits must agree first."""
    first = frame["id"].iloc[0]
    kwargs = {"num_samples": 20, "interval": "mean", "horizon": 3.0}
    solo = default_model.predict(frame[frame["id"] == first], **kwargs)
    among = default_model.predict(frame, **kwargs)
    among = among[among["id"] == first].reset_index(drop=True)
    values = [c for c in solo.columns if c not in ("id", "time")]
    np.testing.assert_allclose(
        among[values].to_numpy(), solo[values].to_numpy(), rtol=1e-6, atol=1e-7
    )
