"""`IrregularBatch`: the one batch schema every model part reads."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = ["CovariateBatch", "EventBatch", "IrregularBatch", "UnionGrid", "union_grid"]


def _move(t: torch.Tensor | None, device, dtype) -> torch.Tensor | None:
    if t is None:
        return None
    if t.is_floating_point() and dtype is not None:
        return t.to(device=device, dtype=dtype)
    return t.to(device=device)


@dataclass(eq=False)
class EventBatch:
    """Padded event streams of a batch (for the Poisson-process head).

    A plain (not frozen) dataclass for the reason given on :class:`IrregularBatch`.

    Attributes:
        times: ``(batch, max_events)`` scaled event times, sorted within each series; padding
            repeats the series' last event time (0 for a series without events).
        kinds: ``(batch, max_events)`` long, event kind index; 0 at padding.
        mask: ``(batch, max_events)`` 1.0 for a real event, 0.0 for padding (dtype of ``times``).
    """

    times: torch.Tensor
    kinds: torch.Tensor
    mask: torch.Tensor

    def __post_init__(self) -> None:
        if self.times.ndim != 2 or self.kinds.shape != self.times.shape:
            raise ValueError(
                "event `times` and `kinds` must both be (batch, max_events); got "
                f"{tuple(self.times.shape)} and {tuple(self.kinds.shape)}"
            )
        if self.mask.shape != self.times.shape:
            raise ValueError(
                f"event `mask` must be {tuple(self.times.shape)}; got {tuple(self.mask.shape)}"
            )

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> EventBatch:
        """Move to ``device``; ``dtype`` applies to the floating tensors only."""
        return EventBatch(*(_move(t, device, dtype) for t in (self.times, self.kinds, self.mask)))


@dataclass(eq=False)
class CovariateBatch:
    """Padded covariates of a batch: static features and known inputs' change points.

    A plain (not frozen) dataclass for the reason given on :class:`IrregularBatch`.

    Attributes:
        times: ``(batch, m)`` scaled change points, strictly increasing within each series;
            padding repeats the series' last one (``m ≥ 1``; a series without inputs has
            none: length 0).
        held: ``(batch, m, n_held)`` held inputs in force from each change point on (scaled).
        doses: ``(batch, m, n_impulse)`` impulse amounts at each change point (scaled); 0 at
            padding.
        static: ``(batch, n_static)`` static features (scaled).
        lengths: ``(batch,)`` long, change points per series.
    """

    times: torch.Tensor
    held: torch.Tensor
    doses: torch.Tensor
    static: torch.Tensor
    lengths: torch.Tensor

    @property
    def n_held(self) -> int:
        return int(self.held.shape[-1])

    @property
    def n_impulse(self) -> int:
        return int(self.doses.shape[-1])

    @property
    def n_static(self) -> int:
        return int(self.static.shape[-1])

    def _tensors(self) -> tuple[torch.Tensor, ...]:
        return (self.times, self.held, self.doses, self.static, self.lengths)

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> CovariateBatch:
        """Move to ``device``; ``dtype`` applies to the floating tensors only."""
        return CovariateBatch(*(_move(t, device, dtype) for t in self._tensors()))

    def select(self, rows: torch.Tensor) -> CovariateBatch:
        return CovariateBatch(*(t[rows] for t in self._tensors()))

    def pin_memory(self) -> CovariateBatch:
        return CovariateBatch(
            *(
                t.pin_memory()
                for t in (self.times, self.held, self.doses, self.static, self.lengths)
            )
        )

    @property
    def valid(self) -> torch.Tensor:
        """``(batch, m)`` bool: the real change points (not padding)."""
        m = self.times.shape[1]
        return torch.arange(m, device=self.times.device) < self.lengths[:, None]

    def _last_change(self, times: torch.Tensor) -> torch.Tensor:
        """``(batch, n)`` long: the latest change point at or before each of ``times``.

        Times before a series' first change point get its first (the caller checks that
        inputs are known there).
        """
        change = torch.where(self.valid, self.times, torch.inf).to(times.dtype).contiguous()
        after = torch.searchsorted(change, times.contiguous(), right=True)  # (batch, n)
        return (after - 1).clamp(min=0)

    def held_at(self, times: torch.Tensor) -> torch.Tensor:
        """``times (batch, n)`` → ``(batch, n, n_held)``: the held inputs in force at each."""
        index = self._last_change(times)
        return self.held.gather(1, index[..., None].expand(-1, -1, self.n_held))

    def doses_until(self, times: torch.Tensor) -> torch.Tensor:
        """``times (batch, n)`` → ``(batch, n, n_impulse)``: doses given at or before each."""
        # (batch, n, m): change point k at or before time j
        given = (self.times[:, None, :] <= times[..., None]) & self.valid[:, None, :]
        return given.to(self.doses.dtype) @ self.doses  # (batch, n, n_impulse)

    def at_zero(self) -> tuple[torch.Tensor, torch.Tensor]:
        """What holds at time 0 (a series' first observation): ``(c, doses)``.

        ``c (batch, n_held + n_static)``: the held inputs in force from 0 on and the static
        features; ``doses (batch, n_impulse)``: the doses given at exactly 0 (a change acts
        at its instant, so they act on the state at 0).
        """
        zero = self.times.new_zeros(self.times.shape[0], 1)
        c = torch.cat([self.held_at(zero)[:, 0], self.static], dim=-1)
        exactly = ((self.times == 0) & self.valid).to(self.doses.dtype)  # (batch, m)
        return c, (exactly[:, None, :] @ self.doses)[:, 0]


@dataclass(frozen=True)
class UnionGrid:
    """The sorted union of a batch's times, and where each series' own times sit on it.

    Solve once over ``times`` (shared by the whole batch), then :meth:`gather` each series' own
    times back out of the solution.

    Attributes:
        times: ``(n_union,)`` sorted, unique.
        index: ``(batch, max_obs)`` long, ``times[index[b, j]] == batch.times[b, j]``.
    """

    times: torch.Tensor
    index: torch.Tensor

    def gather(self, trajectory: torch.Tensor) -> torch.Tensor:
        """``(..., batch, n_union, d) -> (..., batch, max_obs, d)``: each series at its times."""
        if trajectory.ndim < 3 or trajectory.shape[-2] != self.times.shape[0]:
            raise ValueError(
                "`trajectory` must be (..., batch, n_union, d) with "
                f"n_union={self.times.shape[0]}; got {tuple(trajectory.shape)}"
            )
        if trajectory.shape[-3] != self.index.shape[0]:
            raise ValueError(
                f"`trajectory` has batch size {trajectory.shape[-3]}, the grid "
                f"{self.index.shape[0]}"
            )
        lead = trajectory.shape[:-3]
        batch, max_obs = self.index.shape
        d = trajectory.shape[-1]
        # (batch, max_obs) -> (..., batch, max_obs, d), to gather along the time axis
        idx = self.index.unsqueeze(-1).expand(*lead, batch, max_obs, d)
        return torch.gather(trajectory, -2, idx)


@dataclass(eq=False)
class IrregularBatch:
    """A padded batch of irregular series, aligned by position, not by time.

    Position ``j`` of series ``b`` is that series' ``j``-th observation time. Padding
    (``j >= lengths[b]``) has mask 0, value 0 and repeats the series' last time, so the
    step Δt into a padding position is 0 and a recurrent encoder leaves the state unchanged.

    Treat a batch as immutable: every method returns a new one. It is nevertheless a plain
    (not frozen) dataclass, because that is what Lightning's ``apply_to_collection`` rebuilds
    when it casts a batch's floating tensors (``Trainer(precision="64-true")``, ``"bf16-true"``)
    or moves predictions back to the CPU: it copies the object and sets each field in turn,
    which a frozen dataclass refuses. Equality and hashing are by identity (``eq=False``), as
    tensors have no single truth value to compare by.

    Attributes:
        values: ``(batch, max_obs, n_features)`` observed values; 0 where ``mask`` is 0.
        mask: ``(batch, max_obs, n_features)`` 1.0 = observed, 0.0 = missing or padding;
            the same floating dtype as ``values``. The only record of missingness.
        times: ``(batch, max_obs)`` scaled times, non-decreasing along each row.
        lengths: ``(batch,)`` long, observation times per series (≥ 1).
        events: Optional :class:`EventBatch` of event streams.
        covariates: Optional :class:`CovariateBatch`: static features and known inputs.
        index: Optional ``(batch,)`` long, each series' position in its dataset, to map results
            back to ids and time origins.
    """

    values: torch.Tensor
    mask: torch.Tensor
    times: torch.Tensor
    lengths: torch.Tensor
    events: EventBatch | None = None
    index: torch.Tensor | None = None
    covariates: CovariateBatch | None = None

    def __post_init__(self) -> None:
        # Shape checks only: they are free; content checks would sync a GPU on every .to().
        if self.values.ndim != 3:
            raise ValueError(
                "`values` must be (batch, max_obs, n_features); "
                f"got shape {tuple(self.values.shape)}"
            )
        if self.mask.shape != self.values.shape:
            raise ValueError(
                f"`mask` must match `values` {tuple(self.values.shape)}; "
                f"got {tuple(self.mask.shape)}"
            )
        if self.times.shape != self.values.shape[:2]:
            raise ValueError(
                f"`times` must be (batch, max_obs) = {tuple(self.values.shape[:2])}; "
                f"got {tuple(self.times.shape)}"
            )
        if self.lengths.shape != self.values.shape[:1]:
            raise ValueError(
                f"`lengths` must be (batch,) = {tuple(self.values.shape[:1])}; "
                f"got {tuple(self.lengths.shape)}"
            )
        if self.index is not None and self.index.shape != self.lengths.shape:
            raise ValueError(
                f"`index` must be (batch,) = {tuple(self.lengths.shape)}; "
                f"got {tuple(self.index.shape)}"
            )
        if self.events is not None and self.events.times.shape[0] != self.values.shape[0]:
            raise ValueError(
                f"`events` cover {self.events.times.shape[0]} series, the batch "
                f"{self.values.shape[0]}"
            )
        if self.covariates is not None and self.covariates.static.shape[0] != self.batch_size:
            raise ValueError(
                f"`covariates` cover {self.covariates.static.shape[0]} series, the batch "
                f"{self.values.shape[0]}"
            )

    @property
    def batch_size(self) -> int:
        return int(self.values.shape[0])

    @property
    def max_obs(self) -> int:
        return int(self.values.shape[1])

    @property
    def n_features(self) -> int:
        return int(self.values.shape[2])

    @property
    def device(self) -> torch.device:
        return self.values.device

    @property
    def position_mask(self) -> torch.Tensor:
        """``(batch, max_obs)`` bool, True at real (non-padding) positions."""
        positions = torch.arange(self.max_obs, device=self.lengths.device)
        return positions.unsqueeze(0) < self.lengths.unsqueeze(1)

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> IrregularBatch:
        """Move to ``device``; ``dtype`` converts the floating tensors (values, mask, times)."""
        return IrregularBatch(
            values=_move(self.values, device, dtype),
            mask=_move(self.mask, device, dtype),
            times=_move(self.times, device, dtype),
            lengths=_move(self.lengths, device, None),
            events=None if self.events is None else self.events.to(device, dtype),
            index=_move(self.index, device, None),
            covariates=None if self.covariates is None else self.covariates.to(device, dtype),
        )

    def pin_memory(self) -> IrregularBatch:
        """Page-locked copy, so a DataLoader with ``pin_memory=True`` can copy asynchronously."""
        pinned = {
            f.name: getattr(self, f.name).pin_memory()
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        if self.events is not None:
            pinned["events"] = EventBatch(
                self.events.times.pin_memory(),
                self.events.kinds.pin_memory(),
                self.events.mask.pin_memory(),
            )
        if self.covariates is not None:
            pinned["covariates"] = self.covariates.pin_memory()
        return dataclasses.replace(self, **pinned)

    def select(self, rows: torch.Tensor | Sequence[int]) -> IrregularBatch:
        """The sub-batch of series ``rows`` (padding is kept at the batch's max_obs)."""
        rows = torch.as_tensor(rows, dtype=torch.long, device=self.lengths.device)
        events = self.events
        if events is not None:
            events = EventBatch(events.times[rows], events.kinds[rows], events.mask[rows])
        return IrregularBatch(
            values=self.values[rows],
            mask=self.mask[rows],
            times=self.times[rows],
            lengths=self.lengths[rows],
            events=events,
            index=None if self.index is None else self.index[rows],
            covariates=None if self.covariates is None else self.covariates.select(rows),
        )

    def distance_to_observed(self, times: torch.Tensor) -> torch.Tensor:
        """How far each of ``times`` is from the series' nearest observation, per feature.

        Args:
            times: ``(batch, n_times)`` in the batch's time units.

        Returns:
            ``(batch, n_times, n_features)``: the distance to the nearest time at which that
            feature is observed in that series (padding and masked entries never count); for
            a feature the series never observed, the distance to its nearest observation of
            any feature.
        """
        if times.ndim != 2 or times.shape[0] != self.batch_size:
            raise ValueError(
                f"`times` must be (batch, n_times) with batch={self.batch_size}; got "
                f"{tuple(times.shape)}"
            )
        gaps = (times.unsqueeze(-1) - self.times.unsqueeze(1)).abs()  # (batch, n_times, max_obs)
        observed = self.mask > 0  # (batch, max_obs, n_features)
        anything = observed.any(-1) & self.position_mask  # (batch, max_obs)
        inf = torch.full_like(gaps, math.inf)
        nearest_any = torch.where(anything.unsqueeze(1), gaps, inf).amin(-1)  # (batch, n_times)
        out = []
        for f in range(self.n_features):  # one feature at a time: (batch, n_times, max_obs)
            seen = (observed[..., f] & self.position_mask).unsqueeze(1)
            out.append(torch.where(seen, gaps, inf).amin(-1))
        distance = torch.stack(out, dim=-1)  # (batch, n_times, n_features)
        return torch.where(torch.isinf(distance), nearest_any.unsqueeze(-1), distance)

    def outside_window(self, times: torch.Tensor) -> torch.Tensor:
        """``(batch, n_times)`` bool: each of ``times (batch, n_times)`` lies before the
        series' first observation or after its last (padding and empty rows never count)."""
        if times.ndim != 2 or times.shape[0] != self.batch_size:
            raise ValueError(
                f"`times` must be (batch, n_times) with batch={self.batch_size}; got "
                f"{tuple(times.shape)}"
            )
        anything = (self.mask > 0).any(-1) & self.position_mask  # (batch, max_obs)
        inf = torch.full_like(self.times, math.inf)
        first = torch.where(anything, self.times, inf).amin(-1, keepdim=True)  # (batch, 1)
        last = torch.where(anything, self.times, -inf).amax(-1, keepdim=True)
        return (times < first) | (times > last)

    def union_grid(self, include: torch.Tensor | Sequence[float] | None = None) -> UnionGrid:
        """Sorted union of the batch's times (plus ``include``, e.g. a shared start time 0).

        Padding repeats real times, so it adds no grid points. A decoder solves once on
        ``grid.times`` and reads each series' own times with ``grid.gather``.
        """
        return union_grid(self.times, include)


def union_grid(
    times: torch.Tensor, include: torch.Tensor | Sequence[float] | None = None
) -> UnionGrid:
    """The :class:`UnionGrid` of ``times (batch, n_times)``, plus the extra times ``include``."""
    if times.ndim != 2:
        raise ValueError(f"`times` must be (batch, n_times); got shape {tuple(times.shape)}")
    flat = times.reshape(-1)  # (batch * n_times,)
    n_extra = 0
    if include is not None:
        extra = torch.as_tensor(include, dtype=flat.dtype, device=flat.device).reshape(-1)
        n_extra = extra.numel()
        flat = torch.cat([flat, extra])
    union, inverse = torch.unique(flat, sorted=True, return_inverse=True)
    n_obs = inverse.numel() - n_extra
    return UnionGrid(times=union, index=inverse[:n_obs].reshape(times.shape))
