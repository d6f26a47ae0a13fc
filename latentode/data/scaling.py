"""`TimeScaler`: user time units ⇄ the model's time axis, fitted on training data and stored."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from latentode._validation import check_choice, check_real
from latentode.data.series import Series

__all__ = ["ORIGINS", "TimeScaler"]

ORIGINS = ("series", "global")


class TimeScaler:
    """Map times to ``(t - origin) / scale`` for the ODE, and back.

    ODE solvers and learned dynamics behave best on times of order one: raw epochs in seconds
    (1e9) or spans of 1e6 hours make tolerances meaningless and are a known source of NaNs.

    Args:
        origin: Where each series' time 0 is.

            - ``"series"`` (default): each series counts from its own first observation, so
              series that start at different dates share dynamics in time-since-start.
            - ``"global"``: every series counts from the earliest time in the training data, so
              absolute time (season, calendar) is kept.
        scale: Time units per model time unit. ``None`` (default) learns it in :meth:`fit` as
            the longest span from origin to last observation over the training series, so
            training times land in ``[0, 1]``.

    Attributes:
        scale_: The fitted scale (float, > 0).
        global_origin_: The fitted global origin (``origin="global"``), else None.

    Example:
        >>> scaler = TimeScaler().fit(series)          # doctest: +SKIP
        >>> scaled = scaler.transform(s.times, scaler.origins([s])[0])  # doctest: +SKIP
    """

    def __init__(
        self, origin: Literal["series", "global"] = "series", scale: float | None = None
    ) -> None:
        self.origin = origin
        self.scale = scale

    def fit(self, series: Sequence[Series]) -> TimeScaler:
        """Learn the origin (global mode) and the scale from training series; returns self."""
        check_choice("origin", self.origin, ORIGINS)
        check_real("scale", self.scale, positive=True, allow_none=True)
        if len(series) == 0:
            raise ValueError("TimeScaler.fit needs at least one series; got none")
        firsts = np.array([s.times[0] for s in series], dtype=np.float64)
        lasts = np.array([s.times[-1] for s in series], dtype=np.float64)
        self.global_origin_ = float(firsts.min()) if self.origin == "global" else None
        if self.scale is not None:
            self.scale_ = float(self.scale)
        else:
            starts = firsts if self.global_origin_ is None else self.global_origin_
            span = float(np.max(lasts - starts))
            # All series of one observation: no span to learn from; keep the user's unit.
            self.scale_ = span if span > 0 else 1.0
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "scale_"):
            raise RuntimeError("this TimeScaler is not fitted yet; call fit(series) first")

    def origins(self, series: Sequence[Series]) -> np.ndarray:
        """``(n_series,)`` float64 origin of each series, in user units."""
        self._check_fitted()
        if self.global_origin_ is not None:
            return np.full(len(series), self.global_origin_, dtype=np.float64)
        return np.array([s.times[0] for s in series], dtype=np.float64)

    def transform(self, times: np.ndarray, origin: np.ndarray | float) -> np.ndarray:
        """User-unit times → model times. ``origin`` broadcasts against ``times``."""
        self._check_fitted()
        return (np.asarray(times, dtype=np.float64) - origin) / self.scale_

    def inverse_transform(self, scaled: np.ndarray, origin: np.ndarray | float) -> np.ndarray:
        """Model times → user-unit times. ``origin`` broadcasts against ``scaled``."""
        self._check_fitted()
        return np.asarray(scaled, dtype=np.float64) * self.scale_ + origin

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable parameters and fitted state."""
        self._check_fitted()
        return {
            "origin": self.origin,
            "scale": self.scale,
            "scale_": self.scale_,
            "global_origin_": self.global_origin_,
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> TimeScaler:
        """Rebuild a fitted scaler from :meth:`to_dict` output; unknown or missing keys raise."""
        expected = {"origin", "scale", "scale_", "global_origin_"}
        if set(state) != expected:
            raise ValueError(
                f"a TimeScaler state needs exactly the keys {sorted(expected)}; "
                f"missing {sorted(expected - set(state))}, unknown {sorted(set(state) - expected)}"
            )
        scaler = cls(origin=state["origin"], scale=state["scale"])
        check_choice("origin", scaler.origin, ORIGINS)
        scaler.scale_ = check_real("scale_", state["scale_"], positive=True)
        scaler.global_origin_ = check_real(
            "global_origin_", state["global_origin_"], allow_none=True
        )
        if (scaler.global_origin_ is None) != (scaler.origin == "series"):
            raise ValueError("`global_origin_` must be set exactly when origin='global'")
        return scaler

    def __repr__(self) -> str:
        fitted = f", scale_={self.scale_:g}" if hasattr(self, "scale_") else ""
        return f"TimeScaler(origin={self.origin!r}, scale={self.scale!r}{fitted})"
