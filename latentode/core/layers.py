"""Name → class registries for the activations and normalisations the blocks accept."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from latentode._validation import check_choice

__all__ = ["ACTIVATIONS", "NORMS", "make_activation", "make_norm"]

# Smooth activations first: an ODE vector field should be Lipschitz and, for adaptive solvers,
# smooth, so tanh/softplus/silu are the usual choices; relu is allowed for ResNet work.
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "tanh": nn.Tanh,
    "softplus": nn.Softplus,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "relu": nn.ReLU,
}


def _identity(width: int) -> nn.Module:
    return nn.Identity()


# BatchNorm is deliberately absent: it couples the series in a batch, so a series' dynamics would
# depend on its batch-mates and on train/eval mode, and the adjoint would differentiate a different
# function from the one that was solved.
NORMS: dict[str, Callable[[int], nn.Module]] = {
    "layer": nn.LayerNorm,
    "none": _identity,
}


def make_activation(name: str) -> nn.Module:
    """Instantiate the activation registered as ``name``."""
    return ACTIVATIONS[check_choice("activation", name, ACTIVATIONS)]()


def make_norm(name: str, width: int) -> nn.Module:
    """Instantiate the normalisation registered as ``name`` for feature size ``width``."""
    return NORMS[check_choice("norm", name, NORMS)](width)
