"""One rule for plain numbers as times: they are amounts of the model's ``time_unit``.

A timedelta model's axis has a zero, so a number is the duration itself; a datetime model's has
none, so a number counts from each series' first observation (as ``horizon`` counts from its
last); a prior draw's times count from the new series' start. Before, ``sample(times=...)`` and
``sample_events(t_end=...)`` read numbers as nanoseconds, while ``predict(horizon=2)`` read 2 as
two hours.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from latentode.data import make_clinical_events
from latentode.estimator import LatentODE
from tests.problems import WithEvents

TINY = {
    "latent_dim": 2,
    "encoder_hidden": 4,
    "decoder_width": 4,
    "decoder_depth": 1,
    "max_epochs": 1,
    "random_state": 0,
}
START = pd.Timestamp("2024-03-01 08:00")


def _frames(kind: str):
    """The clinical toy with its hours as datetimes (series starting a day apart) or timedeltas."""
    data = make_clinical_events(n_series=6, n_labs=5, random_state=0)
    observed, events = data.observed.copy(), data.events.copy()
    for frame in (observed, events):
        hours = pd.to_timedelta(frame["time"], unit="h")
        if kind == "datetime":
            frame["time"] = START + hours + pd.to_timedelta(frame["id"], unit="D")
        else:
            frame["time"] = hours
    return observed, events


@pytest.fixture(scope="module", params=["datetime", "timedelta"])
def fitted(request):
    observed, events = _frames(request.param)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LatentODE(**TINY, poisson=True).fit(observed, events=events, time_unit="h")
    return request.param, WithEvents(model, events), observed


def _firsts(observed):
    return observed.groupby("id")["time"].min()


def test_predict_reads_numbers_in_the_time_unit(fitted):
    kind, model, observed = fitted
    out = model.predict(observed, times=[0, 1.5], num_samples=3)
    for sid, times in out.groupby("id")["time"]:
        origin = _firsts(observed)[sid] if kind == "datetime" else pd.Timedelta(0)
        assert times.tolist() == [origin, origin + pd.Timedelta("90min")]


def test_a_times_frame_of_numbers_reads_them_in_the_time_unit(fitted):
    kind, model, observed = fitted
    request = pd.DataFrame({"id": [0, 0, 3], "time": [0.5, 2.0, 1.0]})
    out = model.predict(observed, times=request, num_samples=3)
    firsts = _firsts(observed)
    for sid, hours in [(0, [0.5, 2.0]), (3, [1.0])]:
        origin = firsts[sid] if kind == "datetime" else pd.Timedelta(0)
        got = out.loc[out["id"] == sid, "time"].tolist()
        assert got == [origin + pd.Timedelta(h, unit="h") for h in hours]


def test_prior_samples_read_numbers_in_the_time_unit(fitted):
    _, model, _ = fitted
    out = model.sample(2, times=[0, 1.5])
    assert sorted(out["time"].unique()) == [pd.Timedelta(0), pd.Timedelta("90min")]
    durations = model.sample(2, times=pd.to_timedelta([0, 90], unit="min"))
    np.testing.assert_array_equal(durations["time"], out["time"])


def test_posterior_samples_read_numbers_in_the_time_unit(fitted):
    kind, model, observed = fitted
    out = model.sample(2, times=[1.0], df=observed)
    firsts = _firsts(observed)
    for sid, times in out.groupby("id")["time"]:
        origin = firsts[sid] if kind == "datetime" else pd.Timedelta(0)
        assert set(times) == {origin + pd.Timedelta("1h")}


def test_prior_events_end_at_a_number_of_time_units(fitted):
    _, model, _ = fitted
    events = model.sample_events(t_end=3, n_samples=20, random_state=0)
    assert len(events) > 0  # 3 hours hold events; 3 nanoseconds would hold none
    assert events["time"].max() <= pd.Timedelta("3h")


def test_posterior_events_end_at_a_number_of_time_units(fitted):
    kind, model, observed = fitted
    events = model.sample_events(observed, t_start=0, t_end=3, n_samples=5, random_state=0)
    firsts = _firsts(observed)
    assert len(events) > 0
    for sid, times in events.groupby("id")["time"]:
        origin = firsts[sid] if kind == "datetime" else pd.Timedelta(0)
        assert times.min() >= origin
        assert times.max() <= origin + pd.Timedelta("3h")


def test_horizon_reads_numbers_in_the_time_unit_too(fitted):
    _, model, observed = fitted
    out = model.predict(observed, horizon=2, horizon_points=2, num_samples=3)
    lasts = observed.groupby("id")["time"].max()
    for sid, times in out.groupby("id")["time"]:
        assert times.tolist() == [lasts[sid] + pd.Timedelta("1h"), lasts[sid] + pd.Timedelta("2h")]


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda m, df: m.predict(df, times=[True, False]), TypeError, "times"),
        (lambda m, df: m.predict(df, times=[0.0, np.nan]), ValueError, "finite"),
        (lambda m, df: m.predict(df, times=[0.0, np.inf]), ValueError, "finite"),
        (
            lambda m, df: m.sample(2, times=[1, pd.Timedelta("1h")]),
            TypeError,
            "mixes plain numbers",
        ),
        (lambda m, df: m.sample(2, times=[0.0, np.nan]), ValueError, "finite"),
        (lambda m, df: m.sample_events(df, t_end=np.nan), ValueError, "finite"),
    ],
    ids=["bools", "NaN", "inf", "numbers mixed with durations", "prior NaN", "t_end NaN"],
)
def test_bad_numbers_as_times_are_refused(fitted, call, error, words):
    _, model, observed = fitted
    with pytest.raises(error, match=words):
        call(model, observed)
