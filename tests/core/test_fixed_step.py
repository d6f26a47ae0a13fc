"""fixed_step_solve: per-series intervals in one batched solve."""

from __future__ import annotations

import pytest
import torch

from latentode.core import VectorField
from latentode.core.fixed_step import fixed_step_solve
from tests.problems import LinearField, stable_matrix

f64 = torch.float64


def test_each_row_gets_its_own_interval_and_matches_the_exact_flow():
    A = stable_matrix(3)
    field = LinearField(A)
    h = torch.randn(4, 3, dtype=f64)
    t0 = torch.tensor([0.0, 1.0, 2.0, 0.5], dtype=f64)
    t1 = torch.tensor([1.0, 0.0, 2.5, 0.5], dtype=f64)  # forwards, backwards, short, empty
    out = fixed_step_solve(field, h, t0, t1, n_steps=40, method="rk4")
    for i in range(4):
        exact = torch.linalg.matrix_exp(A * (t1[i] - t0[i])) @ h[i]
        torch.testing.assert_close(out[i], exact, rtol=0, atol=1e-6)  # RK4, h = 1/40
    assert torch.equal(out[3], h[3])  # zero-length interval: unchanged exactly


@pytest.mark.parametrize(("method", "order"), [("euler", 1), ("midpoint", 2), ("rk4", 4)])
def test_convergence_order(method, order):
    field = LinearField(stable_matrix(2))
    h = torch.randn(1, 2, dtype=f64)
    t0, t1 = torch.zeros(1, dtype=f64), torch.ones(1, dtype=f64)
    exact = torch.linalg.matrix_exp(field.A.detach()) @ h[0]
    errors = [
        (fixed_step_solve(field, h, t0, t1, n_steps=n, method=method)[0] - exact).norm().item()
        for n in (10, 20)
    ]
    assert errors[0] / errors[1] == pytest.approx(2**order, rel=0.15)


def test_gradcheck_through_state_and_times():
    torch.manual_seed(0)
    field = VectorField(2, width=4, depth=1, time_dependent=True).to(f64)
    h = torch.randn(3, 2, dtype=f64, requires_grad=True)
    t0 = torch.tensor([0.0, 0.3, 1.0], dtype=f64, requires_grad=True)
    t1 = torch.tensor([0.7, -0.2, 1.4], dtype=f64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda h, a, b: fixed_step_solve(field, h, a, b, n_steps=3, method="midpoint"),
        (h, t0, t1),
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"method": "dopri5"}, ValueError, r"`method` must be one of 'euler', 'midpoint', 'rk4'"),
        ({"n_steps": 0}, ValueError, r"`n_steps` must be at least 1"),
        ({"t0": torch.zeros(3)}, ValueError, r"`h` must be \(batch, dim\)"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    args = {"h": torch.zeros(2, 2), "t0": torch.zeros(2), "t1": torch.ones(2)}
    with pytest.raises(error, match=match):
        fixed_step_solve(lambda t, h: -h, **{**args, **kwargs})
