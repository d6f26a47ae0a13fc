"""Same data and seed: bit-identical weights, predictions and samples on CPU, workers or not."""

from __future__ import annotations

import logging
import warnings

import pandas as pd
import pytest
import pytorch_lightning as pl
import torch

from latentode.data import make_clinical_events
from latentode.estimator import LatentODE
from latentode.lightning import IrregularTimeSeriesDataModule, KLAnnealing, LatentODEModule
from tests.problems import WithEvents

TINY = {"latent_dim": 3, "encoder_hidden": 6, "decoder_width": 8, "decoder_depth": 1}


def _same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_two_fits_give_identical_weights_predictions_and_samples():
    data = make_clinical_events(n_series=16, n_labs=6, random_state=0)
    runs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(2):
            model = LatentODE(**TINY, max_epochs=2, poisson=True, random_state=7)
            model = WithEvents(model.fit(data.observed, events=data.events), data.events)
            df = data.observed[data.observed["id"] < 3]
            runs.append(
                (
                    model.module_.state_dict(),
                    model.predict(df, num_samples=8),
                    model.sample(3, [0.0, 1.0, 2.0], random_state=1),
                    model.sample(3, [0.0, 5.0], df=df, random_state=1),
                    model.sample_events(df, n_samples=2, random_state=1),
                )
            )
    (w1, *outs1), (w2, *outs2) = runs
    assert _same_state(w1, w2)
    for a, b in zip(outs1, outs2, strict=True):
        pd.testing.assert_frame_equal(a, b)


def _lightning_weights(num_workers: int, tmp_path) -> dict:
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    torch.manual_seed(0)
    dm = IrregularTimeSeriesDataModule(
        "periodic",
        dataset_kwargs={"n_series": 24, "n_points": 12},
        batch_size=8,
        num_workers=num_workers,
        seed=3,
    )
    module = LatentODEModule(dm.n_features, **TINY)
    trainer = pl.Trainer(
        max_epochs=2,
        callbacks=[KLAnnealing(n_steps=4)],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, dm)
    return {k: v.clone() for k, v in module.state_dict().items()}


@pytest.mark.timeout(300)
def test_dataloader_workers_do_not_change_the_result(tmp_path):
    with_workers = _lightning_weights(2, tmp_path)
    assert _same_state(with_workers, _lightning_weights(2, tmp_path))
    assert _same_state(with_workers, _lightning_weights(0, tmp_path))


@pytest.mark.parametrize("seed", [2**64, 2**70 + 5, 10**40])
def test_seeds_beyond_64_bits_fit_and_sample_reproducibly(seed):
    data = make_clinical_events(n_series=8, n_labs=5, random_state=0).observed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LatentODE(**TINY, max_steps=4, random_state=seed).fit(data)
    first = model.sample(3, [0.0, 1.0], random_state=seed)
    pd.testing.assert_frame_equal(first, model.sample(3, [0.0, 1.0], random_state=seed))
    other = model.sample(3, [0.0, 1.0], random_state=seed + 1)
    assert not first.equals(other)  # neighbouring big seeds are not folded together
