"""latentode: latent-ODE models for irregularly sampled time series.

Public names are loaded on first use (PEP 562), so ``import latentode.core`` stays light: it
pulls in torch and torchdiffeq, never pandas, scikit-learn or Lightning.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "ODEBlock": "latentode.core",
    "ResidualBlock": "latentode.core",
    "ResNet": "latentode.core",
    "SolverConfig": "latentode.core",
    "SolverError": "latentode.core",
    "ODESolution": "latentode.core",
    "VectorField": "latentode.core",
    "solve": "latentode.core",
    "IrregularBatch": "latentode.data",
    "LatentODE": "latentode.estimator",
    "LongFormat": "latentode.data",
    "TimeScaler": "latentode.data",
    "make_periodic": "latentode.data",
    "make_spiral": "latentode.data",
}

__all__ = ["__version__", *sorted(_EXPORTS)]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from latentode.core import (
        ODEBlock,
        ODESolution,
        ResidualBlock,
        ResNet,
        SolverConfig,
        SolverError,
        VectorField,
        solve,
    )
    from latentode.data import (
        IrregularBatch,
        LongFormat,
        TimeScaler,
        make_periodic,
        make_spiral,
    )
    from latentode.estimator import LatentODE


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'latentode' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
