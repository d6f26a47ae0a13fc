"""IrregularDataset: pandas frame → tensors → pandas frame, and mask invariance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from latentode.data import EventSeries, IrregularDataset, TimeScaler, frame_to_series


@pytest.fixture
def frame():
    return pd.DataFrame(
        {
            "patient": ["b", "b", "a", "a", "a", "c"],
            "t": [5.0, 3.0, 1.0, 4.0, 2.5, 7.0],
            "hr": [60.0, np.nan, 70.0, 72.0, 71.0, 80.0],
            "bp": [np.nan, 120.0, 110.0, np.nan, 112.0, 130.0],
        }
    )


def _sorted(df, id_col, time_col):
    order = {k: i for i, k in enumerate(pd.unique(df[id_col]))}
    key = df[id_col].map(order)
    return (
        df.assign(_k=key)
        .sort_values(["_k", time_col], kind="stable")
        .drop(columns="_k")
        .reset_index(drop=True)
    )


def test_round_trip_float_times(frame):
    ds = IrregularDataset.from_frame(frame, id_col="patient", time_col="t", dtype=torch.float64)
    batch = ds.batch()
    assert batch.values.shape == (3, 3, 2)
    assert ds.ids == ["b", "a", "c"]  # first-appearance order
    back = ds.to_frame(batch)
    pd.testing.assert_frame_equal(back, _sorted(frame, "patient", "t"), check_dtype=False)


def test_round_trip_timedelta_times():
    df = pd.DataFrame(
        {
            "id": ["a", "a", "b"],
            "time": pd.to_timedelta(["0h", "36h", "12h"]),
            "x": [0.5, 1.5, -1.0],
        }
    )
    ds = IrregularDataset.from_frame(df, time_unit="D", dtype=torch.float64)
    back = ds.to_frame(ds.batch())
    assert back["time"].dtype.kind == "m"
    assert (back["time"] - df["time"]).abs().max() < pd.Timedelta("1ms")
    np.testing.assert_allclose(back["x"], df["x"])


def test_round_trip_datetime_times():
    start = pd.Timestamp("2024-03-01 08:00")
    df = pd.DataFrame(
        {
            "id": [1, 1, 2, 2],
            "time": [
                start,
                start + pd.Timedelta("90min"),
                start + pd.Timedelta("2D"),
                start + pd.Timedelta("3D"),
            ],
            "x": [0.5, 1.5, -1.0, 2.0],
        }
    )
    ds = IrregularDataset.from_frame(df, time_unit="h", dtype=torch.float64)
    batch = ds.batch()
    assert batch.times[0].tolist() == pytest.approx([0.0, 1.5 / 24.0])  # hours / longest span
    back = ds.to_frame(batch)
    assert back["time"].dtype.kind == "M"
    assert (back["time"] - df["time"]).abs().max() < pd.Timedelta("1ms")
    np.testing.assert_allclose(back["x"], df["x"])


def test_times_are_scaled_per_series_by_default(frame):
    ds = IrregularDataset.from_frame(frame, id_col="patient", time_col="t")
    batch = ds.batch()
    # a: 1.0, 2.5, 4.0 ; b: 3.0, 5.0 ; c: 7.0 -> longest span 3.0
    assert ds.scaler.scale_ == 3.0
    torch.testing.assert_close(batch.times[1], torch.tensor([0.0, 0.5, 1.0]))
    torch.testing.assert_close(batch.times[0], torch.tensor([0.0, 2 / 3, 2 / 3]))


def test_new_frame_reuses_the_fitted_format_and_scaler(frame):
    train = IrregularDataset.from_frame(frame, id_col="patient", time_col="t")
    new = frame[frame["patient"] == "a"].copy()
    ds = IrregularDataset.from_frame(new, fmt=train.fmt, scaler=train.scaler)
    assert ds.scaler is train.scaler
    assert ds.ids == ["a"]


def test_masked_garbage_never_reaches_the_tensors(frame):
    """NaN is a mask and a zero: whatever sat under the mask cannot leak into values."""
    clean = IrregularDataset.from_frame(frame, id_col="patient", time_col="t").batch()
    assert torch.isfinite(clean.values).all()
    assert (clean.values[clean.mask == 0] == 0).all()


def test_to_frame_writes_predictions_at_new_times(frame):
    ds = IrregularDataset.from_frame(frame, id_col="patient", time_col="t", dtype=torch.float64)
    batch = ds.batch()
    grid = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64).expand(3, 3)  # model time
    values = torch.arange(18, dtype=torch.float64).reshape(3, 3, 2)
    out = ds.to_frame(batch, values, times=grid, value_cols=["hr_mean", "bp_mean"])
    assert list(out.columns) == ["patient", "t", "hr_mean", "bp_mean"]
    assert len(out) == 9
    a_rows = out[out["patient"] == "a"]
    np.testing.assert_allclose(a_rows["t"], [1.0, 4.0, 7.0])  # origin 1.0 + k·scale 3.0


def test_events_are_scaled_with_their_series(frame):
    series, fmt = frame_to_series(frame, id_col="patient", time_col="t")
    scaler = TimeScaler().fit(series)
    events = [
        EventSeries(np.array([4.0]), np.array([1])),
        EventSeries(np.array([]), np.array([])),
        EventSeries(np.array([7.0, 8.5]), np.array([0, 0])),
    ]
    batch = IrregularDataset(series, fmt, scaler, events=events).batch()
    assert batch.events.times[0, 0].item() == pytest.approx((4.0 - 3.0) / 3.0)
    assert batch.events.mask.tolist() == [[1, 0], [0, 0], [1, 1]]


def test_dataset_errors(frame):
    series, fmt = frame_to_series(frame, id_col="patient", time_col="t")
    scaler = TimeScaler().fit(series)
    with pytest.raises(ValueError, match=r"one EventSeries per series \(3\); got 1"):
        IrregularDataset(series, fmt, scaler, events=[EventSeries(np.zeros(1), np.zeros(1))])
    unsorted = [EventSeries(np.array([2.0, 1.0]), np.array([0, 0]))] * 3
    with pytest.raises(ValueError, match=r"must be finite and sorted by time"):
        IrregularDataset(series, fmt, scaler, events=unsorted)
    with pytest.raises(TypeError, match=r"`dtype` must be a floating torch dtype"):
        IrregularDataset(series, fmt, scaler, dtype=torch.int64)
    with pytest.raises(ValueError, match=r"at least one series"):
        IrregularDataset([], fmt, scaler)
    with pytest.raises(ValueError, match=r"`origin` must be one of 'global', 'series'"):
        IrregularDataset.from_frame(frame, id_col="patient", time_col="t", origin="first")
