"""Each panel's x-axis spans its own series' times, whatever their kind (issue 14).

A datetime forecast used to widen the axis to 1970–2024: the extrapolation span was drawn from a
Timestamp to a float read back from the axis. The checks read the limits back from matplotlib
and compare them with the times that were drawn.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt

from latentode.plot import plot_intensity, plot_series

START = pd.Timestamp("2024-05-01 06:00")
MARGIN = 0.1  # share of the data's span the axis may reach past it on either side


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _numeric_frames(n_ids: int = 2):
    """Observations at irregular times on [0, 40] and a prediction grid to 80 (a forecast)."""
    rng = np.random.default_rng(0)
    obs, pred = [], []
    for i in range(n_ids):
        t = np.sort(rng.choice(np.arange(0, 41, 2.5), size=6, replace=False))
        obs.append(pd.DataFrame({"id": f"s{i}", "time": t, "x": np.sin(t / 10)}))
        grid = np.linspace(t[0], 80.0, 17)
        p = pd.DataFrame({"id": f"s{i}", "time": grid, "x": np.sin(grid / 10)})
        p["x_q0.05"], p["x_q0.95"] = p["x"] - 0.2, p["x"] + 0.2
        pred.append(p)
    obs, pred = pd.concat(obs, ignore_index=True), pd.concat(pred, ignore_index=True)
    samples = pd.concat(
        [pred[["id", "time", "x"]].assign(sample=k, x=pred["x"] + 0.1 * k) for k in range(3)],
        ignore_index=True,
    )
    return obs, pred, samples


def _as_kind(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    """``frame`` with its numeric times (hours) turned into ``kind``."""
    hours = pd.to_timedelta(frame["time"], unit="h")
    times = {
        "numeric": frame["time"],
        "timedelta": hours,
        "datetime": START + hours,
        "datetime-tz": (START + hours).dt.tz_localize("Europe/Berlin"),
    }[kind]
    return frame.assign(time=times)


def _to_axis(times: pd.Series, kind: str, label: str) -> np.ndarray:
    """The data's times in the axis' float coordinates."""
    if kind == "numeric":
        return times.to_numpy(dtype=float)
    if kind == "timedelta":
        unit = {"days": "D", "hours": "h", "minutes": "min", "seconds": "s"}[
            label.rpartition("(")[2].rstrip(")")
        ]
        return (times / pd.Timedelta(1, unit=unit)).to_numpy(dtype=float)
    if kind == "datetime-tz":
        times = times.dt.tz_convert("UTC").dt.tz_localize(None)
    return mdates.date2num(times.to_numpy())


def _assert_axes_span_the_data(fig, frames, kind):
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert visible
    for ax in visible:
        sid = ax.get_title().split(" = ", 1)[1]
        times = pd.concat([f.loc[f["id"] == sid, "time"] for f in frames if f is not None])
        x = _to_axis(times, kind, ax.get_xlabel())
        lo, hi = x.min(), x.max()
        margin = MARGIN * (hi - lo)
        left, right = ax.get_xlim()
        assert lo - margin <= left <= lo, (sid, left, lo)
        assert hi <= right <= hi + margin, (sid, right, hi)


KINDS = ["numeric", "timedelta", "datetime", "datetime-tz"]
PARTS = ["observed", "prediction", "prediction+samples", "prediction+samples+truth", "no band"]


@pytest.mark.parametrize("parts", PARTS)
@pytest.mark.parametrize("kind", KINDS)
def test_each_axis_spans_its_series_times(kind, parts):
    obs, pred, samples = (_as_kind(f, kind) for f in _numeric_frames())
    if parts == "no band":
        pred = pred.drop(columns=["x_q0.05", "x_q0.95"])
    prediction = None if parts == "observed" else pred
    samples = samples if "samples" in parts else None
    truth = pred[["id", "time", "x"]] if "truth" in parts else None
    fig = plot_series(obs, prediction, samples=samples, truth=truth)
    _assert_axes_span_the_data(fig, [obs, prediction, samples, truth], kind)


@pytest.mark.parametrize("kind", KINDS)
def test_the_extrapolation_span_starts_at_the_last_observation(kind):
    obs, pred, _ = (_as_kind(f, kind) for f in _numeric_frames(1))
    fig = plot_series(obs, pred)
    ax = fig.axes[0]
    spans = [p for p in ax.patches if p.get_facecolor()[:3] == pytest.approx((0.85,) * 3)]
    assert len(spans) == 1
    left = spans[0].get_x()
    x_obs = _to_axis(obs["time"], kind, ax.get_xlabel())
    x_pred = _to_axis(pred["time"], kind, ax.get_xlabel())
    assert left == pytest.approx(x_obs.max())
    assert left + spans[0].get_width() == pytest.approx(x_pred.max())


@pytest.mark.parametrize("kind", KINDS)
def test_a_single_point_series_gets_a_finite_axis_around_it(kind):
    obs, _, _ = _numeric_frames(1)
    obs = _as_kind(obs.iloc[:1], kind)
    fig = plot_series(obs)
    ax = fig.axes[0]
    (x,) = _to_axis(obs["time"], kind, ax.get_xlabel())
    left, right = ax.get_xlim()
    assert left < x < right
    assert right - left <= 2.0 + 1e-9  # one axis unit (a day for datetimes) either side


def test_timedelta_axes_count_in_a_named_unit():
    obs, pred, _ = (_as_kind(f, "timedelta") for f in _numeric_frames(1))
    fig = plot_series(obs, pred)
    assert fig.axes[0].get_xlabel() == "time (days)"  # 80 hours: more than two days
    short = obs.assign(time=obs["time"] / 60)  # the same pattern over 40 minutes
    assert plot_series(short).axes[0].get_xlabel() == "time (minutes)"


@pytest.mark.parametrize("kind", KINDS)
def test_intensity_axes_span_the_intensity_and_events(kind):
    grid = np.linspace(0.0, 60.0, 31)
    intensity = pd.DataFrame(
        {"id": "s0", "time": grid, "kind": "visit", "intensity": 1 + np.sin(grid / 9)}
    )
    intensity["intensity_q0.05"] = intensity["intensity"] * 0.8
    intensity["intensity_q0.95"] = intensity["intensity"] * 1.2
    events = pd.DataFrame({"id": "s0", "time": [3.0, 17.5, 44.0], "kind": "visit"})
    intensity, events = _as_kind(intensity, kind), _as_kind(events, kind)
    fig = plot_intensity(intensity, events)
    _assert_axes_span_the_data(fig, [intensity, events], kind)


def test_a_fitted_datetime_model_with_a_forecast_draws_its_own_dates():
    """The README quickstart's plot: datetime labs, a horizon forecast and posterior paths."""
    from latentode import LatentODE

    rng = np.random.default_rng(0)
    rows = []
    for p in range(6):
        hours = np.sort(rng.choice(120, size=6, replace=False))
        when = START + pd.to_timedelta(hours, unit="h")
        rows.append(pd.DataFrame({"patient": f"p{p}", "taken": when, "hb": np.sin(hours / 20)}))
    labs = pd.concat(rows, ignore_index=True)
    tiny = {"latent_dim": 2, "encoder_hidden": 4, "decoder_width": 4, "decoder_depth": 1}
    model = LatentODE(**tiny, max_epochs=1, random_state=0)
    model.fit(labs, id_col="patient", time_col="taken", time_unit="h")
    ahead = model.predict(labs, horizon=pd.Timedelta(hours=48), num_samples=5)
    grid = pd.date_range(START, periods=9, freq="24h")
    paths = model.sample(3, grid, df=labs, random_state=0)
    fig = plot_series(labs, ahead, samples=paths, id_col="patient", time_col="taken")
    for ax in (a for a in fig.axes if a.get_visible()):
        left, right = (mdates.num2date(v).replace(tzinfo=None) for v in ax.get_xlim())
        assert START - pd.Timedelta(days=1) <= left <= START + pd.Timedelta(days=5)
        assert START + pd.Timedelta(days=5) <= right <= START + pd.Timedelta(days=11)
