"""Batches are containers Lightning can move and cast: any ``Trainer(precision=...)`` works."""

from __future__ import annotations

import logging
import warnings

import pytest
import torch
from lightning_utilities.core.apply_func import apply_to_collection

from latentode.data.batch import IrregularBatch
from latentode.data.collate import SeriesItem, collate
from latentode.lightning import LatentODEModule
from tests.lightning.test_lightning import TINY, _dm, _trainer


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _double(t: torch.Tensor) -> torch.Tensor:
    return t.double() if t.is_floating_point() else t


def test_apply_to_collection_rebuilds_a_batch_with_its_events():
    item = SeriesItem(
        3,
        torch.tensor([0.0, 1.0]),
        torch.tensor([[1.0], [2.0]]),
        torch.ones(2, 1),
        torch.tensor([0.5]),
        torch.tensor([0]),
    )
    batch = collate([item])
    # what Lightning's precision plugins do to a (cond, target) pair
    cast = apply_to_collection((batch, batch), torch.Tensor, _double)
    for part in cast:
        assert type(part) is IrregularBatch
        assert part.values.dtype == part.mask.dtype == part.times.dtype == torch.float64
        assert part.events.times.dtype == part.events.mask.dtype == torch.float64
        assert part.lengths.dtype == part.index.dtype == part.events.kinds.dtype == torch.long
        torch.testing.assert_close(part.values, batch.values.double())
    # the original is untouched: a cast is a new batch
    assert batch.values.dtype == torch.float32


@pytest.mark.parametrize(
    ("precision", "dtype"),
    [("64-true", torch.float64), ("bf16-true", torch.bfloat16), ("bf16-mixed", torch.float32)],
)
def test_a_trainer_fits_at_any_precision(tmp_path, precision, dtype):
    dm = _dm(dataset_kwargs={"n_series": 12, "n_points": 10}, batch_size=6)
    module = LatentODEModule(dm.n_features, **TINY)
    trainer = _trainer(tmp_path, precision=precision, max_epochs=1, enable_checkpointing=False)
    trainer.fit(module, dm)
    assert {p.dtype for p in module.parameters()} == {dtype}
    assert torch.isfinite(trainer.callback_metrics["val/loss"])
    if precision == "64-true":  # the batches reached the model in float64 too
        assert trainer.callback_metrics["val/loss"].dtype == torch.float64
