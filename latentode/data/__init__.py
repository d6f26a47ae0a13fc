"""The irregular-series data layer: pandas long format ⇄ series ⇄ padded tensor batches.

NaN stops at the pandas boundary: inside, missingness is a mask and the value is 0.
Imports pandas and torch; never Lightning or scikit-learn.
"""

from latentode.data.batch import EventBatch, IrregularBatch, UnionGrid, union_grid
from latentode.data.collate import SeriesItem, collate
from latentode.data.dataset import EventSeries, IrregularDataset
from latentode.data.files import TABLE_SUFFIXES, read_table, write_table
from latentode.data.frame import (
    LongFormat,
    arrays_to_frame,
    frame_to_series,
    rows_to_frame,
    series_to_frame,
)
from latentode.data.generators import GENERATORS, make_dataset
from latentode.data.panels import (
    PANELS,
    make_absorption,
    make_growth,
    make_lotka_volterra,
    make_oscillators,
    make_sparse_sines,
)
from latentode.data.scaling import FeatureScaler, TimeScaler
from latentode.data.series import Series
from latentode.data.synthetic import (
    SyntheticData,
    make_clinical_events,
    make_periodic,
    make_spiral,
    spiral_truth,
)

__all__ = [
    "GENERATORS",
    "PANELS",
    "TABLE_SUFFIXES",
    "EventBatch",
    "EventSeries",
    "FeatureScaler",
    "IrregularBatch",
    "IrregularDataset",
    "LongFormat",
    "Series",
    "SeriesItem",
    "SyntheticData",
    "TimeScaler",
    "UnionGrid",
    "arrays_to_frame",
    "collate",
    "frame_to_series",
    "make_absorption",
    "make_clinical_events",
    "make_dataset",
    "make_growth",
    "make_lotka_volterra",
    "make_oscillators",
    "make_periodic",
    "make_sparse_sines",
    "make_spiral",
    "read_table",
    "rows_to_frame",
    "series_to_frame",
    "spiral_truth",
    "union_grid",
    "write_table",
]
