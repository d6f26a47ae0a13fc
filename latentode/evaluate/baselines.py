"""Simple per-series baselines that every model claim is measured against.

Each baseline has one signature::

    f(context, targets, *, id_col="id", time_col="time", value_cols=None) -> DataFrame

``context`` is a long frame of observations (NaN = not observed); ``targets`` has at least the
id and time columns (other columns are ignored, so a :class:`~latentode.evaluate.Holdout`'s
``target`` can be passed as it is). The result has columns ``[id_col, time_col, *value_cols]``,
one row per row of ``targets``, in the same order. Per series and per feature, a baseline sees
only that feature's observed context points. A series that never observed a feature gets that
feature's mean over every context point of every series. All baselines are invariant to the
time unit (datetimes and timedeltas are read as nanoseconds).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from latentode._validation import check_choice, check_int
from latentode.evaluate._frame import (
    feature_values,
    float_times,
    list_labels,
    read_long,
    read_times,
    same_kind,
)

__all__ = [
    "BASELINES",
    "DEFAULT_BASELINES",
    "linear_interpolation",
    "linear_trend",
    "locf",
    "population_mean",
]

_MAX_BINS = 50  # population_mean: at most this many time bins

# A per-series rule: sorted observed times (m,) ≥ 1 point, their values (m,), query times (q,)
# -> predictions (q,).
_Kernel = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class _Problem:
    """Context and targets in one canonical form: float times with one origin, integer series
    codes, and the context rows of each series sorted by time."""

    value_cols: tuple[Hashable, ...]
    out: pd.DataFrame  # (n_targets, 2): the targets' id and time columns, a fresh index
    ctx_times: np.ndarray  # (n_context,)
    ctx_values: np.ndarray  # (n_context, F), NaN = not observed
    ctx_codes: np.ndarray  # (n_context,) series code of each context row
    ctx_rows: list[np.ndarray]  # per series: its context rows sorted by time
    tgt_times: np.ndarray  # (n_targets,)
    tgt_codes: np.ndarray  # (n_targets,) series code of each target
    fallback: np.ndarray  # (F,) feature means over all context points

    def result(self, values: np.ndarray) -> pd.DataFrame:
        out = self.out.copy()
        for j, name in enumerate(self.value_cols):
            out[name] = values[:, j]
        return out


def _prepare(
    context: Any,
    targets: Any,
    id_col: Hashable,
    time_col: Hashable,
    value_cols: Sequence[Hashable] | None,
) -> _Problem:
    ctx = read_long(context, "context", id_col=id_col, time_col=time_col, value_cols=value_cols)
    tgt_kind, tgt_keys = read_times(targets, "targets", id_col=id_col, time_col=time_col)
    same_kind([("context", ctx.kind), ("targets", tgt_kind)])
    ctx_times, tgt_times = float_times(ctx.keys, tgt_keys)
    codes, ids = pd.factorize(context[id_col])
    tgt_codes = pd.Index(ids).get_indexer(targets[id_col])
    if (tgt_codes < 0).any():
        unknown = pd.unique(targets[id_col].to_numpy()[tgt_codes < 0])
        raise ValueError(
            f"`targets` names series with no rows in `context`: {list_labels(unknown)}; "
            "every series to predict needs context to condition on"
        )
    names = ctx.layout.value_cols
    values = feature_values(context, names)
    never = [name for j, name in enumerate(names) if np.isnan(values[:, j]).all()]
    if never:
        raise ValueError(
            f"`context` must observe every feature at least once; {list_labels(never)} "
            f"{'is' if len(never) == 1 else 'are'} NaN everywhere; drop "
            f"{'it' if len(never) == 1 else 'them'} from value_cols"
        )
    order = np.lexsort((ctx_times, codes))
    cuts = np.flatnonzero(np.diff(codes[order])) + 1
    return _Problem(
        value_cols=names,
        out=targets[[id_col, time_col]].reset_index(drop=True),
        ctx_times=ctx_times,
        ctx_values=values,
        ctx_codes=codes,
        ctx_rows=np.split(order, cuts) if order.size else [],
        tgt_times=tgt_times,
        tgt_codes=tgt_codes,
        fallback=np.nanmean(values, axis=0),
    )


def _per_series(problem: _Problem, kernel: _Kernel) -> np.ndarray:
    """Apply ``kernel`` to each (series, feature); ``(n_targets, F)`` predictions."""
    out = np.empty((problem.tgt_times.size, len(problem.value_cols)))
    targets_of = pd.Series(np.arange(problem.tgt_codes.size)).groupby(problem.tgt_codes).indices
    for code, query in targets_of.items():
        rows = problem.ctx_rows[code]
        t_obs, t_query = problem.ctx_times[rows], problem.tgt_times[query]
        for j in range(out.shape[1]):
            v = problem.ctx_values[rows, j]
            seen = ~np.isnan(v)
            out[query, j] = (
                kernel(t_obs[seen], v[seen], t_query) if seen.any() else problem.fallback[j]
            )
    return out


def _interp(t: np.ndarray, v: np.ndarray, query: np.ndarray) -> np.ndarray:
    return np.interp(query, t, v)


def _locf(t: np.ndarray, v: np.ndarray, query: np.ndarray) -> np.ndarray:
    last = np.searchsorted(t, query, side="right") - 1
    return v[np.maximum(last, 0)]  # before the first observation: the first, carried back


def _trend(t: np.ndarray, v: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    t, v = t[-k:], v[-k:]
    if t.size == 1:
        return np.full(query.shape, v[0])
    t_mean, v_mean = t.mean(), v.mean()
    dt = t - t_mean  # centred: times are distinct, so dt @ dt > 0
    slope = dt @ (v - v_mean) / (dt @ dt)
    return v_mean + slope * (query - t_mean)


def linear_interpolation(
    context: pd.DataFrame,
    targets: pd.DataFrame,
    *,
    id_col: Hashable = "id",
    time_col: Hashable = "time",
    value_cols: Sequence[Hashable] | None = None,
) -> pd.DataFrame:
    """Linear interpolation between each series' observed points, constant beyond its ends."""
    problem = _prepare(context, targets, id_col, time_col, value_cols)
    return problem.result(_per_series(problem, _interp))


