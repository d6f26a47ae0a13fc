"""Predictive bands that hold their level: noise fitted on held-out points, and its audit.

After training, :func:`held_out_points` hides points of series the model was not fitted on
(half of the validation series), in two ways a user predicts: interior points (interpolation)
and the last 20-50% of each series' span (extrapolation), over several rounds. The model
predicts them from the rest; the residuals, the spread of the decoded curves and each point's
distance to the nearest conditioning observation then

- fit the predictive noise (:class:`~latentode.heads.predictive.PredictiveNoise`),
- for the opt-in split-conformal step, give per-feature, per-task factors that widen or
  narrow the bands so that the 90% band covers 90% of these points (:func:`conformal_factors`),
- and measure the coverage of the resulting bands (:func:`calibration_table`), out of sample:
  :func:`calibrate` fits both steps on half of the series and counts on the other half, both
  ways round (the estimator's ``calibration_``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from latentode.data.collate import SeriesItem, collate, past_events
from latentode.heads.predictive import PredictiveNoise
from latentode.model import LatentODEModel

__all__ = [
    "TASK_BANDS",
    "Bands",
    "HeldOutPoints",
    "band_quantiles",
    "calibrate",
    "calibration_table",
    "conformal_factors",
    "fit_bands",
    "held_out_points",
]

TASK_BANDS = ("interpolation", "extrapolation")
"""Where a predicted time lies: inside a series' observed window, or past its last time."""

_INTERIOR_SHARE = 0.25  # interior points hidden per series (as latentode.evaluate.compare)
_EXTRAP_CUTS = (0.5, 0.6, 0.7, 0.8)  # shares of each span after which points are forecast
_CHUNK = 64  # series per forward pass


@dataclass(frozen=True)
class HeldOutPoints:
    """Pooled held-out entries of some series, standardised.

    Attributes:
        values: ``(n,)`` observed values.
        curves: ``(n_samples, n)`` decoded curves there, one per posterior sample.
        distance: ``(n,)`` distance (model time) to the nearest conditioning observation.
        feature: ``(n,)`` long, the entry's feature.
        band: ``(n,)`` long, index into :data:`TASK_BANDS`.
        series: ``(n,)`` long, the position of the entry's series in the items given.
    """

    values: torch.Tensor
    curves: torch.Tensor
    distance: torch.Tensor
    feature: torch.Tensor
    band: torch.Tensor
    series: torch.Tensor

    def subset(self, keep: torch.Tensor) -> HeldOutPoints:
        """The entries where ``keep (n,)`` is True."""
        return HeldOutPoints(*(getattr(self, f.name)[..., keep] for f in fields(self)))

    @property
    def mean_curve(self) -> torch.Tensor:
        return self.curves.mean(0)

    @property
    def outside(self) -> torch.Tensor:
        """``(n,)`` bool: the entry lies outside its conditioning window (extrapolation)."""
        return self.band == TASK_BANDS.index("extrapolation")

    @property
    def residuals(self) -> torch.Tensor:
        return self.values - self.curves.mean(0)

    @property
    def spread(self) -> torch.Tensor:
        return self.curves.var(0, unbiased=False)


def _observed_rows(item: SeriesItem) -> torch.Tensor:
    return torch.nonzero(item.mask.amax(-1) > 0).flatten()


def _split(
    item: SeriesItem, band: int, generator: torch.Generator, cut_share: float
) -> tuple | None:
    """(conditioning, target) items of one series for one task band, or None if too short.

    Interpolation hides a random 25% of the interior points; extrapolation hides every point
    after ``cut_share`` of the series' span.
    """
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
        cut = t[rows[0]] + cut_share * (t[rows[-1]] - t[rows[0]])
        hidden[rows[t[rows] > cut]] = True
        if not bool(hidden.any()) or bool(hidden[rows].all()):
            return None
    keep = ~hidden & (item.mask.amax(-1) > 0)
    cond = past_events(
        replace(item, times=item.times[keep], values=item.values[keep], mask=item.mask[keep])
    )
    target = replace(
        item, times=item.times[hidden], values=item.values[hidden], mask=item.mask[hidden],
        event_times=None, event_kinds=None,
    )  # fmt: skip
    return cond, target


