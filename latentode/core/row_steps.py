"""Per-row Runge–Kutta steps: the tableaux, the canonical problem, the step-size controller.

Shared by the forward per-row solver (:mod:`latentode.core.rowwise`) and its adjoint
(:mod:`latentode.core.row_adjoint`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from latentode.core import dopri5 as _dp
from latentode.core.batch_rows import pad_rows
from latentode.core.solver import _FIXES, SolverConfig, SolverError, SolveStats, State

__all__ = [
    "TABLEAUX",
    "Problem",
    "RowField",
    "Tableau",
    "combine",
    "initial_step",
    "next_step",
    "rms_rows",
]

RowField = Callable[[torch.Tensor, State], State]


@dataclass(frozen=True)
class Tableau:
    """An explicit Runge–Kutta method written in FSAL form, with its dense output.

    The last stage is always ``f(t1, y1)``, the slope at the end of the step, which the next
    step reuses as its first: ``alpha[-1] == 1`` and ``beta[-1]`` holds the solution weights.

    Attributes:
        alpha: Nodes of stages 2..S (fractions of the step).
        beta: Weights of stages 2..S on the earlier stages; ``beta[-1]`` are the solution's.
        dense: ``(p, S)``: ``y(t0 + x·h) = y0 + h · Σ_i x^(i+1) dense[i] · K``, with
            ``K = [k_1 … k_S]``; at ``x = 1`` it reproduces ``y1``.
        error: ``(S,)`` weights of the embedded error estimate; None for fixed-grid methods.
        order: The exponent ``1/order`` of the step-size controller (adaptive methods).
    """

    alpha: tuple[float, ...]
    beta: tuple[tuple[float, ...], ...]
    dense: np.ndarray
    error: np.ndarray | None = None
    order: int = 1

    @property
    def weights(self) -> np.ndarray:
        """``(S,)`` the solution's weights on the stages (the last, the end slope, has 0)."""
        return _solution_weights(self.beta)

    @property
    def n_stages(self) -> int:
        return len(self.alpha) + 1


def _solution_weights(beta: tuple[tuple[float, ...], ...]) -> np.ndarray:
    return np.array([*beta[-1], 0.0])  # (S,): the last stage (the end slope) has weight 0


def _quartic_dense(beta: tuple[tuple[float, ...], ...], mid: np.ndarray) -> np.ndarray:
    """torchdiffeq's interpolant (the quartic through y0, y1, y_mid, f0, f1) over the stages."""
    b = _solution_weights(beta)
    first, last = np.eye(len(b))[0], np.eye(len(b))[-1]
    return np.stack(
        [
            first,
            last - 4 * first - 5 * b + 16 * mid,
            5 * first - 3 * last + 14 * b - 32 * mid,
            2 * last - 2 * first - 8 * b + 16 * mid,
        ]
    )  # (4, S)


def _hermite_dense(beta: tuple[tuple[float, ...], ...]) -> np.ndarray:
    """The cubic Hermite interpolant through (y0, f0) and (y1, f1), over the stages."""
    b = _solution_weights(beta)
    first, last = np.eye(len(b))[0], np.eye(len(b))[-1]
    return np.stack([first, -2 * first + 3 * b - last, first - 2 * b + last])  # (3, S)


def _adaptive(alpha, beta, error, mid, order) -> Tableau:
    return Tableau(alpha, beta, _quartic_dense(beta, np.asarray(mid)), np.asarray(error), order)


def _fixed(alpha, beta) -> Tableau:
    return Tableau(alpha, beta, _hermite_dense(beta))


_BS_BETA = ((1 / 2,), (0.0, 3 / 4), (2 / 9, 1 / 3, 4 / 9))
TABLEAUX: dict[str, Tableau] = {
    # Dormand–Prince 5(4), the constants of latentode.core.dopri5 (torchdiffeq's steps)
    "dopri5": Tableau(_dp._ALPHA, _dp._BETA, _dp._Q, _dp._B_ERR, 5),
    # Bogacki–Shampine 3(2), with torchdiffeq's midpoint weights for the dense output
    "bosh3": _adaptive(
        (1 / 2, 3 / 4, 1.0),
        _BS_BETA,
        _solution_weights(_BS_BETA) - np.array([7 / 24, 1 / 4, 1 / 3, 1 / 8]),
        [0.0, 0.5, 0.0, 0.0],
        3,
    ),
    # fixed grid: torchdiffeq's formulas, each closed by the end slope f(t1, y1)
    "euler": _fixed((1.0,), ((1.0,),)),
    "midpoint": _fixed((1 / 2, 1.0), ((1 / 2,), (0.0, 1.0))),
    "heun2": _fixed((1.0, 1.0), ((1.0,), (1 / 2, 1 / 2))),
    "heun3": _fixed((1 / 3, 2 / 3, 1.0), ((1 / 3,), (0.0, 2 / 3), (1 / 4, 0.0, 3 / 4))),
    # torchdiffeq's "rk4" is Kutta's 3/8 rule
    "rk4": _fixed(
        (1 / 3, 2 / 3, 1.0, 1.0),
        ((1 / 3,), (-1 / 3, 1.0), (1.0, -1.0, 1.0), (1 / 8, 3 / 8, 3 / 8, 1 / 8)),
    ),
}


