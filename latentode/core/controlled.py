"""Controlled vector fields: ``dz/dt = f(z, s) + G(z, s)·u`` with known inputs, doses as jumps.

A latent ODE with covariates (doses, infusions, controls, static features) is control-affine
in the known inputs ``u``. They are held piecewise constant between their change points and
static features ``s`` never change, so the pair ``c = (u, s)`` rides along the solve as a
constant part of the state: the field reads it, its derivative is 0, and at each change point
the solver stops and the caller sets the new ``u`` (:func:`~latentode.core.solve_rows`,
``breaks``). An impulse (a bolus) moves the latent state at its instant instead:
:class:`DoseJump`.
"""

from __future__ import annotations

import torch
from torch import nn

from latentode._validation import check_int
from latentode.core.vector_field import VectorField

__all__ = ["ControlledField", "DoseJump", "InputGain"]


class InputGain(nn.Module):
    """``G(z, s)``: how strongly each held input pushes each latent direction, ``(…, latent, k)``.

    Args:
        latent_dim: Size of ``z``. n_held: Held inputs ``k``. n_static: Static features.
        width: Hidden width. Default 32.
    """

    def __init__(self, latent_dim: int, n_held: int, n_static: int = 0, width: int = 32) -> None:
        super().__init__()
        self.latent_dim = check_int("latent_dim", latent_dim, minimum=1)
        self.n_held = check_int("n_held", n_held, minimum=1)
        self.n_static = check_int("n_static", n_static, minimum=0)
        width = check_int("width", width, minimum=1)
        self.net = nn.Sequential(
            nn.Linear(latent_dim + self.n_static, width),
            nn.Tanh(),
            nn.Linear(width, latent_dim * self.n_held),
        )

    def forward(self, z: torch.Tensor, s: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """``G(z, s)·u``: ``z (…, latent)``, ``s (…, n_static)``, ``u (…, k)`` → ``(…, latent)``."""
        gain = self.net(torch.cat([z, s], dim=-1) if self.n_static else z)
        gain = gain.unflatten(-1, (self.latent_dim, self.n_held))  # (…, latent, k)
        return (gain @ u.unsqueeze(-1)).squeeze(-1)


class ControlledField(nn.Module):
    """The control-affine tuple-state field ``(z, c[, I]) ↦ (f(z, s) + G(z, s)·u, 0[, g(z)])``.

    ``c = (u, s)``: the held inputs in force and the static features. The field is affine in
    ``u``: an input's push on the latent state scales with its value, so doubling an infusion
    doubles its immediate effect, also beyond the values seen in training (a general
    ``f(z, u, s)`` saturates there). How the push plays out still depends on the state
    (``G(z, s)``) and on the nonlinear dynamics ``f``.

    Args:
        field: The drift ``f``: a :class:`~latentode.core.VectorField` built with
            ``n_inputs = n_static`` (it reads ``s``).
        gain: The :class:`InputGain` ``G``, or None without held inputs.
        integrand: Optional ``g(z)``: a running integral ``I`` rides along as a third part
            (the Poisson head's compensator, as :class:`~latentode.core.IntegralField` does).

    Example:
        >>> f = ControlledField(VectorField(3, width=8, n_inputs=1), InputGain(3, 1, 1))
        >>> dz, dc = f(torch.zeros(()), (torch.zeros(4, 3), torch.ones(4, 2)))
        >>> dz.shape, bool((dc == 0).all())
        (torch.Size([4, 3]), True)
    """

    def __init__(
        self,
        field: VectorField,
        gain: InputGain | None,
        integrand: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(field, VectorField):
            raise TypeError(f"`field` must be a VectorField; got {type(field).__name__}")
        self.field, self.gain, self.integrand = field, gain, integrand
        self.n_held = 0 if gain is None else gain.n_held

    def drift(self, t: torch.Tensor, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """``dz/dt`` for ``z (…, latent)`` under ``c = (u, s) (…, n_held + n_static)``."""
        u, s = c[..., : self.n_held], c[..., self.n_held :]
        dz = self.field.forward_with(t, z, s) if self.field.n_inputs else self.field(t, z)
        if self.gain is not None:
            dz = dz + self.gain(z, s, u)
        return dz

    def forward(self, t: torch.Tensor, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        z, c = state[0], state[1]
        out = (self.drift(t, z, c), torch.zeros_like(c))
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
