"""IrregularBatch, collation by position, the union grid, and TimeScaler."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentode.data.batch import EventBatch, IrregularBatch
from latentode.data.collate import SeriesItem, collate
from latentode.data.scaling import TimeScaler
from latentode.data.series import Series


def _item(i, times, values, mask=None, events=None):
    times = torch.tensor(times, dtype=torch.float32)
    values = torch.tensor(values, dtype=torch.float32).reshape(len(times), -1)
    mask = torch.ones_like(values) if mask is None else torch.tensor(mask, dtype=torch.float32)
    ev_t = ev_k = None
    if events is not None:
        ev_t = torch.tensor(events[0], dtype=torch.float32)
        ev_k = torch.tensor(events[1], dtype=torch.long)
    return SeriesItem(i, times, values, mask, ev_t, ev_k)


@pytest.fixture
def ragged():
    return collate(
        [
            _item(
                0,
                [0.0, 0.5, 0.9],
                [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]],
                mask=[[1, 1], [1, 0], [0, 1]],
            ),
            _item(1, [0.0, 0.2], [[7.0, 8.0], [9.0, 10.0]]),
            _item(2, [0.1], [[11.0, 12.0]]),
        ]
    )


def test_collate_pads_by_position_with_zero_mask(ragged):
    assert ragged.values.shape == (3, 3, 2)
    assert ragged.lengths.tolist() == [3, 2, 1]
    assert ragged.index.tolist() == [0, 1, 2]
    # padding positions: mask 0, value 0
    assert ragged.mask[1, 2].sum() == 0
    assert ragged.values[1, 2].abs().sum() == 0
    assert ragged.mask[2, 1:].sum() == 0
    assert ragged.values[2, 1:].abs().sum() == 0
    # each series keeps its own times; padding repeats the last time, so Δt = 0 into padding
    expected = torch.tensor([[0.0, 0.5, 0.9], [0.0, 0.2, 0.2], [0.1] * 3])
    torch.testing.assert_close(ragged.times, expected)
    assert ragged.position_mask.tolist() == [[1, 1, 1], [1, 1, 0], [1, 0, 0]]


def test_collate_keeps_the_missingness_mask(ragged):
    assert ragged.mask[0].tolist() == [[1, 1], [1, 0], [0, 1]]


def test_union_grid_gathers_each_series_own_times(ragged):
    grid = ragged.union_grid()
    assert grid.times.tolist() == pytest.approx([0.0, 0.1, 0.2, 0.5, 0.9])
    torch.testing.assert_close(grid.times[grid.index], ragged.times)
    # a "solution" whose value is its own time, with sample and feature dims
    traj = grid.times.reshape(1, 1, -1, 1).expand(4, 3, -1, 2)  # (samples, batch, union, d)
    gathered = grid.gather(traj)
    assert gathered.shape == (4, 3, 3, 2)
    torch.testing.assert_close(gathered[..., 0], ragged.times.expand(4, 3, 3))


def test_union_grid_can_include_a_shared_start(ragged):
    grid = ragged.union_grid(include=[-1.0])
    assert grid.times[0] == -1.0
    torch.testing.assert_close(grid.times[grid.index], ragged.times)


def test_union_grid_gather_rejects_wrong_shapes(ragged):
    grid = ragged.union_grid()
    with pytest.raises(ValueError, match=r"n_union=5"):
        grid.gather(torch.zeros(3, 4, 1))
    with pytest.raises(ValueError, match=r"batch size 2, the grid 3"):
        grid.gather(torch.zeros(2, 5, 1))


def test_collate_pads_events():
    batch = collate(
        [
            _item(0, [0.0, 1.0], [[1.0], [2.0]], events=([0.2, 0.4, 0.4], [0, 1, 1])),
            _item(1, [0.0], [[1.0]], events=([], [])),
        ]
    )
    ev = batch.events
    assert ev.times.shape == (2, 3)
    assert ev.mask.tolist() == [[1, 1, 1], [0, 0, 0]]
    assert ev.kinds[0].tolist() == [0, 1, 1]
    assert ev.times[1].tolist() == [0.0, 0.0, 0.0]


def test_batch_moves_between_dtypes_and_devices(ragged):
    moved = ragged.to("cpu", torch.float64)
    assert moved.values.dtype == moved.mask.dtype == moved.times.dtype == torch.float64
    assert moved.lengths.dtype == torch.long
    assert moved.index.dtype == torch.long
    assert moved.device.type == "cpu"
    if torch.cuda.is_available():
        gpu = ragged.to("cuda")
        assert gpu.values.is_cuda
        assert gpu.lengths.is_cuda
        assert gpu.index.is_cuda
        torch.testing.assert_close(gpu.union_grid().times.cpu(), ragged.union_grid().times)


def test_select_takes_a_sub_batch(ragged):
    sub = ragged.select([2, 0])
    assert sub.lengths.tolist() == [1, 3]
    assert sub.index.tolist() == [2, 0]
    torch.testing.assert_close(sub.values[1], ragged.values[0])


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"values": torch.zeros(3, 3)}, r"`values` must be \(batch, max_obs, n_features\)"),
        ({"mask": torch.zeros(3, 3, 1)}, r"`mask` must match `values`"),
        ({"times": torch.zeros(3, 2)}, r"`times` must be \(batch, max_obs\)"),
        ({"lengths": torch.ones(2, dtype=torch.long)}, r"`lengths` must be \(batch,\)"),
        ({"index": torch.zeros(4, dtype=torch.long)}, r"`index` must be \(batch,\)"),
    ],
)
def test_batch_shape_errors(ragged, change, match):
    fields = {
        "values": ragged.values,
        "mask": ragged.mask,
        "times": ragged.times,
        "lengths": ragged.lengths,
        "index": ragged.index,
    }
    with pytest.raises(ValueError, match=match):
        IrregularBatch(**{**fields, **change})


def test_event_batch_shape_errors():
    with pytest.raises(ValueError, match=r"event `times` and `kinds`"):
        EventBatch(torch.zeros(2, 3), torch.zeros(2, 2, dtype=torch.long), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"event `mask` must be"):
        EventBatch(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 2))


def test_collate_refuses_nothing():
    with pytest.raises(ValueError, match="empty list"):
        collate([])


# --- TimeScaler ------------------------------------------------------------------------------


def _series(times, sid=0):
    times = np.asarray(times, dtype=np.float64)
    return Series(sid, times, np.zeros((len(times), 1)), np.ones((len(times), 1), dtype=bool))


def test_time_scaler_per_series_origin():
    series = [_series([10.0, 12.0, 14.0], "a"), _series([100.0, 101.0], "b")]
    scaler = TimeScaler().fit(series)
    assert scaler.scale_ == 4.0  # longest span from each series' own start
    origins = scaler.origins(series)
    assert origins.tolist() == [10.0, 100.0]
    assert scaler.transform(series[0].times, origins[0]).tolist() == [0.0, 0.5, 1.0]
    back = scaler.inverse_transform(scaler.transform(series[1].times, origins[1]), origins[1])
    np.testing.assert_allclose(back, series[1].times)


def test_time_scaler_global_origin():
    series = [_series([10.0, 12.0]), _series([11.0, 30.0])]
    scaler = TimeScaler(origin="global").fit(series)
    assert scaler.global_origin_ == 10.0
    assert scaler.scale_ == 20.0
    assert scaler.origins(series).tolist() == [10.0, 10.0]


def test_time_scaler_fixed_scale_and_single_points():
    assert TimeScaler(scale=7.0).fit([_series([1.0, 3.0])]).scale_ == 7.0
    assert TimeScaler().fit([_series([5.0]), _series([9.0])]).scale_ == 1.0


def test_time_scaler_round_trips_through_a_dict():
    scaler = TimeScaler(origin="global").fit([_series([1.0, 3.0])])
    again = TimeScaler.from_dict(scaler.to_dict())
    assert (again.scale_, again.global_origin_, again.origin) == (2.0, 1.0, "global")


@pytest.mark.parametrize(
    ("scaler", "series", "error", "match"),
    [
        (TimeScaler(origin="local"), [_series([0.0, 1.0])], ValueError, r"`origin` must be one"),
        (TimeScaler(scale=-1.0), [_series([0.0, 1.0])], ValueError, r"`scale` must be > 0"),
        (TimeScaler(), [], ValueError, r"at least one series"),
    ],
)
def test_time_scaler_bad_arguments(scaler, series, error, match):
    with pytest.raises(error, match=match):
        scaler.fit(series)


def test_time_scaler_must_be_fitted_and_state_validated():
    with pytest.raises(RuntimeError, match="not fitted yet"):
        TimeScaler().transform(np.zeros(2), 0.0)
    with pytest.raises(ValueError, match=r"missing \['scale_'\], unknown \['scael_'\]"):
        TimeScaler.from_dict(
            {"origin": "series", "scale": None, "scael_": 1.0, "global_origin_": None}
        )
