"""`GaussianHead`: masked Gaussian observation likelihood with fixed or learned std."""

from __future__ import annotations

import math

import torch
from torch import nn

from latentode._validation import check_bool, check_int, check_real

__all__ = ["GaussianHead"]


class GaussianHead(nn.Module):
    """``x | z(t) ~ N(mean(t), std²)`` per feature, counted only where ``mask`` is 1.

    Args:
        n_features: Observed features.
        std: Observation std, the same for every feature at the start. Default 0.01, the
            setting of Rubanova et al. on the periodic toy.
        learn_std: Learn one std per feature (as a log-parameter); else it is a fixed buffer.
    """

    def __init__(self, n_features: int, *, std: float = 0.01, learn_std: bool = False) -> None:
        super().__init__()
        n_features = check_int("n_features", n_features, minimum=1)
        std = check_real("std", std, positive=True)
        log_std = torch.full((n_features,), math.log(std))
        if check_bool("learn_std", learn_std):
            self.log_std = nn.Parameter(log_std)
        else:
            self.register_buffer("log_std", log_std)

    @property
    def std(self) -> torch.Tensor:
        """``(n_features,)`` current std."""
        return self.log_std.exp()

    def log_likelihood(
        self, mean: torch.Tensor, values: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Sum of log N(values | mean, std²) over observed entries.

        Args:
            mean: ``(..., batch, n_times, n_features)`` predicted means.
            values: ``(batch, n_times, n_features)``; anything under ``mask == 0`` is ignored.
            mask: ``(batch, n_times, n_features)``, 1 where observed.

        Returns:
            ``(..., batch)`` log-likelihood of each series.
        """
        log_std = self.log_std.to(mean.dtype)
        z = (torch.where(mask > 0, values, mean) - mean) / log_std.exp()
        per_entry = -0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi)
        return (per_entry * mask).sum(dim=(-1, -2))
