"""`LatentODEModule`: a thin LightningModule around the plain `LatentODEModel`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pytorch_lightning as pl
import torch

from latentode._validation import check_choice, check_int, check_real
from latentode.core.solver import SolverConfig
from latentode.data.batch import IrregularBatch
from latentode.lightning.callbacks import NonFiniteLossError
from latentode.losses import BOUNDS, masked_mse
from latentode.model import LatentODEModel

__all__ = ["LR_SCHEDULES", "OPTIMIZERS", "BatchPrediction", "LatentODEModule"]

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamax": torch.optim.Adamax,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
}

MAX_SKIPPED_STEPS = 10
"""Consecutive steps with a non-finite gradient after which training stops."""

LR_SCHEDULES = ("constant", "cosine")
"""``"cosine"`` decays the learning rate over the trainer's whole step budget."""


@dataclass(eq=False)
class BatchPrediction:
    """What :meth:`LatentODEModule.predict_step` returns for one ``(cond, target)`` batch.

    Everything is in model units: scaled times, and values standardised when the data module
    standardises (its ``feature_scaler`` maps them back); ``target.index`` names each series'
    position in the data module's ``dataset``. A plain dataclass (not frozen), so Lightning can
    move it to the CPU as it collects predictions.

    Attributes:
        mean: ``(batch, n_times, n_features)`` the decoded posterior mean (``z0 = E[q(z0 |
            cond)]``) at the target times, as :meth:`~latentode.model.LatentODEModel.predict_mean`.
        target: The target points the mean is at: ``target.times`` ``(batch, n_times)``, and
            ``target.values``/``target.mask``, what it is scored against.
        samples: ``(n_samples, batch, n_times, n_features)`` posterior sample paths at the
            target times, when the module's ``predict_samples`` asks for them; else None.
    """

    mean: torch.Tensor
    target: IrregularBatch
    samples: torch.Tensor | None = None


