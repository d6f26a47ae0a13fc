"""Pictures of irregular series and their predictions (needs ``pip install 'latentode[plot]'``).

:func:`plot_series` draws any number of series in a grid: the observations as markers at
their own times, the predicted mean as a line with a quantile band, the region past each series'
last observation shaded as extrapolation, and, optionally, sampled paths.
:func:`plot_intensity` draws event intensities (:meth:`LatentODE.predict_intensity`) with their
band over a rug of the events.

Times may be numbers, datetimes (tz-naive or tz-aware) or timedeltas, as the model returns
them; every frame of one figure must hold the same kind. They are turned into plain floats once
(matplotlib date numbers for datetimes, days/hours/minutes/seconds for timedeltas) before
anything is drawn, so no artist ever mixes a datetime with a number, and each panel's x-axis
spans its own series' times.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from latentode._validation import check_int
from latentode.data.frame import _check_no_missing, _classify_times, _kind_words, _show

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
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


# -- the time axis ---------------------------------------------------------------------------

# (unit, its name on the axis, the shortest span it is used for) for timedelta axes
_TIMEDELTA_UNITS = (("D", "days", pd.Timedelta(days=2)), ("h", "hours", pd.Timedelta(hours=2)))
_TIMEDELTA_UNITS += (("min", "minutes", pd.Timedelta(minutes=2)), ("s", "seconds", pd.Timedelta(0)))


@dataclass(frozen=True)
class _TimeAxis:
    """How one figure's times became floats, and how its x-axes are labelled.

    Attributes:
        kind: ``"numeric"``, ``"datetime"`` or ``"timedelta"``.
        tz: The zone tz-aware datetimes are shown in (the reference frame's); else None.
        unit: For timedeltas, the pandas unit one float counts (``"D"``, ``"h"``...).
        unit_name: For timedeltas, that unit's name on the axis label.
    """

    kind: str
    tz: _dt.tzinfo | None = None
    unit: str | None = None
    unit_name: str | None = None

    def style(self, ax: Axes, time_col: Hashable, lo: float, hi: float) -> None:
        """Label ``ax``'s x-axis in the user's time kind and fit it to ``[lo, hi]``."""
        label = str(time_col)
        if self.kind == "datetime":
            import matplotlib.dates as mdates

            locator = mdates.AutoDateLocator(tz=self.tz)
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=self.tz))
            if self.tz is not None:
                label = f"{label} ({self.tz})"
        elif self.kind == "timedelta":
            label = f"{label} ({self.unit_name})"
        ax.set_xlabel(label, fontsize=8)
        # a single time has no span: show one unit (a day for datetimes) either side of it
        pad = 0.03 * (hi - lo) if hi > lo else 1.0
        ax.set_xlim(lo - pad, hi + pad)


def _float_times(
    frames: Sequence[tuple[str, pd.DataFrame | None]], time_col: Hashable
) -> tuple[_TimeAxis, list[pd.DataFrame | None]]:
    """Check the time column of every frame and return the frames with float times.

    The first frame is the reference: every other one must hold the same kind of time
    (and, for datetimes, be tz-aware exactly when it is). Missing or infinite times are refused.

    Raises:
        TypeError: a time column that holds no times, or times of another kind than the
            reference's.
        ValueError: missing (NaN/NaT) or infinite times.
    """
    classified = []
    for name, frame in frames:
        if frame is None or (len(frame) == 0 and classified):
            classified.append(None)  # nothing of it is drawn (an empty frame has no kind)
            continue
        what = f"`{name}`'s time column {time_col!r}"
        ref = f"{name}[{time_col!r}]"
        s = frame[time_col]
        _check_no_missing(s, what, frame.index, "drop those rows")
        kind, canon = _classify_times(s, what, frame.index, ref)
        bad = np.flatnonzero(~np.isfinite(canon)) if kind == "numeric" else []
        if len(bad):
            raise ValueError(
                f"{what} must be finite; found {_show(canon[bad[0]])} at row "
                f"{_show(frame.index[bad[0]])} ({len(bad)} in all); drop those rows"
            )
        classified.append((name, kind, canon))
    ref_name, ref_kind, ref_canon = classified[0]
    ref_tz = ref_canon.tz if ref_kind == "datetime" else None
    for item in classified[1:]:
        if item is None:
            continue
        name, kind, canon = item
        tz = canon.tz if kind == "datetime" else None
        if kind != ref_kind or (tz is None) != (ref_tz is None):
            words = _kind_words(ref_kind, None if ref_tz is None else str(ref_tz))
            found = _kind_words(kind, None if tz is None else str(tz))
            raise TypeError(
                f"`{name}`'s time column {time_col!r} must hold {words}, like `{ref_name}`'s; "
                f"found {found}. Draw frames of one time kind: predictions and samples of a "
                f"model come back in the time kind it was fitted on, so pass {name} from the "
                f"model fitted on these observations (or convert with "
                + {
                    "numeric": f"pd.to_numeric({name}[{time_col!r}])",
                    "datetime": f"pd.to_datetime({name}[{time_col!r}])",
                    "timedelta": f"pd.to_timedelta({name}[{time_col!r}])",
                }[ref_kind]
                + (f", and .dt.tz_localize/.dt.tz_convert to {ref_tz}" if ref_tz else "")
                + ")"
            )
    axis = _TimeAxis(ref_kind, tz=ref_tz)
    if ref_kind == "timedelta":  # the largest unit that still gives two or more per figure
        present = [x[2] for x in classified if x is not None]
        span = max(c.max() for c in present) - min(c.min() for c in present)
        unit, unit_name = next((u, n) for u, n, least in _TIMEDELTA_UNITS if span >= least)
        axis = _TimeAxis(ref_kind, unit=unit, unit_name=unit_name)
    out: list[pd.DataFrame | None] = []
    for (_, frame), item in zip(frames, classified, strict=True):
        if frame is None:
            out.append(None)
            continue
        frame = frame.copy()
        x = np.empty(0) if item is None else _axis_floats(axis, item[2])
        frame[time_col] = x  # (n_rows,) float64
        out.append(frame)
    return axis, out


def _axis_floats(axis: _TimeAxis, canon: np.ndarray | pd.Index) -> np.ndarray:
    """Classified times → ``(n,)`` float64 x-coordinates on ``axis``."""
    if axis.kind == "numeric":
        return np.asarray(canon, dtype=np.float64)
    if axis.kind == "timedelta":
        return np.asarray(canon / pd.Timedelta(1, unit=axis.unit), dtype=np.float64)
    import matplotlib.dates as mdates

    if canon.tz is not None:  # date numbers count UTC; the labels show the zone
        canon = canon.tz_convert("UTC").tz_localize(None)
    return np.asarray(mdates.date2num(canon.to_numpy()), dtype=np.float64)


def _span(*times: Any) -> tuple[float, float]:
    """Lowest and highest of several float arrays (some may be empty)."""
    every = np.concatenate([np.asarray(t, dtype=np.float64).ravel() for t in times])
    return float(every.min()), float(every.max())


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

    # Only the drawn series are converted: a samples frame may be large.
    keep = [
        None if f is None else f[f[id_col].isin(ids)]
        for f in (observed, prediction, samples, truth)
    ]
    axis, (observed, prediction, samples, truth) = _float_times(
        list(zip(("observed", "prediction", "samples", "truth"), keep, strict=True)), time_col
    )

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
        drawn = [obs[time_col]]  # every time drawn in this panel: the x-axis spans them
        pred = paths = true = None
        if prediction is not None:
            pred = prediction[prediction[id_col] == sid].sort_values(time_col)
            drawn.append(pred[time_col])
        if samples is not None:
            mine = samples[samples[id_col] == sid]
            paths = [
                mine[mine["sample"] == k].sort_values(time_col)
                for k in list(pd.unique(mine["sample"]))[:max_sample_paths]
            ]
            drawn.extend(path[time_col] for path in paths)
        if truth is not None:
            true = truth[truth[id_col] == sid].sort_values(time_col)
            drawn.append(true[time_col])
        for feature, colour in zip(features, colours, strict=True):
            if pred is not None:
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
            for path in paths or ():
                ax.plot(path[time_col], path[feature], color=colour, lw=0.6, alpha=0.35)
            if true is not None:
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
        lo, hi = _span(*drawn)
        if pred is not None and _after(pred[time_col], last_observed):
            # both ends are floats on this axis: the span never reaches outside the data
            ax.axvspan(last_observed, hi, color="0.85", alpha=0.5, lw=0, zorder=0)
        axis.style(ax, time_col, lo, hi)
        ax.set_title(f"{id_col} = {sid}", fontsize=9)
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
    keep = [None if f is None else f[f[id_col].isin(ids)] for f in (intensity, events, truth)]
    axis, (intensity, events, truth) = _float_times(
        list(zip(("intensity", "events", "truth"), keep, strict=True)), time_col
    )
    colours = {k: f"C{i % 10}" for i, k in enumerate(kinds)}

    plt = _pyplot()
    ncols = min(ncols, len(ids))
    nrows = int(np.ceil(len(ids) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows), squeeze=False)
    for ax, sid in zip(axes.flat, ids, strict=False):
        mine = intensity[intensity[id_col] == sid]
        drawn = [mine[time_col]]  # every time drawn in this panel: the x-axis spans them
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
            drawn.append(true[time_col])
        if events is not None:
            ev = events[events[id_col] == sid]
            drawn.append(ev[time_col])
            colour = [
                colours.get(k, "black")
                for k in (ev["kind"] if "kind" in ev.columns else [None] * len(ev))
            ]
            ax.scatter(ev[time_col], np.zeros(len(ev)), marker="|", s=120, c=colour, label="events")
        ax.set_ylim(bottom=-0.05 * max(ax.get_ylim()[1], 1e-12))
        axis.style(ax, time_col, *_span(*drawn))
        ax.set_title(f"{id_col} = {sid}", fontsize=9)
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
