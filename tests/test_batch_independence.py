"""A series' prediction does not depend on the other series it is predicted with (issue 15)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

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
