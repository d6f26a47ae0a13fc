"""LatentODE(poisson=True): events in, intensities, expected counts and sampled events out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from latentode.data import make_clinical_events
from latentode.estimator import LatentODE

TINY = {
    "latent_dim": 3,
    "encoder": "gru",
    "encoder_hidden": 6,
    "decoder_width": 8,
    "decoder_depth": 1,
    "max_epochs": 2,
    "batch_size": 16,
    "random_state": 0,
    "poisson": True,
}


@pytest.fixture(scope="module")
def data():
    return make_clinical_events(n_series=24, n_labs=8, random_state=0)


def _events_of(events: pd.DataFrame, df: pd.DataFrame, id_col: str = "id") -> pd.DataFrame:
    """The events of the series in ``df``: a model fitted on events reads each one's past."""
    return events[events[id_col].isin(df[id_col])]


@pytest.fixture(scope="module")
def fitted(data):
    return LatentODE(**TINY).fit(data.observed, events=data.events)


@pytest.fixture(scope="module")
def two_kinds(data):
    events = data.events.assign(kind=np.where(np.arange(len(data.events)) % 3, "visit", "call"))
    return LatentODE(**TINY).fit(data.observed, events=events), events


def test_fit_with_an_events_frame_learns_its_kinds(fitted, two_kinds):
    assert fitted.event_kinds_ == ["visit"]
    assert fitted.event_source_ == "events"
    model, _ = two_kinds
    assert model.event_kinds_ == ["call", "visit"]  # sorted


def test_observation_times_are_the_default_events(data):
    model = LatentODE(**TINY).fit(data.observed)
    assert model.event_kinds_ == ["x"]
    assert model.event_source_ == "observations"
    out = model.predict_intensity(data.observed[data.observed.id == 0], times=[0.0, 5.0])
    assert out["kind"].tolist() == ["x", "x"]


def test_predict_intensity_layout_and_units(fitted, data):
    df = data.observed[data.observed.id.isin([0, 1])]
    grid = np.linspace(0.0, 10.0, 401)
    out = fitted.predict_intensity(
        df, events=_events_of(data.events, df), times=grid, num_samples=30, quantiles=(0.1, 0.9)
    )
    assert list(out.columns) == [
        "id",
        "time",
        "kind",
        "intensity",
        "intensity_q0.1",
        "intensity_q0.9",
        "expected_count",
    ]
    assert len(out) == 2 * grid.size
    assert (out["intensity_q0.1"] <= out["intensity_q0.9"]).all()
    assert (out["intensity"] > 0).all()
    for _, part in out.groupby("id"):
        # E[∫λ] from the compensator = ∫E[λ] by quadrature: checks the per-time-unit scaling
        total = part["expected_count"].sum()
        quad = np.trapezoid(part["intensity"], part["time"])
        assert total == pytest.approx(quad, rel=1e-3)
        assert part["expected_count"].iloc[0] == 0.0


def test_expected_count_on_an_interval(fitted, data):
    df = data.observed[data.observed.id == 3]
    fine = fitted.predict_intensity(
        df, events=_events_of(data.events, df), times=np.linspace(2.0, 7.0, 6), num_samples=20
    )
    coarse = fitted.predict_intensity(
        df, events=_events_of(data.events, df), times=[2.0, 7.0], num_samples=20
    )
    assert coarse["expected_count"].iloc[1] == pytest.approx(fine["expected_count"].sum())


def test_predict_intensity_kinds_and_horizon(two_kinds, data):
    model, events = two_kinds
    df = data.observed[data.observed.id == 0]
    both = model.predict_intensity(
        df, events=_events_of(events, df), times=[1.0, 2.0], num_samples=10
    )
    assert both["kind"].tolist() == ["call", "visit", "call", "visit"]
    one = model.predict_intensity(
        df, events=_events_of(events, df), times=[1.0, 2.0], num_samples=10, kinds=["visit"]
    )
    pd.testing.assert_frame_equal(
        one.reset_index(drop=True), both[both.kind == "visit"].reset_index(drop=True)
    )
    ahead = model.predict_intensity(df, events=_events_of(events, df), horizon=3.0, num_samples=5)
    assert ahead["time"].min() > 10.0
    assert ahead["time"].max() == pytest.approx(13.0)


def test_sample_events_posterior(fitted, data):
    df = data.observed[data.observed.id.isin([0, 5])]
    draws = fitted.sample_events(
        df, events=_events_of(data.events, df), n_samples=3, random_state=1
    )
    assert list(draws.columns) == ["sample", "id", "time", "kind"]
    assert set(draws["sample"]) <= {0, 1, 2}
    assert set(draws["id"]) <= {0, 5}
    assert draws["time"].between(0.0, 10.0).all()  # each series' window
    assert (draws["kind"] == "visit").all()
    again = fitted.sample_events(
        df, events=_events_of(data.events, df), n_samples=3, random_state=1
    )
    pd.testing.assert_frame_equal(draws, again)
    other = fitted.sample_events(
        df, events=_events_of(data.events, df), n_samples=3, random_state=2
    )
    assert not draws.equals(other)
    # a series' draws do not depend on the other series in the frame
    five = df[df.id == 5]
    alone = fitted.sample_events(
        five, events=_events_of(data.events, five), n_samples=3, random_state=1
    )
    pd.testing.assert_frame_equal(
        alone.reset_index(drop=True), draws[draws.id == 5].reset_index(drop=True)
    )


