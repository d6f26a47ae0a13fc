"""The Poisson-process head: exact likelihoods, the compensator as an ODE state, thinning."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from latentode.core import SolverConfig
from latentode.data.batch import EventBatch, IrregularBatch
from latentode.decoders import ODEDecoder
from latentode.heads.poisson import (
    IntensityBoundError,
    PoissonHead,
    log_softplus,
    poisson_log_likelihood,
    sample_thinning,
)
from latentode.model import LatentODEModel

f64 = torch.float64
TIGHT = SolverConfig(rtol=1e-10, atol=1e-12)


def _decoder(latent=3, seed=0):
    torch.manual_seed(seed)
    decoder = ODEDecoder(latent, 2, width=16, depth=1, train_solver=TIGHT).double()
    for p in decoder.field.parameters():  # a path that really moves
        torch.nn.init.normal_(p, std=0.4)
    return decoder


# -- likelihood ---------------------------------------------------------------------------------


def test_constant_rate_log_likelihood_is_n_log_lambda_minus_lambda_t():
    """With g ≡ b the rate is softplus(b) everywhere: log L = n log λ − λ T, exactly."""
    decoder = _decoder()
    head = PoissonHead(3, 1).double()
    torch.nn.init.zeros_(head.net[-1].weight)
    torch.nn.init.constant_(head.net[-1].bias, 1.3)
    rate = math.log1p(math.exp(1.3))
    t_start, t_end = 0.4, 3.1
    events = torch.tensor([[0.4, 0.9, 1.7, 2.2, 2.9, 3.05, 3.1]], dtype=f64)  # (1, 7)
    times = torch.cat([torch.tensor([[t_start, t_end]], dtype=f64), events], dim=1)
    z0 = torch.randn(1, 3, dtype=f64)
    z, integral = decoder.trajectory_with_integral(z0, times, head)
    counts = torch.cat([torch.zeros(1, 2, 1), torch.ones(1, 7, 1)], dim=1).to(f64)
    compensator = integral[:, 1] - integral[:, 0]  # (1, 1)
    log_lik = poisson_log_likelihood(head.log_intensity(z), counts, compensator)
    expected = 7 * math.log(rate) - rate * (t_end - t_start)
    assert log_lik.item() == pytest.approx(expected, rel=0, abs=1e-10)


def test_compensator_matches_high_order_quadrature_along_the_same_path():
    decoder = _decoder(seed=1)
    head = PoissonHead(3, 2, hidden=8).double()
    for p in head.parameters():
        torch.nn.init.normal_(p, std=0.8)
    z0 = torch.randn(4, 3, dtype=f64, generator=torch.Generator().manual_seed(5))
    a, b = -0.7, 2.3  # across t = 0: a backwards and a forwards solve
    _, integral = decoder.trajectory_with_integral(
        z0, torch.tensor([[a, b]], dtype=f64).expand(4, 2), head
    )
    from_ode = integral[:, 1] - integral[:, 0]  # (4, 2)
    nodes, weights = np.polynomial.legendre.leggauss(60)
    t = torch.as_tensor((b - a) / 2 * nodes + (a + b) / 2, dtype=f64)  # (60,)
    path = decoder.trajectory(z0, t.expand(4, 60))  # (4, 60, 3)
    lam = head(path)  # (4, 60, 2)
    quadrature = (b - a) / 2 * torch.einsum("n,bnk->bk", torch.as_tensor(weights, dtype=f64), lam)
    torch.testing.assert_close(from_ode, quadrature, rtol=1e-8, atol=1e-9)


def test_gradcheck_through_the_poisson_log_likelihood():
    """float64 gradcheck from z0 and the head's input through solve, λ and the compensator."""
    torch.manual_seed(2)
    decoder = ODEDecoder(
        2, 1, width=6, depth=1, train_solver=SolverConfig(method="rk4", step_size=0.1)
    ).double()
    head = PoissonHead(2, 2, hidden=5).double()
    times = torch.tensor([[0.0, 0.35, 0.8, 1.0], [0.0, 0.2, 0.5, 0.6]], dtype=f64)
    counts = torch.tensor(
        [[[0, 0], [1, 0], [0, 2], [0, 0]], [[0, 0], [0, 1], [1, 0], [0, 0]]], dtype=f64
    )

    def log_lik(z0, bias):
        # bias shifts g(z) at the events only: a direct input into log λ next to z0
        z, integral = decoder.trajectory_with_integral(z0, times, head)
        logits = head.logits(z) + bias
        compensator = integral[:, -1] - integral[:, 0]
        return poisson_log_likelihood(log_softplus(logits), counts, compensator)

    z0 = torch.randn(2, 2, dtype=f64, requires_grad=True)
    bias = torch.zeros(2, dtype=f64, requires_grad=True)
    assert torch.autograd.gradcheck(log_lik, (z0, bias), atol=1e-7)
    # and the likelihood formula itself, in all its inputs
    log_lam = torch.randn(2, 4, 2, dtype=f64, requires_grad=True)
    comp = torch.rand(2, 2, dtype=f64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, c: poisson_log_likelihood(x, counts, c), (log_lam, comp)
    )


