"""The pandas boundary: every malformed frame raises a precise error; good frames round-trip."""

from __future__ import annotations

import datetime as dt
import json
import time

import numpy as np
import pandas as pd
import pytest
from dateutil import tz as dateutil_tz

from latentode.data.frame import (
    TIME_UNITS,
    LongFormat,
    arrays_to_frame,
    frame_to_series,
    rows_to_frame,
    series_to_frame,
)
from latentode.data.series import Series

START = pd.Timestamp("2024-03-01 08:00")


@pytest.fixture
def df():
    return pd.DataFrame(
        {
            "id": ["b", "b", "a", "a", "a", "c"],
            "time": [5.0, 3.0, 1.0, 4.0, 2.5, 7.0],
            "hr": [60.0, np.nan, 70.0, 72.0, 71.0, 80.0],
            "bp": [np.nan, 120.0, 110.0, np.nan, 112.0, 130.0],
        }
    )


def _offsets(hours):
    return pd.to_timedelta(np.asarray(hours, dtype=float), unit="h")


def _with_times(frame, kind):
    """``frame`` with its float hours turned into times of ``kind``; the time_unit to use."""
    hours = frame["time"].to_numpy()
    if kind == "numeric":
        return frame, None
    if kind == "timedelta":
        return frame.assign(time=_offsets(hours)), "h"
    stamps = START + _offsets(hours)
    if kind == "datetime_tz":
        stamps = stamps.tz_localize("Europe/Paris")
    return frame.assign(time=stamps), "h"


def _expected(frame, id_col="id", time_col="time"):
    """``frame`` sorted by (first appearance of id, time), times in ns resolution."""
    rank = {k: i for i, k in enumerate(pd.unique(frame[id_col]))}
    out = (
        frame.assign(_rank=frame[id_col].map(rank))
        .sort_values(["_rank", time_col], kind="stable")
        .drop(columns="_rank")
        .reset_index(drop=True)
    )
    if out[time_col].dtype.kind in "mM":
        out[time_col] = out[time_col].dt.as_unit("ns")  # float_to_times returns ns
    return out


# --- conversion ---------------------------------------------------------------------------------


def test_series_in_first_appearance_order_each_sorted(df):
    series, fmt = frame_to_series(df)
    assert [s.id for s in series] == ["b", "a", "c"]
    assert series[0].times.tolist() == [3.0, 5.0]
    assert series[1].times.tolist() == [1.0, 2.5, 4.0]
    for s in series:
        assert s.times.dtype == np.float64
        assert s.values.dtype == np.float64
        assert s.mask.dtype == np.bool_
        assert np.all(np.diff(s.times) > 0)
    assert fmt == LongFormat("id", "time", ("hr", "bp"), "numeric", None, None, None)


def test_nan_becomes_mask_false_and_value_zero(df):
    series, _ = frame_to_series(df)
    b = series[0]  # rows at times 3.0 (hr NaN) and 5.0 (bp NaN)
    assert b.mask.tolist() == [[False, True], [True, False]]
    assert b.values.tolist() == [[0.0, 120.0], [60.0, 0.0]]
    assert all(np.isfinite(s.values).all() for s in series)


def test_value_cols_default_is_every_other_column_in_frame_order(df):
    _, fmt = frame_to_series(df[["bp", "time", "id", "hr"]])
    assert fmt.value_cols == ("bp", "hr")
    series, fmt = frame_to_series(df, value_cols=["bp"])
    assert fmt.value_cols == ("bp",)
    assert series[0].n_features == 1


@pytest.mark.parametrize("kind", ["numeric", "datetime", "datetime_tz", "timedelta"])
@pytest.mark.parametrize("id_kind", ["int", "str"])
def test_round_trip(df, kind, id_kind):
    frame, unit = _with_times(df, kind)
    if id_kind == "int":
        frame = frame.assign(id=frame["id"].map({"a": 10, "b": 3, "c": 7}))
    series, fmt = frame_to_series(frame, time_unit=unit)
    back = series_to_frame(series, fmt)
    pd.testing.assert_frame_equal(back, _expected(frame))
    assert back["hr"].isna().sum() == 1
    assert back["bp"].isna().sum() == 2


