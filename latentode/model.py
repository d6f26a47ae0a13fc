"""`LatentODEModel`: encoder + Neural-ODE decoder + observation head, as one plain nn.Module."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.distributions import Normal

from latentode._validation import check_bool, check_choice, check_int, check_real
from latentode.core.solver import SolverConfig
from latentode.data.batch import CovariateBatch, IrregularBatch
from latentode.decoders import DECODERS, LEVELS, Anchor, FlowDecoder, ODEDecoder
from latentode.encoders import ENCODERS
from latentode.encoders.evidence import evidence
from latentode.heads import GaussianHead, PoissonHead
from latentode.heads.poisson import poisson_log_likelihood
from latentode.heads.predictive import PredictiveNoise
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


@dataclass(frozen=True)
class Decoded:
    """One solve of a target batch, as the likelihood terms read it.

    Attributes:
        target: The target batch.
        z: ``(..., batch, n_solve, latent)`` the path at the solve times: the target's own
            times first (``target.max_obs`` of them), then the terms' extra times.
        curves: ``(..., batch, max_obs, n_features)`` level-shifted observation means at the
            target's own times.
        integral: ``(..., batch, n_solve, k)`` the integrals of the terms' integrands along the
            path (None when no term has one).
    """

    target: IrregularBatch
    z: torch.Tensor
    curves: torch.Tensor
    integral: torch.Tensor | None


class ObservationTerm:
    """The values' log-likelihood under the Gaussian head: no extra times, no integral."""

    name = "values"
    integrand: nn.Module | None = None
    weight = 1.0

    def __init__(self, head: GaussianHead) -> None:
        self.head = head

    def extra_times(self, target: IrregularBatch) -> tuple[torch.Tensor | None, Any]:
        return None, None

    def log_likelihood(self, decoded: Decoded, extra: Any) -> torch.Tensor:
        """``(..., batch)``."""
        t = decoded.target
        return self.head.log_likelihood(decoded.curves, t.values, t.mask)


class EventTerm:
    """The events' log-likelihood, ``Σ log λ(t_i) − ∫ λ dt``, weighted.

    Its extra times are the target's events (none when each feature's observation times are
    its events); its integrand, the intensity, rides along the path, so the compensator comes
    from the same solve.
    """

    name = "events"

    def __init__(self, poisson: PoissonHead, weight: float) -> None:
        self.integrand = poisson
        self.weight = weight

    def extra_times(self, target: IrregularBatch) -> tuple[torch.Tensor | None, Any]:
        times, counts = event_counts(self.integrand, target)
        return times[:, target.max_obs :], counts

    def log_likelihood(self, decoded: Decoded, counts: Any) -> torch.Tensor:
        """``(..., batch)``, unweighted (the loss applies :attr:`weight`)."""
        n_obs, n = decoded.target.max_obs, counts.shape[1]
        z, integral = decoded.z[..., :n, :], decoded.integral[..., :n, :]
        # padding repeats a series' last time, so position n_obs - 1 is its window's end
        compensator = integral[..., n_obs - 1, :] - integral[..., 0, :]  # (..., batch, kinds)
        return poisson_log_likelihood(self.integrand.log_intensity(z), counts, compensator)


