"""Predictive bands that hold their level: noise fitted on held-out points, and its audit.

After training, :func:`held_out_points` hides points of series the model was not fitted on
(the validation series), in two ways a user predicts: interior points (interpolation) and the
last 30% of each series' span (extrapolation). The model predicts them from the rest; the
residuals, the spread of the decoded curves and each point's distance to the nearest
conditioning observation then

- fit the predictive noise (:class:`~latentode.heads.predictive.PredictiveNoise`),
- measure the coverage of the resulting bands (:func:`calibration_table`, the estimator's
  ``calibration_``), and
- for the opt-in split-conformal step, give per-feature, per-task factors that widen or
  narrow the bands so that the 90% band covers 90% of these points (:func:`conformal_factors`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
import torch

from latentode.data.collate import SeriesItem, collate
from latentode.model import LatentODEModel

__all__ = [
    "TASK_BANDS",
    "HeldOutPoints",
    "calibration_table",
    "conformal_factors",
    "held_out_points",
]

TASK_BANDS = ("interpolation", "extrapolation")
"""Where a predicted time lies: inside a series' observed window, or past its last time."""

OBSERVED = len(TASK_BANDS)
"""The band of conditioning points themselves (distance 0): they anchor the noise at an
observed time, but as in-sample points they count in no coverage."""

_INTERIOR_SHARE = 0.25  # interior points hidden per series (as latentode.evaluate.compare)
_EXTRAP_CUT = 0.7  # the last 30% of each span is forecast
_CHUNK = 64  # series per forward pass


@dataclass(frozen=True)
class HeldOutPoints:
    """Pooled held-out entries of some series, standardised.

    Attributes:
        values: ``(n,)`` observed values.
        curves: ``(n_samples, n)`` decoded curves there, one per posterior sample.
        distance: ``(n,)`` distance (model time) to the nearest conditioning observation.
        feature: ``(n,)`` long, the entry's feature.
        band: ``(n,)`` long, index into :data:`TASK_BANDS`, or :data:`OBSERVED` for a
            conditioning point itself.
    """

    values: torch.Tensor
    curves: torch.Tensor
    distance: torch.Tensor
    feature: torch.Tensor
    band: torch.Tensor

    @property
    def residuals(self) -> torch.Tensor:
        return self.values - self.curves.mean(0)

    @property
    def spread(self) -> torch.Tensor:
        return self.curves.var(0, unbiased=False)


def _observed_rows(item: SeriesItem) -> torch.Tensor:
    return torch.nonzero(item.mask.amax(-1) > 0).flatten()


def _split(item: SeriesItem, band: int, generator: torch.Generator) -> tuple | None:
    """(conditioning, target) items of one series for one task band, or None if too short."""
    rows = _observed_rows(item)
    if rows.numel() < 3:
        return None
    hidden = torch.zeros(item.times.shape[0], dtype=torch.bool)
    if band == 0:
        interior = rows[1:-1]
        k = max(1, round(_INTERIOR_SHARE * interior.numel()))
        hidden[interior[torch.randperm(interior.numel(), generator=generator)[:k]]] = True
    else:
        t = item.times
        cut = t[rows[0]] + _EXTRAP_CUT * (t[rows[-1]] - t[rows[0]])
        hidden[rows[t[rows] > cut]] = True
        if not bool(hidden.any()) or bool(hidden[rows].all()):
            return None
    keep = ~hidden & (item.mask.amax(-1) > 0)
    cond = SeriesItem(item.index, item.times[keep], item.values[keep], item.mask[keep])
    target = SeriesItem(item.index, item.times[hidden], item.values[hidden], item.mask[hidden])
    return cond, target


@torch.no_grad()
def held_out_points(
    model: LatentODEModel,
    items: Sequence[SeriesItem],
    *,
    n_samples: int = 32,
    seed: int = 0,
) -> HeldOutPoints | None:
    """Hide points of ``items`` in both task bands and predict them with ``model``.

    Returns None when no series has enough points (three observed rows) to hide any.
    """
    generator = torch.Generator().manual_seed(seed)
    parts: list[tuple[torch.Tensor, ...]] = []
    for band in range(len(TASK_BANDS)):
        pairs = [p for p in (_split(it, band, generator) for it in items) if p is not None]
        for start in range(0, len(pairs), _CHUNK):
            chunk = pairs[start : start + _CHUNK]
            cond, target = collate([c for c, _ in chunk]), collate([t for _, t in chunk])
            q, anchor = model.encode(cond)
            eps = torch.randn(
                (n_samples, *q.loc.shape), generator=generator, dtype=q.loc.dtype
            )  # (S, B, latent)
            z0 = q.loc + q.scale * eps
            curves = model.decode(z0, target.times, anchor)  # (S, B, T, F)
            distance = cond.distance_to_observed(target.times)  # (B, T, F)
            parts.append(_entries(target, curves, distance, band))
            if band == 0:  # the conditioning points themselves: the noise at distance 0
                at_cond = model.decode(z0, cond.times, anchor)  # (S, B, n_cond, F)
                parts.append(_entries(cond, at_cond, torch.zeros_like(cond.values), OBSERVED))
    if not parts:
        return None
    values, curves, distance, feature, band = (
        torch.cat([p[i] for p in parts], dim=-1) for i in range(5)
    )
    return HeldOutPoints(values.double(), curves.double(), distance.double(), feature, band)


