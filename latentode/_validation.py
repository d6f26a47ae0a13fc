"""Argument checks shared by every layer.

Pure Python on purpose: ``latentode.core`` uses these and must import without pandas,
scikit-learn or Lightning. Every message follows one shape: what was expected, what was found,
and the fix when there is one.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from numbers import Integral, Real
from typing import Any

__all__ = [
    "check_bool",
    "check_choice",
    "check_int",
    "check_real",
    "format_choices",
]


def format_choices(choices: Iterable[Any]) -> str:
    """Render valid options as ``'a', 'b', 'c'`` (sorted when the options are strings)."""
    items = list(choices)
    if all(isinstance(c, str) for c in items):
        items = sorted(items)
    return ", ".join(repr(c) for c in items)


def check_choice(name: str, value: Any, choices: Collection[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise a ValueError listing them."""
    if isinstance(value, str) and value in choices:
        return value
    if not isinstance(value, str) and any(value is c or value == c for c in choices):
        return value
    raise ValueError(f"`{name}` must be one of {format_choices(choices)}; got {value!r}")


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is a real ``bool`` (not 0/1, not a string)."""
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be True or False; got {value!r} ({type(value).__name__})")
    return value


def check_int(
    name: str,
    value: Any,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    """Return ``value`` as an ``int`` after checking its type and bounds.

    Booleans are refused: ``True`` as a step count is always a mistake.
    """
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"`{name}` must be an integer; got {value!r} ({type(value).__name__})")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be at least {minimum}; got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"`{name}` must be at most {maximum}; got {value}")
    return value


def check_real(
    name: str,
    value: Any,
    *,
    positive: bool = False,
    nonnegative: bool = False,
    allow_none: bool = False,
) -> float | None:
    """Return ``value`` as a finite ``float`` after checking its type and sign."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, Real):
        expected = "a real number or None" if allow_none else "a real number"
        raise TypeError(f"`{name}` must be {expected}; got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be finite; got {value}")
    if positive and value <= 0:
        raise ValueError(f"`{name}` must be > 0; got {value}")
    if nonnegative and value < 0:
        raise ValueError(f"`{name}` must be >= 0; got {value}")
    return value
