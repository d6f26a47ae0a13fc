"""ODEDecoder: one solve on the union grid, each series gathered back, both directions in time."""

from __future__ import annotations

import pytest
import torch

from latentode.core import SolverConfig, solve
from latentode.decoders import ODEDecoder

f64 = torch.float64
TIGHT = SolverConfig(rtol=1e-9, atol=1e-10)


def _decoder():
    torch.manual_seed(0)
    return ODEDecoder(3, 2, width=8, depth=1, train_solver=TIGHT).double()


def test_each_series_gets_its_own_times_from_one_union_solve():
    dec = _decoder()
    z0 = torch.randn(4, 2, 3, dtype=f64)  # (samples, batch, latent)
    times = torch.tensor([[0.1, 0.5, 0.9], [0.2, 0.2, 0.7]], dtype=f64)  # row 1 padded
    traj = dec.trajectory(z0, times)
    assert traj.shape == (4, 2, 3, 3)
    for b in range(2):
        alone = solve(
            dec.field, z0[:, b], torch.cat([torch.zeros(1, dtype=f64), times[b]]).unique(), TIGHT
        ).ys
        ref = {
            float(t): alone[:, k]
            for k, t in enumerate(torch.cat([torch.zeros(1, dtype=f64), times[b]]).unique())
        }
        for j in range(3):
            torch.testing.assert_close(traj[:, b, j], ref[float(times[b, j])], atol=1e-7, rtol=0)
    assert len(dec.last_stats) == 1  # no negative times: one forward solve only


def test_times_before_zero_are_solved_backwards():
    dec = _decoder()
    z0 = torch.randn(2, 3, dtype=f64)
    times = torch.tensor([[-0.5, 0.0, 0.5], [-0.2, 0.3, 0.3]], dtype=f64)
    traj = dec.trajectory(z0, times)
    back = solve(dec.field, z0, torch.tensor([0.0, -0.5], dtype=f64), TIGHT).ys[:, -1]
    assert traj.shape == (2, 3, 3)  # (batch, n_times, latent)
    torch.testing.assert_close(traj[0, 0], back[0], atol=1e-7, rtol=0)  # t = -0.5
    torch.testing.assert_close(traj[0, 1], z0[0], atol=0, rtol=0)  # t = 0 is z0 itself
    assert len(dec.last_stats) == 2


def test_readout_maps_to_features_and_modes_pick_solvers():
    eval_cfg = SolverConfig(method="rk4", step_size=0.1)
    dec = ODEDecoder(3, 2, train_solver=TIGHT, eval_solver=eval_cfg)
    assert dec.solver is TIGHT
    dec.eval()
    assert dec.solver is eval_cfg
    out = dec(torch.randn(5, 3), torch.rand(5, 4))
    assert out.shape == (5, 4, 2)


def test_batch_mismatch_is_refused():
    with pytest.raises(ValueError, match=r"`z0` has batch size 2 but `times` 3"):
        _decoder().trajectory(torch.zeros(2, 3, dtype=f64), torch.zeros(3, 4, dtype=f64))
