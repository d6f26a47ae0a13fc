"""Alignment of predictions to held-out truth, and the per-feature tables every metric returns.

Predictions meet the truth on ``(id, time)``, compared by exact keys (float times as they are,
datetimes and timedeltas as int64 nanoseconds). Only truth rows with an observed value are
kept, and only observed entries are summarised.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from latentode._validation import check_real
from latentode.evaluate._frame import (
    Layout,
    check_unique,
    feature_values,
    is_numeric,
    list_labels,
    read_long,
    read_times,
    same_kind,
    show,
)

ALL = "all"  # name of the pooled row


@dataclass(frozen=True)
class Truth:
    """Observed truth rows, aligned to rows of a prediction frame."""

    names: tuple[Hashable, ...]
    kind: str  # time kind of the truth frame
    values: np.ndarray  # (n, F) truth of the rows with an observed value, NaN = not observed
    pairs: pd.DataFrame  # (n, 2) their id and time, for messages
    keys: pd.DataFrame  # (n, 2) their id and exact time key, to merge on


def read_truth(truth: Any, id_col: Hashable, time_col: Hashable, value_cols: Any) -> Truth:
    """Check ``truth`` and keep its rows with at least one observed value."""
    frame = read_long(truth, "truth", id_col=id_col, time_col=time_col, value_cols=value_cols)
    names = frame.layout.value_cols
    if ALL in names:
        raise ValueError(f"a feature must not be named {ALL!r} (the pooled row); rename it")
    values = feature_values(truth, names)
    rows = np.flatnonzero(~np.isnan(values).all(axis=1))
    return Truth(
        names=names,
        kind=frame.kind,
        values=values[rows],
        pairs=truth[[id_col, time_col]].iloc[rows].reset_index(drop=True),
        keys=pd.DataFrame({"id": truth[id_col].to_numpy()[rows], "t": frame.keys[rows]}),
    )


def match(truth: Truth, pred: Any, name: str, id_col: Hashable, time_col: Hashable) -> pd.DataFrame:
    """Merge the truth rows with the rows of ``pred`` at the same (id, time); columns ``pos``
    (truth row) and ``row`` (pred row), ``pos`` ascending."""
    pred_kind, pred_keys = read_times(pred, name, id_col=id_col, time_col=time_col)
    same_kind([("truth", truth.kind), (name, pred_kind)])
    right = pd.DataFrame({"id": pred[id_col].to_numpy(), "t": pred_keys})
    right["row"] = np.arange(len(right))
    left = truth.keys.assign(pos=np.arange(len(truth.keys)))
    matched = left.merge(right, on=["id", "t"], how="left", sort=False)
    lost = np.unique(matched["pos"].to_numpy()[matched["row"].isna().to_numpy()])
    if lost.size:
        pairs = list(truth.pairs.iloc[lost[:5]].itertuples(index=False, name=None))
        raise ValueError(
            f"`{name}` must have a row for every (id, time) of `truth` with an observed value; "
            f"{lost.size} missing, e.g. {', '.join(map(show, pairs))}; predict at "
            f"truth[[{show(id_col)}, {show(time_col)}]]"
        )
    matched = matched.sort_values("pos", kind="stable")
    return matched.assign(row=matched["row"].astype(np.int64))


def align(
    pred: Any, truth: Any, id_col: Hashable, time_col: Hashable, value_cols: Any
) -> tuple[Truth, np.ndarray]:
    """The observed truth rows and, for each, its row in ``pred`` ``(n,)``."""
    t = read_truth(truth, id_col, time_col, value_cols)
    _, pred_keys = read_times(pred, "pred", id_col=id_col, time_col=time_col)
    check_unique(pred, "pred", Layout(id_col, time_col, ()), pred_keys)
    return t, match(t, pred, "pred", id_col, time_col)["row"].to_numpy()


def columns(pred: pd.DataFrame, name: str, cols: Sequence[Hashable], rows: np.ndarray) -> Any:
    missing = [c for c in cols if c not in pred.columns]
    if missing:
        raise ValueError(f"`{name}` must have columns {list_labels(missing)}; they are missing")
    bad = [c for c in cols if not is_numeric(pred[c])]
    if bad:
        raise TypeError(f"`{name}` columns {list_labels(bad)} must be numeric; convert them")
    return feature_values(pred, cols)[rows]


def check_no_gaps(values: np.ndarray, truth: Truth, j: int, what: str) -> None:
    """Raise if a prediction ``(n, k)`` of feature ``j`` is NaN where its truth is observed."""
    bad = np.flatnonzero(np.isnan(values).any(axis=1) & ~np.isnan(truth.values[:, j]))
    if bad.size:
        pairs = list(truth.pairs.iloc[bad[:5]].itertuples(index=False, name=None))
        raise ValueError(
            f"{what} must not be NaN where the truth of {show(truth.names[j])} is observed; "
            f"found {bad.size}, e.g. at {', '.join(map(show, pairs))}; fill in the "
            "prediction, or set that truth entry to NaN to leave it unscored"
        )


def scales(scale: Mapping[Hashable, float] | None, names: Sequence[Hashable]) -> np.ndarray:
    if scale is None:
        return np.ones(len(names))
    if not isinstance(scale, Mapping):
        raise TypeError(
            f"`scale` must be a mapping from feature to a positive number, or None; "
            f"got {type(scale).__name__}"
        )
    unknown = [k for k in scale if k not in names]
    if unknown:
        raise ValueError(
            f"`scale` names features that are not scored: {list_labels(unknown)}; the features "
            f"are {list_labels(names)}"
        )
    return np.array([check_real(f"scale[{k!r}]", scale.get(k, 1.0), positive=True) for k in names])


def table(
    truth: Truth,
    entries: np.ndarray,
    scale: np.ndarray,
    stats: Callable[[np.ndarray], dict[str, float]],
) -> pd.DataFrame:
    """Summarise per-entry quantities ``(n, F)`` per feature and pooled (divided by ``scale``)."""
    observed = ~np.isnan(truth.values)  # (n, F)
    groups = {name: entries[observed[:, j], j] for j, name in enumerate(truth.names)}
    groups[ALL] = (entries / scale)[observed]  # (n_observed,) pooled over features
    empty = dict.fromkeys(stats(np.ones(1)), np.nan)
    return pd.DataFrame(
        [{"n": x.size, **(stats(x) if x.size else empty)} for x in groups.values()],
        index=pd.Index(list(groups), name="feature"),
    )