def test_round_trip_custom_names_and_index(df):
    frame = df.rename(columns={"id": "patient", "time": "t"})
    frame.index = [f"r{i}" for i in range(len(frame))]
    series, fmt = frame_to_series(frame, id_col="patient", time_col="t")
    back = series_to_frame(series, fmt)
    assert list(back.columns) == ["patient", "t", "hr", "bp"]
    assert isinstance(back.index, pd.RangeIndex)
    pd.testing.assert_frame_equal(back, _expected(frame, "patient", "t"))


def test_datetime_times_are_unit_offsets_from_the_earliest_time():
    frame = pd.DataFrame(
        {
            "id": [1, 1, 2],
            "time": [START + pd.Timedelta("2D"), START + pd.Timedelta("90min"), START],
            "x": [1.0, 2.0, 3.0],
        }
    )
    series, fmt = frame_to_series(frame, time_unit="h")
    assert series[0].times.tolist() == [1.5, 48.0]
    assert series[1].times.tolist() == [0.0]
    assert fmt.time_kind == "datetime"
    assert pd.Timestamp(fmt.time_reference) == START
    assert fmt.tz is None


def test_tz_aware_times_stay_aware():
    stamps = (START + _offsets([0.0, 1.0])).tz_localize("America/New_York")
    frame = pd.DataFrame({"id": [0, 0], "time": stamps, "x": [1.0, 2.0]})
    series, fmt = frame_to_series(frame, time_unit="min")
    assert fmt.tz == "America/New_York"
    assert series[0].times.tolist() == [0.0, 60.0]
    back = series_to_frame(series, fmt)
    assert str(back["time"].dt.tz) == "America/New_York"
    assert (back["time"] == frame["time"]).all()


@pytest.mark.parametrize(
    ("zone", "name"),
    [
        (dt.timezone(dt.timedelta(hours=1), "CET"), "+01:00"),  # fixed offset, not the CET zone
        (dt.timezone(dt.timedelta(hours=-5, minutes=-30)), "-05:30"),
        (dt.timezone.utc, "UTC"),
        ("Europe/London", "Europe/London"),
        (dateutil_tz.gettz("Europe/Paris"), "Europe/Paris"),
    ],
)
def test_time_zone_names_rebuild_the_same_zone(zone, name):
    stamps = pd.date_range("2024-01-01", periods=2, freq="180D", tz=zone)  # winter, summer
    frame = pd.DataFrame({"id": [0, 0], "time": stamps, "x": [1.0, 2.0]})
    series, fmt = frame_to_series(frame, time_unit="h")
    assert fmt.tz == name
    back = series_to_frame(series, fmt)["time"]
    assert (back == frame["time"]).all()
    assert [t.utcoffset() for t in back] == [t.utcoffset() for t in frame["time"]]


def test_nullable_and_object_times_are_accepted():
    frame = pd.DataFrame({"id": [1, 1], "time": pd.array([2, 1], dtype="Int64"), "x": [1.0, 2.0]})
    series, fmt = frame_to_series(frame)
    assert series[0].times.tolist() == [1.0, 2.0]
    assert fmt.time_kind == "numeric"
    pydt = pd.Series([dt.datetime(2024, 1, 1, 12), dt.datetime(2024, 1, 1)], dtype=object)
    series, fmt = frame_to_series(frame.assign(time=pydt), time_unit="h")
    assert series[0].times.tolist() == [0.0, 12.0]
    assert fmt.time_kind == "datetime"


def test_categorical_ids_keep_their_values():
    frame = pd.DataFrame(
        {
            "id": pd.Categorical(["y", "x", "y"], categories=["x", "y", "unused"]),
            "time": [1.0, 0.0, 0.0],
            "v": [1.0, 2.0, 3.0],
        }
    )
    series, _ = frame_to_series(frame)
    assert [s.id for s in series] == ["y", "x"]
    assert series[0].times.tolist() == [0.0, 1.0]


