"""The estimator's parameters: one declarative table of constraints, and the rules across them.

Every parameter of :class:`~latentode.estimator.LatentODE` has one row in :data:`CONSTRAINTS`;
rules that tie parameters together are the functions in :data:`_RULES`. :func:`check_params`
runs both, in ``fit`` and in ``load``, so a bad value is refused with the parameter's name
before any work.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from latentode._validation import check_bool, check_choice, check_int, check_real
from latentode.core.flows import FLOWS
from latentode.core.solver import METHODS
from latentode.decoders import DECODERS, LEVELS
from latentode.encoders import ENCODERS
from latentode.heads.gaussian import STD_FLOOR
from latentode.lightning.module import LR_SCHEDULES, OPTIMIZERS
from latentode.lightning.tasks import TASKS

__all__ = ["CONSTRAINTS", "RESERVED_TRAINER_KWARGS", "check_params", "module_kwargs"]


@dataclass(frozen=True)
class _Int:
    minimum: int
    allow_none: bool = False

    def __call__(self, name: str, value: Any) -> None:
        if value is None and self.allow_none:
            return
        check_int(name, value, minimum=self.minimum)


@dataclass(frozen=True)
class _Real:
    positive: bool = False
    nonnegative: bool = False
    below_one: bool = False
    allow_none: bool = False
    meaning: str = "must be"  # what the value is, for the message of a value not below one

    def __call__(self, name: str, value: Any) -> None:
        checked = check_real(
            name,
            value,
            positive=self.positive,
            nonnegative=self.nonnegative,
            allow_none=self.allow_none,
        )
        if self.below_one and checked is not None and checked >= 1:
            raise ValueError(f"`{name}` {self.meaning} in [0, 1); got {checked}")


@dataclass(frozen=True)
class _Choice:
    choices: Any

    def __call__(self, name: str, value: Any) -> None:
        check_choice(name, value, self.choices)


def _bool(name: str, value: Any) -> None:
    check_bool(name, value)


def _string(name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise TypeError(f"`{name}` must be a string; got {value!r}")


def _mapping(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, dict):
        raise TypeError(f"`{name}` must be a dict or None; got {type(value).__name__}")


def _anything(name: str, value: Any) -> None:
    """Checked elsewhere: seeds by ``as_seed``, kinds and transforms by their own rules."""


CONSTRAINTS: dict[str, Callable[[str, Any], None]] = {
    "latent_dim": _Int(1),
    "encoder": _Choice(ENCODERS),
    "encoder_hidden": _Int(1),
    "decoder_width": _Int(1),
    "decoder_depth": _Int(0),
    "decoder": _Choice(DECODERS),
    "flow": _Choice(FLOWS),
    "solver": _Choice(METHODS),
    "rtol": _Real(positive=True),
    "atol": _Real(positive=True),
    "adjoint": _bool,
    "likelihood_std": _Real(positive=True),
    "learn_std": _bool,
    "n_iwae_samples": _Int(1),
    "task": _Choice(TASKS),
    "max_steps": _Int(1, allow_none=True),
    "max_epochs": _Int(1, allow_none=True),
    "max_time": _Real(positive=True, allow_none=True),
    "batch_size": _Int(1, allow_none=True),
    "lr": _Real(positive=True),
    "optimizer": _Choice(OPTIMIZERS),
    "lr_schedule": _Choice(LR_SCHEDULES),
    "gradient_clip": _Real(positive=True, allow_none=True),
    "kl_warmup": _Real(
        nonnegative=True,
        below_one=True,
        meaning="is the share of the step budget over which the KL weight rises,",
    ),
    "kl_weight": _Real(nonnegative=True),
    "val_fraction": _Real(nonnegative=True, below_one=True),
    "early_stopping_patience": _Int(1, allow_none=True),
    "random_state": _anything,
    "verbose": _bool,
    "trainer_kwargs": _mapping,
    "accelerator": _string,
    "poisson": _bool,
    "event_kinds": _anything,
    "event_weight": _Real(nonnegative=True),
    "level": _Choice(LEVELS),
    "time_gaps_per_unit": _Real(positive=True, allow_none=True),
    "conformal": _bool,
    "transforms": _anything,
    "memory_budget": _Int(2**20, allow_none=True),
}

# Trainer arguments the estimator derives from its own parameters and training plan: a user's
# value for one of these would silently change the recipe, so it is refused with the parameter
# to set instead. Every other Trainer argument (logger, enable_checkpointing, precision,
# devices, strategy, ...) may be given in ``trainer_kwargs`` and wins over the estimator's.
RESERVED_TRAINER_KWARGS = frozenset(
    {
        "max_epochs",
        "max_steps",
        "max_time",
        "accelerator",
        "callbacks",
        "gradient_clip_val",
        "check_val_every_n_epoch",
        "val_check_interval",
        "limit_train_batches",
        "accumulate_grad_batches",
    }
)


def _noise_floor(p: dict[str, Any]) -> None:
    if p["learn_std"] and p["likelihood_std"] <= STD_FLOOR:
        raise ValueError(
            f"a learned noise std starts at likelihood_std and stays above {STD_FLOOR:g}; "
            f"got likelihood_std={p['likelihood_std']!r}: pass a larger likelihood_std "
            "(0.1, the default) or learn_std=False"
        )


def _budget(p: dict[str, Any]) -> None:
    if p["max_steps"] is None and p["max_epochs"] is None:
        raise ValueError(
            "give a training budget: max_steps (optimiser steps, the default) or "
            "max_epochs; both are None"
        )


def _trainer_kwargs(p: dict[str, Any]) -> None:
    reserved = RESERVED_TRAINER_KWARGS & set(p["trainer_kwargs"] or {})
    if reserved:
        raise ValueError(
            f"`trainer_kwargs` may not set {', '.join(sorted(reserved))}: the estimator "
            "sets them from its own parameters (the budget max_steps / max_epochs / "
            "max_time, batch_size, gradient_clip, accelerator) and its training plan; set "
            "those instead"
        )


def _event_kinds(p: dict[str, Any]) -> None:
    kinds: Sequence[Hashable] | None = p["event_kinds"]
    if kinds is None:
        return
    if isinstance(kinds, str | bytes) or not isinstance(kinds, Sequence | np.ndarray):
        raise TypeError(f"`event_kinds` must be a list of kinds or None; got {kinds!r}")
    if len(kinds) == 0 or len(set(kinds)) != len(kinds):
        raise ValueError(
            f"`event_kinds` must be a non-empty list of distinct kinds; got {list(kinds)}"
        )
    if not p["poisson"]:
        raise ValueError("`event_kinds` needs poisson=True")


def _flow(p: dict[str, Any]) -> None:
    if p["decoder"] == "flow" and p["adjoint"]:
        raise ValueError(
            "decoder='flow' solves no ODE for its paths, so adjoint=True has nothing to "
            "differentiate; use adjoint=False (the flow's memory does not grow with solver "
            "steps anyway)"
        )


_RULES: tuple[Callable[[dict[str, Any]], None], ...] = (
    _flow,
    _noise_floor,
    _budget,
    _trainer_kwargs,
    _event_kinds,
)


def check_params(params: dict[str, Any]) -> None:
    """Refuse a bad parameter value (``ValueError``/``TypeError`` naming it and the fix).

    ``params`` is ``estimator.get_params(deep=False)``.
    """
    for name, check in CONSTRAINTS.items():
        check(name, params[name])
    for rule in _RULES:
        rule(params)


def module_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    """The :class:`~latentode.lightning.LatentODEModule` arguments the parameters set."""
    return {
        "latent_dim": params["latent_dim"],
        "encoder": params["encoder"],
        "encoder_hidden": params["encoder_hidden"],
        "decoder_width": params["decoder_width"],
        "decoder_depth": params["decoder_depth"],
        "decoder": params["decoder"],
        "flow": params["flow"],
        "obs_std": float(params["likelihood_std"]),
        "learn_std": params["learn_std"],
        "method": params["solver"],
        "rtol": float(params["rtol"]),
        "atol": float(params["atol"]),
        "adjoint": params["adjoint"],
        "n_samples": params["n_iwae_samples"],
        "bound": "iwae" if params["n_iwae_samples"] > 1 else "elbo",
        "optimizer": params["optimizer"],
        "lr": float(params["lr"]),
        "lr_schedule": params["lr_schedule"],
        "gradient_clip": None
        if params["gradient_clip"] is None
        else float(params["gradient_clip"]),
        "event_weight": float(params["event_weight"]),
        "level": params["level"],
    }
