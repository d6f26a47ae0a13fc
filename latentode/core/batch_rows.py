"""Row-invariant batched evaluation: a row's result never depends on how many rows ran with it.

Matrix products round differently for very small batches. On the CPU (MKL/oneDNN float32), a
linear layer with ``K`` inputs computes row ``r`` of ``x @ W.T`` bit for bit the same for
any batch of at least ``MIN_ROWS`` rows (measured for K = 16…1024, batches 2…40 and up to
5,000), but by another kernel, with other rounding, for 1–15 rows (the larger ``K``, the
more rows). One ulp in a posterior mean is enough to change an adaptive solve's steps, and
with them a prediction by up to the solver's tolerance. So the encoder and the per-row solver
evaluate at least ``MIN_ROWS`` rows at a time (padding with copies of the first), and a
series predicted alone gets the same numbers as among many others.

This is a property of the BLAS in use; other libraries or devices may differ.
"""

from __future__ import annotations

import torch

__all__ = ["MIN_ROWS", "pad_rows"]

MIN_ROWS = 16
"""Rows below which a batch is padded before its matrix products."""


def pad_rows(x: torch.Tensor, rows: int = MIN_ROWS) -> torch.Tensor:
    """``x (B, ...)`` with copies of its first row appended up to ``rows`` rows (``B >= 1``).

    A batch already that large comes back unchanged (the same tensor). Slice the result's
    first ``B`` rows to undo it; gradients reach only the real rows' inputs through those.
    """
    missing = rows - x.shape[0]
    if missing <= 0 or x.shape[0] == 0:
        return x
    return torch.cat([x, x[:1].expand(missing, *x.shape[1:])], dim=0)
