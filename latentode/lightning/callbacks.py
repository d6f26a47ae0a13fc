"""Training schedules and guards, as Lightning callbacks (the module stays schedule-free)."""

from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl
import torch

from latentode._validation import check_choice, check_int, check_real

__all__ = ["BestWeights", "KLAnnealing", "NonFiniteGuard", "NonFiniteLossError"]


def _steps_of(trainer: pl.Trainer, share: float) -> int:
    """``share`` of the trainer's optimiser-step budget, in steps."""
    total = trainer.estimated_stepping_batches
    if not math.isfinite(total):
        raise ValueError(
            "a warm-up given as a share of the budget needs a finite budget: set "
            "Trainer(max_steps=...) or max_epochs"
        )
    return round(share * total)


def _check_share(name: str, share: float | None) -> float | None:
    value = check_real(name, share, nonnegative=True, allow_none=True)
    if value is not None and value >= 1:
        raise ValueError(f"`{name}` must be a share of the budget in [0, 1); got {value}")
    return value


class KLAnnealing(pl.Callback):
    """Raise the KL weight β linearly from ``start`` to ``end`` over ``n_steps`` optimiser steps.

    Annealing lets the decoder learn to use z0 before the KL pulls the posterior to the prior
    (avoiding posterior collapse early in training). With ``share``, ``n_steps`` is that share
    of the trainer's step budget, fixed when training starts.
    """

    def __init__(
        self,
        start: float = 0.0,
        end: float = 1.0,
        n_steps: int = 1000,
        *,
        share: float | None = None,
    ) -> None:
        self.start = check_real("start", start, nonnegative=True)
        self.end = check_real("end", end, nonnegative=True)
        self.n_steps = check_int("n_steps", n_steps, minimum=1)
        self.share = _check_share("share", share)

    def on_train_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        if self.share is not None:
            self.n_steps = max(1, _steps_of(trainer, self.share))

    def weight(self, step: int) -> float:
        """β after ``step`` optimiser steps."""
        frac = min(step / self.n_steps, 1.0)
        return self.start + frac * (self.end - self.start)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: Any, batch: Any, idx: int):
        pl_module.kl_weight = self.weight(trainer.global_step)


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss."""


class NonFiniteGuard(pl.Callback):
    """Stop at the first non-finite training or validation loss, naming the cause and the fix.

    A finite training loss beside an infinite validation loss means the model overflows on
    series it was not fitted to: its weights have blown up, and early stopping would otherwise
    end training quietly with them.
    """

    monitored = ("val/loss", "val/mse")
    # A validation MSE this many times that of predicting each feature's training mean: errors
    # of ~100 standard deviations, which no model that learned anything makes.
    diverged_ratio = 1e4

    def on_validation_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        found = None
        for name in self.monitored:
            value = metrics.get(name)
            if value is not None and not math.isfinite(float(value)):
                found = f"the validation {name.split('/')[1]} became {float(value)}"
        mse, reference = metrics.get("val/mse"), metrics.get("val/mse_of_mean")
        if found is None and mse is not None and reference is not None:
            ratio = float(mse) / max(float(reference), 1e-12)
            if ratio > self.diverged_ratio:
                found = (
                    f"the validation MSE reached {ratio:.3g}× that of predicting each "
                    "feature's mean"
                )
        if found is None:
            return
        hp = getattr(pl_module, "hparams", {})
        raise NonFiniteLossError(
            f"{found} at step {trainer.global_step} (epoch {trainer.current_epoch}) while the "
            "training loss was finite: the learned weights diverged. Fixes: a lower learning "
            f"rate (lr={hp.get('lr', '?')}), gradient clipping (gradient_clip=1.0), or tighter "
            f"solver tolerances (rtol={hp.get('rtol', '?')}, atol={hp.get('atol', '?')})"
        )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None or bool(torch.isfinite(loss.detach()).all()):
            return
        hp = getattr(pl_module, "hparams", {})
        raise NonFiniteLossError(
            f"the training loss became {float(loss.detach())} at step {trainer.global_step} "
            f"(epoch {trainer.current_epoch}). Likely causes: the latent ODE is stiff or "
            "exploding, or the learning rate is too high. Fixes: tighter solver tolerances "
            f"(rtol={hp.get('rtol', '?')}, atol={hp.get('atol', '?')}), a lower learning rate "
            f"(lr={hp.get('lr', '?')}), gradient clipping (gradient_clip=1.0 on LatentODE or "
            "LatentODEModule, Trainer(gradient_clip_val=1.0) for other modules), or "
            "KL annealing"
        )


class BestWeights(pl.Callback):
    """Keep, in memory, the weights of the best validation check; optionally stop early.

    Unlike ``ModelCheckpoint`` it writes no files, so a fit leaves nothing behind in the
    working directory; :meth:`restore` loads the best weights back into the module.

    Checks before ``min_step`` optimiser steps are ignored: while the KL weight is still rising
    the model is not yet the one being trained for, and an early check that looks good (a
    posterior free of the KL) would otherwise be kept, and stop training through patience.

    Args:
        monitor: Logged metric to watch. Default ``"val/loss"``.
        mode: ``"min"`` or ``"max"``.
        min_step: Optimiser steps before a check may count. Default 0.
        min_share: Instead of ``min_step``: this share of the trainer's step budget, fixed
            when training starts.
        patience: Stop training after this many counted checks in a row without a better
            value; None (default) never stops.

    Attributes:
        best_score: The best value seen (None before any counted check).
        best_epoch: The epoch it was seen at.
        best_step: The optimiser step it was seen at.
    """

    def __init__(
        self,
        monitor: str = "val/loss",
        mode: str = "min",
        *,
        min_step: int = 0,
        min_share: float | None = None,
        patience: int | None = None,
    ) -> None:
        self.monitor = monitor
        self.mode = check_choice("mode", mode, ("min", "max"))
        self.min_step = check_int("min_step", min_step, minimum=0)
        self.min_share = _check_share("min_share", min_share)
        self.patience = None if patience is None else check_int("patience", patience, minimum=1)
        self.best_score: float | None = None
        self.best_epoch: int | None = None
        self.best_step: int | None = None
        self.stale = 0  # counted checks since the best one
        self._state: dict[str, torch.Tensor] | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        if self.min_share is not None:
            self.min_step = _steps_of(trainer, self.min_share)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        if trainer.sanity_checking or trainer.global_step < self.min_step:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        score = float(value)
        if not math.isfinite(score):
            return
        better = (
            self.best_score is None
            or (self.mode == "min" and score < self.best_score)
            or (self.mode == "max" and score > self.best_score)
        )
        if better:
            self.best_score, self.best_epoch = score, trainer.current_epoch
            self.best_step, self.stale = trainer.global_step, 0
            self._state = {
                k: v.detach().to("cpu", copy=True) for k, v in pl_module.state_dict().items()
            }
            return
        self.stale += 1
        if self.patience is not None:
            # every rank must agree, or one would stop while the others wait for it (DDP)
            stop = trainer.strategy.reduce_boolean_decision(self.stale >= self.patience, all=False)
            trainer.should_stop = trainer.should_stop or stop

    def state_dict(self) -> dict[str, Any]:
        """The best score, epoch, step and weights: saved in checkpoints, for resumed fits."""
        return {
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "best_step": self.best_step,
            "stale": self.stale,
            "weights": self._state,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_score = state_dict["best_score"]
        self.best_epoch = state_dict["best_epoch"]
        self.best_step = state_dict.get("best_step")
        self.stale = state_dict.get("stale", 0)
        self._state = state_dict["weights"]

    def restore(self, pl_module: Any) -> bool:
        """Load the best weights into ``pl_module``; False when none were recorded."""
        if self._state is None:
            return False
        pl_module.load_state_dict(self._state)
        return True
