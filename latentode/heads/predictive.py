"""`PredictiveNoise`: how far a new observation falls from the model's curve.

The quantiles of decoded mean curves under q(z0) describe where the *curve* may be, not where
a new *observation* will fall: they leave out the observation noise and the model's own error,
and amortised posteriors are over-confident besides (a 90% band of mean curves covered 3-56%
of held-out points in ``benchmarks/baselines.py``). A predictive band adds noise learned, per
feature, from points the model did not see. Its scale grows with the distance ``h`` (model
time) to the nearest observation the prediction was conditioned on, and with the distance of
the curve's value ``m`` (standardised) from a learned centre, for noise that is larger where
the values are (a concentration measured to 10%):

``σ_f(h, m)² = floor² + a_f + b_f h + c_f h² + d_f (m − m0_f)²``,  ``a, b, c, d ≥ 0``,

and its shape is a Student t with ``ν_f`` degrees of freedom (2.5 to 100, learned): model
errors are heavy-tailed, many small and a few large, and a Gaussian fitted to them makes the
50% band too wide while the 90% band is right. Everything is fitted by maximum likelihood of
the held-out residuals, with the curves' posterior spread added to ``σ²``; the level term is
kept only where it earns its two parameters (by the Bayesian information criterion).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from latentode._validation import check_int, check_real

__all__ = ["PredictiveNoise"]

_MIN_DOF, _MAX_DOF = 2.5, 100.0  # t with a finite variance ... practically Gaussian
_N_COEF = 6  # a, b, c, d, m0, ν
_N_WINDOWS = 2  # inside a series' observed window, outside it
_MIN_WINDOW_POINTS = 30  # points for a window's own law; fewer share the feature's


class PredictiveNoise(nn.Module):
    """Per-feature predictive noise: a Student t whose scale depends on distance and level.

    Each feature has two laws: one for times inside a series' observed window (interpolation,
    and the observed times themselves) and one for times before or after it (extrapolation).
    The model's errors differ in kind between the two (bounded between neighbours, growing
    past the last one), and one law fitted to both skews each.

    Args:
        n_features: Observed features.
        floor: The smallest scale, in standardised units, so that a perfectly fitted feature
            still gets a band of finite width. Default 1e-3.

    Attributes:
        coef: ``(6, n_features, 2)`` buffer: ``a, b, c, d, m0, ν`` of each feature, inside
            (0) and outside (1) the observed window.
        fitted: 0-d bool buffer; before :meth:`fit`, the noise is the floor alone, Gaussian.
    """

    def __init__(self, n_features: int, floor: float = 1e-3) -> None:
        super().__init__()
        self.n_features = check_int("n_features", n_features, minimum=1)
        self.floor = check_real("floor", floor, positive=True)
        coef = torch.zeros(_N_COEF, self.n_features, _N_WINDOWS)
        coef[5] = _MAX_DOF
        self.register_buffer("coef", coef)
        self.register_buffer("fitted", torch.tensor(False))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[no-untyped-def]
        # models saved with one law per feature (6, F): the same law inside and outside
        key = prefix + "coef"
        old = state_dict.get(key)
        if old is not None and old.dim() == 2:
            state_dict[key] = old.unsqueeze(-1).expand(*old.shape, _N_WINDOWS).clone()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _coef(self, outside: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
        """``(6, ..., n_features)``: each coefficient where ``outside (..., n_features)``."""
        coef = self.coef.to(dtype)
        if outside is None:
            return coef[..., 0]
        lead = (1,) * (outside.dim() - 1)  # (6, 1, ..., 1, F) against (..., F)
        inside_coef = coef[..., 0].reshape(_N_COEF, *lead, self.n_features)
        outside_coef = coef[..., 1].reshape(_N_COEF, *lead, self.n_features)
        return torch.where(outside.bool().unsqueeze(0), outside_coef, inside_coef)

    def variance(
        self,
        h: torch.Tensor,
        m: torch.Tensor | None = None,
        outside: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``σ(h, m)²`` for ``h`` (and curve values ``m``) of shape ``(..., n_features)``.

        ``outside`` (broadcastable bool) marks times outside the observed window; None means
        inside.
        """
        if outside is not None:
            outside = torch.broadcast_to(outside, h.shape)
        return _variance(self._coef(outside, h.dtype), h, m, self.floor)

    def std(
        self,
        h: torch.Tensor,
        m: torch.Tensor | None = None,
        outside: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The scale ``σ(h, m)``, ``(..., n_features)``; ``m=None`` leaves the level term out."""
        return self.variance(h, m, outside).sqrt()

    def std_at(
        self,
        h: torch.Tensor,
        feature: torch.Tensor,
        m: torch.Tensor | None = None,
        outside: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``σ`` of scattered points: ``h (n,)`` (and ``m``, ``outside (n,)``), each of
        feature ``feature``."""
        return _variance(self._coef_at(feature, outside, h.dtype), h, m, self.floor).sqrt()

    def dof_at(self, feature: torch.Tensor, outside: torch.Tensor | None = None) -> torch.Tensor:
        """``(n,)`` degrees of freedom ``ν`` of scattered points' t."""
        return self._coef_at(feature, outside, self.coef.dtype)[5]

    def _coef_at(
        self, feature: torch.Tensor, outside: torch.Tensor | None, dtype: torch.dtype
    ) -> torch.Tensor:
        window = torch.zeros_like(feature) if outside is None else outside.long()
        return self.coef.to(dtype)[:, feature, window]  # (6, n)

    @property
    def dof(self) -> torch.Tensor:
        """``(n_features, 2)`` degrees of freedom ``ν`` of each feature's t, inside and
        outside the observed window."""
        return self.coef[5]

    def standard_draws(
        self,
        rng: np.random.Generator,
        shape: tuple[int, ...],
        outside: np.ndarray | None = None,
    ) -> np.ndarray:
        """Unit-scale draws ``shape = (..., n_features)`` of each feature's t, from ``rng``.

        ``outside`` (bool, broadcastable to ``shape``) picks the law outside the window.
        """
        dof = self.dof.double().numpy()  # (F, 2)
        nu = dof[:, 0] if outside is None else np.where(outside, dof[:, 1], dof[:, 0])
        return rng.standard_t(np.broadcast_to(nu, shape))

    def fit(
        self,
        residuals: torch.Tensor,
        spread: torch.Tensor,
        h: torch.Tensor,
        feature: torch.Tensor,
        curve: torch.Tensor | None = None,
        outside: torch.Tensor | None = None,
        *,
        steps: int = 400,
    ) -> None:
        """Fit each feature's coefficients by maximum likelihood on held-out points.

        Args:
            residuals: ``(n,)`` observed value minus the mean decoded curve, standardised.
            spread: ``(n,)`` variance of the decoded curves there (the posterior's share).
            h: ``(n,)`` distance to the nearest conditioning observation of that feature.
            feature: ``(n,)`` long, each point's feature index.
            curve: ``(n,)`` the mean decoded curve there; None leaves the level term out.
            outside: ``(n,)`` bool, the point lies outside its series' observed window; None
                fits one law for both.
            steps: Adam steps of the fit per feature.

        Each feature's law is first fitted to all its points; a window (inside, outside) with
        at least 30 points then gets its own, else keeps that one. A feature with fewer than
        10 points gets a Gaussian of its residuals' mean square.
        """
        n = residuals.shape[0]
        curve = torch.zeros_like(residuals) if curve is None else curve
        outside = torch.zeros(n, dtype=torch.bool) if outside is None else outside.bool()
        for name, t in (
            ("spread", spread),
            ("h", h),
            ("feature", feature),
            ("curve", curve),
            ("outside", outside),
        ):
            if t.shape != (n,):
                raise ValueError(f"`{name}` must be ({n},) like `residuals`; got {tuple(t.shape)}")
        r, v = residuals.double(), spread.double().clamp_min(0)
        d, m = h.double().clamp_min(0), curve.double()
        coef = torch.zeros(_N_COEF, self.n_features, _N_WINDOWS, dtype=torch.float64)
        coef[5] = _MAX_DOF
        for f in range(self.n_features):
            here = feature == f
            if int(here.sum()) < 10:
                if bool(here.any()):
                    coef[0, f] = (r[here] ** 2 - v[here]).mean().clamp_min(0)
                continue
            pooled = None  # the law over all the feature's points, fitted only when needed
            for w in range(_N_WINDOWS):
                sel = here & (outside == bool(w))
                if _MIN_WINDOW_POINTS <= int(sel.sum()) < int(here.sum()):
                    coef[:, f, w] = _fit_one(r[sel], v[sel], d[sel], m[sel], self.floor, steps)
                else:
                    if pooled is None:
                        pooled = _fit_one(r[here], v[here], d[here], m[here], self.floor, steps)
                    coef[:, f, w] = pooled
        self.coef.copy_(coef.to(self.coef.dtype))
        self.fitted.fill_(True)


def _t_log_density(r: torch.Tensor, scale: torch.Tensor, dof: torch.Tensor) -> torch.Tensor:
    """``log t_ν(r | 0, scale)`` elementwise."""
    half = 0.5 * (dof + 1)
    return (
        torch.lgamma(half)
        - torch.lgamma(0.5 * dof)
        - 0.5 * torch.log(dof * math.pi)
        - torch.log(scale)
        - half * torch.log1p((r / scale) ** 2 / dof)
    )


def _variance(
    coef: torch.Tensor, h: torch.Tensor, m: torch.Tensor | None, floor: float
) -> torch.Tensor:
    """``floor² + a + b h + c h² [+ d (m − m0)²]`` from ``coef = (a, b, c, d, m0, ν)``, each
    coefficient broadcastable against ``h``."""
    a, b, c, d, m0, _ = coef
    var = floor**2 + a + b * h + c * h**2
    return var if m is None else var + d * (m.to(h.dtype) - m0) ** 2


def _fit_one(
    r: torch.Tensor, v: torch.Tensor, h: torch.Tensor, m: torch.Tensor, floor: float, steps: int
) -> torch.Tensor:
    """``(a, b, c, d, m0, ν)`` maximising the t likelihood of the residuals ``r``.

    The level term (``d, m0``) is kept only when it raises the log-likelihood by more than its
    two parameters cost by the Bayesian information criterion (``log n`` nats): where the
    curve barely varies, or the noise does not follow it, a free level term fits chance
    patterns of the residuals.
    """
    with_level, gain = _fit_terms(r, v, h, m, floor, steps, level=True)
    without, base = _fit_terms(r, v, h, m, floor, steps, level=False)
    return with_level if gain - base > math.log(r.numel()) else without


def _fit_terms(
    r: torch.Tensor,
    v: torch.Tensor,
    h: torch.Tensor,
    m: torch.Tensor,
    floor: float,
    steps: int,
    *,
    level: bool,
) -> tuple[torch.Tensor, float]:
    """The coefficients and the summed log-likelihood, with or without the level term."""
    h_scale = h.max().clamp_min(1e-12)
    m_scale = m.std().clamp_min(1e-6)
    x, y = h / h_scale, (m - m.mean()) / m_scale  # both of order one: one learning rate
    start = (r**2 - v).mean().clamp_min(floor**2)
    raw = torch.tensor(
        [math.log(math.expm1(float(start))), -10.0, -10.0, -10.0, 0.0, 0.0],
        dtype=torch.float64,
        requires_grad=True,
    )
    optimiser = torch.optim.Adam([raw], lr=0.05)
    with torch.enable_grad():
        for _ in range(steps):
            a, b, c, d = nn.functional.softplus(raw[:4])
            dof = _MIN_DOF + (_MAX_DOF - _MIN_DOF) * torch.sigmoid(raw[5])
            d = d if level else torch.zeros_like(d)
            var = v + floor**2 + a + b * x + c * x**2 + d * (y - raw[4]) ** 2
            loss = -_t_log_density(r, var.sqrt(), dof).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    with torch.no_grad():
        a, b, c, d = nn.functional.softplus(raw[:4])
        d = d if level else torch.zeros_like(d)
        dof = _MIN_DOF + (_MAX_DOF - _MIN_DOF) * torch.sigmoid(raw[5])
        var = v + floor**2 + a + b * x + c * x**2 + d * (y - raw[4]) ** 2
        total = float(_t_log_density(r, var.sqrt(), dof).sum())
        centre = m.mean() + raw[4] * m_scale
        # back to model time and standardised values
        coef = torch.stack([a, b / h_scale, c / h_scale**2, d / m_scale**2, centre, dof])
        return coef, total
