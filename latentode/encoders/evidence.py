"""What an encoder reads besides the values: known inputs, static features, past events.

At each position of a conditioning batch (:class:`~latentode.encoders.Encoder` walks them
backwards), the held inputs in force there and the doses given since the previous position;
per series, its static features; and, for a model fitted on explicit events, each kind's count
of events since the previous position. Positions where only doses or events happened (nothing
observed) are read too, so no evidence is dropped. A change acts at its instant: a dose at an
observation's time counts there.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from latentode.data.batch import IrregularBatch

__all__ = ["Evidence", "event_evidence", "evidence"]


@dataclass(frozen=True)
class Evidence:
    """The encoder's extra reads for one batch; None where there is nothing to read.

    Attributes:
        static: ``(batch, n_static)`` the series' static features.
        inputs: ``(batch, max_obs, n)`` per position: held inputs, doses since the previous
            position, then ``log1p`` event counts per kind.
        present: ``(batch, max_obs)`` bool, positions to read although nothing was observed.
    """

    static: torch.Tensor | None = None
    inputs: torch.Tensor | None = None
    present: torch.Tensor | None = None


def evidence(cond: IrregularBatch, *, static: bool, inputs: bool, event_kinds: int = 0) -> Evidence:
    """The extra reads of ``cond``: its static features (``static``), its known inputs
    (``inputs``) and its past events of ``event_kinds`` kinds (0: none)."""
    cov = cond.covariates
    parts, present, own = [], None, None
    if cov is not None and static:
        own = cov.static.to(cond.values.dtype)
    if cov is not None and inputs:
        given = cov.doses_until(cond.times)  # (batch, max_obs, n_impulse)
        since = given - torch.cat([torch.zeros_like(given[:, :1]), given[:, :-1]], dim=1)
        parts += [cov.held_at(cond.times), since]
        present = (since != 0).any(-1)
    if event_kinds:
        counts, happened = event_evidence(cond, event_kinds)
        parts.append(counts)
        present = happened if present is None else present | happened
    return Evidence(own, torch.cat(parts, dim=-1) if parts else None, present)


def event_evidence(cond: IrregularBatch, n_kinds: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each position's events since the previous position: ``log1p`` counts and presence.

    An event at time ``e`` counts at the first position at or after it; events after a
    series' last position are not the conditioning points' past, and are not read.

    Returns:
        ``(batch, max_obs, n_kinds)`` ``log1p`` of the counts, and ``(batch, max_obs)`` bool,
        True where any event counts.
    """
    events = cond.events
    if events is None:
        raise ValueError(
            "this model reads each series' past events (event_inputs), and the batch carries "
            "none; give the events with the observations"
        )
    batch, max_obs = cond.times.shape
    times = cond.times.contiguous()
    position = torch.searchsorted(times, events.times.to(times.dtype).contiguous())  # (B, E)
    real = (events.mask > 0) & (position < cond.lengths[:, None])
    slot = position.clamp(max=max_obs - 1) * n_kinds + events.kinds.clamp(max=n_kinds - 1)
    counts = cond.values.new_zeros(batch, max_obs * n_kinds)
    counts = counts.scatter_add(1, slot, real.to(counts.dtype)).view(batch, max_obs, n_kinds)
    return torch.log1p(counts), counts.sum(-1) > 0
