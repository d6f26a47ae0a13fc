"""Inference runs on the fitted module's device, or on the one asked for."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from latentode.data import make_clinical_events
from latentode.estimator import LatentODE
from tests.problems import WithEvents

TINY = {
    "latent_dim": 2,
    "encoder_hidden": 4,
    "decoder_width": 4,
    "decoder_depth": 1,
    "max_epochs": 1,
    "random_state": 0,
}
DATA = make_clinical_events(n_series=6, n_labs=5, random_state=0)


@pytest.fixture(scope="module")
def fitted():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LatentODE(**TINY, poisson=True).fit(DATA.observed, events=DATA.events)
    return WithEvents(model, DATA.events)


def _answers(model, device):
    df = DATA.observed
    return [
        model.predict(df, num_samples=5, device=device).iloc[:, 2:].to_numpy(),
        model.sample(3, times=[0.0, 1.0], df=df, random_state=1, device=device).iloc[:, 3:],
        model.sample(3, times=[0.0, 1.0], random_state=1, device=device).iloc[:, 2:],
        model.predict_intensity(df, num_samples=5, device=device).iloc[:, 3:].to_numpy(),
        model.score(df, events=DATA.events, device=device),
    ]


def test_an_explicit_cpu_device_gives_the_default_answers(fitted):
    for a, b in zip(_answers(fitted, None), _answers(fitted, "cpu"), strict=True):
        np.testing.assert_array_equal(np.asarray(a, dtype=float), np.asarray(b, dtype=float))


@pytest.mark.parametrize(
    ("device", "words"),
    [("quantum", "must name a torch device"), (3.5, "must name a torch device")],
)
def test_a_bad_device_is_refused(fitted, device, words):
    with pytest.raises(ValueError, match=words):
        fitted.predict(DATA.observed, device=device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a CPU-only machine")
def test_asking_for_a_gpu_without_one_says_so(fitted):
    with pytest.raises(ValueError, match=r"asks for a GPU, but torch sees none"):
        fitted.predict(DATA.observed, device="cuda")


def test_a_gpu_trained_model_predicts_on_the_cpu_where_there_is_no_gpu(fitted, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(fitted, "accelerator", "gpu")
    out = fitted.predict(DATA.observed, num_samples=5)
    assert np.isfinite(out.iloc[:, 2:].to_numpy()).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_answers_match_the_cpu_ones(fitted):
    cpu, gpu = _answers(fitted, "cpu"), _answers(fitted, "cuda")
    for a, b in zip(cpu, gpu, strict=True):
        np.testing.assert_allclose(
            np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=1e-3, atol=1e-4
        )
    assert next(fitted.module_.parameters()).device.type == "cuda"
