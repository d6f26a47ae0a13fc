"""Lightning integration: a thin module, a data module, and training callbacks."""

from latentode.lightning.callbacks import (
    BestWeights,
    KLAnnealing,
    NonFiniteGuard,
    NonFiniteLossError,
)
from latentode.lightning.datamodule import IrregularTimeSeriesDataModule
from latentode.lightning.module import OPTIMIZERS, BatchPrediction, LatentODEModule
from latentode.lightning.progress import EpochLines
from latentode.lightning.tasks import TASKS, split_items

__all__ = [
    "OPTIMIZERS",
    "TASKS",
    "BatchPrediction",
    "BestWeights",
    "EpochLines",
    "IrregularTimeSeriesDataModule",
    "KLAnnealing",
    "LatentODEModule",
    "NonFiniteGuard",
    "NonFiniteLossError",
    "split_items",
]
