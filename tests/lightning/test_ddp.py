"""Scale-out is Lightning's DDP: two CPU processes (ddp_spawn, gloo) end with equal weights."""

from __future__ import annotations

import logging
import warnings

import pytest
import pytorch_lightning as pl
import torch
import torch.distributed as dist

from latentode.lightning import IrregularTimeSeriesDataModule, LatentODEModule
from tests.lightning.test_lightning import TINY


class SaveRankWeights(pl.Callback):
    """Each rank writes its final weights, so the test can compare ranks."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def on_train_end(self, trainer, pl_module) -> None:
        torch.save(pl_module.state_dict(), f"{self.folder}/rank{trainer.global_rank}.pt")


@pytest.mark.timeout(240)
@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_two_cpu_processes_train_in_step(tmp_path):
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    dm = IrregularTimeSeriesDataModule(
        "periodic", dataset_kwargs={"n_series": 32, "n_points": 12}, batch_size=4, seed=0
    )
    torch.manual_seed(0)
    module = LatentODEModule(1, **TINY)
    initial = {k: v.clone() for k, v in module.state_dict().items()}
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        max_epochs=1,
        limit_train_batches=3,
        limit_val_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[SaveRankWeights(str(tmp_path))],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, dm)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    moved = False
    for name, weight in ranks[0].items():
        torch.testing.assert_close(weight, ranks[1][name], rtol=0, atol=0)
        moved |= not torch.equal(weight, initial[name])
    assert moved, "training changed no weight"
