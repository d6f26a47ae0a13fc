"""A series' window runs from its first observation-or-event to its last (issue 14).

Events after the last lab draw are the normal case in clinical data; they used to be refused
("add all-NaN rows to widen a window"). Now each series' window is widened to its events by
all-missing rows, so the Poisson likelihood integrates the intensity over every event's time
and counts each one, and the series' time origin (its first observation row) never moves.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from latentode.data import frame_to_series
from latentode.data.dataset import EventSeries, IrregularDataset, cover_events
from latentode.data.events import frame_to_events
from latentode.data.scaling import TimeScaler
from latentode.data.series import Series
from latentode.estimator import LatentODE
from latentode.lightning import IrregularTimeSeriesDataModule, split_items


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _labs() -> pd.DataFrame:
    """Three patients with labs on [0, 4] (patient 2 from 1.0), one feature."""
    rows = []
    for pid, times in enumerate([[0.0, 1.5, 4.0], [0.0, 2.0, 3.0, 4.0], [1.0, 2.5, 4.0]]):
        rows.append(pd.DataFrame({"id": pid, "time": times, "x": np.cos(times)}))
    return pd.concat(rows, ignore_index=True)


# events: patient 0 after its last lab, patient 1 inside and exactly at both edges, patient 2
# before its first lab and after its last
EVENTS = pd.DataFrame(
    {
        "id": [0, 0, 0, 1, 1, 1, 2, 2, 2],
        "time": [1.0, 6.0, 9.5, 0.0, 2.2, 4.0, 0.25, 3.0, 7.0],
    }
)


def _dataset(df: pd.DataFrame, events: pd.DataFrame | None) -> IrregularDataset:
    series, fmt = frame_to_series(df)
    scaler = TimeScaler(origin="series").fit(series)
    scaler.scale_ = 2.0  # fixed, so two datasets of one frame are comparable number for number
    event_series = None if events is None else frame_to_events(events, series, fmt, ["event"])
    return IrregularDataset(series, fmt, scaler, events=event_series)


def test_cover_events_adds_a_masked_row_only_at_an_outlying_end():
    s = Series(1, np.array([0.0, 2.0]), np.ones((2, 2)), np.ones((2, 2), dtype=bool))
    inside = EventSeries(np.array([0.0, 1.0, 2.0]), np.zeros(3, dtype=np.int64))
    assert cover_events(s, inside) is s  # events exactly at the edges widen nothing
    both = EventSeries(np.array([-1.0, 1.0, 5.0]), np.zeros(3, dtype=np.int64))
    wide = cover_events(s, both)
    assert wide.times.tolist() == [-1.0, 0.0, 2.0, 5.0]
    assert wide.mask.tolist() == [[False, False], [True, True], [True, True], [False, False]]
    assert wide.values[[0, -1]].tolist() == [[0.0, 0.0], [0.0, 0.0]]
    late = cover_events(s, EventSeries(np.array([3.0]), np.zeros(1, dtype=np.int64)))
    assert late.times.tolist() == [0.0, 2.0, 3.0]


def test_every_event_is_carried_and_the_window_ends_at_the_last_event():
    ds = _dataset(_labs(), EVENTS)
    batch = ds.batch()
    assert int(batch.events.mask.sum()) == len(EVENTS)  # nothing dropped
    # the window (first to last row of each series, in user units) covers its events
    first = [s.times[0] for s in ds.series]
    last = [s.times[-1] for s in ds.series]
    assert first == [0.0, 0.0, 0.25]
    assert last == [9.5, 4.0, 7.0]
    # the time origin is the first observation row, events or not
    assert ds.origins.tolist() == [0.0, 0.0, 1.0]
    np.testing.assert_array_equal(ds.origins, _dataset(_labs(), None).origins)


def test_widening_equals_the_all_nan_rows_a_user_had_to_add():
    """The likelihood sees exactly the batch it saw when users widened windows by hand."""
    by_hand = pd.concat(
        [_labs(), pd.DataFrame({"id": [0, 2, 2], "time": [9.5, 0.25, 7.0], "x": np.nan})]
    )
    auto, manual = _dataset(_labs(), EVENTS), _dataset(by_hand, EVENTS)
    a, m = auto.batch(), manual.batch()
    # origins differ only where the hand-made row moved patient 2's first row (to 0.25)
    assert manual.origins.tolist() == [0.0, 0.0, 0.25]
    shift = torch.tensor((auto.origins - manual.origins) / 2.0, dtype=a.times.dtype)[:, None]
    torch.testing.assert_close(a.times + shift, m.times)
    torch.testing.assert_close(a.mask, m.mask)
    torch.testing.assert_close(a.values, m.values)
    torch.testing.assert_close(a.events.times + shift, m.events.times)
    torch.testing.assert_close(a.events.mask, m.events.mask)


@pytest.mark.parametrize("task", ["interpolation", "extrapolation"])
def test_training_targets_score_the_events_after_the_last_observation(task):
    dm = IrregularTimeSeriesDataModule(
        _labs(), events=EVENTS, val_fraction=0.0, test_fraction=0.0, batch_size=3
    )
    dm.setup()
    items = [dm.dataset[i] for i in range(3)]
    _, target = split_items(
        items, task, cond_fraction=0.5, extrap_cut=0.5, generator=torch.Generator().manual_seed(0)
    )
    # each target's window ends at its series' last event, and the events after the last
    # observation are inside it (the compensator runs from a target's first to last time)
    last_event = torch.stack([it.event_times.max() for it in items])
    torch.testing.assert_close(target.times.amax(1), last_event)
    last_lab = [it.times[(it.mask > 0).any(-1)].max() for it in items]
    n_late = sum(int((it.event_times > t).sum()) for it, t in zip(items, last_lab, strict=True))
    assert n_late == 3  # 6.0 and 9.5 of patient 0, 7.0 of patient 2
    kept = int(target.events.mask.sum())
    # interpolation targets keep every event; extrapolation targets those after the cut,
    # which lies inside the labs, so at least every late one
    assert kept == len(EVENTS) if task == "interpolation" else kept >= n_late


def test_a_fit_with_late_and_early_events_scores_every_event():
    model = LatentODE(
        latent_dim=2,
        encoder_hidden=4,
        decoder_width=4,
        decoder_depth=1,
        max_epochs=1,
        poisson=True,
        val_fraction=0.0,
        random_state=0,
    )
    model.fit(_labs(), events=EVENTS)
    details = model.score_details(_labs(), n_samples=2, events=EVENTS)
    assert details.loc["events", "n"] == len(EVENTS)
    assert np.isfinite(details.loc["events", "log_likelihood"])


def test_late_events_teach_the_rate_after_the_labs():
    """Labs on [0, 2]; visits at rate 1 while labs are drawn and 4 after, to 8. Mean 3.25.

    With the late visits the model's mean intensity over [0, 8] is near 3.25; fitted on the
    visits inside the labs' span alone (all the old code accepted), it stays near 1.
    """
    rng = np.random.default_rng(0)
    labs, visits = [], []
    for pid in range(24):
        t = np.sort(rng.uniform(0, 2, 5))
        labs.append(
            pd.DataFrame({"id": pid, "time": np.r_[0.0, t, 2.0], "x": np.sin(np.r_[0.0, t, 2.0])})
        )
        early = rng.uniform(0, 2, rng.poisson(1 * 2))
        late = rng.uniform(2, 8, rng.poisson(4 * 6))
        visits.append(pd.DataFrame({"id": pid, "time": np.sort(np.r_[early, late])}))
    labs, visits = pd.concat(labs, ignore_index=True), pd.concat(visits, ignore_index=True)
    grid = np.linspace(0.0, 8.0, 33)
    tiny = {"latent_dim": 2, "encoder_hidden": 4, "decoder_width": 8, "decoder_depth": 1}

    def mean_rate(events):
        model = LatentODE(**tiny, poisson=True, max_epochs=3, random_state=0)
        model.fit(labs, events=events)
        seen = visits[visits["time"] <= 2.0]  # at prediction, the visits of the labs' span
        return model.predict_intensity(labs, times=grid, num_samples=10, events=seen)[
            "intensity"
        ].mean()

    with_late = mean_rate(visits)
    without = mean_rate(visits[visits["time"] <= 2.0])
    true_mean = (1 * 2 + 4 * 6) / 8
    assert abs(with_late - true_mean) < abs(without - true_mean)
    assert abs(with_late - true_mean) < 0.25 * true_mean