@torch.no_grad()
def held_out_points(
    model: LatentODEModel,
    items: Sequence[SeriesItem],
    *,
    n_samples: int = 32,
    seed: int = 0,
    rounds: int = 4,
) -> HeldOutPoints | None:
    """Hide points of ``items`` in both task bands and predict them with ``model``.

    Each of ``rounds`` rounds hides a fresh random 25% of each series' interior points, and
    everything after one of :data:`_EXTRAP_CUTS` of its span (the last 50%, 40%, 30%, 20%),
    so that a few series give many points, at many distances from the conditioning ones.
    Returns None when no series has enough points (three observed rows) to hide any.
    """
    generator = torch.Generator().manual_seed(seed)
    parts: list[tuple[torch.Tensor, ...]] = []
    plan = [(r, band) for r in range(rounds) for band in range(len(TASK_BANDS))]
    for r, band in plan:
        cut_share = _EXTRAP_CUTS[r % len(_EXTRAP_CUTS)]
        splits = ((k, _split(it, band, generator, cut_share)) for k, it in enumerate(items))
        pairs = [(k, *p) for k, p in splits if p is not None]
        for start in range(0, len(pairs), _CHUNK):
            chunk = pairs[start : start + _CHUNK]
            cond, target = collate([c for _, c, _ in chunk]), collate([t for _, _, t in chunk])
            position = torch.tensor([k for k, _, _ in chunk])  # (B,)
            q, anchor = model.encode(cond)
            eps = torch.randn(
                (n_samples, *q.loc.shape), generator=generator, dtype=q.loc.dtype
            )  # (S, B, latent)
            z0 = q.loc + q.scale * eps
            curves = model.decode(z0, target.times, anchor, cond.covariates)  # (S, B, T, F)
            distance = cond.distance_to_observed(target.times)  # (B, T, F)
            parts.append(_entries(target, curves, distance, band, position))
    if not parts:
        return None
    values, curves, distance, feature, band, series = (
        torch.cat([p[i] for p in parts], dim=-1) for i in range(6)
    )
    return HeldOutPoints(values.double(), curves.double(), distance.double(), feature, band, series)


