"""ODEDecoder: every sample of every series is its own row of one solve, in both directions."""

from __future__ import annotations

import pytest
import torch
import torchdiffeq

from latentode.core import IntegralField, SolverConfig
from latentode.decoders import ODEDecoder
from latentode.heads import PoissonHead
from tests.problems import LargestTensor

f64 = torch.float64
TIGHT = SolverConfig(rtol=1e-9, atol=1e-10)
LOOSE = SolverConfig(rtol=1e-3, atol=1e-4)


def _decoder(config=TIGHT, latent=3):
    torch.manual_seed(0)
    # eval mode: prediction, where every row has its own steps (training shares them)
    dec = ODEDecoder(latent, 2, width=8, depth=1, train_solver=config).double().eval()
    for p in dec.field.parameters():  # a flow with some curvature
        torch.nn.init.normal_(p, std=0.5)
    return dec


def _alone(field, z0, t, config):
    """torchdiffeq on one sample of one series from 0 to ``t`` (a tuple state allowed)."""
    if t == 0:
        return z0
    grid = torch.tensor([0.0, t], dtype=f64)
    ys = torchdiffeq.odeint(field, z0, grid, rtol=config.rtol, atol=config.atol)
    return tuple(y[-1] for y in ys) if isinstance(ys, tuple) else ys[-1]


@pytest.mark.parametrize("config", [TIGHT, LOOSE])
def test_each_sample_of_each_series_is_torchdiffeq_on_it_alone(config):
    """Any order, repeats, t = 0 and times before 0: torchdiffeq's answer for that row alone,
    at the training tolerance too (the steps are the row's own, not the batch's)."""
    dec = _decoder(config)
    z0 = torch.randn(4, 3, 3, dtype=f64)  # (samples, batch, latent)
    times = torch.tensor(
        [[0.9, 0.1, 0.5, 0.5], [-0.5, 0.0, 0.7, -0.2], [-0.3, -0.3, -0.1, -0.9]], dtype=f64
    )
    traj = dec.trajectory(z0, times)
    assert traj.shape == (4, 3, 4, 3)
    for s in range(4):
        for b in range(3):
            for j in range(4):
                ref = _alone(dec.field, z0[s, b : b + 1], float(times[b, j]), config)[0]
                torch.testing.assert_close(traj[s, b, j], ref, rtol=0, atol=1e-12)
    assert len(dec.last_stats) == 1  # one solve: forward and backward rows together
    assert dec.last_stats[0].n_rows == 4 * (2 + 2)  # series 0: forward only, 2: backward only


def test_t_zero_is_z0_itself():
    dec = _decoder()
    z0 = torch.randn(2, 3, dtype=f64)
    traj = dec.trajectory(z0, torch.tensor([[-0.5, 0.0, 0.5], [0.0, 0.0, 0.0]], dtype=f64))
    torch.testing.assert_close(traj[0, 1], z0[0], atol=0, rtol=0)
    torch.testing.assert_close(traj[1], z0[1].expand(3, 3), atol=0, rtol=0)


def test_integral_rides_along_each_row():
    dec = _decoder(LOOSE)
    head = PoissonHead(3, 2, hidden=4).double()
    z0 = torch.randn(2, 3, 3, dtype=f64)
    times = torch.tensor([[0.2, 0.8], [-0.4, 0.3], [0.6, 0.6]], dtype=f64)
    z, integral = dec.trajectory_with_integral(z0, times, head)
    assert z.shape == (2, 3, 2, 3)
    assert integral.shape == (2, 3, 2, 2)
    field = IntegralField(dec.field, head)
    for s in range(2):
        for b in range(3):
            for j in range(2):
                state = (z0[s, b : b + 1], torch.zeros(1, 2, dtype=f64))
                ref_z, ref_i = _alone(field, state, float(times[b, j]), LOOSE)
                torch.testing.assert_close(z[s, b, j], ref_z[0], rtol=0, atol=1e-12)
                torch.testing.assert_close(integral[s, b, j], ref_i[0], rtol=0, atol=1e-12)
    assert float(integral[0, 1, 0].detach().sum()) < 0  # before 0: I(t) = -∫_t^0 λ


@pytest.mark.parametrize("with_integral", [False, True])
def test_a_series_does_not_depend_on_its_batch_mates(with_integral):
    """float32, training tolerances: a series decoded alone and among 40 others agree."""
    torch.manual_seed(0)
    dec = ODEDecoder(6, 2, width=16, depth=1, train_solver=LOOSE).eval()  # prediction
    head = PoissonHead(6, 2, hidden=4)
    g = torch.Generator().manual_seed(1)
    z0 = torch.randn(3, 41, 6, generator=g)  # (samples, batch, latent)
    times = torch.sort(torch.rand(41, 20, generator=g) * 4 - 0.5, dim=1).values
    times[1:] *= 1 + torch.rand(40, 1, generator=g)  # the others: other spans and times

    def decode(z, t):
        return dec.trajectory_with_integral(z, t, head) if with_integral else (dec(z, t),)

    with torch.no_grad():
        alone = decode(z0[:, :1], times[:1])
        together = decode(z0, times)
    for a, b in zip(alone, together, strict=True):
        torch.testing.assert_close(b[:, :1], a, rtol=1e-6, atol=1e-6 * float(a.abs().max()))


