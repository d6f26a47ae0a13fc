"""solve_rows: every row its own steps and output times; torchdiffeq on each row alone is the
reference."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torchdiffeq

from latentode.core import (
    IntegralField,
    SolverConfig,
    SolverError,
    VectorField,
    solve,
    solve_rows,
)
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


def _rows(n_rows=6, n=7, seed=1):
    """Rows with their own times: forward, backward, padded, repeated, at t0, empty."""
    g = torch.Generator().manual_seed(seed)
    z0 = torch.randn(n_rows, 3, dtype=f64, generator=g)
    times = torch.sort(torch.rand(n_rows, n, generator=g, dtype=f64) * 3, dim=1).values
    times[1] = -times[1]  # backwards from 0
    times[2, :2] = 0.0  # outputs at the start itself
    times[3, 3] = times[3, 2]  # a repeated time
    lengths = torch.tensor([n, n, n, 5, 0, 1][:n_rows])
    return z0, times, lengths


def _alone(field, state, t0, times, rtol, atol, method="dopri5", options=None):
    """torchdiffeq on one row: ``state`` parts (1, d); returns (m, d) parts and the NFE."""
    counted = _Counted(field)
    distinct, inverse = torch.unique_consecutive(times, return_inverse=True)
    grid = torch.cat([t0.reshape(1), distinct[distinct != t0]])
    ys = torchdiffeq.odeint(
        counted, state, grid, rtol=rtol, atol=atol, method=method, options=options
    )
    parts = ys if isinstance(ys, tuple) else (ys,)
    full = [torch.cat([p[:1], p[1:]]) if (distinct == t0).any() else p[1:] for p in parts]
    return [p[:, 0][inverse] for p in full], counted.nfe


@pytest.mark.parametrize("method", ["dopri5", "bosh3"])
@pytest.mark.parametrize(("rtol", "atol"), [(1e-3, 1e-4), (1e-8, 1e-10)])
def test_each_row_gets_torchdiffeqs_answer_for_that_row_alone(method, rtol, atol):
    """Same tableau, initial step and controller per row: rounding-level agreement, same NFE."""
    field = _field()
    z0, times, lengths = _rows()
    sol = solve_rows(field, z0, times, SolverConfig(method, rtol=rtol, atol=atol), lengths=lengths)
    assert sol.ys.shape == (6, 7, 3)
    total_nfe = 0
    for r in range(6):
        n = int(lengths[r])
        torch.testing.assert_close(sol.ys[r, n:], torch.zeros(7 - n, 3, dtype=f64))  # padding
        if n == 0:
            continue
        (ref,), nfe = _alone(
            field, z0[r : r + 1], torch.zeros((), dtype=f64), times[r, :n], rtol, atol, method
        )
        torch.testing.assert_close(sol.ys[r, :n], ref, rtol=0, atol=1e-12)
        total_nfe += nfe
    assert sol.stats.row_nfe_forward == total_nfe  # rows stop when their last time is reached
    assert sol.stats.n_rows == 6
    assert sol.stats.nfe_forward < sol.stats.row_nfe_forward  # a call evaluates many rows


def test_tuple_state_controls_each_row_by_its_largest_part():
    """(path, running integral): per row, torchdiffeq's mixed norm, so its steps and outputs."""
    field = IntegralField(_field(), torch.nn.Linear(3, 2).double())
    z0, times, lengths = _rows()
    state = (z0, torch.zeros(6, 2, dtype=f64))
    cfg = SolverConfig(rtol=1e-4, atol=1e-6)
    z, integral = solve_rows(field, state, times, cfg, lengths=lengths).ys
    assert z.shape == (6, 7, 3)
    assert integral.shape == (6, 7, 2)
    for r in (0, 1, 3):
        n = int(lengths[r])
        ref, _ = _alone(
            lambda t, s: field(t.reshape(1), s),
            (z0[r : r + 1], torch.zeros(1, 2, dtype=f64)),
            torch.zeros((), dtype=f64),
            times[r, :n],
            cfg.rtol,
            cfg.atol,
        )
        torch.testing.assert_close(z[r, :n], ref[0], rtol=0, atol=1e-12)
        torch.testing.assert_close(integral[r, :n], ref[1], rtol=0, atol=1e-12)


