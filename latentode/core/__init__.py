"""The shared residual/ODE block core.

A residual block ``h + f(h)`` is one explicit-Euler step of ``dh/dt = f(h, t)``. This package
holds that vector field, its discrete (:class:`ResNet`) and continuous (:class:`ODEBlock`) uses,
and :func:`solve` / :func:`solve_rows`, the only callers of torchdiffeq. It imports neither
pandas, scikit-learn nor Lightning.
"""

from latentode.core.controlled import ControlledField, DoseJump, InputGain
from latentode.core.integral import IntegralField
from latentode.core.layers import ACTIVATIONS, NORMS
from latentode.core.ode_block import ODEBlock
from latentode.core.residual import ResidualBlock
from latentode.core.resnet import ResNet
from latentode.core.rowwise import ROW_METHODS, RowSolution, solve_rows
from latentode.core.solver import (
    ADAPTIVE_METHODS,
    DEFAULT_STEP_SIZE,
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
    "DEFAULT_STEP_SIZE",
    "FIXED_METHODS",
    "METHODS",
    "NORMS",
    "ROW_METHODS",
    "ControlledField",
    "DoseJump",
    "InputGain",
    "IntegralField",
    "ODEBlock",
    "ODESolution",
    "ResNet",
    "ResidualBlock",
    "RowSolution",
    "SolveStats",
    "SolverConfig",
    "SolverError",
    "State",
    "VectorField",
    "solve",
    "solve_rows",
]
