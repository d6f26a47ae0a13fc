"""`SolverConfig` and `solve`: the one place latentode calls torchdiffeq.

Everything that integrates an ODE goes through :func:`solve`, so tolerances, the step limit,
adjoint options, error translation and function-evaluation counting are defined once.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torchdiffeq
from torch import nn

from latentode._validation import check_bool, check_choice, check_int, check_real, format_choices
from latentode.core.dopri5 import dopri5_solve, dopri5_solve_tuple

__all__ = [
    "ADAPTIVE_METHODS",
    "DEFAULT_STEP_SIZE",
    "FIXED_METHODS",
    "IMPLEMENTATIONS",
    "METHODS",
    "ODESolution",
    "SolveStats",
    "SolverConfig",
    "SolverError",
    "State",
    "implementation_for",
    "solve",
]

State = torch.Tensor | tuple[torch.Tensor, ...]
"""An ODE state: one tensor, or a tuple of tensors solved together (e.g. path + compensator)."""

ADAPTIVE_METHODS: tuple[str, ...] = ("dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun")
FIXED_METHODS: tuple[str, ...] = (
    "euler",
    "midpoint",
    "heun2",
    "heun3",
    "rk4",
    "explicit_adams",
    "implicit_adams",
)
# torchdiffeq's "scipy_solver" is left out: it runs on NumPy, drops gradients and ignores
# the step callbacks that the step limit relies on.
METHODS: dict[str, Literal["adaptive", "fixed"]] = {
    **dict.fromkeys(ADAPTIVE_METHODS, "adaptive"),
    **dict.fromkeys(FIXED_METHODS, "fixed"),
}

DEFAULT_STEP_SIZE = 0.05
"""The step of fixed-grid methods without ``step_size``: 20 steps per unit of model time."""

_FIXES = (
    "Fixes: loosen rtol/atol or raise max_num_steps if the dynamics are merely stiff; if they "
    "blow up, lower the learning rate, clip gradients (Trainer(gradient_clip_val=...)), or start "
    "the vector field near zero (zero_init=True)"
)


class SolverError(RuntimeError):
    """An ODE solve could not finish: step limit reached, step underflow, or a non-finite state."""


@dataclass(frozen=True)
class SolverConfig:
    """Validated, immutable solver settings.

    Attributes:
        method: Integration method, one of :data:`METHODS`. Default ``"dopri5"``.
        rtol: Relative tolerance of adaptive methods (> 0). Default 1e-3.
        atol: Absolute tolerance of adaptive methods (> 0). Default 1e-4.
        step_size: Step of fixed-grid methods, in model time units. ``None`` (default) takes
            :data:`DEFAULT_STEP_SIZE` (:attr:`fixed_step`): model times are of order one by
            construction (:class:`~latentode.data.TimeScaler`), so a step in model time is a
            step relative to the data's own time scale. Steps start at the solve's first time
            and never depend on the other requested times (those are read off between steps),
            so the answer at a time does not depend on which times were asked for. Not allowed
            with adaptive methods (their tolerances choose the steps).
        adjoint: Compute gradients with the adjoint method (memory constant in the number of
            steps, one extra backward solve) instead of backpropagating through the solver.
        adjoint_method: Method of the backward solve; default: ``method``. Must be of the same
            kind (adaptive or fixed) as ``method``.
        adjoint_rtol: Relative tolerance of the backward solve; default: ``rtol``.
        adjoint_atol: Absolute tolerance of the backward solve; default: ``atol``.
        adjoint_seminorm: Leave the parameter-gradient components out of the backward solve's
            error norm (Kidger et al. 2021): fewer backward steps, same gradients to tolerance.
        max_num_steps: Most solver steps (accepted or rejected) one solve may take, forward and
            backward counted separately. Past it :class:`SolverError` is raised; a solve never
            hangs. Default 10_000.

    Example:
        >>> SolverConfig(method="rk4", step_size=0.1)
        SolverConfig(method='rk4', rtol=0.001, atol=0.0001, step_size=0.1, ...)
    """

    method: str = "dopri5"
    rtol: float = 1e-3
    atol: float = 1e-4
    step_size: float | None = None
    adjoint: bool = False
    adjoint_method: str | None = None
    adjoint_rtol: float | None = None
    adjoint_atol: float | None = None
    adjoint_seminorm: bool = False
    max_num_steps: int = 10_000

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise in place once, here
        check_choice("method", self.method, METHODS)
        set_(self, "rtol", check_real("rtol", self.rtol, positive=True))
        set_(self, "atol", check_real("atol", self.atol, positive=True))
        set_(
            self,
            "step_size",
            check_real("step_size", self.step_size, positive=True, allow_none=True),
        )
        check_bool("adjoint", self.adjoint)
        check_bool("adjoint_seminorm", self.adjoint_seminorm)
        set_(self, "max_num_steps", check_int("max_num_steps", self.max_num_steps, minimum=1))
        if self.step_size is not None and self.kind == "adaptive":
            raise ValueError(
                "`step_size` applies only to fixed-grid methods "
                f"({format_choices(FIXED_METHODS)}); method {self.method!r} is adaptive and "
                "picks its own steps from rtol/atol. "
                "Drop step_size, or choose a fixed-grid method"
            )
        for name in ("adjoint_rtol", "adjoint_atol"):
            set_(self, name, check_real(name, getattr(self, name), positive=True, allow_none=True))
        if self.adjoint_method is not None:
            check_choice("adjoint_method", self.adjoint_method, METHODS)
            if METHODS[self.adjoint_method] != self.kind:
                raise ValueError(
                    f"`adjoint_method` must be of the same kind as `method`; got {self.kind} "
                    f"method {self.method!r} with {METHODS[self.adjoint_method]} adjoint_method "
                    f"{self.adjoint_method!r}"
                )
        if not self.adjoint:
            set_options = [
                name
                for name in ("adjoint_method", "adjoint_rtol", "adjoint_atol")
                if getattr(self, name) is not None
            ] + (["adjoint_seminorm"] if self.adjoint_seminorm else [])
            if set_options:
                raise ValueError(
                    f"{', '.join(set_options)} only take effect with adjoint=True; "
                    "set adjoint=True or leave them at their defaults"
                )
        if self.adjoint_seminorm and METHODS[self.backward_method] != "adaptive":
            raise ValueError(
                "`adjoint_seminorm` only changes adaptive step-size control; the backward method "
                f"{self.backward_method!r} is fixed-grid. Drop adjoint_seminorm"
            )

    @property
    def kind(self) -> Literal["adaptive", "fixed"]:
        """``"adaptive"`` or ``"fixed"``: how ``method`` chooses its steps."""
        return METHODS[self.method]

    @property
    def fixed_step(self) -> float | None:
        """The step a fixed-grid method takes (``step_size`` or its default); None if adaptive."""
        if self.kind == "adaptive":
            return None
        return DEFAULT_STEP_SIZE if self.step_size is None else self.step_size

    @property
    def backward_method(self) -> str:
        """The method the adjoint (backward) solve uses."""
        return self.adjoint_method or self.method

    @classmethod
    def from_dict(cls, options: Mapping[str, Any]) -> SolverConfig:
        """Build from a mapping, refusing unknown keys with the list of valid ones."""
        _check_keys(options)
        return cls(**options)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable field values."""
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> SolverConfig:
        """A copy with ``changes`` applied (and validated); unknown keys raise."""
        _check_keys(changes)
        return dataclasses.replace(self, **changes)


