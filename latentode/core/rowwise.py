"""Per-row Runge–Kutta solves: every row of a batch keeps its own steps and its own output times.

A latent-ODE decoder integrates many independent initial states (posterior samples × series),
each to its own output times. Solving them as one state on the union of the times couples them:
the adaptive error norm is an RMS over the whole batch, so a series' result (and the number of
steps) depends on its batch-mates, and the union grid costs memory quadratic in the batch.

:func:`solve_rows` instead treats each row ``y[r]`` of a ``(R, d)`` state as its own ODE, as
torchode does, but batched into one field evaluation per stage:

- every row has its own time ``t[r]``, step ``h[r]``, accept/reject decision, and error norm
  (the RMS over that row's own components; for a tuple state the largest RMS over the parts);
- every row reads its own output times ``times[r, :lengths[r]]`` off the dense output of the
  step that covers them: one small matrix product per step, as in :mod:`~latentode.core.dopri5`;
- a row that has passed its last output time leaves the batch: the field is evaluated on the
  active rows only (``index_select``, so gradients flow back to every row).

Adaptive methods use torchdiffeq's tableau, initial-step rule and controller on each row, so a
row solved here agrees with torchdiffeq solving that row alone to rounding. Fixed-grid methods
step every row from its start by ``config.step_size`` (the steps never depend on the requested
times) and read outputs off a cubic Hermite interpolant through the step's ends.

The registry :data:`ROW_METHODS` maps each method to its implementation; the methods and settings
it lacks (multistep methods, dopri8, the adjoint) solve each row alone with :func:`solve`
(torchdiffeq): the same answers, one row at a time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from latentode.core.row_adjoint import adjoint_rows
from latentode.core.row_steps import (
    TABLEAUX,
    Problem,
    RowField,
    Tableau,
    combine,
    initial_step,
    next_step,
    rms_rows,
)
from latentode.core.solver import (
    SolverConfig,
    SolverError,
    SolveStats,
    State,
    _all_finite,
    _as_state,
    solve,
)

__all__ = ["ROW_METHODS", "RowSolution", "Tableau", "solve_rows"]


@dataclass(frozen=True)
class RowSolution:
    """The result of :func:`solve_rows`.

    Attributes:
        ys: ``(R, n, d)`` per state part: row ``r`` at ``times[r, j]`` for ``j < lengths[r]``,
            zeros in the padding. A tuple state gives a tuple.
        stats: Evaluation and step counts (see :class:`~latentode.core.SolveStats`).
    """

    ys: State
    stats: SolveStats = field(default_factory=SolveStats)


class _Outputs:
    """Collects each row's outputs as they are read off, and places them once at the end."""

    def __init__(self, problem: Problem) -> None:
        self.n = problem.times.shape[1]
        self.rows, self.index, self.values = problem.y0.shape[0], [], []
        self.like = problem.read(problem.y0[:1])  # (1, P): the outputs' width, dtype, device

    def add(self, flat: torch.Tensor, values: torch.Tensor) -> None:
        """Outputs ``values (M, D)`` at ``flat (M,)`` = row · n + column (global rows)."""
        self.index.append(flat)
        self.values.append(values)

    def assemble(self) -> torch.Tensor:
        out = self.like.new_zeros(self.rows * self.n, self.like.shape[-1])  # (R·n, D)
        if self.values:
            out = out.index_copy(0, torch.cat(self.index), torch.cat(self.values))
        return out.reshape(self.rows, self.n, self.like.shape[-1])  # (R, n, D)