def test_bool_and_numeric_object_features_are_accepted():
    frame = pd.DataFrame(
        {
            "id": [1, 1, 1],
            "time": [0.0, 1.0, 2.0],
            "flag": [True, False, True],
            "nullable": pd.array([True, None, False], dtype="boolean"),
            "obj": pd.Series([1.5, None, 2], dtype=object),
        }
    )
    (s,), _ = frame_to_series(frame)
    assert s.values[:, 0].tolist() == [1.0, 0.0, 1.0]
    assert s.mask[:, 1].tolist() == [True, False, True]
    assert s.values[:, 2].tolist() == [1.5, 0.0, 2.0]


def test_fmt_reuse_on_a_new_frame():
    train = pd.DataFrame({"id": [1, 1], "time": [START, START + _offsets([2])[0]], "x": [1, 2]})
    _, fmt = frame_to_series(train, time_unit="h")
    new = pd.DataFrame(
        {"id": ["n", "n"], "time": [START - pd.Timedelta("1h"), START], "x": [0.0, 1.0]}
    )
    series, fmt2 = frame_to_series(new.assign(extra="ignored"), fmt=fmt)
    assert fmt2 is fmt
    assert series[0].times.tolist() == [-1.0, 0.0]  # relative to the fitted reference
    frame_to_series(new, fmt=fmt, time_unit="h", id_col="id", value_cols=["x"])  # equal: fine


def test_input_frame_is_not_modified(df):
    before = df.copy()
    series, _ = frame_to_series(df)
    series[0].values[:] = -1.0
    pd.testing.assert_frame_equal(df, before)


def test_ten_thousand_series_of_a_hundred_rows_is_fast():
    rng = np.random.default_rng(0)
    n_series, n_rows = 10_000, 100
    frame = pd.DataFrame(
        {
            "id": np.repeat(np.arange(n_series), n_rows),
            "time": rng.random(n_series * n_rows) * 100.0,
            "a": rng.normal(size=n_series * n_rows),
            "b": rng.normal(size=n_series * n_rows),
        }
    ).sample(frac=1.0, random_state=0)  # shuffled rows: the sort path
    start = time.perf_counter()
    series, fmt = frame_to_series(frame)
    back = series_to_frame(series, fmt)
    elapsed = time.perf_counter() - start
    assert len(series) == n_series
    assert len(back) == len(frame)
    assert all(s.n_obs == n_rows for s in series[:10])
    assert elapsed < 10.0  # ~0.3 s on an idle machine; generous for shared CI runners


# --- LongFormat ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["numeric", "datetime", "datetime_tz", "timedelta"])
def test_long_format_json_round_trip(df, kind):
    frame, unit = _with_times(df, kind)
    _, fmt = frame_to_series(frame, time_unit=unit)
    d = json.loads(json.dumps(fmt.to_dict()))
    assert d["value_cols"] == ["hr", "bp"]
    assert LongFormat.from_dict(d) == fmt


@pytest.mark.parametrize("kind", ["numeric", "datetime", "datetime_tz", "timedelta"])
def test_times_to_float_and_back(df, kind):
    frame, unit = _with_times(df, kind)
    _, fmt = frame_to_series(frame, time_unit=unit)
    x = fmt.times_to_float(frame["time"])
    np.testing.assert_allclose(x, df["time"].to_numpy() - (1.0 if "date" in kind else 0.0))
    back = fmt.float_to_times(x)
    if kind == "numeric":
        np.testing.assert_array_equal(back, frame["time"].to_numpy())
    else:
        assert (pd.Series(back) == frame["time"].reset_index(drop=True)).all()
        assert fmt.times_to_float(back).tolist() == x.tolist()


def test_times_to_float_accepts_lists_indexes_scalars_and_other_zones():
    fmt = LongFormat("id", "time", ("x",), "datetime", "h", "2024-01-01T00:00:00+00:00", "UTC")
    paris = pd.date_range("2024-01-01 01:00", periods=3, freq="30min", tz="Europe/Paris")
    assert fmt.times_to_float(paris).tolist() == [0.0, 0.5, 1.0]  # same instants, other zone
    assert fmt.times_to_float(list(paris)).tolist() == [0.0, 0.5, 1.0]
    assert fmt.times_to_float(paris[1]).tolist() == [0.5]
    numeric = LongFormat("id", "time", ("x",), "numeric", None, None, None)
    assert numeric.times_to_float([1, 2.5]).tolist() == [1.0, 2.5]