def _check_keys(options: Mapping[str, Any]) -> None:
    valid = {f.name for f in dataclasses.fields(SolverConfig)}
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ValueError(
            f"unknown solver option(s) {format_choices(unknown)}; "
            f"valid options are {format_choices(valid)}"
        )


@dataclass
class SolveStats:
    """Counts for one :func:`solve` call; the backward counts fill in during ``.backward()``.

    Attributes:
        nfe_forward: Vector-field evaluations in the forward solve.
        nfe_backward: Vector-field evaluations in the backward pass. Only the adjoint method
            evaluates the field backward; direct backpropagation reuses the forward graph
            (vector-Jacobian products, no new evaluations), so it stays 0 there.
        steps_forward: Solver steps attempted (accepted + rejected) forward; in a per-row solve
            (:func:`~latentode.core.solve_rows`), those of the row that took most.
        steps_backward: Solver steps attempted by the adjoint solve.
        row_nfe_forward: Per-row solves only: forward evaluations summed over rows. A per-row
            solve evaluates the field on the rows still integrating, so ``nfe_forward`` counts
            calls (as a whole-batch solve does: comparable across the two) and
            ``row_nfe_forward / n_rows`` is the mean work per row.
        n_rows: Per-row solves only: the rows solved (0 otherwise).
    """

    nfe_forward: int = 0
    nfe_backward: int = 0
    steps_forward: int = 0
    steps_backward: int = 0
    row_nfe_forward: int = 0
    n_rows: int = 0


