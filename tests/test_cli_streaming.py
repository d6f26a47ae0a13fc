"""`latentode predict` and `sample` on tables read a chunk of whole series at a time (issue 15).

Streaming must give what reading the table whole gives: the same rows, ids verbatim, and
values within 1e-3 of each column's scale (a chunk's series are solved in other batches than in
one piece, and the decoder's solve still couples a batch's rows; with per-row solves this
tightens to 1e-6). Bad tables get one line naming the problem and the fix, and leave no output.
Every fit is tiny and quiet; the reader's block of rows is cut to a few rows, so that series
and kinds of time cross block boundaries.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
import traceback
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import latentode.data.streaming as streaming
from latentode.cli import main
from latentode.data import make_periodic, read_table
from latentode.data.streaming import TableWriter, iter_series_chunks
from latentode.estimator import LatentODE

pytest.importorskip("pyarrow")

ROOT = Path(__file__).parent.parent
TINY = {
    "latent_dim": 2,
    "encoder_hidden": 4,
    "decoder_width": 4,
    "decoder_depth": 1,
    "max_epochs": 1,
    "random_state": 0,
}
# ids that pandas' guessing would merge or drop, in an order that is not sorted
IDS = ["7", "001", "1", "NA", "000", "01", "1.0", "b", "a", "10", "2", "x y"]
START = pd.Timestamp("2024-03-01")


def _frame() -> pd.DataFrame:
    """12 series of 4 irregular times, rows of each series together, series in IDS order."""
    df = make_periodic(n_series=len(IDS), n_points=8, random_state=0).observed
    return df.assign(id=df["id"].map(dict(enumerate(IDS))))


DF = _frame()


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("stream") / "model"
    LatentODE(**TINY).fit(DF).save(folder)
    return folder


@pytest.fixture(scope="module")
def dates_model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("stream") / "dates-model"
    dated = DF.assign(time=START + pd.to_timedelta(DF["time"], unit="h"))
    LatentODE(**TINY).fit(dated, time_unit="h").save(folder)
    return folder


@pytest.fixture(autouse=True)
def _small_blocks(monkeypatch):
    """Blocks of 3 rows: every series (4 rows each) spans two or three blocks."""
    monkeypatch.setattr(streaming, "BLOCK_ROWS", 3)


def _run(*argv: str | Path) -> None:
    main([str(a) for a in argv])


def _predict(model: Path, data: Path, out: Path, *extra: str | int) -> pd.DataFrame:
    _run("predict", "--model", model, "--data", data, "--out", out, "--num-samples", 5, *extra)
    return read_table(out, id_col="id", time_col="time")


def _assert_same_values(streamed: pd.DataFrame, whole: pd.DataFrame, keys: list[str]) -> None:
    """Same rows (matched on ``keys``); values within 1e-3 of each column's scale."""
    assert len(streamed) == len(whole)
    a = streamed.sort_values(keys, ignore_index=True)
    b = whole.sort_values(keys, ignore_index=True)
    pd.testing.assert_frame_equal(a[keys], b[keys])
    for column in a.columns.difference(keys):
        scale = float(np.abs(b[column]).max())
        np.testing.assert_allclose(a[column], b[column], rtol=1e-3, atol=1e-3 * scale)


def _first_appearance(ids: pd.Series) -> list[str]:
    return list(pd.unique(ids))


# -- 1. streaming gives the one-piece answer ---------------------------------------------------


@pytest.mark.parametrize("chunk_series", [1, 5, 1000])
def test_streaming_a_csv_gives_the_whole_files_predictions_in_the_files_order(
    model, tmp_path, chunk_series
):
    data = tmp_path / "series.csv"
    DF.to_csv(data, index=False)
    whole = _predict(model, data, tmp_path / "whole.csv")
    streamed = _predict(model, data, tmp_path / "s.csv", "--chunk-series", chunk_series)
    _assert_same_values(streamed, whole, ["id", "time"])
    assert _first_appearance(streamed["id"]) == IDS  # verbatim, in the file's order


def test_a_parquet_dataset_partitioned_by_id_streams_without_options(model, tmp_path):
    """A folder is always streamed; ids from `id=001/` folder names are their text."""
    data = tmp_path / "series.csv"
    DF.to_csv(data, index=False)
    folder = tmp_path / "by-id"
    DF.to_parquet(folder, partition_cols=["id"], index=False)
    whole = _predict(model, data, tmp_path / "whole.csv")
    streamed = _predict(model, folder, tmp_path / "s.parquet")
    assert pd.read_parquet(tmp_path / "s.parquet")["id"].map(type).eq(str).all()
    _assert_same_values(streamed, whole, ["id", "time"])
    assert sorted(streamed["id"].unique()) == sorted(IDS)


