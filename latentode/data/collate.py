"""Position-aligned collation: a list of encoded series → one padded `IrregularBatch`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from latentode.data.batch import CovariateBatch, EventBatch, IrregularBatch

__all__ = ["ItemCovariates", "SeriesItem", "collate", "collate_covariates", "past_events"]


@dataclass(frozen=True, eq=False)
class ItemCovariates:
    """One series' covariates in model units (see :class:`~latentode.data.CovariateBatch`).

    Attributes:
        times: ``(m,)`` change points; ``held (m, n_held)``; ``doses (m, n_impulse)``;
        static: ``(n_static,)``.
    """

    times: torch.Tensor
    held: torch.Tensor
    doses: torch.Tensor
    static: torch.Tensor

    @classmethod
    def of(cls, covariates, dtype: torch.dtype) -> ItemCovariates:
        """A scaled :class:`~latentode.data.covariates.CovariateSeries` as tensors."""
        c = covariates
        return cls(*(torch.as_tensor(a, dtype=dtype) for a in (c.times, c.held, c.doses, c.static)))


@dataclass(frozen=True, eq=False)
class SeriesItem:
    """One encoded series, as a Dataset yields it; `collate` pads a list of them.

    Attributes:
        index: Position of the series in its dataset.
        times: ``(n_obs,)`` scaled times.
        values: ``(n_obs, n_features)``; 0 where unobserved.
        mask: ``(n_obs, n_features)`` 1.0 observed / 0.0 missing.
        event_times: ``(n_events,)`` scaled event times, or None.
        event_kinds: ``(n_events,)`` long, or None.
        covariates: The series' :class:`ItemCovariates`, or None. Conditioning and target
            splits of a series keep the whole schedule: inputs are known, not observed.
    """

    index: int
    times: torch.Tensor
    values: torch.Tensor
    mask: torch.Tensor
    event_times: torch.Tensor | None = None
    event_kinds: torch.Tensor | None = None
    covariates: ItemCovariates | None = None


def past_events(item: SeriesItem) -> SeriesItem:
    """``item`` with only the events at or before its last row (none without rows)."""
    if item.event_times is None:
        return item
    last = item.times[-1] if item.times.numel() else item.event_times.new_tensor(-torch.inf)
    past = item.event_times <= last
    return replace(item, event_times=item.event_times[past], event_kinds=item.event_kinds[past])


def _pad_repeating_last(rows: Sequence[torch.Tensor], width: int) -> torch.Tensor:
    """Stack 1-D tensors to ``(len(rows), width)``, padding each with its last value (or 0)."""
    out = torch.zeros(len(rows), width, dtype=rows[0].dtype)
    for b, row in enumerate(rows):
        n = row.shape[0]
        out[b, :n] = row
        if 0 < n < width:
            out[b, n:] = row[-1]
    return out


def collate(items: Sequence[SeriesItem]) -> IrregularBatch:
    """Pad series by position into an :class:`IrregularBatch` (a DataLoader ``collate_fn``).

    Each series keeps its own times: position ``j`` is its ``j``-th observation. Padding gets
    mask 0, value 0 and the series' last time (so Δt = 0 there). A batch therefore costs
    max-length recurrent steps, not union-of-times steps.
    """
    if len(items) == 0:
        raise ValueError("cannot collate an empty list of series")
    lengths = torch.tensor([it.times.shape[0] for it in items], dtype=torch.long)
    max_obs = int(lengths.max())
    n_features = items[0].values.shape[1]
    dtype = items[0].values.dtype
    values = torch.zeros(len(items), max_obs, n_features, dtype=dtype)
    mask = torch.zeros(len(items), max_obs, n_features, dtype=dtype)
    for b, it in enumerate(items):
        values[b, : it.times.shape[0]] = it.values
        mask[b, : it.times.shape[0]] = it.mask
    times = _pad_repeating_last([it.times for it in items], max_obs)  # (batch, max_obs)
    events = None
    if items[0].event_times is not None:
        n_events = torch.tensor([it.event_times.shape[0] for it in items], dtype=torch.long)
        width = max(int(n_events.max()), 1)
        event_times = _pad_repeating_last([it.event_times for it in items], width)
        kinds = torch.zeros(len(items), width, dtype=torch.long)
        for b, it in enumerate(items):
            kinds[b, : it.event_kinds.shape[0]] = it.event_kinds
        positions = torch.arange(width).unsqueeze(0)  # (1, width)
        event_mask = (positions < n_events.unsqueeze(1)).to(dtype)  # (batch, width)
        events = EventBatch(times=event_times, kinds=kinds, mask=event_mask)
    index = torch.tensor([it.index for it in items], dtype=torch.long)
    covariates = None
    if items[0].covariates is not None:
        covariates = collate_covariates([it.covariates for it in items])
    return IrregularBatch(
        values=values,
        mask=mask,
        times=times,
        lengths=lengths,
        events=events,
        index=index,
        covariates=covariates,
    )


def collate_covariates(items: Sequence[ItemCovariates]) -> CovariateBatch:
    """Pad series' covariates by change point into a :class:`CovariateBatch`."""
    lengths = torch.tensor([c.times.shape[0] for c in items], dtype=torch.long)
    width = max(int(lengths.max()), 1)
    first = items[0]
    held = first.held.new_zeros(len(items), width, first.held.shape[-1])
    doses = first.doses.new_zeros(len(items), width, first.doses.shape[-1])
    for b, c in enumerate(items):
        m = c.times.shape[0]
        held[b, :m] = c.held
        doses[b, :m] = c.doses
        if 0 < m < width:
            held[b, m:] = c.held[-1]
    return CovariateBatch(
        times=_pad_repeating_last([c.times for c in items], width),
        held=held,
        doses=doses,
        static=torch.stack([c.static for c in items]),
        lengths=lengths,
    )