@dataclass(frozen=True)
class ODESolution:
    """The result of :func:`solve`.

    Attributes:
        ys: Batch-first trajectory. For each state tensor of shape ``(*lead, d)`` the solution
            has shape ``(*lead, n_times, d)``: the time axis goes just before the last axis, so
            ``(batch, dim)`` gives ``(batch, n_times, dim)`` and ``(n_samples, batch, dim)`` gives
            ``(n_samples, batch, n_times, dim)``. A 0-d or 1-d state gives ``(n_times,)`` /
            ``(n_times, d)``. A tuple state gives a tuple of such tensors.
        times: ``(n_times,)`` the output times, as solved.
        stats: Evaluation and step counts (see :class:`SolveStats`).
        implementation: The name, in :data:`IMPLEMENTATIONS`, of what solved it.
    """

    ys: State
    times: torch.Tensor
    stats: SolveStats = field(default_factory=SolveStats)
    implementation: str = "torchdiffeq"


class _Monitored(nn.Module):
    """Wraps the vector field to count evaluations/steps and stop runaway solves.

    torchdiffeq calls ``callback_step`` before every attempted step of the forward solve and
    ``callback_step_adjoint`` before every step of the adjoint solve, so the limit holds in
    both directions without touching the solver.
    """

    def __init__(
        self,
        field: Callable[[torch.Tensor, State], State],
        stats: SolveStats,
        config: SolverConfig,
        span: tuple[float, float],
    ) -> None:
        super().__init__()
        self.field = field  # registered as a submodule when it is one: adjoint finds its params
        self.stats = stats
        self.config = config
        self.span = span
        self.in_backward = False
        # this solve's own step counts: ``stats`` may pool several solves
        self.steps_forward = self.steps_backward = 0

    def forward(self, t: torch.Tensor, y: State) -> State:
        if self.in_backward:
            self.stats.nfe_backward += 1
        else:
            self.stats.nfe_forward += 1
        return self.field(t, y)

    def _check_step(self, direction: str, steps: int, t0: torch.Tensor | float, y0: State) -> None:
        cfg = self.config
        now = float(t0.detach()) if isinstance(t0, torch.Tensor) else float(t0)
        if steps > cfg.max_num_steps:
            raise SolverError(
                f"the {direction} ODE solve needed more than max_num_steps={cfg.max_num_steps} "
                f"steps (method={cfg.method!r}, rtol={cfg.rtol:g}, atol={cfg.atol:g}, "
                f"step_size={cfg.fixed_step}) over t in [{self.span[0]:g}, {self.span[1]:g}] and "
                f"stopped at t={now:g}: the dynamics are stiff or exploding. {_FIXES}"
            )
        if not _all_finite(y0):
            raise SolverError(
                f"the {direction} ODE solve reached a non-finite state (NaN or inf) at "
                f"t={now:g} (method={cfg.method!r}, rtol={cfg.rtol:g}, atol={cfg.atol:g}, "
                f"step_size={cfg.fixed_step}): the vector field is exploding. {_FIXES}"
            )

    # torchdiffeq passes y0 as the user's tuple for tuple states, and flat otherwise; the native
    # dopri5 passes t0 and dt as floats.
    def callback_step(self, t0: torch.Tensor | float, y0: State, dt: torch.Tensor | float) -> None:
        self.stats.steps_forward += 1
        self.steps_forward += 1
        self._check_step("forward", self.steps_forward, t0, y0)

    def callback_step_adjoint(self, t0: torch.Tensor, y0: State, dt: torch.Tensor) -> None:
        self.stats.steps_backward += 1
        self.steps_backward += 1
        self._check_step("adjoint (backward)", self.steps_backward, t0, y0)


