"""`PoissonHead`: event intensities λ_k(z(t)), their log-likelihood, and sampling by thinning.

A series' events of kinds ``k = 1..K`` on a window ``[t_start, t_end]`` are an inhomogeneous
Poisson process whose intensity is read from the latent path (Rubanova et al. 2019, §3.4)::

    λ_k(t) = softplus(g_k(z(t))),
    log p(events) = Σ_i log λ_{k_i}(t_i) − Σ_k ∫_{t_start}^{t_end} λ_k(t) dt.

The integral (the compensator) is not computed here: the decoder carries ``Λ(t) = ∫_0^t λ`` as
the second part of a tuple ODE state (:class:`~latentode.core.IntegralField`), so event times
are output times of the one solve that also gives the path.

Why softplus and not exp: both are positive and smooth, but exp turns a moderately large
``g`` into an enormous rate, which makes the compensator's ODE stiff and its gradient (λ itself)
explode early in training. Softplus grows linearly, is 1-Lipschitz in ``g`` (so the intensity
cannot jump between the grid points used to bound it when sampling), and still reaches rates
near 0 (``softplus(g) ≈ e^g`` for very negative ``g``). Its log is computed stably below.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from latentode._validation import check_int, check_real

__all__ = [
    "IntensityBoundError",
    "PoissonHead",
    "ThinningResult",
    "log_softplus",
    "poisson_log_likelihood",
    "sample_thinning",
]


def log_softplus(x: torch.Tensor) -> torch.Tensor:
    """``log(softplus(x))``, finite and accurate far below 0 where ``softplus(x)`` underflows.

    Below -20, ``log(log1p(e^x)) = x - e^x / 2 + O(e^{2x})`` (error under 1e-17).
    """
    tail = x < -20.0
    safe = torch.where(tail, torch.zeros_like(x), x)  # keeps the unused branch finite
    return torch.where(
        tail, x - 0.5 * torch.exp(torch.clamp(x, max=-20.0)), torch.log(F.softplus(safe))
    )


class PoissonHead(nn.Module):
    """Intensities ``λ_k(z) = softplus(g_k(z))`` of ``n_kinds`` event kinds from a latent state.

    Args:
        latent_dim: Size of ``z``.
        n_kinds: Event kinds ``K`` (one intensity each).
        hidden: Width of the one hidden layer of ``g``. Default 32.

    Example:
        >>> head = PoissonHead(latent_dim=4, n_kinds=2)
        >>> head(torch.zeros(5, 4)).shape
        torch.Size([5, 2])
    """

    def __init__(self, latent_dim: int, n_kinds: int, *, hidden: int = 32) -> None:
        super().__init__()
        self.latent_dim = check_int("latent_dim", latent_dim, minimum=1)
        self.n_kinds = check_int("n_kinds", n_kinds, minimum=1)
        hidden = check_int("hidden", hidden, minimum=1)
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.Tanh(), nn.Linear(hidden, n_kinds)
        )
        # Saved with the weights, so a trained or reloaded head is never re-initialised.
        self.register_buffer("rates_initialised", torch.tensor(False))

    @torch.no_grad()
    def init_rates(self, rates: torch.Tensor | Sequence[float]) -> None:
        """Start each ``λ_k`` near ``rates[k]`` (e.g. the training data's mean event rates).

        Sets the output bias to ``softplus⁻¹(rate)``. Without it, every rate starts near
        ``softplus(0) ≈ 0.69`` per model time unit, and a process with hundreds of events per
        window needs thousands of optimiser steps just to reach its level.
        """
        rates = torch.as_tensor(rates, dtype=torch.float64).reshape(-1)
        if rates.shape != (self.n_kinds,):
            raise ValueError(f"`rates` must hold {self.n_kinds} rates; got {rates.numel()}")
        if not bool(torch.isfinite(rates).all()) or bool((rates <= 0).any()):
            raise ValueError(f"`rates` must be finite and > 0; got {rates.tolist()}")
        inverse = rates + torch.log(-torch.expm1(-rates))  # softplus⁻¹
        output = self.net[-1]
        output.bias.copy_(inverse.to(output.bias.dtype))
        self.rates_initialised.fill_(True)

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        """``g(z)``: ``(..., latent) -> (..., n_kinds)``."""
        return self.net(z)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Intensities ``λ(z)``: ``(..., latent) -> (..., n_kinds)``, all > 0."""
        return F.softplus(self.logits(z))

    def log_intensity(self, z: torch.Tensor) -> torch.Tensor:
        """``log λ(z)``, finite even where ``λ`` underflows: ``(..., latent) -> (..., n_kinds)``."""
        return log_softplus(self.logits(z))


def poisson_log_likelihood(
    log_intensity: torch.Tensor, counts: torch.Tensor, compensator: torch.Tensor
) -> torch.Tensor:
    """``Σ_{i,k} counts · log λ_k(t_i) − Σ_k ∫ λ_k``, per series.

    Args:
        log_intensity: ``(..., batch, n_times, K)`` ``log λ`` at the candidate event times.
        counts: ``(batch, n_times, K)`` events of kind ``k`` at time ``i`` (0 or more). Where it
            is 0, ``log_intensity`` is never read, so padding and unobserved entries cannot
            influence the result (not even as NaN or inf).
        compensator: ``(..., batch, K)`` ``∫ λ_k`` over each series' window.

    Returns:
        ``(..., batch)`` log-likelihoods.
    """
    if counts.shape != log_intensity.shape[-3:]:
        raise ValueError(
            f"`counts` must be (batch, n_times, K) = {tuple(log_intensity.shape[-3:])}; got "
            f"{tuple(counts.shape)}"
        )
    if compensator.shape[-1] != counts.shape[-1]:
        raise ValueError(
            f"`compensator` must end in K = {counts.shape[-1]}; got {tuple(compensator.shape)}"
        )
    counts = counts.to(log_intensity.dtype)
    read = torch.where(counts > 0, log_intensity, torch.zeros_like(log_intensity))
    return (read * counts).sum(dim=(-1, -2)) - compensator.sum(-1)


# -- sampling by thinning ----------------------------------------------------------------------


class IntensityBoundError(RuntimeError):
    """Thinning found the intensity above its upper bound, even on the finest grid allowed."""


@dataclass(frozen=True)
class ThinningResult:
    """Events drawn by :func:`sample_thinning`.

    Attributes:
        times: One sorted ``(n_events,)`` float array per trajectory.
        kinds: One ``(n_events,)`` int array of kind indices per trajectory.
        refinements: ``(n_trajectories,)`` how often each trajectory's bound was refined.
    """

    times: list[np.ndarray]
    kinds: list[np.ndarray]
    refinements: np.ndarray


def sample_thinning(
    intensity: Callable[[np.ndarray, np.ndarray], np.ndarray],
    t_start: float | np.ndarray,
    t_end: float | np.ndarray,
    rngs: Sequence[np.random.Generator],
    *,
    n_grid: int = 64,
    margin: float = 0.25,
    max_refinements: int = 6,
) -> ThinningResult:
    """Event times of inhomogeneous Poisson processes, by thinning (Lewis & Shedler, 1979).

    For each trajectory, the total intensity ``Σ_k λ_k`` is bounded on each cell of a grid over
    ``[t_start, t_end]`` by ``(1 + margin) · max(λ at the cell's ends) + margin · mean λ``.
    Candidates are drawn from the homogeneous process of that piecewise-constant bound and each
    is kept with probability ``λ(t) / bound``; a kept event's kind is drawn with probability
    ``λ_k(t) / Σ_k λ_k(t)``.

    The bound is checked, not trusted: if the intensity at any candidate, or at a random probe
    point drawn in every cell, exceeds its cell's bound, that trajectory's draw is thrown away
    and redone on a grid twice as fine with twice the margin. After ``max_refinements`` failed
    refinements, :class:`IntensityBoundError` is raised; a draw under a wrong bound is never
    returned. (A spike narrower than the grid that no candidate or probe lands on cannot be
    seen by any sampler that only evaluates λ pointwise; the margin, the probes and the
    refinement make that unlikely, not impossible.)

    Args:
        intensity: ``intensity(rows, times)`` with ``rows`` ``(p,)`` trajectory indices and
            ``times`` ``(p, n)`` → ``(p, n, K)`` intensities ≥ 0.
        t_start, t_end: Window of each trajectory (scalars or ``(n_trajectories,)``).
        rngs: One numpy Generator per trajectory (so a trajectory's events do not depend on
            which others are drawn with it).
        n_grid: Cells of the first bounding grid. Default 64.
        margin: Relative slack of the first bound. Default 0.25.
        max_refinements: Refinements allowed before giving up. Default 6.

    Returns:
        :class:`ThinningResult`.
    """
    n = len(rngs)
    check_int("n_grid", n_grid, minimum=1)
    check_real("margin", margin, positive=True)
    check_int("max_refinements", max_refinements, minimum=0)
    t0 = np.broadcast_to(np.asarray(t_start, dtype=np.float64), (n,))
    t1 = np.broadcast_to(np.asarray(t_end, dtype=np.float64), (n,))
    if not (np.isfinite(t0).all() and np.isfinite(t1).all()) or (t1 < t0).any():
        raise ValueError("thinning windows must be finite with t_end >= t_start")
    times: list[np.ndarray] = [np.empty(0)] * n
    kinds: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * n
    refinements = np.zeros(n, dtype=np.int64)
    pending = np.arange(n)
    cells, slack = n_grid, margin
    for attempt in range(max_refinements + 1):
        pending = _thin_once(intensity, pending, t0, t1, rngs, cells, slack, times, kinds)
        if pending.size == 0:
            return ThinningResult(times, kinds, refinements)
        if attempt == max_refinements:
            break
        refinements[pending] += 1
        cells, slack = cells * 2, slack * 2
    raise IntensityBoundError(
        f"the intensity of {pending.size} trajectories exceeded its upper bound even on a "
        f"{cells}-cell grid with margin {slack:g} (after {max_refinements} refinements); the "
        "intensity is too rough for thinning at this resolution. Raise n_grid or "
        "max_refinements"
    )


def _thin_once(
    intensity: Callable[[np.ndarray, np.ndarray], np.ndarray],
    rows: np.ndarray,
    t0: np.ndarray,
    t1: np.ndarray,
    rngs: Sequence[np.random.Generator],
    n_cells: int,
    margin: float,
    times: list[np.ndarray],
    kinds: list[np.ndarray],
) -> np.ndarray:
    """One thinning pass over ``rows``; fills ``times``/``kinds``, returns rows to redo."""
    fractions = np.linspace(0.0, 1.0, n_cells + 1)
    width = t1[rows] - t0[rows]  # (p,)
    grid = t0[rows, None] + width[:, None] * fractions  # (p, n_cells + 1)
    total = _total(intensity(rows, grid), grid.shape)  # (p, n_cells + 1)
    bound = np.maximum(total[:, :-1], total[:, 1:]) * (1.0 + margin)
    bound += margin * total.mean(axis=1, keepdims=True) + 1e-12  # (p, n_cells)
    h = width / n_cells
    proposals = []
    cells = np.arange(n_cells)
    for j, row in enumerate(rows):
        rng = rngs[row]
        counts = rng.poisson(bound[j] * h[j])
        cell = np.repeat(cells, counts)
        t = grid[j, cell] + rng.random(cell.size) * h[j]
        order = np.argsort(t, kind="stable")
        # Probes: one random point per cell, checked against the bound like the candidates,
        # so a bound that is too low is caught even in a cell that drew no candidate.
        probes = grid[j, :-1] + rng.random(n_cells) * h[j]
        proposals.append(
            (cell[order], t[order], rng.random(cell.size), rng.random(cell.size), probes)
        )
    longest = max(p[1].size for p in proposals) + n_cells
    padded = np.repeat(t1[rows, None], longest, axis=1)  # pad with the window end
    for j, (_, t, _, _, probes) in enumerate(proposals):
        padded[j, : t.size + n_cells] = np.concatenate([t, probes])
    lam = np.asarray(intensity(rows, padded), dtype=np.float64)  # (p, longest, K)
    total_at = _total(lam, padded.shape)
    redo = []
    for j, (row, (cell, t, u, v, _)) in enumerate(zip(rows, proposals, strict=True)):
        tot = total_at[j, : t.size]
        probed = total_at[j, t.size : t.size + n_cells]
        if (tot > bound[j, cell]).any() or (probed > bound[j]).any():
            redo.append(row)
            continue
        keep = u * bound[j, cell] < tot
        cumulative = np.cumsum(lam[j, : t.size][keep], axis=-1)  # (n_kept, K)
        share = v[keep, None] * cumulative[:, -1:]
        times[row] = t[keep]
        kinds[row] = np.minimum((cumulative <= share).sum(-1), lam.shape[-1] - 1)
    return np.asarray(redo, dtype=np.int64)


def _total(lam: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    lam = np.asarray(lam, dtype=np.float64)
    if lam.ndim != 3 or lam.shape[:2] != shape:
        raise ValueError(
            f"`intensity` must return (rows, times, K) = {(*shape, 'K')}; got {lam.shape}"
        )
    if not np.isfinite(lam).all() or (lam < 0).any():
        raise ValueError("`intensity` returned negative, NaN or inf values")
    return lam.sum(-1)
