"""A vectorised fixed-step solver in which every series has its own interval.

torchdiffeq integrates a whole batch over one shared time grid. An ODE-RNN encoder instead
moves each series from its own observation time to its own previous one, so the batch's
intervals all differ. Here each row takes ``n_steps`` steps of size ``(t1 - t0) / n_steps``:
one batched field evaluation per stage covers the whole batch, whatever its times.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from latentode._validation import check_choice, check_int

__all__ = ["FIXED_STEP_METHODS", "fixed_step_solve"]

Field = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _euler(f: Field, t: torch.Tensor, h: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
    return h + dt * f(t, h)


def _midpoint(f: Field, t: torch.Tensor, h: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
    half = dt / 2
    return h + dt * f(t + half.squeeze(-1), h + half * f(t, h))


def _rk4(f: Field, t: torch.Tensor, h: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
    half = dt / 2
    t_half = t + half.squeeze(-1)
    k1 = f(t, h)
    k2 = f(t_half, h + half * k1)
    k3 = f(t_half, h + half * k2)
    k4 = f(t + dt.squeeze(-1), h + dt * k3)
    return h + dt * (k1 + 2 * k2 + 2 * k3 + k4) / 6


# name -> (one step, field evaluations per step)
FIXED_STEP_METHODS: dict[str, tuple[Callable[..., torch.Tensor], int]] = {
    "euler": (_euler, 1),
    "midpoint": (_midpoint, 2),
    "rk4": (_rk4, 4),
}


def fixed_step_solve(
    field: Field,
    h: torch.Tensor,
    t0: torch.Tensor,
    t1: torch.Tensor,
    *,
    n_steps: int = 1,
    method: str = "euler",
) -> torch.Tensor:
    """Integrate ``dh/dt = field(t, h)`` from ``t0`` to ``t1`` separately for every row.

    Args:
        field: ``f(t, h)`` with ``t`` of shape ``(batch,)`` (one time per row) and
            ``h`` of shape ``(batch, dim)``; e.g. a :class:`~latentode.core.VectorField`.
        h: ``(batch, dim)`` states at ``t0``.
        t0: ``(batch,)`` start times.
        t1: ``(batch,)`` end times; may be below ``t0`` (integrates backwards). A row with
            ``t1 == t0`` is returned unchanged (its steps have size 0).
        n_steps: Steps per row (≥ 1). Default 1.
        method: ``"euler"``, ``"midpoint"`` or ``"rk4"``. Default ``"euler"``.

    Returns:
        ``(batch, dim)`` states at ``t1``.
    """
    step, _ = FIXED_STEP_METHODS[check_choice("method", method, FIXED_STEP_METHODS)]
    n_steps = check_int("n_steps", n_steps, minimum=1)
    if h.ndim != 2 or t0.shape != h.shape[:1] or t1.shape != h.shape[:1]:
        raise ValueError(
            "`h` must be (batch, dim) and `t0`, `t1` (batch,); got "
            f"{tuple(h.shape)}, {tuple(t0.shape)}, {tuple(t1.shape)}"
        )
    dt = ((t1 - t0) / n_steps).unsqueeze(-1)  # (batch, 1): each row its own step
    t = t0
    for _ in range(n_steps):
        h = step(field, t, h, dt)
        t = t + dt.squeeze(-1)
    return h
