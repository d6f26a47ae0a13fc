"""The schedule new series from the prior follow (``sample``, ``sample_events`` without df)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from latentode.data.batch import CovariateBatch
from latentode.data.collate import ItemCovariates, collate_covariates
from latentode.data.covariates import schedule_for_new_series, show_time
from latentode.estimator.times import prior_offsets

if TYPE_CHECKING:
    from latentode.estimator.predictor import Predictor

__all__ = ["new_series_covariates"]


def new_series_covariates(
    p: Predictor, offsets: np.ndarray, inputs: pd.DataFrame | None, static: pd.DataFrame | None
) -> CovariateBatch | None:
    """The schedule a new series from the prior follows, as a batch of one (None without).

    ``offsets`` are the requested times since the start (user units); the inputs must be
    known from the start to the last of them.
    """
    schema = p.covariate_schema
    if schema is None:
        return None
    times = None
    if inputs is not None:
        if not isinstance(inputs, pd.DataFrame) or p.fmt.time_col not in inputs.columns:
            raise TypeError(f"`inputs` must be a DataFrame with the time column {p.fmt.time_col!r}")
        given = inputs[p.fmt.time_col]
        times = prior_offsets(p.fmt, list(given)) if len(given) else np.zeros(0)
        if p.fmt.id_col not in inputs.columns:  # one schedule: the id may be left out
            inputs = inputs.assign(**{p.fmt.id_col: "new series"})
    if static is not None and p.fmt.id_col not in static.columns:
        static = static.assign(**{p.fmt.id_col: "new series"})
    c = schedule_for_new_series(schema, times, inputs, static, p.fmt)
    if schema.has_inputs and offsets.size and offsets.min() < c.times[0]:
        raise ValueError(
            f"the inputs start at {show_time(p.fmt, c.times[0])} after the start, but "
            f"the requested times reach back to {show_time(p.fmt, offsets.min())}; "
            "inputs must be known over the whole window"
        )
    if schema.has_inputs and offsets.size and offsets.max() > c.times[-1]:
        raise ValueError(
            f"the inputs end at {show_time(p.fmt, c.times[-1])} after the start, but the "
            f"requested times reach {show_time(p.fmt, offsets.max())}; inputs must be "
            "known over the whole window: add a row at or after it"
        )
    scaled = schema.transform(c, 0.0, p.time_scaler.scale_)
    return collate_covariates([ItemCovariates.of(scaled, torch.float32)]).to(p.device)
