"""Shared analytic test problems (one place, reused across the suite)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode


class LinearField(nn.Module):
    """``dz/dt = A z`` (row-vector form ``z Aᵀ``) with a trainable matrix ``A``."""

    def __init__(self, A: torch.Tensor) -> None:
        super().__init__()
        self.A = nn.Parameter(A.clone())

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return z @ self.A.T


def stable_matrix(dim: int, *, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A random matrix with a rotating part and eigenvalues of negative real part."""
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(dim, dim, generator=g, dtype=dtype)
    skew = (m - m.T) / 2
    return skew - 0.3 * torch.eye(dim, dtype=dtype)


def linear_solution(A: torch.Tensor, z0: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    """Exact ``z(t) = expm(A (t - t0)) z0``; ``z0 (batch, d)`` → ``(batch, n_times, d)``."""
    dt = (times - times[0]).reshape(-1, 1, 1)  # (n_times, 1, 1)
    expm = torch.linalg.matrix_exp(A.unsqueeze(0) * dt)  # (n_times, d, d)
    return torch.einsum("tij,bj->bti", expm, z0)


def linear_integral(A: torch.Tensor, z0: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    """Exact ``∫_{t0}^{t} z ds = A⁻¹ (expm(A (t - t0)) - I) z0``, shaped as ``linear_solution``."""
    eye = torch.eye(A.shape[0], dtype=A.dtype)
    dt = (times - times[0]).reshape(-1, 1, 1)
    expm = torch.linalg.matrix_exp(A.unsqueeze(0) * dt)
    return torch.einsum("ij,tjk,bk->bti", torch.linalg.inv(A), expm - eye, z0)


class LargestTensor(TorchDispatchMode):
    """Records the largest tensor any operation returns: ``largest`` elements, ``largest_bytes``."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0
        self.largest_bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, tuple | list) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
                self.largest_bytes = max(self.largest_bytes, t.numel() * t.element_size())
        return out


class WithEvents:
    """A model fitted on an events frame whose posterior calls get the series' events.

    Such a model reads each series' past events, so predict, sample (with ``df``),
    predict_intensity and sample_events need ``events=``; tests about other things (units,
    memory, devices, reproducibility) give it the fitted frame's events this way. A filter
    keeps the events of the series in the call's frame.
    """

    def __init__(self, model, events):
        object.__setattr__(self, "model", model)
        object.__setattr__(self, "events", events)

    def __setattr__(self, name, value):  # settings (e.g. memory_budget) are the model's
        setattr(self.model, name, value)

    def __getattr__(self, name):
        method = getattr(self.model, name)
        if name not in ("predict", "sample", "predict_intensity", "sample_events"):
            return method

        def call(*args, **kwargs):
            posterior = (args and name in ("predict", "predict_intensity", "sample_events")) or (
                kwargs.get("df") is not None
            )
            if posterior and "events" not in kwargs:
                frame = kwargs["df"] if name == "sample" or not args else args[0]
                id_col = self.model.format_.id_col
                kwargs["events"] = self.events[self.events[id_col].isin(frame[id_col])]
            return method(*args, **kwargs)

        return call
