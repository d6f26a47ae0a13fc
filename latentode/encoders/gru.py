"""`GRUEncoder`: a GRU over the observations, read backwards, with Δt as an input."""

from __future__ import annotations

import torch

from latentode.encoders.base import Encoder

__all__ = ["GRUEncoder"]


class GRUEncoder(Encoder):
    """The RNN baseline: the state does not move between observations; the GRU sees Δt.

    Args:
        n_features: Features per observation.
        latent_dim: Size of ``z0``.
        hidden_dim: GRU state size. Default 32.
        n_static: Size of a per-series input read at every step. Default 0.
        n_inputs: Size of a per-observation input (known inputs). Default 0.
    """

    def __init__(
        self,
        n_features: int,
        latent_dim: int,
        hidden_dim: int = 32,
        *,
        n_static: int = 0,
        n_inputs: int = 0,
    ) -> None:
        super().__init__(n_features, latent_dim, hidden_dim, n_static=n_static, n_inputs=n_inputs)

    def evolve(self, h: torch.Tensor, t_from: torch.Tensor, t_to: torch.Tensor) -> torch.Tensor:
        return h

    def finish(self, h: torch.Tensor, t_first: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        """One last cell step with nothing observed and the gap from ``t_first`` to time 0.

        z0 lives at time 0, but a series' first conditioning point may come later (a random
        subset of its points, or a global time origin); without this step the GRU could not
        know how far back z0 is.
        """
        empty = h.new_zeros(h.shape[0], 2 * self.n_features)  # no values, mask all 0
        quiet = h.new_zeros(h.shape[0], self.n_inputs)  # no inputs read at time 0
        return self.cell(torch.cat([empty, t_first.unsqueeze(-1), static, quiet], dim=-1), h)
