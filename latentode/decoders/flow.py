"""`FlowDecoder`: ``z(t) = F(t, z0)`` by a neural flow, read out without an ODE solver."""

from __future__ import annotations

import torch
from torch import nn

from latentode._validation import check_choice, check_int
from latentode.core.controlled import DoseJump
from latentode.core.flows import FLOWS, make_flow
from latentode.core.rowwise import solve_rows
from latentode.core.solver import SolverConfig, SolveStats
from latentode.data.batch import CovariateBatch
from latentode.decoders.schedule import check_covariates
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
        n_held, n_impulse, n_static: Covariates (:class:`~latentode.data.CovariateBatch`).
            Between two change points the held inputs and static features ``c`` are
            constant, and the path is the flow of the augmented state: ``z(t) =
            F(t − b, (z(b), c))`` read on its latent part, from the last change point ``b``
            before ``t`` (the flow's width is ``latent + n_held + n_static``); a dose moves
            ``z`` by a learned jump at its instant (:class:`~latentode.core.DoseJump`).
            Times before 0 and the Poisson integral are not available with covariates.

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
        n_held: int = 0,
        n_impulse: int = 0,
        n_static: int = 0,
    ) -> None:
        super().__init__()
        self.latent_dim = check_int("latent_dim", latent_dim, minimum=1)
        self.n_features = check_int("n_features", n_features, minimum=1)
        self.n_held = check_int("n_held", n_held, minimum=0)
        self.n_impulse = check_int("n_impulse", n_impulse, minimum=0)
        self.n_static = check_int("n_static", n_static, minimum=0)
        self.flow_name = check_choice("flow", flow, FLOWS)
        width_c = latent_dim + self.n_held + self.n_static  # the flow carries (z, c)
        self.flow = make_flow(flow, width_c, width=width, depth=depth, n_layers=n_layers)
        self.dose_jump = DoseJump(latent_dim, n_impulse) if n_impulse else None
        self.readout = nn.Linear(latent_dim, n_features)
        self.train_solver = SolverConfig() if train_solver is None else train_solver
        self.eval_solver = self.train_solver if eval_solver is None else eval_solver
        self.last_stats: list[SolveStats] = [SolveStats()]

    @property
    def solver(self) -> SolverConfig:
        """The integral's settings in force (training or evaluation)."""
        return self.train_solver if self.training else self.eval_solver

    @property
    def has_covariates(self) -> bool:
        return bool(self.n_held or self.n_impulse or self.n_static)

    def trajectory(
        self, z0: torch.Tensor, times: torch.Tensor, covariates: CovariateBatch | None = None
    ) -> torch.Tensor:
        """Latent paths: ``z0 (..., batch, latent)``, ``times (batch, n_times)``.

        ``covariates`` are the batch's, required exactly when the decoder reads them.
        Returns ``(..., batch, n_times, latent)``: each series at its own times.
        """
        if z0.shape[-2] != times.shape[0]:
            raise ValueError(
                f"`z0` has batch size {z0.shape[-2]} but `times` {times.shape[0]}; they must match"
            )
        check_covariates(self, covariates, times.shape[0])
        if covariates is not None:
            return self._controlled(z0, times, covariates)
        n = times.shape[1]
        z = z0.unsqueeze(-2).expand(*z0.shape[:-1], n, z0.shape[-1])  # (..., batch, n, latent)
        t = times.to(z0.dtype).expand(z.shape[:-1])  # (..., batch, n)
        self.last_stats = [SolveStats()]
        return self.flow(t, z)

    def _controlled(
        self, z0: torch.Tensor, times: torch.Tensor, cov: CovariateBatch
    ) -> torch.Tensor:
        """:meth:`trajectory` with covariates: the flow of ``(z, c)`` from change to change."""
        if bool((times < 0).any()):
            raise ValueError(
                "a flow decoder with covariates decodes from each series' first observation "
                "on; ask for times at or after it"
            )
        latent, dtype = self.latent_dim, z0.dtype
        change = cov.times.to(dtype)  # (batch, m)
        m = change.shape[1]
        valid = cov.valid
        ahead = valid & (change > 0)  # (batch, m): the change points the paths meet
        z, c = self._start(z0, cov)
        # the state at the start of each piece: 0, then each change point ahead of 0
        t_from, z_from, c_from = [change.new_zeros(change.shape[0])], [z], [c]
        for k in range(m):
            step = torch.where(ahead[:, k], change[:, k] - t_from[-1], 0.0)  # (batch,)
            moved = self._flow(step, z_from[-1], c_from[-1])
            if self.dose_jump is not None:
                dose = cov.doses[:, k].to(dtype).expand(*moved.shape[:-1], -1)
                moved = self.dose_jump(moved, dose)
            held = torch.cat([cov.held[:, k], cov.static], dim=-1).to(dtype)
            here = ahead[:, k, None]
            z_from.append(torch.where(here, moved, z_from[-1]))
            c_from.append(torch.where(here, held, c_from[-1]))
            t_from.append(torch.where(ahead[:, k], change[:, k], t_from[-1]))
        # each output's piece: the change points ahead of 0 at or before it (a change acts
        # at its instant, as in the ODE decoder)
        before = (change[:, None, :] <= times.to(dtype)[..., None]) & ahead[:, None, :]
        # pieces are kept per change point k (after it: entry k + 1); the change points at or
        # before 0 come first and leave the start as it is
        behind = (valid & (change <= 0)).sum(-1, keepdim=True)  # (batch, 1)
        piece = before.sum(-1) + behind  # (batch, n)
        starts = torch.stack(t_from, dim=-1).gather(1, piece)  # (batch, n)
        states = torch.stack(z_from, dim=-2)  # (..., batch, m + 1, latent)
        index = piece[..., None].expand(*z0.shape[:-2], *piece.shape, latent)
        z_start = states.gather(-2, index)  # (..., batch, n, latent)
        c_all = torch.stack(c_from, dim=-2)  # (batch, m + 1, n_c)
        c_start = c_all.gather(1, piece[..., None].expand(*piece.shape, c_all.shape[-1]))
        self.last_stats = [SolveStats()]
        return self._flow(times.to(dtype) - starts, z_start, c_start)

    def _start(self, z0: torch.Tensor, cov: CovariateBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """``z0 (..., batch, latent)`` after the doses at exactly 0; ``c (batch, n_c)`` at 0."""
        c, doses = cov.at_zero()
        if self.dose_jump is not None:
            z0 = self.dose_jump(z0, doses.to(z0.dtype).expand(*z0.shape[:-1], -1))
        return z0, c.to(z0.dtype)

    def _flow(self, t: torch.Tensor, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """The latent part of ``F(t, (z, c))``; ``t`` and ``c`` broadcast against ``z``."""
        c = c.expand(*z.shape[:-1], c.shape[-1])
        t = t.expand(z.shape[:-1])
        return self.flow(t, torch.cat([z, c], dim=-1))[..., : self.latent_dim]

    def trajectory_with_integral(
        self,
        z0: torch.Tensor,
        times: torch.Tensor,
        integrand: nn.Module,
        covariates: CovariateBatch | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent paths and ``I(t) = ∫_0^t integrand(z(s)) ds`` (``I(t) = -∫_t^0`` for t < 0).

        Returns ``z (..., batch, n_times, latent)`` and ``I (..., batch, n_times, k)``.
        """
        check_covariates(self, covariates, times.shape[0])
        if covariates is not None:
            return self._controlled_integral(z0, times, integrand, covariates)
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

    def _controlled_integral(
        self, z0: torch.Tensor, times: torch.Tensor, integrand: nn.Module, cov: CovariateBatch
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The path and its integral under covariates: a quadrature solve stepped to each change.

        Each row carries the start of its current piece, ``a = (z(b), c_b, b)``, constant
        between change points, and ``dI/dt = integrand(F(t − b, (z(b), c_b)))``; at a change
        point (a break of :func:`~latentode.core.solve_rows`) the start moves there, the dose
        included, so the integral follows the very path :meth:`trajectory` reads.
        """
        z = self._controlled(z0, times, cov)
        lead, (batch, latent), n = z0.shape[:-2], z0.shape[-2:], times.shape[1]
        dtype = z0.dtype
        width = integrand(z0[..., :1, :]).shape[-1]
        samples = z0.reshape(-1, batch, latent).shape[0]
        zero = times.new_zeros(batch, 1).to(dtype)
        change = cov.times.to(dtype)
        start, c0 = self._start(z0.reshape(samples, batch, latent), cov)  # c0: (batch, n_c)
        rows = SeriesRows(times.detach())  # each series' times sorted (all at or after 0)
        anchor = torch.cat(
            [start, c0.expand(samples, -1, -1), zero.expand(samples, -1, -1)], dim=-1
        )[:, rows.series].reshape(samples * rows.n_rows, -1)  # (R, latent + n_c + 1)
        series = rows.series.repeat(samples)  # (R,) sample-major
        n_c = c0.shape[-1]

        def jump(rows: torch.Tensor, index: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            b = series[rows]
            at = change[b, index]  # (H,)
            z_b, c_b, t_b = y[:, :latent], y[:, latent : latent + n_c], y[:, latent + n_c]
            moved = self._flow((at - t_b).to(dtype), z_b, c_b)
            if self.dose_jump is not None:
                moved = self.dose_jump(moved, cov.doses[b, index].to(dtype))
            c_new = torch.cat([cov.held[b, index], cov.static[b]], dim=-1).to(dtype)
            rest = y[:, latent + n_c + 1 :]
            return torch.cat([moved, c_new, at[:, None].to(dtype), rest], dim=-1)

        solution = solve_rows(
            _PieceQuadrature(self, integrand, latent, n_c),
            (anchor, anchor.new_zeros(anchor.shape[0], width)),
            rows.times.to(dtype).repeat(samples, 1),
            self.solver,
            lengths=rows.lengths.repeat(samples),
            breaks=change[series],
            break_lengths=cov.lengths[series],
            jump=jump,
        )
        self.last_stats = [solution.stats]
        part = solution.ys[1].reshape(samples, rows.n_rows, n, width)
        return z, rows.place(part).reshape(*lead, batch, n, width)

    def forward(
        self, z0: torch.Tensor, times: torch.Tensor, covariates: CovariateBatch | None = None
    ) -> torch.Tensor:
        """Observation means ``(..., batch, n_times, n_features)`` at each series' ``times``."""
        return self.readout(self.trajectory(z0, times, covariates))


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


class _PieceQuadrature(nn.Module):
    """``d(a, I)/dt = (0, integrand(F(t − b, (z_b, c_b))))`` with ``a = (z_b, c_b, b)``."""

    def __init__(self, decoder: FlowDecoder, integrand: nn.Module, latent: int, n_c: int) -> None:
        super().__init__()
        self.decoder, self.integrand = decoder, integrand
        self.latent, self.n_c = latent, n_c

    def forward(
        self, t: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        a, _ = state
        z_b, c_b = a[:, : self.latent], a[:, self.latent : self.latent + self.n_c]
        since = t.to(a.dtype) - a[:, self.latent + self.n_c]  # (A,)
        return torch.zeros_like(a), self.integrand(self.decoder._flow(since, z_b, c_b))
