"""Tables on disk and the command line's times: odd ids that must survive, and bad times that get
a clear error (issue 14).

Each error case names the call, the input, the exception type and words its message must hold
(what was expected, what was found, the fix). As in ``test_malformed.py``, the raising frame
must be latentode's own code. Each valid-id case lists ids that pandas' type guessing would
merge, rewrite or drop; they must come back verbatim and distinct.
"""

from __future__ import annotations

import csv
import traceback
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from latentode.cli import main
from latentode.data import make_periodic, read_table
from latentode.estimator import LatentODE
from latentode.lightning import IrregularTimeSeriesDataModule

CONFIGS = Path(__file__).parent.parent.parent / "configs"
TINY = {"latent_dim": 2, "encoder_hidden": 4, "decoder_width": 4, "max_epochs": 1}
DF = make_periodic(n_series=6, n_points=6, random_state=0).observed  # id, time, x
HOURLY = DF.assign(time=pd.Timestamp("2024-03-01") + pd.to_timedelta(DF["time"], unit="h"))


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli-files")
    numeric = tmp / "numeric-model"
    LatentODE(**TINY).fit(DF).save(numeric)
    hourly = tmp / "hourly-model"
    LatentODE(**TINY).fit(HOURLY, time_unit="h").save(hourly)
    files = {
        "series": DF,
        "no id": DF.assign(id=DF["id"].astype(str).where(DF.index != 3, "")),
        "slashed dates": HOURLY.assign(time=HOURLY["time"].dt.strftime("%m/%d/%Y %H:%M")),
        "hourly": HOURLY,
        "hourly UTC": HOURLY.assign(time=HOURLY["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")),
        "durations": DF.assign(time=pd.to_timedelta(DF["time"], unit="h").astype(str)),
        "feb 30": HOURLY.assign(time=HOURLY["time"].astype(str).where(DF.index != 4, "2024-02-30")),
        "offset or not": HOURLY.assign(
            time=HOURLY["time"]
            .dt.strftime("%Y-%m-%dT%H:%M:%S")
            .where(DF.index != 2, "2024-03-01T02:00:00Z")
        ),
        "half offset": HOURLY.assign(
            time=HOURLY["time"]
            .dt.strftime("%Y-%m-%dT%H:%M:%S")
            .where(DF.index % 2 == 0, HOURLY["time"].dt.strftime("%Y-%m-%dT%H:%M:%S+01:00"))
        ),
        "numbers and text": DF.assign(time=DF["time"].map(repr).where(DF.index != 5, "5h")),
    }
    paths = {name: tmp / f"{name.replace(' ', '-')}.csv" for name in files}
    for name, frame in files.items():
        frame.to_csv(paths[name], index=False)
    return {"tmp": tmp, "numeric_model": numeric, "hourly_model": hourly, **paths}


def _read(name, **kwargs):
    return lambda ctx: read_table(ctx[name], id_col="id", time_col="time", **kwargs)


def _cli(*argv):
    def run(ctx):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Lightning's advice on workers and small batches
            main([a.format(**ctx) for a in argv])

    return run


def _predict(model, data, *extra):
    return _cli("predict", "--model", f"{{{model}}}", "--data", f"{{{data}}}", *extra,
                "--out", "{tmp}/p.csv", "--overwrite")  # fmt: skip


def _fit(config, data, *extra):
    config, data = str(CONFIGS / config), f"--data.data={{{data}}}"
    return _cli("fit", "--config", config, data, "--trainer.max_epochs=1", *extra,
                "--out={tmp}/fitted", "--overwrite=true")  # fmt: skip


