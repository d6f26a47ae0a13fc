"""`Series`: one irregularly sampled series, as the pandas boundary hands it inward."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

__all__ = ["Series"]


@dataclass(frozen=True, eq=False)
class Series:
    """One series in the user's time units, sorted by time, with missingness as a mask.

    Attributes:
        id: The user's identifier for the series, unchanged (int, str, ...).
        times: ``(n_obs,)`` float64, strictly increasing, in the user's time unit (for datetime
            input: units of ``time_unit`` since the format's reference instant).
        values: ``(n_obs, n_features)`` float64. Exactly 0.0 where ``mask`` is False: NaN never
            travels past the pandas boundary.
        mask: ``(n_obs, n_features)`` bool, True where the feature was observed.
    """

    id: Hashable
    times: np.ndarray
    values: np.ndarray
    mask: np.ndarray

    def __post_init__(self) -> None:
        n = self.times.shape[0]
        if self.times.ndim != 1:
            raise ValueError(f"`times` must be 1-D; got shape {self.times.shape}")
        if self.values.ndim != 2 or self.values.shape[0] != n:
            raise ValueError(
                f"`values` must have shape (n_obs={n}, n_features); got {self.values.shape}"
            )
        if self.mask.shape != self.values.shape:
            raise ValueError(
                f"`mask` must have the shape of `values` {self.values.shape}; got {self.mask.shape}"
            )

    @property
    def n_obs(self) -> int:
        """Number of observation times (rows), observed or not."""
        return int(self.times.shape[0])

    @property
    def n_features(self) -> int:
        """Number of feature columns."""
        return int(self.values.shape[1])
