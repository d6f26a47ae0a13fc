"""Seeds: every random draw of a fitted model comes from its seed and a series id."""

from __future__ import annotations

import hashlib
from collections.abc import Hashable
from numbers import Integral
from typing import Any

import numpy as np

__all__ = ["MAX_SEED", "as_seed", "series_seed"]

MAX_SEED = 2**63  # seeds are kept below this; larger ints are hashed into range


def as_seed(random_state: Any, name: str = "random_state") -> int:
    """An int seed below 2**63 from an int, None (fresh entropy) or a numpy Generator.

    Ints up to 2**63 - 1 are used as they are; larger ones (numpy takes any size, torch only
    64 bits) are hashed into range, reproducibly.
    """
    if random_state is None:
        return int(np.random.SeedSequence().entropy % (2**63))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    if isinstance(random_state, Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"`{name}` must be >= 0; got {random_state}")
        if random_state < MAX_SEED:
            return int(random_state)
        # torch seeds are 64-bit: a larger int is hashed to 63 bits, as reproducibly
        words = np.random.SeedSequence(int(random_state)).generate_state(2, np.uint32)
        return (int(words[0]) << 32 | int(words[1])) % MAX_SEED
    raise TypeError(
        f"`{name}` must be an int, None or a numpy.random.Generator; got "
        f"{random_state!r} ({type(random_state).__name__})"
    )


def series_seed(series_id: Hashable, salt: int) -> int:
    """A seed from a series id and a salt, stable across processes (unlike ``hash``)."""
    digest = hashlib.sha256(f"{salt}:{type(series_id).__name__}:{series_id!r}".encode())
    return int.from_bytes(digest.digest()[:8], "little") % (2**63)
