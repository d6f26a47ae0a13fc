"""`LatentODEModule`: a thin LightningModule around the plain `LatentODEModel`."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch

from latentode._validation import check_choice, check_int
from latentode.core.solver import SolverConfig
from latentode.data.batch import IrregularBatch
from latentode.losses import BOUNDS, masked_mse
from latentode.model import LatentODEModel

__all__ = ["OPTIMIZERS", "LatentODEModule"]

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamax": torch.optim.Adamax,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
}


class LatentODEModule(pl.LightningModule):
    """Train a latent ODE with any Lightning ``Trainer`` (CPU, GPU, multi-GPU, DDP).

    The maths lives in :class:`~latentode.model.LatentODEModel` and :mod:`latentode.losses`;
    this class only wires one shared step for train/val/test, logging and the optimiser. All
    arguments are primitives, so ``save_hyperparameters`` makes checkpoints self-describing.

    Args:
        n_features: Observed features.
        latent_dim, encoder, encoder_hidden, n_substeps, decoder_width, decoder_depth,
            obs_std, learn_std: see :class:`~latentode.model.LatentODEModel`.
        method, rtol, atol, adjoint: decoder solver settings for training.
        eval_method, eval_rtol, eval_atol: decoder solver settings for validation, testing and
            prediction; each defaults to its training value.
        n_samples: Posterior samples K per series per step (≥ 1).
        bound: ``"elbo"`` or ``"iwae"``.
        optimizer: Name in :data:`OPTIMIZERS`; ``lr`` and ``optimizer_kwargs`` configure it.
        n_event_kinds, intensity_hidden, event_weight: the Poisson-process head (off with 0
            kinds); see :class:`~latentode.model.LatentODEModel`.

    Attributes:
        kl_weight: β multiplying the KL term; set by :class:`~latentode.lightning.KLAnnealing`.
    """

    def __init__(
        self,
        n_features: int,
        latent_dim: int = 16,
        encoder: str = "odernn",
        encoder_hidden: int = 32,
        n_substeps: int = 2,
        decoder_width: int = 64,
        decoder_depth: int = 2,
        obs_std: float = 0.01,
        learn_std: bool = False,
        method: str = "dopri5",
        rtol: float = 1e-3,
        atol: float = 1e-4,
        adjoint: bool = False,
        eval_method: str | None = None,
        eval_rtol: float | None = None,
        eval_atol: float | None = None,
        n_samples: int = 1,
        bound: str = "elbo",
        optimizer: str = "adamax",
        lr: float = 1e-2,
        optimizer_kwargs: dict[str, Any] | None = None,
        n_event_kinds: int = 0,
        intensity_hidden: int = 32,
        event_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.n_samples = check_int("n_samples", n_samples, minimum=1)
        self.bound = check_choice("bound", bound, BOUNDS)
        check_choice("optimizer", optimizer, OPTIMIZERS)
        train_solver = SolverConfig(method=method, rtol=rtol, atol=atol, adjoint=adjoint)
        eval_solver = SolverConfig(
            method=eval_method or method,
            rtol=rtol if eval_rtol is None else eval_rtol,
            atol=atol if eval_atol is None else eval_atol,
        )
        encoder_kwargs = {"n_substeps": n_substeps} if encoder == "odernn" else {}
        self.model = LatentODEModel(
            n_features,
            latent_dim,
            encoder=encoder,
            encoder_hidden=encoder_hidden,
            encoder_kwargs=encoder_kwargs,
            decoder_width=decoder_width,
            decoder_depth=decoder_depth,
            obs_std=obs_std,
            learn_std=learn_std,
            train_solver=train_solver,
            eval_solver=eval_solver,
            n_event_kinds=n_event_kinds,
            intensity_hidden=intensity_hidden,
            event_weight=event_weight,
        )
        self.kl_weight = 1.0

    def setup(self, stage: str) -> None:
        """Before fitting, start a new Poisson head at the data's mean event rates.

        Runs before Lightning restores a checkpoint, and only for a head that was never
        initialised (a saved flag), so resumed or reloaded models keep their weights.
        """
        head = self.model.poisson
        if stage != "fit" or head is None or bool(head.rates_initialised):
            return
        datamodule = getattr(self.trainer, "datamodule", None)
        rates = getattr(datamodule, "event_rates", None)
        if callable(rates):
            values = rates(head.n_kinds)
            if values is not None:
                head.init_rates(values)

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int):
        # The batches are frozen dataclasses, which Lightning's generic mover refuses.
        return tuple(part.to(device) for part in batch)

    def _step(self, batch: tuple[IrregularBatch, IrregularBatch], stage: str) -> torch.Tensor:
        cond, target = batch
        # Annealing shapes training only: validation and test report the true bound (β = 1),
        # so model selection compares epochs on one objective while β rises.
        kl_weight = self.kl_weight if stage == "train" else 1.0
        terms, out = self.model.loss(
            cond, target, n_samples=self.n_samples, kl_weight=kl_weight, bound=self.bound
        )
        stats = self.model.decoder.last_stats
        size = cond.batch_size
        # The ODE-RNN counts its fixed-step evaluations; a GRU encoder makes none.
        nfe_encoder = float(getattr(self.model.encoder, "nfe", 0))
        self.log(f"{stage}/loss", terms.loss, prog_bar=True, batch_size=size)
        self.log_dict(
            {
                f"{stage}/log_likelihood": terms.log_likelihood,
                f"{stage}/kl": terms.kl,
                f"{stage}/mse": masked_mse(out.mean, target.values, target.mask),
                f"{stage}/nfe_forward": float(sum(s.nfe_forward for s in stats)),
                f"{stage}/nfe_encoder": nfe_encoder,
                f"{stage}/kl_weight": float(kl_weight),
            },
            batch_size=size,
        )
        if terms.event_log_likelihood is not None:
            self.log(f"{stage}/event_log_likelihood", terms.event_log_likelihood, batch_size=size)
        self._last_stats = stats
        return terms.loss

    def on_after_backward(self) -> None:
        # Backward NFE exist only once backward has run (adjoint); log them here.
        stats = getattr(self, "_last_stats", [])
        self.log("train/nfe_backward", float(sum(s.nfe_backward for s in stats)))

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        return self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        return self._step(batch, "test")

    def configure_optimizers(self):
        hp = self.hparams
        return OPTIMIZERS[hp.optimizer](
            self.parameters(), lr=hp.lr, **dict(hp.optimizer_kwargs or {})
        )
