"""Neural flows: the identity at t = 0, invertible at every t, differentiable (issue 16)."""

from __future__ import annotations

import pytest
import torch

from latentode.core.flows import FLOWS, make_flow

f64 = torch.float64


def _trained_like(name, dim=6, seed=0):
    """A flow with large random weights (the norm bounds must hold whatever they are)."""
    torch.manual_seed(seed)
    flow = make_flow(name, dim, width=16, depth=1).double()
    for p in flow.parameters():
        torch.nn.init.normal_(p, std=1.0)
    return flow


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_a_flow_is_the_identity_at_time_zero(name):
    flow = _trained_like(name)
    z = torch.randn(4, 7, 6, dtype=f64)
    assert torch.equal(flow(torch.zeros(4, 7, dtype=f64), z), z)


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_a_flow_is_invertible_at_every_time(name):
    flow = _trained_like(name)
    z = torch.randn(200, 6, dtype=f64)
    t = torch.linspace(-3.0, 20.0, 200, dtype=f64)
    y = flow(t, z)
    assert (y - z).abs().max() > 0.1  # it moves
    torch.testing.assert_close(flow.inverse(t, y, iterations=300), z, rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_gradients_reach_the_state_the_time_gate_and_every_weight(name):
    flow = _trained_like(name, dim=4)
    z = torch.randn(5, 4, dtype=f64, requires_grad=True)
    t = torch.rand(5, dtype=f64) + 0.5
    flow(t, z).square().sum().backward()
    assert z.grad is not None
    assert bool(z.grad.abs().sum() > 0)
    for name_p, p in flow.named_parameters():
        assert p.grad is not None, name_p
    assert torch.autograd.gradcheck(lambda x: flow(t, x), (z.detach().requires_grad_(),))


def test_unknown_flows_and_a_one_dimensional_coupling_are_refused():
    with pytest.raises(ValueError, match=r"`flow` must be one of 'coupling', 'gru', 'resnet'"):
        make_flow("spline", 3)
    with pytest.raises(ValueError, match=r"`dim` must be at least 2; got 1"):
        make_flow("coupling", 1)
