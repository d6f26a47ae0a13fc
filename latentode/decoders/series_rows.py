"""`SeriesRows`: each series' own times as rows of a per-row solve, forward and backward."""

from __future__ import annotations

import torch

__all__ = ["SeriesRows"]


class SeriesRows:
    """Each series' times as solver rows: one forward from 0, one backward for times before 0.

    A row's times are sorted away from 0 (ascending forward, descending backward); a series
    with no time before 0 (or none at or after it) has no such row. :meth:`place` puts the
    rows' outputs back in each series' own order.

    Args:
        times: ``(batch, n)`` each series' requested times, in any order, repeats allowed.
    """

    def __init__(self, times: torch.Tensor) -> None:
        batch, n = times.shape
        device = times.device
        ordered, order = torch.sort(times, dim=1, stable=True)  # (batch, n) ascending
        n_back = (ordered < 0).sum(1)  # (batch,) times before 0 per series
        n_fwd = n - n_back
        col = torch.arange(n, device=device)
        # forward row of series b: ordered[b, n_back[b] + j], j < n_fwd[b]
        fwd_at = (n_back[:, None] + col).clamp(max=n - 1)
        # backward row of series b: ordered[b, n_back[b] - 1 - j], j < n_back[b]
        back_at = (n_back[:, None] - 1 - col).clamp(min=0)
        has_fwd, has_back = n_fwd > 0, n_back > 0
        fwd_ids, back_ids = has_fwd.nonzero().squeeze(1), has_back.nonzero().squeeze(1)
        self.series = torch.cat([fwd_ids, back_ids])  # (n_rows,) the series of each row
        self.times = torch.cat(
            [ordered.gather(1, fwd_at)[fwd_ids], ordered.gather(1, back_at)[back_ids]]
        )  # (n_rows, n)
        self.lengths = torch.cat([n_fwd[fwd_ids], n_back[back_ids]])  # (n_rows,)
        # row index of each series' forward / backward row (-1: none)
        fwd_row = torch.full((batch,), -1, dtype=torch.long, device=device)
        fwd_row[fwd_ids] = torch.arange(len(fwd_ids), device=device)
        back_row = torch.full((batch,), -1, dtype=torch.long, device=device)
        back_row[back_ids] = len(fwd_ids) + torch.arange(len(back_ids), device=device)
        # the flat (row · n + column) position of each sorted time, then of each original one
        before = col < n_back[:, None]  # (batch, n) sorted position p lies before 0
        sorted_at = torch.where(
            before,
            back_row[:, None] * n + (n_back[:, None] - 1 - col),
            fwd_row[:, None] * n + (col - n_back[:, None]),
        )  # (batch, n)
        self.index = torch.empty_like(sorted_at).scatter_(1, order, sorted_at)  # (batch, n)
        self.n_rows, self.n = len(self.series), n
        self.n_forward = len(fwd_ids)  # rows [0, n_forward) run forward, the rest backward

    def place(self, ys: torch.Tensor) -> torch.Tensor:
        """``(S, n_rows, n, d)`` row outputs → ``(S, batch, n, d)`` in each series' order."""
        flat = ys.reshape(ys.shape[0], self.n_rows * self.n, ys.shape[-1])  # (S, n_rows·n, d)
        return flat[:, self.index]  # (S, batch, n, d)
