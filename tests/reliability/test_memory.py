"""Requests of any size are cut into blocks that fit a memory budget: over series, samples and
times. Before, one series x 5000 times x 100,000 samples was decoded in one piece (3.5 GB)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from latentode.data import make_clinical_events, make_periodic
from latentode.estimator import LatentODE
from latentode.estimator.predictor import Predictor
from tests.problems import LargestTensor, WithEvents

TINY = {
    "latent_dim": 3,
    "encoder_hidden": 4,
    "decoder_width": 4,
    "decoder_depth": 1,
    "max_epochs": 1,
    "random_state": 0,
}
BUDGET = 2**20  # bytes, the smallest memory_budget: the requests below must be cut


@pytest.fixture(scope="module")
def fitted():
    data = make_clinical_events(n_series=6, n_labs=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LatentODE(**TINY, poisson=True).fit(data.observed, events=data.events)
    return WithEvents(model, data.events), data.observed


@pytest.fixture
def decoded_sizes(fitted, monkeypatch):
    """Per decoder call, the bytes of the largest tensor it makes (states, stages, outputs)."""
    decoder = fitted[0].module_.model.decoder
    sizes: list[int] = []

    def recording(method):
        def run(*args, **kwargs):
            with LargestTensor() as mode:
                out = method(*args, **kwargs)
            sizes.append(mode.largest_bytes)
            return out

        return run

    monkeypatch.setattr(decoder, "forward", recording(decoder.forward))
    monkeypatch.setattr(decoder, "trajectory", recording(decoder.trajectory))
    return sizes


def _cut(monkeypatch, model):
    monkeypatch.setattr(model, "memory_budget", BUDGET)


TIMES = np.linspace(0.0, 8.0, 400)


def test_a_long_request_is_decoded_in_blocks_within_the_budget(fitted, monkeypatch, decoded_sizes):
    model, df = fitted
    whole = model.predict(df, times=TIMES, num_samples=100, interval="mean")
    assert max(decoded_sizes) > BUDGET  # the request does not fit in one piece
    decoded_sizes.clear()
    _cut(monkeypatch, model)
    cut = model.predict(df, times=TIMES, num_samples=100, interval="mean")
    assert len(decoded_sizes) > len(df["id"].unique())  # series were cut along their times
    assert max(decoded_sizes) <= BUDGET
    assert cut.shape == whole.shape
    np.testing.assert_array_equal(cut[["id", "time"]], whole[["id", "time"]])
    # the same posterior draws decoded on shorter grids: equal up to the solver's tolerance
    np.testing.assert_allclose(cut.iloc[:, 2:], whole.iloc[:, 2:], atol=0.05)


def test_predictive_bands_cut_into_blocks_stay_finite_and_ordered(fitted, monkeypatch):
    model, df = fitted
    _cut(monkeypatch, model)
    out = model.predict(df, times=TIMES, num_samples=100)
    assert np.isfinite(out.iloc[:, 2:].to_numpy()).all()
    assert (out["x_q0.05"] <= out["x_q0.95"]).all()
    again = model.predict(df, times=TIMES, num_samples=100)
    np.testing.assert_array_equal(out.to_numpy(), again.to_numpy())  # reproducible


def test_expected_counts_carry_across_blocks(fitted, monkeypatch):
    model, df = fitted
    whole = model.predict_intensity(df, times=TIMES, num_samples=100)
    _cut(monkeypatch, model)
    cut = model.predict_intensity(df, times=TIMES, num_samples=100)
    np.testing.assert_allclose(cut["expected_count"], whole["expected_count"], atol=2e-3)
    first = cut.groupby(["id", "kind"])["expected_count"].head(1)
    assert (first == 0).all()
    assert (cut["expected_count"].drop(first.index) > 0).mean() > 0.9  # no block restarts at 0


def test_prior_and_posterior_samples_cut_into_blocks(fitted, monkeypatch, decoded_sizes):
    model, df = fitted
    _cut(monkeypatch, model)
    prior = model.sample(300, times=TIMES[:50], random_state=1)
    assert prior.shape[0] == 300 * 50
    assert np.isfinite(prior["x"]).all()
    assert prior.groupby("sample")["x"].std().min() > 0
    # the draws are not copies of one another across blocks
    assert prior.groupby("sample")["x"].first().nunique() == 300
    post = model.sample(30, times=TIMES, df=df, random_state=1)
    assert post.shape[0] == 30 * TIMES.size * df["id"].nunique()
    assert max(decoded_sizes) <= BUDGET
    again = model.sample(30, times=TIMES, df=df, random_state=1)
    np.testing.assert_array_equal(post.to_numpy(), again.to_numpy())


def test_scores_are_cut_by_the_budget_too(monkeypatch):
    """score used to size its blocks by a count of values, blind to the latent size and the
    budget; now whole series per block, as many as the budget holds."""
    df = make_periodic(n_series=30, n_points=40, random_state=0).observed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LatentODE(**TINY).fit(df)
    blocks = []
    chunks = Predictor.chunks

    def counted(self, *args):
        for rows in chunks(self, *args):
            blocks.append(len(rows))
            yield rows

    monkeypatch.setattr(Predictor, "chunks", counted)
    whole = model.score_details(df, n_samples=200)
    assert blocks == [30]
    blocks.clear()
    _cut(monkeypatch, model)
    cut = model.score_details(df, n_samples=200)
    assert len(blocks) > 1
    assert max(blocks) * 200 * 40 * (3 * 20 + 5 * 8) <= BUDGET
    pd.testing.assert_frame_equal(cut, whole, rtol=1e-5)
