"""Controlled vector fields: ``dz/dt = f(z, c)`` with known inputs ``c``, and doses as jumps.

A latent ODE with covariates (doses, infusions, controls, static features) follows
``dz/dt = f(z, u(t), s)``. Known inputs ``u`` are held piecewise constant between their change
points and static features ``s`` never change, so the pair ``c = (u, s)`` rides along the solve
as a constant part of the state: the field reads it, its derivative is 0, and at each change
point the solver stops and the caller sets the new ``u`` (:func:`~latentode.core.solve_rows`,
``breaks``). An impulse (a bolus) moves the latent state at its instant instead:
:class:`DoseJump`.
"""

from __future__ import annotations

import torch
from torch import nn

from latentode._validation import check_int
from latentode.core.vector_field import VectorField

__all__ = ["ControlledField", "DoseJump"]


class ControlledField(nn.Module):
    """The tuple-state field ``(z, c[, I]) ↦ (f(z, c), 0[, g(z)])``.

    Args:
        field: A :class:`~latentode.core.VectorField` built with ``n_inputs`` = the width of
            ``c``.
        integrand: Optional ``g(z)``: a running integral ``I`` rides along as a third part
            (the Poisson head's compensator, as :class:`~latentode.core.IntegralField` does).

    Example:
        >>> f = ControlledField(VectorField(3, width=8, n_inputs=2))
        >>> dz, dc = f(torch.zeros(()), (torch.zeros(4, 3), torch.ones(4, 2)))
        >>> dz.shape, bool((dc == 0).all())
        (torch.Size([4, 3]), True)
    """

    def __init__(self, field: VectorField, integrand: nn.Module | None = None) -> None:
        super().__init__()
        if not isinstance(field, VectorField) or field.n_inputs == 0:
            raise ValueError("`field` must be a VectorField built with n_inputs > 0")
        self.field = field
        self.integrand = integrand

    def forward(self, t: torch.Tensor, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        z, c = state[0], state[1]
        out = (self.field.forward_with(t, z, c), torch.zeros_like(c))
        if self.integrand is not None:
            out = (*out, self.integrand(z))
        return out


class DoseJump(nn.Module):
    """A learned jump of the latent state at a dose: ``z⁺ = z + g(z, d) − g(z, 0)``.

    ``d`` holds the amounts of each impulse input (0 for none), so a change point without a
    dose leaves ``z`` exactly as it was. The last layer starts at zero: at initialisation no
    dose moves the state, and training learns how much each does.

    Args:
        latent_dim: Size of ``z``.
        n_impulse: Impulse inputs (the size of ``d``).
        width: Hidden width. Default 32.
    """

    def __init__(self, latent_dim: int, n_impulse: int, width: int = 32) -> None:
        super().__init__()
        latent_dim = check_int("latent_dim", latent_dim, minimum=1)
        self.n_impulse = check_int("n_impulse", n_impulse, minimum=1)
        width = check_int("width", width, minimum=1)
        self.net = nn.Sequential(
            nn.Linear(latent_dim + self.n_impulse, width),
            nn.Tanh(),
            nn.Linear(width, latent_dim),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, z: torch.Tensor, dose: torch.Tensor) -> torch.Tensor:
        """``z (..., latent)``, ``dose (..., n_impulse)`` → ``z⁺ (..., latent)``."""
        moved = self.net(torch.cat([z, dose], dim=-1))
        still = self.net(torch.cat([z, torch.zeros_like(dose)], dim=-1))
        return z + (moved - still)  # exactly z at a zero dose