def _entries(
    batch: Any, curves: torch.Tensor, distance: torch.Tensor, band: int, position: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """The observed entries of ``batch``: values, curves ``(S, n)``, distance, feature, band,
    and the position of each entry's series (``position (B,)`` per row of the batch)."""
    seen = batch.mask > 0  # (B, T, F)
    feature = torch.arange(batch.n_features).expand_as(seen)
    series = position[:, None, None].expand_as(seen)
    return (
        batch.values[seen],
        curves[:, seen],
        distance[seen],
        feature[seen],
        torch.full((int(seen.sum()),), band, dtype=torch.long),
        series[seen],
    )


def band_quantiles(draws: np.ndarray, levels: Sequence[float]) -> np.ndarray:
    """Quantiles ``(len(levels), ...)`` of draws ``(S, ...)`` for a band around a new draw.

    The ``k``-th smallest of ``S`` draws sits at level ``k / (S + 1)`` (Weibull's plotting
    position), so that the band between two quantiles holds a new draw from the same
    distribution with the probability it names, on average. The usual ``(k - 1) / (S - 1)``
    positions pull the outer quantiles inwards: between the 5% and 95% quantiles of 32 draws
    a new draw falls 85% of the time, of 100 draws 88%.
    """
    return np.quantile(draws, list(levels), axis=0, method="weibull")


@dataclass(frozen=True)
class Bands:
    """A fitted predictive band on some points: each point's noise and widening.

    Attributes:
        std: ``(n,)`` the noise scale at each point.
        dof: ``(n,)`` the degrees of freedom of its Student t.
        factor: ``(n,)`` the conformal factor its band is stretched by about its median (1
            without conformal recalibration).
    """

    std: torch.Tensor
    dof: torch.Tensor
    factor: torch.Tensor

    def subset(self, keep: torch.Tensor) -> Bands:
        return Bands(self.std[keep], self.dof[keep], self.factor[keep])


def fit_bands(
    noise: PredictiveNoise, fit_on: HeldOutPoints, conformal: bool
) -> tuple[np.ndarray | None, Any]:
    """Fit ``noise`` on ``fit_on`` and, with ``conformal``, the factors on the same points.

    Returns the factors ``(n_features, n_bands)`` (None without ``conformal``) and a function
    that gives the :class:`Bands` of any points under this fit.
    """
    noise.fit(
        fit_on.residuals,
        fit_on.spread,
        fit_on.distance,
        fit_on.feature,
        fit_on.mean_curve,
        fit_on.outside,
    )

    def bands_of(points: HeldOutPoints, factors: np.ndarray | None) -> Bands:
        std = noise.std_at(points.distance, points.feature, points.mean_curve, points.outside)
        dof = noise.dof_at(points.feature, points.outside).to(std.dtype)
        if factors is None:
            factor = torch.ones_like(std)
        else:
            factor = torch.as_tensor(factors, dtype=std.dtype)[points.feature, points.band]
        return Bands(std, dof, factor)

    factors = None
    if conformal:
        factors = conformal_factors(fit_on, bands_of(fit_on, None), noise.n_features)
    return factors, bands_of


def predictive_quantiles(
    points: HeldOutPoints, bands: Bands, levels: Sequence[float], seed: int = 0
) -> torch.Tensor:
    """Quantiles ``(len(levels), n)`` of the curves plus each point's predictive noise.

    The noise at a point is its scale times a Student t with its degrees of freedom, drawn
    :data:`_NOISE_DRAWS` times per curve: the quantiles of a point are then read from
    hundreds of draws, which steadies each point's band (and its conformal score) where a
    few dozen curves would leave it noisy. The quantiles are then stretched about the median
    by the point's conformal factor (the median, 0.5, must be among ``levels`` for that to
    apply; it always is here).
    """
    rng = np.random.default_rng(seed)
    shape = (_NOISE_DRAWS, *points.curves.shape)  # (R, S, n)
    noise = rng.standard_t(np.broadcast_to(bands.dof.double().numpy(), shape))
    draws = points.curves.numpy() + noise * bands.std.numpy()  # (R, S, n)
    draws = draws.reshape(-1, draws.shape[-1])  # (R S, n)
    q = torch.as_tensor(band_quantiles(draws, levels), dtype=points.values.dtype)  # (Q, n)
    if 0.5 in levels:
        median = q[list(levels).index(0.5)]
        q = median + bands.factor * (q - median)
    return q


def calibration_table(
    points: HeldOutPoints, bands: Bands, feature_names: Sequence[str]
) -> pd.DataFrame:
    """Coverage of the central 50% and 90% bands, per task band and feature (and "all")."""
    q = predictive_quantiles(points, bands, _LEVELS)  # (5, n)
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


def conformal_factors(points: HeldOutPoints, bands: Bands, n_features: int) -> np.ndarray:
    """Split-conformal widening ``(n_features, n_bands)`` of the 90% band around the median.

    For each feature and task band, the points' scores (how many times its side of the
    model's 90% band, measured from the median, must be stretched to reach the point) give
    the factor as their ``ceil((n + 1) 0.9) / n`` empirical quantile: with it, the 90% band
    covers at least 90% of exchangeable new points. A cell with fewer
    than 10 points borrows the factor of its feature over both bands (1 if that too is short).
    ``bands`` must be unwidened (factor 1).
    """
    q = predictive_quantiles(points, bands, _LEVELS)[[0, 2, 4]]  # (3, n)
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


def calibrate(
    noise: PredictiveNoise,
    points: HeldOutPoints,
    feature_names: Sequence[str],
    *,
    conformal: bool,
    seed: int = 0,
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """Fit ``noise`` (and the conformal factors) on ``points``, and audit the bands.

    The audit is out of sample: the series are split in two halves at random, the whole
    procedure (noise, then factors) is fitted on one half and its bands' coverage measured on
    the other, both ways round. With fewer than :data:`_MIN_AUDIT_SERIES` series holding
    hidden points per half, it falls back to the coverage on the very points the bands were
    fitted on, and says so (``audit`` column: ``"out-of-sample"`` or ``"in-sample"``).

    Returns:
        The calibration table (columns ``audit, task, feature, n, coverage_50,
        coverage_90``) and the factors ``(n_features, n_bands)`` (None without
        ``conformal``), both of the fit on all ``points``, which ``noise`` keeps.
    """
    hidden_series = torch.unique(points.series)
    generator = torch.Generator().manual_seed(seed)
    order = hidden_series[torch.randperm(hidden_series.numel(), generator=generator)]
    halves = order[: order.numel() // 2], order[order.numel() // 2 :]
    audit_bands = None
    if min(h.numel() for h in halves) >= _MIN_AUDIT_SERIES:
        parts = []
        for k in range(2):
            test = torch.isin(points.series, halves[k])
            fold = PredictiveNoise(noise.n_features, floor=noise.floor)
            factors, bands_of = fit_bands(fold, points.subset(~test), conformal)
            parts.append((test, bands_of(points.subset(test), factors)))
        std, dof, factor = (torch.zeros_like(points.values) for _ in range(3))
        for test, b in parts:
            std[test], dof[test], factor[test] = b.std, b.dof, b.factor
        audit_bands = Bands(std, dof, factor)
    factors, bands_of = fit_bands(noise, points, conformal)
    if audit_bands is None:
        table = calibration_table(points, bands_of(points, factors), feature_names)
        table.insert(0, "audit", "in-sample")
    else:
        table = calibration_table(points, audit_bands, feature_names)
        table.insert(0, "audit", "out-of-sample")
    return table, factors


_LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)  # the bands the audit and the factors read
_NOISE_DRAWS = 8  # noise draws per posterior curve at each held-out point
_MIN_AUDIT_SERIES = 5  # series with hidden points per half for an out-of-sample audit