def test_a_row_does_not_depend_on_its_batch_mates():
    field = _field()
    z0, times, _lengths = _rows()
    g = torch.Generator().manual_seed(5)
    others = torch.randn(40, 3, dtype=f64, generator=g) * 3
    other_times = torch.sort(torch.rand(40, 7, generator=g, dtype=f64) * 10, dim=1).values
    alone = solve_rows(field, z0[:1], times[:1]).ys
    together = solve_rows(
        field, torch.cat([others, z0[:1]]), torch.cat([other_times, times[:1]])
    ).ys
    torch.testing.assert_close(together[-1], alone[0], rtol=1e-13, atol=0)


def test_padding_never_reaches_values_or_gradients():
    """Whatever sits past a row's length (NaN here) changes nothing, forward or backward."""
    field = _field()
    z0, times, lengths = _rows()
    garbage = times.clone()
    for r in range(6):
        garbage[r, int(lengths[r]) :] = float("nan")
    z = z0.clone().requires_grad_(True)
    ys = solve_rows(field, z, garbage, lengths=lengths).ys
    ys.square().sum().backward()
    torch.testing.assert_close(ys, solve_rows(field, z0, times, lengths=lengths).ys)
    assert bool(torch.isfinite(z.grad).all())


def test_start_times_and_directions_are_per_row():
    A = stable_matrix(2)
    z0 = torch.randn(3, 2, dtype=f64, generator=torch.Generator().manual_seed(0))
    t0 = torch.tensor([0.0, 1.0, -2.0], dtype=f64)
    times = torch.stack(
        [torch.linspace(0.1, 2, 5), torch.linspace(0.5, -1, 5), torch.linspace(-1.5, 0, 5)]
    ).to(f64)
    ys = solve_rows(LinearField(A), z0, times, SolverConfig(rtol=1e-10, atol=1e-12), t0=t0).ys
    for r in range(3):
        grid = torch.cat([t0[r : r + 1], times[r]])
        exact = linear_solution(A, z0[r : r + 1], grid)[0, 1:]
        torch.testing.assert_close(ys[r].detach(), exact, rtol=0, atol=1e-8)


def test_finished_rows_stop_costing_evaluations():
    field = _field()
    z0 = torch.randn(10, 3, dtype=f64, generator=torch.Generator().manual_seed(0))
    times = torch.full((10, 1), 0.05, dtype=f64)
    times[0] = 30.0  # one long row
    stats = solve_rows(field, z0, times).stats
    alone = [solve_rows(field, z0[r : r + 1], times[r : r + 1]).stats for r in range(10)]
    # each row costs what it costs alone; the calls are those of the longest row
    assert stats.row_nfe_forward == sum(s.row_nfe_forward for s in alone)
    assert stats.nfe_forward == alone[0].nfe_forward
    assert stats.row_nfe_forward < 0.5 * stats.nfe_forward * 10


@pytest.mark.parametrize("method", ["euler", "midpoint", "heun2", "heun3", "rk4"])
def test_fixed_steps_are_torchdiffeqs_on_the_grid(method):
    """At grid times the per-row fixed-step solve is torchdiffeq's, row by row."""
    field = _field()
    z0 = torch.randn(3, 3, dtype=f64, generator=torch.Generator().manual_seed(0))
    times = torch.tensor([[0.2, 0.5, 1.0], [-0.1, -0.4, -0.4], [0.3, 0.3, 0.3]], dtype=f64)
    cfg = SolverConfig(method, step_size=0.1)
    ys = solve_rows(field, z0, times, cfg).ys
    for r in range(3):
        end = float(times[r, -1])
        grid = torch.arange(0, round(abs(end) / 0.1) + 1, dtype=f64) * 0.1 * (1 if end > 0 else -1)
        ref = torchdiffeq.odeint(field, z0[r : r + 1], grid, method=method)[:, 0]
        for j in range(3):
            k = round(abs(float(times[r, j])) / 0.1)
            torch.testing.assert_close(ys[r, j], ref[k], rtol=0, atol=1e-12)


