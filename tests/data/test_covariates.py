"""Covariates from pandas: static features and known inputs, validated, scaled and batched."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from latentode.data import IrregularDataset, TimeScaler, frame_to_series
from latentode.data.covariates import (
    CovariateSchema,
    check_known_until,
    frames_to_covariates,
    schema_from_frames,
)
from latentode.lightning.tasks import split_items


def _frames():
    obs = pd.DataFrame(
        {
            "id": ["a", "a", "a", "b", "b"],
            "time": [1.0, 2.0, 4.0, 0.0, 3.0],
            "x": [0.1, 0.2, 0.3, 1.0, 1.1],
        }
    )
    inputs = pd.DataFrame(
        {
            "id": ["a", "a", "a", "b", "b"],
            "time": [0.5, 2.5, 5.0, 0.0, 3.0],
            "rate": [1.0, 3.0, 0.0, 2.0, 2.0],
            "dose": [0.0, 10.0, 0.0, 5.0, 0.0],
        }
    )
    static = pd.DataFrame({"id": ["b", "a"], "weight": [80.0, 60.0]})
    return obs, inputs, static


def _read(obs, inputs, static, input_kind=None):
    series, fmt = frame_to_series(obs)
    schema = schema_from_frames(inputs, static, fmt, input_kind)
    return series, fmt, schema, frames_to_covariates(series, fmt, schema, inputs, static)


def test_frames_become_each_series_schedule_and_static_row():
    obs, inputs, static = _frames()
    series, _, schema, covs = _read(obs, inputs, static, {"dose": "impulse"})
    assert (schema.held, schema.impulse, schema.static) == (("rate",), ("dose",), ("weight",))
    a, b = covs  # the series' order, whatever the frames' order
    assert [s.id for s in series] == ["a", "b"]
    np.testing.assert_array_equal(a.times, [0.5, 2.5, 5.0])
    np.testing.assert_array_equal(a.held[:, 0], [1.0, 3.0, 0.0])
    np.testing.assert_array_equal(a.doses[:, 0], [0.0, 10.0, 0.0])
    np.testing.assert_array_equal(a.static, [60.0])
    np.testing.assert_array_equal(b.static, [80.0])


def test_the_schema_scales_held_inputs_and_static_features_and_keeps_zero_doses_zero():
    obs, inputs, static = _frames()
    _, _, schema, covs = _read(obs, inputs, static, {"dose": "impulse"})
    schema.fit(covs)
    held = np.concatenate([c.held for c in covs])[:, 0]
    np.testing.assert_allclose(schema.held_mean, [held.mean()])
    np.testing.assert_allclose(schema.held_scale, [held.std()])
    np.testing.assert_allclose(schema.dose_scale, [np.sqrt((10.0**2 + 5.0**2) / 2)])
    scaled = schema.transform(covs[0], origin=1.0, time_scale=2.0)
    np.testing.assert_allclose(scaled.times, [-0.25, 0.75, 2.0])  # (t - origin) / scale
    assert scaled.doses[0, 0] == 0.0
    again = CovariateSchema.from_dict(schema.to_dict())
    np.testing.assert_array_equal(again.dose_scale, schema.dose_scale)
    assert again.input_kind == {"rate": "held", "dose": "impulse"}


def test_batches_carry_the_schedule_through_conditioning_and_target_splits():
    obs, inputs, static = _frames()
    series, fmt, schema, covs = _read(obs, inputs, static, {"dose": "impulse"})
    scaler = TimeScaler().fit(series)
    ds = IrregularDataset(series, fmt, scaler, covariates=(schema.fit(covs), covs))
    cond, target = split_items(
        list(ds), "extrapolation", cond_fraction=1.0, extrap_cut=0.5, generator=None
    )
    for batch in (cond, target, ds.batch()):
        cov = batch.covariates
        assert cov is not None
        assert cov.times.shape == (2, 3)
        assert cov.lengths.tolist() == [3, 2]
        assert cov.static.shape == (2, 1)
        assert cov.held.shape == (2, 3, 1)
    # the held value in force: the latest change point at or before each time
    cov = ds.batch().covariates
    # model times: (t - first observation) / 3, the longest span; a's changes at -1/6, 0.5, 4/3
    t = torch.tensor([[-0.1, 0.5, 1.0], [0.0, 0.9, 1.0]])
    at = cov.held_at(t)[..., 0] * schema.held_scale[0] + schema.held_mean[0]
    torch.testing.assert_close(at, torch.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]))
    given = cov.doses_until(t)[..., 0] * schema.dose_scale[0]
    torch.testing.assert_close(given, torch.tensor([[0.0, 10.0, 10.0], [5.0, 5.0, 5.0]]))


def test_inputs_must_cover_the_window():
    obs, inputs, static = _frames()
    _, fmt, _, covs = _read(obs, inputs, static)
    check_known_until(covs, ["a", "b"], np.array([5.0, 3.0]), fmt, "the times")
    with pytest.raises(
        ValueError,
        match=r"the inputs of series 'b' end at 3, but the times reach 3.5; .* add a row at or "
        r"after 3.5",
    ):
        check_known_until(covs, ["a", "b"], np.array([5.0, 3.5]), fmt, "the times")
    late = inputs.assign(time=inputs["time"].where(inputs["id"] != "a", inputs["time"] + 1.0))
    with pytest.raises(
        ValueError, match=r"inputs of series 'a' start at 1.5, after its first observation at 1"
    ):
        _read(obs, late, static)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (
            lambda i, s: (i.assign(id=i["id"].replace("b", "z")), s),
            ValueError,
            r"`inputs` names 1 series that are not in the observation frame, e.g. \['z'\]",
        ),
        (
            lambda i, s: (i[i["id"] == "a"], s),
            ValueError,
            r"`inputs` has no rows for series 'b'",
        ),
        (
            lambda i, s: (i, s[s["id"] == "a"]),
            ValueError,
            r"`static` has no row for 1 series, e.g. \['b'\]",
        ),
        (
            lambda i, s: (i, pd.concat([s, s.iloc[:1]])),
            ValueError,
            r"`static` must have one row per id; ids \['b'\] have several",
        ),
        (
            lambda i, s: (i, s.assign(id=["b", "q"])),
            ValueError,
            r"`static` names 1 series that are not in the observation frame",
        ),
        (
            lambda i, s: (i.assign(rate=[1.0, np.nan, 0.0, 2.0, 2.0]), s),
            ValueError,
            r"`inputs` column 'rate' has 1 missing or infinite value\(s\), e.g. for id 'a'",
        ),
        (
            lambda i, s: (i, s.assign(weight=[np.inf, 60.0])),
            ValueError,
            r"`static` column 'weight' has 1 missing or infinite",
        ),
        (
            lambda i, s: (i.assign(rate=["fast", "slow", "off", "on", "on"]), s),
            TypeError,
            r"`inputs`: column 'rate' must hold numbers or booleans",
        ),
        (
            lambda i, s: (i.assign(time=[0.5, 0.5, 5.0, 0.0, 3.0]), s),
            ValueError,
            r"`inputs` has several rows for id 'a' at time 0.5; give one row per change point",
        ),
        (
            lambda i, s: (i.assign(time=[0.5, np.nan, 5.0, 0.0, 3.0]), s),
            ValueError,
            r"bad input times in column 'time': `times` must have no missing values",
        ),
        (
            lambda i, s: (i.drop(columns="time"), s),
            ValueError,
            r"`inputs` lacks column\(s\) 'time'",
        ),
        (lambda i, s: (i[["id", "time"]], s), ValueError, r"`inputs` has no columns besides"),
        (lambda i, s: (i.values, s), TypeError, r"`inputs` must be a DataFrame"),
    ],
)
def test_bad_covariate_frames_are_refused(change, error, match):
    obs, inputs, static = _frames()
    inputs, static = change(inputs, static)
    with pytest.raises(error, match=match):
        _read(obs, inputs, static)


@pytest.mark.parametrize(
    ("kind", "match"),
    [
        ({"bolus": "impulse"}, r"`input_kind` names \['bolus'\], which are not input columns"),
        ({"dose": "pulse"}, r"`input_kind` values must be one of \['held', 'impulse'\]"),
        (["dose"], r"`input_kind` must be a dict"),
    ],
)
def test_bad_input_kinds_are_refused(kind, match):
    obs, inputs, static = _frames()
    with pytest.raises((ValueError, TypeError), match=match):
        _read(obs, inputs, static, kind)


def test_frames_that_do_not_match_the_fitted_schema_are_refused():
    obs, inputs, static = _frames()
    series, fmt, schema, _ = _read(obs, inputs, static, {"dose": "impulse"})
    with pytest.raises(ValueError, match=r"missing \['dose'\]"):
        frames_to_covariates(series, fmt, schema, inputs.drop(columns="dose"), static)
    with pytest.raises(ValueError, match=r"not seen in fit \['age'\]"):
        frames_to_covariates(series, fmt, schema, inputs, static.assign(age=1.0))
    with pytest.raises(ValueError, match=r"this model reads known inputs; give `inputs=`"):
        frames_to_covariates(series, fmt, schema, None, static)
    with pytest.raises(ValueError, match=r"fitted without static features"):
        frames_to_covariates(series, fmt, CovariateSchema(held=("rate",)), inputs, static)