def test_training_shares_the_steps_of_one_whole_batch_solve():
    """In training the rows step together, on torchdiffeq's norm over the whole batch state:
    on a shared grid that is torchdiffeq's solve of the batch, with its number of calls."""
    dec = _decoder(LOOSE).train()
    z0 = torch.randn(2, 5, 3, dtype=f64)  # (samples, batch, latent)
    grid = torch.tensor([0.0, 0.3, 0.9, 1.7, 2.0], dtype=f64)
    traj = dec.trajectory(z0, grid.expand(5, -1))
    shared_calls = dec.last_stats[0].nfe_forward
    ref = torchdiffeq.odeint(dec.field, z0, grid, rtol=LOOSE.rtol, atol=LOOSE.atol)
    torch.testing.assert_close(traj, ref.permute(1, 2, 0, 3), rtol=0, atol=1e-12)
    dec.eval()  # prediction: each row its own steps, so the hardest row sets the calls
    own = dec.trajectory(z0, grid.expand(5, -1))
    assert dec.last_stats[0].nfe_forward > shared_calls
    assert not torch.equal(own, traj)
    torch.testing.assert_close(own, traj, rtol=0.05, atol=0.01)  # both near the true path


def test_memory_is_linear_in_each_series_own_times():
    """No tensor over the union of the batch's times: 40 series × 30 own times each."""
    dec = _decoder(LOOSE)
    g = torch.Generator().manual_seed(0)
    samples, batch, n, latent = 2, 40, 30, 3
    z0 = torch.randn(samples, batch, latent, dtype=f64, generator=g)
    times = torch.rand(batch, n, dtype=f64, generator=g) * 2  # union: 1200 distinct times
    mode = LargestTensor()
    with mode:
        dec.trajectory(z0.requires_grad_(True), times).sum().backward()
    own = samples * batch * n * latent  # the output itself
    union = samples * batch * (batch * n) * latent
    assert mode.largest <= 4 * own  # at most the 4 interpolation coefficients of each output
    assert mode.largest < union / 10


def test_fixed_step_eval_solver_reads_any_time_off_the_same_steps():
    """rk4 for prediction: a time's value does not depend on the other requested times."""
    eval_cfg = SolverConfig(method="rk4", step_size=0.1)
    dec = _decoder()
    dec.eval_solver = eval_cfg
    dec.eval()
    z0 = torch.randn(2, 3, dtype=f64)
    with torch.no_grad():
        few = dec.trajectory(z0, torch.tensor([[0.0, 3.0], [1.0, 3.0]], dtype=f64))
        grid = torch.linspace(0, 3, 200, dtype=f64).expand(2, 200)
        many = dec.trajectory(z0, grid)
    torch.testing.assert_close(few[:, -1], many[:, -1], rtol=0, atol=1e-12)


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


@pytest.mark.parametrize("with_integral", [False, True])
def test_the_adjoint_solves_rows_natively_and_matches_the_direct_gradients(
    monkeypatch, with_integral
):
    """adjoint=True: the native per-row adjoint (no union of the series' times, no torchdiffeq
    row by row): the direct solve's values, and its gradients to the solver's tolerance."""
    import latentode.core.rowwise as rowwise

    torch.manual_seed(0)
    direct = ODEDecoder(3, 2, width=8, depth=1, train_solver=TIGHT).double().eval()
    adjoint = (
        ODEDecoder(
            3, 2, width=8, depth=1, train_solver=SolverConfig(rtol=1e-9, atol=1e-10, adjoint=True)
        )
        .double()
        .eval()
    )
    adjoint.load_state_dict(direct.state_dict())
    head = PoissonHead(3, 2, hidden=4).double()
    z0 = torch.randn(2, 4, 3, dtype=torch.float64)
    times = torch.tensor([[0.0, 0.5, 1.0], [0.2, 0.9, 1.5], [-0.4, 0.3, 0.8], [0.1, 0.6, 2.0]])
    times = times.double()

    def no_torchdiffeq(*args, **kwargs):
        raise AssertionError("the native adjoint must not solve row by row with torchdiffeq")

    def run(dec):
        z = z0.clone().requires_grad_(True)
        out = dec.trajectory_with_integral(z, times, head) if with_integral else (dec(z, times),)
        loss = sum(
            (o * torch.linspace(-1, 1, o.numel(), dtype=o.dtype).view_as(o)).sum() for o in out
        )
        params = [z, *(dec.field.parameters() if with_integral else dec.parameters())]
        params += list(head.parameters()) if with_integral else []
        return out, torch.autograd.grad(loss, params)

    monkeypatch.setattr(rowwise, "_solve_each_row", no_torchdiffeq)
    got, g_adj = run(adjoint)
    assert adjoint.last_stats[0].nfe_backward > 0
    assert adjoint.last_stats[0].n_rows == 2 * (4 + 1)  # each sample's rows, one backward
    monkeypatch.undo()
    want, g_dir = run(direct)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)  # the same forward solve
    for a, b in zip(g_adj, g_dir, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
