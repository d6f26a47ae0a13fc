"""`ResidualBlock`: the pre-activation residual unit that every vector field is built from."""

from __future__ import annotations

import torch
from torch import nn

from latentode._validation import check_bool, check_int
from latentode.core.layers import make_activation, make_norm

__all__ = ["ResidualBlock"]


class ResidualBlock(nn.Module):
    """Pre-activation residual block ``h + W·act(norm(h)) + b`` (He et al. 2016, identity mappings).

    The residual branch ``increment(h)`` is exactly what an explicit-Euler step of
    ``dh/dt = increment(h)`` with step 1 would add, which is the observation latentode is built on.

    Args:
        width: Feature size of ``h``; input and output shapes are ``(..., width)``.
        activation: Name from :data:`latentode.core.layers.ACTIVATIONS`. Default ``"tanh"``.
        norm: Name from :data:`latentode.core.layers.NORMS`. Default ``"layer"``.
        zero_init: Start the last linear layer at zero, so the block is the identity at
            initialisation (a trainable network of such blocks starts as the identity map).
    """

    def __init__(
        self,
        width: int,
        *,
        activation: str = "tanh",
        norm: str = "layer",
        zero_init: bool = False,
    ) -> None:
        super().__init__()
        width = check_int("width", width, minimum=1)
        self.norm = make_norm(norm, width)
        self.activation = make_activation(activation)
        self.linear = nn.Linear(width, width)
        if check_bool("zero_init", zero_init):
            nn.init.zeros_(self.linear.weight)
            nn.init.zeros_(self.linear.bias)

    def increment(self, h: torch.Tensor) -> torch.Tensor:
        """The residual branch alone: ``(..., width) -> (..., width)``."""
        # .forward, not __call__: see VectorField.forward (this runs at every solver stage)
        return self.linear.forward(self.activation.forward(self.norm.forward(h)))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``(..., width) -> (..., width)``."""
        return h + self.increment(h)
