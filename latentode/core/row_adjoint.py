"""The adjoint method for per-row solves: gradients in memory constant in the number of steps.

The forward pass is :func:`~latentode.core.solve_rows`' own solve, run without a graph; only
its outputs are kept. The backward pass integrates, for every row at once but each on its own
steps, the state ``y`` back from the row's last output time to its start together with its
adjoint ``a = dL/dy``:

    dy/dt = f(t, y),    da/dt = -aᵀ ∂f/∂y(t, y),

adding ``dL/dy(t_j)`` to ``a`` at each of the row's output times (the steps stop there), and
``a`` at the start is ``dL/dy0``. The parameters' gradient is the integral of
``aᵀ ∂f/∂θ`` along the way: each accepted step adds its Runge–Kutta quadrature (the step's
solution weights on its stages), summed over rows in one vector-Jacobian product per step.

Step control is per row, on ``y`` and ``a`` (never on the parameters' integral: torchdiffeq's
"seminorm"), with the backward method and the ``adjoint_rtol`` / ``adjoint_atol`` of the
solver settings. Fixed-grid methods step back by ``step_size``, shortened to land on output
times. No tensor over the union of the rows' times exists, forward or backward.
"""

from __future__ import annotations

from typing import Any

import torch

from latentode.core.row_steps import (
    Problem,
    Tableau,
    combine,
    initial_step,
    next_step,
    rms_rows,
)
from latentode.core.solver import SolverConfig

__all__ = ["adjoint_rows"]


def adjoint_rows(
    problem: Problem,
    forward: Any,
    backward: Tableau,
    params: list[torch.Tensor],
) -> torch.Tensor:
    """``(R, n, D)`` outputs of ``forward(problem)``, with gradients by the adjoint method.

    Args:
        problem: The canonical problem (no projection: the adjoint needs whole states).
        forward: The native row implementation that solves it forward.
        backward: The tableau of the backward solve.
        params: The tensors the field depends on that should receive gradients.
    """
    return _RowAdjoint.apply(problem, forward, backward, problem.y0, *params)


class _RowAdjoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx, problem, forward, backward, y0, *params):  # type: ignore[override]
        ys = forward(problem)  # (R, n, D); autograd records nothing inside a Function
        ctx.problem, ctx.backward = problem, backward
        ctx.save_for_backward(ys, *params)
        return ys

    @staticmethod
    def backward(ctx, grad_ys):  # type: ignore[override]
        ys, *params = ctx.saved_tensors
        grad_y0, grad_params = _solve_back(ctx.problem, ctx.backward, ys, grad_ys, params)
        return (None, None, None, grad_y0, *grad_params)


