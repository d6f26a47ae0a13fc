"""Feature transforms: positive and bounded features, modelled where they are unbounded.

A concentration cannot be negative and a fraction lives in (0, 1), but a Gaussian band around
a latent curve knows neither. ``LatentODE(transforms={"conc": "log"})`` models ``log(conc)``
instead: the transform is applied to the frame before scaling, and inverted on every output
(means, quantiles, samples), so all of them respect the feature's domain. Quantiles map
exactly (the transforms are increasing); means are those of the back-transformed samples.

Built-in transforms (:data:`TRANSFORMS`): ``"log"`` for values > 0, ``"logit"`` for values in
(0, 1). Any increasing pair of numpy functions ``(forward, inverse)`` works too, but cannot be
saved (saving never writes code).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from latentode._validation import format_choices

__all__ = ["TRANSFORMS", "FeatureTransform"]

_Func = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class _Builtin:
    forward: _Func
    inverse: _Func
    log_slope: _Func  # log |d forward / dx|
    valid: _Func  # where the forward transform is defined
    domain: str


def _logit(x: np.ndarray) -> np.ndarray:
    return np.log(x) - np.log1p(-x)


def _expit(y: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * y))  # 1 / (1 + e^-y) without overflow


TRANSFORMS: dict[str, _Builtin] = {
    "log": _Builtin(np.log, np.exp, lambda x: -np.log(x), lambda x: x > 0, "> 0"),
    "logit": _Builtin(
        _logit,
        _expit,
        lambda x: -np.log(x) - np.log1p(-x),
        lambda x: (x > 0) & (x < 1),
        "strictly between 0 and 1",
    ),
}
"""Built-in transforms by name."""


def _plain(value: Any) -> Any:
    """A numpy scalar as a Python one, so messages read ``3``, not ``np.int64(3)``."""
    return value.item() if isinstance(value, np.generic) else value


class FeatureTransform:
    """Per-feature transforms of a frame's value columns, and their inverses on arrays.

    Args:
        spec: ``{feature: "log" | "logit" | (forward, inverse)}``; features not named are
            left alone.
        features: The model's features, in order.

    Raises:
        TypeError, ValueError: an unknown feature or transform, or a malformed pair.
    """

    def __init__(self, spec: Mapping[Hashable, Any] | None, features: Sequence[Hashable]) -> None:
        if spec is not None and not isinstance(spec, Mapping):
            raise TypeError(
                "`transforms` must be a dict {feature: 'log' | 'logit' | (forward, inverse)} or "
                f"None; got {type(spec).__name__}"
            )
        self.features = list(features)
        self.spec = dict(spec or {})
        unknown = [f for f in self.spec if f not in self.features]
        if unknown:
            raise ValueError(
                f"`transforms` names {unknown}, which are not features of the data "
                f"({self.features}); use the value columns' names"
            )
        self._parts: dict[int, tuple[_Func, _Func, _Func | None, _Func | None, str | None]] = {}
        for name, how in self.spec.items():
            j = self.features.index(name)
            if isinstance(how, str):
                if how not in TRANSFORMS:
                    raise ValueError(
                        f"`transforms[{name!r}]` must be one of {format_choices(TRANSFORMS)} or a "
                        f"(forward, inverse) pair of functions; got {how!r}"
                    )
                b = TRANSFORMS[how]
                self._parts[j] = (b.forward, b.inverse, b.log_slope, b.valid, b.domain)
            elif isinstance(how, tuple | list) and len(how) == 2 and all(callable(f) for f in how):
                self._parts[j] = (how[0], how[1], None, None, None)
            else:
                raise TypeError(
                    f"`transforms[{name!r}]` must be 'log', 'logit' or a (forward, inverse) pair "
                    f"of functions; got {how!r}"
                )

    @property
    def savable(self) -> bool:
        """Whether every transform is a built-in one (a function pair cannot be saved)."""
        return all(isinstance(how, str) for how in self.spec.values())

    def to_dict(self) -> dict[str, str]:
        """The built-in transforms by feature name, for the JSON settings."""
        if not self.savable:
            raise ValueError(
                "cannot save a model with a (forward, inverse) function transform: saving "
                "never writes code. Use a built-in transform ('log', 'logit') or refit after "
                "loading"
            )
        return {str(k): v for k, v in self.spec.items()}

    def apply(self, df: pd.DataFrame, id_col: Hashable, time_col: Hashable) -> pd.DataFrame:
        """A copy of ``df`` with each transformed feature replaced by its transform.

        NaN stays NaN (not observed). A value outside a built-in transform's domain, or one a
        function pair sends to ±inf or NaN, raises a ValueError naming the first rows.
        """
        if not self._parts:
            return df
        out = df.copy()
        for j, (forward, _, _, valid, domain) in self._parts.items():
            name = self.features[j]
            if name not in out.columns:
                continue  # the frame check downstream names the missing column
            x = pd.to_numeric(out[name], errors="coerce").to_numpy(dtype=np.float64)
            seen = ~np.isnan(x)
            bad = seen & ~valid(x) if valid is not None else np.zeros_like(seen)
            with np.errstate(all="ignore"):
                y = np.where(seen & ~bad, forward(np.where(seen & ~bad, x, 1.0)), np.nan)
            if valid is None:
                bad = seen & ~np.isfinite(y)
            if bad.any():
                rows = np.flatnonzero(bad)[:3]
                where = ", ".join(
                    f"series {_plain(out[id_col].iloc[r])!r} at {_plain(out[time_col].iloc[r])}: "
                    f"{x[r]:g}"
                    for r in rows
                )
                rule = f"must be {domain}" if domain else "must give finite transformed values"
                raise ValueError(
                    f"feature {name!r} is transformed with {self.spec[name]!r}, so its values "
                    f"{rule}; {int(bad.sum())} are not ({where}). Drop or correct those rows "
                    f"(set them to NaN for 'not observed'), or remove the transform"
                )
            out[name] = y
        return out

    def inverse(self, values: np.ndarray) -> np.ndarray:
        """Transformed values ``(..., n_features)`` back to the user's units."""
        if not self._parts:
            return values
        out = np.array(values, dtype=np.float64, copy=True)
        for j, (_, inverse, _, _, _) in self._parts.items():
            out[..., j] = inverse(out[..., j])
        return out

    def log_abs_slope(self, values: np.ndarray) -> np.ndarray:
        """``log |d transform / dx|`` at ``values (..., n_features)`` (0 for untransformed).

        For the density of the user's values: ``log p(x) = log p(transform(x)) + this``. A
        function pair is differentiated numerically (central differences).
        """
        out = np.zeros(np.shape(values))
        for j, (forward, _, log_slope, _, _) in self._parts.items():
            x = np.asarray(values, dtype=np.float64)[..., j]
            if log_slope is not None:
                out[..., j] = log_slope(x)
            else:
                h = 1e-6 * np.maximum(np.abs(x), 1.0)
                out[..., j] = np.log(np.abs((forward(x + h) - forward(x - h)) / (2 * h)))
        return out