CASES = [
    # -- read_table: the time column's text
    (
        "read: dates that are not ISO-8601",
        _read("slashed dates"),
        ValueError,
        "found '03/01/2024 00:56' at row 0 (line 2); rewrite it",
    ),
    ("read: 30 February", _read("feb 30"), ValueError, "'2024-02-30' at row 4 (line 6) is not a"),
    ("read: UTC offset on some times only", _read("offset or not"), ValueError, "or none"),
    ("read: numbers mixed with text", _read("numbers and text"), ValueError, "mix of numbers"),
    (
        "read: parse_dates=True on durations",
        _read("durations", parse_dates=True),
        ValueError,
        "must hold ISO-8601 dates",
    ),
    ("read: parse_dates='yes'", _read("series", parse_dates="yes"), TypeError, "True or False"),
    (
        "data module: parse_dates='auto'",
        lambda ctx: IrregularTimeSeriesDataModule(str(ctx["series"]), parse_dates="auto"),
        TypeError,
        "`parse_dates` must be None",
    ),
    # -- latentode predict / sample
    (
        "predict: an empty id field",
        _predict("numeric_model", "no id"),
        SystemExit,
        "1 row(s) have none, the first at row 3 (line 5); fill in their ids",
    ),
    (
        "predict: non-ISO dates for a date model",
        _predict("hourly_model", "slashed dates"),
        SystemExit,
        "must hold ISO-8601 dates or date-times",
    ),
    (
        "predict: durations for a date model",
        _predict("hourly_model", "durations"),
        SystemExit,
        "must hold ISO-8601 dates",
    ),
    (
        "predict: UTC times for a model of local times",
        _predict("hourly_model", "hourly UTC"),
        SystemExit,
        "must be tz-naive datetimes",
    ),
    (
        "predict: numbers for a date model",
        _predict("hourly_model", "series"),
        SystemExit,
        "datetimes",
    ),
    (
        "predict: --times mixing a date and a duration",
        _predict("hourly_model", "hourly", "--times", "2024-03-01,1h"),
        SystemExit,
        "all of one form",
    ),
    (
        "predict: --times in words",
        _predict("numeric_model", "series", "--times", "tomorrow"),
        SystemExit,
        "found 'tomorrow' at item 1",
    ),
    (
        "sample: --times empty",
        _cli("sample", "--model", "{numeric_model}", "--times", ",", "--out", "{tmp}/s.csv"),
        SystemExit,
        "--times is empty",
    ),
    # -- latentode fit: one line, not a traceback
    (
        "fit: non-ISO dates",
        _fit("periodic.yaml", "slashed dates", "--data.time_unit=h"),
        SystemExit,
        "latentode fit: time column 'time'",
    ),
    (
        "fit: dates through a config without time_unit",
        _fit("periodic.yaml", "hourly"),
        SystemExit,
        "pass time_unit='h'",
    ),
    (
        "fit: an empty id field",
        _fit("periodic.yaml", "no id"),
        SystemExit,
        "latentode fit: id column 'id'",
    ),
    (
        "fit: --data.parse_dates=true on durations",
        _fit("periodic.yaml", "durations", "--data.parse_dates=true", "--data.time_unit=h"),
        SystemExit,
        "must hold ISO-8601 dates",
    ),
]


def test_at_least_12_cases():
    assert len(CASES) >= 12


@pytest.mark.parametrize(("name", "call", "error", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_tables_and_times_get_a_clear_error(ctx, name, call, error, words):
    with pytest.raises(error) as info:
        call(ctx)
    assert words in str(info.value), f"{name}: message {str(info.value)!r} lacks {words!r}"
    assert type(info.value) is error
    origin = traceback.extract_tb(info.tb)[-1].filename
    assert "latentode" in Path(origin).parts, f"{name}: raised from {origin}"
    assert info.value.__cause__ is None or isinstance(info.value.__cause__, type(info.value))


VALID_IDS = [
    ("zero-padded", ["001", "1", "01"]),
    ("all zeros", ["000", "0"]),
    ("spaces around", [" 1", "1", "1 "]),
    ("float-looking", ["1.0", "1", "1e0"]),
    ("missing-looking words", ["NA", "nan", "None", "null", "N/A"]),
    ("boolean-looking", ["True", "true", "1"]),
    ("signed zero", ["-0", "+0", "0"]),
    ("big numbers", ["12345678901234567890", "12345678901234567891"]),
    ("text with commas and quotes", ["a,b", 'say "hi"', "a"]),
    ("non-ASCII", ["é", "e", "日本"]),
]


@pytest.mark.parametrize(("name", "ids"), VALID_IDS, ids=[c[0] for c in VALID_IDS])
def test_ids_come_back_verbatim_and_distinct(ctx, name, ids, tmp_path):
    frame = DF[DF["id"] < len(ids)].copy()
    frame["id"] = frame["id"].map(dict(enumerate(ids)))
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    out = tmp_path / "pred.csv"
    argv = [
        "predict",
        "--model",
        str(ctx["numeric_model"]),
        "--data",
        str(data),
        "--num-samples",
        "3",
    ]
    assert main([*argv, "--out", str(out)]) == 0
    with out.open(encoding="utf-8", newline="") as f:
        got = [row["id"] for row in csv.DictReader(f)]
    assert sorted(set(got)) == sorted(ids)
    for sid in ids:  # each series predicted at its own times: nothing merged or dropped
        assert got.count(sid) == int((frame["id"] == sid).sum())
    assert np.isfinite(pd.read_csv(out, dtype={"id": str})["x"]).all()