def _all_finite(y: State) -> bool:
    # A sum is non-finite whenever a part is (and, very rarely, when finite values overflow):
    # one pass instead of isfinite's four (0.03 vs 0.55 ms on a 150k-value trajectory). Only a
    # failed sum pays for the exact check, so overflow is never reported as NaN.
    parts = y if isinstance(y, tuple) else (y,)
    return all(
        bool(torch.isfinite(part.sum())) or bool(torch.isfinite(part).all()) for part in parts
    )


def _as_state(z0: Any) -> State:
    """Check z0 is a floating tensor or a non-empty tuple of them on one device and dtype."""
    parts = z0 if isinstance(z0, tuple) else (z0,)
    if not parts:
        raise ValueError("`z0` is an empty tuple; pass a tensor or a tuple of tensors")
    for i, part in enumerate(parts):
        where = f"`z0[{i}]`" if isinstance(z0, tuple) else "`z0`"
        if not isinstance(part, torch.Tensor):
            raise TypeError(
                f"{where} must be a torch.Tensor (or `z0` a tuple of them); "
                f"got {type(part).__name__}"
            )
        if not part.is_floating_point():
            raise TypeError(
                f"{where} must have a floating dtype; got {part.dtype}. Convert with .float()"
            )
        if part.dtype != parts[0].dtype or part.device != parts[0].device:
            raise TypeError(
                "all parts of a tuple `z0` must share one dtype and device; got "
                f"{parts[0].dtype}/{parts[0].device} and {part.dtype}/{part.device}"
            )
        if not _all_finite(part):
            raise ValueError(f"{where} contains NaN or inf; an initial state must be finite")
    return z0


def _as_times(times: Any, like: torch.Tensor) -> torch.Tensor:
    if not isinstance(times, torch.Tensor):
        try:
            times = torch.as_tensor(times, dtype=like.dtype, device=like.device)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(
                f"`times` must be a 1-D tensor or sequence of numbers; got {type(times).__name__}"
            ) from err
    if not times.is_floating_point():
        times = times.to(like.dtype)
    if times.ndim != 1 or times.numel() == 0:
        raise ValueError(f"`times` must be 1-D and non-empty; got shape {tuple(times.shape)}")
    if times.device != like.device:
        raise ValueError(
            f"`times` is on {times.device} but `z0` is on {like.device}; move them to one device"
        )
    if not bool(torch.isfinite(times).all()):
        raise ValueError("`times` contains NaN or inf")
    if times.numel() > 1:
        diffs = times[1:] - times[:-1]
        if not (bool((diffs > 0).all()) or bool((diffs < 0).all())):
            raise ValueError(
                "`times` must be strictly increasing (or strictly decreasing, to solve backwards "
                f"in time); got {times.detach().cpu().tolist()[:8]}"
                f"{' ...' if times.numel() > 8 else ''}"
            )
    return times


def _batch_first(y: torch.Tensor) -> torch.Tensor:
    """torchdiffeq's ``(n_times, *state)`` → time axis just before the state's last axis."""
    return y.movedim(0, max(y.ndim - 2, 0))


def _map_state(fn: Callable[[torch.Tensor], torch.Tensor], y: State) -> State:
    return tuple(fn(part) for part in y) if isinstance(y, tuple) else fn(y)


def _n_fixed_steps(span: float, step_size: float) -> int:
    """Steps of size ``step_size`` needed to cover ``span``, forgiving float rounding.

    torchdiffeq's own grid takes ``ceil(span / h + 1)`` points, so a span of exactly L·h that
    rounds to L + 1e-15 gets a spurious near-zero extra step (one wasted evaluation per solve).
    """
    return max(1, math.ceil(abs(span) / step_size * (1.0 - 1e-12)))


