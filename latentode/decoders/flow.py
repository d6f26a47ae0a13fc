"""`FlowDecoder`: ``z(t) = F(t, z0)`` by a neural flow, read out without an ODE solver."""

from __future__ import annotations

import torch
from torch import nn

from latentode._validation import check_choice, check_int
from latentode.core.flows import FLOWS, make_flow
from latentode.core.rowwise import solve_rows
from latentode.core.solver import SolverConfig, SolveStats
from latentode.decoders.series_rows import SeriesRows

__all__ = ["FlowDecoder"]


class FlowDecoder(nn.Module):
    """Latent paths ``z(t) = F(t, z0)`` from a neural flow (:mod:`latentode.core.flows`).

    The flow is the solution map itself, so each output time costs one evaluation of ``F``
    and nothing is solved: a series' path does not depend on its batch-mates or on which
    other times are asked for, and ``F(0, z0) = z0`` exactly. Times before 0 use the same map
    (``F(t, ·)`` is defined and invertible for any ``t``).

    A Poisson head's integral ``I(t) = ∫_0^t λ(F(s, z0)) ds`` has no closed form: it is solved
    as the per-row quadrature ODE ``dI/dt = λ(F(t, c))``, ``dc/dt = 0`` with ``c = z0``
    (:func:`~latentode.core.solve_rows`, ``train_solver`` / ``eval_solver``).

    Args:
        latent_dim: Size of ``z``.
        n_features: Observed features.
        flow: ``"coupling"`` (default), ``"resnet"`` or ``"gru"`` (see
            :data:`~latentode.core.flows.FLOWS`).
        width: Width of the flow's networks. Default 64.
        depth: Residual blocks in each of them. Default 1.
        n_layers: Flow layers composed. Default 2.
        train_solver, eval_solver: Settings of the Poisson integral's quadrature solve.

    Attributes:
        last_stats: ``[SolveStats]`` of the latest integral solve (empty counts without one).
    """

    def __init__(
        self,
        latent_dim: int,
        n_features: int,
        *,
        flow: str = "coupling",
        width: int = 64,
        depth: int = 1,
        n_layers: int = 2,
        train_solver: SolverConfig | None = None,
        eval_solver: SolverConfig | None = None,
    ) -> None:
        super().__init__()
        self.latent_dim = check_int("latent_dim", latent_dim, minimum=1)
        self.n_features = check_int("n_features", n_features, minimum=1)
        self.flow_name = check_choice("flow", flow, FLOWS)
        self.flow = make_flow(flow, latent_dim, width=width, depth=depth, n_layers=n_layers)
        self.readout = nn.Linear(latent_dim, n_features)
        self.train_solver = SolverConfig() if train_solver is None else train_solver
        self.eval_solver = self.train_solver if eval_solver is None else eval_solver
        self.last_stats: list[SolveStats] = [SolveStats()]

    @property
    def solver(self) -> SolverConfig:
        """The integral's settings in force (training or evaluation)."""
        return self.train_solver if self.training else self.eval_solver

    def trajectory(self, z0: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """Latent paths: ``z0 (..., batch, latent)``, ``times (batch, n_times)``.

        Returns ``(..., batch, n_times, latent)``: each series at its own times.
        """
        if z0.shape[-2] != times.shape[0]:
            raise ValueError(
                f"`z0` has batch size {z0.shape[-2]} but `times` {times.shape[0]}; they must match"
            )
        n = times.shape[1]
        z = z0.unsqueeze(-2).expand(*z0.shape[:-1], n, z0.shape[-1])  # (..., batch, n, latent)
        t = times.to(z0.dtype).expand(z.shape[:-1])  # (..., batch, n)
        self.last_stats = [SolveStats()]
        return self.flow(t, z)

    def trajectory_with_integral(
        self, z0: torch.Tensor, times: torch.Tensor, integrand: nn.Module
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent paths and ``I(t) = ∫_0^t integrand(z(s)) ds`` (``I(t) = -∫_t^0`` for t < 0).

        Returns ``z (..., batch, n_times, latent)`` and ``I (..., batch, n_times, k)``.
        """
        z = self.trajectory(z0, times)
        lead, (batch, latent), n = z0.shape[:-2], z0.shape[-2:], times.shape[1]
        starts = z0.reshape(-1, latent)  # (S · batch, latent): every sample of every series
        width = integrand(z0[..., :1, :]).shape[-1]
        row_times = times.to(z0.dtype).expand(*lead, batch, n).reshape(-1, n)
        # each row's times sorted away from 0, one forward and one backward row per series
        rows = SeriesRows(row_times.detach())  # a forward and a backward row per series
        solution = solve_rows(
            _Quadrature(self.flow, integrand),
            (starts[rows.series], starts.new_zeros(len(rows.series), width)),
            rows.times,
            self.solver,
            lengths=rows.lengths,
        )
        self.last_stats = [solution.stats]
        part = solution.ys[1].reshape(1, rows.n_rows, n, width)
        integral = rows.place(part).reshape(*lead, batch, n, width)
        return z, integral

    def forward(self, z0: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """Observation means ``(..., batch, n_times, n_features)`` at each series' ``times``."""
        return self.readout(self.trajectory(z0, times))


class _Quadrature(nn.Module):
    """``d(c, I)/dt = (0, integrand(F(t, c)))``: the integral along a flow, as an ODE."""

    def __init__(self, flow: nn.Module, integrand: nn.Module) -> None:
        super().__init__()
        self.flow, self.integrand = flow, integrand

    def forward(
        self, t: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        c, _ = state
        return torch.zeros_like(c), self.integrand(self.flow(t, c))
