"""``trainer.predict(module, datamodule)``: the posterior mean at each held-out target time."""

from __future__ import annotations

import logging
import warnings

import pytest
import torch

from latentode.lightning import BatchPrediction, IrregularTimeSeriesDataModule, LatentODEModule
from tests.lightning.test_lightning import TINY, _dm, _trainer


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _setup(**kwargs):
    # 24 series: 6 for test, 4 for validation; batches of 4 leave a ragged last one
    dm = _dm(test_fraction=0.25, val_fraction=1 / 6, batch_size=4, **kwargs)
    dm.setup()
    return dm, LatentODEModule(dm.n_features, **TINY)


@pytest.mark.parametrize("task", ["interpolation", "extrapolation"])
def test_predict_returns_the_posterior_mean_at_the_target_times(tmp_path, task):
    dm, module = _setup(task=task)
    predictions = _trainer(tmp_path).predict(module, dm)
    batches = list(dm.predict_dataloader())
    assert len(predictions) == len(batches) == 2
    module.eval()
    for pred, (cond, target) in zip(predictions, batches, strict=True):
        assert isinstance(pred, BatchPrediction)
        assert pred.mean.shape == (target.batch_size, target.max_obs, dm.n_features)
        assert pred.samples is None
        torch.testing.assert_close(pred.target.times, target.times, rtol=0, atol=0)
        torch.testing.assert_close(pred.target.mask, target.mask, rtol=0, atol=0)
        with torch.no_grad():
            expected = module.model.predict_mean(cond, target.times)
        torch.testing.assert_close(pred.mean, expected)
    # the default split is the test split, in its order
    order = torch.cat([pred.target.index for pred in predictions]).tolist()
    assert order == dm.split["test"]


def test_predict_lines_up_with_the_test_batches():
    dm, _ = _setup()
    for (c1, t1), (c2, t2) in zip(dm.predict_dataloader(), dm.test_dataloader(), strict=True):
        for a, b in ((c1, c2), (t1, t2)):
            torch.testing.assert_close(a.times, b.times, rtol=0, atol=0)
            torch.testing.assert_close(a.mask, b.mask, rtol=0, atol=0)


def test_predict_draws_posterior_samples_when_asked(tmp_path):
    dm, module = _setup()
    module.predict_samples = 3
    pred = _trainer(tmp_path).predict(module, dm)[0]
    b, t, f = pred.mean.shape
    assert pred.samples.shape == (3, b, t, f)
    assert torch.isfinite(pred.samples).all()
    assert not torch.equal(pred.samples[0], pred.samples[1])  # draws, not copies of the mean


@pytest.mark.parametrize("split", ["val", "train"])
def test_predict_split_chooses_the_series(tmp_path, split):
    dm, module = _setup(predict_split=split)
    predictions = _trainer(tmp_path).predict(module, dm)
    order = torch.cat([pred.target.index for pred in predictions]).tolist()
    assert order == dm.split[split]


def test_predict_split_must_be_a_split():
    with pytest.raises(ValueError, match=r"`predict_split` must be one of .*; got 'all'"):
        IrregularTimeSeriesDataModule("periodic", predict_split="all")


def test_predict_at_double_precision(tmp_path):
    dm, module = _setup()
    pred = _trainer(tmp_path, precision="64-true").predict(module, dm)[0]
    assert pred.mean.dtype == pred.target.times.dtype == torch.float64
