"""`TimeScaler`: user time units ⇄ the model's time axis, fitted on training data and stored."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from latentode._validation import check_choice, check_real
from latentode.data.series import Series

__all__ = ["ORIGINS", "FeatureScaler", "TimeScaler"]

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
        scale: Time units per model time unit. ``None`` (default) learns it in :meth:`fit`.
        gaps_per_unit: How :meth:`fit` learns the scale. ``None`` (default): the longest span
            from origin to last observation over the training series, so training times land
            in ``[0, 1]``. A number ``k``: one model time unit is ``k`` median gaps between
            consecutive observations (the median over training series of each series' mean
            gap), so the model's clock follows the data's resolution: dense series get long
            model windows, in which a learned vector field of order one has room to move, and
            sparse ones short windows.

    Attributes:
        scale_: The fitted scale (float, > 0).
        global_origin_: The fitted global origin (``origin="global"``), else None.

    Example:
        >>> scaler = TimeScaler().fit(series)          # doctest: +SKIP
        >>> scaled = scaler.transform(s.times, scaler.origins([s])[0])  # doctest: +SKIP
    """

    def __init__(
        self,
        origin: Literal["series", "global"] = "series",
        scale: float | None = None,
        gaps_per_unit: float | None = None,
    ) -> None:
        self.origin = origin
        self.scale = scale
        self.gaps_per_unit = gaps_per_unit

    def fit(self, series: Sequence[Series]) -> TimeScaler:
        """Learn the origin (global mode) and the scale from training series; returns self."""
        check_choice("origin", self.origin, ORIGINS)
        check_real("scale", self.scale, positive=True, allow_none=True)
        check_real("gaps_per_unit", self.gaps_per_unit, positive=True, allow_none=True)
        if len(series) == 0:
            raise ValueError("TimeScaler.fit needs at least one series; got none")
        firsts = np.array([s.times[0] for s in series], dtype=np.float64)
        lasts = np.array([s.times[-1] for s in series], dtype=np.float64)
        self.global_origin_ = float(firsts.min()) if self.origin == "global" else None
        starts = firsts if self.global_origin_ is None else self.global_origin_
        span = float(np.max(lasts - starts))
        counts = np.array([len(s.times) for s in series])
        if self.scale is not None:
            self.scale_ = float(self.scale)
        elif self.gaps_per_unit is not None and (counts > 1).any():
            several = counts > 1
            gaps = (lasts - firsts)[several] / (counts[several] - 1)  # each series' mean gap
            gap = float(np.median(gaps))
            self.scale_ = self.gaps_per_unit * gap if gap > 0 else (span if span > 0 else 1.0)
        else:
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
            "gaps_per_unit": self.gaps_per_unit,
            "scale_": self.scale_,
            "global_origin_": self.global_origin_,
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> TimeScaler:
        """Rebuild a fitted scaler from :meth:`to_dict` output; unknown or missing keys raise."""
        expected = {"origin", "scale", "scale_", "global_origin_"}
        optional = {"gaps_per_unit"}  # absent in models saved before it existed
        if not expected <= set(state) <= expected | optional:
            raise ValueError(
                f"a TimeScaler state needs exactly the keys {sorted(expected)} (and optionally "
                f"{sorted(optional)}); missing {sorted(expected - set(state))}, unknown "
                f"{sorted(set(state) - expected - optional)}"
            )
        scaler = cls(
            origin=state["origin"],
            scale=state["scale"],
            gaps_per_unit=state.get("gaps_per_unit"),
        )
        check_real("gaps_per_unit", scaler.gaps_per_unit, positive=True, allow_none=True)
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


