"""The native dopri5 behind `solve`: torchdiffeq's steps, batched dense output, same contract."""

from __future__ import annotations

import pytest
import torch
import torchdiffeq

from latentode.core import SolverConfig, SolverError, VectorField, solve
from latentode.core import solver as solver_module
from tests.problems import LinearField, linear_solution, stable_matrix

f64 = torch.float64


def _field(seed=0, dim=3):
    torch.manual_seed(seed)
    field = VectorField(dim, width=16, depth=1, time_dependent=True).double()
    for p in field.parameters():  # large enough weights for a non-trivial flow
        torch.nn.init.normal_(p, std=0.5)
    return field


class _Counted(torch.nn.Module):
    def __init__(self, field):
        super().__init__()
        self.field, self.nfe = field, 0

    def forward(self, t, z):
        self.nfe += 1
        return self.field(t, z)


def _times(kind: str) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    inner = torch.sort(torch.rand(60, generator=g, dtype=f64)).values * 3  # (60,)
    return {
        "forward": torch.cat([torch.zeros(1, dtype=f64), inner]),
        "backward": torch.cat([torch.zeros(1, dtype=f64), -inner]),
        "sparse": torch.tensor([0.0, 1e-3, 2.5], dtype=f64),
        "shifted": torch.cat([torch.full((1,), -1.0, dtype=f64), inner + 0.5]),
    }[kind]


@pytest.mark.parametrize("kind", ["forward", "backward", "sparse", "shifted"])
@pytest.mark.parametrize(("rtol", "atol"), [(1e-3, 1e-4), (1e-8, 1e-10)])
def test_native_dopri5_takes_torchdiffeqs_steps(kind, rtol, atol):
    """Same tableau, initial step and controller: same outputs to rounding, same evaluations."""
    field = _field()
    z0 = torch.randn(5, 3, dtype=f64, generator=torch.Generator().manual_seed(1))
    times = _times(kind)
    sol = solve(field, z0, times, SolverConfig(rtol=rtol, atol=atol))
    counted = _Counted(field)
    ref = torchdiffeq.odeint(counted, z0, times, rtol=rtol, atol=atol, method="dopri5")
    torch.testing.assert_close(sol.ys, ref.movedim(0, -2), rtol=0, atol=1e-12)
    assert sol.stats.nfe_forward == counted.nfe
    assert sol.stats.nfe_forward == 2 + 6 * sol.stats.steps_forward  # FSAL, 1 start evaluation


@pytest.mark.parametrize("shape", [(3,), (2, 4, 3)])
def test_native_dopri5_keeps_any_leading_shape(shape):
    field = _field()
    z0 = torch.randn(shape, dtype=f64)
    times = torch.linspace(0, 1, 9, dtype=f64)
    sol = solve(field, z0, times)
    ref = torchdiffeq.odeint(field, z0, times, rtol=1e-3, atol=1e-4, method="dopri5")
    assert sol.ys.shape == (*shape[:-1], 9, shape[-1])
    torch.testing.assert_close(sol.ys, ref.movedim(0, -2), rtol=0, atol=1e-12)


def test_native_dopri5_matches_the_matrix_exponential_between_steps():
    """Dense output at 200 times inside a few steps is 4th-order accurate, not piecewise linear."""
    A = stable_matrix(4)
    z0 = torch.randn(3, 4, dtype=f64)
    times = torch.linspace(0.0, 3.0, 200, dtype=f64)
    sol = solve(LinearField(A), z0, times, SolverConfig(rtol=1e-8, atol=1e-10))
    assert sol.stats.steps_forward < 60
    assert (sol.ys - linear_solution(A, z0, times)).abs().max() < 1e-6


def test_native_dopri5_gradcheck():
    field = _field(dim=2)
    z0 = torch.randn(2, 2, dtype=f64, requires_grad=True)
    times = torch.tensor([0.0, 0.3, 0.35, 1.0], dtype=f64)
    config = SolverConfig(rtol=1e-10, atol=1e-12)
    params = list(field.parameters())[:2]

    def run(z, *_):
        return solve(field, z, times, config).ys

    assert torch.autograd.gradcheck(run, (z0, *params), atol=1e-6)


def test_native_gradients_match_the_adjoint():
    field = _field()
    z0 = torch.randn(4, 3, dtype=f64, requires_grad=True)
    times = _times("forward")
    grads = []
    for adjoint in (False, True):
        config = SolverConfig(rtol=1e-10, atol=1e-12, adjoint=adjoint)
        out = solve(field, z0, times, config).ys
        grads.append(torch.autograd.grad(out.square().sum(), [z0, *field.parameters()]))
    for native, adjoint in zip(*grads, strict=True):
        torch.testing.assert_close(native, adjoint, rtol=1e-6, atol=1e-7)


