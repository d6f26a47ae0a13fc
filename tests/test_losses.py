"""Losses: analytic KL, ELBO and IWAE bounds, normalisation, KL weight."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from latentode.losses import gaussian_kl, latent_ode_loss, masked_mse


def _q(batch=3, latent=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Normal(
        torch.randn(batch, latent, generator=g), torch.rand(batch, latent, generator=g) + 0.1
    )


def test_analytic_kl_matches_torch():
    q = _q()
    prior = Normal(torch.zeros(3, 4), torch.ones(3, 4))
    torch.testing.assert_close(gaussian_kl(q), kl_divergence(q, prior).sum(-1))


def test_elbo_terms_and_normalisation():
    q = _q()
    z0 = q.sample((2,))
    ll = torch.tensor([[-1.0, -2.0, -3.0], [-3.0, -4.0, -5.0]])
    n_obs = torch.tensor([2.0, 4.0, 1.0])
    terms = latent_ode_loss(ll, q, z0, n_obs, kl_weight=0.5)
    kl = gaussian_kl(q)
    expected = ((ll.mean(0) - 0.5 * kl) / n_obs).mean()
    torch.testing.assert_close(terms.bound, expected)
    torch.testing.assert_close(terms.loss, -expected)
    torch.testing.assert_close(terms.kl, (kl / n_obs).mean())
    assert terms.n_observed.item() == 7.0


def test_iwae_includes_minus_log_k_and_bounds_the_elbo():
    q = _q()
    z0 = q.sample((8,))
    ll = -torch.rand(8, 3) * 5
    n_obs = torch.ones(3)
    iwae = latent_ode_loss(ll, q, z0, n_obs, bound="iwae")
    prior = Normal(0.0, 1.0)
    log_w = ll + (prior.log_prob(z0) - q.log_prob(z0)).sum(-1)
    expected = (torch.logsumexp(log_w, 0) - math.log(8)).mean()
    torch.testing.assert_close(iwae.bound, expected)
    # Jensen: the IWAE estimate is at least the Monte Carlo ELBO on the same samples
    assert iwae.bound >= (log_w.mean(0)).mean() - 1e-6


def test_iwae_with_one_sample_is_the_single_sample_elbo():
    q = _q()
    z0 = q.sample((1,))
    ll = -torch.rand(1, 3)
    got = latent_ode_loss(ll, q, z0, torch.ones(3), bound="iwae").bound
    log_w = ll + (Normal(0.0, 1.0).log_prob(z0) - q.log_prob(z0)).sum(-1)
    torch.testing.assert_close(got, log_w.mean())


def test_masked_mse_ignores_masked_entries():
    mean = torch.zeros(2, 1, 3, 1)
    values = torch.tensor([[[1.0], [5.0], [3.0]]])
    mask = torch.tensor([[[1.0], [0.0], [1.0]]])
    assert masked_mse(mean, values, mask).item() == pytest.approx((1 + 9) / 2)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"bound": "vae"}, ValueError, r"`bound` must be one of 'elbo', 'iwae'"),
        ({"kl_weight": -0.1}, ValueError, r"`kl_weight` must be >= 0"),
    ],
)
def test_bad_loss_options(kwargs, error, match):
    q = _q()
    with pytest.raises(error, match=match):
        latent_ode_loss(torch.zeros(1, 3), q, q.sample((1,)), torch.ones(3), **kwargs)


def test_shape_mismatch():
    q = _q()
    with pytest.raises(ValueError, match=r"`log_likelihood` must be \(K, batch\)"):
        latent_ode_loss(torch.zeros(2, 3), q, q.sample((1,)), torch.ones(3))