def test_float_to_times_returns_the_users_types():
    fmt = LongFormat("id", "time", ("x",), "timedelta", "min", None, None)
    out = fmt.float_to_times(np.array([0.0, 1.5]))
    assert out.dtype == "timedelta64[ns]"
    assert out.tolist() == [pd.Timedelta(0), pd.Timedelta("90s")]
    aware = LongFormat("id", "time", ("x",), "datetime", "D", "2024-01-01T00:00:00+01:00", "CET")
    out = aware.float_to_times([1.0])
    assert str(out.dt.tz) == "CET"
    assert out[0] == pd.Timestamp("2024-01-02", tz="CET")


# --- arrays_to_frame ----------------------------------------------------------------------------


def _numeric_fmt(value_cols=("x", "y")):
    return LongFormat("id", "time", value_cols, "numeric", None, None, None)


def test_arrays_to_frame_drops_padding_and_masks():
    times = np.array([[0.0, 1.0, 2.0], [5.0, 9.0, 9.0]])  # (B=2, N=3)
    values = np.arange(12, dtype=float).reshape(2, 3, 2)  # (B, N, F=2)
    mask = np.ones((2, 3, 2), dtype=bool)
    mask[0, 1, 0] = False
    out = arrays_to_frame(["p", "q"], times, values, _numeric_fmt(), lengths=[3, 1], mask=mask)
    expected = pd.DataFrame(
        {
            "id": ["p", "p", "p", "q"],
            "time": [0.0, 1.0, 2.0, 5.0],
            "x": [0.0, np.nan, 4.0, 6.0],
            "y": [1.0, 3.0, 5.0, 7.0],
        }
    )
    pd.testing.assert_frame_equal(out, expected)


def test_arrays_to_frame_renames_value_columns_and_keeps_all_positions():
    fmt = LongFormat("id", "time", ("x",), "datetime", "h", "2024-01-01T00:00:00", None)
    out = arrays_to_frame(
        [7], np.array([[0.0, 0.5]]), np.ones((1, 2, 2)), fmt, value_cols=["x_mean", "x_sd"]
    )
    assert list(out.columns) == ["id", "time", "x_mean", "x_sd"]
    assert out["time"].tolist() == [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-01 00:30")]


def test_rows_to_frame_takes_the_columns_without_copying_them():
    values = np.asfortranarray(np.arange(8, dtype=float).reshape(4, 2))
    times = np.array([0.0, 1.0, 2.0, 5.0])
    out = rows_to_frame(
        ["p", "q"], np.array([3, 1]), times, values, _numeric_fmt(), value_cols=["a", "b"]
    )
    assert out["id"].tolist() == ["p", "p", "p", "q"]
    assert out["b"].tolist() == [1.0, 3.0, 5.0, 7.0]
    assert np.shares_memory(out["a"].to_numpy(), values)


@pytest.mark.parametrize(
    ("counts", "times", "values"),
    [
        (np.array([3]), np.zeros(4), np.zeros((4, 2))),  # one count for two ids
        (np.array([3, 2]), np.zeros(4), np.zeros((4, 2))),  # counts add up to 5 rows
        (np.array([3, 1]), np.zeros(4), np.zeros((4, 3))),  # three columns for two names
    ],
)
def test_rows_to_frame_refuses_arrays_that_do_not_fit(counts, times, values):
    with pytest.raises(ValueError, match=r"rows_to_frame needs len\(counts\) == len\(ids\)"):
        rows_to_frame(["p", "q"], counts, times, values, _numeric_fmt(), value_cols=["a", "b"])


def test_series_to_frame_matches_arrays_to_frame(df):
    series, fmt = frame_to_series(df)
    n = max(s.n_obs for s in series)
    times = np.zeros((3, n))
    values = np.zeros((3, n, 2))
    mask = np.zeros((3, n, 2), dtype=bool)
    for b, s in enumerate(series):
        times[b, : s.n_obs], values[b, : s.n_obs], mask[b, : s.n_obs] = s.times, s.values, s.mask
    lengths = np.array([s.n_obs for s in series])
    padded = arrays_to_frame([s.id for s in series], times, values, fmt, lengths=lengths, mask=mask)
    pd.testing.assert_frame_equal(padded, series_to_frame(series, fmt))


# --- errors: the frame itself -------------------------------------------------------------------


def test_error_df_not_a_dataframe(df):
    with pytest.raises(TypeError, match=r"`df` must be a pandas DataFrame; got dict"):
        frame_to_series(df.to_dict())


def test_error_multiindex_columns(df):
    frame = df.copy()
    frame.columns = pd.MultiIndex.from_product([["obs"], frame.columns])
    with pytest.raises(ValueError, match=r"flat column names; found a MultiIndex.*flatten"):
        frame_to_series(frame)


def test_error_duplicate_column_names(df):
    frame = df.copy()
    frame.columns = ["id", "time", "hr", "hr"]
    with pytest.raises(ValueError, match=r"unique column names; 'hr' appear more than once"):
        frame_to_series(frame)


def test_error_empty_frame(df):
    with pytest.raises(ValueError, match=r"at least one row; got an empty frame. Check the"):
        frame_to_series(df.iloc[:0])


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"id_col": "patient"}, "patient"),
        ({"time_col": "t"}, "t"),
        ({"value_cols": ["sbp"]}, "sbp"),
    ],
)
def test_error_missing_column(df, kwargs, name):
    with pytest.raises(ValueError, match=rf"column\(s\) '{name}'; not found among the available "):
        frame_to_series(df, **kwargs)


