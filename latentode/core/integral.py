"""`IntegralField`: carry the running integral of a function of the state as its own ODE state."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["IntegralField"]


class IntegralField(nn.Module):
    """The tuple-state field ``(dz/dt, dI/dt) = (field(t, z), integrand(z))``.

    Solved with :func:`~latentode.core.solve` from ``(z0, 0)``, the second component at time
    ``t`` is ``∫_{t0}^{t} integrand(z(s)) ds`` along the same path, to the solver's tolerance:
    the adaptive step control sees both parts (torchdiffeq's mixed norm), so the integral is
    as accurate as the path. The Poisson head carries its compensator ``∫ λ(z(t)) dt`` this way,
    with no second solve and no quadrature grid.

    Args:
        field: ``f(t, z)``, e.g. a :class:`~latentode.core.VectorField`.
        integrand: ``g(z)``: ``(..., dim) -> (..., k)``; a module, so an adjoint solve finds its
            parameters.

    Example:
        >>> from latentode.core import VectorField, solve
        >>> f = IntegralField(VectorField(2, width=8), nn.Linear(2, 1))
        >>> z, integral = solve(f, (torch.zeros(3, 2), torch.zeros(3, 1)), [0.0, 1.0]).ys
        >>> z.shape, integral.shape
        (torch.Size([3, 2, 2]), torch.Size([3, 2, 1]))
    """

    def __init__(self, field: nn.Module, integrand: nn.Module) -> None:
        super().__init__()
        self.field = field
        self.integrand = integrand

    def forward(
        self, t: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        z, _ = state
        return self.field(t, z), self.integrand(z)