def test_fixed_step_results_do_not_depend_on_the_requested_times():
    """x(3) with times [0, 3] equals x(3) on a 200-point grid; both within rk4's own error."""
    A = stable_matrix(2) * 3
    z0 = torch.ones(1, 2, dtype=f64)
    cfg = SolverConfig("rk4")  # the default step
    few = solve_rows(LinearField(A), z0, torch.tensor([[0.0, 3.0]], dtype=f64), cfg).ys
    grid = torch.linspace(0, 3, 200, dtype=f64)
    many = solve_rows(LinearField(A), z0, grid[None], cfg).ys
    torch.testing.assert_close(few[0, -1], many[0, -1], rtol=0, atol=1e-13)
    exact = linear_solution(A, z0, grid)[0]
    # rk4 at h = 0.05 on eigenvalues of size ~3: its error, and the Hermite reads in between
    torch.testing.assert_close(many[0].detach(), exact, rtol=0, atol=1e-4)
    # the whole-trajectory solve also steps on its own grid: the same value at t = 3
    for times in (torch.tensor([0.0, 3.0], dtype=f64), grid):
        x3 = solve(LinearField(A), z0, times, cfg).ys[0, -1]
        torch.testing.assert_close(x3, few[0, -1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["dopri5", "rk4"])
def test_gradients_pass_gradcheck(method):
    """float64 gradcheck through the whole solve: initial states and the field's parameters.

    Tight tolerances make the adaptive steps (chosen without gradient) a negligible function
    of the inputs, so finite differences see the same derivative.
    """
    times = torch.tensor([[0.3, 0.9], [-0.2, -0.5]], dtype=f64)
    cfg = (
        SolverConfig(method, rtol=1e-12, atol=1e-12)
        if method == "dopri5"
        else SolverConfig(method, step_size=0.1)
    )

    def fn(z0, A, b):
        def field(t, z):
            return torch.tanh(z @ A.T) + b * t[:, None]

        return solve_rows(field, z0, times, cfg).ys

    g = torch.Generator().manual_seed(0)
    inputs = (
        torch.randn(2, 2, dtype=f64, generator=g).requires_grad_(),
        torch.randn(2, 2, dtype=f64, generator=g).requires_grad_(),
        torch.randn(2, dtype=f64, generator=g).requires_grad_(),
    )
    assert torch.autograd.gradcheck(fn, inputs)


def test_gradients_match_torchdiffeq_row_by_row():
    field = _field()
    z0, times, lengths = _rows()
    cfg = SolverConfig(rtol=1e-7, atol=1e-9)

    def grads(use_rows):
        z = z0.clone().requires_grad_(True)
        field.zero_grad()
        if use_rows:
            loss = solve_rows(field, z, times, cfg, lengths=lengths).ys.square().sum()
        else:
            loss = 0.0
            for r in range(6):
                n = int(lengths[r])
                if n:
                    (ys,), _ = _alone(
                        field,
                        z[r : r + 1],
                        torch.zeros((), dtype=f64),
                        times[r, :n],
                        cfg.rtol,
                        cfg.atol,
                    )
                    loss = loss + ys.square().sum()
        loss.backward()
        return [z.grad, *(p.grad.clone() for p in field.parameters())]

    for ours, theirs in zip(grads(True), grads(False), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("config", [SolverConfig("dopri8"), SolverConfig("dopri8", adjoint=True)])
def test_methods_without_a_native_row_solver_solve_each_row_alone(config):
    field = _field()
    z0, times, lengths = _rows()
    z = z0.clone().requires_grad_(True)
    sol = solve_rows(field, z, times, config, lengths=lengths)
    for r in (0, 1, 3):
        n = int(lengths[r])
        grid = torch.cat([torch.zeros(1, dtype=f64), times[r, :n].unique()])
        if r == 1:
            grid = torch.cat([torch.zeros(1, dtype=f64), times[r, :n].unique().flip(0)])
        ref = solve(field, z0[r : r + 1], grid, config).ys[0, 1:]
        wanted = {float(t): k for k, t in enumerate(grid[1:])}
        for j in range(n):
            if float(times[r, j]) != 0:
                torch.testing.assert_close(
                    sol.ys[r, j], ref[wanted[float(times[r, j])]], rtol=0, atol=1e-12
                )
    sol.ys.sum().backward()
    assert z.grad is not None
    assert bool(torch.isfinite(z.grad).all())
    assert sol.stats.row_nfe_forward == sol.stats.nfe_forward > 0
    if config.adjoint:
        assert sol.stats.nfe_backward > 0  # pooled over the rows' adjoint solves


def test_step_limit_raises_a_solver_error():
    with pytest.raises(SolverError, match=r"max_num_steps=5 steps .*Fixes"):
        solve_rows(
            _field(),
            torch.ones(2, 3, dtype=f64),
            torch.tensor([[1.0], [30.0]], dtype=f64),
            SolverConfig(rtol=1e-10, atol=1e-12, max_num_steps=5),
        )
    with pytest.raises(SolverError, match=r"step_size=0.001 .* needs 30000 steps"):
        solve_rows(
            _field(),
            torch.ones(1, 3, dtype=f64),
            torch.tensor([[30.0]], dtype=f64),
            SolverConfig("rk4", step_size=1e-3),
        )


@pytest.mark.timeout(60)
@pytest.mark.parametrize("method", ["dopri5", "rk4"])
def test_a_field_turning_non_finite_ends_in_a_solver_error(method):
    def field(t, z):
        return torch.where(t[:, None] > 0.5, torch.full_like(z, float("inf")), -z)

    with pytest.raises(SolverError, match=r"(max_num_steps=50|underflow|non-finite).*Fixes"):
        solve_rows(
            field,
            torch.ones(2, 2, dtype=f64),
            torch.tensor([[1.0], [0.2]], dtype=f64),
            SolverConfig(method, max_num_steps=50),
        )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"z0": torch.ones(2, 3, 1)}, ValueError, r"`z0` must be \(rows, d\)"),
        ({"times": torch.ones(3, 2)}, ValueError, r"`times` must be a \(rows, n_times\) tensor"),
        (
            {"times": torch.tensor([[0.5, -0.5], [1.0, 2.0]])},
            ValueError,
            r"row 0 has times both before and after t0=0",
        ),
        (
            {"times": torch.tensor([[0.5, 0.4], [1.0, 2.0]])},
            ValueError,
            r"move away from its start monotonically \(sort them\); row 0 has 0.4 after 0.5",
        ),
        ({"lengths": torch.tensor([3, 1])}, ValueError, r"`lengths` must lie in \[0, 2\]"),
        ({"lengths": torch.tensor([1.0, 1.0])}, TypeError, r"`lengths` must be an integer"),
        ({"t0": torch.zeros(3)}, ValueError, r"`t0` must be a \(2,\) tensor"),
        ({"config": {"method": "rk4"}}, TypeError, r"`config` must be a SolverConfig"),
        ({"project": torch.ones(2, 1)}, ValueError, r"`project` must be a \(3, P\) tensor"),
        (
            {"project": torch.ones(3, 1, dtype=torch.float64)},
            ValueError,
            r"of the state's dtype torch.float32 on cpu; got \(3, 1\) torch.float64",
        ),
        ({"project": [[1.0]]}, ValueError, r"`project` must be a \(3, P\) tensor.*got list"),
    ],
)
def test_malformed_input_is_refused(kwargs, error, match):
    args = {"z0": torch.ones(2, 3), "times": torch.tensor([[0.5, 1.0], [1.0, 2.0]])} | kwargs
    z0, times = args.pop("z0"), args.pop("times")
    with pytest.raises(error, match=match):
        solve_rows(lambda t, z: -z, z0, times, **args)