class _Cosine:
    """Learning-rate factor: half a cosine from 1 down to ``floor`` over ``total`` steps.

    A class, not a closure, so the scheduler's state (and with it a checkpoint) pickles.
    """

    def __init__(self, total: int, floor: float) -> None:
        self.total, self.floor = max(1, int(total)), float(floor)

    def __call__(self, step: int) -> float:
        progress = min(step / self.total, 1.0)
        return self.floor + (1.0 - self.floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


class LatentODEModule(pl.LightningModule):
    """Train a latent ODE with any Lightning ``Trainer`` (CPU, GPU, multi-GPU, DDP).

    The maths lives in :class:`~latentode.model.LatentODEModel` and :mod:`latentode.losses`;
    this class only wires one shared step for train/val/test, logging and the optimiser. All
    arguments are primitives, so ``save_hyperparameters`` makes checkpoints self-describing.

    Args:
        n_features: Observed features.
        latent_dim, encoder, encoder_hidden, n_substeps, decoder_width, decoder_depth,
            decoder, flow, obs_std, learn_std: see :class:`~latentode.model.LatentODEModel`.
        method, rtol, atol, adjoint: decoder solver settings for training.
        eval_method, eval_rtol, eval_atol: decoder solver settings for validation, testing and
            prediction; each defaults to its training value.
        n_samples: Posterior samples K per series per step (≥ 1).
        bound: ``"elbo"`` or ``"iwae"``.
        optimizer: Name in :data:`OPTIMIZERS`; ``lr`` and ``optimizer_kwargs`` configure it.
        lr_schedule: ``"constant"``, or ``"cosine"``: from ``lr`` down to ``lr * min_lr_ratio``
            over the trainer's step budget (``max_steps``, else ``max_epochs`` epochs). Large
            early steps find the dynamics; small late ones settle the fine detail that
            interpolation is judged on.
        min_lr_ratio: Where the cosine ends, as a share of ``lr``.
        gradient_clip: Clip the gradients' global norm to this before each optimiser step;
            None (default) does not clip. A latent ODE's gradient spikes when the learned
            dynamics briefly turn stiff; clipping keeps one such step from undoing training.
        n_event_kinds, intensity_hidden, event_weight: the Poisson-process head (off with 0
            kinds); see :class:`~latentode.model.LatentODEModel`.
        level: ``"series"`` or ``"none"``: per-series levels, see
            :class:`~latentode.decoders.SeriesLevel`.
        n_held_inputs, n_impulse_inputs, n_static_features: covariates the batches carry
            (the data module's ``covariate_schema``); see
            :class:`~latentode.model.LatentODEModel`.
        event_inputs: the encoder reads each series' past events (explicit events only);
            see :class:`~latentode.model.LatentODEModel`.

    Attributes:
        kl_weight: β multiplying the KL term; set by :class:`~latentode.lightning.KLAnnealing`.
        skipped_steps: Optimiser steps skipped because their gradient was not finite.
        predict_samples: Posterior sample paths per series that :meth:`predict_step` draws
            besides the mean; 0 (default) draws none. Not a hyperparameter: it does not shape
            the model or its training, so it is set on the module, not saved with it.
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
        decoder: str = "ode",
        flow: str = "coupling",
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
        lr_schedule: str = "constant",
        min_lr_ratio: float = 0.02,
        gradient_clip: float | None = None,
        n_event_kinds: int = 0,
        intensity_hidden: int = 32,
        event_weight: float = 1.0,
        level: str = "none",
        n_held_inputs: int = 0,
        n_impulse_inputs: int = 0,
        n_static_features: int = 0,
        event_inputs: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.n_samples = check_int("n_samples", n_samples, minimum=1)
        self.bound = check_choice("bound", bound, BOUNDS)
        check_choice("optimizer", optimizer, OPTIMIZERS)
        check_choice("lr_schedule", lr_schedule, LR_SCHEDULES)
        check_real("gradient_clip", gradient_clip, positive=True, allow_none=True)
        ratio = check_real("min_lr_ratio", min_lr_ratio, nonnegative=True)
        if ratio > 1:
            raise ValueError(f"`min_lr_ratio` must be in [0, 1]; got {ratio}")
        train_solver = SolverConfig(method=method, rtol=rtol, atol=atol, adjoint=adjoint)
        eval_solver = SolverConfig(
            method=eval_method or method,
            rtol=rtol if eval_rtol is None else eval_rtol,
            atol=atol if eval_atol is None else eval_atol,
        )
        encoder_kwargs: dict[str, Any] = {
            "odernn": {"n_substeps": n_substeps},
            "flowrnn": {"flow": flow},  # one flow family names the encoder's and decoder's
        }.get(encoder, {})
        self.model = LatentODEModel(
            n_features,
            latent_dim,
            encoder=encoder,
            encoder_hidden=encoder_hidden,
            encoder_kwargs=encoder_kwargs,
            decoder_width=decoder_width,
            decoder_depth=decoder_depth,
            decoder=decoder,
            flow=flow,
            obs_std=obs_std,
            learn_std=learn_std,
            train_solver=train_solver,
            eval_solver=eval_solver,
            n_event_kinds=n_event_kinds,
            intensity_hidden=intensity_hidden,
            event_weight=event_weight,
            level=level,
            n_held_inputs=n_held_inputs,
            n_impulse_inputs=n_impulse_inputs,
            n_static_features=n_static_features,
            event_inputs=event_inputs,
        )
        self.kl_weight = 1.0
        self.predict_samples = 0
        self.skipped_steps = 0  # optimiser steps skipped for a non-finite gradient
        self._skipped_in_a_row = 0

    def setup(self, stage: str) -> None:
        """Before fitting, start a new Poisson head at the data's mean event rates.

        Runs before Lightning restores a checkpoint, and only for a head that was never
        initialised (a saved flag), so resumed or reloaded models keep their weights.
        """
        if stage != "fit":
            return
        datamodule = getattr(self.trainer, "datamodule", None)
        head = self.model.poisson
        if head is None or bool(head.rates_initialised):
            return
        rates = getattr(datamodule, "event_rates", None)
        if callable(rates):
            values = rates(head.n_kinds)
            if values is not None:
                head.init_rates(values)

    def on_train_epoch_start(self) -> None:
        # Lightning sets the sampler's epoch from its progress counter, which runs one ahead
        # after resuming from a checkpoint written at a validation check; the shuffle and the
        # conditioning subsets must follow the epoch actually trained (bit-identical resumes).
        sampler = getattr(self.trainer.train_dataloader, "sampler", None)
        if callable(getattr(sampler, "set_epoch", None)):
            sampler.set_epoch(self.current_epoch)

    def on_train_end(self) -> None:
        """Fit the prior over series-level shifts (for prior samples) to the training series."""
        self.fit_level_prior(getattr(self.trainer, "datamodule", None))

    def fit_level_prior(self, datamodule: Any) -> None:
        """Fit the level prior to ``datamodule``'s training series, when it can list them."""
        batches = getattr(datamodule, "series_batches", None)
        if not callable(batches):
            return
        was_training = self.training
        self.eval()
        self.model.fit_level_prior(b.to(self.device) for b in batches("train"))
        self.train(was_training)

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
        # Held-out metrics are averaged over every process under DDP, so that model
        # selection (BestWeights) sees the same number on each rank.
        sync = stage != "train"
        self.log(f"{stage}/loss", terms.loss, prog_bar=True, batch_size=size, sync_dist=sync)
        self._last_stats = stats
        if stage == "train" and not self._log_details():
            return terms.loss
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
            sync_dist=sync,
        )
        if stage != "train":
            # The error of predicting each feature's training mean (0 once standardised): the
            # yardstick by which NonFiniteGuard tells a model that diverged.
            reference = masked_mse(torch.zeros_like(target.values), target.values, target.mask)
            self.log(f"{stage}/mse_of_mean", reference, batch_size=size, sync_dist=sync)
        if terms.event_log_likelihood is not None:
            self.log(
                f"{stage}/event_log_likelihood",
                terms.event_log_likelihood,
                batch_size=size,
                sync_dist=sync,
            )
        return terms.loss

    def _log_details(self) -> bool:
        """Whether this training step logs its detailed terms (loss is logged every step).

        Only every ``Trainer(log_every_n_steps=...)``-th step reaches a logger anyway, and each
        logged value costs Lightning's bookkeeping: on small series that was a tenth of a step.
        """
        every = max(1, int(getattr(self.trainer, "log_every_n_steps", 1) or 1))
        return self.global_step % every == 0

    def on_after_backward(self) -> None:
        # Backward NFE exist only once backward has run (adjoint); log them here.
        if self._log_details():
            stats = getattr(self, "_last_stats", [])
            self.log("train/nfe_backward", float(sum(s.nfe_backward for s in stats)))

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Clip the gradients (``gradient_clip``), and skip a step whose gradient is not finite.

        A finite loss can still have an infinite or NaN gradient when one batch's dynamics turn
        stiff; one such step would write NaN into every weight. That step is skipped (every
        gradient set to None, so the optimiser leaves the weights and its moments alone) and
        counted in ``skipped_steps``; after :data:`MAX_SKIPPED_STEPS` in a row training stops
        with :class:`NonFiniteLossError`, naming the fixes.
        """
        clip = self.hparams.get("gradient_clip")
        params = [p for p in self.parameters() if p.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(params, math.inf if clip is None else clip)
        if bool(torch.isfinite(norm)):
            self._skipped_in_a_row = 0
            return
        for p in params:
            p.grad = None
        self.skipped_steps += 1
        self._skipped_in_a_row += 1
        if self._skipped_in_a_row >= MAX_SKIPPED_STEPS:
            hp = self.hparams
            raise NonFiniteLossError(
                f"the gradient was {float(norm)} in {self._skipped_in_a_row} steps in a row, up "
                f"to step {self.trainer.global_step} (epoch {self.current_epoch}), with a finite "
                f"loss: the learned dynamics exploded. Fixes: a lower learning rate "
                f"(lr={hp.lr}), tighter solver tolerances (rtol={hp.rtol}, atol={hp.atol}), or "
                f"a stronger gradient clip (gradient_clip={clip})"
            )

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        return self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        return self._step(batch, "test")

    def predict_step(
        self, batch: tuple[IrregularBatch, IrregularBatch], batch_idx: int, dataloader_idx: int = 0
    ) -> BatchPrediction:
        """The posterior mean (and ``predict_samples`` sample paths) at the target times.

        Conditions on ``cond`` and decodes at ``target.times`` with the evaluation solver, so
        ``trainer.predict(module, datamodule)`` returns one :class:`BatchPrediction` per batch
        of the data module's ``predict_split``. The samples draw from torch's global RNG
        (seed it, e.g. with ``pl.seed_everything``, for repeatable samples).
        """
        cond, target = batch
        mean = self.model.predict_mean(cond, target.times)  # (batch, n_times, n_features)
        samples = None
        n_samples = check_int("predict_samples", self.predict_samples, minimum=0)
        if n_samples:  # (n_samples, batch, n_times, n_features)
            samples = self.model.sample_posterior(cond, target.times, n_samples)
        return BatchPrediction(mean=mean, target=target, samples=samples)

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = OPTIMIZERS[hp.optimizer](
            self.parameters(), lr=hp.lr, **dict(hp.optimizer_kwargs or {})
        )
        if hp.get("lr_schedule", "constant") == "constant":
            return optimizer
        total = self.trainer.estimated_stepping_batches
        if not math.isfinite(total):
            raise ValueError(
                "lr_schedule='cosine' decays over the training budget, but the trainer has "
                "none; set Trainer(max_steps=...) or max_epochs, or use lr_schedule='constant'"
            )
        factor = _Cosine(int(total), hp.get("min_lr_ratio", 0.02))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