class FeatureScaler:
    """Standardise each feature to mean 0 and std 1 over its *observed* training values.

    Unobserved entries (mask False) neither count in the statistics nor change: they stay 0.
    A feature that is constant in training keeps scale 1, so it maps to 0 and back exactly.

    Attributes:
        mean_: ``(n_features,)`` float64 means, fitted.
        scale_: ``(n_features,)`` float64 standard deviations (1 for constant features).

    Example:
        >>> scaler = FeatureScaler().fit(series)                       # doctest: +SKIP
        >>> scaled = [scaler.transform_series(s) for s in series]      # doctest: +SKIP
    """

    def fit(self, series: Sequence[Series], names: Sequence[str] | None = None) -> FeatureScaler:
        """Learn per-feature mean and std from the observed values of ``series``; returns self.

        Raises:
            ValueError: no series, or a feature never observed (``names`` names it).
        """
        if len(series) == 0:
            raise ValueError("FeatureScaler.fit needs at least one series; got none")
        values = np.concatenate([s.values for s in series])  # (total_obs, n_features)
        mask = np.concatenate([s.mask for s in series])
        counts = mask.sum(axis=0)  # (n_features,)
        if (counts == 0).any():
            missing = np.flatnonzero(counts == 0)
            labels = [names[i] if names is not None else f"#{i}" for i in missing]
            raise ValueError(
                f"feature(s) {', '.join(map(repr, labels))} are never observed in the training "
                "data, so they cannot be learned or scaled; drop those columns or add data"
            )
        # Squaring raw values overflows above ~1e154 and underflows below ~1e-154, so the
        # moments are taken of values divided by each feature's largest magnitude (a power of
        # two, so the division is exact) and scaled back: any finite data has a finite, nonzero
        # scale.
        magnitude = np.where(mask, np.abs(values), 0.0).max(axis=0)
        unit = np.exp2(np.floor(np.log2(np.where(magnitude > 0, magnitude, 1.0))))
        unit_values = np.where(mask, values / unit, 0.0)
        unit_mean = unit_values.sum(axis=0) / counts
        unit_var = (((unit_values - unit_mean) * mask) ** 2).sum(axis=0) / counts
        std = np.sqrt(unit_var) * unit
        self.mean_ = unit_mean * unit
        self.scale_ = np.where(std > 0, std, 1.0)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "scale_"):
            raise RuntimeError("this FeatureScaler is not fitted yet; call fit(series) first")

    def transform_series(self, s: Series) -> Series:
        """A copy of ``s`` with observed values standardised (unobserved stay 0)."""
        self._check_fitted()
        # x / scale - mean / scale rather than (x - mean) / scale: the difference of two values
        # near the float limit can overflow, the scaled terms cannot.
        with np.errstate(invalid="ignore", over="ignore"):
            values = np.where(s.mask, s.values / self.scale_ - self.mean_ / self.scale_, 0.0)
        return Series(s.id, s.times, values, s.mask)

    def inverse_transform(self, values: np.ndarray) -> np.ndarray:
        """Standardised values ``(..., n_features)`` back to the user's units."""
        self._check_fitted()
        return np.asarray(values, dtype=np.float64) * self.scale_ + self.mean_

    def inverse_transform_std(self, std: np.ndarray) -> np.ndarray:
        """A standard deviation ``(..., n_features)`` in standardised units → user units."""
        self._check_fitted()
        return np.asarray(std, dtype=np.float64) * self.scale_

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fitted state."""
        self._check_fitted()
        return {"mean_": self.mean_.tolist(), "scale_": self.scale_.tolist()}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> FeatureScaler:
        """Rebuild a fitted scaler from :meth:`to_dict` output; malformed state raises."""
        if not isinstance(state, dict) or set(state) != {"mean_", "scale_"}:
            raise ValueError(
                "a FeatureScaler state needs exactly the keys ['mean_', 'scale_']; got "
                f"{sorted(state) if isinstance(state, dict) else type(state).__name__}"
            )
        mean = np.asarray(state["mean_"], dtype=np.float64)
        scale = np.asarray(state["scale_"], dtype=np.float64)
        if mean.ndim != 1 or mean.shape != scale.shape or mean.size == 0:
            raise ValueError(
                f"`mean_` and `scale_` must be equal-length non-empty lists; got {mean.shape} "
                f"and {scale.shape}"
            )
        if not (np.isfinite(mean).all() and np.isfinite(scale).all() and (scale > 0).all()):
            raise ValueError("`mean_` must be finite and `scale_` finite and > 0")
        scaler = cls()
        scaler.mean_, scaler.scale_ = mean, scale
        return scaler

    def __repr__(self) -> str:
        fitted = f"n_features={self.mean_.size}" if hasattr(self, "mean_") else "unfitted"
        return f"FeatureScaler({fitted})"
