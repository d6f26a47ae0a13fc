"""Resumable training: atomic checkpoint files, and the RNG state saved with them.

A killed fit resumes from ``last.ckpt`` and ends with the weights an uninterrupted run with
the same seed would have ended with. That needs every source of randomness to be either
restored or a pure function of (seed, epoch):

- model weights, optimiser moments, the epoch/step counters (and with them the KL-annealing
  schedule, a function of the step), early stopping and the best epoch's weights: Lightning
  checkpoint state, plus :class:`~latentode.lightning.BestWeights`' own ``state_dict``;
- torch's global RNG (posterior noise, DataLoader seeds): :class:`RNGState` saves and restores it;
- the shuffling and the conditioning subsets: drawn from (seed, epoch, series) by the data
  module, so they need no state at all and do not depend on DataLoader workers.

Checkpoints are written to a temporary file, flushed to disk and renamed over the old one
(:class:`AtomicCheckpointIO`), so a kill during a save leaves the previous ``last.ckpt``
intact. They are read back with ``weights_only=True``: no code runs from a checkpoint file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

__all__ = ["LAST", "AtomicCheckpointIO", "RNGState", "checkpoint_callbacks", "last_checkpoint"]

LAST = "last.ckpt"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write checkpoints as temp file → fsync → rename; read them with ``weights_only=True``."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)  # atomic on POSIX and Windows: old or new, never half
        finally:
            tmp.unlink(missing_ok=True)

    def load_checkpoint(
        self, path: str | os.PathLike, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        if not Path(path).is_file():
            raise FileNotFoundError(f"no checkpoint at {str(path)!r}")
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)


class RNGState(pl.Callback):
    """Save torch's global RNG state in every checkpoint and restore it on resume."""

    def state_dict(self) -> dict[str, Any]:
        return {"torch": torch.get_rng_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])


def checkpoint_callbacks(folder: str | os.PathLike) -> list[pl.Callback]:
    """A ``last.ckpt`` in ``folder`` after every validation check, with the RNG state in it.

    Without validation, after every epoch. Validation checks fall at epoch ends (every epoch
    or every few, see :class:`~latentode.lightning.plan.TrainingPlan`), so a resumed fit
    starts at an epoch boundary.
    """
    # One file, rewritten (atomically, by AtomicCheckpointIO) after each validation check.
    # `save_last` would not do: Lightning writes "last" only next to a top-k file. No version
    # counter: a resumed fit must keep writing last.ckpt.
    return [
        pl.callbacks.ModelCheckpoint(
            dirpath=str(folder),
            filename=LAST.removesuffix(".ckpt"),
            save_top_k=1,
            save_last=False,
            enable_version_counter=False,
        ),
        RNGState(),
    ]


def last_checkpoint(folder: str | os.PathLike) -> Path | None:
    """``folder/last.ckpt`` if a fit has written one, else None."""
    path = Path(folder) / LAST
    return path if path.is_file() else None