def test_sample_events_window_and_prior(fitted, data):
    df = data.observed[data.observed.id == 2]
    later = fitted.sample_events(
        df,
        events=_events_of(data.events, df),
        t_start=10.0,
        t_end=15.0,
        n_samples=4,
        random_state=0,
    )
    assert later["time"].between(10.0, 15.0).all()
    prior = fitted.sample_events(t_end=6.0, n_samples=5, random_state=0)
    assert prior["time"].between(0.0, 6.0).all()
    assert (prior["id"] == prior["sample"]).all()
    # roughly the fitted mean rate: the intensity starts at the data's rate (about 3 a unit)
    assert 0.5 * 3 * 6 < prior.groupby("sample").size().mean() < 2 * 3 * 6


def test_datetime_events_round_trip():
    data = make_clinical_events(n_series=12, n_labs=6, random_state=3)
    start = pd.Timestamp("2025-01-01")
    to_dt = lambda t: start + pd.to_timedelta(t, unit="D")  # noqa: E731
    obs = data.observed.assign(time=to_dt(data.observed["time"]))
    events = data.events.assign(time=to_dt(data.events["time"]))
    model = LatentODE(**{**TINY, "max_epochs": 1}).fit(obs, events=events, time_unit="D")
    df = obs[obs.id == 0]
    out = model.predict_intensity(
        df, events=_events_of(events, df), times=[start, start + pd.Timedelta("5D")], num_samples=5
    )
    assert out["time"].dtype.kind == "M"
    draws = model.sample_events(df, events=_events_of(events, df), n_samples=2, random_state=0)
    assert draws["time"].dtype.kind == "M"
    assert draws["time"].between(start, start + pd.Timedelta("10D")).all()
    prior = model.sample_events(t_end=pd.Timedelta("3D"), n_samples=2, random_state=0)
    assert prior["time"].dtype.kind == "m"


def test_save_and_load_keep_the_poisson_head(fitted, data, tmp_path):
    fitted.save(tmp_path / "model")
    loaded = LatentODE.load(tmp_path / "model")
    assert loaded.event_kinds_ == ["visit"]
    assert loaded.event_source_ == "events"
    df = data.observed[data.observed.id == 1]
    pd.testing.assert_frame_equal(
        fitted.predict_intensity(
            df, events=_events_of(data.events, df), times=[1.0, 4.0], num_samples=8
        ),
        loaded.predict_intensity(
            df, events=_events_of(data.events, df), times=[1.0, 4.0], num_samples=8
        ),
    )
    pd.testing.assert_frame_equal(
        fitted.sample_events(df, events=_events_of(data.events, df), random_state=3),
        loaded.sample_events(df, events=_events_of(data.events, df), random_state=3),
    )


def test_same_seed_same_intensity_model(data):
    small = {**TINY, "max_epochs": 1}
    a = LatentODE(**small).fit(data.observed, events=data.events)
    b = LatentODE(**small).fit(data.observed, events=data.events)
    df = data.observed[data.observed.id == 0]
    pd.testing.assert_frame_equal(
        a.predict_intensity(df, events=_events_of(data.events, df), num_samples=5),
        b.predict_intensity(df, events=_events_of(data.events, df), num_samples=5),
    )


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (
            lambda ev: pd.concat(
                [ev, pd.DataFrame({"id": [999], "time": [1.0], "kind": ["visit"]})]
            ),
            ValueError,
            r"names 1 series that are not in the observation frame, e.g. \[999\]",
        ),
        (
            lambda ev: ev.assign(time=np.where(np.arange(len(ev)) == 2, np.nan, ev["time"])),
            ValueError,
            r"bad event times in column 'time'.*missing",
        ),
        (
            lambda ev: ev.assign(time=pd.Timestamp("2025-01-01")),
            TypeError,
            r"bad event times in column 'time'",
        ),
        (lambda ev: ev.drop(columns="time"), ValueError, r"`events` lacks column\(s\) 'time'"),
        (
            lambda ev: ev.assign(kind=np.where(np.arange(len(ev)) == 0, None, ev["kind"])),
            ValueError,
            r"missing 'kind' at row",
        ),
        (lambda ev: ev.to_numpy(), TypeError, r"`events` must be a DataFrame"),
    ],
    ids=[
        "unknown id",
        "NaN time",
        "datetime for numeric",
        "no time column",
        "missing kind",
        "not a frame",
    ],
)
def test_bad_events_are_refused(data, change, error, match):
    with pytest.raises(error, match=match):
        LatentODE(**TINY).fit(data.observed, events=change(data.events))


