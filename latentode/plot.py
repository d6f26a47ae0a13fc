"""Pictures of irregular series and their predictions (needs ``pip install 'latentode[plot]'``).

:func:`plot_series` draws any number of series in a grid: the observations as markers at
their own times, the predicted mean as a line with a quantile band, the region past each series'
last observation shaded as extrapolation, and, optionally, sampled paths.
:func:`plot_intensity` draws event intensities (:meth:`LatentODE.predict_intensity`) with their
band over a rug of the events.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from latentode._validation import check_int

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["plot_intensity", "plot_series"]

_QUANTILE = re.compile(r"^(?P<feature>.+)_q(?P<level>0?\.\d+|\d\.?\d*e-?\d+)$")


def _pyplot():
    try:
        import matplotlib

        if matplotlib.get_backend().lower() not in {
            "agg",
            "module://matplotlib_inline.backend_inline",
        }:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - exercised only without matplotlib
        raise ImportError(
            "plotting needs matplotlib; install it with: pip install 'latentode[plot]'"
        ) from err
    return plt


def _band_columns(prediction: pd.DataFrame, feature: str) -> tuple[str, str] | None:
    """The lowest and highest quantile columns of ``feature`` in a predict() frame."""
    levels = _band_levels(prediction, feature)
    if levels is None:
        return None
    return levels[0][1], levels[1][1]


def _band_levels(
    prediction: pd.DataFrame, feature: str
) -> tuple[tuple[float, str], tuple[float, str]] | None:
    """The lowest and highest ``(level, column)`` of ``feature``'s quantiles, or None."""
    levels = []
    for col in prediction.columns:
        m = _QUANTILE.match(str(col))
        if m and m.group("feature") == feature:
            levels.append((float(m.group("level")), col))
    if len(levels) < 2:
        return None
    levels.sort()
    return levels[0], levels[-1]


def _band_label(prediction: pd.DataFrame, feature: str) -> str | None:
    """``"90% band (q0.05–q0.95)"`` for the outer quantiles of ``feature``, or None."""
    levels = _band_levels(prediction, feature)
    if levels is None:
        return None
    (low, _), (high, _) = levels
    return f"{feature} {100 * (high - low):g}% band (q{low:g}–q{high:g})"


def _check_columns(frame: pd.DataFrame, name: str, needed: Sequence[str]) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"`{name}` must be a pandas DataFrame; got {type(frame).__name__}")
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(
            f"`{name}` lacks column(s) {', '.join(map(repr, missing))}; it has "
            f"{list(frame.columns)}"
        )


