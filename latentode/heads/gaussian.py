"""`GaussianHead`: masked Gaussian observation likelihood with fixed or learned std."""

from __future__ import annotations

import math

import torch
from torch import nn

from latentode._validation import check_bool, check_int, check_real

__all__ = ["STD_FLOOR", "GaussianHead"]

STD_FLOOR = 1e-3  # the smallest learned std, in standardised units


class GaussianHead(nn.Module):
    """``x | z(t) ~ N(mean(t), std²)`` per feature, counted only where ``mask`` is 1.

    Args:
        n_features: Observed features.
        std: Observation std, the same for every feature at the start. Default 0.01, the
            setting of Rubanova et al. on the periodic toy.
        learn_std: Learn one std per feature (as a log-parameter); else it is a fixed buffer.
        floor: The smallest std a learned std can reach, ``std = sqrt(floor² + exp(log_std)²)``,
            so that the likelihood stays bounded when a feature is fitted exactly (an
            unbounded learned std collapses towards 0 and the loss towards -inf). A fixed std
            is used as given.
    """

    def __init__(
        self,
        n_features: int,
        *,
        std: float = 0.01,
        learn_std: bool = False,
        floor: float = STD_FLOOR,
    ) -> None:
        super().__init__()
        n_features = check_int("n_features", n_features, minimum=1)
        std = check_real("std", std, positive=True)
        self.floor = check_real("floor", floor, positive=True)
        self.learned = check_bool("learn_std", learn_std)
        if self.learned and std <= self.floor:
            raise ValueError(
                f"a learned std must start above its floor {self.floor:g}, got std={std:g}; "
                "pass a larger std or a smaller floor"
            )
        # a learned std starts at `std`: its raw parameter solves sqrt(floor² + e^{2r}) = std
        start = math.log(math.sqrt(std**2 - self.floor**2)) if self.learned else math.log(std)
        log_std = torch.full((n_features,), start)
        if self.learned:
            self.log_std = nn.Parameter(log_std)
        else:
            self.register_buffer("log_std", log_std)

    @property
    def std(self) -> torch.Tensor:
        """``(n_features,)`` current std (never below ``floor`` when learned)."""
        return self._log_std().exp()

    def _log_std(self) -> torch.Tensor:
        if not self.learned:
            return self.log_std
        return 0.5 * torch.logaddexp(
            2 * self.log_std, torch.full_like(self.log_std, 2 * math.log(self.floor))
        )

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
        log_std = self._log_std().to(mean.dtype)
        z = (torch.where(mask > 0, values, mean) - mean) / log_std.exp()
        per_entry = -0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi)
        return (per_entry * mask).sum(dim=(-1, -2))
