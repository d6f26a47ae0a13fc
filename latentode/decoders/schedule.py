"""`RowSchedule`: a batch's known inputs laid out on the rows of a per-row solve.

Each row of the decoder's solve is one posterior sample of one series, forward from 0 or
backward from it (:class:`~latentode.decoders.series_rows.SeriesRows`). The row's state is
``(z, c)``: the latent and the constant part ``c = (held inputs in force, static features)``.
Its breaks are its series' change points in the direction it runs; at each the jump sets the
held inputs in force on the far side and, going forward, moves ``z`` by the dose given there
(:class:`~latentode.core.DoseJump`).

Change points at or before time 0 (the first observation) are not breaks: the held inputs in
force at 0 start the solve, and earlier doses are history the encoder reads. A dose at exactly
0 acts at 0 too, before any output after it.
"""

from __future__ import annotations

import torch

from latentode.core.controlled import DoseJump
from latentode.data.batch import CovariateBatch
from latentode.decoders.series_rows import SeriesRows

__all__ = ["RowSchedule", "check_covariates"]


class RowSchedule:
    """Initial inputs, breaks and the jump of every solver row.

    Args:
        covariates: The batch's covariates (``batch`` series).
        rows: The batch's solver rows (one sample's worth).
        n_samples: Samples; the rows repeat per sample, as the decoder lays them out.
        latent_dim: Width of ``z`` (the first part of each row's state).
        dose_jump: The learned dose jump, or None without impulse inputs.

    Attributes:
        c0: ``(R, n_held + n_static)`` each row's constant part at time 0.
        breaks: ``(R, m)`` the change points in the order the row meets them.
        lengths: ``(R,)`` the change points of the row's series.
    """

    def __init__(
        self,
        covariates: CovariateBatch,
        rows: SeriesRows,
        n_samples: int,
        latent_dim: int,
        dose_jump: DoseJump | None,
    ) -> None:
        cov = covariates
        self.cov, self.latent_dim, self.dose_jump = cov, latent_dim, dose_jump
        self.series = rows.series.repeat(n_samples)  # (R,)
        forward = torch.arange(rows.n_rows, device=rows.series.device) < rows.n_forward
        self.forward = forward.repeat(n_samples)  # (R,)
        if dose_jump is not None and not bool(self.forward.all()):
            raise ValueError(
                "times before a series' first observation cannot be decoded with impulse "
                "inputs: a dose's jump of the latent state has no inverse to run backwards; "
                "ask for times from the first observation on"
            )
        self.lengths = cov.lengths[self.series]  # (R,)
        m = cov.times.shape[1]
        col = torch.arange(m, device=cov.times.device).expand(len(self.series), m)
        backward = (self.lengths[:, None] - 1 - col).clamp(min=0)
        # (R, m): the change point a row meets at its j-th break
        self.change = torch.where(self.forward[:, None], col, backward)
        self.breaks = cov.times[self.series].gather(1, self.change)
        batch = cov.times.shape[0]
        # in force from 0 on (a dose at exactly 0 is no break: breaks lie strictly past t0)
        c, self.dose0 = cov.at_zero()  # (batch, n_c), (batch, n_impulse)
        # in force just before 0, where backward rows run (a change at 0 is behind them)
        earlier = ((cov.valid & (cov.times < 0)).sum(1) - 1).clamp(min=0)  # (batch,)
        before = cov.held[torch.arange(batch, device=cov.times.device), earlier]
        before = torch.cat([before, cov.static], dim=-1)
        self.c0 = torch.where(self.forward[:, None], c[self.series], before[self.series])

    def start(self, z0: torch.Tensor) -> torch.Tensor:
        """``z0 (R, latent)`` after the doses given at exactly time 0."""
        if self.dose_jump is None:
            return z0
        return self.dose_jump(z0, self.dose0[self.series].to(z0.dtype))

    def jump(self, rows: torch.Tensor, index: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The state ``(H, D)`` of rows ``rows`` just past their break ``index``."""
        series, k = self.series[rows], self.change[rows, index]
        forward = self.forward[rows]
        # past change point k the held inputs are its own going forward, the previous ones
        # going backward
        held = self.cov.held[series, torch.where(forward, k, (k - 1).clamp(min=0))]
        c = torch.cat([held, self.cov.static[series]], dim=-1).to(y.dtype)
        d, n_c = self.latent_dim, c.shape[-1]
        z = y[:, :d]
        if self.dose_jump is not None:  # every row runs forward (checked)
            z = self.dose_jump(z, self.cov.doses[series, k].to(y.dtype))
        return torch.cat([z, c, y[:, d + n_c :]], dim=-1)


def check_covariates(decoder, covariates: CovariateBatch | None, batch: int) -> None:
    """Refuse covariates that do not match what ``decoder`` reads (its ``n_held``,
    ``n_impulse``, ``n_static``), or their absence when it reads some."""
    sizes = (decoder.n_held, decoder.n_impulse, decoder.n_static)
    if covariates is None:
        if any(sizes):
            raise ValueError(
                f"this decoder reads covariates ({sizes[0]} held inputs, {sizes[1]} impulse "
                f"inputs, {sizes[2]} static features); the batch carries none"
            )
        return
    got = (covariates.n_held, covariates.n_impulse, covariates.n_static)
    if got != sizes:
        raise ValueError(
            f"the batch's covariates have {got[0]} held inputs, {got[1]} impulse inputs and "
            f"{got[2]} static features; this decoder reads {sizes[0]}, {sizes[1]} and "
            f"{sizes[2]}"
        )
    if covariates.static.shape[0] != batch:
        raise ValueError(
            f"the covariates cover {covariates.static.shape[0]} series, the batch {batch}"
        )