def _read_outputs(p, out, rows, nxt, end, t, dt, y, stages) -> None:
    """Write each row's outputs ``nxt[a] .. end[a]-1``, all inside the step ``[t, t + dt]``.

    ``stages (A, D, S)`` are the step's slopes. The step's interpolant is a polynomial in the
    fraction ``x`` of the step: its coefficients are one matrix product over the stages, read
    at each output (only the real ones, no padding) by Horner's rule.
    """
    counts = end - nxt  # (A,)
    total = int(counts.sum())
    n, dense = p.times.shape[1], p.dense  # dense: (q, S)
    local = torch.repeat_interleave(torch.arange(len(rows), device=rows.device), counts)  # (M,)
    first = torch.cumsum(counts, 0) - counts  # (A,) each row's first output among the M
    base = rows * n + nxt - first  # (A,): output m of row a is at base[a] + m in (R·n)
    flat = base.index_select(0, local) + torch.arange(total, device=rows.device)  # (M,)
    # (M,) each output's fraction x of its row's step, in [0, 1]
    x = (p.times.view(-1).index_select(0, flat) - t.index_select(0, local)) / dt.index_select(
        0, local
    )
    x = x.to(y.dtype)[:, None]  # (M, 1)
    if p.project is not None:  # the interpolant is linear in the state: project it first
        stages = torch.einsum("ads,dp->aps", stages, p.project)  # (A, P, S)
    # (A·P, S) @ (S, q) -> (A, P, q): y(t + x·dt) = y + dt·x·(c_0 + x·(c_1 + x·(…)))
    coef = (stages.reshape(-1, stages.shape[-1]) @ dense.T).reshape(*stages.shape[:2], -1)
    coef = coef.index_select(0, local)  # (M, P, q)
    acc = coef[..., -1]
    for i in range(coef.shape[-1] - 2, -1, -1):
        acc = torch.addcmul(coef[..., i], acc, x)  # (M, P)
    step = dt.to(y.dtype)[local, None] * x  # (M, 1)
    out.add(flat, torch.addcmul(p.read(y).index_select(0, local), step, acc))


class _Active:
    """The rows still integrating: their global ids and per-row arrays, compacted together."""

    def __init__(self, rows: torch.Tensor, **arrays: torch.Tensor) -> None:
        self.rows = rows
        self.arrays = arrays

    def __getattr__(self, name: str) -> torch.Tensor:
        try:
            return self.__dict__["arrays"][name]
        except KeyError:
            raise AttributeError(name) from None

    def update(self, **arrays: torch.Tensor) -> None:
        self.arrays.update(arrays)

    def keep(self, mask: torch.Tensor) -> None:
        index = mask.nonzero().squeeze(1)  # (A',)
        self.rows = self.rows[index]
        self.arrays = {k: v.index_select(0, index) for k, v in self.arrays.items()}


def _start(p: Problem, out: _Outputs) -> tuple[_Active, torch.Tensor]:
    """Output the times equal to each row's start (``y0`` itself); the rows left to solve."""
    R = p.y0.shape[0]
    # (R, n): how far each output lies from the row's start, along the row's direction
    ahead = (p.times - p.t0[:, None]) * p.direction[:, None]
    valid = torch.arange(p.times.shape[1], device=p.times.device) < p.lengths[:, None]
    ahead = torch.where(valid, ahead, torch.inf)  # padding is never reached
    at_start = (ahead <= 0).sum(1)  # (R,) leading outputs at t0
    rows = torch.arange(R, device=p.y0.device)
    _read_start(p, out, rows, at_start)
    active = _Active(
        rows,
        y=p.y0,
        t=p.t0,
        direction=p.direction,
        nxt=at_start,
        ahead=ahead,
        t0=p.t0,
        length=p.lengths,
    )
    active.keep(at_start < p.lengths)
    return active, ahead


def _read_start(p: Problem, out: _Outputs, rows: torch.Tensor, counts: torch.Tensor) -> None:
    total = int(counts.sum())
    if total:
        local = torch.repeat_interleave(torch.arange(len(rows), device=rows.device), counts)
        first = torch.cumsum(counts, 0) - counts
        cols = torch.arange(total, device=rows.device) - first[local]
        out.add(rows[local] * p.times.shape[1] + cols, p.read(p.y0[local]))


def _check_finite(p: Problem, a: _Active) -> None:
    if not _all_finite(a.y):
        bad = (~torch.isfinite(a.y)).any(-1).nonzero()[0, 0]
        raise p.fail(
            f"the state of row {int(a.rows[bad])} became non-finite (NaN or inf) at "
            f"t={float(a.t[bad]):g}: the vector field is exploding"
        )