def _grid_constructor(step_size: float) -> Callable[..., torch.Tensor]:
    """A fixed grid ``t0, t0 ± h, t0 ± 2h, ..., t1``; ends exactly on ``t1``; either direction."""

    def grid(func: Any, y0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        span = float((t[-1] - t[0]).detach())
        n = _n_fixed_steps(span, step_size)
        signed_step = math.copysign(step_size, span)
        # Same arithmetic as ResNet's steps: t_l = l·h + t0, so the two agree to rounding.
        inner = torch.arange(n, dtype=t.dtype, device=t.device) * signed_step + t[0]  # (n,)
        return torch.cat([inner, t[-1:]])  # (n + 1,)

    return grid


def _options(config: SolverConfig) -> dict[str, Any]:
    if config.kind == "adaptive":
        # torchdiffeq's own limit is per output interval; ours (in _Monitored) is per solve.
        return {"max_num_steps": config.max_num_steps + 1}
    return {"grid_constructor": _grid_constructor(config.fixed_step)}


def _native_dopri5(monitored: _Monitored, z0: State, times: torch.Tensor, config: SolverConfig):
    run = dopri5_solve_tuple if isinstance(z0, tuple) else dopri5_solve
    return run(
        monitored,
        z0,
        times.tolist(),
        rtol=config.rtol,
        atol=config.atol,
        on_step=monitored.callback_step,
    )  # already batch-first


def _odeint_kwargs(config: SolverConfig) -> dict[str, Any]:
    """The forward solve's settings, as torchdiffeq's odeint and odeint_adjoint take them."""
    return {
        "rtol": config.rtol,
        "atol": config.atol,
        "method": config.method,
        "options": _options(config),
    }


def _torchdiffeq(monitored: _Monitored, z0: State, times: torch.Tensor, config: SolverConfig):
    ys = torchdiffeq.odeint(monitored, z0, times, **_odeint_kwargs(config))
    return _map_state(_batch_first, ys)


def _torchdiffeq_adjoint(
    monitored: _Monitored, z0: State, times: torch.Tensor, config: SolverConfig
):
    adjoint_options = _options(config.replace(method=config.backward_method))
    if config.adjoint_seminorm:
        adjoint_options["norm"] = "seminorm"
    ys = torchdiffeq.odeint_adjoint(
        monitored,
        z0,
        times,
        **_odeint_kwargs(config),
        adjoint_method=config.backward_method,
        adjoint_rtol=config.adjoint_rtol,
        adjoint_atol=config.adjoint_atol,
        adjoint_options=adjoint_options,
    )
    return _map_state(_batch_first, ys)


IMPLEMENTATIONS: dict[str, Callable[[Any, State, torch.Tensor, SolverConfig], State]] = {
    "native-dopri5": _native_dopri5,
    "torchdiffeq": _torchdiffeq,
    "torchdiffeq-adjoint": _torchdiffeq_adjoint,
}
"""What can run a :func:`solve`, by name; :func:`implementation_for` picks one per solve.

(The decoder's per-row solves have their own registry, :data:`~latentode.core.rowwise.ROW_METHODS`.)
"""


def implementation_for(config: SolverConfig, z0: State, times: torch.Tensor) -> str:
    """The one rule choosing the :data:`IMPLEMENTATIONS` entry that runs a solve.

    - ``adjoint=True``: torchdiffeq's adjoint (its backward solve is what the adjoint is);
    - ``method="dopri5"``, differentiated directly, with times that carry no gradient: the
      native Dormand–Prince (same steps as torchdiffeq's, its dense output one matrix
      product per step);
    - everything else: torchdiffeq.

    The chosen name is reported as :attr:`ODESolution.implementation`.
    """
    if config.adjoint:
        return "torchdiffeq-adjoint"
    if (
        config.method == "dopri5"
        and (isinstance(z0, tuple) or z0.ndim >= 1)
        and not times.requires_grad
    ):
        return "native-dopri5"
    return "torchdiffeq"


def solve(
    field: Callable[[torch.Tensor, State], State],
    z0: State,
    times: torch.Tensor | Sequence[float],
    config: SolverConfig | None = None,
    *,
    stats: SolveStats | None = None,
) -> ODESolution:
    """Integrate ``dz/dt = field(t, z)`` from ``z0`` at ``times[0]`` and return z at every time.

    Args:
        field: ``f(t, z)``: ``t`` a 0-d tensor, ``z`` shaped like ``z0`` (a tuple state gets and
            returns a tuple). Usually a :class:`~latentode.core.VectorField`. With
            ``config.adjoint`` it must be an ``nn.Module`` (its parameters get the gradients).
        z0: Initial state at ``times[0]``: a floating tensor ``(*lead, d)``, or a tuple of such
            tensors (one dtype and device), integrated together as one ODE.
        times: ``(n_times,)`` strictly increasing, or strictly decreasing to solve backwards in
            time. ``times[0]`` is the time of ``z0``. Gradients flow to ``times``.
        config: Solver settings; default ``SolverConfig()`` (dopri5, rtol 1e-3, atol 1e-4).
        stats: Add this solve's counts to this :class:`SolveStats` (to pool several solves);
            default a new one. The step limit still applies to each solve alone.

    Returns:
        :class:`ODESolution` with the batch-first trajectory ``ys`` (time axis inserted before the
        last axis of each state tensor, e.g. ``(batch, dim) -> (batch, n_times, dim)``), the
        ``times`` and the evaluation counters ``stats``.

    Raises:
        SolverError: the step limit was reached, the step size underflowed, or the state became
            NaN/inf. The message names the settings to change.
        TypeError, ValueError: malformed ``z0``, ``times`` or ``field``.

    Example:
        >>> A = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
        >>> sol = solve(lambda t, z: z @ A.T, torch.ones(4, 2), torch.linspace(0, 1, 5))
        >>> sol.ys.shape
        torch.Size([4, 5, 2])
    """
    # check
    config = SolverConfig() if config is None else config
    if not isinstance(config, SolverConfig):
        raise TypeError(
            f"`config` must be a SolverConfig; got {type(config).__name__}. "
            "Build one with SolverConfig(...) or SolverConfig.from_dict(...)"
        )
    if not callable(field):
        raise TypeError(f"`field` must be callable as field(t, z); got {type(field).__name__}")
    if config.adjoint and not isinstance(field, nn.Module):
        raise TypeError(
            "with adjoint=True, `field` must be an nn.Module so that the adjoint solve can find "
            f"its parameters; got {type(field).__name__}. Wrap it in an nn.Module"
        )
    z0 = _as_state(z0)
    like = z0[0] if isinstance(z0, tuple) else z0
    times = _as_times(times, like)
    stats = SolveStats() if stats is None else stats
    if times.numel() == 1:
        return ODESolution(_map_state(lambda z: _batch_first(z.unsqueeze(0)), z0), times, stats)
    span = (float(times[0].detach()), float(times[-1].detach()))
    if config.kind == "fixed":
        n_steps = _n_fixed_steps(span[1] - span[0], config.fixed_step)
        if n_steps > config.max_num_steps:
            raise SolverError(
                f"step_size={config.fixed_step:g} over t in [{span[0]:g}, {span[1]:g}] needs "
                f"{n_steps} steps, more than max_num_steps={config.max_num_steps}; raise step_size "
                "or max_num_steps"
            )

    # dispatch: one registry, one rule (implementation_for)
    monitored = _Monitored(field, stats, config, span)
    name = implementation_for(config, z0, times)

    # compute
    try:
        ys = IMPLEMENTATIONS[name](monitored, z0, times, config)
    # torchdiffeq signals step underflow and its own limits by assert, the native solver by
    # FloatingPointError
    except (AssertionError, FloatingPointError) as err:
        raise SolverError(
            f"the ODE solve failed (method={config.method!r}, rtol={config.rtol:g}, "
            f"atol={config.atol:g}, max_num_steps={config.max_num_steps}) over t in "
            f"[{span[0]:g}, {span[1]:g}]: {err}. {_FIXES}"
        ) from err
    finally:
        monitored.in_backward = True  # any later evaluation belongs to the backward pass

    # format
    if not _all_finite(ys):
        raise SolverError(
            f"the ODE solution contains NaN or inf (method={config.method!r}, "
            f"step_size={config.fixed_step}) over t in [{span[0]:g}, {span[1]:g}]: the vector "
            f"field is exploding. {_FIXES}"
        )
    return ODESolution(ys, times, stats, implementation=name)