@pytest.mark.parametrize("method", ["dopri5", "bosh3", "rk4", "dopri8"])
def test_a_projected_solve_reads_out_the_projected_path(method):
    """``project``: z(t) @ W read off the same steps, and gradients reach W and z0."""
    field = _field()
    z0, times, lengths = _rows()
    cfg = (
        SolverConfig(method, step_size=0.05)
        if method == "rk4"
        else SolverConfig(method, rtol=1e-7, atol=1e-9)
    )
    g = torch.Generator().manual_seed(3)
    weight = torch.randn(3, 2, dtype=f64, generator=g)

    def run(projected):
        z, w = z0.clone().requires_grad_(True), weight.clone().requires_grad_(True)
        if projected:
            out = solve_rows(field, z, times, cfg, lengths=lengths, project=w).ys
        else:
            out = solve_rows(field, z, times, cfg, lengths=lengths).ys @ w
        valid = torch.arange(times.shape[1]) < lengths[:, None]
        out = out * valid[..., None]  # padding is zeros either way
        out.square().sum().backward()
        return out.detach(), z.grad, w.grad

    for ours, theirs in zip(run(True), run(False), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


def test_shared_steps_are_one_whole_batch_solve():
    """``shared_steps``: torchdiffeq's steps for the batch as one state, on a shared grid."""
    field = _field()
    g = torch.Generator().manual_seed(4)
    z0 = torch.randn(5, 3, dtype=f64, generator=g)
    grid = torch.tensor([0.2, 0.7, 1.5, 3.0], dtype=f64)
    cfg = SolverConfig(rtol=1e-3, atol=1e-4)
    shared = solve_rows(field, z0, grid.expand(5, -1), cfg, shared_steps=True)
    counted = _Counted(field)
    ref = torchdiffeq.odeint(
        counted, z0, torch.cat([grid.new_zeros(1), grid]), rtol=1e-3, atol=1e-4
    )
    torch.testing.assert_close(shared.ys, ref[1:].transpose(0, 1), rtol=0, atol=1e-12)
    assert shared.stats.nfe_forward == counted.nfe
    own = solve_rows(field, z0, grid.expand(5, -1), cfg)  # each row its own steps
    assert not torch.equal(own.ys, shared.ys)
    assert own.stats.nfe_forward >= shared.stats.nfe_forward  # the hardest row sets the calls


@pytest.mark.parametrize(
    ("config", "rtol"),
    [
        (SolverConfig(rtol=1e-9, atol=1e-10, adjoint=True), 1e-6),
        (SolverConfig("bosh3", rtol=1e-9, atol=1e-10, adjoint=True), 1e-5),
        (SolverConfig("rk4", step_size=0.01, adjoint=True), 1e-6),
        (SolverConfig(rtol=1e-9, atol=1e-10, adjoint=True, adjoint_rtol=1e-10), 1e-6),
    ],
)
def test_the_native_adjoint_gives_the_direct_gradients(config, rtol):
    """Forward, backward, padded, repeated, at-t0 and empty rows: the adjoint's gradients to
    the initial states and the field's parameters are those of differentiating the solve."""
    field = _field()
    z0, times, lengths = _rows()
    weights = torch.randn(6, 7, 3, dtype=f64, generator=torch.Generator().manual_seed(5))

    direct = config.replace(adjoint=False, adjoint_rtol=None)

    def grads(adjoint):
        z = z0.clone().requires_grad_(True)
        sol = solve_rows(field, z, times, config if adjoint else direct, lengths=lengths)
        params = [z, *field.parameters()]
        return sol, torch.autograd.grad((sol.ys * weights).sum(), params)

    ours, g_adj = grads(True)
    theirs, g_dir = grads(False)
    torch.testing.assert_close(ours.ys, theirs.ys, rtol=0, atol=0)  # the same forward solve
    assert ours.stats.nfe_backward > 0
    assert theirs.stats.nfe_backward == 0
    for a, b in zip(g_adj, g_dir, strict=True):
        torch.testing.assert_close(a, b, rtol=rtol, atol=rtol * float(b.abs().max()))


def test_the_native_adjoint_keeps_no_graph_of_the_steps():
    """The adjoint's memory does not grow with the steps: its forward keeps only outputs."""
    field = _field()
    z0, times, lengths = _rows()
    tight = SolverConfig(rtol=1e-10, atol=1e-12)

    def saved_numbers(config):
        held = []

        def pack(t):
            held.append(t.numel())
            return t

        z = z0.clone().requires_grad_(True)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            sol = solve_rows(field, z, times, config, lengths=lengths)
        return sum(held), sol

    direct, sol = saved_numbers(tight)
    adjoint, _ = saved_numbers(tight.replace(adjoint=True))
    assert sol.stats.steps_forward > 20
    kept = sol.ys.numel() + sum(p.numel() for p in field.parameters())
    assert adjoint <= kept + z0.numel()
    assert direct > 20 * adjoint  # differentiating the solve keeps every step's stages


# ---- breaks: dynamics that change at known times (inputs held piecewise constant, doses) ----


def _held_input_problem():
    """dz/dt = −z + u(t), u = 1 on [0, 1), 3 on [1, 2), 0 after: the state is (z, u).

    Two rows forward (z(0) = 0 and 0.5) and one backward from t0 = 3 (z(3) = 1, u = 0 there,
    u = 3 on [1, 2) and 1 before, met in that order going back).
    """
    z0 = torch.tensor([[0.0, 1.0], [0.5, 1.0], [1.0, 0.0]], dtype=f64)
    forward = torch.linspace(0.0, 3.0, 7, dtype=f64)[1:]  # (6,)
    times = torch.stack([forward, forward, 3.0 - forward])  # (3, 6)
    t0 = torch.tensor([0.0, 0.0, 3.0], dtype=f64)
    breaks = torch.tensor([[1.0, 2.0], [1.0, 2.0], [2.0, 1.0]], dtype=f64)
    after = torch.tensor([[3.0, 0.0], [3.0, 0.0], [3.0, 1.0]], dtype=f64)  # u past each break

    def field(t, y):
        return torch.stack([y[:, 1] - y[:, 0], torch.zeros_like(y[:, 1])], dim=-1)

    def jump(rows, index, y):
        return torch.stack([y[:, 0], after[rows, index]], dim=-1)

    return z0, times, t0, breaks, field, jump


def _held_input_exact(z: float, now: float, t: float) -> float:
    """The exact z(t) of :func:`_held_input_problem` from z at ``now``, either direction.

    On a piece where u is constant, z(b) = u + (z(a) − u)·exp(−(b − a)) for any a, b in it.
    """
    crossed = [b for b in (1.0, 2.0) if min(now, t) < b < max(now, t)]
    points = [now, *(crossed if t > now else crossed[::-1]), t]
    for a, b in itertools.pairwise(points):
        middle = (a + b) / 2
        u = 1.0 if middle < 1 else 3.0 if middle < 2 else 0.0
        z = u + (z - u) * math.exp(-(b - a))
    return z


@pytest.mark.parametrize(
    ("method", "tol"), [("dopri5", 1e-7), ("bosh3", 1e-4), ("rk4", 1e-8), ("heun2", 1e-3)]
)
def test_breaks_are_stepped_to_and_the_solution_is_exact_across_them(method, tol):
    z0, times, t0, breaks, field, jump = _held_input_problem()
    cfg = (
        SolverConfig(method, step_size=0.01)
        if method in ("rk4", "heun2")
        else SolverConfig(method, rtol=1e-9, atol=1e-11)
    )
    ys = solve_rows(field, z0, times, cfg, t0=t0, breaks=breaks, jump=jump).ys[..., 0]
    exact = torch.tensor(
        [
            [_held_input_exact(float(z0[r, 0]), float(t0[r]), float(t)) for t in times[r]]
            for r in range(3)
        ],
        dtype=f64,
    )
    torch.testing.assert_close(ys, exact, rtol=0, atol=tol)


def test_breaks_cost_fewer_steps_than_smearing_the_change():
    """Without breaks dopri5 meets the jumps of u by rejecting steps, and is less accurate."""
    z0, times, t0, breaks, field, jump = _held_input_problem()
    z0, times, t0 = z0[:2], times[:2], t0[:2]

    def smeared(t, y):  # the same input read from the time: a discontinuous field
        u = torch.where(t < 1, 1.0, torch.where(t < 2, 3.0, 0.0)).to(y.dtype)
        return torch.stack([u - y[:, 0], torch.zeros_like(u)], dim=-1)

    cfg = SolverConfig("dopri5", rtol=1e-7, atol=1e-9)
    stepped = solve_rows(field, z0, times, cfg, breaks=breaks[:2], jump=jump)
    blind = solve_rows(smeared, z0, times, cfg)
    exact = torch.tensor(
        [[_held_input_exact(float(z0[r, 0]), 0.0, float(t)) for t in times[r]] for r in range(2)],
        dtype=f64,
    )
    err_stepped = float((stepped.ys[..., 0] - exact).abs().max())
    err_blind = float((blind.ys[..., 0] - exact).abs().max())
    assert stepped.stats.row_nfe_forward < 0.6 * blind.stats.row_nfe_forward
    assert err_stepped < 0.1 * err_blind


def test_gradients_flow_through_a_jump():
    """A learned jump (a dose): float64 gradcheck through the solve, the jump and the steps."""
    times = torch.tensor([[0.5, 1.5, 2.5], [0.7, 1.2, 3.0]], dtype=f64)
    breaks = torch.tensor([[1.0], [2.0]], dtype=f64)

    def run(z0, gain):
        def field(t, y):
            return -0.7 * y + 0.1 * torch.sin(y)

        def jump(rows, index, y):
            return y + gain * torch.tanh(y)

        cfg = SolverConfig("dopri5", rtol=1e-10, atol=1e-12)
        return solve_rows(field, z0, times, cfg, breaks=breaks, jump=jump).ys

    z0 = torch.tensor([[0.3, -0.2], [1.0, 0.4]], dtype=f64, requires_grad=True)
    gain = torch.tensor(0.8, dtype=f64, requires_grad=True)
    assert torch.autograd.gradcheck(run, (z0, gain), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("config", [SolverConfig("dopri5"), SolverConfig("rk4", step_size=0.3)])
def test_a_break_at_an_output_time_reads_the_state_after_the_jump(config):
    times = torch.tensor([[1.0, 2.0]], dtype=f64)
    breaks = torch.tensor([[1.0]], dtype=f64)
    ys = solve_rows(
        lambda t, y: torch.zeros_like(y),
        torch.zeros(1, 1, dtype=f64),
        times,
        config,
        breaks=breaks,
        jump=lambda rows, index, y: y + 5.0,
    ).ys[0, :, 0]
    assert ys.tolist() == [5.0, 5.0]  # a change acts at its instant


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"breaks": torch.tensor([[0.5], [1.0]])}, ValueError, r"breaks without a jump"),
        ({"jump": lambda r, i, y: y}, ValueError, r"a jump without breaks"),
        ({"breaks": torch.tensor([[0.5], [1.0]]), "jump": 3}, TypeError, r"`jump` must be"),
        (
            {"breaks": torch.tensor([0.5, 1.0]), "jump": lambda r, i, y: y},
            ValueError,
            r"`breaks` must be a \(rows, m\) tensor with rows=2",
        ),
        (
            {"breaks": torch.tensor([[0.5, 0.5], [1.0, 2.0]]), "jump": lambda r, i, y: y},
            ValueError,
            r"without repeats: sort them and drop repeats; row 0 has \[0.5, 0.5\]",
        ),
        (
            {"breaks": torch.tensor([[0.5, float("nan")], [1.0, 2.0]]), "jump": lambda r, i, y: y},
            ValueError,
            r"`breaks` contains NaN or inf",
        ),
        (
            {
                "breaks": torch.tensor([[0.5], [1.0]]),
                "jump": lambda r, i, y: y,
                "config": SolverConfig("dopri8"),
            },
            ValueError,
            r"`breaks` need a native per-row method without the adjoint",
        ),
        (
            {
                "breaks": torch.tensor([[0.5], [1.0]]),
                "jump": lambda r, i, y: y,
                "config": SolverConfig("dopri5", adjoint=True),
            },
            ValueError,
            r"without the adjoint .* adjoint=True",
        ),
    ],
)
def test_malformed_breaks_are_refused(kwargs, error, match):
    z0, times = torch.ones(2, 3), torch.tensor([[0.5, 1.0], [1.0, 2.0]])
    with pytest.raises(error, match=match):
        solve_rows(lambda t, z: -z, z0, times, **kwargs)
