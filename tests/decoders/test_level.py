"""Series levels: the anchor's arithmetic, its invariances, and the model built on it."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from latentode.core import SolverConfig
from latentode.data.collate import SeriesItem, collate
from latentode.decoders import LEVELS, NoLevel, SeriesLevel
from latentode.model import LatentODEModel

FAST = SolverConfig(method="rk4", step_size=0.1)


def _batch(seed=0, n_series=4, n_features=2, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    items = []
    for i in range(n_series):
        n = 3 + i
        times = torch.sort(torch.rand(n, generator=g, dtype=dtype))[0]
        values = torch.randn(n, n_features, generator=g, dtype=dtype) + 5.0 * i
        mask = (torch.rand(n, n_features, generator=g) < 0.7).to(dtype)
        mask[0] = 1.0
        items.append(SeriesItem(i, times, values * mask, mask))
    return collate(items)


def _garbage(batch, value=float("nan")):
    """``batch`` with ``value`` written wherever the mask is 0 (padding included)."""
    dirty = torch.where(batch.mask > 0, batch.values, torch.full_like(batch.values, value))
    return dataclasses.replace(batch, values=dirty)


def test_registry():
    assert {"none": NoLevel, "series": SeriesLevel} == LEVELS


def test_level_is_the_mean_of_observed_values_and_ignores_garbage():
    batch = _batch()
    anchor = SeriesLevel(2)(_garbage(batch))
    for b in range(batch.batch_size):
        for f in range(2):
            seen = batch.mask[b, :, f] > 0
            expected = batch.values[b, seen, f].mean() if seen.any() else torch.tensor(0.0)
            assert torch.allclose(anchor.level[b, f], expected.to(anchor.level.dtype))
            assert anchor.seen[b, f] == float(seen.any())
    centered = SeriesLevel(2).center(_garbage(batch), anchor)
    assert torch.isfinite(centered.values).all()
    assert torch.equal(centered.values[batch.mask == 0], torch.zeros(int((batch.mask == 0).sum())))


def test_shift_makes_the_curve_mean_match_the_level_at_the_observed_entries():
    batch = _batch()
    level = SeriesLevel(2)
    anchor = level(batch)
    curves = torch.randn(3, *batch.values.shape, dtype=batch.values.dtype)  # (S, B, T, F)
    shifted = curves + level.shift(curves, anchor).unsqueeze(-2)
    mask = batch.mask
    curve_mean = (shifted * mask).sum(-2) / mask.sum(-2).clamp_min(1)  # (S, B, F)
    seen = anchor.seen.bool()
    assert torch.allclose(curve_mean[:, seen], anchor.level.expand_as(curve_mean)[:, seen])


def test_a_feature_never_observed_gets_no_shift():
    batch = _batch()
    mask = batch.mask.clone()
    mask[1, :, 1] = 0.0
    batch = dataclasses.replace(batch, mask=mask, values=batch.values * mask)
    level = SeriesLevel(2)
    anchor = level(batch)
    assert anchor.seen[1, 1] == 0
    assert anchor.level[1, 1] == 0
    curves = torch.randn(*batch.values.shape, dtype=batch.values.dtype)
    assert level.shift(curves, anchor)[1, 1] == 0


def test_no_level_changes_nothing():
    batch = _batch()
    level = NoLevel(2)
    anchor = level(batch)
    assert anchor.times.shape == (batch.batch_size, 0)
    assert level.center(batch, anchor) is batch
    assert level.static(anchor) is None
    curves = torch.randn(2, batch.batch_size, 0, 2, dtype=batch.values.dtype)
    assert torch.equal(level.shift(curves, anchor), torch.zeros(2, batch.batch_size, 2).double())


def test_prior_is_fitted_to_the_shifts_and_sampled_reproducibly():
    level = SeriesLevel(2)
    g = torch.Generator().manual_seed(0)
    shifts = torch.randn(5000, 2, generator=g) @ torch.tensor([[2.0, 0.0], [1.0, 0.5]]).T + 3.0
    level.fit_prior(shifts, torch.ones_like(shifts))
    assert torch.allclose(level.prior_loc, torch.tensor([3.0, 3.0]), atol=0.1)
    cov = level.prior_scale_tril @ level.prior_scale_tril.T
    assert torch.allclose(cov, torch.tensor([[4.0, 2.0], [2.0, 1.25]]), atol=0.2)
    like = torch.zeros(1)
    one = level.sample_shift(4, 3, generator=torch.Generator().manual_seed(7), like=like)
    two = level.sample_shift(4, 3, generator=torch.Generator().manual_seed(7), like=like)
    assert one.shape == (4, 3, 2)
    assert torch.equal(one, two)


@pytest.mark.parametrize(
    ("shifts", "seen", "match"),
    [
        (torch.zeros(4, 3), torch.ones(4, 3), r"must be \(n_series >= 1, 2\)"),
        (torch.zeros(4, 2), torch.ones(3, 2), r"`seen` must match"),
    ],
)
def test_bad_prior_data_is_refused(shifts, seen, match):
    with pytest.raises(ValueError, match=match):
        SeriesLevel(2).fit_prior(shifts, seen)


def _model(level):
    torch.manual_seed(0)
    return LatentODEModel(
        2,
        latent_dim=3,
        encoder_hidden=6,
        decoder_width=8,
        decoder_depth=1,
        obs_std=0.1,
        train_solver=FAST,
        level=level,
    ).double()


def test_the_model_reproduces_each_series_level_before_any_training():
    """With levels, an untrained model's mean over the observed points already is the data's."""
    batch = _batch()
    model = _model("series")
    mean = model.predict_mean(batch, batch.times)  # (B, T, F)
    fitted = (mean * batch.mask).sum(1) / batch.mask.sum(1).clamp_min(1)
    observed = (batch.values * batch.mask).sum(1) / batch.mask.sum(1).clamp_min(1)
    seen = batch.mask.sum(1) > 0
    assert torch.allclose(fitted[seen], observed[seen])
    plain = _model("none").predict_mean(batch, batch.times)
    plain_fit = (plain * batch.mask).sum(1) / batch.mask.sum(1).clamp_min(1)
    assert not torch.allclose(plain_fit[seen], observed[seen], atol=1.0)


def test_masked_garbage_changes_neither_loss_nor_prediction():
    batch = _batch()
    model = _model("series")
    clean, out = model.loss(batch, batch, n_samples=2, generator=torch.Generator().manual_seed(1))
    dirty, out_d = model.loss(
        _garbage(batch, 1e9),
        _garbage(batch, 1e9),
        n_samples=2,
        generator=torch.Generator().manual_seed(1),
    )
    assert torch.equal(clean.loss, dirty.loss)
    assert torch.equal(out.mean, out_d.mean)


def test_permuting_the_batch_permutes_the_predictions():
    batch = _batch()
    model = _model("series")
    order = torch.tensor([2, 0, 3, 1])
    mean = model.predict_mean(batch, batch.times)
    permuted = model.predict_mean(batch.select(order), batch.times[order])
    assert torch.allclose(permuted, mean[order], atol=1e-10)


def test_gradients_through_the_shift_are_exact():
    batch = _batch(n_series=2)
    level = SeriesLevel(2)
    anchor = level(batch)
    curves = torch.randn(*batch.values.shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda c: level.shift(c, anchor), (curves,))


def test_prior_samples_use_the_fitted_level_spread():
    batch = _batch(n_series=4)
    model = _model("series")
    model.fit_level_prior([batch])
    times = torch.linspace(0, 1, 5, dtype=torch.float64).expand(2, 5)
    draws = model.sample_prior(times, n_samples=200, generator=torch.Generator().manual_seed(0))
    assert draws.shape == (200, 2, 5, 2)
    # the series' levels are 0, 5, 10 and 15: prior draws must spread over several units
    assert draws.mean(dim=2)[..., 0].std() > 2.0


def test_score_likelihood_integrates_the_shift_exactly():
    """Per series and feature: N(curve + μ, σ² I + τ² 1 1ᵀ) over its observed entries."""
    from latentode.heads import GaussianHead

    batch = _batch(n_series=3)
    level = SeriesLevel(2).double()
    level.prior_loc.copy_(torch.tensor([0.5, -1.0]))
    level.prior_scale_tril.copy_(torch.tensor([[2.0, 0.0], [0.3, 0.7]]))
    head = GaussianHead(2, std=0.3).double()
    curves = torch.randn(4, *batch.values.shape, dtype=torch.float64)  # (S, B, T, F)
    got = level.log_likelihood(curves, _garbage(batch, 1e9).values, batch.mask, head.std)
    tau2 = (level.prior_scale_tril**2).sum(-1)
    for s in range(4):
        for b in range(3):
            total = 0.0
            for f in range(2):
                seen = batch.mask[b, :, f] > 0
                n = int(seen.sum())
                mean = curves[s, b, seen, f] + level.prior_loc[f]
                var = head.std[f].double() ** 2
                cov = var * torch.eye(n, dtype=torch.float64) + tau2[f] * torch.ones(n, n)
                dist = torch.distributions.MultivariateNormal(mean, cov)
                total += float(dist.log_prob(batch.values[b, seen, f]))
            assert got[s, b].item() == pytest.approx(total, rel=1e-7)


def test_without_spread_the_score_likelihood_is_the_heads():
    from latentode.heads import GaussianHead

    batch = _batch()
    level = SeriesLevel(2).double()
    level.prior_scale_tril.copy_(torch.eye(2) * 1e-9)
    head = GaussianHead(2, std=0.2).double()
    curves = torch.randn(*batch.values.shape, dtype=torch.float64)
    expected = head.log_likelihood(curves, batch.values, batch.mask)
    assert torch.allclose(
        level.log_likelihood(curves, batch.values, batch.mask, head.std), expected
    )
    assert torch.allclose(
        NoLevel(2).log_likelihood(curves, batch.values, batch.mask, head.std), expected
    )


def test_prior_from_partly_seen_shifts_is_not_pulled_to_zero():
    g = torch.Generator().manual_seed(0)
    shifts = 5.0 + 0.1 * torch.randn(4000, 2, generator=g, dtype=torch.float64)
    seen = torch.ones_like(shifts)
    seen[::2, 0] = 0.0  # feature 0 seen in half the series
    shifts[::2, 0] = 0.0
    level = SeriesLevel(2).double()
    level.fit_prior(shifts, seen)
    assert torch.allclose(level.prior_loc, torch.tensor([5.0, 5.0], dtype=torch.float64), atol=0.01)
    sd = (level.prior_scale_tril**2).sum(-1).sqrt()
    assert torch.allclose(sd, torch.tensor([0.1, 0.1], dtype=torch.float64), atol=0.01)
