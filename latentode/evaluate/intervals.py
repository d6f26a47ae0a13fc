"""A baseline with a distribution: a Gaussian around per-series linear interpolation.

A model's band must beat the obvious band, not just the obvious line. The obvious band is
linear interpolation with a Gaussian of one std per feature, the root mean square of its own
leave-one-out errors: each interior context point of each series predicted by interpolating
its neighbours. Its quantiles and its samples (an evenly spaced grid of normal quantiles, so
the sample CRPS is the Gaussian's to within a few per mille) go through the same metrics as a
model's.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from statistics import NormalDist

import numpy as np
import pandas as pd

from latentode._validation import check_int
from latentode.evaluate.baselines import _prepare, linear_interpolation

__all__ = ["linear_gaussian", "loo_linear_std"]


def loo_linear_std(
    context: pd.DataFrame,
    *,
    id_col: Hashable = "id",
    time_col: Hashable = "time",
    value_cols: Sequence[Hashable] | None = None,
) -> dict[Hashable, float]:
    """Per feature, the RMS leave-one-out error of linear interpolation over ``context``.

    Each observed point strictly inside a series' observed span of that feature is predicted
    from the two neighbours around it. A feature with no such point (every series observed it
    at most twice) gets the std of its values.
    """
    problem = _prepare(context, context[[id_col, time_col]], id_col, time_col, value_cols)
    out = {}
    for j, name in enumerate(problem.value_cols):
        errors = []
        for rows in problem.ctx_rows:
            v = problem.ctx_values[rows, j]
            seen = ~np.isnan(v)
            t, v = problem.ctx_times[rows][seen], v[seen]
            if t.size < 3:
                continue
            gap = t[2:] - t[:-2]
            weight = np.divide(t[1:-1] - t[:-2], gap, out=np.full(gap.shape, 0.5), where=gap > 0)
            errors.append(v[1:-1] - (v[:-2] + weight * (v[2:] - v[:-2])))
        pooled = np.concatenate(errors) if errors else np.array([])
        values = problem.ctx_values[:, j]
        fallback = float(np.nanstd(values)) if np.isfinite(values).any() else 1.0
        std = float(np.sqrt(np.mean(pooled**2))) if pooled.size else fallback
        out[name] = std if std > 0 else max(fallback, 1e-12)
    return out


def linear_gaussian(
    context: pd.DataFrame,
    targets: pd.DataFrame,
    *,
    quantiles: Sequence[float] = (0.05, 0.5, 0.95),
    n_samples: int = 100,
    id_col: Hashable = "id",
    time_col: Hashable = "time",
    value_cols: Sequence[Hashable] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Linear interpolation with a Gaussian band of its leave-one-out std.

    Returns:
        ``(pred, samples)``: ``pred`` has ``id, time``, each feature's mean and the columns
        ``f"{feature}_q{level:g}"``; ``samples`` has ``sample, id, time`` and the features,
        ``n_samples`` deterministic draws per target (the normal quantiles at
        ``(k + 0.5) / n_samples``), as :func:`~latentode.evaluate.crps` takes them.
    """
    n_samples = check_int("n_samples", n_samples, minimum=1)
    cols = {"id_col": id_col, "time_col": time_col, "value_cols": value_cols}
    mean = linear_interpolation(context, targets, **cols)
    std = loo_linear_std(context, **cols)
    names = [c for c in mean.columns if c not in (id_col, time_col)]
    normal = NormalDist()
    pred = mean.copy()
    for level in quantiles:
        z = normal.inv_cdf(float(level))
        for name in names:
            pred[f"{name}_q{level:g}"] = mean[name] + z * std[name]
    grid = np.array([normal.inv_cdf((k + 0.5) / n_samples) for k in range(n_samples)])
    parts = []
    for k, z in enumerate(grid):
        draw = mean.copy()
        for name in names:
            draw[name] = mean[name] + z * std[name]
        parts.append(draw.assign(sample=k))
    samples = pd.concat(parts, ignore_index=True)
    return pred, samples[["sample", *mean.columns]]