class LatentODEModel(nn.Module):
    """A latent ODE (Rubanova et al. 2019): q(z0 | x) by an encoder, z(t) by a Neural ODE.

    Args:
        n_features: Observed features.
        latent_dim: Size of the latent state. Default 16.
        encoder: ``"odernn"`` (default) or ``"gru"`` (see :data:`latentode.encoders.ENCODERS`).
        encoder_hidden: Encoder state size. Default 32.
        encoder_kwargs: Extra encoder options (e.g. ``{"n_substeps": 4}``).
        decoder_width: Width of the latent vector field (or of the flow's networks). Default 64.
        decoder_depth: Residual blocks in the latent vector field (or in each flow network).
            Default 2.
        decoder: ``"ode"`` (default): a Neural ODE decoder
            (:class:`~latentode.decoders.ODEDecoder`); ``"flow"``: a neural flow, the
            solution map without a solver (:class:`~latentode.decoders.FlowDecoder`).
        flow: With ``decoder="flow"``: ``"coupling"`` (default), ``"resnet"`` or ``"gru"``.
        obs_std: Observation std of the Gaussian head. Default 0.01.
        learn_std: Learn a per-feature std. Default False.
        train_solver: Decoder solver settings for training. Default ``SolverConfig()``.
        eval_solver: Decoder solver settings for prediction; default ``train_solver``.
        n_event_kinds: Event kinds of a Poisson-process head ``λ_k(z(t))``; 0 (default) has
            none. The events are those of the target batch (``IrregularBatch.events``) or, when
            it has none, the observation times of each feature (then one kind per feature).
        intensity_hidden: Hidden width of the Poisson head. Default 32.
        event_weight: Weight of the Poisson log-likelihood next to the Gaussian one.
            Default 1.
        level: ``"series"``: each series' level (the mean of its conditioning values per
            feature) is taken out before encoding, given to the encoder, and added back to the
            decoded mean (:class:`~latentode.decoders.SeriesLevel`); ``"none"`` (default):
            the latent state carries the level too.
        n_held_inputs, n_impulse_inputs, n_static_features: Covariates each batch carries
            (:class:`~latentode.data.CovariateBatch`). Held inputs and static features enter
            the decoder's field, ``dz/dt = f(z, u(t), s)``, stepped to at every change point;
            impulse inputs (doses) move the latent state at their instant. The encoder reads
            the static features at every step and, at each observation, the held inputs in
            force and the doses given since the previous one. Both decoders take them.
            Default 0 each: none.
        event_inputs: The encoder also reads each series' past events: at each position, how
            many of each kind happened since the previous one (``log1p`` of the counts), and
            positions where only events happened are read too. For a Poisson head fitted to
            explicit events (``IrregularBatch.events``), so that a series' own events inform
            its posterior and its forecast intensity. Default False.
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
        decoder: str = "ode",
        flow: str = "coupling",
        obs_std: float = 0.01,
        learn_std: bool = False,
        train_solver: SolverConfig | None = None,
        eval_solver: SolverConfig | None = None,
        n_event_kinds: int = 0,
        intensity_hidden: int = 32,
        event_weight: float = 1.0,
        level: str = "none",
        n_held_inputs: int = 0,
        n_impulse_inputs: int = 0,
        n_static_features: int = 0,
        event_inputs: bool = False,
    ) -> None:
        super().__init__()
        self.event_inputs = check_bool("event_inputs", event_inputs)
        if self.event_inputs and not n_event_kinds:
            raise ValueError("`event_inputs` reads events for a Poisson head; n_event_kinds is 0")
        self.n_held_inputs = check_int("n_held_inputs", n_held_inputs, minimum=0)
        self.n_impulse_inputs = check_int("n_impulse_inputs", n_impulse_inputs, minimum=0)
        self.n_static_features = check_int("n_static_features", n_static_features, minimum=0)
        check_int("latent_dim", latent_dim, minimum=1)
        check_int("n_event_kinds", n_event_kinds, minimum=0)
        self.event_weight = check_real("event_weight", event_weight, nonnegative=True)
        self.level = LEVELS[check_choice("level", level, LEVELS)](n_features)
        encoder_cls = ENCODERS[check_choice("encoder", encoder, ENCODERS)]
        self.encoder = encoder_cls(
            n_features,
            latent_dim,
            encoder_hidden,
            n_static=self.level.n_static + n_static_features,
            n_inputs=n_held_inputs + n_impulse_inputs + (n_event_kinds if event_inputs else 0),
            **dict(encoder_kwargs or {}),
        )
        flow_kwargs = {"flow": flow} if check_choice("decoder", decoder, DECODERS) == "flow" else {}
        self.decoder: ODEDecoder | FlowDecoder = DECODERS[decoder](
            latent_dim,
            n_features,
            **flow_kwargs,
            width=decoder_width,
            depth=decoder_depth,
            train_solver=train_solver,
            eval_solver=eval_solver,
            n_held=n_held_inputs,
            n_impulse=n_impulse_inputs,
            n_static=n_static_features,
        )
        self.head = GaussianHead(n_features, std=obs_std, learn_std=learn_std)
        # the spread of new observations around the curve, fitted after training (predictions)
        self.noise = PredictiveNoise(n_features)
        self.poisson = (
            PoissonHead(latent_dim, n_event_kinds, hidden=intensity_hidden)
            if n_event_kinds
            else None
        )
        self.latent_dim = latent_dim
        self.n_features = n_features
        # The likelihood terms, one interface (extra_times, integrand, log_likelihood): the
        # loss sums them, so it has no branch per head. A plain list, not registered: the heads
        # are registered as `head` and `poisson`, the names saved models carry.
        self.terms: list[ObservationTerm | EventTerm] = [ObservationTerm(self.head)]
        if self.poisson is not None:
            self.terms.append(EventTerm(self.poisson, self.event_weight))

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
        q, anchor = self.encode(cond)
        z0 = self._draw(q.loc, q.scale, n_samples, generator)  # (n_samples, batch, latent)
        return ModelOutput(q, z0, self.decode(z0, target_times, anchor, cond.covariates))

    @property
    def has_covariates(self) -> bool:
        return bool(self.n_held_inputs + self.n_impulse_inputs + self.n_static_features)

    def encode(self, cond: IrregularBatch) -> tuple[Normal, Anchor]:
        """q(z0 | cond) and the :class:`~latentode.decoders.Anchor` of each series' level."""
        anchor = self.level(cond)
        static = self.level.static(anchor)
        if (cond.covariates is not None) != self.has_covariates:
            raise ValueError(
                "this model reads covariates (known inputs or static features) and the batch "
                "carries none"
                if self.has_covariates
                else "the batch carries covariates, but this model was built without them"
            )
        extra = evidence(
            cond,
            static=self.n_static_features > 0,
            inputs=self.n_held_inputs + self.n_impulse_inputs > 0,
            event_kinds=self.poisson.n_kinds if self.event_inputs else 0,
        )
        if extra.static is not None:
            static = extra.static if static is None else torch.cat([static, extra.static], -1)
        inputs, present = extra.inputs, extra.present
        centered = self.level.center(cond, anchor)
        # without inputs, the two-argument call that encoders (and wrappers of them) take
        if inputs is None:
            q = self.encoder(centered, static)
        elif present is None:
            q = self.encoder(centered, static, inputs)
        else:
            q = self.encoder(centered, static, inputs, present)
        return q, anchor

    def decode(
        self,
        z0: torch.Tensor,
        times: torch.Tensor,
        anchor: Anchor,
        covariates: CovariateBatch | None = None,
    ) -> torch.Tensor:
        """Observation means ``(..., batch, n_times, n_features)`` at ``times (batch, n_times)``.

        ``readout(z(t))``, shifted per series so that its level matches the conditioning
        points' (:class:`~latentode.decoders.SeriesLevel`); the anchor's times are output
        times of the same solve. ``covariates``: the series', when the model reads them.
        """
        n = times.shape[1]
        # (batch, n_times + n_anchor): the targets, then the conditioning times
        every = torch.cat([times, anchor.times.to(times.dtype)], dim=1)
        curves = self._decoded(z0, every, covariates)  # (..., batch, n_times + n_anchor, F)
        shift = self.level.shift(curves[..., n:, :], anchor)  # (..., batch, n_features)
        return curves[..., :n, :] + shift.unsqueeze(-2)

    def _decoded(
        self, z0: torch.Tensor, times: torch.Tensor, covariates: CovariateBatch | None
    ) -> torch.Tensor:
        """``decoder(z0, times)``, with the covariates when the model reads them."""
        if covariates is None:
            return self.decoder(z0, times)
        return self.decoder(z0, times, covariates)

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
        """The training loss for conditioning points ``cond`` and target points ``target``.

        With a Poisson head, the events of ``target`` on its window (its first to its last
        time) add ``event_weight`` times their log-likelihood; their times are output times of
        the decoder's one solve, which also carries the compensator ``∫ λ dt``.
        """
        if target.times.shape[0] != cond.batch_size:
            raise ValueError(
                f"`target_times` covers {target.times.shape[0]} series, `cond` "
                f"{cond.batch_size}; give one row of target times per conditioning series"
            )
        q, anchor = self.encode(cond)
        z0 = self._draw(q.loc, q.scale, n_samples, generator)
        extras = [term.extra_times(target) for term in self.terms]
        times = torch.cat(
            [target.times, *(t.to(target.times.dtype) for t, _ in extras if t is not None)], dim=1
        )
        n_obs, n_solve = target.max_obs, times.shape[1]
        every = torch.cat([times, anchor.times.to(times.dtype)], dim=1)
        integrands = [term.integrand for term in self.terms if term.integrand is not None]
        if len(integrands) > 1:
            raise ValueError("one integrand rides along the path at a time; got several terms")
        cov = {} if target.covariates is None else {"covariates": target.covariates}
        if integrands:
            z_all, integral = self.decoder.trajectory_with_integral(z0, every, integrands[0], **cov)
            integral = integral[..., :n_solve, :]
        else:
            z_all, integral = self.decoder.trajectory(z0, every, **cov), None
        # The read-outs at the target and anchor times, with the same arithmetic as before
        # terms existed (one product over every time without an integral, one per slice with
        # one), so a fit reproduces earlier fits bit for bit: matrix products of other shapes
        # round differently.
        if integral is None:
            read = self.decoder.readout(z_all)
            at_targets, at_anchors = read[..., :n_obs, :], read[..., n_solve:, :]
        else:
            at_targets = self.decoder.readout(z_all[..., :n_obs, :])
            at_anchors = self.decoder.readout(z_all[..., n_solve:, :])
        # (..., batch, n_features): the level shift, from the curves at the anchor times
        shift = self.level.shift(at_anchors, anchor)
        curves = at_targets + shift.unsqueeze(-2)
        out = ModelOutput(q, z0, curves)
        decoded = Decoded(target, z_all[..., :n_solve, :], curves, integral)
        parts = {
            term.name: term.log_likelihood(decoded, extra)
            for term, (_, extra) in zip(self.terms, extras, strict=True)
        }  # each (K, batch)
        log_lik = None
        for term in self.terms:
            weighted = parts[term.name] if term.weight == 1.0 else term.weight * parts[term.name]
            log_lik = weighted if log_lik is None else log_lik + weighted
        event_ll = parts.get("events")
        n_observed = target.mask.sum(dim=(-1, -2))  # (batch,)
        terms = latent_ode_loss(
            log_lik, out.posterior, out.z0, n_observed, kl_weight=kl_weight, bound=bound
        )
        if event_ll is not None:
            per_obs = (event_ll.mean(0) / n_observed.to(event_ll.dtype).clamp_min(1.0)).mean()
            terms = dataclasses.replace(terms, event_log_likelihood=per_obs)
        return terms, out

    def event_counts(self, target: IrregularBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Times to solve at and the events at each: ``(batch, n)`` and ``(batch, n, kinds)``.

        The first ``target.max_obs`` times are the target's own. Explicit events
        (``target.events``) follow them, one-hot by kind; without them, each feature's
        observation times are its events (the mask), as in Rubanova et al. (2019).
        """
        if self.poisson is None:
            raise ValueError("this model has no Poisson head (n_event_kinds=0)")
        return event_counts(self.poisson, target)

    def intensity(
        self,
        z0: torch.Tensor,
        times: torch.Tensor,
        anchor: Anchor,
        covariates: CovariateBatch | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Decode ``z0 (..., batch, latent)`` at ``times (batch, n_times)`` with the Poisson head.

        ``anchor`` is the series' level anchor from :meth:`encode`; ``covariates`` the
        series', when the model reads them.

        Returns:
            The observation means ``(..., batch, n_times, n_features)``, the intensities
            ``λ (..., batch, n_times, kinds)`` and the compensator ``Λ(t) = ∫_0^t λ``
            ``(..., batch, n_times, kinds)``; ``Λ(b) - Λ(a)`` is the expected count on
            ``[a, b]`` given ``z0``.
        """
        if self.poisson is None:
            raise ValueError("this model has no Poisson head (n_event_kinds=0)")
        n = times.shape[1]
        every = torch.cat([times, anchor.times.to(times.dtype)], dim=1)
        cov = {} if covariates is None else {"covariates": covariates}
        z_all, integral = self.decoder.trajectory_with_integral(z0, every, self.poisson, **cov)
        z = z_all[..., :n, :]  # (..., batch, n_times, latent)
        shift = self.level.shift(self.decoder.readout(z_all[..., n:, :]), anchor)
        mean = self.decoder.readout(z) + shift.unsqueeze(-2)
        return mean, self.poisson(z), integral[..., :n, :]

    def predict_mean(self, cond: IrregularBatch, times: torch.Tensor) -> torch.Tensor:
        """The decoded posterior mean: ``z0 = E[q(z0 | cond)]`` at ``times (batch, n_times)``.

        A deterministic point prediction, ``(batch, n_times, n_features)``; use
        :meth:`sample_posterior` for the spread around it.
        """
        q, anchor = self.encode(cond)
        return self.decode(q.loc.unsqueeze(0), times, anchor, cond.covariates)[0]

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
        covariates: CovariateBatch | None = None,
    ) -> torch.Tensor:
        """New trajectories from the prior: ``z0 ~ N(0, I)`` decoded at ``times``.

        Args:
            times: ``(batch, n_times)`` model times, one row per generated series.
            n_samples: Samples per row.
            generator: Seeds the draw.
            covariates: Each row's covariates, when the model reads them (a schedule to
                simulate under).

        Returns:
            ``(n_samples, batch, n_times, n_features)`` observation means.
        """
        ref = self.head.log_std
        zeros = torch.zeros(times.shape[0], self.latent_dim, dtype=ref.dtype, device=ref.device)
        z0 = self._draw(zeros, torch.ones_like(zeros), n_samples, generator)
        # level shifts are drawn after z0, from the same generator, and independently of it:
        # the prior over shifts is fitted to the training series' shifts at their posterior
        # means, a simplification (n_samples, batch, n_features)
        shift = self.level.sample_shift(n_samples, times.shape[0], generator=generator, like=z0)
        return self._decoded(z0, times.to(ref.dtype), covariates) + shift.unsqueeze(-2)

    def log_likelihood(self, z0: torch.Tensor, batch: IrregularBatch) -> torch.Tensor:
        """``log p(batch | z0)`` of each series, ``(..., batch)``, for scoring held-out data.

        Decodes ``z0 (..., batch, latent)`` at the batch's own times; the noise is
        :attr:`observation_std`. With per-series levels the shift is integrated out under its
        fitted prior instead of being fitted to the very points it scores
        (:meth:`~latentode.decoders.SeriesLevel.log_likelihood`).
        """
        curves = self._decoded(z0, batch.times, batch.covariates)  # (..., batch, n_times, F)
        return self.level.log_likelihood(curves, batch.values, batch.mask, self.observation_std)

    def event_log_likelihood(self, z0: torch.Tensor, batch: IrregularBatch) -> torch.Tensor:
        """``log p(events | z0)`` of each series on its window, ``(..., batch)``.

        The events are the batch's own (``batch.events``) or, without them, each feature's
        observation times (see :meth:`event_counts`); the window runs from each series' first
        to its last time.
        """
        if self.poisson is None:
            raise ValueError("this model has no Poisson head (n_event_kinds=0)")
        times, counts = self.event_counts(batch)
        cov = {} if batch.covariates is None else {"covariates": batch.covariates}
        z, integral = self.decoder.trajectory_with_integral(z0, times, self.poisson, **cov)
        last = batch.max_obs - 1  # padding repeats a series' last time: its window's end
        compensator = integral[..., last, :] - integral[..., 0, :]  # (..., batch, kinds)
        return poisson_log_likelihood(self.poisson.log_intensity(z), counts, compensator)

    @property
    def observation_std(self) -> torch.Tensor:
        """``(n_features,)`` the noise of a new observation at an observed time: the fitted
        predictive noise at distance 0 once fitted, else the training head's std."""
        if bool(self.noise.fitted):
            return self.noise.std(torch.zeros_like(self.head.std))
        return self.head.std

    def noise_std(
        self, cond: IrregularBatch, times: torch.Tensor, curves: torch.Tensor
    ) -> torch.Tensor:
        """Scale of the predictive noise around ``curves (..., batch, n_times, n_features)``.

        It grows with each time's distance (``times (batch, n_times)``) to the nearest
        observation of ``cond`` and with the curve's value, and follows one law inside each
        series' observed window and another outside it
        (:class:`~latentode.heads.predictive.PredictiveNoise`), in standardised units; the
        result has the shape of ``curves``.
        """
        times = times.to(cond.times.dtype)
        distance = cond.distance_to_observed(times)  # (B, T, F)
        outside = cond.outside_window(times).unsqueeze(-1)  # (B, T, 1)
        return self.noise.std(distance.to(curves.dtype), curves, outside)

    @torch.no_grad()
    def fit_level_prior(self, batches: Iterable[IrregularBatch]) -> None:
        """Fit the prior over level shifts (for prior samples) to these series.

        Each series conditions on all its points; its shift is computed at the posterior
        mean. Does nothing without per-series levels.
        """
        fit = getattr(self.level, "fit_prior", None)
        if fit is None:
            return
        shifts, seen = [], []
        for batch in batches:
            q, anchor = self.encode(batch)
            at_anchor = self._decoded(q.loc.unsqueeze(0), anchor.times, batch.covariates)[0]
            shifts.append(self.level.shift(at_anchor, anchor))
            seen.append(anchor.seen)
        if shifts:
            fit(torch.cat(shifts), torch.cat(seen))


