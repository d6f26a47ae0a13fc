"""Feature transforms: exact round trips, their slopes, and clear refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from latentode.data.transforms import TRANSFORMS, FeatureTransform


def _frame():
    return pd.DataFrame(
        {
            "id": [0, 0, 1, 1],
            "time": [0.0, 1.0, 0.0, 2.0],
            "conc": [0.5, 2.0, np.nan, 8.0],
            "share": [0.1, 0.5, 0.9, np.nan],
            "other": [-1.0, 0.0, 1.0, 2.0],
        }
    )


def test_apply_then_inverse_is_the_identity_and_nan_stays_nan():
    t = FeatureTransform({"conc": "log", "share": "logit"}, ["conc", "share", "other"])
    out = t.apply(_frame(), "id", "time")
    assert np.allclose(out["conc"], np.log(_frame()["conc"]), equal_nan=True)
    assert np.isnan(out.loc[2, "conc"])
    assert np.isnan(out.loc[3, "share"])
    back = t.inverse(out[["conc", "share", "other"]].to_numpy())
    np.testing.assert_allclose(back, _frame()[["conc", "share", "other"]].to_numpy(), rtol=1e-12)
    assert t.savable
    assert t.to_dict() == {"conc": "log", "share": "logit"}


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_slopes_are_the_derivatives(name):
    x = np.array([0.05, 0.3, 0.5, 0.9])
    t = FeatureTransform({"x": name}, ["x"])
    h = 1e-7
    numeric = (TRANSFORMS[name].forward(x + h) - TRANSFORMS[name].forward(x - h)) / (2 * h)
    np.testing.assert_allclose(t.log_abs_slope(x[:, None])[:, 0], np.log(numeric), rtol=1e-6)


def test_a_function_pair_works_but_cannot_be_saved():
    t = FeatureTransform({"other": (np.arcsinh, np.sinh)}, ["conc", "share", "other"])
    out = t.apply(_frame(), "id", "time")
    np.testing.assert_allclose(out["other"], np.arcsinh(_frame()["other"]))
    slope = t.log_abs_slope(np.array([[1.0, 1.0, 2.0]]))
    assert slope[0, 2] == pytest.approx(-0.5 * np.log(5.0), rel=1e-6)  # 1 / sqrt(1 + x²)
    assert slope[0, 0] == 0.0
    with pytest.raises(ValueError, match="saving never writes code"):
        t.to_dict()


@pytest.mark.parametrize(
    ("spec", "error", "match"),
    [
        ({"conc": "sqrt"}, ValueError, r"`transforms\['conc'\]` must be one of 'log', 'logit'"),
        ({"nope": "log"}, ValueError, r"`transforms` names \['nope'\], which are not features"),
        ({"conc": (np.log,)}, TypeError, r"must be 'log', 'logit' or a \(forward, inverse\) pair"),
        (["conc"], TypeError, r"`transforms` must be a dict"),
    ],
)
def test_bad_specifications_are_refused(spec, error, match):
    with pytest.raises(error, match=match):
        FeatureTransform(spec, ["conc", "share", "other"])


@pytest.mark.parametrize(
    ("spec", "column", "value", "match"),
    [
        (
            {"conc": "log"},
            "conc",
            0.0,
            r"'conc' is transformed with 'log', so its values must be > 0; "
            r"1 are not \(series 1 at 0.0: 0\)",
        ),
        ({"share": "logit"}, "share", 1.0, r"must be strictly between 0 and 1"),
        ({"other": (np.log, np.exp)}, "other", -1.0, r"must give finite transformed values"),
    ],
)
def test_values_outside_the_domain_are_refused_naming_the_rows(spec, column, value, match):
    frame = _frame()
    frame.loc[2, column] = value
    if column == "other":
        frame["other"] = frame["other"].abs() + 1.0
        frame.loc[2, "other"] = value
    with pytest.raises(ValueError, match=match):
        FeatureTransform(spec, ["conc", "share", "other"]).apply(frame, "id", "time")