def test_series_may_run_across_the_files_of_a_parquet_folder(model, tmp_path):
    data = tmp_path / "series.csv"
    DF.to_csv(data, index=False)
    folder = tmp_path / "parts"
    folder.mkdir()
    for k, rows in enumerate(np.array_split(np.arange(len(DF)), 3)):  # cuts inside series
        DF.iloc[rows].to_parquet(folder / f"part-{k}.parquet", index=False)
    (folder / "_SUCCESS").write_text("", encoding="utf-8")  # what Spark leaves: skipped
    whole = _predict(model, data, tmp_path / "whole.csv")
    streamed = _predict(model, folder, tmp_path / "s.csv", "--chunk-series", 4)
    _assert_same_values(streamed, whole, ["id", "time"])
    assert _first_appearance(streamed["id"]) == IDS


def test_a_parquet_file_streams_into_the_same_table_as_a_csv(model, tmp_path):
    data = tmp_path / "series.parquet"
    DF.to_parquet(data, index=False)
    as_csv = _predict(model, data, tmp_path / "s.csv", "--chunk-series", 5)
    as_parquet = _predict(model, data, tmp_path / "s.parquet", "--chunk-series", 5)
    pd.testing.assert_frame_equal(as_csv, as_parquet, check_dtype=False)


def test_streamed_samples_are_the_whole_files_samples(model, tmp_path):
    data = tmp_path / "series.csv"
    DF.to_csv(data, index=False)
    argv = ["sample", "--model", model, "--data", data, "--times", "0,1.5,4", "--n-samples", 3]
    _run(*argv, "--out", tmp_path / "whole.csv")
    _run(*argv, "--out", tmp_path / "s.csv", "--chunk-series", 5)
    whole = read_table(tmp_path / "whole.csv", id_col="id")
    streamed = read_table(tmp_path / "s.csv", id_col="id")
    _assert_same_values(streamed, whole, ["sample", "id", "time"])
    first_chunk = streamed.iloc[: 5 * 3 * 3]  # 3 samples x 5 series x 3 times
    assert first_chunk["sample"].is_monotonic_increasing  # by sample, then the file's order
    assert _first_appearance(first_chunk["id"]) == IDS[:5]


