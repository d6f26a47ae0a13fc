"""`FlowRNNEncoder`: the ODE-RNN with a neural flow between observations instead of a solver."""

from __future__ import annotations

import torch

from latentode._validation import check_choice
from latentode.core.flows import FLOWS, make_flow
from latentode.encoders.base import Encoder

__all__ = ["FlowRNNEncoder"]


class FlowRNNEncoder(Encoder):
    """Between two observations the state moves by a neural flow, ``h ← F(Δt, h)``.

    Where the ODE-RNN integrates a learned vector field over each gap (fixed steps), the flow
    maps the state across the gap in one evaluation (Biloš et al. 2021): ``F(0, h) = h``, so a
    zero gap leaves the state exactly as it was, and ``F(Δt, ·)`` is invertible. Going
    backwards in time the gaps are negative; the flow is defined for both signs. At the first
    observation the state is carried on to time 0 the same way.

    Args:
        n_features: Features per observation.
        latent_dim: Size of ``z0``.
        hidden_dim: State size. Default 32.
        flow: ``"coupling"`` (default), ``"resnet"`` or ``"gru"``.
        field_width: Width of the flow's networks. Default 32.
        field_depth: Residual blocks in each. Default 1.
        n_layers: Flow layers composed. Default 1.
        n_static: Size of a per-series input read at every observation. Default 0.
        n_inputs: Size of a per-observation input (known inputs). Default 0.
    """

    def __init__(
        self,
        n_features: int,
        latent_dim: int,
        hidden_dim: int = 32,
        *,
        flow: str = "coupling",
        field_width: int = 32,
        field_depth: int = 1,
        n_layers: int = 1,
        n_static: int = 0,
        n_inputs: int = 0,
    ) -> None:
        super().__init__(n_features, latent_dim, hidden_dim, n_static=n_static, n_inputs=n_inputs)
        self.flow = make_flow(
            check_choice("flow", flow, FLOWS),
            hidden_dim,
            width=field_width,
            depth=field_depth,
            n_layers=n_layers,
        )

    def evolve(self, h: torch.Tensor, t_from: torch.Tensor, t_to: torch.Tensor) -> torch.Tensor:
        return self.flow(t_to - t_from, h)

    def finish(self, h: torch.Tensor, t_first: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        return self.evolve(h, t_first, torch.zeros_like(t_first))
