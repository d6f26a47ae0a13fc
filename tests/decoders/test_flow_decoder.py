"""FlowDecoder: z(t) = F(t, z0) at each series' own times, no solver; the Poisson integral by a
per-row quadrature solve (issue 16)."""

from __future__ import annotations

import pytest
import torch

from latentode.core import SolverConfig
from latentode.decoders import FlowDecoder
from latentode.heads import PoissonHead

f64 = torch.float64


def _decoder(flow="resnet"):
    torch.manual_seed(0)
    config = SolverConfig(rtol=1e-9, atol=1e-10)
    return FlowDecoder(3, 2, flow=flow, width=8, depth=1, train_solver=config).double().eval()


@pytest.mark.parametrize("flow", ["resnet", "gru", "coupling"])
def test_each_series_is_read_at_its_own_times_and_starts_at_z0(flow):
    dec = _decoder(flow)
    z0 = torch.randn(4, 3, 3, dtype=f64)  # (samples, batch, latent)
    times = torch.tensor([[0.0, 0.5, 1.0], [-0.4, 0.0, 2.0], [3.0, 0.1, 0.0]], dtype=f64)
    z = dec.trajectory(z0, times)
    assert z.shape == (4, 3, 3, 3)
    at_zero = times == 0
    torch.testing.assert_close(z[:, at_zero], z0[:, at_zero.nonzero()[:, 0]], rtol=0, atol=0)
    # a series alone, and at other times: the same values (nothing is solved jointly; only
    # the matrix products' rounding may differ with the number of rows)
    alone = dec.trajectory(z0[:, 1:2], times[1:2])
    torch.testing.assert_close(alone[:, 0], z[:, 1], rtol=1e-13, atol=1e-15)
    one = dec.trajectory(z0[:, :1], times[:1, 1:2])
    torch.testing.assert_close(one[:, 0, 0], z[:, 0, 1], rtol=1e-13, atol=1e-15)
    assert dec(z0, times).shape == (4, 3, 3, 2)


def test_the_poisson_integral_is_the_integral_of_the_intensity_along_the_flow():
    dec = _decoder()
    head = PoissonHead(3, 2, hidden=4).double()
    z0 = torch.randn(2, 2, 3, dtype=f64)
    times = torch.tensor([[0.3, 1.2, -0.5], [2.0, 0.0, 0.7]], dtype=f64)
    z, integral = dec.trajectory_with_integral(z0, times, head)
    assert integral.shape == (2, 2, 3, 2)
    torch.testing.assert_close(z, dec.trajectory(z0, times), rtol=0, atol=0)
    for s in range(2):
        for b in range(2):
            for j in range(3):
                t = float(times[b, j])
                grid = torch.linspace(0.0, t, 4001, dtype=f64)
                path = dec.flow(grid, z0[s, b].expand(4001, 3))
                rate = head(path)  # (4001, 2)
                want = torch.trapezoid(rate, grid, dim=0)
                torch.testing.assert_close(integral[s, b, j], want, rtol=1e-6, atol=1e-8)


def test_gradients_flow_to_z0_and_every_weight():
    dec = _decoder("coupling").train()
    z0 = torch.randn(2, 3, 3, dtype=f64, requires_grad=True)
    times = torch.rand(3, 4, dtype=f64) * 2
    dec(z0, times).square().sum().backward()
    assert z0.grad is not None
    assert all(p.grad is not None for p in dec.parameters())


def test_a_batch_mismatch_is_refused():
    with pytest.raises(ValueError, match=r"`z0` has batch size 2 but `times` 3"):
        _decoder().trajectory(torch.zeros(2, 3, dtype=f64), torch.zeros(3, 4, dtype=f64))