def test_an_unknown_kind_in_the_events_is_refused(data):
    with pytest.raises(ValueError, match=r"kinds \['visit'\] that are not among .*\['call'\]"):
        LatentODE(**{**TINY, "event_kinds": ["call"]}).fit(data.observed, events=data.events)


def test_events_need_poisson(data):
    with pytest.raises(ValueError, match="set poisson=True"):
        LatentODE(**{**TINY, "poisson": False}).fit(data.observed, events=data.events)
    with pytest.raises(ValueError, match="`event_kinds` needs poisson=True"):
        LatentODE(**{**TINY, "poisson": False, "event_kinds": ["a"]}).fit(data.observed)


def test_event_kinds_must_be_the_features_without_events(data):
    with pytest.raises(ValueError, match=r"event_kinds must be None or the features \['x'\]"):
        LatentODE(**{**TINY, "event_kinds": ["visit"]}).fit(data.observed)


@pytest.mark.parametrize(
    ("kinds", "error", "match"),
    [
        (["nope"], ValueError, r"unknown event kind\(s\) \['nope'\]; this model knows \['visit'\]"),
        ([], ValueError, r"`kinds` is empty"),
    ],
)
def test_an_unknown_kind_at_prediction_time_is_refused(fitted, data, kinds, error, match):
    df = data.observed[data.observed.id == 0]
    with pytest.raises(error, match=match):
        fitted.predict_intensity(df, events=_events_of(data.events, df), kinds=kinds)
    with pytest.raises(error, match=match):
        fitted.sample_events(df, events=_events_of(data.events, df), kinds=kinds)


def test_event_methods_need_a_poisson_model(data):
    plain = LatentODE(**{**TINY, "poisson": False, "max_epochs": 1}).fit(data.observed)
    with pytest.raises(ValueError, match=r"no event intensities; fit it with LatentODE\(poisson"):
        plain.predict_intensity(data.observed)
    with pytest.raises(ValueError, match="no event intensities"):
        plain.sample_events(t_end=1.0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, ValueError, r"give `t_end`"),
        ({"t_end": 1.0, "t_start": 2.0}, ValueError, r"`t_end` must be after `t_start`"),
        ({"t_end": float("nan")}, ValueError, r"finite"),
        ({"t_end": 1.0, "n_samples": 10**9}, ValueError, r"at most 100,000"),
        ({"t_end": 1.0, "random_state": "x"}, TypeError, r"`random_state` must be an int"),
    ],
)
def test_bad_sample_events_arguments(fitted, kwargs, error, match):
    with pytest.raises(error, match=match):
        fitted.sample_events(**kwargs)


def test_bad_posterior_window(fitted, data):
    df = data.observed[data.observed.id == 0]
    with pytest.raises(TypeError, match=r"bad `t_start`"):
        fitted.sample_events(
            df, events=_events_of(data.events, df), t_start=pd.Timestamp("2020-01-01")
        )
    with pytest.raises(ValueError, match=r"`t_end` must be after `t_start`"):
        fitted.sample_events(df, events=_events_of(data.events, df), t_end=-5.0)


def test_recovers_a_known_intensity_on_held_out_series():
    """Labs on their own schedule, visits from λ = 3 (1 + 0.6 · health): relative L2 ≤ 0.15."""
    train = make_clinical_events(n_series=300, random_state=0)
    test = make_clinical_events(n_series=40, random_state=1)
    model = LatentODE(
        latent_dim=6,
        max_epochs=150,
        poisson=True,
        random_state=0,
        early_stopping_patience=None,
    ).fit(train.observed, events=train.events)
    grid = np.linspace(0.0, 10.0, 200)
    out = model.predict_intensity(
        test.observed, events=_events_of(test.events, test.observed), times=grid, num_samples=50
    )
    truth = test.intensity["intensity"].to_numpy()
    error = np.linalg.norm(out["intensity"].to_numpy() - truth) / np.linalg.norm(truth)
    constant = np.linalg.norm(truth - truth.mean()) / np.linalg.norm(truth)
    assert error <= 0.15
    assert constant > 0.3  # a constant rate could not pass: the test needs the dynamics


def test_an_id_or_time_column_named_kind_is_refused_with_events(data):
    # the events frame reads its kinds from a column "kind": an id column of that name clashes
    observed = data.observed.rename(columns={"id": "kind"})
    events = data.events.rename(columns={"id": "kind"})
    with pytest.raises(ValueError, match=r"which is also your id column; rename that column"):
        LatentODE(**TINY).fit(observed, id_col="kind", events=events)


def test_event_outputs_never_overwrite_the_id_or_time_column(data):
    # without an events frame, an id column named "kind" is fine to fit on, but the event
    # methods' own "kind" column would overwrite it
    observed = data.observed.rename(columns={"id": "kind"})
    model = LatentODE(**TINY).fit(observed, id_col="kind")
    part = observed[observed["kind"] < 2]
    with pytest.raises(ValueError, match=r"predict_intensity\(\) adds the column\(s\) 'kind'"):
        model.predict_intensity(part)
    with pytest.raises(ValueError, match=r"sample_events\(\) adds the column\(s\) 'kind'"):
        model.sample_events(part, n_samples=2)
