"""How a series is split into conditioning points and target points for training."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from latentode.data.batch import IrregularBatch
from latentode.data.collate import SeriesItem, collate

__all__ = ["TASKS", "split_items"]

TASKS = ("interpolation", "extrapolation")


def _take(item: SeriesItem, keep: torch.Tensor) -> SeriesItem:
    return SeriesItem(item.index, item.times[keep], item.values[keep], item.mask[keep])


def _interpolation(
    item: SeriesItem, fraction: float, generator: torch.Generator | None
) -> tuple[SeriesItem, SeriesItem]:
    """A random subset of the observed rows conditions; every row is a target."""
    observed = torch.nonzero(item.mask.amax(-1) > 0).flatten()  # rows with anything observed
    n_keep = max(1, round(fraction * observed.numel()))
    chosen = observed[torch.randperm(observed.numel(), generator=generator)[:n_keep]]
    keep = torch.zeros(item.times.shape[0], dtype=torch.bool)
    keep[chosen] = True
    return _take(item, keep), item


def _extrapolation(item: SeriesItem, cut: float) -> tuple[SeriesItem, SeriesItem]:
    """Rows before ``cut`` (a fraction of the series' own span) condition, the rest are targets."""
    t = item.times
    t_cut = t[0] + cut * (t[-1] - t[0])
    before = t < t_cut
    observed = item.mask.amax(-1) > 0
    if not bool((before & observed).any()) or not bool((~before & observed).any()):
        raise ValueError(
            f"an extrapolation cut at {cut:g} of its span leaves series #{item.index} with no "
            f"{'conditioning' if not bool((before & observed).any()) else 'target'} points; "
            "pick extrap_cut strictly inside (0, 1), or drop series with fewer than two "
            "observation times"
        )
    return _take(item, before), _take(item, ~before)


def split_items(
    items: Sequence[SeriesItem],
    task: str,
    *,
    cond_fraction: float,
    extrap_cut: float,
    generator: torch.Generator | None,
) -> tuple[IrregularBatch, IrregularBatch]:
    """``(conditioning batch, target batch)`` for a list of series, same series order in both.

    ``generator`` draws the interpolation subsets; None uses torch's global RNG.
    """
    if task == "interpolation":
        pairs = [_interpolation(it, cond_fraction, generator) for it in items]
    else:
        pairs = [_extrapolation(it, extrap_cut) for it in items]
    return collate([c for c, _ in pairs]), collate([t for _, t in pairs])