def test_log_softplus_is_finite_and_exact_far_below_zero():
    x = torch.tensor([-200.0, -30.0, -20.5, -19.5, 0.0, 5.0, 60.0], dtype=f64, requires_grad=True)
    out = log_softplus(x)
    exact = torch.log(torch.log1p(torch.exp(x.detach())))
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[1:], exact[1:], rtol=1e-12, atol=1e-12)
    assert out[0].item() == -200.0  # log(softplus) underflows to -inf in a naive evaluation
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert torch.autograd.gradcheck(
        log_softplus, (torch.linspace(-25, 3, 9, dtype=f64).requires_grad_(),)
    )


def test_counts_of_zero_never_read_the_log_intensity():
    log_lam = torch.tensor([[[-math.inf], [0.5], [math.nan]]])
    counts = torch.tensor([[[0.0], [2.0], [0.0]]])
    out = poisson_log_likelihood(log_lam, counts, torch.tensor([[1.5]]))
    assert out.item() == pytest.approx(2 * 0.5 - 1.5)


# -- the model's joint loss ---------------------------------------------------------------------


def _event_batch(garbage: float) -> tuple[IrregularBatch, IrregularBatch]:
    times = torch.tensor([[0.0, 0.3, 0.7, 1.0], [0.0, 0.5, 0.5, 0.5]])
    mask = torch.tensor(
        [[[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]], [[1.0, 1.0], [0.0, 1.0], [0, 0], [0, 0]]]
    )
    values = torch.randn(2, 4, 2, generator=torch.Generator().manual_seed(0))
    values = torch.where(mask > 0, values, torch.full_like(values, garbage))
    batch = IrregularBatch(values, mask, times, torch.tensor([4, 2]))
    # explicit events: padding (mask 0) carries garbage times and kinds
    events = EventBatch(
        times=torch.tensor([[0.1, 0.6, 0.9], [0.2, garbage, garbage]]),
        kinds=torch.tensor([[0, 1, 0], [1, 1, 0]]),
        mask=torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]]),
    )
    return batch, IrregularBatch(values, mask, times, torch.tensor([4, 2]), events=events)


@pytest.mark.parametrize("explicit", [False, True])
def test_masked_values_and_padded_events_change_nothing(explicit):
    torch.manual_seed(0)
    model = LatentODEModel(2, 3, encoder="gru", encoder_hidden=4, n_event_kinds=2)
    losses = []
    for garbage in (0.0, 0.9, -1e3):
        cond, target = _event_batch(garbage)
        if not explicit:
            target = cond
        terms, _ = model.loss(cond, target, generator=torch.Generator().manual_seed(1))
        losses.append(terms.loss.item())
        assert math.isfinite(terms.event_log_likelihood.item())
    assert losses[0] == losses[1] == losses[2]


def test_observation_times_as_events_need_one_kind_per_feature():
    model = LatentODEModel(2, 3, encoder="gru", n_event_kinds=1)
    cond, _ = _event_batch(0.0)
    with pytest.raises(ValueError, match="n_event_kinds must equal n_features=2"):
        model.loss(cond, cond)


def test_init_rates_starts_the_head_at_the_given_rates():
    head = PoissonHead(3, 2).double()
    torch.nn.init.zeros_(head.net[-1].weight)
    head.init_rates([30.0, 0.01])
    torch.testing.assert_close(
        head(torch.randn(5, 3, dtype=f64))[0], torch.tensor([30.0, 0.01], dtype=f64)
    )
    assert bool(head.rates_initialised)
    with pytest.raises(ValueError, match="finite and > 0"):
        head.init_rates([1.0, 0.0])


# -- thinning -----------------------------------------------------------------------------------


def _sine_rate(rows, times):
    return (2.0 + np.sin(times))[..., None]


def _sine_compensator(t):
    return 2.0 * t + 1.0 - np.cos(t)