def locf(
    context: pd.DataFrame,
    targets: pd.DataFrame,
    *,
    id_col: Hashable = "id",
    time_col: Hashable = "time",
    value_cols: Sequence[Hashable] | None = None,
) -> pd.DataFrame:
    """Last observation carried forward; before the first observation, the first carried back."""
    problem = _prepare(context, targets, id_col, time_col, value_cols)
    return problem.result(_per_series(problem, _locf))


def linear_trend(
    context: pd.DataFrame,
    targets: pd.DataFrame,
    *,
    k: int = 3,
    id_col: Hashable = "id",
    time_col: Hashable = "time",
    value_cols: Sequence[Hashable] | None = None,
) -> pd.DataFrame:
    """The least-squares line through each series' last ``k`` observed points, at every target.

    Fewer points are used when fewer were observed; one point gives a constant. The line is
    used inside the observed window too: this is a forecasting baseline.
    """
    k = check_int("k", k, minimum=1)
    problem = _prepare(context, targets, id_col, time_col, value_cols)
    return problem.result(_per_series(problem, lambda t, v, q: _trend(t, v, q, k)))


def population_mean(
    context: pd.DataFrame,
    targets: pd.DataFrame,
    *,
    origin: Literal["series", "global"] = "series",
    id_col: Hashable = "id",
    time_col: Hashable = "time",
    value_cols: Sequence[Hashable] | None = None,
) -> pd.DataFrame:
    """The mean curve of all series, read at each target's time.

    Per feature, every series' observed context points are pooled on one time axis: time
    since that series' first context point (``origin="series"``), or the raw time
    (``origin="global"``). The pooled points fall into ``clip(round(sqrt(n_points)), 1, 50)``
    quantile bins (one bin per distinct time when there are no more distinct times than
    bins); the curve joins the bins' (mean time, mean value) points linearly and is constant
    beyond them. Every series, including one that never observed the feature, reads the same
    curve.
    """
    check_choice("origin", origin, ("series", "global"))
    problem = _prepare(context, targets, id_col, time_col, value_cols)
    shift = np.zeros(len(problem.ctx_rows))  # (n_series,) each series' time origin
    if origin == "series":
        observed = ~np.isnan(problem.ctx_values).all(axis=1)
        for code, rows in enumerate(problem.ctx_rows):
            points = rows[observed[rows]]  # sorted by time; all-NaN rows are no points
            shift[code] = problem.ctx_times[points[0] if points.size else rows[0]]
    x_ctx = problem.ctx_times - shift[problem.ctx_codes]  # (n_context,) on the pooled axis
    x_tgt = problem.tgt_times - shift[problem.tgt_codes]  # (n_targets,)
    out = np.empty((x_tgt.size, len(problem.value_cols)))
    for j in range(out.shape[1]):
        v = problem.ctx_values[:, j]
        seen = ~np.isnan(v)
        out[:, j] = np.interp(x_tgt, *_binned_curve(x_ctx[seen], v[seen]))
    return problem.result(out)


def _binned_curve(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bin mean-times (strictly increasing) and bin means of points ``(x, y)``, ``(n,)`` each."""
    n_bins = int(np.clip(round(np.sqrt(x.size)), 1, _MAX_BINS))
    distinct = np.unique(x)
    if distinct.size <= n_bins:
        bins = np.searchsorted(distinct, x)
    else:  # bins [e_k, e_k+1) never split a tie, so non-empty bins have disjoint ranges
        edges = np.quantile(x, np.linspace(0.0, 1.0, n_bins + 1)[1:-1])
        bins = np.searchsorted(edges, x, side="right")
    counts = np.bincount(bins)
    full = counts > 0
    return (
        np.bincount(bins, weights=x)[full] / counts[full],
        np.bincount(bins, weights=y)[full] / counts[full],
    )


BASELINES: dict[str, Callable[..., pd.DataFrame]] = {
    "linear": linear_interpolation,
    "locf": locf,
    "trend": linear_trend,
    "mean": population_mean,
}
"""Baseline name → function, each with the signature above."""

DEFAULT_BASELINES: dict[str, tuple[str, ...]] = {
    "interpolation": ("linear", "locf", "mean"),
    # past a series' end linear interpolation is LOCF; it stays for its Gaussian band, the
    # reference every predictive band is compared with
    "extrapolation": ("linear", "locf", "trend", "mean"),
}
"""The baselines :func:`~latentode.evaluate.compare` runs for each task by default."""
