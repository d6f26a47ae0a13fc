"""Covariates from pandas: static features per series and known inputs over time.

Two frames, beside the observations (same id column; inputs also the same time column, time
type and unit):

- ``static``: one row per series id, numeric columns (weight, age, arm of a trial). Every
  series needs its row.
- ``inputs``: a long frame ``(id, time, input columns)`` of inputs that are *known*, not
  modelled: doses, infusion rates, controls. Each row is a change point:

  - a **held** column (the default kind) keeps its value from its row until the series' next
    row (zero-order hold), e.g. an infusion rate of 10 mg/h from 14:00, then 0 from 15:30;
  - an **impulse** column (``input_kind={"bolus": "impulse"}``) is an amount given at that
    instant (0 where none), e.g. a 100 mg bolus at 09:00.

  A series' inputs are known from its first input row to its last: the first must be at or
  before its first observation, and the last at or after every time the model is asked
  about (its observations in ``fit``, the requested times in ``predict``). To say an input
  stays at its value, end the series with a row at the end of the window.

:class:`CovariateSchema` is what a fitted model keeps: the columns, their kinds and their
scaling (learned on the training series, as for the observations), so frames given later are
read the same way and refused when they do not match.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from latentode.data.frame import LongFormat, _feature_matrix
from latentode.data.series import Series

__all__ = [
    "INPUT_KINDS",
    "CovariateSchema",
    "CovariateSeries",
    "check_known_from",
    "check_known_until",
    "frames_to_covariates",
    "schedule_for_new_series",
    "schema_from_frames",
]

INPUT_KINDS = ("held", "impulse")
"""How an input column acts: held until the next change point, or an amount at an instant."""

_MAX_LISTED = 5


def _plain(values: Any) -> list[Any]:
    return [v.item() if isinstance(v, np.generic) else v for v in values]


def show_time(fmt: LongFormat, t: float) -> str:
    """One user-unit float time as the user writes it: ``12.5``, ``2024-01-03 14:00:00``."""
    value = fmt.float_to_times(np.array([float(t)]))
    value = value.iloc[0] if isinstance(value, pd.Series) else value[0]
    return f"{value:g}" if isinstance(value, float | np.floating) else str(value)


@dataclass(frozen=True, eq=False)
class CovariateSeries:
    """The covariates of one series (user time units, or scaled: see :class:`CovariateSchema`).

    Attributes:
        times: ``(m,)`` float64 change points, strictly increasing (m ≥ 1 with inputs, 0
            without).
        held: ``(m, n_held)`` the held inputs' values from each change point on.
        doses: ``(m, n_impulse)`` the impulse inputs' amounts at each change point.
        static: ``(n_static,)`` the series' static features.
    """

    times: np.ndarray
    held: np.ndarray
    doses: np.ndarray
    static: np.ndarray


@dataclass
class CovariateSchema:
    """The covariate columns a model reads, their kinds and their scaling.

    Held inputs and static features are standardised (mean 0, std 1 over the training
    series); impulse amounts are divided by their root mean square over the non-zero training
    doses, so that 0 still means "no dose".

    Attributes:
        held, impulse, static: Column names of each kind, in the order the model reads them.
        held_mean, held_scale: ``(n_held,)``.
        dose_scale: ``(n_impulse,)``.
        static_mean, static_scale: ``(n_static,)``.
    """

    held: tuple[str, ...] = ()
    impulse: tuple[str, ...] = ()
    static: tuple[str, ...] = ()
    held_mean: np.ndarray | None = None
    held_scale: np.ndarray | None = None
    dose_scale: np.ndarray | None = None
    static_mean: np.ndarray | None = None
    static_scale: np.ndarray | None = None

    @property
    def n_held(self) -> int:
        return len(self.held)

    @property
    def n_impulse(self) -> int:
        return len(self.impulse)

    @property
    def n_static(self) -> int:
        return len(self.static)

    @property
    def has_inputs(self) -> bool:
        return bool(self.held or self.impulse)

    @property
    def input_kind(self) -> dict[str, str]:
        return dict.fromkeys(self.held, "held") | dict.fromkeys(self.impulse, "impulse")

    def fit(self, covariates: Sequence[CovariateSeries]) -> CovariateSchema:
        """Learn the scaling from the training series' covariates (user units); returns self."""
        held = np.concatenate([c.held for c in covariates]) if covariates else None
        doses = np.concatenate([c.doses for c in covariates]) if covariates else None
        static = np.stack([c.static for c in covariates]) if covariates else None
        self.held_mean, self.held_scale = _standard(held, self.n_held)
        self.static_mean, self.static_scale = _standard(static, self.n_static)
        scale = np.ones(self.n_impulse)
        if doses is not None and len(doses):
            for j in range(self.n_impulse):
                given = doses[:, j][doses[:, j] != 0]
                rms = float(np.sqrt(np.mean(given**2))) if given.size else 0.0
                scale[j] = rms if rms > 0 else 1.0
        self.dose_scale = scale
        return self

    def transform(self, c: CovariateSeries, origin: float, time_scale: float) -> CovariateSeries:
        """One series' covariates in model units: scaled values, times ``(t − origin) / scale``."""
        return CovariateSeries(
            times=(c.times - origin) / time_scale,
            held=(c.held - self.held_mean) / self.held_scale,
            doses=c.doses / self.dose_scale,
            static=(c.static - self.static_mean) / self.static_scale,
        )

    def to_dict(self) -> dict[str, Any]:
        def listed(a: np.ndarray | None) -> list[float] | None:
            return None if a is None else [float(x) for x in a]

        return {
            "held": list(self.held),
            "impulse": list(self.impulse),
            "static": list(self.static),
            "held_mean": listed(self.held_mean),
            "held_scale": listed(self.held_scale),
            "dose_scale": listed(self.dose_scale),
            "static_mean": listed(self.static_mean),
            "static_scale": listed(self.static_scale),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CovariateSchema:
        def array(key: str) -> np.ndarray | None:
            return None if d.get(key) is None else np.asarray(d[key], dtype=np.float64)

        return cls(
            held=tuple(d["held"]),
            impulse=tuple(d["impulse"]),
            static=tuple(d["static"]),
            held_mean=array("held_mean"),
            held_scale=array("held_scale"),
            dose_scale=array("dose_scale"),
            static_mean=array("static_mean"),
            static_scale=array("static_scale"),
        )


def _standard(x: np.ndarray | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    if x is None or len(x) == 0 or n == 0:
        return np.zeros(n), np.ones(n)
    mean, std = x.mean(0), x.std(0)
    return mean, np.where(std > 0, std, 1.0)


def schema_from_frames(
    inputs: pd.DataFrame | None,
    static: pd.DataFrame | None,
    fmt: LongFormat,
    input_kind: Mapping[str, str] | None,
) -> CovariateSchema:
    """The columns of ``inputs`` and ``static`` (besides id and time) and their kinds."""
    input_cols = _columns(inputs, "inputs", fmt, with_time=True) if inputs is not None else ()
    static_cols = _columns(static, "static", fmt, with_time=False) if static is not None else ()
    if input_kind is not None:
        if not isinstance(input_kind, Mapping):
            raise TypeError(
                "`input_kind` must be a dict of input column → 'held' or 'impulse', e.g. "
                f"{{'dose': 'impulse'}}; got {type(input_kind).__name__}"
            )
        if inputs is None:
            raise ValueError("`input_kind` names input columns, but no `inputs` frame is given")
        strange = [c for c in input_kind if c not in input_cols]
        if strange:
            raise ValueError(
                f"`input_kind` names {strange}, which are not input columns; the inputs frame "
                f"has {list(input_cols)}"
            )
        bad = {c: k for c, k in input_kind.items() if k not in INPUT_KINDS}
        if bad:
            raise ValueError(f"`input_kind` values must be one of {list(INPUT_KINDS)}; got {bad}")
    kinds = {c: (input_kind or {}).get(c, "held") for c in input_cols}
    return CovariateSchema(
        held=tuple(c for c in input_cols if kinds[c] == "held"),
        impulse=tuple(c for c in input_cols if kinds[c] == "impulse"),
        static=tuple(static_cols),
    )


def _columns(frame: Any, name: str, fmt: LongFormat, *, with_time: bool) -> tuple[str, ...]:
    keys = (fmt.id_col, fmt.time_col) if with_time else (fmt.id_col,)
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(
            f"`{name}` must be a DataFrame with column(s) {', '.join(map(repr, keys))} and one "
            f"column per {'input' if with_time else 'static feature'}; got {type(frame).__name__}"
        )
    missing = [c for c in keys if c not in frame.columns]
    if missing:
        raise ValueError(
            f"`{name}` lacks column(s) {', '.join(map(repr, missing))}; it needs the "
            f"observation frame's {' and '.join(map(repr, keys))}"
        )
    if frame.columns.duplicated().any():
        dup = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        raise ValueError(f"`{name}` has duplicate column names {dup}; rename or drop them")
    cols = tuple(c for c in frame.columns if c not in keys)
    if not cols:
        raise ValueError(
            f"`{name}` has no columns besides {', '.join(map(repr, keys))}; give at least one "
            f"{'input' if with_time else 'static feature'} column, or leave `{name}` out"
        )
    return cols


def _check_schema(frame: pd.DataFrame, name: str, expected: tuple[str, ...], keys) -> None:
    cols = tuple(c for c in frame.columns if c not in keys)
    if set(cols) != set(expected):
        missing = [c for c in expected if c not in cols]
        extra = [c for c in cols if c not in expected]
        raise ValueError(
            f"`{name}` must have the columns the model was fitted with, {list(expected)}; "
            + (f"missing {missing}" if missing else "")
            + ("; " if missing and extra else "")
            + (f"not seen in fit {extra}" if extra else "")
        )


def frames_to_covariates(
    series: Sequence[Series],
    fmt: LongFormat,
    schema: CovariateSchema,
    inputs: pd.DataFrame | None,
    static: pd.DataFrame | None,
) -> list[CovariateSeries]:
    """One :class:`CovariateSeries` per series of ``series`` (in its order), in user units.

    Args:
        series: The observed series (their ids and first observation times).
        fmt: The observation frame's layout (the inputs' time type and unit are the same).
        schema: The columns to read (:func:`schema_from_frames` in ``fit``; the fitted
            model's later).
        inputs, static: The frames; each must be given exactly when the schema has columns
            for it.

    Raises:
        TypeError: a frame that is not a DataFrame; non-numeric values.
        ValueError: missing or unexpected columns, ids that are not series, series without
            static rows or input rows, repeated ids (static) or (id, time) pairs (inputs),
            NaN or infinite values or times, inputs that start after a series' first
            observation.
    """
    if schema.has_inputs != (inputs is not None):
        raise ValueError(
            "this model reads known inputs; give `inputs=` (a frame of id, time and "
            f"{list(schema.held + schema.impulse)})"
            if schema.has_inputs
            else "this model was fitted without known inputs; leave `inputs` out "
            "(or fit again with them)"
        )
    if bool(schema.static) != (static is not None):
        raise ValueError(
            f"this model reads static features; give `static=` (one row per id with "
            f"{list(schema.static)})"
            if schema.static
            else "this model was fitted without static features; leave `static` out "
            "(or fit again with them)"
        )
    position = {s.id: i for i, s in enumerate(series)}
    n = len(series)
    static_rows = np.zeros((n, 0))
    if static is not None:
        _columns(static, "static", fmt, with_time=False)
        _check_schema(static, "static", schema.static, (fmt.id_col,))
        static_rows = _static_rows(static, schema, fmt, position, series)
    times_of: list[np.ndarray] = [np.zeros(0)] * n
    held_of: list[np.ndarray] = [np.zeros((0, schema.n_held))] * n
    dose_of: list[np.ndarray] = [np.zeros((0, schema.n_impulse))] * n
    if inputs is not None:
        _columns(inputs, "inputs", fmt, with_time=True)
        _check_schema(inputs, "inputs", schema.held + schema.impulse, (fmt.id_col, fmt.time_col))
        times_of, held_of, dose_of = _input_rows(inputs, schema, fmt, position, series)
    return [CovariateSeries(times_of[i], held_of[i], dose_of[i], static_rows[i]) for i in range(n)]


def _unknown_ids(ids: np.ndarray, position: Mapping[Hashable, int], name: str) -> None:
    unknown = _plain(dict.fromkeys(i for i in ids if i not in position))
    if unknown:
        raise ValueError(
            f"`{name}` names {len(unknown)} series that are not in the observation frame, e.g. "
            f"{unknown[:_MAX_LISTED]}; drop those rows or add the series' observations"
        )


def _finite(matrix: np.ndarray, cols: Sequence[str], ids: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(matrix)
    if bad.any():
        r, j = np.argwhere(bad)[0]
        raise ValueError(
            f"`{name}` column {cols[j]!r} has {int(bad[:, j].sum())} missing or infinite "
            f"value(s), e.g. for id {_plain([ids[r]])[0]!r}; known covariates must be known: "
            "fill them (e.g. 0 for no dose, or the value in force) or drop those rows"
        )


def _static_rows(
    static: pd.DataFrame,
    schema: CovariateSchema,
    fmt: LongFormat,
    position: Mapping[Hashable, int],
    series: Sequence[Series],
) -> np.ndarray:
    ids = static[fmt.id_col].to_numpy()
    _unknown_ids(ids, position, "static")
    repeated = _plain(pd.unique(ids[pd.Series(ids).duplicated().to_numpy()]))
    if repeated:
        raise ValueError(
            f"`static` must have one row per id; ids {repeated[:_MAX_LISTED]} have several"
        )
    given = set(_plain(ids))
    absent = [s.id for s in series if s.id not in given]
    if absent:
        raise ValueError(
            f"`static` has no row for {len(absent)} series, e.g. {absent[:_MAX_LISTED]}; every "
            "series needs its static features"
        )
    try:
        matrix = _feature_matrix(static, schema.static)
    except TypeError as err:
        raise TypeError(f"`static`: {err}".replace("feature column", "column")) from None
    _finite(matrix, schema.static, ids, "static")
    out = np.zeros((len(series), schema.n_static))
    out[[position[i] for i in ids]] = matrix
    return out


def _input_rows(
    inputs: pd.DataFrame,
    schema: CovariateSchema,
    fmt: LongFormat,
    position: Mapping[Hashable, int],
    series: Sequence[Series],
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    ids = inputs[fmt.id_col].to_numpy()
    _unknown_ids(ids, position, "inputs")
    try:
        times = fmt.times_to_float(inputs[fmt.time_col])
    except (TypeError, ValueError) as err:
        raise type(err)(f"bad input times in column {fmt.time_col!r}: {err}") from None
    if not np.all(np.isfinite(times)):
        r = int(np.flatnonzero(~np.isfinite(times))[0])
        raise ValueError(
            f"`inputs` has a missing or infinite time for id {_plain([ids[r]])[0]!r}; every "
            "input row needs its time"
        )
    cols = schema.held + schema.impulse
    try:
        matrix = _feature_matrix(inputs, cols)
    except TypeError as err:
        raise TypeError(f"`inputs`: {err}".replace("feature column", "column")) from None
    _finite(matrix, cols, ids, "inputs")
    rows = np.array([position[i] for i in ids], dtype=np.int64)
    order = np.lexsort((times, rows))
    rows, times, matrix = rows[order], times[order], matrix[order]
    same = (rows[1:] == rows[:-1]) & (times[1:] == times[:-1])
    if same.any():
        k = int(np.flatnonzero(same)[0])
        raise ValueError(
            f"`inputs` has several rows for id {series[rows[k]].id!r} at time "
            f"{show_time(fmt, times[k])}; give one row per change point "
            "(sum doses given together)"
        )
    bounds = np.searchsorted(rows, np.arange(len(series) + 1))
    times_of, held_of, dose_of = [], [], []
    for i, s in enumerate(series):
        part = slice(bounds[i], bounds[i + 1])
        t = times[part]
        first_obs = float(s.times[0])
        if t.size == 0:
            raise ValueError(
                f"`inputs` has no rows for series {s.id!r}; inputs must be known over every "
                "series' window (give at least a row at or before its first observation)"
            )
        if t[0] > first_obs:
            raise ValueError(
                f"the inputs of series {s.id!r} start at {show_time(fmt, t[0])}, after its "
                f"first observation at {show_time(fmt, first_obs)}; inputs must be known "
                "from the first observation on: add a row at or before it"
            )
        times_of.append(t.copy())
        held_of.append(matrix[part, : schema.n_held].copy())
        dose_of.append(matrix[part, schema.n_held :].copy())
    return times_of, held_of, dose_of


def check_known_from(
    covariates: Sequence[CovariateSeries],
    ids: Sequence[Hashable],
    first: np.ndarray,
    fmt: LongFormat,
    what: str,
) -> None:
    """Refuse windows that start before each series' first input row (``first (n,)``)."""
    for c, i, t in zip(covariates, ids, first, strict=True):
        if c.times.size and t < c.times[0]:
            start, asked = show_time(fmt, c.times[0]), show_time(fmt, t)
            raise ValueError(
                f"the inputs of series {i!r} start at {start}, but {what} reach back to "
                f"{asked}; inputs must be known over the whole window: add a row at or before "
                f"{asked} (with the value in force then) to the inputs frame"
            )


def check_known_until(
    covariates: Sequence[CovariateSeries],
    ids: Sequence[Hashable],
    last: np.ndarray,
    fmt: LongFormat,
    what: str,
) -> None:
    """Refuse times past each series' last input row (``last (n,)`` in user units)."""
    for c, i, t in zip(covariates, ids, last, strict=True):
        if c.times.size and t > c.times[-1]:
            end, asked = show_time(fmt, c.times[-1]), show_time(fmt, t)
            raise ValueError(
                f"the inputs of series {i!r} end at {end}, but {what} reach {asked}; inputs "
                f"must be known over the whole window: add a row at or after {asked} (with "
                "the value in force then) to the inputs frame"
            )


def schedule_for_new_series(
    schema: CovariateSchema,
    offsets: np.ndarray,
    inputs: pd.DataFrame | None,
    static: pd.DataFrame | None,
    fmt: LongFormat,
) -> CovariateSeries:
    """The covariates of one new series (prior draws), in user units since its start.

    Args:
        schema: The fitted model's covariate columns.
        offsets: ``(m,)`` the inputs frame's times as time since the start (the caller
            converts them, as it does prior sample times), one per row of ``inputs``.
        inputs: The new series' change points: the time column and the input columns (an
            id column, if any, must name one series). static: One row of static features.
        fmt: The model's layout (column names).

    Raises:
        ValueError, TypeError: as :func:`frames_to_covariates`; several series in a frame;
            inputs that start after 0 (the new series' start).
    """
    if schema.has_inputs != (inputs is not None) or bool(schema.static) != (static is not None):
        raise ValueError(
            f"this model reads {list(schema.held + schema.impulse) or 'no'} inputs and "
            f"{list(schema.static) or 'no'} static features: give exactly those frames "
            "(`inputs=`, `static=`) for the new series"
        )
    n_static = np.zeros(0)
    if static is not None:
        _columns(static, "static", fmt, with_time=False)
        _check_schema(static, "static", schema.static, (fmt.id_col,))
        if len(static) != 1:
            raise ValueError(
                f"`static` for new series from the prior must be one row (they share it); got "
                f"{len(static)}"
            )
        n_static = _feature_matrix(static, schema.static)[0]
        _finite(n_static[None], schema.static, np.array(["new series"]), "static")
    times = np.zeros(0)
    matrix = np.zeros((0, schema.n_held + schema.n_impulse))
    if inputs is not None:
        _columns(inputs, "inputs", fmt, with_time=True)
        _check_schema(inputs, "inputs", schema.held + schema.impulse, (fmt.id_col, fmt.time_col))
        if inputs[fmt.id_col].nunique() > 1:
            raise ValueError(
                "`inputs` for new series from the prior must describe one schedule (one id; "
                f"every draw follows it); got {inputs[fmt.id_col].nunique()} ids"
            )
        order = np.argsort(offsets, kind="stable")
        times = np.asarray(offsets, dtype=np.float64)[order]
        matrix = _feature_matrix(inputs, schema.held + schema.impulse)[order]
        label = np.array(["new series"] * len(times))
        _finite(matrix, schema.held + schema.impulse, label, "inputs")
        if times.size == 0 or not np.all(np.isfinite(times)):
            raise ValueError("`inputs` needs at least one row, each with a finite time")
        if np.any(np.diff(times) == 0):
            raise ValueError("`inputs` has several rows at one time; give one per change point")
        if times[0] > 0:
            raise ValueError(
                f"the inputs start at {show_time(fmt, times[0])} after the new series' start; "
                "give a row at time 0"
            )
    return CovariateSeries(times, matrix[:, : schema.n_held], matrix[:, schema.n_held :], n_static)