def test_dates_are_parsed_block_by_block_for_a_dates_model(dates_model, tmp_path):
    data = tmp_path / "dated.csv"
    dated = DF.assign(time=START + pd.to_timedelta(DF["time"], unit="h"))
    dated.assign(time=dated["time"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f")).to_csv(data, index=False)
    whole = _predict(dates_model, data, tmp_path / "whole.csv")
    streamed = _predict(dates_model, data, tmp_path / "s.csv", "--chunk-series", 3)
    assert pd.api.types.is_datetime64_any_dtype(streamed["time"])
    _assert_same_values(streamed, whole, ["id", "time"])


def test_one_progress_line_per_chunk_on_stderr_unless_quiet(model, tmp_path, capsys):
    data = tmp_path / "series.csv"
    DF.to_csv(data, index=False)
    _predict(model, data, tmp_path / "s.csv", "--chunk-series", 5)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 3  # 12 series: 5 + 5 + 2
    assert lines[0].startswith("latentode predict: chunk 1: 20 rows of 5 series")
    assert "12 series in 3 chunks" in captured.out
    _predict(model, data, tmp_path / "q.csv", "--chunk-series", 5, "--quiet")
    assert capsys.readouterr().err == ""


def test_a_failure_in_a_later_chunk_leaves_no_output(model, tmp_path):
    data = tmp_path / "bad.csv"
    bad = DF.astype({"x": object})
    bad.loc[bad.index[-1], "x"] = "n/d"  # text in the last series: refused by the model
    bad.to_csv(data, index=False)
    out = tmp_path / "out" / "s.csv"
    out.parent.mkdir()
    with pytest.raises(SystemExit) as info:
        _predict(model, data, out, "--chunk-series", 5)
    message = str(info.value)
    assert message.startswith("latentode predict: in rows 40–47 (lines 42–49)"), message
    assert list(out.parent.iterdir()) == []  # no table, no temporary file


def test_the_writer_puts_nothing_in_place_when_the_block_fails(tmp_path):
    out = tmp_path / "t.parquet"

    def write_then_fail() -> None:
        with TableWriter(out) as writer:
            writer.write(DF.iloc[:3])
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        write_then_fail()
    assert list(tmp_path.iterdir()) == []


def test_csv_streams_without_pyarrow(tmp_path):
    data = tmp_path / "series.csv"
    DF.to_csv(data, index=False)
    script = f"""
import sys
class _NoPyarrow:
    def find_spec(self, name, path=None, target=None):
        if name == "pyarrow" or name.startswith("pyarrow."):
            raise ImportError("pyarrow is blocked for this test")
sys.meta_path.insert(0, _NoPyarrow())
from latentode.data.streaming import TableWriter, iter_series_chunks
with TableWriter({str(tmp_path / "copy.csv")!r}) as out:
    for chunk in iter_series_chunks({str(data)!r}, id_col="id", time_col="time", n_series=5):
        out.write(chunk.frame)
assert "pyarrow" not in sys.modules
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    assert read_table(tmp_path / "copy.csv", id_col="id").equals(read_table(data, id_col="id"))


# -- 2. bad tables: one clear line, from latentode's own checks ----------------------------------


def _csv(frame: pd.DataFrame):
    def write(tmp: Path) -> Path:
        frame.to_csv(tmp / "data.csv", index=False)
        return tmp / "data.csv"

    return write


def _parquets(*frames: pd.DataFrame, extra: dict[str, bytes] | None = None):
    """A folder with one ``part-k.parquet`` per frame (and other files by name)."""

    def write(tmp: Path) -> Path:
        folder = tmp / "dataset"
        folder.mkdir()
        for k, frame in enumerate(frames):
            frame.to_parquet(folder / f"part-{k}.parquet", index=False)
        for name, data in (extra or {}).items():
            (folder / name).write_bytes(data)
        return folder

    return write


def _text(name: str, content: str):
    def write(tmp: Path) -> Path:
        (tmp / name).write_text(content, encoding="utf-8")
        return tmp / name

    return write


FIRST, REST = DF.iloc[:24], DF.iloc[24:]  # six whole series (eight blocks), and the rest
DATED = REST.assign(time=(START + pd.to_timedelta(REST["time"], unit="h")).astype(str))
CASES = [
    (
        "the id column missing in one file of a dataset",
        _parquets(FIRST, REST.drop(columns="id")),
        ValueError,
        "lacks column(s) 'id'",
    ),
    (
        "a feature missing in one file of a dataset",
        _parquets(FIRST, REST.drop(columns="x")),
        ValueError,
        "lacks column(s) 'x'",
    ),
    (
        "ids of another type in one file",
        _parquets(FIRST, REST.assign(id=np.arange(len(REST)) // 8)),
        ValueError,
        "must have one type",
    ),
    (
        "numbers, then dates, in later rows of a CSV",
        _csv(pd.concat([FIRST, DATED])),
        ValueError,
        "holds numbers from row 0 (line 2) and dates at row 24 (line 26)",
    ),
    (
        "numbers in one Parquet file, dates in the next",
        _parquets(FIRST, REST.assign(time=START + pd.to_timedelta(REST["time"], unit="h"))),
        ValueError,
        "one kind of time",
    ),
    (
        "a series' rows split by another series' in a CSV",
        _csv(pd.concat([DF, DF.iloc[:1]])),
        ValueError,
        "series '7' (id column 'id') starts at row 0 (line 2) and comes back at row 48 (line 50)",
    ),
    (
        "a series' rows split across Parquet files",
        _parquets(FIRST, REST, FIRST.iloc[:2]),
        ValueError,
        "must be contiguous",
    ),
    ("a CSV with a header only", _csv(DF.iloc[:0]), ValueError, "holds no rows"),
    ("a dataset of empty files", _parquets(DF.iloc[:0]), ValueError, "holds no rows"),
    (
        "a folder of CSV files",
        _parquets(extra={"a.csv": b"id,time,x\n1,0,0\n"}),
        ValueError,
        "is not a Parquet dataset",
    ),
    ("an empty folder", _parquets(), ValueError, "holds no files"),
    (
        "a .parquet file that is not Parquet",
        _parquets(FIRST, extra={"part-9.parquet": b"id,time,x\n"}),
        ValueError,
        "is not a readable Parquet file",
    ),
    (
        "a CSV row without an id",
        _text("data.csv", "id,time,x\na,0,1\na,1,2\n,2,3\n"),
        ValueError,
        "the first at row 2 (line 4)",
    ),
    ("a CSV without the id column", _csv(DF.drop(columns="id")), ValueError, "has no id column"),
    ("a file of another type", _text("data.txt", "id,time,x\n"), ValueError, ".csv or .parquet"),
    ("no such file", lambda tmp: tmp / "none.csv", FileNotFoundError, "no data file or folder"),
]


@pytest.mark.parametrize(("name", "make", "error", "words"), CASES, ids=[c[0] for c in CASES])
def test_the_reader_refuses_with_a_clear_error(tmp_path, name, make, error, words):
    path = make(tmp_path)
    columns = ["id", "time", "x"]
    chunks = iter_series_chunks(path, id_col="id", time_col="time", n_series=2, columns=columns)
    with pytest.raises(error) as info:
        list(chunks)
    assert words in str(info.value), f"{name}: {str(info.value)!r} lacks {words!r}"
    assert type(info.value) is error
    origin = traceback.extract_tb(info.tb)[-1].filename
    assert "latentode" in Path(origin).parts, f"{name}: raised from {origin}"


@pytest.mark.parametrize(("name", "make", "error", "words"), CASES, ids=[c[0] for c in CASES])
def test_the_command_says_it_in_one_line_and_writes_nothing(
    model, tmp_path, name, make, error, words
):
    path = make(tmp_path)
    out = tmp_path / "out" / "p.csv"
    out.parent.mkdir()
    with pytest.raises(SystemExit) as info:
        _predict(model, path, out, "--chunk-series", 2)
    message = str(info.value)
    assert message.startswith("latentode predict: "), message
    assert words in message, message
    assert "\n" not in message
    assert list(out.parent.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"n_series": 0}, ValueError, "`n_series` must be a positive integer"),
        ({"parse_dates": "yes"}, TypeError, "`parse_dates` must be None"),
    ],
)
def test_the_readers_settings_are_checked(tmp_path, kwargs, error, words):
    DF.to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(error, match=re.escape(words)):
        list(iter_series_chunks(tmp_path / "d.csv", id_col="id", **kwargs))


def test_the_writer_refuses_frames_of_other_columns_and_an_empty_table(tmp_path):
    def write(*frames: pd.DataFrame) -> None:
        with TableWriter(tmp_path / "t.csv") as writer:
            for frame in frames:
                writer.write(frame)

    with pytest.raises(ValueError, match=r"must have the columns \['id', 'time', 'x'\]"):
        write(DF, DF.rename(columns={"x": "y"}))
    with pytest.raises(ValueError, match="nothing was written"):
        write()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["sample", "--times", "0,1", "--chunk-series", "2"], "give --data"),
        (["predict", "--data", "d.csv", "--chunk-series", "0"], "must be a positive integer"),
    ],
)
def test_streaming_options_are_checked(model, tmp_path, capsys, argv, words):
    with pytest.raises(SystemExit) as info:
        _run(*argv, "--model", model, "--out", tmp_path / "o.csv")
    assert words in f"{info.value} {capsys.readouterr().err}"


# -- 3. bounded memory: streaming fits under a cap that reading in one piece exceeds -----------


def _benchmark():
    path = ROOT / "benchmarks" / "predict_stream.py"
    spec = importlib.util.spec_from_file_location("benchmarks_predict_stream", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # ~45 s: it fits, writes a large file and predicts it twice under a cap
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc: Linux")
@pytest.mark.timeout(900)
def test_streaming_succeeds_under_a_memory_cap_where_one_piece_fails(tmp_path):
    """The small version of ``benchmarks/predict_stream.py``: 100 series predicted at 1000
    times with 32 features (100,000 output rows of 130 columns, ~100 MiB a copy). The cap is
    the address space of a run on 10 series (imports, model, one chunk's work) + 150 MiB.
    Streaming 10 series at a time needed ~45 MiB of it; one piece ~450 MiB. Both margins
    hold with the per-row solver too, which shrinks the work of a chunk, not the output held."""
    bench = _benchmark()
    paths = bench.write_data(tmp_path, n_series=100, n_points=8, n_features=32, n_train=16)
    train = pd.read_csv(paths["train"], dtype={"id": str})
    model = tmp_path / "model"
    LatentODE(**bench.FIT_SETTINGS).fit(train).save(model)
    settings = argparse.Namespace(num_samples=2, times_points=1000)
    out = tmp_path / "pred.parquet"
    floor = bench.run_cli("floor", bench.predict_args(model, paths["floor"], out, settings))
    assert floor.ok, floor.error
    cap_mb = floor.vmpeak_mb + 150
    cap = int(cap_mb * bench.MB)
    argv = bench.predict_args(model, paths["csv"], out, settings)
    streamed = bench.run_cli("stream", [*argv, "--chunk-series", "10"], cap)
    whole = bench.run_cli("one piece", argv, cap)
    assert streamed.ok, streamed.error
    assert streamed.vmpeak_mb <= cap_mb
    assert len(pd.read_parquet(out)) == 100 * 1000
    assert not whole.ok, f"one piece fitted under {cap_mb:.0f} MiB (VmPeak {whole.vmpeak_mb})"
    assert re.search("memory|allocate|bad_alloc", whole.error, re.IGNORECASE), whole.error
