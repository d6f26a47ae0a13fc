"""`ODEDecoder`: integrate z0 through a Neural ODE to every target time, then read out."""

from __future__ import annotations

import torch
from torch import nn

from latentode._validation import check_int
from latentode.core.integral import IntegralField
from latentode.core.solver import SolverConfig, SolveStats, solve
from latentode.core.vector_field import VectorField
from latentode.data.batch import union_grid

__all__ = ["ODEDecoder"]


class ODEDecoder(nn.Module):
    """Latent trajectories ``z(t)`` from ``z(0) = z0``, and the observation mean ``readout(z(t))``.

    Series in a batch have different target times. The decoder solves once over the sorted
    union of the batch's times (torchdiffeq's dense output makes many output times cheap) and
    gathers each series' own times back. Times before 0 are reached by a second, backwards solve.

    Args:
        latent_dim: Size of ``z``.
        n_features: Observed features.
        width: Width of the latent vector field. Default 64.
        depth: Residual blocks in the vector field. Default 2.
        activation: Vector-field activation. Default ``"tanh"``.
        train_solver: Solver settings while ``self.training``. Default dopri5 1e-3 / 1e-4.
        eval_solver: Solver settings in eval mode (prediction); default: ``train_solver``.

    Attributes:
        last_stats: :class:`~latentode.core.SolveStats` of the latest solves (summed when a
            backwards solve was needed).
    """

    def __init__(
        self,
        latent_dim: int,
        n_features: int,
        *,
        width: int = 64,
        depth: int = 2,
        activation: str = "tanh",
        train_solver: SolverConfig | None = None,
        eval_solver: SolverConfig | None = None,
    ) -> None:
        super().__init__()
        self.latent_dim = check_int("latent_dim", latent_dim, minimum=1)
        self.n_features = check_int("n_features", n_features, minimum=1)
        self.field = VectorField(
            latent_dim, width=width, depth=depth, activation=activation, norm="none"
        )
        self.readout = nn.Linear(latent_dim, n_features)
        self.train_solver = SolverConfig() if train_solver is None else train_solver
        self.eval_solver = self.train_solver if eval_solver is None else eval_solver
        self.last_stats: list[SolveStats] = []

    @property
    def solver(self) -> SolverConfig:
        """The settings in force: ``train_solver`` in training mode, else ``eval_solver``."""
        return self.train_solver if self.training else self.eval_solver

    def trajectory(self, z0: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """Latent paths: ``z0 (..., batch, latent)``, ``times (batch, n_times)``.

        Returns ``(..., batch, n_times, latent)``: each series at its own times.
        """
        return self._trajectory(z0, times, None)

    def trajectory_with_integral(
        self, z0: torch.Tensor, times: torch.Tensor, integrand: nn.Module
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent paths and ``I(t) = ∫_0^t integrand(z(s)) ds`` along them, in one solve.

        The integral is the second part of a tuple ODE state (:class:`IntegralField`), so it
        is exact to the solver's tolerance at every output time. Differences ``I(b) - I(a)``
        give the integral over any ``[a, b]``; for ``t < 0``, ``I(t) = -∫_t^0``.

        Returns:
            ``z (..., batch, n_times, latent)`` and ``I (..., batch, n_times, k)``.
        """
        return self._trajectory(z0, times, integrand)

    def _trajectory(
        self, z0: torch.Tensor, times: torch.Tensor, integrand: nn.Module | None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if z0.shape[-2] != times.shape[0]:
            raise ValueError(
                f"`z0` has batch size {z0.shape[-2]} but `times` {times.shape[0]}; they must match"
            )
        grid = union_grid(times, include=[0.0])
        start = int(torch.searchsorted(grid.times, grid.times.new_zeros(())))  # index of t = 0
        self.last_stats = []
        field: nn.Module = self.field
        state: torch.Tensor | tuple[torch.Tensor, ...] = z0
        if integrand is not None:
            field = IntegralField(self.field, integrand)
            width = integrand(z0[..., :1, :]).shape[-1]  # the integrand's output size
            state = (z0, z0.new_zeros(*z0.shape[:-1], width))
        forward = self._solve(field, state, grid.times[start:])  # (..., batch, n_fwd, d)
        if start > 0:
            backward = self._solve(field, state, grid.times[: start + 1].flip(0))  # from 0 down
            # (..., batch, start + 1, d) in decreasing time; drop its t=0, restore order
            forward = tuple(
                torch.cat([b[..., 1:, :].flip(-2), f], dim=-2)
                for b, f in zip(backward, forward, strict=True)
            )
        if integrand is None:
            return grid.gather(forward[0])
        return grid.gather(forward[0]), grid.gather(forward[1])

    def _solve(
        self,
        field: nn.Module,
        state: torch.Tensor | tuple[torch.Tensor, ...],
        times: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        """The solution at ``times`` as a tuple of parts, ``(..., batch, n_times, d)`` each."""
        parts = state if isinstance(state, tuple) else (state,)
        if times.numel() == 1:  # only t = 0 requested
            return tuple(p.unsqueeze(-2) for p in parts)
        solution = solve(field, state, times, self.solver)
        self.last_stats.append(solution.stats)
        ys = solution.ys
        return ys if isinstance(ys, tuple) else (ys,)

    def forward(self, z0: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """Observation means ``(..., batch, n_times, n_features)`` at each series' ``times``."""
        return self.readout(self.trajectory(z0, times))
