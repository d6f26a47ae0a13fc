"""PredictiveNoise: recovers a known noise law from residuals; the distance it grows with."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentode.data.collate import SeriesItem, collate
from latentode.heads.predictive import PredictiveNoise


def _residuals(n=20000, a=0.04, b=0.02, c=0.01, seed=0):
    g = torch.Generator().manual_seed(seed)
    h = 4.0 * torch.rand(n, generator=g, dtype=torch.float64)
    spread = 0.01 * torch.rand(n, generator=g, dtype=torch.float64)
    var = spread + a + b * h + c * h**2
    r = var.sqrt() * torch.randn(n, generator=g, dtype=torch.float64)
    return r, spread, h


def test_fit_recovers_a_known_noise_law():
    r, spread, h = _residuals()
    noise = PredictiveNoise(1, floor=1e-4)
    noise.fit(r, spread, h, torch.zeros_like(h, dtype=torch.long))
    a = noise.coef[0, 0, 0].item()
    assert a == pytest.approx(0.04, abs=0.01)
    expected = 0.04 + 0.02 * h + 0.01 * h**2
    assert torch.allclose(noise.variance(h[:, None])[:, 0].double(), expected, rtol=0.1)
    assert bool(noise.fitted)


def test_each_feature_gets_its_own_law_and_short_features_their_mean_square():
    r1, s1, h1 = _residuals(4000, a=0.5, b=0.0, c=0.0, seed=1)
    r2, s2, h2 = _residuals(4000, a=0.01, b=0.1, c=0.0, seed=2)
    r = torch.cat([r1, r2, torch.tensor([3.0, 4.0], dtype=torch.float64)])
    s = torch.cat([s1, s2, torch.zeros(2, dtype=torch.float64)])
    h = torch.cat([h1, h2, torch.zeros(2, dtype=torch.float64)])
    f = torch.cat([torch.zeros(4000), torch.ones(4000), torch.full((2,), 2)]).long()
    noise = PredictiveNoise(3, floor=1e-4)
    noise.fit(r, s, h, f)
    at = noise.std_at(torch.tensor([0.0, 4.0, 0.0, 4.0, 1.0]), torch.tensor([0, 0, 1, 1, 2]))
    assert at[0] == pytest.approx(0.5**0.5, rel=0.1)
    assert at[1] == pytest.approx(0.5**0.5, rel=0.1)  # flat in h
    assert at[3] > 3 * at[2]  # grows with h
    assert at[4] == pytest.approx((12.5) ** 0.5, rel=1e-3)  # two points: their mean square


def test_before_fitting_the_band_is_the_floor():
    noise = PredictiveNoise(2, floor=0.01)
    assert torch.allclose(noise.std(torch.full((3, 2), 5.0)), torch.full((3, 2), 0.01))
    with pytest.raises(ValueError, match=r"`spread` must be \(3,\)"):
        noise.fit(torch.zeros(3), torch.zeros(2), torch.zeros(3), torch.zeros(3).long())


def test_distance_to_the_nearest_observation_ignores_masked_entries_and_padding():
    a = SeriesItem(
        0,
        torch.tensor([0.0, 1.0, 3.0]),
        torch.zeros(3, 2),
        torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]),
    )
    b = SeriesItem(
        1, torch.tensor([0.0, 2.0]), torch.zeros(2, 2), torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    )
    batch = collate([a, b])
    d = batch.distance_to_observed(torch.tensor([[0.5, 2.5, 5.0], [1.0, 3.0, 4.0]]))
    assert d[0].tolist() == [[0.5, 2.5], [1.5, 0.5], [4.0, 2.0]]
    # series b never observed feature 1: the distance to its nearest observation of any kind
    assert d[1].tolist() == [[1.0, 1.0], [1.0, 1.0], [2.0, 2.0]]
    with pytest.raises(ValueError, match=r"`times` must be \(batch, n_times\)"):
        batch.distance_to_observed(torch.zeros(3, 2))


def test_the_level_term_is_kept_only_where_the_noise_follows_the_level():
    g = torch.Generator().manual_seed(3)
    n = 4000
    h = torch.zeros(n, dtype=torch.float64)
    m = 2.0 * torch.rand(n, generator=g, dtype=torch.float64)  # curve values 0-2
    z = torch.randn(n, generator=g, dtype=torch.float64)
    feature = torch.zeros(n, dtype=torch.long)
    proportional = PredictiveNoise(1, floor=1e-4)
    proportional.fit(0.1 * m * z, torch.zeros_like(h), h, feature, m)  # 10% of the level
    assert proportional.coef[3, 0, 0] > 0
    at = proportional.std_at(
        torch.zeros(2), torch.zeros(2, dtype=torch.long), torch.tensor([0.5, 1.5])
    )
    assert at[0] == pytest.approx(0.05, rel=0.2)
    assert at[1] == pytest.approx(0.15, rel=0.2)
    flat = PredictiveNoise(1, floor=1e-4)
    flat.fit(0.1 * z, torch.zeros_like(h), h, feature, m)  # the same noise at every level
    assert flat.coef[3, 0, 0] == 0


def test_the_observed_window_is_each_series_own_and_ignores_padding():
    a = SeriesItem(0, torch.tensor([1.0, 2.0, 4.0]), torch.zeros(3, 1), torch.ones(3, 1))
    b = SeriesItem(1, torch.tensor([0.0, 2.0]), torch.zeros(2, 1), torch.ones(2, 1))
    batch = collate([a, b])  # b is padded with its last time
    outside = batch.outside_window(torch.tensor([[0.5, 1.0, 4.0, 4.5], [-1.0, 0.0, 2.0, 3.0]]))
    assert outside.tolist() == [[True, False, False, True], [True, False, False, True]]
    with pytest.raises(ValueError, match=r"`times` must be \(batch, n_times\)"):
        batch.outside_window(torch.zeros(3))


def test_inside_and_outside_the_window_each_feature_learns_its_own_law():
    g = torch.Generator().manual_seed(4)
    n = 3000
    h = torch.rand(n, generator=g, dtype=torch.float64)
    outside = torch.rand(n, generator=g) < 0.5
    scale = torch.where(outside, 0.6, 0.2).double()
    r = scale * torch.randn(n, generator=g, dtype=torch.float64)
    feature = torch.zeros(n, dtype=torch.long)
    noise = PredictiveNoise(1, floor=1e-4)
    noise.fit(r, torch.zeros_like(r), h, feature, None, outside)
    h0 = torch.full((2, 1), 0.5)
    at = noise.std(h0, None, torch.tensor([[False], [True]]))[:, 0]
    assert at[0] == pytest.approx(0.2, rel=0.15)
    assert at[1] == pytest.approx(0.6, rel=0.15)
    # the same through the scattered-point and draw interfaces
    pick = torch.tensor([0, 0])
    both = noise.std_at(torch.full((2,), 0.5), pick, None, torch.tensor([False, True]))
    torch.testing.assert_close(both.float(), at.float())
    draws = noise.standard_draws(
        np.random.default_rng(0), (2000, 2, 1), np.array([[False], [True]])
    )
    assert draws.shape == (2000, 2, 1)
    # a window with too few points (here: 5 outside) gets the feature's law over all points
    few = torch.arange(n) < 5
    shared = PredictiveNoise(1, floor=1e-4)
    shared.fit(r, torch.zeros_like(r), h, feature, None, few)
    pooled = PredictiveNoise(1, floor=1e-4)
    pooled.fit(r, torch.zeros_like(r), h, feature)
    torch.testing.assert_close(shared.coef[..., 1], pooled.coef[..., 0])
    torch.testing.assert_close(pooled.coef[..., 0], pooled.coef[..., 1])


def test_a_noise_saved_with_one_law_per_feature_loads_as_the_same_law_in_both_windows():
    old = {"coef": torch.arange(12.0).reshape(6, 2), "fitted": torch.tensor(True)}
    noise = PredictiveNoise(2)
    noise.load_state_dict(old)
    assert noise.coef.shape == (6, 2, 2)
    torch.testing.assert_close(noise.coef[..., 0], old["coef"])
    torch.testing.assert_close(noise.coef[..., 1], old["coef"])