def test_thinning_matches_a_known_inhomogeneous_rate():
    """λ(t) = 2 + sin t on [0, 20]: mean count within 3 SE of ∫λ; rescaled gaps ~ Exp(1)."""
    n, t_end = 400, 20.0
    rngs = [np.random.default_rng([7, i]) for i in range(n)]
    result = sample_thinning(_sine_rate, 0.0, t_end, rngs)
    expected = _sine_compensator(t_end) - _sine_compensator(0.0)
    counts = np.array([t.size for t in result.times])
    assert abs(counts.mean() - expected) < 3 * math.sqrt(expected / n)
    # Time rescaling: s = Λ(t) makes the events a unit-rate process. Gaps *starting* before
    # Λ(T) - 20 are i.i.d. Exp(1) (the start is a stopping time, and the window's end is 20
    # units away); pooling every gap would favour short ones, as long ones get cut at T.
    cutoff = _sine_compensator(t_end) - 20.0

    def gaps(rescale):
        out = []
        for t in result.times:
            s = np.concatenate([[0.0], rescale(t)])
            starts_early = s[:-1] < cutoff
            out.append(np.diff(s)[starts_early])
        return np.concatenate(out)

    good = gaps(_sine_compensator)
    assert good.size > 5000
    assert stats.kstest(good, "expon").pvalue > 0.01
    # the test has power: the same events rescaled as if the rate were constant fail it
    assert stats.kstest(gaps(lambda t: 2.0 * t), "expon").pvalue < 1e-6
    assert all((np.diff(t) >= 0).all() and t.min() >= 0 and t.max() <= t_end for t in result.times)


def test_thinning_is_reproducible_per_trajectory():
    def draw(seeds):
        return sample_thinning(
            _sine_rate, 0.0, 5.0, [np.random.default_rng(s) for s in seeds]
        ).times

    a, b = draw([1, 2, 3]), draw([3, 1])
    np.testing.assert_array_equal(a[2], b[0])  # a trajectory's events ignore its neighbours
    np.testing.assert_array_equal(a[0], b[1])


def _hidden_peaks(rows, times):
    # zero at every multiple of 1/4, so a 4-cell grid on [0, 4] sees only the floor of 1
    return (1.0 + 100.0 * np.sin(4 * np.pi * times) ** 2)[..., None]


def test_an_exceeded_bound_is_refined_and_the_draw_repeated():
    n, t_end = 200, 1.0
    rngs = [np.random.default_rng([3, i]) for i in range(n)]
    result = sample_thinning(_hidden_peaks, 0.0, t_end, rngs, n_grid=4)
    assert (result.refinements > 0).mean() > 0.5
    expected = 51.0  # ∫_0^1 1 + 100 sin²(4πt) dt
    counts = np.array([t.size for t in result.times])
    assert abs(counts.mean() - expected) < 3 * math.sqrt(expected / n)


def test_a_bound_that_cannot_be_made_valid_raises():
    rngs = [np.random.default_rng(i) for i in range(20)]
    with pytest.raises(IntensityBoundError, match=r"exceeded its upper bound.*max_refinements"):
        sample_thinning(_hidden_peaks, 0.0, 1.0, rngs, n_grid=4, max_refinements=0)


def test_several_kinds_are_drawn_in_proportion_to_their_rates():
    rngs = [np.random.default_rng([1, i]) for i in range(200)]
    result = sample_thinning(
        lambda rows, t: np.stack([np.full_like(t, 1.0), np.full_like(t, 3.0)], -1), 0.0, 10.0, rngs
    )
    kinds = np.concatenate(result.kinds)
    share = (kinds == 1).mean()
    assert abs(share - 0.75) < 3 * math.sqrt(0.75 * 0.25 / kinds.size)


@pytest.mark.parametrize(
    ("intensity", "match"),
    [
        (lambda rows, t: -np.ones((*t.shape, 1)), "negative, NaN or inf"),
        (lambda rows, t: np.full((*t.shape, 1), np.nan), "negative, NaN or inf"),
        (lambda rows, t: np.ones(t.shape), r"must return \(rows, times, K\)"),
    ],
)
def test_bad_intensities_are_refused(intensity, match):
    with pytest.raises(ValueError, match=match):
        sample_thinning(intensity, 0.0, 1.0, [np.random.default_rng(0)])


def test_bad_windows_are_refused():
    with pytest.raises(ValueError, match="t_end >= t_start"):
        sample_thinning(_sine_rate, 2.0, 1.0, [np.random.default_rng(0)])