def _start_breaks(p: Problem, active: _Active) -> None:
    """Each active row's next break strictly ahead of its start: index ``bk`` and time ``tb``.

    Breaks at or behind ``t0`` are the caller's to apply to ``y0``; a row with no break left
    has ``tb = ±inf`` (never reached).
    """
    if p.breaks is None:
        return
    breaks = p.breaks.index_select(0, active.rows)  # (A, m)
    lengths = p.break_lengths.index_select(0, active.rows)  # (A,)
    ahead = (breaks - active.t0[:, None]) * active.direction[:, None]
    # (A,): the breaks at or behind t0 come first
    behind = ((ahead <= 0) & _valid(breaks, lengths)).sum(1)
    active.update(bk=behind, breaks=breaks, blen=lengths)
    _next_break(active)


def _next_break(a: _Active) -> None:
    """``tb (A,)``: the time of break ``bk`` of each row, ``direction · inf`` past the last."""
    at = a.bk.clamp(max=max(a.breaks.shape[1] - 1, 0)).unsqueeze(1)
    time = a.breaks.gather(1, at).squeeze(1) if a.breaks.shape[1] else a.t.new_zeros(a.t.shape)
    a.update(tb=torch.where(a.bk < a.blen, time, a.direction * torch.inf))


def _land(p: Problem, a: _Active, hit: torch.Tensor) -> None:
    """Rows ``hit (A,)`` have just landed on their next break: jump their state there.

    ``p.jump(rows, index, y)`` gives the state just after break ``index`` of each row; the
    slope is evaluated afresh from it (the field changes at a break, so the step's end slope
    is not the next step's first).
    """
    index = hit.nonzero().squeeze(1)  # (H,)
    if len(index) == 0:
        return
    y = p.jump(a.rows.index_select(0, index), a.bk.index_select(0, index), a.y[index])
    f = p.evaluate(a.t.index_select(0, index), y)
    a.update(
        y=a.y.index_copy(0, index, y),
        f=a.f.index_copy(0, index, f),
        bk=a.bk + hit.long(),
    )
    _next_break(a)


