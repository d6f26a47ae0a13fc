"""Event streams through Lightning: targets keep their own events, a new head starts at the rate."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from latentode.data import make_clinical_events
from latentode.data.collate import SeriesItem
from latentode.lightning import IrregularTimeSeriesDataModule, LatentODEModule, split_items

TINY = {
    "latent_dim": 3,
    "encoder": "gru",
    "encoder_hidden": 6,
    "decoder_width": 8,
    "decoder_depth": 1,
    "obs_std": 0.1,
}


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture(scope="module")
def data():
    return make_clinical_events(n_series=20, n_labs=8, random_state=0)


def _item():
    return SeriesItem(
        index=0,
        times=torch.tensor([0.0, 0.2, 0.5, 0.8, 1.0]),
        values=torch.ones(5, 1),
        mask=torch.ones(5, 1),
        event_times=torch.tensor([0.05, 0.3, 0.6, 0.9, 1.0]),
        event_kinds=torch.tensor([0, 1, 0, 1, 0]),
    )


def test_interpolation_targets_keep_every_event_and_conditioning_its_past():
    cond, target = split_items(
        [_item()], "interpolation", cond_fraction=0.5, extrap_cut=0.5, generator=None
    )
    # the conditioning points carry the events up to their last time: evidence, not future
    last = float(cond.times[0, int(cond.lengths[0]) - 1])
    seen = cond.events.times[0][cond.events.mask[0] > 0]
    assert seen.tolist() == pytest.approx([t for t in [0.05, 0.3, 0.6, 0.9, 1.0] if t <= last])
    assert target.events.mask.sum() == 5
    assert target.events.kinds[0].tolist() == [0, 1, 0, 1, 0]


def test_extrapolation_targets_keep_only_the_events_in_their_span():
    cond, target = split_items(
        [_item()], "extrapolation", cond_fraction=1.0, extrap_cut=0.5, generator=None
    )
    past = cond.events.times[0][cond.events.mask[0] > 0]
    assert past.tolist() == pytest.approx([0.05])  # up to the last conditioning point, 0.2
    assert target.times[0].tolist() == pytest.approx([0.5, 0.8, 1.0])
    kept = target.events.times[0][target.events.mask[0] > 0]
    assert kept.tolist() == pytest.approx([0.6, 0.9, 1.0])


def test_datamodule_takes_events_and_a_module_trains_on_them(data, tmp_path):
    dm = IrregularTimeSeriesDataModule(
        data.observed, events=data.events, batch_size=8, val_fraction=0.2, test_fraction=0.0
    )
    dm.setup()
    assert dm.event_kinds_ == ["visit"]
    cond, target = next(iter(dm.train_dataloader()))
    assert target.events is not None
    assert cond.events is not None  # the past events, evidence for models that read them
    inside = (target.events.times >= target.times[:, :1]) & (
        target.events.times <= target.times[:, -1:]
    )
    assert bool(inside[target.events.mask > 0].all())

    module = LatentODEModule(dm.n_features, **TINY, n_event_kinds=1)
    trainer = pl.Trainer(
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, dm)
    assert "train/event_log_likelihood" in trainer.callback_metrics
    assert np.isfinite(float(trainer.callback_metrics["val/event_log_likelihood"]))


def test_a_new_head_starts_at_the_data_rate_and_a_trained_one_is_kept(data, tmp_path):
    dm = IrregularTimeSeriesDataModule(data.observed, events=data.events, batch_size=8)
    module = LatentODEModule(dm.n_features, **TINY, n_event_kinds=1)
    torch.nn.init.zeros_(module.model.poisson.net[-1].weight)
    trainer = pl.Trainer(
        max_epochs=1, limit_train_batches=0, logger=False, default_root_dir=tmp_path
    )
    trainer.fit(module, dm)  # no steps: only setup runs
    rate = dm.event_rates(1)[0]  # per model time unit
    z = torch.zeros(1, 3)
    assert module.model.poisson(z).item() == pytest.approx(rate, rel=1e-5)
    assert 20 < rate < 40  # about 3 visits a day over a 10-day span = 1 model time unit
    module.model.poisson.net[-1].bias.data.fill_(-3.0)
    trainer = pl.Trainer(
        max_epochs=1, limit_train_batches=0, logger=False, default_root_dir=tmp_path
    )
    trainer.fit(module, dm)
    assert module.model.poisson.net[-1].bias.item() == -3.0


def test_events_path_must_exist():
    with pytest.raises(FileNotFoundError, match="no such file"):
        IrregularTimeSeriesDataModule("periodic", events="nowhere.csv")
    with pytest.raises(TypeError, match="`events` must be a long DataFrame"):
        IrregularTimeSeriesDataModule("periodic", events=3)
    with pytest.raises(ValueError, match="non-empty list of distinct kinds"):
        IrregularTimeSeriesDataModule("periodic", event_kinds=["a", "a"])
