"""Series levels: each series' own level, anchored to its observations rather than encoded.

Panels differ most in level: one patient's albumin sits at 3.1, another's at 4.2; one boy is
10 cm taller than another at every age. A latent ODE that must carry each level through its
latent state (through the encoder's bottleneck, against the KL) reproduces it only to within a
fraction of the population's spread, which is often more than the noise, and then simple
per-series baselines win.

:class:`SeriesLevel` takes the level out of the latent's job, as a random intercept that is
profiled out. For each series and feature:

- the encoder reads the conditioning values minus their mean ``m``, and ``m`` itself as a
  static input (dynamics that depend on the level, such as predator–prey, can still use it);
- the decoder's curve ``r(z(t))`` is shifted by ``δ = m − mean_i r(z(t_i))`` over the same
  conditioning entries, so that the curve's mean over the observed times equals the data's.

The latent state then describes a curve's shape; where it sits comes from the data, exactly,
whatever times were observed (a trend's mean depends on where the points fall, so the shift
is computed at those very times, not at a fixed reference time). A feature a series never
observed gets no shift, and the latent carries its level as in the classic model.

:class:`NoLevel` is the same interface doing nothing (Rubanova et al. 2019's latent ODE).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn

from latentode._validation import check_int
from latentode.data.batch import IrregularBatch

__all__ = ["LEVELS", "Anchor", "NoLevel", "SeriesLevel"]


@dataclass(frozen=True)
class Anchor:
    """What a level module read off the conditioning points of a batch.

    Attributes:
        level: ``(batch, n_features)`` mean of each feature's observed conditioning values
            (0 where none).
        seen: ``(batch, n_features)`` 1.0 where the feature was observed at least once.
        times: ``(batch, n_anchor)`` times the decoder must also reach to compute the shift
            (``n_anchor = 0`` without levels).
        mask: ``(batch, n_anchor, n_features)`` which of those entries were observed.
    """

    level: torch.Tensor
    seen: torch.Tensor
    times: torch.Tensor
    mask: torch.Tensor


class NoLevel(nn.Module):
    """No per-series level: the latent state carries everything.

    Args:
        n_features: Observed features.
    """

    n_static = 0

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.n_features = check_int("n_features", n_features, minimum=1)

    def forward(self, batch: IrregularBatch) -> Anchor:
        """The :class:`Anchor` of ``batch``: here, no level and no extra times."""
        zeros = batch.values.new_zeros(batch.batch_size, self.n_features)
        return Anchor(zeros, zeros, batch.times[:, :0], batch.mask[:, :0, :])

    def static(self, anchor: Anchor) -> torch.Tensor | None:
        """The encoder's static input ``(batch, n_static)``; None here."""
        return None

    def center(self, batch: IrregularBatch, anchor: Anchor) -> IrregularBatch:
        """``batch`` with each series' level taken out of its observed values (unchanged here)."""
        return batch

    def shift(self, at_anchor: torch.Tensor, anchor: Anchor) -> torch.Tensor:
        """``(..., batch, n_features)`` vertical shift of the decoded curves: 0 here.

        ``at_anchor`` is ``(..., batch, n_anchor, n_features)``: the curves at ``anchor.times``.
        """
        return at_anchor.new_zeros(*at_anchor.shape[:-2], self.n_features)

    def sample_shift(
        self, n_samples: int, batch: int, *, generator: torch.Generator | None, like: torch.Tensor
    ) -> torch.Tensor:
        """``(n_samples, batch, n_features)`` shifts for prior samples: 0 here."""
        return like.new_zeros(n_samples, batch, self.n_features)

    def log_likelihood(
        self, curves: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, std: torch.Tensor
    ) -> torch.Tensor:
        """``log p(values | curves)`` of each series, ``(..., batch)``, for scoring.

        ``curves`` are the decoded means ``(..., batch, n_times, n_features)`` before any
        shift, ``std (n_features,)`` the observation noise. Here: independent Gaussians around
        the curves themselves.
        """
        std = std.to(curves.dtype)
        z = torch.where(mask > 0, values - curves, 0.0) / std
        per_entry = -0.5 * z**2 - torch.log(std) - 0.5 * math.log(2 * math.pi)
        return (per_entry * mask).sum(dim=(-1, -2))