def _solve_adaptive(p: Problem, tab: Tableau) -> torch.Tensor:
    cfg = p.config
    out = _Outputs(p)
    active, _ = _start(p, out)
    if len(active.rows) == 0:
        return out.assemble()
    f = p.evaluate(active.t, active.y)
    h = initial_step(p, tab, active.t, active.y, f, active.direction)
    active.update(f=f, h=h)
    _start_breaks(p, active)
    error = p.y0.new_tensor(tab.error)  # (S,)
    nodes = active.t.new_tensor(tab.alpha[:-1])  # (S - 2,) the inner stages' fractions
    steps = 0
    while len(active.rows):
        steps += 1
        p.stats.steps_forward = steps
        a = active
        if steps > cfg.max_num_steps:
            raise p.fail(
                f"{len(a.rows)} row(s) needed more than max_num_steps={cfg.max_num_steps} steps "
                f"(row {int(a.rows[0])} stopped at t={float(a.t[0]):g}): the dynamics are stiff "
                "or exploding"
            )
        dt = a.direction * a.h  # (A,) signed steps
        t1 = a.t + dt
        if p.breaks is not None:  # a step ends on the next break rather than cross it
            clipped = (t1 - a.tb) * a.direction >= 0  # (A,)
            t1 = torch.where(clipped, a.tb, t1)
            dt = t1 - a.t
        dt_y = dt.to(a.y.dtype)[:, None]  # (A, 1)
        inner = torch.addcmul(a.t[:, None], dt[:, None], nodes).to(a.y.dtype)  # (A, S - 2)
        ks = [a.f]
        for i, beta in enumerate(tab.beta[:-1]):
            ks.append(p.evaluate(inner[:, i], combine(a.y, ks, beta, dt_y)))
        y1 = combine(a.y, ks, tab.beta[-1], dt_y)  # (A, D)
        ks.append(p.evaluate(t1, y1))  # FSAL: the next step's first slope
        stages = torch.stack(ks, dim=-1)  # (A, D, S)
        with torch.no_grad():
            estimate = dt_y * (stages.detach() @ error)  # (A, D)
            tolerance = cfg.atol + cfg.rtol * torch.maximum(a.y.abs(), y1.abs())
            ratio = rms_rows(estimate / tolerance, p.sizes, p.shared).to(dt.dtype)  # (A,)
            accept = ratio <= 1  # NaN rejects
            # (A,) outputs covered by an accepted step: those at most t1 along the direction
            reach = ((t1 - a.t0) * a.direction)[:, None]
            covered = torch.searchsorted(a.ahead, reach, right=True).squeeze(1)
            if p.breaks is not None:  # an output at a break is read after its jump
                short = torch.searchsorted(a.ahead, reach, right=False).squeeze(1)
                covered = torch.where(clipped, short, covered)
            end = torch.where(accept, covered, a.nxt)
            # one read of the host per step: underflow, all accepted, outputs, rows done
            flags = torch.stack(
                [
                    (t1 == a.t).any(),
                    accept.all(),
                    accept.any(),
                    (end > a.nxt).any(),
                    (end >= a.length).any(),
                ]
            ).tolist()
        underflow, everyone, anyone, outputs, finished = flags
        if underflow:
            row = int((t1 == a.t).nonzero()[0, 0])
            raise p.fail(
                f"the step size underflowed in row {int(a.rows[row])} at t={float(a.t[row]):g} "
                f"(h={float(a.h[row]):g}); a non-finite state or vector field shrinks the step "
                "until it does"
            )
        if outputs:
            _read_outputs(p, out, a.rows, a.nxt, end, a.t, dt, a.y, stages)
        if everyone:  # the common case, without where's zero-filled gradients
            a.update(y=y1, f=ks[-1], t=t1)
        elif anyone:  # (if none, the step leaves no trace in the graph)
            take = accept[:, None]
            a.update(
                y=torch.where(take, y1, a.y),
                f=torch.where(take, ks[-1], a.f),
                t=torch.where(accept, t1, a.t),
            )
        a.update(nxt=end, h=next_step(a.h, ratio, tab.order))
        if p.breaks is not None:
            _land(p, a, clipped & accept)
        if finished:
            a.keep(end < a.length)
    return out.assemble()


def _solve_fixed(p: Problem, tab: Tableau) -> torch.Tensor:
    cfg = p.config
    out = _Outputs(p)
    active, ahead = _start(p, out)
    if len(active.rows) == 0:
        return out.assemble()
    h = cfg.fixed_step
    furthest = float(torch.where(torch.isfinite(ahead), ahead, 0.0).max())
    needed = int(np.ceil(furthest / h * (1.0 - 1e-12)))
    if needed > cfg.max_num_steps:
        lo, hi = p.span()
        raise SolverError(
            f"step_size={h:g} over t in [{lo:g}, {hi:g}] needs {needed} steps, more than "
            f"max_num_steps={cfg.max_num_steps}; raise step_size or max_num_steps"
        )
    f = p.evaluate(active.t, active.y)
    active.update(f=f, k=torch.zeros_like(active.t))  # k: steps taken by each row
    _start_breaks(p, active)
    while len(active.rows):
        a = active
        p.stats.steps_forward += 1
        _check_finite(p, a)
        signed = a.direction * h
        t1 = a.t0 + (a.k + 1) * signed  # the grid t0 + k·h, free of accumulated rounding
        on_grid = torch.ones_like(a.k, dtype=torch.bool)
        if p.breaks is not None:  # a break inside the step ends it there; the grid resumes
            hit = (t1 - a.tb) * a.direction >= 0  # (A,)
            on_grid = (t1 - a.tb) * a.direction <= 0
            t1 = torch.where(hit, a.tb, t1)
        dt = t1 - a.t
        dt_y = dt.to(a.y.dtype)[:, None]
        ks = [a.f]
        for alpha, beta in zip(tab.alpha[:-1], tab.beta[:-1], strict=True):
            ks.append(p.evaluate(a.t + alpha * dt, combine(a.y, ks, beta, dt_y)))
        y1 = combine(a.y, ks, tab.beta[-1], dt_y)
        ks.append(p.evaluate(t1, y1))  # the end slope: Hermite output now, next step's k1
        reach = ((t1 - a.t0) * a.direction)[:, None]
        end = torch.searchsorted(a.ahead, reach, right=True).squeeze(1)
        if p.breaks is not None:  # an output at a break is read after its jump
            end = torch.where(hit, torch.searchsorted(a.ahead, reach).squeeze(1), end)
        outputs, finished = torch.stack([(end > a.nxt).any(), (end >= a.length).any()]).tolist()
        if outputs:
            _read_outputs(p, out, a.rows, a.nxt, end, a.t, dt, a.y, torch.stack(ks, dim=-1))
        a.update(y=y1, f=ks[-1], t=t1, nxt=end, k=a.k + on_grid.to(a.k.dtype))
        if p.breaks is not None:
            _land(p, a, hit)
        if finished:
            a.keep(end < a.length)
    return out.assemble()


