"""FeatureScaler: per-feature standardisation over observed values only."""

from __future__ import annotations

import json

import numpy as np
import pytest

from latentode.data import FeatureScaler, Series


def _series(values, mask, sid=0):
    values = np.asarray(values, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    return Series(sid, np.arange(values.shape[0], dtype=np.float64), values * mask, mask)


def test_statistics_use_observed_values_only():
    a = _series([[1.0, 100.0], [3.0, 0.0]], [[1, 1], [1, 0]])
    b = _series([[5.0, 300.0]], [[1, 1]], sid=1)
    scaler = FeatureScaler().fit([a, b])
    np.testing.assert_allclose(scaler.mean_, [3.0, 200.0])
    np.testing.assert_allclose(scaler.scale_, [np.std([1, 3, 5]), 100.0])
    scaled = scaler.transform_series(a)
    assert scaled.values[1, 1] == 0.0  # unobserved stays 0
    np.testing.assert_allclose(
        scaler.inverse_transform(scaled.values)[scaled.mask], a.values[a.mask]
    )


def test_garbage_under_the_mask_changes_nothing():
    clean = _series([[1.0], [2.0], [4.0]], [[1], [1], [0]])
    dirty = Series(0, clean.times, np.array([[1.0], [2.0], [1e9]]), clean.mask)
    a, b = FeatureScaler().fit([clean]), FeatureScaler().fit([dirty])
    assert a.mean_ == b.mean_
    assert a.scale_ == b.scale_
    assert np.array_equal(a.transform_series(dirty).values, a.transform_series(clean).values)


def test_constant_feature_keeps_scale_one_and_round_trips():
    scaler = FeatureScaler().fit([_series([[2.0], [2.0]], [[1], [1]])])
    assert scaler.scale_.tolist() == [1.0]
    assert scaler.inverse_transform(np.zeros((1, 1))).tolist() == [[2.0]]


def test_json_round_trip_and_bad_state():
    scaler = FeatureScaler().fit([_series([[1.0, 2.0], [3.0, 5.0]], [[1, 1], [1, 1]])])
    again = FeatureScaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    assert np.array_equal(again.mean_, scaler.mean_)
    assert np.array_equal(again.scale_, scaler.scale_)
    with pytest.raises(ValueError, match=r"exactly the keys"):
        FeatureScaler.from_dict({"mean_": [0.0]})
    with pytest.raises(ValueError, match=r"`scale_` finite and > 0"):
        FeatureScaler.from_dict({"mean_": [0.0], "scale_": [0.0]})


def test_never_observed_feature_is_named():
    s = _series([[1.0, 0.0]], [[1, 0]])
    with pytest.raises(ValueError, match=r"'crp' are never observed"):
        FeatureScaler().fit([s], names=["hb", "crp"])
    with pytest.raises(RuntimeError, match=r"not fitted"):
        FeatureScaler().transform_series(s)
