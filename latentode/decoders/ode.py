"""`ODEDecoder`: integrate z0 through a Neural ODE to every target time, then read out."""

from __future__ import annotations

import math

import torch
from torch import nn

from latentode._validation import check_int
from latentode.core.controlled import ControlledField, DoseJump, InputGain
from latentode.core.integral import IntegralField
from latentode.core.rowwise import solve_rows
from latentode.core.solver import SolverConfig, SolveStats
from latentode.core.vector_field import VectorField
from latentode.data.batch import CovariateBatch
from latentode.decoders.schedule import RowSchedule, check_covariates
from latentode.decoders.series_rows import SeriesRows

__all__ = ["ODEDecoder"]


class ODEDecoder(nn.Module):
    """Latent trajectories ``z(t)`` from ``z(0) = z0``, and the observation mean ``readout(z(t))``.

    Series in a batch have different target times. Every posterior sample of every series is a
    row of one batched solve (:func:`~latentode.core.solve_rows`) that reads its own output
    times, so memory grows with samples × series × own times (no grid over the union of the
    batch's times). Times before 0 are a second row of the same solve, integrated backwards
    from 0. The read-out is linear, so :meth:`forward` reads each output in feature space.

    In eval mode (prediction) every row also has its own steps and error control, so a
    series' result does not depend on its batch-mates. In training mode the rows share their
    steps (``shared_steps``: one error norm over the batch, as one whole-batch solve), which
    takes as many field calls as the batch's average row rather than its hardest; the loss
    averages over the batch anyway.

    ``dopri5``, ``bosh3`` and the one-step fixed-grid methods have native row solvers
    (:data:`~latentode.core.ROW_METHODS`), and with ``adjoint=True`` a native per-row adjoint
    (:mod:`~latentode.core.row_adjoint`); other methods solve each row alone with torchdiffeq:
    the same answers, but one small solve per row (slow in training).

    Args:
        latent_dim: Size of ``z``.
        n_features: Observed features.
        width: Width of the latent vector field. Default 64.
        depth: Residual blocks in the vector field. Default 2.
        activation: Vector-field activation. Default ``"tanh"``.
        train_solver: Solver settings while ``self.training``. Default dopri5 1e-3 / 1e-4.
        eval_solver: Solver settings in eval mode (prediction); default: ``train_solver``.
        n_held, n_impulse, n_static: Covariates (:class:`~latentode.data.CovariateBatch`):
            held inputs and static features enter the field, ``dz/dt = f(z, s) +
            G(z, s)·u(t)`` (:class:`~latentode.core.ControlledField`), stepped to at every
            change point;
            impulse inputs move ``z`` at their instant (:class:`~latentode.core.DoseJump`).
            Default 0 each: ``dz/dt = f(z)``.

    Attributes:
        last_stats: ``[SolveStats]`` of the latest solve (see
            :class:`~latentode.core.SolveStats`: ``nfe_forward`` counts batched field calls,
            ``row_nfe_forward / n_rows`` the evaluations per row).
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
        self.field = VectorField(
            latent_dim,
            width=width,
            depth=depth,
            activation=activation,
            norm="none",
            n_inputs=self.n_static,
        )
        # held inputs push the state through G(z, s)·u: affine in u (see ControlledField)
        self.input_gain = InputGain(latent_dim, n_held, n_static) if n_held else None
        self.dose_jump = DoseJump(latent_dim, n_impulse) if n_impulse else None
        self.readout = nn.Linear(latent_dim, n_features)
        self.train_solver = SolverConfig() if train_solver is None else train_solver
        self.eval_solver = self.train_solver if eval_solver is None else eval_solver
        self.last_stats: list[SolveStats] = []

    @property
    def solver(self) -> SolverConfig:
        """The settings in force: ``train_solver`` in training mode, else ``eval_solver``."""
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
        return self._trajectory(z0, times, None, covariates=covariates)

    def trajectory_with_integral(
        self,
        z0: torch.Tensor,
        times: torch.Tensor,
        integrand: nn.Module,
        covariates: CovariateBatch | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent paths and ``I(t) = ∫_0^t integrand(z(s)) ds`` along them, in one solve.

        The integral is the second part of a tuple ODE state (:class:`IntegralField`), so it
        is exact to the solver's tolerance at every output time. Differences ``I(b) - I(a)``
        give the integral over any ``[a, b]``; for ``t < 0``, ``I(t) = -∫_t^0``.

        Returns:
            ``z (..., batch, n_times, latent)`` and ``I (..., batch, n_times, k)``.
        """
        return self._trajectory(z0, times, integrand, covariates=covariates)

    def _trajectory(
        self,
        z0: torch.Tensor,
        times: torch.Tensor,
        integrand: nn.Module | None,
        project: torch.Tensor | None = None,
        covariates: CovariateBatch | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if z0.shape[-2] != times.shape[0]:
            raise ValueError(
                f"`z0` has batch size {z0.shape[-2]} but `times` {times.shape[0]}; they must match"
            )
        check_covariates(self, covariates, times.shape[0])
        if covariates is not None:
            return self._controlled(z0, times, integrand, project, covariates)
        lead, (batch, latent), n = z0.shape[:-2], z0.shape[-2:], times.shape[1]
        rows = SeriesRows(times.detach())
        n_samples = math.prod(lead)
        flat = z0.reshape(n_samples, batch, latent)  # (S, batch, latent), S = 1 without samples
        # (S · n_rows, latent): every sample of every series' forward, then backward, row
        starts = flat[:, rows.series].reshape(-1, latent)
        field: nn.Module = self.field
        state: torch.Tensor | tuple[torch.Tensor, ...] = starts
        if integrand is not None:
            field = IntegralField(self.field, integrand)
            width = integrand(z0[..., :1, :]).shape[-1]  # the integrand's output size
            state = (starts, starts.new_zeros(starts.shape[0], width))
        solution = solve_rows(
            field,
            state,
            rows.times.repeat(n_samples, 1),  # (S · n_rows, m)
            self.solver,
            lengths=rows.lengths.repeat(n_samples),
            project=project,
            shared_steps=self.training,
        )
        self.last_stats = [solution.stats]
        parts = solution.ys if isinstance(solution.ys, tuple) else (solution.ys,)
        out = tuple(
            rows.place(part.reshape(n_samples, rows.n_rows, n, part.shape[-1])).reshape(
                *lead, batch, n, part.shape[-1]
            )
            for part in parts
        )  # each (..., batch, n_times, d)
        return out[0] if integrand is None else out

    def _controlled(
        self,
        z0: torch.Tensor,
        times: torch.Tensor,
        integrand: nn.Module | None,
        project: torch.Tensor | None,
        covariates: CovariateBatch,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """:meth:`_trajectory` with covariates: state ``(z, c[, I])``, breaks at changes."""
        lead, (batch, latent), n = z0.shape[:-2], z0.shape[-2:], times.shape[1]
        rows = SeriesRows(times.detach())
        n_samples = math.prod(lead)
        flat = z0.reshape(n_samples, batch, latent)
        plan = RowSchedule(covariates, rows, n_samples, latent, self.dose_jump)
        starts = plan.start(flat[:, rows.series].reshape(-1, latent))  # (R, latent)
        c0 = plan.c0.to(starts.dtype)
        field: nn.Module = ControlledField(self.field, self.input_gain, integrand)
        state: tuple[torch.Tensor, ...] = (starts, c0)
        if integrand is not None:
            width = integrand(z0[..., :1, :]).shape[-1]
            state = (*state, starts.new_zeros(starts.shape[0], width))
        if project is not None:  # read z alone: the constant part reads as 0
            project = torch.cat([project, project.new_zeros(c0.shape[-1], project.shape[1])])
        solution = solve_rows(
            field,
            state,
            rows.times.repeat(n_samples, 1),
            self.solver,
            lengths=rows.lengths.repeat(n_samples),
            project=project,
            shared_steps=self.training,
            breaks=plan.breaks,
            break_lengths=plan.lengths,
            jump=plan.jump,
        )
        self.last_stats = [solution.stats]
        parts = solution.ys if isinstance(solution.ys, tuple) else (solution.ys,)
        if project is None:
            parts = parts[:1] + parts[2:]  # drop c
        out = tuple(
            rows.place(part.reshape(n_samples, rows.n_rows, n, part.shape[-1])).reshape(
                *lead, batch, n, part.shape[-1]
            )
            for part in parts
        )
        return out[0] if integrand is None else out

    def forward(
        self, z0: torch.Tensor, times: torch.Tensor, covariates: CovariateBatch | None = None
    ) -> torch.Tensor:
        """Observation means ``(..., batch, n_times, n_features)`` at each series' ``times``.

        The read-out is linear, so the solver reads each output time in feature space
        (``project``): its dense output costs ``n_features`` numbers per time, not
        ``latent_dim``.
        """
        weight = self.readout.weight.to(z0.dtype)  # (n_features, latent)
        means = self._trajectory(z0, times, None, project=weight.T, covariates=covariates)
        return means + self.readout.bias.to(z0.dtype)