def plot_series(
    observed: pd.DataFrame,
    prediction: pd.DataFrame | None = None,
    *,
    samples: pd.DataFrame | None = None,
    truth: pd.DataFrame | None = None,
    id_col: str = "id",
    time_col: str = "time",
    features: Sequence[str] | None = None,
    ids: Sequence[Hashable] | None = None,
    max_series: int = 6,
    ncols: int = 3,
    title: str | None = None,
    max_sample_paths: int = 20,
) -> Figure:
    """Draw series in a grid: observations, predicted mean and band, extrapolation, samples.

    Args:
        observed: The long frame of observations (``id_col``, ``time_col``, features).
        prediction: A :meth:`LatentODE.predict` frame: the mean under each feature's name and
            quantile columns ``"<feature>_q<level>"``; the band spans the lowest to the highest
            level present.
        samples: A :meth:`LatentODE.sample` frame with ``sample``, ``id_col``, ``time_col`` and
            the features; up to ``max_sample_paths`` paths per series are drawn thin.
        truth: Optional noise-free values (same columns as ``observed``, e.g. a synthetic
            dataset's ``truth``), drawn dashed.
        id_col, time_col: Column names.
        features: Features to draw; default every non-id, non-time column of ``observed``.
        ids: Series to draw; default the first ``max_series`` ids of ``observed``.
        max_series: Most series drawn when ``ids`` is not given. Default 6.
        ncols: Panels per row. Default 3.
        title: Figure title.
        max_sample_paths: Most sample paths drawn per series.

    Returns:
        The matplotlib ``Figure`` (save it with ``fig.savefig("out.png")``).

    Raises:
        ImportError: matplotlib is not installed.
        TypeError, ValueError: frames or columns that do not fit.
    """
    _check_columns(observed, "observed", [id_col, time_col])
    if features is None:
        features = [c for c in observed.columns if c not in (id_col, time_col)]
    features = list(features)
    if not features:
        raise ValueError("there are no features to draw; pass `features=[...]`")
    _check_columns(observed, "observed", features)
    if prediction is not None:
        _check_columns(prediction, "prediction", [id_col, time_col, *features])
    if samples is not None:
        _check_columns(samples, "samples", ["sample", id_col, time_col, *features])
    if truth is not None:
        _check_columns(truth, "truth", [id_col, time_col, *features])
    max_series = check_int("max_series", max_series, minimum=1)
    ncols = check_int("ncols", ncols, minimum=1)
    if ids is None:
        ids = list(pd.unique(observed[id_col]))[:max_series]
    else:
        ids = list(ids)
        unknown = [i for i in ids if i not in set(observed[id_col])]
        if unknown:
            raise ValueError(f"`ids` {unknown[:5]} are not in `observed`")
    if not ids:
        raise ValueError("`observed` has no series to draw")

    plt = _pyplot()
    ncols = min(ncols, len(ids))
    nrows = int(np.ceil(len(ids) / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows), squeeze=False, sharex=False
    )
    colours = [f"C{i % 10}" for i in range(len(features))]
    for ax, sid in zip(axes.flat, ids, strict=False):
        obs = observed[observed[id_col] == sid].sort_values(time_col)
        last_observed = obs[time_col].max()
        for feature, colour in zip(features, colours, strict=True):
            if prediction is not None:
                pred = prediction[prediction[id_col] == sid].sort_values(time_col)
                band = _band_columns(prediction, feature)
                if band is not None:
                    ax.fill_between(
                        pred[time_col],
                        pred[band[0]],
                        pred[band[1]],
                        color=colour,
                        alpha=0.2,
                        lw=0,
                        label=_band_label(prediction, feature),
                    )
                ax.plot(pred[time_col], pred[feature], color=colour, lw=1.6, label=feature)
            if samples is not None:
                mine = samples[samples[id_col] == sid]
                for k in list(pd.unique(mine["sample"]))[:max_sample_paths]:
                    path = mine[mine["sample"] == k].sort_values(time_col)
                    ax.plot(path[time_col], path[feature], color=colour, lw=0.6, alpha=0.35)
            if truth is not None:
                true = truth[truth[id_col] == sid].sort_values(time_col)
                ax.plot(
                    true[time_col],
                    true[feature],
                    "--",
                    color="0.35",
                    lw=0.9,
                    label="truth" if feature == features[0] else None,
                )
            seen = obs[feature].notna()
            ax.plot(
                obs.loc[seen, time_col],
                obs.loc[seen, feature],
                "o",
                ms=3.5,
                color=colour,
                mec="black",
                mew=0.4,
                label=f"{feature} observed" if prediction is not None else feature,
            )
        right = ax.get_xlim()[1]
        if prediction is not None and _after(
            prediction[prediction[id_col] == sid][time_col], last_observed
        ):
            ax.axvspan(last_observed, right, color="0.85", alpha=0.5, lw=0, zorder=0)
            ax.set_xlim(right=right)
        ax.set_title(f"{id_col} = {sid}", fontsize=9)
        ax.set_xlabel(str(time_col), fontsize=8)
        ax.set_ylabel(features[0] if len(features) == 1 else "value", fontsize=8)
        ax.tick_params(labelsize=8)
    for ax in axes.flat[len(ids) :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if prediction is not None:
        from matplotlib.patches import Patch

        handles.append(Patch(color="0.85", alpha=0.5, label="extrapolation"))
        labels.append("extrapolation")
    if title:
        fig.suptitle(title)
    if handles:  # one legend row under the panels, clear of their titles
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
        fig.tight_layout(rect=(0, 0.06 / nrows, 1, 1))
    else:
        fig.tight_layout()
    return fig


def _after(times: pd.Series, last_observed: Any) -> bool:
    return bool(len(times)) and bool((times > last_observed).any())


def plot_intensity(
    intensity: pd.DataFrame,
    events: pd.DataFrame | None = None,
    *,
    truth: pd.DataFrame | None = None,
    id_col: str = "id",
    time_col: str = "time",
    ids: Sequence[Hashable] | None = None,
    max_series: int = 6,
    ncols: int = 3,
    title: str | None = None,
) -> Figure:
    """Draw event intensities per series: posterior mean, quantile band, and the events as a rug.

    Args:
        intensity: A :meth:`LatentODE.predict_intensity` frame (``id_col``, ``time_col``,
            ``kind``, ``intensity`` and ``intensity_q<level>`` columns); the band spans the
            lowest to the highest level present. One colour per kind.
        events: Optional events ``(id_col, time_col[, "kind"])``, drawn as ticks under the
            curves (observed events, or :meth:`LatentODE.sample_events` output).
        truth: Optional true intensity ``(id_col, time_col, "intensity")``, drawn dashed.
        id_col, time_col: Column names.
        ids: Series to draw; default the first ``max_series`` ids of ``intensity``.
        max_series, ncols, title: Layout, as in :func:`plot_series`.

    Returns:
        The matplotlib ``Figure``.
    """
    _check_columns(intensity, "intensity", [id_col, time_col, "kind", "intensity"])
    if events is not None:
        _check_columns(events, "events", [id_col, time_col])
    if truth is not None:
        _check_columns(truth, "truth", [id_col, time_col, "intensity"])
    max_series = check_int("max_series", max_series, minimum=1)
    ncols = check_int("ncols", ncols, minimum=1)
    ids = list(pd.unique(intensity[id_col]))[:max_series] if ids is None else list(ids)
    unknown = [i for i in ids if i not in set(intensity[id_col])]
    if unknown:
        raise ValueError(f"`ids` {unknown[:5]} are not in `intensity`")
    if not ids:
        raise ValueError("`intensity` has no series to draw")
    band = _band_columns(intensity, "intensity")
    kinds = list(pd.unique(intensity["kind"]))
    colours = {k: f"C{i % 10}" for i, k in enumerate(kinds)}

    plt = _pyplot()
    ncols = min(ncols, len(ids))
    nrows = int(np.ceil(len(ids) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows), squeeze=False)
    for ax, sid in zip(axes.flat, ids, strict=False):
        mine = intensity[intensity[id_col] == sid]
        for kind in kinds:
            part = mine[mine["kind"] == kind].sort_values(time_col)
            if band is not None:
                ax.fill_between(
                    part[time_col],
                    part[band[0]],
                    part[band[1]],
                    color=colours[kind],
                    alpha=0.2,
                    lw=0,
                    label=f"{kind}: "
                    + str(_band_label(intensity, "intensity")).replace("intensity ", "", 1),
                )
            ax.plot(
                part[time_col], part["intensity"], color=colours[kind], lw=1.6, label=f"λ {kind}"
            )
        if truth is not None:
            true = truth[truth[id_col] == sid].sort_values(time_col)
            ax.plot(true[time_col], true["intensity"], "--", color="0.3", lw=0.9, label="truth")
        if events is not None:
            ev = events[events[id_col] == sid]
            colour = [
                colours.get(k, "black")
                for k in (ev["kind"] if "kind" in ev.columns else [None] * len(ev))
            ]
            ax.scatter(ev[time_col], np.zeros(len(ev)), marker="|", s=120, c=colour, label="events")
        ax.set_ylim(bottom=-0.05 * max(ax.get_ylim()[1], 1e-12))
        ax.set_title(f"{id_col} = {sid}", fontsize=9)
        ax.set_xlabel(str(time_col), fontsize=8)
        ax.set_ylabel("events per time unit", fontsize=8)
        ax.tick_params(labelsize=8)
    for ax in axes.flat[len(ids) :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if title:
        fig.suptitle(title)
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
        fig.tight_layout(rect=(0, 0.06 / nrows, 1, 1))
    else:
        fig.tight_layout()
    return fig
