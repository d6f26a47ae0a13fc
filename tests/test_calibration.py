"""Calibration on synthetic held-out points with known noise: fit, audit out of sample, conform.

The points are built by hand (no model), so the true coverage of every band is known.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentode.calibration import OBSERVED, HeldOutPoints, calibrate
from latentode.heads.predictive import PredictiveNoise


def _points(n_series: int, *, hidden_std: float, observed_std: float, seed: int = 0):
    """Per series: 6 conditioning points (distance 0), 5 interior and 5 extrapolated points.

    The curves are nearly certain (posterior spread 0.01) around a mean of 0; the values scatter
    around it with ``observed_std`` at conditioning points and ``hidden_std`` at hidden ones.
    """
    rng = np.random.default_rng(seed)
    per = [(OBSERVED, 6, 0.0), (0, 5, 0.3), (1, 5, 1.0)]
    band = np.concatenate([np.full(k, b) for b, k, _ in per] * n_series)
    distance = np.concatenate([np.full(k, h) for _, k, h in per] * n_series)
    series = np.repeat(np.arange(n_series), sum(k for _, k, _ in per))
    n = band.size
    std = np.where(band == OBSERVED, observed_std, hidden_std)
    values = rng.normal(0.0, 1.0, n) * std
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
    points = _points(80, hidden_std=0.5, observed_std=0.5)
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
    # the conditioning points scatter 4x more than the hidden ones, but the noise can only
    # grow with the distance: its bands over-cover hidden points, and conformal shrinks them
    points = _points(80, hidden_std=0.3, observed_std=1.2, seed=1)
    plain, _ = calibrate(PredictiveNoise(1), points, ["x"], conformal=False)
    fixed, factors = calibrate(PredictiveNoise(1), points, ["x"], conformal=True)
    assert factors.shape == (1, 2)
    assert (factors < 0.8).all()
    for task in ("interpolation", "extrapolation"):
        assert _row(plain, task)["coverage_90"] > 0.97
        assert 0.84 <= _row(fixed, task)["coverage_90"] <= 0.96


def test_few_series_fall_back_to_an_in_sample_audit_and_say_so():
    points = _points(8, hidden_std=0.5, observed_std=0.5)
    table, _ = calibrate(PredictiveNoise(1), points, ["x"], conformal=True)
    assert (table["audit"] == "in-sample").all()
    assert list(table.columns) == ["audit", "task", "feature", "n", "coverage_50", "coverage_90"]


@pytest.mark.parametrize("seed", [0, 1])
def test_the_audit_is_reproducible(seed):
    points = _points(30, hidden_std=0.5, observed_std=0.5)
    first, _ = calibrate(PredictiveNoise(1), points, ["x"], conformal=True, seed=seed)
    again, _ = calibrate(PredictiveNoise(1), points, ["x"], conformal=True, seed=seed)
    assert first.equals(again)