def _solve_each_row(p: Problem) -> torch.Tensor:
    """Each row alone through :func:`solve` (torchdiffeq): for what has no native row solver."""
    out = _Outputs(p)
    _, ahead = _start(p, out)
    for r in range(p.y0.shape[0]):
        n = int(p.lengths[r])
        first = int((ahead[r, :n] <= 0).sum())
        if first == n:
            continue
        wanted = p.times[r, first:n]  # (m,) strictly away from t0, non-strictly monotone
        distinct, inverse = torch.unique_consecutive(wanted, return_inverse=True)
        grid = torch.cat([p.t0[r : r + 1], distinct]).to(p.y0.dtype)  # (1 + u,)
        state = p.split(p.y0[r : r + 1])  # (1, D) parts
        solution = solve(_ScalarTime(p.field), state, grid, p.config, stats=p.stats)
        ys = solution.ys if p.is_tuple else (solution.ys,)
        flat = torch.cat([y[0] for y in ys], dim=-1)[1:]  # (u, D): drop t0
        cols = torch.arange(first, n, device=p.y0.device)
        out.add(r * p.times.shape[1] + cols, p.read(flat[inverse]))
    p.stats.row_nfe_forward = p.stats.nfe_forward
    return out.assemble()


class _ScalarTime(torch.nn.Module):
    """Gives a row field the ``(1,)`` time it expects when torchdiffeq passes a 0-d one."""

    def __init__(self, field: RowField) -> None:
        super().__init__()
        self.field = field  # a submodule when it is one: the adjoint finds its parameters

    def forward(self, t: torch.Tensor, y: State) -> State:
        return self.field(t.reshape(1), y)


ROW_METHODS: dict[str, Callable[[Problem], torch.Tensor]] = {
    name: functools.partial(_solve_adaptive if tab.error is not None else _solve_fixed, tab=tab)
    for name, tab in TABLEAUX.items()
}
"""Method name → native per-row implementation; other methods solve each row alone."""


def _time_dtype(like: torch.Tensor) -> torch.dtype:
    # Steps accumulate in float64 as in torchdiffeq, where the device has it.
    return like.dtype if like.device.type == "mps" else torch.float64