def event_counts(poisson: PoissonHead, target: IrregularBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """Times to solve at and the events at each: ``(batch, n)`` and ``(batch, n, kinds)``.

    The first ``target.max_obs`` times are the target's own. Explicit events
    (``target.events``) follow them, one-hot by kind; without them, each feature's observation
    times are its events (the mask), as in Rubanova et al. (2019).
    """
    n_kinds = poisson.n_kinds
    events = target.events
    if events is None:
        if n_kinds != target.n_features:
            raise ValueError(
                f"without explicit events, each feature's observation times are its events, "
                f"so n_event_kinds must equal n_features={target.n_features}; got {n_kinds}"
            )
        return target.times, target.mask
    if bool((events.kinds >= n_kinds).any()):
        raise ValueError(
            f"event kind indices must be below n_event_kinds={n_kinds}; got "
            f"{int(events.kinds.max())}"
        )
    one_hot = torch.nn.functional.one_hot(events.kinds, n_kinds)
    counts = one_hot.to(target.mask.dtype) * events.mask.unsqueeze(-1)
    zeros = target.mask.new_zeros(*target.mask.shape[:2], n_kinds)
    return (
        torch.cat([target.times, events.times.to(target.times.dtype)], dim=1),
        torch.cat([zeros, counts], dim=1),
    )