@dataclass
class Problem:
    """The canonical form every implementation receives (made once by :func:`solve_rows`)."""

    field: RowField
    y0: torch.Tensor  # (R, D): the parts of a tuple state side by side
    sizes: list[int]  # widths of the parts in y0's last dimension
    is_tuple: bool
    times: torch.Tensor  # (R, n) in the time dtype
    lengths: torch.Tensor  # (R,) long
    t0: torch.Tensor  # (R,) in the time dtype
    direction: torch.Tensor  # (R,) ±1 in the time dtype
    config: SolverConfig
    stats: SolveStats
    dense: torch.Tensor | None = None  # (q, S) the tableau's dense output, in the state's dtype
    project: torch.Tensor | None = None  # (D, P): outputs are z(t) @ project when given
    shared: bool = False  # one error norm (and so one step) for all rows
    breaks: torch.Tensor | None = None  # (R, m) times each row must step to, in the time dtype
    break_lengths: torch.Tensor | None = None  # (R,) long: valid breaks per row
    jump: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None

    def read(self, y: torch.Tensor) -> torch.Tensor:
        """States ``(..., D)`` as outputs: ``(..., P)`` projected, else unchanged."""
        return y if self.project is None else y @ self.project

    def split(self, y: torch.Tensor) -> State:
        parts = torch.split(y, self.sizes, dim=-1)
        return tuple(parts) if self.is_tuple else parts[0]

    def evaluate(self, t: torch.Tensor, y: torch.Tensor, *, counted: bool = True) -> torch.Tensor:
        """``f(t (A,), y (A, D)) -> (A, D)``, counted as a forward evaluation unless not.

        Fewer than :data:`~latentode.core.batch_rows.MIN_ROWS` rows are padded, so a row's
        slope is the same whatever else is still integrating.
        """
        rows = y.shape[0]
        if counted:
            self.stats.nfe_forward += 1
            self.stats.row_nfe_forward += rows
        t, y = pad_rows(t.to(y.dtype)), pad_rows(y)
        if not self.is_tuple:
            return self.field(t, y)[:rows]
        return torch.cat(self.field(t, self.split(y)), dim=-1)[:rows]

    def span(self) -> tuple[float, float]:
        valid = torch.arange(self.times.shape[1], device=self.times.device) < self.lengths[:, None]
        both = torch.cat([self.times[valid], self.t0])
        return float(both.min()), float(both.max())

    def fail(self, reason: str) -> SolverError:
        cfg = self.config
        lo, hi = self.span()
        return SolverError(
            f"the ODE solve failed (method={cfg.method!r}, rtol={cfg.rtol:g}, atol={cfg.atol:g}, "
            f"step_size={cfg.fixed_step}, max_num_steps={cfg.max_num_steps}) over t in "
            f"[{lo:g}, {hi:g}]: {reason}. {_FIXES}"
        )


def combine(y: torch.Tensor, ks: list[torch.Tensor], weights, dt: torch.Tensor) -> torch.Tensor:
    """``y + dt · Σ_j w_j k_j`` with a per-row ``dt (A, 1)``: fused adds, one multiply."""
    acc = None
    for w, k in zip(weights, ks, strict=False):
        if w:
            acc = k * w if acc is None else torch.add(acc, k, alpha=w)
    return y if acc is None else torch.addcmul(y, dt, acc)


def rms_rows(x: torch.Tensor, sizes: list[int], shared: bool = False) -> torch.Tensor:
    """``(A, D) -> (A,)``: each row's RMS, the largest over the parts of a tuple state.

    ``shared``: every row gets the RMS over all ``A`` rows together (as one state), the norm of
    a whole-batch solve.
    """
    square = x.square()
    if len(sizes) == 1 and not shared:  # the common case, once per step: no stack
        return square.mean(-1).sqrt()
    parts = torch.stack([p.mean(-1) for p in torch.split(square, sizes, dim=-1)])  # (parts, A)
    if shared:
        parts = parts.mean(-1, keepdim=True).expand_as(parts)
    return parts.amax(0).sqrt()


def initial_step(p: Problem, tab: Tableau, t, y, f, direction) -> torch.Tensor:
    """Hairer's starting step per row (one extra evaluation), as torchdiffeq chooses it."""
    cfg = p.config
    with torch.no_grad():
        scale = cfg.atol + y.abs() * cfg.rtol
        d0 = rms_rows(y / scale, p.sizes, p.shared).to(t.dtype)
        d1 = rms_rows(f / scale, p.sizes, p.shared).to(t.dtype)
        h0 = torch.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / d1)
        signed = (direction * h0).to(y.dtype)[:, None]  # (A, 1)
        f1 = p.evaluate(t + direction * h0, y + signed * f)
        d2 = rms_rows((f1 - f) / scale, p.sizes, p.shared).to(t.dtype) / h0
        small = (d1 <= 1e-15) & (d2 <= 1e-15)
        h1 = torch.where(
            small,
            torch.clamp(h0 * 1e-3, min=1e-6),
            (0.01 / torch.maximum(d1, d2)) ** (1.0 / tab.order),
        )
        return torch.minimum(100 * h0, h1)


def next_step(h: torch.Tensor, ratio: torch.Tensor, order: int) -> torch.Tensor:
    """The controller of :mod:`latentode.core.dopri5`, row by row."""
    ratio = torch.nan_to_num(ratio, nan=math.inf)  # NaN: shrink as for an infinite error
    factor = _dp._SAFETY / ratio ** (1.0 / order)  # ratio 0 -> inf, clamped to 10 below
    # shrink by at most 5x after a rejection, never shrink after an acceptance
    factor = torch.where(ratio < 1, factor.clamp(1.0, 10.0), factor.clamp(_dp._DFACTOR, 10.0))
    return h * factor
