"""`ResNet`: L explicit residual steps ``h ← h + Δ·f_l(t_l, h)``, the twin of `ODEBlock`."""

from __future__ import annotations

import torch
from torch import nn

from latentode._validation import check_bool, check_int, check_real
from latentode.core.ode_block import ODEBlock
from latentode.core.solver import SolverConfig
from latentode.core.vector_field import VectorField

__all__ = ["ResNet"]


class ResNet(nn.Module):
    """A residual network of ``n_steps`` steps, each an explicit-Euler step of a vector field.

    Step ``l`` (``l = 0 .. n_steps-1``) computes ``h ← h + step_size · f_l(t0 + l·step_size, h)``.
    With ``shared_weights=True`` every ``f_l`` is the same :class:`VectorField`, and the network
    equals ``solve(field, h, [t0, t0 + n_steps·step_size], SolverConfig("euler", step_size))``
    exactly (up to floating-point rounding); :meth:`to_ode_block` builds that ODE twin.

    Args:
        dim: State size; input and output are ``(..., dim)``.
        n_steps: Number of residual steps L (≥ 1).
        step_size: Euler step Δ (> 0). Default 1.0, the classical ResNet ``h + f(h)``.
        shared_weights: One field for all steps (an ODE discretisation) or one per step.
        **field_kwargs: Passed to each :class:`VectorField` (``width``, ``depth``,
            ``activation``, ``norm``, ``time_dependent``, ``zero_init``).

    Example:
        >>> net = ResNet(dim=3, n_steps=4, width=8)
        >>> net(torch.zeros(2, 3)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        dim: int,
        n_steps: int,
        *,
        step_size: float = 1.0,
        shared_weights: bool = True,
        **field_kwargs: object,
    ) -> None:
        super().__init__()
        self.n_steps = check_int("n_steps", n_steps, minimum=1)
        self.step_size = check_real("step_size", step_size, positive=True)
        self.shared_weights = check_bool("shared_weights", shared_weights)
        n_fields = 1 if shared_weights else n_steps
        self.fields = nn.ModuleList(VectorField(dim, **field_kwargs) for _ in range(n_fields))
        # Step l uses fields[l] (unshared) or fields[0] (shared); resolved once, here.
        self._field_of_step = [self.fields[0 if shared_weights else k] for k in range(n_steps)]

    def forward(self, h: torch.Tensor, t0: float = 0.0) -> torch.Tensor:
        """``(..., dim) -> (..., dim)`` after ``n_steps`` residual steps starting at time ``t0``."""
        # Same grid arithmetic as a fixed-step solver: t_l = l·Δ + t0.
        times = torch.arange(self.n_steps, dtype=h.dtype, device=h.device) * self.step_size + t0
        for t, field in zip(times, self._field_of_step, strict=True):
            h = h + self.step_size * field(t, h)
        return h

    def to_ode_block(self, t0: float = 0.0) -> ODEBlock:
        """The :class:`ODEBlock` that integrates the shared field with Euler at this step size.

        Its output equals this network's; swap ``config`` (e.g. to ``dopri5``) to take the
        continuous-depth limit with the same weights.
        """
        if not self.shared_weights:
            raise ValueError(
                "to_ode_block needs shared_weights=True: with one field per step there is no "
                "single vector field to integrate"
            )
        return ODEBlock(
            self.fields[0],
            t0=t0,
            t1=t0 + self.n_steps * self.step_size,
            config=SolverConfig(method="euler", step_size=self.step_size),
        )