def test_error_no_feature_columns(df):
    with pytest.raises(ValueError, match=r"at least one feature column besides 'id' and 'time'"):
        frame_to_series(df[["id", "time"]])


def test_error_id_col_equals_time_col(df):
    with pytest.raises(ValueError, match=r"`id_col` and `time_col` must be different.*'id'"):
        frame_to_series(df, time_col="id")


@pytest.mark.parametrize(("col", "role"), [("id", "id"), ("time", "time")])
def test_error_value_col_is_id_or_time(df, col, role):
    with pytest.raises(ValueError, match=rf"must not include the {role} column '{col}'"):
        frame_to_series(df, value_cols=["hr", col])


def test_error_value_cols_empty(df):
    with pytest.raises(ValueError, match=r"`value_cols` must name at least one feature column"):
        frame_to_series(df, value_cols=[])


def test_error_value_cols_duplicated(df):
    with pytest.raises(ValueError, match=r"name each column once; 'hr' repeated"):
        frame_to_series(df, value_cols=["hr", "bp", "hr"])


def test_error_value_cols_a_string(df):
    with pytest.raises(TypeError, match=r"not a string; did you mean value_cols=\['hr'\]"):
        frame_to_series(df, value_cols="hr")


def test_error_non_string_column_names(df):
    with pytest.raises(TypeError, match=r"column names \(str\); got 0 \(int\).*columns=str"):
        frame_to_series(df.rename(columns={"hr": 0}))


# --- errors: features ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "found"),
    [
        (
            pd.Series(["60", "61", "62", "63", "64", "65"]),
            r"dtype str, e\.g\. '60' \(str\) at row 0",
        ),
        (pd.Series([1.0, "high", 3, 4, 5, 6], dtype=object), r"'high' \(str\) at row 1"),
        (pd.Series(pd.Categorical(["lo", "hi"] * 3)), r"a categorical column, e\.g\. 'lo'"),
        (pd.Series(pd.date_range("2024", periods=6)), r"dtype datetime64\[us\]"),
    ],
)
def test_error_non_numeric_feature(df, column, found):
    with pytest.raises(TypeError, match=rf"feature column 'hr' must hold numbers.*found .*{found}"):
        frame_to_series(df.assign(hr=column))


