"""ResidualBlock, VectorField, ResNet and ODEBlock: the residual ↔ ODE correspondence."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from latentode.core import (
    ACTIVATIONS,
    ODEBlock,
    ResidualBlock,
    ResNet,
    SolverConfig,
    VectorField,
    solve,
)

f64 = torch.float64


# --- ResidualBlock ---------------------------------------------------------------------------


def test_residual_block_is_h_plus_increment():
    block = ResidualBlock(6)
    h = torch.randn(4, 6)
    torch.testing.assert_close(block(h), h + block.increment(h))


def test_zero_init_block_starts_as_identity():
    block = ResidualBlock(5, zero_init=True)
    h = torch.randn(3, 5)
    assert torch.equal(block(h), h)


def test_block_is_pre_activation_norm_act_linear():
    block = ResidualBlock(4, activation="relu", norm="layer")
    h = torch.randn(2, 4)
    expected = h + block.linear(torch.relu(torch.nn.functional.layer_norm(h, (4,))))
    torch.testing.assert_close(block(h), expected)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_registered_activation_builds(activation):
    out = ResidualBlock(3, activation=activation)(torch.randn(2, 3))
    assert out.shape == (2, 3)


def test_residual_block_gradcheck():
    block = ResidualBlock(3, activation="tanh", norm="layer").to(f64)
    h = torch.randn(2, 3, dtype=f64, requires_grad=True)
    assert torch.autograd.gradcheck(block, (h,))
    params = tuple(block.parameters())

    def through_params(*ps):
        return torch.func.functional_call(
            block, dict(zip(dict(block.named_parameters()), ps, strict=True)), h
        )

    assert torch.autograd.gradcheck(through_params, params)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"activation": "swish"}, ValueError, r"`activation` must be one of .*'tanh'"),
        ({"norm": "batch"}, ValueError, r"`norm` must be one of 'layer', 'none'"),
        ({"zero_init": 1}, TypeError, r"`zero_init` must be True or False"),
    ],
)
def test_residual_block_bad_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        ResidualBlock(4, **kwargs)


@pytest.mark.parametrize(("width", "error"), [(0, ValueError), (2.5, TypeError), (True, TypeError)])
def test_residual_block_bad_width(width, error):
    with pytest.raises(error, match="`width` must"):
        ResidualBlock(width)


# --- VectorField -----------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5,), (3, 5), (2, 3, 5)])
def test_vector_field_preserves_shape(shape):
    f = VectorField(5, width=8, depth=2)
    assert f(torch.tensor(0.3), torch.randn(*shape)).shape == shape


def test_autonomous_field_ignores_time():
    f = VectorField(3, width=8)
    h = torch.randn(4, 3)
    assert torch.equal(f(torch.tensor(0.0), h), f(torch.tensor(7.0), h))


def test_time_dependent_field_uses_time_and_per_series_times():
    f = VectorField(3, width=8, time_dependent=True)
    h = torch.randn(4, 3)
    assert not torch.allclose(f(torch.tensor(0.0), h), f(torch.tensor(1.0), h))
    per_series = torch.tensor([0.0, 1.0, 2.0, 3.0])
    out = f(per_series, h)  # one time per series
    for i in range(4):
        torch.testing.assert_close(out[i], f(per_series[i], h[i : i + 1])[0])


def test_zero_init_field_is_zero():
    f = VectorField(3, width=8, zero_init=True)
    assert torch.equal(f(torch.tensor(0.0), torch.randn(2, 3)), torch.zeros(2, 3))


def test_depth_zero_is_allowed():
    f = VectorField(2, width=4, depth=0)
    assert len(f.blocks) == 0
    assert f(torch.tensor(0.0), torch.randn(1, 2)).shape == (1, 2)


@pytest.mark.parametrize("time_dependent", [False, True])
def test_vector_field_gradcheck_through_h_t_and_parameters(time_dependent):
    f = VectorField(3, width=5, depth=2, time_dependent=time_dependent).to(f64)
    h = torch.randn(2, 3, dtype=f64, requires_grad=True)
    t = torch.tensor(0.4, dtype=f64, requires_grad=time_dependent)
    assert torch.autograd.gradcheck(f, (t, h))
    names = [n for n, _ in f.named_parameters()]

    def through_params(*ps):
        return torch.func.functional_call(f, dict(zip(names, ps, strict=True)), (t, h))

    assert torch.autograd.gradcheck(through_params, tuple(f.parameters()))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"dim": 0}, ValueError, "`dim` must be at least 1"),
        ({"dim": 3, "depth": -1}, ValueError, "`depth` must be at least 0"),
        ({"dim": 3, "time_dependent": "yes"}, TypeError, "`time_dependent` must be True or False"),
        ({"dim": 3, "activation": "sigmoidal"}, ValueError, "`activation` must be one of"),
    ],
)
def test_vector_field_bad_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        VectorField(**kwargs)


# --- ResNet = Euler-discretised ODE ----------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    n_steps=st.integers(1, 12),
    step=st.floats(0.01, 1.0),
    t0=st.floats(-2.0, 2.0),
    time_dependent=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_shared_resnet_equals_euler_solve(n_steps, step, t0, time_dependent, seed):
    """The property the project is named for: L shared residual steps of size h = Euler solve."""
    torch.manual_seed(seed)
    net = ResNet(3, n_steps, step_size=step, width=6, depth=1, time_dependent=time_dependent)
    net = net.to(f64)
    h = torch.randn(4, 3, dtype=f64)
    times = torch.tensor([t0, t0 + n_steps * step], dtype=f64)
    sol = solve(net.fields[0], h, times, SolverConfig(method="euler", step_size=step))
    torch.testing.assert_close(net(h, t0=t0), sol.ys[:, -1], rtol=0, atol=1e-12)
    assert sol.stats.nfe_forward == n_steps  # one evaluation per residual step


def test_resnet_to_ode_block_matches_and_can_go_continuous():
    net = ResNet(2, 50, step_size=0.02, width=8).to(f64)
    h = torch.randn(3, 2, dtype=f64)
    block = net.to_ode_block().to(f64)
    torch.testing.assert_close(block(h), net(h), rtol=0, atol=1e-12)
    # Same weights, continuous-depth limit: Euler with 50 steps is within O(h) of dopri5.
    block.config = SolverConfig(method="dopri5", rtol=1e-9, atol=1e-9)
    assert (block(h) - net(h)).abs().max() < 0.05


def test_unshared_resnet_has_one_field_per_step_and_no_ode_twin():
    net = ResNet(2, 4, shared_weights=False, width=4)
    assert len(net.fields) == 4
    with pytest.raises(ValueError, match="shared_weights=True"):
        net.to_ode_block()


def test_resnet_bad_options():
    with pytest.raises(ValueError, match="`n_steps` must be at least 1"):
        ResNet(2, 0)
    with pytest.raises(ValueError, match="`step_size` must be > 0"):
        ResNet(2, 3, step_size=0.0)


# --- ODEBlock --------------------------------------------------------------------------------


def test_ode_block_equals_solve_endpoint_and_records_stats():
    f = VectorField(3, width=8).to(f64)
    block = ODEBlock(f, t0=0.5, t1=2.0, config=SolverConfig(rtol=1e-8, atol=1e-8)).to(f64)
    h = torch.randn(4, 3, dtype=f64)
    expected = solve(f, h, torch.tensor([0.5, 2.0], dtype=f64), block.config).ys[:, -1]
    torch.testing.assert_close(block(h), expected)
    assert block.span.dtype == f64  # the interval is a buffer that follows .to()
    assert block.last_stats is not None
    assert block.last_stats.nfe_forward > 0


def test_ode_block_rejects_empty_interval():
    with pytest.raises(ValueError, match="`t0` and `t1` must differ"):
        ODEBlock(VectorField(2), t0=1.0, t1=1.0)
