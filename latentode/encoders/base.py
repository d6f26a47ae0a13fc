"""`Encoder`: the shared backward walk over each series' own observations → q(z0 | x)."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn
from torch.distributions import Normal

from latentode._validation import check_int
from latentode.core.batch_rows import pad_rows
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
        n_static: Size of a per-series input that every step also reads (e.g. each series'
            level, see :class:`~latentode.decoders.SeriesLevel`). Default 0: none.
        n_inputs: Size of a per-observation input read beside the values (known inputs at
            each observation time). Default 0: none.
    """

    def __init__(
        self,
        n_features: int,
        latent_dim: int,
        hidden_dim: int,
        *,
        n_static: int = 0,
        n_inputs: int = 0,
    ) -> None:
        super().__init__()
        self.n_features = check_int("n_features", n_features, minimum=1)
        self.latent_dim = check_int("latent_dim", latent_dim, minimum=1)
        self.hidden_dim = check_int("hidden_dim", hidden_dim, minimum=1)
        self.n_static = check_int("n_static", n_static, minimum=0)
        self.n_inputs = check_int("n_inputs", n_inputs, minimum=0)
        # input: values (masked), mask, Δt to the later observation, the static input, the
        # known inputs at the observation
        self.cell = nn.GRUCell(2 * n_features + 1 + self.n_static + self.n_inputs, hidden_dim)
        self.to_posterior = nn.Linear(hidden_dim, 2 * latent_dim)

    @abstractmethod
    def evolve(self, h: torch.Tensor, t_from: torch.Tensor, t_to: torch.Tensor) -> torch.Tensor:
        """Move ``h (batch, hidden)`` from ``t_from`` to ``t_to`` (both ``(batch,)``)."""

    def finish(self, h: torch.Tensor, t_first: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        """Last move, from the first observation time ``t_first (batch,)`` to time 0.

        ``static`` is the ``(batch, n_static)`` per-series input (zero columns without one).
        """
        return h

    def forward(
        self,
        batch: IrregularBatch,
        static: torch.Tensor | None = None,
        inputs: torch.Tensor | None = None,
        present: torch.Tensor | None = None,
    ) -> Normal:
        """``batch`` → ``Normal`` with ``loc`` and ``scale`` of shape ``(batch, latent_dim)``.

        ``static`` is a ``(batch, n_static)`` input read at every step; required exactly when
        the encoder was built with ``n_static > 0``. ``inputs`` is ``(batch, max_obs,
        n_inputs)``, read at each observation; required exactly when ``n_inputs > 0``.
        ``present`` ``(batch, max_obs)`` bool marks positions to read although no value was
        observed there (events happened since the previous one); default none.
        """
        if (inputs is None) != (self.n_inputs == 0) or (
            inputs is not None and inputs.shape != (*batch.times.shape, self.n_inputs)
        ):
            raise ValueError(
                f"this encoder reads per-observation inputs of size {self.n_inputs}; got "
                f"{'none' if inputs is None else tuple(inputs.shape)} for a batch of "
                f"{tuple(batch.times.shape)}"
            )
        if (static is None) != (self.n_static == 0):
            raise ValueError(
                f"this encoder reads a static input of size {self.n_static}; got "
                f"{'none' if static is None else tuple(static.shape)}"
            )
        if static is None:
            static = batch.values.new_zeros(batch.batch_size, 0)
        elif static.shape != (batch.batch_size, self.n_static):
            raise ValueError(
                f"`static` must be (batch, n_static) = ({batch.batch_size}, {self.n_static}); "
                f"got {tuple(static.shape)}"
            )
        values = batch.values * batch.mask  # garbage under the mask never enters
        observed = batch.mask.amax(dim=-1) > 0  # (batch, max_obs): anything observed there
        if present is not None:
            observed = observed | present
        observed = observed & batch.position_mask
        if not bool(observed.any(dim=1).all()):
            empty = torch.nonzero(~observed.any(dim=1)).flatten().tolist()
            raise ValueError(
                f"series at batch rows {empty[:5]} have no observed value to encode; drop them "
                "or give each series at least one observation"
            )
        t_from, t_to = _walk_clock(batch.times, observed)  # 2 × (batch, max_obs)
        # Everything the cell reads that does not depend on the state, for all positions at
        # once: (batch, max_obs, 2 * n_features + 1 + n_static)
        fixed = static.unsqueeze(1).expand(-1, batch.max_obs, -1)  # (batch, max_obs, n_static)
        parts = [values, batch.mask, (t_from - t_to).unsqueeze(-1), fixed]
        if inputs is not None:
            parts.append(inputs.to(values.dtype))
        inputs = torch.cat(parts, dim=-1)
        here = observed.unsqueeze(-1)  # (batch, max_obs, 1)
        # A small batch is padded with copies of its first series, so that every series is
        # encoded bit for bit the same alone or among others (see core.batch_rows).
        inputs, here, t_from, t_to, static = (
            pad_rows(x) for x in (inputs, here, t_from, t_to, static)
        )
        h = values.new_zeros(inputs.shape[0], self.hidden_dim)
        for j in range(batch.max_obs - 1, -1, -1):
            h = self.evolve(h, t_from[:, j], t_to[:, j])
            h = torch.where(here[:, j], self.cell(inputs[:, j], h), h)
        # the walk ends at each series' first observed time
        h = self.finish(h, t_to[:, 0], static)
        out = self.to_posterior(h)[: batch.batch_size]  # (batch, 2 * latent_dim)
        mean, raw_std = out.chunk(2, dim=-1)  # 2 × (batch, latent_dim)
        return Normal(mean, nn.functional.softplus(raw_std) + _MIN_STD)


def _walk_clock(times: torch.Tensor, observed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Where the backward walk moves the state at each position, computed for all at once.

    Walking from the last position to the first, the state sits at the time of the latest
    observed position seen so far. At position ``j`` it moves from ``t_from[:, j]`` (the time
    of the next observed position after ``j``; the last observed time when there is none) to
    ``t_to[:, j]``: the position's own time where it is observed, else nowhere
    (``t_to == t_from``, so unobserved positions keep both state and clock).

    Args:
        times: ``(batch, max_obs)`` observation times.
        observed: ``(batch, max_obs)`` bool, anything observed at that position; every row has
            at least one True.

    Returns:
        ``(t_from, t_to)``, each ``(batch, max_obs)``.
    """
    batch, max_obs = times.shape
    positions = torch.arange(max_obs, device=times.device).expand(batch, max_obs)
    # index of the first observed position at or after j (max_obs where there is none)
    at_or_after = torch.where(observed, positions, max_obs)
    at_or_after = at_or_after.flip(1).cummin(dim=1).values.flip(1)  # (batch, max_obs)
    last = at_or_after.new_full((batch, 1), max_obs)
    after = torch.cat([at_or_after[:, 1:], last], dim=1)  # first observed position after j
    last_observed = (observed * (positions + 1)).argmax(dim=1, keepdim=True)  # (batch, 1)
    after = torch.where(after == max_obs, last_observed, after)
    t_from = times.gather(1, after)  # (batch, max_obs)
    t_to = torch.where(observed, times, t_from)
    return t_from, t_to
