"""`Encoder`: the shared backward walk over each series' own observations → q(z0 | x)."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn
from torch.distributions import Normal

from latentode._validation import check_int
from latentode.data.batch import IrregularBatch

__all__ = ["Encoder"]

_MIN_STD = 1e-4  # keeps q(z0) proper and the KL finite when the net pushes the std to 0


class Encoder(nn.Module, ABC):
    """Reads each series backwards in time and returns a diagonal Normal over ``z0``.

    The walk goes over positions, not the batch's union of times: step ``j`` looks at the
    ``j``-th observation of every series at once, so a batch costs ``max_obs`` steps. A
    position with nothing observed (missing in every feature, or padding) leaves the state
    exactly as it was; the next observed position measures its gap ``Δt`` from the last
    *observed* one, so inserting fully masked rows anywhere changes nothing.

    Subclasses supply :meth:`evolve`, how the state moves between two observation times
    (identity for a GRU, an ODE for the ODE-RNN). ``z0`` is the latent state at time 0.

    Args:
        n_features: Features per observation.
        latent_dim: Size of ``z0``.
        hidden_dim: Size of the recurrent state.
    """

    def __init__(self, n_features: int, latent_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.n_features = check_int("n_features", n_features, minimum=1)
        self.latent_dim = check_int("latent_dim", latent_dim, minimum=1)
        self.hidden_dim = check_int("hidden_dim", hidden_dim, minimum=1)
        # input: values (masked), mask, Δt to the later observation
        self.cell = nn.GRUCell(2 * n_features + 1, hidden_dim)
        self.to_posterior = nn.Linear(hidden_dim, 2 * latent_dim)

    @abstractmethod
    def evolve(self, h: torch.Tensor, t_from: torch.Tensor, t_to: torch.Tensor) -> torch.Tensor:
        """Move ``h (batch, hidden)`` from ``t_from`` to ``t_to`` (both ``(batch,)``)."""

    def finish(self, h: torch.Tensor, t_first: torch.Tensor) -> torch.Tensor:
        """Last move, from the first observation time ``t_first (batch,)`` to time 0."""
        return h

    def forward(self, batch: IrregularBatch) -> Normal:
        """``batch`` → ``Normal`` with ``loc`` and ``scale`` of shape ``(batch, latent_dim)``."""
        values = batch.values * batch.mask  # garbage under the mask never enters
        observed = batch.mask.amax(dim=-1) > 0  # (batch, max_obs): anything observed there
        observed = observed & batch.position_mask
        if not bool(observed.any(dim=1).all()):
            empty = torch.nonzero(~observed.any(dim=1)).flatten().tolist()
            raise ValueError(
                f"series at batch rows {empty[:5]} have no observed value to encode; drop them "
                "or give each series at least one observation"
            )
        positions = torch.arange(batch.max_obs, device=batch.device)
        # time of each series' last observed position: where the backward walk starts
        last = (observed * (positions + 1)).argmax(dim=1)  # (batch,)
        t_state = batch.times.gather(1, last.unsqueeze(1)).squeeze(1)  # (batch,)
        h = values.new_zeros(batch.batch_size, self.hidden_dim)
        for j in range(batch.max_obs - 1, -1, -1):
            here = observed[:, j]  # (batch,)
            t_j = batch.times[:, j]
            # rows without an observation here keep both their state and their clock
            t_to = torch.where(here, t_j, t_state)
            h = self.evolve(h, t_state, t_to)
            step_in = torch.cat(
                [values[:, j], batch.mask[:, j], (t_state - t_to).unsqueeze(-1)], dim=-1
            )  # (batch, 2 * n_features + 1)
            h = torch.where(here.unsqueeze(-1), self.cell(step_in, h), h)
            t_state = t_to
        h = self.finish(h, t_state)
        mean, raw_std = self.to_posterior(h).chunk(2, dim=-1)  # 2 × (batch, latent_dim)
        return Normal(mean, nn.functional.softplus(raw_std) + _MIN_STD)