class _Augmented:
    """The state with its adjoint side by side, ``(A, 2D)``, as :func:`initial_step` sees it."""

    def __init__(self, problem: Problem, config: SolverConfig) -> None:
        self.problem, self.config = problem, config
        self.sizes = problem.sizes + problem.sizes  # the norm: each part of y, then of a
        self.shared = False
        self.width = sum(problem.sizes)

    def slopes(
        self, t: torch.Tensor, z: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(dz/dt (A, 2D), f with its graph, a)`` at ``t (A,)``, ``z = [y, a]``."""
        y, a = z[:, : self.width], z[:, self.width :]
        with torch.enable_grad():
            y = y.detach().requires_grad_(True)
            f = self.problem.evaluate(t, y, counted=False)  # (A, D), a graph to y and θ
            (vjp,) = torch.autograd.grad(f, y, grad_outputs=a, retain_graph=True)
        self.problem.stats.nfe_backward += 1
        return torch.cat([f.detach(), -vjp], dim=-1), f, a

    def evaluate(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.slopes(t, z)[0]


def _solve_back(
    p: Problem,
    tab: Tableau,
    ys: torch.Tensor,
    grad_ys: torch.Tensor | None,
    params: list[torch.Tensor],
) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
    cfg = p.config
    config = SolverConfig(
        cfg.backward_method,
        rtol=cfg.adjoint_rtol or cfg.rtol,
        atol=cfg.adjoint_atol or cfg.atol,
        step_size=cfg.step_size if tab.error is None else None,
        max_num_steps=cfg.max_num_steps,
    )
    aug = _Augmented(p, config)
    n, D = ys.shape[1:]
    g = torch.zeros_like(ys) if grad_ys is None else grad_ys  # (R, n, D)
    valid = torch.arange(n, device=ys.device) < p.lengths[:, None]  # (R, n)
    ahead = torch.where(valid, (p.times - p.t0[:, None]) * p.direction[:, None], 0.0)
    beyond = valid & (ahead > 0)  # outputs the backward solve must stop at
    # outputs at the start itself are y0: their gradients go straight to it
    grad_y0 = (g * (valid & ~beyond)[..., None]).sum(1)  # (R, D)
    grad_params: list[torch.Tensor | None] = [None] * len(params)
    last = beyond.sum(1) + (valid & ~beyond).sum(1) - 1  # (R,) index of the last output
    rows = (beyond.sum(1) > 0).nonzero().squeeze(1)  # (A,) rows with a solve to undo
    if len(rows) == 0:
        return grad_y0, grad_params
    at = last[rows]
    t = p.times[rows, at]
    z = torch.cat([ys[rows, at], g[rows, at]], dim=-1)  # (A, 2D)
    k = at - 1  # the next output to stop at, walking back
    t, z, k = _absorb(p, rows, t, z, k, g, beyond, D)
    back = -p.direction[rows]  # (A,)
    error = None if tab.error is None else z.new_tensor(tab.error)
    if error is not None:
        h = initial_step(aug, tab, t, z, aug.evaluate(t, z), back)
    else:
        h = torch.full_like(t, config.fixed_step)
    steps = 0
    while len(rows):
        steps += 1
        p.stats.steps_backward = steps
        if steps > config.max_num_steps:
            raise p.fail(
                f"the adjoint (backward) solve of {len(rows)} row(s) needed more than "
                f"max_num_steps={config.max_num_steps} steps"
            )
        target, to_output = _target(p, rows, k, beyond)  # (A,): next output time, or start
        distance = (target - t).abs()
        landing = h >= distance
        t1 = torch.where(landing, target, t + back * h)
        dt = t1 - t  # (A,) signed
        dt_z = dt.to(z.dtype)[:, None]
        # every stage with its graph to the parameters (so no FSAL reuse of the last slope:
        # the quadrature below needs the first stage's graph too)
        ks, fs, adjs = [], [], []
        for i in range(tab.n_stages):
            if i == 0:
                t_i, z_i = t, z
            elif i == tab.n_stages - 1:
                t_i, z_i = t1, combine(z, ks, tab.beta[-1], dt_z)
            else:
                t_i = t + tab.alpha[i - 1] * dt
                z_i = combine(z, ks, tab.beta[i - 1], dt_z)
            slope, f_i, a_i = aug.slopes(t_i, z_i)
            ks.append(slope)
            fs.append(f_i)
            adjs.append(a_i)
        z1 = combine(z, ks, tab.beta[-1], dt_z)
        if error is None:
            accept = torch.ones_like(landing)
            ratio = None
        else:
            with torch.no_grad():
                estimate = dt_z * (torch.stack(ks, dim=-1) @ error)
                tolerance = config.atol + config.rtol * torch.maximum(z.abs(), z1.abs())
                ratio = rms_rows(estimate / tolerance, aug.sizes).to(dt.dtype)
                accept = ratio <= 1
        if not bool(torch.isfinite(z1[accept]).all()):
            raise p.fail("the adjoint (backward) solve became non-finite")
        # the parameters' integral over the accepted steps: -dt Σ_i b_i a_iᵀ ∂f/∂θ(y_i)
        if params:
            scale = (-dt * accept).to(z.dtype)[:, None]  # (A, 1)
            with torch.enable_grad():  # backward passes run without a graph by default
                total = sum(
                    (
                        w * (f_i * (a_i * scale)).sum()
                        for w, f_i, a_i in zip(tab.weights.tolist(), fs, adjs, strict=True)
                        if w
                    ),
                    torch.zeros((), dtype=z.dtype, device=z.device),
                )
            if total.requires_grad:
                found = torch.autograd.grad(total, params, allow_unused=True)
                grad_params = [
                    gp if new is None else (new if gp is None else gp + new)
                    for gp, new in zip(grad_params, found, strict=True)
                ]
        take = accept[:, None]
        z = torch.where(take, z1, z)
        t = torch.where(accept, t1, t)
        h = (
            torch.full_like(h, config.fixed_step)
            if ratio is None
            else next_step(h, ratio, tab.order)
        )
        arrived = accept & landing  # at an output time or at the start
        at_start = arrived & ~to_output
        if bool(at_start.any()):
            done = at_start.nonzero().squeeze(1)
            grad_y0 = grad_y0.index_add(0, rows[done], z[done, D:])
        if bool(arrived.any()):
            z, k = _jump(rows, z, k, arrived & ~at_start, g, D)
            t, z, k = _absorb(p, rows, t, z, k, g, beyond, D)
        keep = ~at_start
        if not bool(keep.all()):
            index = keep.nonzero().squeeze(1)
            rows, t, z, k, h, back = (x[index] for x in (rows, t, z, k, h, back))
    return grad_y0, grad_params


def _target(
    p: Problem, rows: torch.Tensor, k: torch.Tensor, beyond: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(A,)`` where each row stops next, and whether that is an output (else its start)."""
    col = k.clamp(min=0)
    stop = (k >= 0) & beyond[rows, col]
    return torch.where(stop, p.times[rows, col], p.t0[rows]), stop


def _jump(rows, z, k, where, g, D):
    """Add ``dL/dy`` of output ``k`` to the adjoint of the rows ``where``; move ``k`` back."""
    col = k.clamp(min=0)
    add = g[rows, col] * where[:, None].to(z.dtype)  # (A, D)
    z = torch.cat([z[:, :D], z[:, D:] + add], dim=-1)
    return z, torch.where(where, k - 1, k)


def _absorb(p, rows, t, z, k, g, beyond, D):
    """Outputs repeated at the time a row stands at: their gradients join now."""
    while True:
        col = k.clamp(min=0)
        same = (k >= 0) & beyond[rows, col] & (p.times[rows, col] == t)
        if not bool(same.any()):
            return t, z, k
        z, k = _jump(rows, z, k, same, g, D)
