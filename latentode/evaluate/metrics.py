"""Scores of predictions against held-out truth: point errors, CRPS, pinball loss, coverage.

Every metric aligns the predictions to the truth on ``(id, time)``; extra prediction rows are
ignored, and every truth row with an observed value needs a prediction. Only observed
(non-NaN) truth entries count: whatever is predicted where the truth is NaN changes nothing.
Each metric returns a DataFrame indexed by feature, plus a last row ``"all"`` that pools every
counted entry after dividing its error by the feature's ``scale`` (default 1.0), so features in
different units weigh alike. The column ``n`` counts the entries.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from latentode._validation import check_real
from latentode.evaluate._align import (
    align,
    check_no_gaps,
    columns,
    match,
    read_truth,
    scales,
    table,
)
from latentode.evaluate._frame import Layout, check_unique, list_labels, read_times, show

__all__ = ["coverage", "crps", "pinball", "point_errors"]


def point_errors(
    pred: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    scale: Mapping[Hashable, float] | None = None,
    id_col: Hashable = "id",
    time_col: Hashable = "time",
    value_cols: Sequence[Hashable] | None = None,
) -> pd.DataFrame:
    """Mean squared error, mean absolute error and root mean squared error per feature.

    Args:
        pred: Predictions: id, time and one column per feature (the point forecast).
        truth: Long frame of true values; NaN entries are not scored.
        scale: Per-feature divisor of the errors in the ``"all"`` row (default 1.0 each).
        id_col, time_col, value_cols: Column names; ``value_cols=None`` = every other column
            of ``truth``.

    Returns:
        Columns ``n, mse, mae, rmse``, indexed by feature then ``"all"``.
    """
    t, rows = align(pred, truth, id_col, time_col, value_cols)
    values = columns(pred, "pred", t.names, rows)  # (n, F)
    for j in range(len(t.names)):
        check_no_gaps(values[:, j : j + 1], t, j, f"`pred[{show(t.names[j])}]`")
    err = values - t.values

    def stats(e: np.ndarray) -> dict[str, float]:
        mse = float(np.mean(e**2))
        return {"mse": mse, "mae": float(np.mean(np.abs(e))), "rmse": float(np.sqrt(mse))}

    return table(t, err, scales(scale, t.names), stats)


def crps(
    samples: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    sample_col: Hashable = "sample",
    scale: Mapping[Hashable, float] | None = None,
    id_col: Hashable = "id",
    time_col: Hashable = "time",
    value_cols: Sequence[Hashable] | None = None,
) -> pd.DataFrame:
    """Continuous ranked probability score of sampled predictions (lower is better).

    Per entry, ``CRPS = E|X - y| - ½ E|X - X'|`` over the ``m`` samples ``X`` of that entry,
    with ``E|X - X'| = 2/m² Σ_i (2i - m - 1) x_(i)`` over the sorted samples (O(m log m)). With
    one sample it is the absolute error.

    Args:
        samples: Long frame with a sample column, id, time and the features, as returned by
            ``LatentODE.sample(n, times, df=...)``; the same number of samples at every
            (id, time) that is scored.
        truth: Long frame of true values; NaN entries are not scored.
        sample_col: Name of the sample-number column.
        scale: Per-feature divisor of the scores in the ``"all"`` row (default 1.0 each).
        id_col, time_col, value_cols: Column names; ``value_cols=None`` = every other column
            of ``truth``.

    Returns:
        Columns ``n, crps`` (the mean over entries), indexed by feature then ``"all"``.
    """
    t = read_truth(truth, id_col, time_col, value_cols)
    _, keys = read_times(samples, "samples", id_col=id_col, time_col=time_col)
    if sample_col not in samples.columns:
        raise ValueError(
            f"`samples` must have the sample column {show(sample_col)}; it is missing "
            "(pass sample_col= to name yours)"
        )
    check_unique(samples, "samples", Layout(id_col, time_col, ()), keys, by=sample_col)
    matched = match(t, samples, "samples", id_col, time_col)
    counts = np.bincount(matched["pos"].to_numpy(), minlength=len(t.keys))
    if counts.size and counts.min() != counts.max():
        raise ValueError(
            "`samples` must hold the same number of samples at every scored (id, time); found "
            f"between {counts.min()} and {counts.max()}; draw them all in one call"
        )
    m = int(counts[0]) if counts.size else 1
    x = columns(samples, "samples", t.names, matched["row"].to_numpy())  # (n * m, F)
    x = np.sort(x.reshape(len(t.keys), m, len(t.names)), axis=1)  # (n, m, F), sorted samples
    for j in range(len(t.names)):
        check_no_gaps(x[:, :, j], t, j, f"`samples[{show(t.names[j])}]`")
    spread = 2.0 / m**2 * np.einsum("m,nmf->nf", 2.0 * np.arange(1, m + 1) - m - 1, x)
    score = np.abs(x - t.values[:, None, :]).mean(axis=1) - 0.5 * spread  # (n, F)
    score = np.maximum(score, 0.0)  # ≥ 0 exactly; rounding can leave -1e-18 (NaN stays NaN)
    return table(t, score, scales(scale, t.names), lambda s: {"crps": float(np.mean(s))})


def _quantile_cols(
    pred: pd.DataFrame, names: Sequence[Hashable], quantiles: Sequence[float] | None
) -> list[list[tuple[float, str]]]:
    """Per feature, its ``(level, column)`` pairs: the given levels, or every one present."""
    if quantiles is not None:
        if isinstance(quantiles, str) or not isinstance(quantiles, Sequence | np.ndarray):
            raise TypeError(f"`quantiles` must be a sequence of levels or None; got {quantiles!r}")
        levels = [_level("quantiles", q) for q in quantiles]
        found = [[(q, f"{name}_q{q:g}") for q in levels] for name in names]
        missing = [c for cols in found for _, c in cols if c not in pred.columns]
        if missing or not levels:
            raise ValueError(
                f"`pred` must have a column per feature and quantile level; missing "
                f"{list_labels(missing or ['(no levels given)'])}"
            )
        return found
    found = []
    for name in names:
        prefix = f"{name}_q"
        cols = [c for c in pred.columns if isinstance(c, str) and c.startswith(prefix)]
        pairs = [(float(c[len(prefix) :]), c) for c in cols if _is_level(c[len(prefix) :])]
        if not pairs:
            raise ValueError(
                f"`pred` must have quantile columns for feature {show(name)}, named like "
                f"'{name}_q0.05'; found none (columns: {list_labels(list(pred.columns))})"
            )
        found.append(sorted(pairs))
    return found


def _is_level(text: str) -> bool:
    try:
        return 0.0 < float(text) < 1.0
    except ValueError:
        return False


def _level(name: str, value: Any) -> float:
    level = check_real(name, value)
    if not 0.0 < level < 1.0:
        raise ValueError(f"`{name}` must hold levels in (0, 1); got {value!r}")
    return level


def pinball(
    pred: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    quantiles: Sequence[float] | None = None,
    scale: Mapping[Hashable, float] | None = None,
    id_col: Hashable = "id",
    time_col: Hashable = "time",
    value_cols: Sequence[Hashable] | None = None,
) -> pd.DataFrame:
    """Pinball (quantile) loss ``max(q (y - ŷ_q), (q - 1)(y - ŷ_q))``, averaged over levels
    and entries.

    Args:
        pred: Predictions with a column ``f"{feature}_q{level:g}"`` per feature and level.
        truth: Long frame of true values; NaN entries are not scored.
        quantiles: Levels to score; None = every ``{feature}_q<level>`` column present.
        scale: Per-feature divisor of the losses in the ``"all"`` row (default 1.0 each).
        id_col, time_col, value_cols: Column names; ``value_cols=None`` = every other column
            of ``truth``.

    Returns:
        Columns ``n, pinball``, indexed by feature then ``"all"``.
    """
    t, rows = align(pred, truth, id_col, time_col, value_cols)
    loss = np.empty(t.values.shape)  # (n, F): per entry, the mean over levels
    for j, pairs in enumerate(_quantile_cols(pred, t.names, quantiles)):
        levels = np.array([q for q, _ in pairs])  # (L,)
        values = columns(pred, "pred", [c for _, c in pairs], rows)  # (n, L)
        check_no_gaps(values, t, j, f"the quantiles of {show(t.names[j])} in `pred`")
        diff = t.values[:, j : j + 1] - values  # (n, L)
        loss[:, j] = np.maximum(levels * diff, (levels - 1.0) * diff).mean(axis=1)
    return table(t, loss, scales(scale, t.names), lambda s: {"pinball": float(np.mean(s))})


def coverage(
    pred: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    lower: float = 0.05,
    upper: float = 0.95,
    id_col: Hashable = "id",
    time_col: Hashable = "time",
    value_cols: Sequence[Hashable] | None = None,
) -> pd.DataFrame:
    """Share of observed truth entries inside ``[feature_q{lower:g}, feature_q{upper:g}]``.

    A calibrated 5%-95% interval covers about 0.90. The ``"all"`` row is the pooled share.

    Args:
        pred: Predictions with the columns ``f"{feature}_q{level:g}"`` for both levels.
        truth: Long frame of true values; NaN entries are not counted.
        lower, upper: Levels of the interval's ends, ``0 < lower < upper < 1``.
        id_col, time_col, value_cols: Column names; ``value_cols=None`` = every other column
            of ``truth``.

    Returns:
        Columns ``n, coverage``, indexed by feature then ``"all"``.
    """
    lower, upper = _level("lower", lower), _level("upper", upper)
    if lower >= upper:
        raise ValueError(f"`lower` must be below `upper`; got lower={lower:g}, upper={upper:g}")
    t, rows = align(pred, truth, id_col, time_col, value_cols)
    cols = [(f"{name}_q{lower:g}", f"{name}_q{upper:g}") for name in t.names]
    missing = [c for pair in cols for c in pair if c not in pred.columns]
    if missing:
        raise ValueError(
            f"`pred` must have the interval columns {list_labels(missing)} for "
            f"lower={lower:g}, upper={upper:g}; they are missing (predict with these quantiles)"
        )
    inside = np.empty(t.values.shape)  # (n, F): 1.0 when covered
    for j, pair in enumerate(cols):
        bounds = columns(pred, "pred", pair, rows)  # (n, 2)
        check_no_gaps(bounds, t, j, f"the interval of {show(t.names[j])} in `pred`")
        y = t.values[:, j]
        inside[:, j] = (bounds[:, 0] <= y) & (y <= bounds[:, 1])
    return table(t, inside, np.ones(len(t.names)), lambda s: {"coverage": float(np.mean(s))})
