"""`TrainingPlan`: batch size, step budget and validation cadence for one fit.

A latent ODE learns per optimiser step, not per epoch: a 20-series panel has a few batches
an epoch, a 10,000-series one hundreds. So the budget is counted in steps, and what was once
counted in epochs is counted in steps or validation checks too: the KL warm-up and the checks
that may not count are shares of the trainer's step budget (``KLAnnealing(share=...)``,
``BestWeights(min_share=...)``), resolved when training starts, so they follow the budget
under gradient accumulation or several processes as well.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from latentode._validation import check_int

__all__ = ["TrainingPlan", "auto_batch_size", "plan_training"]

MIN_BATCHES_PER_EPOCH = 8
"""Auto batch size aims at this many batches per epoch (until batches reach ``max_batch``)."""

MIN_AUTO_BATCH = 4
"""The auto batch size never goes below this (one series per step is mostly noise)."""


@dataclass(frozen=True)
class TrainingPlan:
    """How one fit is run.

    Attributes:
        batch_size: Series per optimiser step (per process).
        steps_per_epoch: Batches in one pass over the training series (one process).
        total_steps: The step budget (``max_steps``, capped by ``max_epochs`` epochs), rounded
            up to whole epochs when an epoch is shorter than the budget.
        max_epochs: The trainer's ``max_epochs`` (-1 when the budget ends inside one epoch).
        max_steps: The trainer's ``max_steps`` (-1 when the budget is whole epochs). Lightning
            resumes epoch-counted training at an epoch boundary, but step-counted training as
            if interrupted mid-epoch, which replays a batch: whole epochs keep a killed and
            resumed fit bit-identical to an uninterrupted one.
        val_every_n_epochs: Epochs between validation checks (the trainer's
            ``check_val_every_n_epoch``): about ``n_checks`` checks over the budget, each at an
            epoch's end, so that checkpoints (written after each check) resume at an epoch
            boundary; at most one check an epoch. None when the budget ends inside one epoch.
        val_check_interval: When the budget ends inside one epoch: steps between checks
            (the trainer's ``val_check_interval``); else None.
    """

    batch_size: int
    steps_per_epoch: int
    total_steps: int
    max_epochs: int
    max_steps: int
    val_every_n_epochs: int | None
    val_check_interval: int | None

    def trainer_kwargs(self) -> dict[str, int | None]:
        """The ``pytorch_lightning.Trainer`` arguments that carry out this plan."""
        kwargs: dict[str, int | None] = {
            "max_epochs": self.max_epochs,
            "max_steps": self.max_steps,
            "check_val_every_n_epoch": self.val_every_n_epochs,
        }
        if self.val_check_interval is not None:
            kwargs["val_check_interval"] = self.val_check_interval
        return kwargs


def auto_batch_size(n_train: int, max_batch: int = 50) -> int:
    """Series per batch for ``n_train`` training series.

    ``ceil(n_train / 8)`` clipped to ``[4, max_batch]``: small panels get several batches per
    epoch (a 20-series panel trains on batches of 4, not on 1 or 2 batches of 10–20), large
    data sets get ``max_batch``, where a step's cost no longer buys a better gradient.
    """
    n_train = check_int("n_train", n_train, minimum=1)
    size = math.ceil(n_train / MIN_BATCHES_PER_EPOCH)
    return max(1, min(n_train, max(MIN_AUTO_BATCH, min(size, max_batch))))


def plan_training(
    n_train: int,
    *,
    batch_size: int | None,
    max_steps: int | None,
    max_epochs: int | None,
    n_checks: int = 50,
) -> TrainingPlan:
    """The plan for ``n_train`` training series.

    Args:
        n_train: Training series.
        batch_size: Series per step; None picks :func:`auto_batch_size`.
        max_steps: Optimiser-step budget; None leaves the budget to ``max_epochs``.
        max_epochs: Epoch cap; None for none. At least one of the two must be set.
        n_checks: About how many validation checks to run over the budget.

    Returns:
        :class:`TrainingPlan`.
    """
    n_train = check_int("n_train", n_train, minimum=1)
    n_checks = check_int("n_checks", n_checks, minimum=1)
    if max_steps is None and max_epochs is None:
        raise ValueError(
            "give a training budget: max_steps (optimiser steps) or max_epochs, or both"
        )
    size = auto_batch_size(n_train) if batch_size is None else min(batch_size, n_train)
    per_epoch = math.ceil(n_train / size)
    budgets = []
    if max_steps is not None:
        budgets.append(check_int("max_steps", max_steps, minimum=1))
    if max_epochs is not None:
        budgets.append(check_int("max_epochs", max_epochs, minimum=1) * per_epoch)
    budget = min(budgets)
    if budget >= per_epoch:
        epochs = math.ceil(budget / per_epoch)
        return TrainingPlan(
            batch_size=size,
            steps_per_epoch=per_epoch,
            total_steps=epochs * per_epoch,
            max_epochs=epochs,
            max_steps=-1,
            val_every_n_epochs=max(1, round(epochs / n_checks)),
            val_check_interval=None,
        )
    # one epoch is more than the budget: stop inside it, and check within it
    return TrainingPlan(
        batch_size=size,
        steps_per_epoch=per_epoch,
        total_steps=budget,
        max_epochs=-1,
        max_steps=budget,
        val_every_n_epochs=None,
        val_check_interval=max(1, budget // n_checks),
    )
