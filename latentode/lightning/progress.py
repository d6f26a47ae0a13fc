"""`EpochLines`: one plain line per epoch, for logs and pipes where a progress bar is noise.

Lightning's progress bar redraws itself with carriage returns several times a second; in a
file or a CI log that is hundreds of kilobytes of half-lines. This callback prints the epoch,
the step and the latest logged losses once per epoch instead.
"""

from __future__ import annotations

import sys
from typing import TextIO

import pytorch_lightning as pl

__all__ = ["EpochLines"]

_SHOWN = ("train/loss", "val/loss", "val/mse")  # the metrics a line reports, when logged


class EpochLines(pl.Callback):
    """Print ``epoch 12/375, step 96: train/loss 0.72, val/mse 0.31`` after each epoch.

    Args:
        stream: Where to print; default ``sys.stdout`` at the time of printing.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics
        shown = [f"{k} {float(metrics[k]):.4g}" for k in _SHOWN if k in metrics]
        total = "" if trainer.max_epochs in (None, -1) else f"/{trainer.max_epochs}"
        line = f"epoch {trainer.current_epoch + 1}{total}, step {trainer.global_step}"
        stream = self.stream if self.stream is not None else sys.stdout
        print(line + (": " + ", ".join(shown) if shown else ""), file=stream, flush=True)
