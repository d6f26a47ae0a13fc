"""`ODEDecoder`: integrate z0 through a Neural ODE to every target time, then read out."""

from __future__ import annotations

import torch
from torch import nn

from latentode._validation import check_int
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
        if z0.shape[-2] != times.shape[0]:
            raise ValueError(
                f"`z0` has batch size {z0.shape[-2]} but `times` {times.shape[0]}; they must match"
            )
        grid = union_grid(times, include=[0.0])
        start = int(torch.searchsorted(grid.times, grid.times.new_zeros(())))  # index of t = 0
        self.last_stats = []
        forward = self._solve(z0, grid.times[start:])  # (..., batch, n_fwd, latent)
        if start > 0:
            backward = self._solve(z0, grid.times[: start + 1].flip(0))  # from 0 down
            # (..., batch, start + 1, latent) in decreasing time; drop its t=0, restore order
            forward = torch.cat([backward[..., 1:, :].flip(-2), forward], dim=-2)
        return grid.gather(forward)

    def _solve(self, z0: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        if times.numel() == 1:  # only t = 0 requested
            return z0.unsqueeze(-2)
        solution = solve(self.field, z0, times, self.solver)
        self.last_stats.append(solution.stats)
        return solution.ys

    def forward(self, z0: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """Observation means ``(..., batch, n_times, n_features)`` at each series' ``times``."""
        return self.readout(self.trajectory(z0, times))
