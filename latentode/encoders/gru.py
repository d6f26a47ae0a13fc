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
    """

    def __init__(self, n_features: int, latent_dim: int, hidden_dim: int = 32) -> None:
        super().__init__(n_features, latent_dim, hidden_dim)

    def evolve(self, h: torch.Tensor, t_from: torch.Tensor, t_to: torch.Tensor) -> torch.Tensor:
        return h
