"""Plots and event windows with malformed or odd input: a clear error from our code, or it works.

Each case of ``CASES`` names the call, the bad input, the exception type and words its message
must hold (what was expected, what was found, the fix). As in ``test_malformed.py``, the raising
frame must be latentode's own code. ``VALID`` lists inputs that look odd but are correct
(events at a window's edges, before the first observation or long after the last; single-point
series; tz-aware and timedelta times) and must simply work.
"""

from __future__ import annotations

import traceback
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")

import matplotlib.pyplot as plt

from latentode.data import make_clinical_events
from latentode.estimator import LatentODE
from latentode.plot import plot_intensity, plot_series

TINY = {
    "latent_dim": 2,
    "encoder_hidden": 4,
    "decoder_width": 4,
    "decoder_depth": 1,
    "max_epochs": 1,
    "random_state": 0,
    "poisson": True,
}
START = pd.Timestamp("2024-05-01 06:00")
CLINIC = make_clinical_events(n_series=6, n_labs=5, t_max=4.0, random_state=0)


def _dated(frame: pd.DataFrame, tz: str | None = None) -> pd.DataFrame:
    """Days since admission → timestamps (in ``tz`` when given)."""
    when = START + pd.to_timedelta(frame["time"], unit="D")
    return frame.assign(time=when.dt.tz_localize(tz) if tz else when)


LABS, VISITS = CLINIC.observed, CLINIC.events[["id", "time"]]
LABS_DT, VISITS_DT = _dated(LABS), _dated(VISITS)


def _plot_frames(kind: str = "numeric"):
    """Observations on [0, 4], a prediction to 6 with a band, samples and truth."""
    obs = pd.DataFrame({"id": ["a"] * 4 + ["b"] * 3, "time": [0, 1, 2.5, 4, 0, 2, 3.0]})
    obs["x"] = np.sin(obs["time"])
    grid = np.linspace(0, 6, 13)
    pred = pd.DataFrame({"id": np.repeat(["a", "b"], 13), "time": np.tile(grid, 2)})
    pred["x"] = np.sin(pred["time"])
    pred["x_q0.05"], pred["x_q0.95"] = pred["x"] - 0.2, pred["x"] + 0.2
    samples = pred[["id", "time", "x"]].assign(sample=0)
    frames = [obs, pred, samples]
    if kind == "datetime":
        frames = [_dated(f) for f in frames]
    elif kind == "timedelta":
        frames = [f.assign(time=pd.to_timedelta(f["time"], unit="h")) for f in frames]
    elif kind == "datetime-tz":
        frames = [_dated(f, "Europe/Berlin") for f in frames]
    return frames


def _intensity_frames(kind: str = "numeric"):
    grid = np.linspace(0, 4, 9)
    lam = pd.DataFrame({"id": 0, "time": grid, "kind": "event", "intensity": 1.0 + grid / 4})
    events = pd.DataFrame({"id": 0, "time": [0.5, 1.0, 3.5]})
    if kind == "datetime":
        return _dated(lam), _dated(events)
    return lam, events


def _nat_at(frame: pd.DataFrame, row: int) -> pd.DataFrame:
    times = frame["time"].copy()
    times.iloc[row] = pd.NaT if pd.api.types.is_datetime64_any_dtype(times) else np.nan
    return frame.assign(time=times)


def _plot(**changes):
    """plot_series on datetime frames with ``changes`` applied to them by name."""

    def run():
        obs, pred, samples = _plot_frames("datetime")
        frames = {"observed": obs, "prediction": pred, "samples": samples}
        for name, change in changes.items():
            frames[name] = change(frames[name])
        return plot_series(frames["observed"], frames["prediction"], samples=frames["samples"])

    return run


def _fit_events(labs: pd.DataFrame, events: pd.DataFrame, **kwargs):
    unit = {} if pd.api.types.is_numeric_dtype(labs["time"]) else {"time_unit": "D"}
    return lambda: LatentODE(**TINY).fit(labs, events=events, **unit, **kwargs)