class SeriesLevel(NoLevel):
    """Each series' level as a profiled random intercept (see the module docstring).

    Prior samples have no observations to anchor to: their shift is drawn from a Gaussian
    fitted (:meth:`fit_prior`) to the shifts of the training series; before that, ``N(0, I)``.

    Args:
        n_features: Observed features.

    Attributes:
        prior_loc: ``(n_features,)`` mean of the training series' shifts (a buffer).
        prior_scale_tril: ``(n_features, n_features)`` Cholesky factor of their covariance.
    """

    def __init__(self, n_features: int) -> None:
        super().__init__(n_features)
        self.n_static = 2 * self.n_features  # the level and whether it was observed
        self.register_buffer("prior_loc", torch.zeros(self.n_features))
        self.register_buffer("prior_scale_tril", torch.eye(self.n_features))

    def forward(self, batch: IrregularBatch) -> Anchor:
        counts = batch.mask.sum(dim=1)  # (batch, n_features)
        total = torch.where(batch.mask > 0, batch.values, 0.0).sum(dim=1)
        level = total / counts.clamp_min(1.0)  # 0 where nothing was observed
        return Anchor(level, (counts > 0).to(level.dtype), batch.times, batch.mask)

    def static(self, anchor: Anchor) -> torch.Tensor:
        return torch.cat([anchor.level, anchor.seen], dim=-1)  # (batch, 2 n_features)

    def center(self, batch: IrregularBatch, anchor: Anchor) -> IrregularBatch:
        # (batch, max_obs, n_features): observed values minus their series' level, 0 elsewhere
        values = torch.where(batch.mask > 0, batch.values - anchor.level.unsqueeze(1), 0.0)
        return dataclasses.replace(batch, values=values)

    def shift(self, at_anchor: torch.Tensor, anchor: Anchor) -> torch.Tensor:
        mask = anchor.mask.to(at_anchor.dtype)  # (batch, n_anchor, n_features)
        counts = mask.sum(dim=-2).clamp_min(1.0)  # (batch, n_features)
        curve_mean = (at_anchor * mask).sum(dim=-2) / counts  # (..., batch, n_features)
        return (anchor.level - curve_mean) * anchor.seen

    def sample_shift(
        self, n_samples: int, batch: int, *, generator: torch.Generator | None, like: torch.Tensor
    ) -> torch.Tensor:
        """Shifts for prior samples, drawn from the fitted prior, independently of ``z0``."""
        eps = torch.randn(
            (n_samples, batch, self.n_features),
            generator=generator,
            dtype=like.dtype,
            device=like.device,
        )
        tril = self.prior_scale_tril.to(like.dtype)
        return self.prior_loc.to(like.dtype) + eps @ tril.T  # (n_samples, batch, n_features)

    def log_likelihood(
        self, curves: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, std: torch.Tensor
    ) -> torch.Tensor:
        """``log p(values | curves)`` with each series' shift integrated out, ``(..., batch)``.

        The profiled shift fits the very points it is computed from, so scoring those points
        with it would reward any level, however far from the training data. For a score, the
        shift is a random intercept instead: ``δ_f ~ N(μ_f, τ_f²)`` from the fitted prior
        (its mean and the diagonal of its covariance), added to every entry of feature ``f``.
        Per series and feature, ``n`` observed entries with residuals ``e = x − curve − μ``
        are then jointly Gaussian with covariance ``σ² I + τ² 1 1ᵀ``, whose log-density is
        closed-form: ``−½ [n log 2π + (n − 1) log σ² + log(σ² + n τ²)
        + (Σe² − τ² (Σe)² / (σ² + n τ²)) / σ²]``.
        """
        var = std.to(curves.dtype) ** 2  # (n_features,)
        tau2 = (self.prior_scale_tril.to(curves.dtype) ** 2).sum(-1)  # (n_features,)
        observed = mask > 0
        # (..., batch, n_times, n_features): residuals around the prior's mean shift
        e = torch.where(observed, values - curves - self.prior_loc.to(curves.dtype), 0.0)
        n = mask.to(curves.dtype).sum(-2)  # (batch, n_features)
        s1, s2 = e.sum(-2), (e**2).sum(-2)  # (..., batch, n_features)
        denom = var + n * tau2
        quad = (s2 - tau2 * s1**2 / denom) / var
        log_det = (n - 1) * torch.log(var) + torch.log(denom)
        per_feature = -0.5 * (n * math.log(2 * math.pi) + log_det + quad)
        return torch.where(n > 0, per_feature, 0.0).sum(-1)

    @torch.no_grad()
    def fit_prior(self, shifts: torch.Tensor, seen: torch.Tensor) -> None:
        """Fit the prior over shifts to those of training series, ``(n_series, n_features)``.

        ``seen`` (same shape) marks shifts that exist (the feature was observed). Each
        feature's mean and variance come from its seen shifts alone; the correlations from
        the shifts with unseen ones set to their feature's mean, rescaled to those variances,
        so the covariance stays positive semi-definite. A small ridge keeps the factor finite
        for a feature that never varies.
        """
        if shifts.ndim != 2 or shifts.shape[1] != self.n_features or shifts.shape[0] < 1:
            raise ValueError(
                f"`shifts` must be (n_series >= 1, {self.n_features}); got {tuple(shifts.shape)}"
            )
        if seen.shape != shifts.shape:
            raise ValueError(
                f"`seen` must match `shifts` {tuple(shifts.shape)}; got {tuple(seen.shape)}"
            )
        x, ok = shifts.double(), seen > 0
        counts = ok.sum(0)  # (n_features,)
        loc = torch.where(ok, x, 0.0).sum(0) / counts.clamp_min(1)  # 0 for a feature never seen
        filled = torch.where(ok, x, loc)  # (n_series, n_features)
        centered = filled - loc
        cov = centered.T @ centered / max(x.shape[0] - 1, 1)  # (n_features, n_features)
        var = (torch.where(ok, centered, 0.0) ** 2).sum(0) / (counts - 1).clamp_min(1)
        ratio = torch.where(cov.diagonal() > 0, (var / cov.diagonal()).sqrt(), 0.0)
        cov = ratio[:, None] * cov * ratio[None, :]  # a congruence: still PSD, seen variances
        cov = cov + 1e-6 * torch.eye(self.n_features, dtype=cov.dtype, device=cov.device)
        self.prior_loc.copy_(loc.to(self.prior_loc.dtype))
        self.prior_scale_tril.copy_(torch.linalg.cholesky(cov).to(self.prior_scale_tril.dtype))


LEVELS: dict[str, type[NoLevel]] = {"none": NoLevel, "series": SeriesLevel}
"""Per-series level handling by name: ``"series"`` (:class:`SeriesLevel`) or ``"none"``."""