def _entries(
    batch: Any, curves: torch.Tensor, distance: torch.Tensor, band: int
) -> tuple[torch.Tensor, ...]:
    """The observed entries of ``batch``: values, curves ``(S, n)``, distance, feature, band."""
    seen = batch.mask > 0  # (B, T, F)
    feature = torch.arange(batch.n_features).expand_as(seen)
    return (
        batch.values[seen],
        curves[:, seen],
        distance[seen],
        feature[seen],
        torch.full((int(seen.sum()),), band, dtype=torch.long),
    )


def _held_out_only(points: HeldOutPoints, std: torch.Tensor) -> tuple[HeldOutPoints, torch.Tensor]:
    """The points (and their noise std) that were hidden: conditioning points are in-sample."""
    keep = points.band < OBSERVED
    kept = HeldOutPoints(*(getattr(points, f.name)[..., keep] for f in fields(points)))
    return kept, std[keep]


def predictive_quantiles(
    points: HeldOutPoints,
    std: torch.Tensor,
    levels: Sequence[float],
    dof: torch.Tensor,
    seed: int = 0,
) -> torch.Tensor:
    """Quantiles ``(len(levels), n)`` of the curves plus each point's predictive noise.

    The noise at a point is its scale ``std (n,)`` times a Student t with its feature's
    ``dof (n_features,)`` degrees of freedom.
    """
    rng = np.random.default_rng(seed)
    noise = rng.standard_t(dof.double().numpy()[points.feature.numpy()], size=points.curves.shape)
    draws = points.curves + torch.as_tensor(noise, dtype=points.curves.dtype) * std  # (S, n)
    return torch.quantile(draws, torch.tensor(levels, dtype=draws.dtype), dim=0)


def calibration_table(
    points: HeldOutPoints,
    std: torch.Tensor,
    feature_names: Sequence[str],
    factors: np.ndarray | None,
    dof: torch.Tensor,
) -> pd.DataFrame:
    """Coverage of the central 50% and 90% bands, per feature and task band.

    ``std (n,)`` is each point's predictive noise scale and ``dof (n_features,)`` its t's
    degrees of freedom; ``factors (n_features, n_bands)`` widen the bands around their median
    (conformal), when given.
    """
    points, std = _held_out_only(points, std)
    q = predictive_quantiles(points, std, (0.05, 0.25, 0.5, 0.75, 0.95), dof)  # (5, n)
    if factors is not None:
        k = torch.as_tensor(factors, dtype=q.dtype)[points.feature, points.band]  # (n,)
        q = q[2] + k * (q - q[2])
    x = points.values
    in90 = ((x >= q[0]) & (x <= q[4])).double()
    in50 = ((x >= q[1]) & (x <= q[3])).double()
    rows = []
    for b, band in enumerate(TASK_BANDS):
        for f, name in enumerate([*feature_names, "all"]):
            sel = points.band == b
            if name != "all":
                sel = sel & (points.feature == f)
            n = int(sel.sum())
            rows.append(
                {
                    "task": band,
                    "feature": name,
                    "n": n,
                    "coverage_50": float(in50[sel].mean()) if n else np.nan,
                    "coverage_90": float(in90[sel].mean()) if n else np.nan,
                }
            )
    return pd.DataFrame(rows)


def conformal_factors(
    points: HeldOutPoints, std: torch.Tensor, n_features: int, dof: torch.Tensor
) -> np.ndarray:
    """Split-conformal widening ``(n_features, n_bands)`` of the 90% band around the median.

    For each feature and task band, the points' scores (how many times its side of the
    model's 90% band, measured from the median, must be stretched to reach the point) give
    the factor as their ``ceil((n + 1) 0.9) / n`` empirical quantile: with it, the 90% band
    covers at least 90% of exchangeable new points. A cell with fewer
    than 10 points borrows the factor of its feature over both bands (1 if that too is short).
    """
    points, std = _held_out_only(points, std)  # the same draws as calibration_table's
    levels = (0.05, 0.25, 0.5, 0.75, 0.95)  # as calibration_table draws them
    q = predictive_quantiles(points, std, levels, dof)[[0, 2, 4]]  # (3, n)
    x = points.values
    # how far each band side must stretch to reach x: the band median ± k (side) holds x
    # exactly when k ≥ score, whichever side x falls on
    below = (q[1] - x) / (q[1] - q[0]).clamp_min(1e-12)
    above = (x - q[1]) / (q[2] - q[1]).clamp_min(1e-12)
    score = torch.maximum(below, above).clamp_min(0)  # (n,)

    def factor(sel: torch.Tensor) -> float | None:
        n = int(sel.sum())
        if n < 10:
            return None
        level = min(1.0, np.ceil((n + 1) * 0.9) / n)
        return float(torch.quantile(score[sel], level))

    out = np.ones((n_features, len(TASK_BANDS)))
    for f in range(n_features):
        overall = factor(points.feature == f)
        for b in range(len(TASK_BANDS)):
            cell = factor((points.feature == f) & (points.band == b))
            out[f, b] = cell if cell is not None else (overall if overall is not None else 1.0)
    return out
