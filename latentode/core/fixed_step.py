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

__all__ = ["FIXED_STEP_METHODS", "FixedStepSolver", "fixed_step_solve"]

Field = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _euler(f: Field, t: torch.Tensor, h: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
    return torch.addcmul(h, dt, f(t, h))  # h + dt * f(t, h), one fused op


def _midpoint(f: Field, t: torch.Tensor, h: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
    half = dt / 2
    return torch.addcmul(h, dt, f(t + half.squeeze(-1), torch.addcmul(h, half, f(t, h))))


def _rk4(f: Field, t: torch.Tensor, h: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
    half = dt / 2
    t_half = t + half.squeeze(-1)
    k1 = f(t, h)
    k2 = f(t_half, torch.addcmul(h, half, k1))
    k3 = f(t_half, torch.addcmul(h, half, k2))
    k4 = f(t + dt.squeeze(-1), torch.addcmul(h, dt, k3))
    return torch.addcmul(h, dt / 6, k1 + 2 * (k2 + k3) + k4)


# name -> (one step, field evaluations per step)
FIXED_STEP_METHODS: dict[str, tuple[Callable[..., torch.Tensor], int]] = {
    "euler": (_euler, 1),
    "midpoint": (_midpoint, 2),
    "rk4": (_rk4, 4),
}


class FixedStepSolver:
    """:func:`fixed_step_solve` with its method and step count checked and bound once.

    For hot loops (an ODE-RNN calls it at every observation): calling it skips the argument
    checks, which cost as much as a small step.

    Args:
        method: ``"euler"``, ``"midpoint"`` or ``"rk4"``. Default ``"euler"``.
        n_steps: Steps per row (≥ 1). Default 1.

    Attributes:
        nfe: Field evaluations one call makes (``n_steps`` × evaluations per step).
    """

    def __init__(self, method: str = "euler", n_steps: int = 1) -> None:
        self.method = check_choice("method", method, FIXED_STEP_METHODS)
        self.n_steps = check_int("n_steps", n_steps, minimum=1)
        self._step, evals = FIXED_STEP_METHODS[method]
        self.nfe = self.n_steps * evals

    def __call__(
        self, field: Field, h: torch.Tensor, t0: torch.Tensor, t1: torch.Tensor
    ) -> torch.Tensor:
        """``h (batch, dim)`` at ``t0 (batch,)`` → ``(batch, dim)`` at ``t1 (batch,)``."""
        dt = ((t1 - t0) / self.n_steps).unsqueeze(-1)  # (batch, 1): each row its own step
        t = t0
        for _ in range(self.n_steps):
            h = self._step(field, t, h, dt)
            t = t + dt.squeeze(-1)
        return h

    def __repr__(self) -> str:
        return f"FixedStepSolver(method={self.method!r}, n_steps={self.n_steps})"


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
    solver = FixedStepSolver(method, n_steps)
    if h.ndim != 2 or t0.shape != h.shape[:1] or t1.shape != h.shape[:1]:
        raise ValueError(
            "`h` must be (batch, dim) and `t0`, `t1` (batch,); got "
            f"{tuple(h.shape)}, {tuple(t0.shape)}, {tuple(t1.shape)}"
        )
    return solver(field, h, t0, t1)