CASES = [
    # -- plot_series: frames of different time kinds
    (
        "plot: datetime observations, numeric-time prediction",
        _plot(prediction=lambda p: p.assign(time=np.linspace(0, 6, len(p)))),
        TypeError,
        "`prediction`'s time column 'time' must hold tz-naive datetimes, like `observed`'s; "
        "found numbers",
    ),
    (
        "plot: datetime observations, epoch-nanosecond prediction times",
        _plot(prediction=lambda p: p.assign(time=p["time"].astype("int64"))),
        TypeError,
        "pd.to_datetime(prediction['time'])",
    ),
    (
        "plot: datetime observations, timedelta samples",
        _plot(samples=lambda s: s.assign(time=s["time"] - START)),
        TypeError,
        "`samples`'s time column 'time' must hold tz-naive datetimes",
    ),
    (
        "plot: tz-naive observations, tz-aware prediction",
        _plot(prediction=lambda p: p.assign(time=p["time"].dt.tz_localize("UTC"))),
        TypeError,
        "found tz-aware datetimes (UTC)",
    ),
    (
        "plot: tz-aware observations, tz-naive prediction",
        _plot(observed=lambda o: o.assign(time=o["time"].dt.tz_localize("Europe/Berlin"))),
        TypeError,
        "must hold tz-aware datetimes (Europe/Berlin), like `observed`'s; found tz-naive",
    ),
    (
        "plot: timedelta observations, numeric prediction",
        lambda: plot_series(_plot_frames("timedelta")[0], _plot_frames("numeric")[1], samples=None),
        TypeError,
        "must hold timedeltas, like `observed`'s; found numbers",
    ),
    # -- plot_series: missing, infinite or non-time times
    (
        "plot: NaT in the observed times",
        _plot(observed=lambda o: _nat_at(o, 1)),
        ValueError,
        "`observed`'s time column 'time' must have no missing values; found 1 (rows 1); drop",
    ),
    (
        "plot: NaT in the prediction times",
        _plot(prediction=lambda p: _nat_at(p, 3)),
        ValueError,
        "`prediction`'s time column 'time' must have no missing values",
    ),
    (
        "plot: an infinite time in numeric samples",
        lambda: plot_series(
            *_plot_frames()[:2],
            samples=_plot_frames()[2].assign(time=lambda s: s["time"].replace(6.0, np.inf)),
        ),
        ValueError,
        "`samples`'s time column 'time' must be finite; found inf at row 12 (2 in all); drop",
    ),
    (
        "plot: text times",
        lambda: plot_series(_plot_frames()[0].assign(time=lambda o: o["time"].astype(str))),
        TypeError,
        "found strings",
    ),
    # -- plot_intensity
    (
        "plot_intensity: numeric events for datetime intensities",
        lambda: plot_intensity(_intensity_frames("datetime")[0], _intensity_frames()[1]),
        TypeError,
        "`events`'s time column 'time' must hold tz-naive datetimes, like `intensity`'s",
    ),
    (
        "plot_intensity: NaT event times",
        lambda: plot_intensity(*(lambda i, e: (i, _nat_at(e, 0)))(*_intensity_frames("datetime"))),
        ValueError,
        "`events`'s time column 'time' must have no missing values",
    ),
    # -- events in fit
    (
        "events: a series id the observations do not have",
        _fit_events(LABS, pd.concat([VISITS, pd.DataFrame({"id": [99], "time": [1.0]})])),
        ValueError,
        "names 1 series that are not in the observation frame, e.g. [99]",
    ),
    (
        "events: NaT event times",
        _fit_events(LABS_DT, _nat_at(VISITS_DT, 2)),
        ValueError,
        "bad event times in column 'time'",
    ),
    (
        "events: numeric event times for datetime observations",
        _fit_events(LABS_DT, VISITS),
        TypeError,
        "must be tz-naive datetimes, like the frame this format was fitted on; got numbers",
    ),
    (
        "events: tz-naive event times for tz-aware observations",
        _fit_events(_dated(LABS, "UTC"), VISITS_DT),
        TypeError,
        "localize them with",
    ),
    (
        "events: an infinite event time",
        _fit_events(LABS, VISITS.assign(time=VISITS["time"].replace(VISITS["time"].max(), np.inf))),
        ValueError,
        "must be finite",
    ),
]


def test_at_least_10_cases():
    assert len(CASES) >= 10


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize(("name", "call", "error", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_plot_and_event_input_gets_a_clear_error(name, call, error, words):
    with pytest.raises(error) as info:
        call()
    assert words in str(info.value), f"{name}: message {str(info.value)!r} lacks {words!r}"
    assert type(info.value) is error
    # raised by latentode's own checks, not deep inside matplotlib, torch or pandas
    origin = traceback.extract_tb(info.tb)[-1].filename
    assert "latentode" in Path(origin).parts, f"{name}: raised from {origin}"
    assert info.value.__cause__ is None or isinstance(info.value.__cause__, type(info.value))


def _shift_visits(days: float, which: str):
    """VISITS with the first or last visit of each series moved ``days`` past its labs."""

    def change(v: pd.DataFrame) -> pd.DataFrame:
        span = LABS.groupby("id")["time"].agg(["min", "max"])
        v = v.sort_values(["id", "time"]).reset_index(drop=True)
        pick = v.groupby("id").head(1) if which == "first" else v.groupby("id").tail(1)
        edge = span.loc[v.loc[pick.index, "id"], "min" if which == "first" else "max"]
        v.loc[pick.index, "time"] = edge.to_numpy() + days
        return v

    return change


VALID = [
    ("events exactly at the first row", _shift_visits(0.0, "first")),
    ("events exactly at the last row", _shift_visits(0.0, "last")),
    ("an event before the first observation", _shift_visits(-0.5, "first")),
    ("events long after the last observation", _shift_visits(20.0, "last")),
]


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize(("name", "change"), VALID, ids=[c[0] for c in VALID])
def test_events_anywhere_on_the_time_axis_are_fitted_and_scored(name, change):
    events = change(VISITS)
    model = LatentODE(**TINY).fit(LABS, events=events)
    details = model.score_details(LABS, n_samples=2, events=events)
    assert details.loc["events", "n"] == len(events)  # every event scored, none dropped
    assert np.isfinite(details.loc["events", "log_likelihood"])


@pytest.mark.parametrize("kind", ["numeric", "datetime", "datetime-tz", "timedelta"])
def test_odd_but_valid_plots_draw(kind):
    obs, pred, samples = _plot_frames(kind)
    single = obs.iloc[:1]  # a series of one point
    assert plot_series(single).axes[0].get_xlim()[0] < plot_series(single).axes[0].get_xlim()[1]
    fig = plot_series(obs, pred, samples=samples, truth=pred[["id", "time", "x"]])
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 2
    if kind == "datetime-tz":  # another zone than the observations' is the same instants
        other = pred.assign(time=pred["time"].dt.tz_convert("America/New_York"))
        plot_series(obs, other)
