"""`LatentODEModel`: encoder + Neural-ODE decoder + observation head, as one plain nn.Module."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.distributions import Normal

from latentode._validation import check_choice, check_int
from latentode.core.solver import SolverConfig
from latentode.data.batch import IrregularBatch
from latentode.decoders import ODEDecoder
from latentode.encoders import ENCODERS
from latentode.heads import GaussianHead
from latentode.losses import LossTerms, latent_ode_loss

__all__ = ["LatentODEModel", "ModelOutput"]


@dataclass(frozen=True)
class ModelOutput:
    """What one pass of the model computed.

    Attributes:
        posterior: q(z0 | conditioning points), ``loc``/``scale`` of shape ``(batch, latent)``.
        z0: ``(n_samples, batch, latent)`` the samples that were decoded.
        mean: ``(n_samples, batch, n_times, n_features)`` observation means at the target times.
    """

    posterior: Normal
    z0: torch.Tensor
    mean: torch.Tensor


class LatentODEModel(nn.Module):
    """A latent ODE (Rubanova et al. 2019): q(z0 | x) by an encoder, z(t) by a Neural ODE.

    Args:
        n_features: Observed features.
        latent_dim: Size of the latent state. Default 16.
        encoder: ``"odernn"`` (default) or ``"gru"`` (see :data:`latentode.encoders.ENCODERS`).
        encoder_hidden: Encoder state size. Default 32.
        encoder_kwargs: Extra encoder options (e.g. ``{"n_substeps": 4}``).
        decoder_width: Width of the latent vector field. Default 64.
        decoder_depth: Residual blocks in the latent vector field. Default 2.
        obs_std: Observation std of the Gaussian head. Default 0.01.
        learn_std: Learn a per-feature std. Default False.
        train_solver: Decoder solver settings for training. Default ``SolverConfig()``.
        eval_solver: Decoder solver settings for prediction; default ``train_solver``.
    """

    def __init__(
        self,
        n_features: int,
        latent_dim: int = 16,
        *,
        encoder: str = "odernn",
        encoder_hidden: int = 32,
        encoder_kwargs: Mapping[str, Any] | None = None,
        decoder_width: int = 64,
        decoder_depth: int = 2,
        obs_std: float = 0.01,
        learn_std: bool = False,
        train_solver: SolverConfig | None = None,
        eval_solver: SolverConfig | None = None,
    ) -> None:
        super().__init__()
        check_int("latent_dim", latent_dim, minimum=1)
        encoder_cls = ENCODERS[check_choice("encoder", encoder, ENCODERS)]
        self.encoder = encoder_cls(
            n_features, latent_dim, encoder_hidden, **dict(encoder_kwargs or {})
        )
        self.decoder = ODEDecoder(
            latent_dim,
            n_features,
            width=decoder_width,
            depth=decoder_depth,
            train_solver=train_solver,
            eval_solver=eval_solver,
        )
        self.head = GaussianHead(n_features, std=obs_std, learn_std=learn_std)
        self.latent_dim = latent_dim

    @staticmethod
    def _draw(
        loc: torch.Tensor, scale: torch.Tensor, n_samples: int, generator: torch.Generator | None
    ) -> torch.Tensor:
        """Reparameterised samples ``(n_samples, *loc.shape)``, seeded by ``generator``."""
        n_samples = check_int("n_samples", n_samples, minimum=1)
        eps = torch.randn(
            (n_samples, *loc.shape), generator=generator, dtype=loc.dtype, device=loc.device
        )
        return loc + scale * eps

    def forward(
        self,
        cond: IrregularBatch,
        target_times: torch.Tensor,
        *,
        n_samples: int = 1,
        generator: torch.Generator | None = None,
    ) -> ModelOutput:
        """Encode ``cond``, sample ``z0`` and decode at ``target_times (batch, n_times)``."""
        if target_times.shape[0] != cond.batch_size:
            raise ValueError(
                f"`target_times` covers {target_times.shape[0]} series, `cond` "
                f"{cond.batch_size}; give one row of target times per conditioning series"
            )
        q = self.encoder(cond)
        z0 = self._draw(q.loc, q.scale, n_samples, generator)  # (n_samples, batch, latent)
        return ModelOutput(q, z0, self.decoder(z0, target_times))

    def loss(
        self,
        cond: IrregularBatch,
        target: IrregularBatch,
        *,
        n_samples: int = 1,
        kl_weight: float = 1.0,
        bound: str = "elbo",
        generator: torch.Generator | None = None,
    ) -> tuple[LossTerms, ModelOutput]:
        """The training loss for conditioning points ``cond`` and target points ``target``."""
        out = self(cond, target.times, n_samples=n_samples, generator=generator)
        log_lik = self.head.log_likelihood(out.mean, target.values, target.mask)  # (K, batch)
        n_observed = target.mask.sum(dim=(-1, -2))  # (batch,)
        terms = latent_ode_loss(
            log_lik, out.posterior, out.z0, n_observed, kl_weight=kl_weight, bound=bound
        )
        return terms, out

    def predict_mean(self, cond: IrregularBatch, times: torch.Tensor) -> torch.Tensor:
        """The decoded posterior mean: ``z0 = E[q(z0 | cond)]`` at ``times (batch, n_times)``.

        A deterministic point prediction, ``(batch, n_times, n_features)``; use
        :meth:`sample_posterior` for the spread around it.
        """
        q = self.encoder(cond)
        return self.decoder(q.loc.unsqueeze(0), times)[0]

    def sample_posterior(
        self,
        cond: IrregularBatch,
        times: torch.Tensor,
        n_samples: int = 1,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Trajectories given observations: ``z0 ~ q(z0 | cond)`` decoded at ``times``.

        Args:
            cond: The observations to condition on.
            times: ``(batch, n_times)`` model times, one row per series of ``cond``; times
                inside a series' observed window interpolate, later ones extrapolate.
            n_samples: Samples per series.
            generator: Seeds the draw.

        Returns:
            ``(n_samples, batch, n_times, n_features)`` observation means.
        """
        return self(cond, times, n_samples=n_samples, generator=generator).mean

    def sample_prior(
        self,
        times: torch.Tensor,
        n_samples: int = 1,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """New trajectories from the prior: ``z0 ~ N(0, I)`` decoded at ``times``.

        Args:
            times: ``(batch, n_times)`` model times, one row per generated series.
            n_samples: Samples per row.
            generator: Seeds the draw.

        Returns:
            ``(n_samples, batch, n_times, n_features)`` observation means.
        """
        ref = self.head.log_std
        zeros = torch.zeros(times.shape[0], self.latent_dim, dtype=ref.dtype, device=ref.device)
        z0 = self._draw(zeros, torch.ones_like(zeros), n_samples, generator)
        return self.decoder(z0, times.to(ref.dtype))