def _forbid_torchdiffeq(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("torchdiffeq was called")

    monkeypatch.setattr(solver_module.torchdiffeq, "odeint", refuse)
    monkeypatch.setattr(solver_module.torchdiffeq, "odeint_adjoint", refuse)


def test_dopri5_without_adjoint_never_calls_torchdiffeq(monkeypatch):
    _forbid_torchdiffeq(monkeypatch)
    z0 = torch.ones(2, 2, requires_grad=True)
    solve(lambda t, z: -z, z0, torch.linspace(0, 1, 5)).ys.sum().backward()
    assert z0.grad is not None
    # tuple states (path + compensator) too
    ys = solve(lambda t, z: (-z[0], z[0].sum(-1, keepdim=True)), (z0, torch.zeros(2, 1)), [0, 1]).ys
    ys[1].sum().backward()


@pytest.mark.parametrize(
    "case",
    ["adjoint", "times with gradients", "other method"],
)
def test_other_cases_go_to_torchdiffeq(case, monkeypatch):
    _forbid_torchdiffeq(monkeypatch)
    z0 = torch.ones(2, 2)
    times = torch.linspace(0, 1, 5)
    config = SolverConfig()
    if case == "adjoint":
        config = SolverConfig(adjoint=True)
    elif case == "times with gradients":
        times.requires_grad_(True)
    else:
        config = SolverConfig(method="bosh3")

    class Decay(torch.nn.Module):
        def forward(self, t, z):
            return -z

    with pytest.raises(SolverError, match="torchdiffeq was called"):
        solve(Decay(), z0, times, config)


@pytest.mark.timeout(60)
def test_field_turning_non_finite_ends_in_a_solver_error():
    """A field that returns inf past t = 0.5 can't be stepped over: a clear error, not a NaN."""

    def field(t, z):
        return torch.where(t > 0.5, torch.full_like(z, float("inf")), -z)

    with pytest.raises(SolverError, match=r"(max_num_steps=50|underflow).*Fixes"):
        solve(
            field,
            torch.ones(1, 2, dtype=f64),
            torch.tensor([0.0, 1.0], dtype=f64),
            SolverConfig(max_num_steps=50),
        )


@pytest.mark.parametrize("kind", ["forward", "backward", "shifted"])
@pytest.mark.parametrize(("rtol", "atol"), [(1e-3, 1e-4), (1e-8, 1e-10)])
def test_native_dopri5_takes_torchdiffeqs_steps_on_tuple_states(kind, rtol, atol):
    """(path, running integral): torchdiffeq's mixed norm, so the same steps and outputs."""
    field = _field()

    def augmented(t, state):
        z, _ = state
        return field(t, z), z.square().sum(-1, keepdim=True)

    z0 = torch.randn(5, 3, dtype=f64, generator=torch.Generator().manual_seed(1))
    state = (z0, torch.zeros(5, 1, dtype=f64))
    times = _times(kind)
    sol = solve(augmented, state, times, SolverConfig(rtol=rtol, atol=atol))
    counted = _Counted(lambda t, y: augmented(t, y))
    ref = torchdiffeq.odeint(counted, state, times, rtol=rtol, atol=atol, method="dopri5")
    for ours, theirs in zip(sol.ys, ref, strict=True):
        torch.testing.assert_close(ours, theirs.movedim(0, -2), rtol=0, atol=1e-12)
    assert sol.stats.nfe_forward == counted.nfe


def test_native_tuple_solve_gradients_match_torchdiffeq():
    field = _field()
    z0 = torch.randn(4, 3, dtype=f64, generator=torch.Generator().manual_seed(2))
    times = _times("forward")[:20]

    def loss(use_native):
        def augmented(t, state):
            return field(t, state[0]), torch.tanh(state[0]).sum(-1, keepdim=True)

        state = (z0, torch.zeros(4, 1, dtype=f64))
        if use_native:
            ys = solve(augmented, state, times, SolverConfig(rtol=1e-9, atol=1e-11)).ys
        else:
            ys = torchdiffeq.odeint(augmented, state, times, rtol=1e-9, atol=1e-11)
        return ys[0].square().sum() + ys[1].sum()

    grads = []
    for use_native in (True, False):
        field.zero_grad()
        loss(use_native).backward()
        grads.append([p.grad.clone() for p in field.parameters()])
    for ours, theirs in zip(*grads, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-9)
