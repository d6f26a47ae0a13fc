"""One honest comparison: a fitted model against simple baselines, on the same held-out points.

:func:`compare` hides points of a frame (inside each series for interpolation, at its end for
extrapolation), predicts them with the model and with each baseline from the same context, and
scores everything with the same metrics and per-feature scales. The model is duck-typed (an
object with ``format_``, ``predict`` and ``sample``, as the fitted ``latentode.LatentODE``), so
this module needs neither torch nor the estimator.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from latentode._validation import check_choice, check_int, check_real, format_choices
from latentode.evaluate._align import ALL
from latentode.evaluate._frame import feature_values, read_long
from latentode.evaluate.baselines import BASELINES, DEFAULT_BASELINES
from latentode.evaluate.intervals import linear_gaussian
from latentode.evaluate.metrics import coverage, crps, pinball, point_errors
from latentode.evaluate.splits import Holdout, holdout_interior, holdout_last

__all__ = ["COLUMNS", "TASKS", "compare", "format_comparison"]

TASKS: tuple[str, ...] = ("interpolation", "extrapolation")
MODEL = "latentode"  # the model's method name in the table
COLUMNS: tuple[str, ...] = (
    "task",
    "method",
    "feature",
    "n",
    "mse",
    "mae",
    "rmse",
    "crps",
    "pinball",
    "coverage",
    "ratio",
)


def _check_model(model: Any) -> tuple[Hashable, Hashable, tuple[Hashable, ...]]:
    fmt = getattr(model, "format_", None)
    ok = (
        fmt is not None
        and all(hasattr(fmt, a) for a in ("id_col", "time_col", "value_cols"))
        and all(callable(getattr(model, m, None)) for m in ("predict", "sample"))
    )
    if not ok:
        raise TypeError(
            "`model` must be a fitted LatentODE (or an object with format_, predict and "
            f"sample); got {type(model).__name__}; call model.fit(df) first"
        )
    return fmt.id_col, fmt.time_col, tuple(fmt.value_cols)


def _check_baselines(baselines: Any, task: str) -> tuple[str, ...]:
    if baselines is None:
        return DEFAULT_BASELINES[task]
    if isinstance(baselines, str) or not isinstance(baselines, Sequence):
        raise TypeError(
            f"`baselines` must be a list of names or None; got {baselines!r} "
            f"(for one baseline, wrap it in a list: [{baselines!r}])"
        )
    names = tuple(check_choice("baselines", b, BASELINES) for b in baselines)
    if not names or len(set(names)) != len(names):
        raise ValueError(
            f"`baselines` must name at least one distinct baseline of "
            f"{format_choices(BASELINES)}; got {list(baselines)}"
        )
    return names


def _check_quantiles(quantiles: Any) -> tuple[float, ...]:
    if isinstance(quantiles, str) or not isinstance(quantiles, Sequence | np.ndarray):
        raise TypeError(f"`quantiles` must be a sequence of levels in (0, 1); got {quantiles!r}")
    levels = tuple(check_real("quantiles", q) for q in quantiles)
    if len(levels) < 2 or len(set(levels)) != len(levels) or not all(0 < q < 1 for q in levels):
        raise ValueError(
            f"`quantiles` must hold at least 2 distinct levels in (0, 1), the outer two giving "
            f"the interval whose coverage is measured; got {list(quantiles)}"
        )
    return levels


def _split(
    df: pd.DataFrame,
    task: str,
    split: Any,
    fraction: Any,
    n_last: Any,
    random_state: int,
    cols: dict[str, Any],
) -> Holdout:
    if task == "interpolation" and n_last is not None:
        raise ValueError(
            "`n_last` is for task='extrapolation' (the last points of each series); for "
            "interpolation pass `fraction`"
        )
    if split is not None:
        if not isinstance(split, Holdout):
            raise TypeError(f"`split` must be a Holdout or None; got {type(split).__name__}")
        if fraction is not None or n_last is not None:
            raise ValueError("give `split` or `fraction`/`n_last`, not both")
        return split
    if task == "interpolation":
        fraction = 0.25 if fraction is None else fraction
        return holdout_interior(df, fraction, random_state=random_state, **cols)
    return holdout_last(df, n_last, fraction=fraction, **cols)


def _scale(df: pd.DataFrame, names: Sequence[Hashable]) -> dict[Hashable, float]:
    """Per feature, the std of its observed values (1.0 where it is 0 or undefined)."""
    values = feature_values(df, names)  # (n, F)
    out = {}
    for j, name in enumerate(names):
        seen = values[~np.isnan(values[:, j]), j]
        std = float(seen.std(ddof=1)) if seen.size > 1 else 0.0
        out[name] = std if np.isfinite(std) and std > 0 else 1.0
    return out


def compare(
    model: Any,
    df: pd.DataFrame,
    task: str = "interpolation",
    *,
    fraction: float | None = None,
    n_last: int | None = None,
    split: Holdout | None = None,
    baselines: Sequence[str] | None = None,
    quantiles: Sequence[float] = (0.05, 0.25, 0.5, 0.75, 0.95),
    num_samples: int = 100,
    random_state: int = 0,
) -> pd.DataFrame:
    """Score a fitted model and simple baselines on the same held-out points of ``df``.

    Args:
        model: A fitted ``latentode.LatentODE``, or any object with ``format_`` (``id_col``,
            ``time_col``, ``value_cols``), ``predict(context, times=, quantiles=,
            num_samples=)`` and ``sample(n, times=, df=, random_state=)``.
        df: Long frame in the model's layout.
        task: ``"interpolation"`` (hide interior points: :func:`holdout_interior` with
            ``fraction`` or 0.25) or ``"extrapolation"`` (hide the ends:
            :func:`holdout_last` with ``n_last`` or ``fraction``; neither = 2 points).
        fraction, n_last: Size of the held-out part (see ``task``).
        split: A ready :class:`Holdout`, used as given instead of a new split.
        baselines: Names from :data:`BASELINES`; default :data:`DEFAULT_BASELINES` [task].
        quantiles: Levels the model predicts; the pinball loss averages over them, the
            outer two give the interval of ``coverage``, and each symmetric pair
            ``(q, 1 − q)`` a ``coverage_<level>`` column (``coverage_90``, ``coverage_50`` for
            the default levels).
        num_samples: Posterior samples for the model's mean, quantiles and CRPS.
        random_state: Seed of the split and of the model's samples.

    Returns:
        A tidy frame with columns :data:`COLUMNS`: one row per (method, feature), features
        then ``"all"`` (errors divided by each feature's std in ``df``). The model
        (``"latentode"``) comes first, then the baselines in order. Linear interpolation
        carries a Gaussian band of its own leave-one-out error
        (:func:`~latentode.evaluate.linear_gaussian`), so its ``crps``, ``pinball`` and
        coverages are those of that band; the other baselines give no distribution (NaN there).
        ``ratio`` = the
        row's mse / the smallest baseline mse for that feature (below 1: the model beats every
        baseline; NaN or inf when that smallest mse is 0). ``attrs["best_baseline"]`` maps each
        feature to its best baseline's name, ``attrs["scale"]`` holds the scales.
    """
    id_col, time_col, value_cols = _check_model(model)
    check_choice("task", task, TASKS)
    names = _check_baselines(baselines, task)
    levels = _check_quantiles(quantiles)
    num_samples = check_int("num_samples", num_samples, minimum=1)
    random_state = check_int("random_state", random_state, minimum=0)
    cols = {"id_col": id_col, "time_col": time_col, "value_cols": value_cols}
    read_long(df, "df", **cols)
    holdout = _split(df, task, split, fraction, n_last, random_state, cols)
    scale = _scale(df, value_cols)
    truth, context = holdout.target, holdout.context
    times = truth[[id_col, time_col]].reset_index(drop=True)

    pred = model.predict(context, times=times, quantiles=list(levels), num_samples=num_samples)
    draws = model.sample(num_samples, times=times, df=context, random_state=random_state)
    tables = {MODEL: _scores(pred, draws, truth, levels, scale, cols)}
    for name in names:
        if name == "linear":  # the obvious band: a Gaussian of linear interpolation's own error
            guess, guess_draws = linear_gaussian(
                context, times, quantiles=levels, n_samples=num_samples, **cols
            )
            tables[name] = _scores(guess, guess_draws, truth, levels, scale, cols)
        else:
            guess = BASELINES[name](context, times, **cols)
            tables[name] = point_errors(guess, truth, scale=scale, **cols)

    table = pd.concat(tables, names=["method"]).reset_index()
    bands = sorted(
        (c for c in table.columns if c.startswith("coverage_")),
        key=lambda c: float(c.removeprefix("coverage_")),
    )  # coverage_50, coverage_90: right after the outer band's coverage, before the ratio
    table = table.reindex(columns=[c for c in COLUMNS if c not in ("task", "ratio")] + bands)
    table.insert(0, "task", task)
    mse = pd.concat({name: tables[name]["mse"] for name in names}, axis=1)  # feature × baseline
    best = mse.min(axis=1).reindex(table["feature"]).to_numpy()  # (n_rows,)
    with np.errstate(divide="ignore", invalid="ignore"):
        table["ratio"] = table["mse"].to_numpy() / best
    table.attrs["best_baseline"] = {
        f: (row.idxmin() if row.notna().any() else None) for f, row in mse.iterrows()
    }
    table.attrs["scale"] = scale
    return table


def _scores(
    pred: pd.DataFrame,
    draws: pd.DataFrame,
    truth: pd.DataFrame,
    levels: Sequence[float],
    scale: dict[Hashable, float],
    cols: dict[str, Any],
) -> pd.DataFrame:
    """Point errors, CRPS, pinball loss, the outer band's coverage and every central band's.

    A central band is a pair of levels ``(q, 1 − q)``; its coverage is in ``coverage_<100(1 −
    2q)>`` (``coverage_90`` for 0.05 and 0.95).
    """
    parts = [
        point_errors(pred, truth, scale=scale, **cols),
        crps(draws, truth, scale=scale, **cols)[["crps"]],
        pinball(pred, truth, quantiles=levels, scale=scale, **cols)[["pinball"]],
        coverage(pred, truth, lower=min(levels), upper=max(levels), **cols)[["coverage"]],
    ]
    for low in sorted(q for q in levels if q < 0.5 and any(abs(q + p - 1) < 1e-9 for p in levels)):
        band = coverage(pred, truth, lower=low, upper=1 - low, **cols)["coverage"]
        parts.append(band.rename(f"coverage_{100 * (1 - 2 * low):g}").to_frame())
    return pd.concat(parts, axis=1)


def format_comparison(table: pd.DataFrame) -> str:
    """A compact plain-text table of the ``"all"`` rows of a :func:`compare` result.

    Columns ``method, n, rmse, mae, crps``, the coverage of each central band (``cover50``,
    ``cover90``; the outer band's ``coverage`` when there are none) and ``ratio``; NaN shows
    as ``-``.
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(
            f"`table` must be the DataFrame compare() returns; got {type(table).__name__}"
        )
    bands = sorted(
        (c for c in table.columns if str(c).startswith("coverage_")),
        key=lambda c: float(str(c).removeprefix("coverage_")),
    ) or ["coverage"]
    shown = ["method", "n", "rmse", "mae", "crps", *bands, "ratio"]
    missing = [c for c in ["task", "feature", *shown] if c not in table.columns]
    if missing:
        raise ValueError(
            f"`table` must be the DataFrame compare() returns; it lacks columns {missing}"
        )
    rows = table[table["feature"] == ALL]
    tasks = ", ".join(map(str, pd.unique(rows["task"])))
    header = [str(c).replace("coverage_", "cover") for c in shown]
    cells = [header] + [
        [str(r.method), str(int(r.n))] + [_number(getattr(r, c)) for c in shown[2:]]
        for r in rows.itertuples(index=False)
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(shown))]
    lines = [f"{tasks}: all features, errors in units of each feature's std"]
    for row in cells:
        padded = [c.rjust(w) for c, w in zip(row, widths, strict=True)]
        lines.append("  ".join([row[0].ljust(widths[0]), *padded[1:]]))
    return "\n".join(lines)


def _number(value: float) -> str:
    return "-" if not np.isfinite(value) else f"{value:.4g}"