@pytest.mark.parametrize("bad", [-np.inf, np.inf])
def test_error_infinite_feature(df, bad):
    frame = df.assign(bp=[np.nan, 120.0, 110.0, bad, 112.0, 130.0])
    frame.index = list("uvwxyz")
    with pytest.raises(
        ValueError, match=rf"'bp' must be finite or NaN; found {bad} for series 'a' at row 'x'"
    ):
        frame_to_series(frame)


def test_error_series_without_observed_values(df):
    frame = df.assign(hr=[60.0, np.nan, 70.0, 72.0, 71.0, np.nan])
    frame.loc[5, "bp"] = np.nan
    with pytest.raises(ValueError, match=r"at least one observed value; series 'c' have none"):
        frame_to_series(frame)


# --- errors: ids and times ----------------------------------------------------------------------


def test_error_nan_ids(df):
    frame = df.assign(id=["b", None, "a", "a", None, "c"])
    with pytest.raises(
        ValueError, match=r"id column 'id' must have no missing values; found 2 \(rows 1, 4\)"
    ):
        frame_to_series(frame)


def test_error_duplicate_id_time(df):
    frame = df.assign(time=[5.0, 3.0, 1.0, 4.0, 4.0, 7.0])
    with pytest.raises(
        ValueError,
        match=r"series 'a' has several rows at time 4\.0 \(rows 3 and 4.*groupby\(\['id', 'time'\]",
    ):
        frame_to_series(frame)


@pytest.mark.parametrize("kind", ["numeric", "datetime"])
def test_error_missing_times(df, kind):
    frame, unit = _with_times(df, kind)
    frame.loc[[2, 5], "time"] = None
    with pytest.raises(
        ValueError, match=r"time column 'time' must have no missing values; found 2 \(rows 2, 5\)"
    ):
        frame_to_series(frame, time_unit=unit)


def test_error_infinite_times(df):
    with pytest.raises(ValueError, match=r"'time' must be finite; found inf at row 3"):
        frame_to_series(df.assign(time=[5.0, 3.0, 1.0, np.inf, 2.5, 7.0]))


def test_error_mixed_numbers_and_datetimes(df):
    mixed = pd.Series([5.0, 3.0, START, 4.0, 2.5, 7.0], dtype=object)
    with pytest.raises(
        TypeError,
        match=r"one type of time.*found a mix: Timestamp.*at row 2, but 5\.0 \(float\) at row 0"
        r".*pd\.to_datetime\(df\['time'\]\)",
    ):
        frame_to_series(df.assign(time=mixed), time_unit="h")


def test_error_string_times(df):
    strings = ["2024-01-0" + str(i) for i in range(1, 7)]
    with pytest.raises(
        TypeError, match=r"found strings, e\.g\. '2024-01-01' \(str\) at row 0.*pd\.to_datetime"
    ):
        frame_to_series(df.assign(time=strings))


def test_error_mixed_aware_and_naive_datetimes(df):
    utc = dt.timezone.utc
    times = [dt.datetime(2024, 1, d, tzinfo=utc if d == 3 else None) for d in range(1, 7)]
    with pytest.raises(TypeError, match=r"only tz-aware or only tz-naive.*row 2 is aware"):
        frame_to_series(df.assign(time=pd.Series(times, dtype=object)), time_unit="h")


def test_error_mixed_time_zones(df):
    times = [pd.Timestamp(2024, 1, d, tz="UTC" if d % 2 else "Asia/Tokyo") for d in range(1, 7)]
    with pytest.raises(TypeError, match=r"one time zone; found 'Asia/Tokyo', 'UTC'.*utc=True"):
        frame_to_series(df.assign(time=pd.Series(times, dtype=object)), time_unit="h")


@pytest.mark.parametrize(
    ("column", "found"),
    [
        (pd.Series([True, False] * 3), "found booleans"),
        (pd.Series(pd.Categorical([1.0, 2.0] * 3)), "found a categorical column"),
    ],
)
def test_error_unusable_time_dtype(df, column, found):
    with pytest.raises(TypeError, match=rf"time column 'time' must hold numbers.*{found}"):
        frame_to_series(df.assign(time=column))


@pytest.mark.parametrize("kind", ["datetime", "timedelta"])
def test_error_datetime_without_time_unit(df, kind):
    frame, _ = _with_times(df, kind)
    with pytest.raises(ValueError, match=rf"holds {kind}s.*time_unit=None; pass time_unit='h'"):
        frame_to_series(frame)


