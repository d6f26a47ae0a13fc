"""How a series is split into conditioning points and target points for training."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch

from latentode.data.batch import IrregularBatch
from latentode.data.collate import SeriesItem, collate, past_events

__all__ = ["TASKS", "split_items"]

TASKS = ("interpolation", "extrapolation")


def _take(item: SeriesItem, keep: torch.Tensor) -> SeriesItem:
    """The rows ``keep`` of a series as conditioning points, with its events up to the last.

    The events at or before the last kept row are evidence the encoder may read (a model
    built with ``event_inputs``); later ones are the future. Covariates stay whole: inputs
    are known over the series' window, not observed.
    """
    return past_events(
        replace(item, times=item.times[keep], values=item.values[keep], mask=item.mask[keep])
    )


def _target(item: SeriesItem, keep: torch.Tensor | None = None) -> SeriesItem:
    """The rows ``keep`` of a series (default: all) as targets, with the events in their window.

    The Poisson likelihood of a target runs over its own span, so events before its first or
    after its last time are left to the conditioning part of the split (as its points are).
    """
    if keep is not None:
        item = replace(item, times=item.times[keep], values=item.values[keep], mask=item.mask[keep])
    if item.event_times is None:
        return item
    inside = (item.event_times >= item.times[0]) & (item.event_times <= item.times[-1])
    return replace(item, event_times=item.event_times[inside], event_kinds=item.event_kinds[inside])


def _interpolation(
    item: SeriesItem, fraction: float, generator: torch.Generator | None, held_out: bool = False
) -> tuple[SeriesItem, SeriesItem]:
    """A random subset of the observed rows conditions; every row is a target.

    With ``held_out``, the conditioning rows are masked out of the target, so it scores only
    points the model did not see: what a user measures when they fill gaps. The target keeps
    every row's time (its window, for a Poisson head, stays the series' own).
    """
    observed = torch.nonzero(item.mask.amax(-1) > 0).flatten()  # rows with anything observed
    n_keep = max(1, round(fraction * observed.numel()))
    chosen = observed[torch.randperm(observed.numel(), generator=generator)[:n_keep]]
    keep = torch.zeros(item.times.shape[0], dtype=torch.bool)
    keep[chosen] = True
    target = _target(item)
    if held_out:
        hidden = target.mask * (~keep).unsqueeze(-1).to(target.mask.dtype)  # (n_obs, features)
        target = replace(target, values=target.values * hidden, mask=hidden)
    return _take(item, keep), target


def _extrapolation(
    item: SeriesItem, cut: float, fraction: float, generator: torch.Generator | None
) -> tuple[SeriesItem, SeriesItem]:
    """Rows before ``cut`` (a share of the series' observed span) condition, the rest are targets.

    The span is that of the observed rows: all-missing rows (e.g. those that widen a window to
    events after the last observation) never move the cut past the observations. With
    ``fraction < 1``, a random share of the observed rows before the cut condition.
    """
    t = item.times
    observed = item.mask.amax(-1) > 0
    seen = t[observed] if bool(observed.any()) else t
    t_cut = seen[0] + cut * (seen[-1] - seen[0])
    before = t < t_cut
    if not bool((before & observed).any()) or not bool((~before & observed).any()):
        raise ValueError(
            f"an extrapolation cut at {cut:g} of its span leaves series #{item.index} with no "
            f"{'conditioning' if not bool((before & observed).any()) else 'target'} points; "
            "pick extrap_cut strictly inside (0, 1), or drop series with fewer than two "
            "observation times"
        )
    cond = _take(item, before)
    if fraction < 1:
        cond = _interpolation(cond, fraction, generator)[0]
    return cond, _target(item, ~before)


def _fractions(
    cond_fraction: float | tuple[float, float], n: int, generator: torch.Generator | None
) -> list[float]:
    """One conditioning share per series: the given one, or uniform in a ``(low, high)`` range."""
    if isinstance(cond_fraction, tuple | list):
        low, high = cond_fraction
        draws = torch.rand(n, generator=generator, dtype=torch.float64)
        return (low + (high - low) * draws).tolist()
    return [float(cond_fraction)] * n


def split_items(
    items: Sequence[SeriesItem],
    task: str,
    *,
    cond_fraction: float | tuple[float, float],
    extrap_cut: float,
    generator: torch.Generator | None,
    held_out: bool = False,
) -> tuple[IrregularBatch, IrregularBatch]:
    """``(conditioning batch, target batch)`` for a list of series, same series order in both.

    ``cond_fraction`` is the share of points that condition, or a ``(low, high)`` range from
    which each series draws its own share: a model trained on one share learns to expect that
    many points and degrades when given more (or fewer) at prediction time. ``generator``
    draws the shares and the subsets; None uses torch's global RNG. With ``held_out``,
    interpolation targets score only the points that do not condition (extrapolation targets
    never include them).
    """
    shares = _fractions(cond_fraction, len(items), generator)
    if task == "interpolation":
        pairs = [
            _interpolation(it, f, generator, held_out) for it, f in zip(items, shares, strict=True)
        ]
    else:
        pairs = [
            _extrapolation(it, extrap_cut, f, generator)
            for it, f in zip(items, shares, strict=True)
        ]
    return collate([c for c, _ in pairs]), collate([t for _, t in pairs])
