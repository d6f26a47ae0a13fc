"""Pure loss functions for latent-ODE training; each returns its named terms.

With ``K`` posterior samples ``z_k ~ q(z0 | x)`` and the observation log-likelihoods
``log p(x | z_k)`` of each series:

- ELBO: ``mean_k log p(x | z_k) − β · KL(q ‖ N(0, I))`` (KL analytic);
- IWAE: ``logsumexp_k [log p(x | z_k) + β (log p(z_k) − log q(z_k))] − log K``, a bound that
  tightens as K grows and equals the ELBO (in expectation) at K = 1.

Both are normalised per observed entry of each series (the bound divided by its count), so
series of different lengths and batches of different sizes give comparable numbers. ``β``
(the KL weight, for annealing) comes from outside.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.distributions import Normal

from latentode._validation import check_choice, check_real

__all__ = ["BOUNDS", "LossTerms", "gaussian_kl", "latent_ode_loss", "masked_mse"]

BOUNDS = ("elbo", "iwae")


@dataclass(frozen=True)
class LossTerms:
    """Named loss terms, each a scalar averaged over the batch.

    Attributes:
        loss: What to minimise: −bound per observation (with the KL weight applied).
        bound: The (weighted) ELBO or IWAE bound per observation.
        log_likelihood: Mean over samples of log p(x | z), per observation.
        kl: KL(q(z0 | x) ‖ N(0, I)) per observation (unweighted).
        n_observed: Observed entries in the batch (a float, for logging).
        event_log_likelihood: The Poisson head's share of ``log_likelihood`` (unweighted, per
            observation), or None without a Poisson head.
    """

    loss: torch.Tensor
    bound: torch.Tensor
    log_likelihood: torch.Tensor
    kl: torch.Tensor
    n_observed: torch.Tensor
    event_log_likelihood: torch.Tensor | None = None


def gaussian_kl(q: Normal) -> torch.Tensor:
    """Analytic KL(q ‖ N(0, I)) of a diagonal Normal, summed over the last axis.

    ``q.loc``, ``q.scale``: ``(..., d)`` → ``(...)``.
    """
    var = q.scale**2
    return 0.5 * (var + q.loc**2 - 1.0 - torch.log(var)).sum(-1)


def latent_ode_loss(
    log_likelihood: torch.Tensor,
    q: Normal,
    z0: torch.Tensor,
    n_observed: torch.Tensor,
    *,
    kl_weight: float = 1.0,
    bound: str = "elbo",
) -> LossTerms:
    """The training loss of a latent ODE from its parts.

    Args:
        log_likelihood: ``(K, batch)`` log p(x | z_k) of each series under each sample.
        q: Posterior with ``loc``/``scale`` of shape ``(batch, latent)``.
        z0: ``(K, batch, latent)`` the samples ``z_k`` the likelihoods were computed with.
        n_observed: ``(batch,)`` observed entries of each series (> 0).
        kl_weight: β ≥ 0 multiplying the KL (or log p − log q) term. Default 1.
        bound: ``"elbo"`` or ``"iwae"``.

    Returns:
        :class:`LossTerms`.
    """
    check_choice("bound", bound, BOUNDS)
    beta = check_real("kl_weight", kl_weight, nonnegative=True)
    if log_likelihood.ndim != 2 or z0.shape[:2] != log_likelihood.shape:
        raise ValueError(
            "`log_likelihood` must be (K, batch) and `z0` (K, batch, latent); got "
            f"{tuple(log_likelihood.shape)} and {tuple(z0.shape)}"
        )
    n_obs = n_observed.to(log_likelihood.dtype).clamp_min(1.0)  # (batch,)
    kl = gaussian_kl(q)  # (batch,)
    mean_ll = log_likelihood.mean(0)  # (batch,)
    if bound == "elbo":
        per_series = mean_ll - beta * kl
    else:
        prior = Normal(torch.zeros_like(q.loc), torch.ones_like(q.scale))
        log_ratio = (prior.log_prob(z0) - q.log_prob(z0)).sum(-1)  # (K, batch)
        k = log_likelihood.shape[0]
        per_series = torch.logsumexp(log_likelihood + beta * log_ratio, dim=0) - math.log(k)
    bound_per_obs = (per_series / n_obs).mean()
    return LossTerms(
        loss=-bound_per_obs,
        bound=bound_per_obs,
        log_likelihood=(mean_ll / n_obs).mean(),
        kl=(kl / n_obs).mean(),
        n_observed=n_observed.sum().to(log_likelihood.dtype),
    )


def masked_mse(mean: torch.Tensor, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over observed entries only.

    ``mean (..., batch, n_times, f)`` (averaged over leading sample axes first), ``values`` and
    ``mask (batch, n_times, f)`` → a scalar. Entries under ``mask == 0`` never count.
    """
    lead = tuple(range(mean.ndim - values.ndim))
    point = mean.mean(dim=lead) if lead else mean  # (batch, n_times, f)
    err = torch.where(mask > 0, point - values, torch.zeros_like(point))
    return (err**2).sum() / mask.sum().clamp_min(1.0)