@pytest.mark.parametrize("unit", ["H", "hours", "T", "sec"])
def test_error_bad_time_unit(df, unit):
    frame, _ = _with_times(df, "datetime")
    valid = ", ".join(repr(u) for u in TIME_UNITS)
    with pytest.raises(ValueError, match=rf"must be one of {valid}; got '{unit}'"):
        frame_to_series(frame, time_unit=unit)


@pytest.mark.parametrize(
    ("unit", "message"),
    [("m", r"ambiguous.*time_unit='min'"), ("M", "months"), ("Y", "years")],
)
def test_error_ambiguous_time_unit(df, unit, message):
    frame, _ = _with_times(df, "datetime")
    with pytest.raises(ValueError, match=message):
        frame_to_series(frame, time_unit=unit)


def test_error_time_unit_with_numeric_times(df):
    with pytest.raises(ValueError, match=r"time_unit applies only to datetime or timedelta times"):
        frame_to_series(df, time_unit="h")


# --- errors: a fitted format --------------------------------------------------------------------


def test_error_fmt_new_frame_lacks_a_value_column(df):
    _, fmt = frame_to_series(df)
    with pytest.raises(ValueError, match=r"column\(s\) 'bp'; not found"):
        frame_to_series(df.drop(columns="bp"), fmt=fmt)


def test_error_fmt_new_frame_has_another_time_kind(df):
    _, fmt = frame_to_series(df)
    frame, _ = _with_times(df, "datetime")
    with pytest.raises(
        TypeError, match=r"'time' must be numbers, like the frame.*got tz-naive datetimes"
    ):
        frame_to_series(frame, fmt=fmt)


@pytest.mark.parametrize(
    "kwargs",
    [{"id_col": "patient"}, {"time_col": "t"}, {"value_cols": ["hr"]}, {"time_unit": "h"}],
)
def test_error_fmt_with_conflicting_arguments(df, kwargs):
    _, fmt = frame_to_series(df)
    (name,) = kwargs
    with pytest.raises(ValueError, match=rf"`{name}` must be left out when `fmt` is given"):
        frame_to_series(df, fmt=fmt, **kwargs)


def test_error_fmt_wrong_type(df):
    with pytest.raises(TypeError, match=r"`fmt` must be a LongFormat or None; got dict"):
        frame_to_series(df, fmt={"id_col": "id"})


# --- errors: LongFormat -------------------------------------------------------------------------


@pytest.fixture
def aware_fmt():
    return LongFormat("id", "time", ("x",), "datetime", "h", "2024-01-01T00:00:00+00:00", "UTC")


def test_error_times_to_float_numbers_for_datetimes(aware_fmt):
    with pytest.raises(TypeError, match=r"`times` must be tz-aware datetimes \(UTC\).*numbers"):
        aware_fmt.times_to_float(np.array([0.0, 1.0]))


def test_error_times_to_float_naive_for_aware(aware_fmt):
    with pytest.raises(TypeError, match=r"got tz-naive datetimes; localize them.*'UTC'"):
        aware_fmt.times_to_float(pd.date_range("2024", periods=2))


def test_error_times_to_float_aware_for_naive():
    fmt = LongFormat("id", "time", ("x",), "datetime", "h", "2024-01-01T00:00:00", None)
    with pytest.raises(TypeError, match=r"must be tz-naive datetimes.*tz_localize\(None\)"):
        fmt.times_to_float(pd.date_range("2024", periods=2, tz="UTC"))


@pytest.mark.parametrize("bad", [[0.0, np.nan], [pd.Timestamp("2024"), pd.NaT]])
def test_error_times_to_float_missing(bad):
    fmt = LongFormat("id", "time", ("x",), "numeric", None, None, None)
    with pytest.raises(ValueError, match=r"`times` must have no missing values; found 1"):
        fmt.times_to_float(bad)


def test_error_float_to_times_not_finite(aware_fmt):
    with pytest.raises(ValueError, match=r"finite float times; found nan at position 1"):
        aware_fmt.float_to_times(np.array([0.0, np.nan]))


