"""Calibration on synthetic held-out points with known noise: fit, audit out of sample, conform.

The points are built by hand (no model), so the true coverage of every band is known.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentode.calibration import HeldOutPoints, calibrate
from latentode.heads.predictive import PredictiveNoise


def _points(n_series: int, *, std: float = 0.5, bimodal: bool = False, seed: int = 0):
    """Per series: 5 hidden interior points and 5 extrapolated ones, around a curve of 0.

    The curves are nearly certain (posterior spread 0.01); the values scatter around them
    with ``std``, or, with ``bimodal``, interior values sit at ``±std`` (a law no Student t
    fits: its 90% band holds all of them).
    """
    rng = np.random.default_rng(seed)
    per = [(0, 5, 0.3), (1, 5, 1.0)]
    band = np.concatenate([np.full(k, b) for b, k, _ in per] * n_series)
    distance = np.concatenate([np.full(k, h) for _, k, h in per] * n_series)
    series = np.repeat(np.arange(n_series), sum(k for _, k, _ in per))
    n = band.size
    values = rng.normal(0.0, std, n)
    if bimodal:
        signs = rng.choice([-1.0, 1.0], n)
        values = np.where(band == 0, signs * std + rng.normal(0.0, 0.02, n), values)
    curves = rng.normal(0.0, 0.01, (16, n))
    return HeldOutPoints(
        torch.tensor(values),
        torch.tensor(curves),
        torch.tensor(distance),
        torch.zeros(n, dtype=torch.long),
        torch.tensor(band),
        torch.tensor(series),
    )


def _row(table, task):
    return table[(table["task"] == task) & (table["feature"] == "x")].iloc[0]


def test_bands_fitted_on_known_noise_hold_their_levels_out_of_sample():
    points = _points(80)
    noise = PredictiveNoise(1)
    table, factors = calibrate(noise, points, ["x"], conformal=False)
    assert factors is None
    assert (table["audit"] == "out-of-sample").all()
    for task in ("interpolation", "extrapolation"):
        row = _row(table, task)
        assert row["n"] == 400
        assert 0.85 <= row["coverage_90"] <= 0.95
        assert 0.42 <= row["coverage_50"] <= 0.58
    # the noise kept is the one fitted on all the points: about the true 0.5 at them
    std = noise.std_at(points.distance, points.feature, points.mean_curve)
    assert 0.45 <= float(std.min()) <= float(std.max()) <= 0.55


def test_conformal_factors_repair_a_band_the_noise_model_cannot_fit():
    # interior values at ±0.5: a t fitted to them puts all inside its 90% band, and
    # conformal shrinks it; past the window the noise is Gaussian, fits, and stays
    points = _points(80, bimodal=True, seed=1)
    plain, _ = calibrate(PredictiveNoise(1), points, ["x"], conformal=False)
    fixed, factors = calibrate(PredictiveNoise(1), points, ["x"], conformal=True)
    assert factors.shape == (1, 2)
    assert factors[0, 0] < 0.8
    assert 0.8 < factors[0, 1] < 1.25
    assert _row(plain, "interpolation")["coverage_90"] > 0.97
    for task in ("interpolation", "extrapolation"):
        assert 0.84 <= _row(fixed, task)["coverage_90"] <= 0.96


def test_few_series_fall_back_to_an_in_sample_audit_and_say_so():
    points = _points(8)
    table, _ = calibrate(PredictiveNoise(1), points, ["x"], conformal=True)
    assert (table["audit"] == "in-sample").all()
    assert list(table.columns) == ["audit", "task", "feature", "n", "coverage_50", "coverage_90"]


@pytest.mark.parametrize("seed", [0, 1])
def test_the_audit_is_reproducible(seed):
    points = _points(30)
    first, _ = calibrate(PredictiveNoise(1), points, ["x"], conformal=True, seed=seed)
    again, _ = calibrate(PredictiveNoise(1), points, ["x"], conformal=True, seed=seed)
    assert first.equals(again)
