"""`ODEBlock`: a layer that maps h(t0) to h(t1) by integrating a vector field."""

from __future__ import annotations

import torch
from torch import nn

from latentode._validation import check_real
from latentode.core.solver import SolverConfig, SolveStats, solve

__all__ = ["ODEBlock"]


class ODEBlock(nn.Module):
    """Integrate ``dh/dt = field(t, h)`` over ``[t0, t1]``: the continuous-depth residual layer.

    Args:
        field: The vector field, usually a :class:`~latentode.core.VectorField`.
        t0: Start time. Default 0.
        t1: End time; may be below ``t0`` (integrates backwards). Default 1.
        config: Solver settings. Default ``SolverConfig()``.

    Attributes:
        last_stats: :class:`~latentode.core.SolveStats` of the latest forward call (its backward
            counts fill in when that call's output is backpropagated), or None before any call.

    Example:
        >>> from latentode.core import VectorField
        >>> block = ODEBlock(VectorField(dim=4, width=8))
        >>> block(torch.zeros(2, 4)).shape
        torch.Size([2, 4])
    """

    def __init__(
        self,
        field: nn.Module,
        *,
        t0: float = 0.0,
        t1: float = 1.0,
        config: SolverConfig | None = None,
    ) -> None:
        super().__init__()
        t0 = check_real("t0", t0)
        t1 = check_real("t1", t1)
        if t0 == t1:
            raise ValueError(f"`t0` and `t1` must differ; both are {t0}")
        self.field = field
        self.config = SolverConfig() if config is None else config
        # A buffer, so .to(device/dtype) moves the integration interval with the module.
        self.register_buffer("span", torch.tensor([t0, t1]))
        self.last_stats: SolveStats | None = None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h(t0)`` of shape ``(..., dim)`` → ``h(t1)`` of the same shape."""
        solution = solve(self.field, h, self.span.to(h.dtype), self.config)
        self.last_stats = solution.stats
        return solution.ys.select(-2, -1)  # (..., 2, dim) -> (..., dim) at t1

    def extra_repr(self) -> str:
        t0, t1 = self.span.tolist()
        return f"t0={t0:g}, t1={t1:g}, method={self.config.method!r}"