def test_error_float_to_times_not_1d(aware_fmt):
    with pytest.raises(ValueError, match=r"`x` must be 1-D float times; got shape \(2, 2\)"):
        aware_fmt.float_to_times(np.zeros((2, 2)))


def test_error_from_dict_unknown_and_missing_keys(aware_fmt):
    d = aware_fmt.to_dict()
    del d["tz"]
    d["colour"] = "red"
    with pytest.raises(ValueError, match=r"unknown keys: \['colour'\]; missing keys: \['tz'\]"):
        LongFormat.from_dict(d)


def test_error_from_dict_not_a_dict():
    with pytest.raises(TypeError, match=r"needs a dict; got list"):
        LongFormat.from_dict([("id_col", "id")])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("numeric", "h", None, None), r"time_unit` applies only to datetime or timedelta"),
        (("timedelta", None, None, None), r"timedelta times need a `time_unit`"),
        (("datetime", "h", None, None), r"need `time_reference`, an ISO-8601 string"),
        (("datetime", "h", "not a date", None), r"must be an ISO-8601 datetime string"),
        (("datetime", "h", "2024-01-01", "Mars/Olympus"), r"time-zone name pandas knows"),
        (("timedelta", "h", "2024-01-01", None), r"apply only to datetime times"),
        (("weekly", None, None, None), r"`time_kind` must be one of"),
    ],
)
def test_error_invalid_long_format(args, message):
    with pytest.raises(ValueError, match=message):
        LongFormat("id", "time", ("x",), *args)


# --- errors: frames from series and arrays ------------------------------------------------------


def test_error_series_to_frame_empty():
    with pytest.raises(ValueError, match=r"at least one Series; got none"):
        series_to_frame([], _numeric_fmt())


def test_error_series_to_frame_feature_count():
    s = Series(id="a", times=np.zeros(1), values=np.zeros((1, 3)), mask=np.ones((1, 3), bool))
    with pytest.raises(
        ValueError, match=r"must have 2 features \(\['x', 'y'\]\); series 'a' has 3"
    ):
        series_to_frame([s], _numeric_fmt())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"times": np.zeros(3)}, r"`times` must have shape \(B, N\) with B = len\(ids\) = 2"),
        ({"ids": ["p"]}, r"B = len\(ids\) = 1; got \(2, 3\)"),
        ({"values": np.zeros((2, 3, 1))}, r"`values` must have shape \(B, N, F\) = \(2, 3, 2\)"),
        ({"value_cols": ["m"]}, r"\(B, N, F\) = \(2, 3, 1\)"),
        ({"mask": np.ones((2, 3), bool)}, r"`mask` must have the shape of `values`"),
        ({"lengths": [3]}, r"`lengths` must be 2 integers"),
        ({"lengths": [1.0, 2.0]}, r"`lengths` must be 2 integers.*float64"),
        ({"lengths": [4, 0]}, r"`lengths` must lie in \[0, N=3\]; got \[4, 0\]"),
        ({"value_cols": ["id", "m"]}, r"must not include the id column 'id'"),
    ],
)
def test_error_arrays_to_frame_shapes(kwargs, message):
    args = {"ids": ["p", "q"], "times": np.zeros((2, 3)), "values": np.zeros((2, 3, 2))}
    args.update(kwargs)
    rest = {k: v for k, v in args.items() if k not in ("ids", "times", "values")}
    with pytest.raises(ValueError, match=message):
        arrays_to_frame(args["ids"], args["times"], args["values"], _numeric_fmt(), **rest)


def test_error_arrays_to_frame_non_finite_kept_time():
    times = np.array([[0.0, np.nan], [1.0, np.nan]])
    values = np.zeros((2, 2, 2))
    arrays_to_frame(["p", "q"], times, values, _numeric_fmt(), lengths=[1, 1])  # padding: fine
    with pytest.raises(ValueError, match=r"series 'q' has nan at position 1; pass `lengths`"):
        arrays_to_frame(["p", "q"], times, values, _numeric_fmt(), lengths=[1, 2])
