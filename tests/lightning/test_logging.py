"""What the module logs, and that held-out metrics are averaged over processes under DDP."""

from __future__ import annotations

import logging
import warnings

import pytest
import pytorch_lightning as pl

from latentode.lightning import LatentODEModule
from tests.lightning.test_lightning import TINY, _dm, _trainer


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.mark.parametrize("stage", ["validate", "test"])
def test_held_out_metrics_are_synced_across_processes(tmp_path, monkeypatch, stage):
    calls = []
    log = pl.LightningModule.log

    def spy(self, name, value, *args, **kwargs):
        calls.append((name, kwargs.get("sync_dist", False)))
        return log(self, name, value, *args, **kwargs)

    monkeypatch.setattr(pl.LightningModule, "log", spy)  # log_dict goes through log too
    dm = _dm(dataset_kwargs={"n_series": 20, "n_points": 10}, test_fraction=0.2)
    dm.setup()
    # a Poisson head over the observation times: event_log_likelihood is logged too
    module = LatentODEModule(dm.n_features, **TINY, n_event_kinds=dm.n_features)
    getattr(_trainer(tmp_path), stage)(module, dm)
    prefix = "val/" if stage == "validate" else "test/"
    names = {name for name, _ in calls}
    for metric in ("loss", "mse", "mse_of_mean", "event_log_likelihood"):
        assert prefix + metric in names
    unsynced = sorted({name for name, sync in calls if not sync})
    assert unsynced == [], f"logged without sync_dist=True: {unsynced}"