def solve_rows(
    field: RowField,
    z0: State,
    times: torch.Tensor,
    config: SolverConfig | None = None,
    *,
    lengths: torch.Tensor | None = None,
    t0: torch.Tensor | None = None,
    project: torch.Tensor | None = None,
    shared_steps: bool = False,
    breaks: torch.Tensor | None = None,
    break_lengths: torch.Tensor | None = None,
    jump: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> RowSolution:
    """Integrate ``dz/dt = field(t, z)`` separately for every row, each to its own times.

    Args:
        field: ``f(t, z)`` with ``t (A,)`` one time per row and ``z (A, d)`` (a tuple of such
            for a tuple state), ``A`` the rows still integrating; e.g. a
            :class:`~latentode.core.VectorField` (per-row times broadcast) or an
            :class:`~latentode.core.IntegralField`.
        z0: ``(R, d)`` initial states at ``t0``, or a tuple of ``(R, d_i)`` tensors integrated
            together (one dtype and device).
        times: ``(R, n)`` output times; row ``r`` uses ``times[r, :lengths[r]]``, which must move
            away from ``t0[r]`` monotonically (repeats allowed): all ≥ ``t0[r]`` and
            non-decreasing (solved forward), or all ≤ ``t0[r]`` and non-increasing (backward).
            Times carry no gradient.
        config: Solver settings; default ``SolverConfig()``. ``rtol``/``atol`` apply per row.
        lengths: ``(R,)`` valid times per row, 0..n; default all ``n``.
        t0: ``(R,)`` start times; default 0.
        project: ``(D, P)``, D the state's width (the parts of a tuple state side by side):
            return ``z(t) @ project``, one ``(R, n, P)`` tensor, instead of ``z(t)``. The
            dense output is linear in the state, so each output is read in P numbers rather
            than D (a linear read-out of a latent state costs its output's size, not the
            latent's). Gradients flow to it.
        shared_steps: Adaptive methods only: all rows take the same steps, accepted or
            rejected together on the RMS error over every row still integrating (the norm of
            one solve of the whole batch). Each row still reads its own times and leaves when
            done. A row's result then depends on its batch-mates, but the batch needs as few
            field calls as its average row rather than its hardest (training uses it: its
            loss averages over the batch anyway).
        breaks: ``(R, m)`` times where row ``r``'s dynamics change (an input's change point,
            a dose): ``breaks[r, :break_lengths[r]]``, strictly monotone in the row's
            direction. Breaks strictly between ``t0[r]`` and the row's last output are stepped
            to, never across: a step that would cross one ends on it, the state becomes
            ``jump(rows, index, y)`` there, and the next step starts from a fresh slope. So
            a field that is smooth between breaks keeps the method's order, where smearing a
            discontinuity over a step would cost rejected steps and accuracy. Breaks at or
            behind ``t0`` are the caller's (apply them to ``z0``). An output at a break's
            time reads the state just after the jump (a change acts at its instant, as one
            at ``t0`` applied to ``z0`` does). Native methods only, not the adjoint.
        break_lengths: ``(R,)`` valid breaks per row; default all ``m``.
        jump: ``jump(rows (H,), index (H,), y (H, D)) -> (H, D)``: the state just after break
            ``index[i]`` of global row ``rows[i]``, from the state ``y[i]`` just before (the
            parts of a tuple state side by side). Required with ``breaks``.

    Returns:
        :class:`RowSolution` with ``ys (R, n, d)`` (``(R, n, P)`` with ``project``; zeros past
        each row's length) and counts:
        ``nfe_forward`` field calls (each on the rows still integrating, so comparable to a
        whole-batch solve's evaluations), ``row_nfe_forward`` evaluations summed over rows,
        ``steps_forward`` steps of the row that took most, ``n_rows`` = R.

    Raises:
        SolverError: a row needed more than ``max_num_steps`` steps, its step underflowed, or
            its state became non-finite.
        TypeError, ValueError: malformed ``z0``, ``times``, ``lengths`` or ``t0``.

    Example:
        >>> z0 = torch.ones(2, 1)
        >>> times = torch.tensor([[0.5, 1.0], [-1.0, 0.0]])  # row 1: backwards, one time
        >>> solve_rows(lambda t, z: -z, z0, times, lengths=torch.tensor([2, 1])).ys[:, :, 0]
        tensor([[0.6065, 0.3679],
                [2.7183, 0.0000]])
    """
    # check
    config = SolverConfig() if config is None else config
    if not isinstance(config, SolverConfig):
        raise TypeError(f"`config` must be a SolverConfig; got {type(config).__name__}")
    if not callable(field):
        raise TypeError(f"`field` must be callable as field(t, z); got {type(field).__name__}")
    z0 = _as_state(z0)
    parts = z0 if isinstance(z0, tuple) else (z0,)
    rows = parts[0].shape[0] if parts[0].ndim == 2 else -1
    if any(part.ndim != 2 or part.shape[0] != rows for part in parts):
        raise ValueError(
            "`z0` must be (rows, d), or a tuple of (rows, d_i) with one row count; got shapes "
            f"{[tuple(part.shape) for part in parts]}"
        )
    like = parts[0]
    tdt = _time_dtype(like)
    if not isinstance(times, torch.Tensor) or times.ndim != 2 or times.shape[0] != rows:
        raise ValueError(
            f"`times` must be a (rows, n_times) tensor with rows={rows}; got "
            f"{tuple(times.shape) if isinstance(times, torch.Tensor) else type(times).__name__}"
        )
    times = times.detach().to(device=like.device, dtype=tdt).contiguous()  # read flat
    n = times.shape[1]
    lengths = _check_lengths(lengths, rows, n, like.device)
    t0 = _check_start(t0, rows, like.device, tdt)
    valid = torch.arange(n, device=like.device) < lengths[:, None]  # (R, n)
    if not bool(torch.isfinite(times[valid]).all()):
        raise ValueError("`times` contains NaN or inf within the rows' lengths")
    direction = _directions(times, valid, t0)
    width = sum(part.shape[-1] for part in parts)
    if project is not None and (
        not isinstance(project, torch.Tensor)
        or project.ndim != 2
        or project.shape[0] != width
        or project.dtype != like.dtype
        or project.device != like.device
    ):
        raise ValueError(
            f"`project` must be a ({width}, P) tensor of the state's dtype {like.dtype} on "
            f"{like.device}; got "
            + (
                f"{tuple(project.shape)} {project.dtype} on {project.device}"
                if isinstance(project, torch.Tensor)
                else type(project).__name__
            )
        )

    if breaks is not None or jump is not None:
        break_lengths = _check_breaks(breaks, break_lengths, jump, rows, like.device, tdt, t0)
        breaks = breaks.detach().to(device=like.device, dtype=tdt).contiguous()
        steps = (breaks[:, 1:] - breaks[:, :-1]) * direction[:, None]  # (R, m - 1)
        wrong = (steps <= 0) & _valid(breaks, break_lengths)[:, 1:]
        if bool(wrong.any()):
            r = int(wrong.nonzero()[0, 0])
            raise ValueError(
                f"each row's `breaks` must move the way its times do (increasing forward, "
                f"decreasing backward) without repeats: sort them and drop repeats; row {r} "
                f"has {breaks[r, : int(break_lengths[r])].tolist()}"
            )

    # dispatch
    stats = SolveStats(n_rows=rows)
    problem = Problem(
        field,
        torch.cat(parts, dim=-1),  # (R, D)
        [part.shape[-1] for part in parts],
        isinstance(z0, tuple),
        times,
        lengths,
        t0,
        direction,
        config,
        stats,
    )
    problem.project = project
    problem.shared = bool(shared_steps)
    problem.breaks, problem.break_lengths, problem.jump = breaks, break_lengths, jump
    if config.method in TABLEAUX:
        problem.dense = problem.y0.new_tensor(TABLEAUX[config.method].dense)
    implement = ROW_METHODS.get(config.method, _solve_each_row)
    native_adjoint = config.backward_method in TABLEAUX and implement is not _solve_each_row
    if config.adjoint and not native_adjoint:  # torchdiffeq's adjoint, one row at a time
        implement = _solve_each_row
    if breaks is not None and (config.adjoint or implement is _solve_each_row):
        raise ValueError(
            f"`breaks` need a native per-row method without the adjoint ({sorted(TABLEAUX)}, "
            f"adjoint=False); got method={config.method!r}, adjoint={config.adjoint}"
        )

    # compute
    if config.adjoint and native_adjoint:
        problem.project = None  # the backward solve needs whole states
        params = [q for q in getattr(field, "parameters", list)() if q.requires_grad]
        ys = adjoint_rows(problem, implement, TABLEAUX[config.backward_method], params)
        if project is not None:
            ys = ys @ project
    else:
        ys = implement(problem)  # (R, n, D)

    # format
    # A state that blows up fails while stepping (its error estimate rejects every step, or
    # the fixed-step check stops it); a projection of finite states that overflows is the
    # read-out's, and comes back as it is for the caller to judge.
    if project is None and not _all_finite(ys):
        raise problem.fail("the solution contains NaN or inf: the vector field is exploding")
    return RowSolution(ys if project is not None else problem.split(ys), stats)


def _check_lengths(lengths, rows: int, n: int, device) -> torch.Tensor:
    if lengths is None:
        return torch.full((rows,), n, dtype=torch.long, device=device)
    if not isinstance(lengths, torch.Tensor) or lengths.shape != (rows,):
        raise ValueError(f"`lengths` must be a ({rows},) tensor; got {lengths!r}")
    if lengths.is_floating_point() or lengths.is_complex():
        raise TypeError(f"`lengths` must be an integer tensor; got {lengths.dtype}")
    lengths = lengths.to(device=device, dtype=torch.long)
    if bool(((lengths < 0) | (lengths > n)).any()):
        raise ValueError(f"`lengths` must lie in [0, {n}]; got {lengths.tolist()}")
    return lengths


def _check_start(t0, rows: int, device, dtype) -> torch.Tensor:
    if t0 is None:
        return torch.zeros(rows, dtype=dtype, device=device)
    if not isinstance(t0, torch.Tensor) or t0.shape != (rows,):
        raise ValueError(f"`t0` must be a ({rows},) tensor; got {t0!r}")
    t0 = t0.detach().to(device=device, dtype=dtype)
    if not bool(torch.isfinite(t0).all()):
        raise ValueError("`t0` contains NaN or inf")
    return t0


def _valid(times: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    return torch.arange(times.shape[1], device=times.device) < lengths[:, None]


def _check_breaks(breaks, lengths, jump, rows: int, device, dtype, t0) -> torch.Tensor:
    if breaks is None or jump is None:
        raise ValueError(
            "`breaks` and `jump` go together: give the times where each row's dynamics change "
            "and the state just after each; got "
            + ("a jump without breaks" if breaks is None else "breaks without a jump")
        )
    if not callable(jump):
        raise TypeError(f"`jump` must be callable as jump(rows, index, y); got {jump!r}")
    if not isinstance(breaks, torch.Tensor) or breaks.ndim != 2 or breaks.shape[0] != rows:
        raise ValueError(
            f"`breaks` must be a (rows, m) tensor with rows={rows}; got "
            f"{tuple(breaks.shape) if isinstance(breaks, torch.Tensor) else type(breaks).__name__}"
        )
    lengths = _check_lengths(lengths, rows, breaks.shape[1], device)
    if not bool(torch.isfinite(breaks.to(device)[_valid(breaks.to(device), lengths)]).all()):
        raise ValueError("`breaks` contains NaN or inf within the rows' break_lengths")
    return lengths


def _directions(times: torch.Tensor, valid: torch.Tensor, t0: torch.Tensor) -> torch.Tensor:
    """``(R,)`` ±1: the side of ``t0`` each row's times lie on, checked monotone."""
    offset = torch.where(valid, times - t0[:, None], 0.0)  # (R, n)
    later, earlier = (offset > 0).any(1), (offset < 0).any(1)
    both = later & earlier
    if bool(both.any()):
        r = int(both.nonzero()[0, 0])
        raise ValueError(
            f"each row's `times` must lie on one side of its start t0 (solve the other side as "
            f"a separate row); row {r} has times both before and after t0={float(t0[r]):g}"
        )
    direction = torch.where(earlier, -1.0, 1.0).to(times.dtype)  # (R,)
    ahead = offset * direction[:, None]
    steps = ahead[:, 1:] - ahead[:, :-1]  # (R, n-1)
    backwards = (steps < 0) & valid[:, 1:]
    if bool(backwards.any()):
        r, j = (int(i) for i in backwards.nonzero()[0])
        raise ValueError(
            f"each row's `times` must move away from its start monotonically (sort them); row "
            f"{r} has {float(times[r, j + 1]):g} after {float(times[r, j]):g}"
        )
    return direction
