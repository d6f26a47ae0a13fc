"""Honest comparisons: metrics, simple per-series baselines and series-aware splits.

Every modelling claim is checked against the obvious. This package hides points of a long
frame (:func:`holdout_interior`, :func:`holdout_last`, or whole series with
:func:`holdout_series`), predicts them with simple baselines (:data:`BASELINES`), scores
predictions (:func:`point_errors`, :func:`crps`, :func:`pinball`, :func:`coverage`) and puts a
fitted model beside the baselines in one table (:func:`compare`).

It imports numpy and pandas only: no torch, Lightning or scikit-learn. The model is
duck-typed.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from latentode.evaluate import holdout_interior, linear_interpolation, point_errors
>>> df = pd.DataFrame({"id": [0] * 5, "time": np.arange(5.0), "x": 2.0 * np.arange(5.0)})
>>> split = holdout_interior(df, 0.5)
>>> guess = linear_interpolation(split.context, split.target)
>>> float(point_errors(guess, split.target).loc["all", "mse"])
0.0
"""

from latentode.evaluate.baselines import (
    BASELINES,
    DEFAULT_BASELINES,
    linear_interpolation,
    linear_trend,
    locf,
    population_mean,
)
from latentode.evaluate.compare import COLUMNS, TASKS, compare, format_comparison
from latentode.evaluate.intervals import linear_gaussian, loo_linear_std
from latentode.evaluate.metrics import coverage, crps, pinball, point_errors
from latentode.evaluate.splits import Holdout, holdout_interior, holdout_last, holdout_series

__all__ = [
    "BASELINES",
    "COLUMNS",
    "DEFAULT_BASELINES",
    "TASKS",
    "Holdout",
    "compare",
    "coverage",
    "crps",
    "format_comparison",
    "holdout_interior",
    "holdout_last",
    "holdout_series",
    "linear_gaussian",
    "linear_interpolation",
    "linear_trend",
    "locf",
    "loo_linear_std",
    "pinball",
    "point_errors",
    "population_mean",
]
