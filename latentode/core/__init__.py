"""The shared residual/ODE block core.

A residual block ``h + f(h)`` is one explicit-Euler step of ``dh/dt = f(h, t)``. This package
holds that vector field, its discrete (:class:`ResNet`) and continuous (:class:`ODEBlock`) uses,
and :func:`solve`, the only caller of torchdiffeq. It imports neither pandas, scikit-learn nor
Lightning.
"""

from latentode.core.integral import IntegralField
from latentode.core.layers import ACTIVATIONS, NORMS
from latentode.core.ode_block import ODEBlock
from latentode.core.residual import ResidualBlock
from latentode.core.resnet import ResNet
from latentode.core.solver import (
    ADAPTIVE_METHODS,
    FIXED_METHODS,
    METHODS,
    ODESolution,
    SolverConfig,
    SolverError,
    SolveStats,
    State,
    solve,
)
from latentode.core.vector_field import VectorField

__all__ = [
    "ACTIVATIONS",
    "ADAPTIVE_METHODS",
    "FIXED_METHODS",
    "METHODS",
    "NORMS",
    "IntegralField",
    "ODEBlock",
    "ODESolution",
    "ResNet",
    "ResidualBlock",
    "SolveStats",
    "SolverConfig",
    "SolverError",
    "State",
    "VectorField",
    "solve",
]
