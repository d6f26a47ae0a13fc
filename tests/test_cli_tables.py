"""Tables on disk through the `latentode` command: ids verbatim, every kind of time, the units of
`--times`, and what the command needs installed (issue 14).

Every fit runs on a tiny quiet budget (one epoch, a two-dimensional latent state).
"""

from __future__ import annotations

import csv
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from latentode.cli import _parse_times, main
from latentode.data import make_periodic, read_table
from latentode.estimator import LatentODE

ROOT = Path(__file__).parent.parent
CONFIGS = ROOT / "configs"
TINY_FIT = [
    "--trainer.max_epochs=1",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--trainer.accelerator=cpu",
    "--model.latent_dim=2",
    "--model.encoder_hidden=4",
    "--model.decoder_width=8",
]
START = pd.Timestamp("2024-03-01")
IDS = ["001", "1", "000", "01", "7", "1.0"]  # pandas' guessing merges 001/1/01/1.0, reads 000 as 0


def _hours(n_series: int = 6, n_points: int = 6) -> pd.DataFrame:
    """Irregular hours per series (no two series alike), as float hours."""
    rng = np.random.default_rng(0)
    rows = []
    for i, sid in enumerate(IDS[:n_series]):
        hours = np.sort(rng.choice(np.arange(1, 48), size=n_points, replace=False)) / 2.0
        rows += [(sid, h, np.sin(h / 3 + i)) for h in hours]
    return pd.DataFrame(rows, columns=["sid", "hours", "x"])


def _write(kind: str, path: Path, id_col: str, time_col: str) -> Path:
    """A CSV whose time column holds one kind of time, written as text the way users write it."""
    frame = _hours()
    hours = pd.to_timedelta(frame["hours"], unit="h")
    text = {
        "numbers": frame["hours"].map(repr),
        "dates": (START + pd.to_timedelta(frame["hours"] * 2, unit="D")).dt.strftime("%Y-%m-%d"),
        "date-times": (START + hours).dt.strftime("%Y-%m-%dT%H:%M:%S"),
        "date-times with offset": (START + hours).dt.strftime("%Y-%m-%dT%H:%M:%S+01:00"),
        "durations": hours.map(str),
    }[kind]
    table = pd.DataFrame({id_col: frame["sid"], time_col: text, "x": frame["x"]})
    table.to_csv(path, index=False)
    return path


def _fit(config: str, data: Path, out: Path, *extra: str) -> Path:
    argv = ["fit", "--config", str(CONFIGS / config), f"--data.data={data}", *TINY_FIT, *extra]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's advice on workers and small batches
        assert main([*argv, f"--out={out}"]) == 0
    return out


def _column(path: Path, name: str) -> list[str]:
    """A CSV column as the text in the file (no type guessing)."""
    with path.open(encoding="utf-8", newline="") as f:
        return [row[name] for row in csv.DictReader(f)]


# -- 1. ids round-trip exactly --------------------------------------------------------------


@pytest.fixture(scope="module")
def id_model(tmp_path_factory):
    """csv.yaml fitted on six series whose ids pandas would merge or rewrite."""
    root = tmp_path_factory.mktemp("ids")
    data = _write("numbers", root / "labs.csv", "patient", "taken")
    return _fit("csv.yaml", data, root / "model"), data


def test_ids_that_look_alike_stay_distinct_and_verbatim_through_fit_predict_sample_evaluate(
    id_model, tmp_path, capsys
):
    folder, data = id_model
    out = tmp_path / "pred.csv"
    assert main(["predict", "--model", str(folder), "--data", str(data), "--out", str(out)]) == 0
    ids = _column(out, "patient")
    assert sorted(set(ids)) == sorted(IDS)
    assert ids.count("000") == 6  # six rows each: nothing merged, "000" not written as 0
    sampled = tmp_path / "post.csv"
    argv = ["sample", "--model", str(folder), "--data", str(data), "--times", "1,2"]
    assert main([*argv, "--n-samples", "2", "--out", str(sampled)]) == 0
    assert sorted(set(_column(sampled, "patient"))) == sorted(IDS)
    assert len(_column(sampled, "patient")) == 2 * 6 * 2
    assert main(["evaluate", "--model", str(folder), "--data", str(data)]) == 0
    # a model fitted from the CLI on text ids predicts from Python with text ids too
    frame = read_table(data, id_col="patient", time_col="taken")
    pred = LatentODE.load(folder).predict(frame, num_samples=5)
    assert sorted(pred["patient"].unique()) == sorted(IDS)


def test_a_model_fitted_on_int_ids_predicts_a_csv_whose_ids_are_text(tmp_path):
    """Ids are labels for the output: a Python fit on ints serves a CSV of any ids."""
    train = make_periodic(n_series=6, n_points=8, random_state=0).observed  # int ids 0..5
    model = LatentODE(latent_dim=2, encoder_hidden=4, decoder_width=4, max_epochs=1).fit(train)
    model.save(tmp_path / "model")
    new = train[train["id"] < 2].copy()
    new["id"] = new["id"].map({0: "01", 1: "1"})  # one int id written two ways: two series
    new.to_csv(tmp_path / "new.csv", index=False)
    out = tmp_path / "pred.csv"
    argv = ["predict", "--model", str(tmp_path / "model"), "--data", str(tmp_path / "new.csv")]
    assert main([*argv, "--num-samples", "5", "--out", str(out)]) == 0
    ids = _column(out, "id")
    assert sorted(set(ids)) == ["01", "1"]
    assert ids.count("01") == (new["id"] == "01").sum()


def test_an_events_file_matches_its_series_by_their_text_ids(tmp_path):
    """fit reads the events file's ids as text too, so its 001 and 1 are the data's."""
    data = _write("numbers", tmp_path / "data.csv", "id", "time")
    frame = read_table(data, id_col="id", time_col="time")
    window = frame.groupby("id")["time"].agg(["min", "max"])
    events = pd.DataFrame(
        {"id": window.index, "time": (window["min"] + window["max"]) / 2, "kind": "dose"}
    )
    events.to_csv(tmp_path / "events.csv", index=False)
    extra = ("--model.n_event_kinds=1", f"--data.events={tmp_path / 'events.csv'}")
    model = LatentODE.load(_fit("periodic.yaml", data, tmp_path / "model", *extra))
    assert model.event_kinds_ == ["dose"]


def test_parquet_keeps_its_id_types(id_model, tmp_path):
    pytest.importorskip("pyarrow")
    folder, data = id_model
    frame = pd.read_csv(data, dtype={"patient": str})
    frame.to_parquet(tmp_path / "text.parquet")
    out = tmp_path / "pred.parquet"
    argv = ["predict", "--model", str(folder), "--data", str(tmp_path / "text.parquet")]
    assert main([*argv, "--num-samples", "5", "--out", str(out)]) == 0
    assert sorted(pd.read_parquet(out)["patient"].unique()) == sorted(IDS)
    ints = frame.assign(patient=pd.factorize(frame["patient"])[0] + 10)
    ints.to_parquet(tmp_path / "ints.parquet")
    argv = ["predict", "--model", str(folder), "--data", str(tmp_path / "ints.parquet")]
    assert main([*argv, "--num-samples", "5", "--out", str(tmp_path / "i.parquet")]) == 0
    back = pd.read_parquet(tmp_path / "i.parquet")["patient"]
    assert pd.api.types.is_integer_dtype(back)
    assert sorted(back.unique()) == list(range(10, 16))


# -- 2. every kind of CSV time through every config meant for files --------------------------

KINDS = ["numbers", "dates", "date-times", "date-times with offset", "durations"]
# configs/csv.yaml is the one for files (columns patient/taken, time_unit h); the synthetic
# configs read a file as well through --data.data (columns id/time, no time_unit).
MATRIX = [("csv.yaml", kind, ()) for kind in KINDS] + [
    (config, kind, () if kind == "numbers" else ("--data.time_unit=h",))
    for config in ("periodic.yaml", "spiral.yaml")
    for kind in ("numbers", "date-times")
]


@pytest.mark.parametrize(
    ("config", "kind", "extra"), MATRIX, ids=[f"{c[:-5]}-{k}" for c, k, _ in MATRIX]
)
def test_each_kind_of_csv_fits_through_the_config_and_predicts(config, kind, extra, tmp_path):
    id_col, time_col = ("patient", "taken") if config == "csv.yaml" else ("id", "time")
    data = _write(kind, tmp_path / "data.csv", id_col, time_col)
    folder = _fit(config, data, tmp_path / "model", *extra)
    model = LatentODE.load(folder)
    expected_kind = {"numbers": "numeric", "durations": "timedelta"}.get(kind, "datetime")
    assert model.format_.time_kind == expected_kind
    assert model.format_.time_unit == (None if kind == "numbers" else "h")
    out = tmp_path / "pred.csv"
    argv = ["predict", "--model", str(folder), "--data", str(data), "--num-samples", "5"]
    assert main([*argv, "--out", str(out)]) == 0
    given = read_table(data, id_col=id_col, time_col=time_col)
    pred = read_table(out, id_col=id_col, time_col=time_col)
    # predictions at each series' own times, in the file's ids and kind of time (and zone)
    assert pred[id_col].tolist() == given.sort_values([id_col, time_col])[id_col].tolist()
    key = [id_col, time_col]
    pd.testing.assert_frame_equal(
        pred[key].sort_values(key, ignore_index=True),
        given[key].sort_values(key, ignore_index=True),
        check_dtype=False,
    )
    assert np.isfinite(pred["x"]).all()


# -- 3. what `latentode fit` needs installed --------------------------------------------------


def test_the_plain_install_brings_jsonargparse_and_csv_needs_no_pyarrow():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    main_deps = " ".join(project["dependencies"])
    assert "jsonargparse[signatures]" in main_deps  # README: pip install -e ".[plot]"
    assert "pyarrow" not in main_deps
    assert {"cli", "plot", "test", "datasets"} <= set(project["optional-dependencies"])


def test_csv_files_are_read_and_written_without_pyarrow(id_model, tmp_path):
    folder, data = id_model
    script = f"""
import sys
class _NoPyarrow:
    def find_spec(self, name, path=None, target=None):
        if name == "pyarrow" or name.startswith("pyarrow."):
            raise ImportError("pyarrow is blocked for this test")
sys.meta_path.insert(0, _NoPyarrow())
from latentode.cli import main
main(["predict", "--model", {str(folder)!r}, "--data", {str(data)!r}, "--num-samples", "3",
      "--out", {str(tmp_path / "p.csv")!r}])
assert "pyarrow" not in sys.modules
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    assert sorted(set(_column(tmp_path / "p.csv", "patient"))) == sorted(IDS)


# -- 4. the units of --times -------------------------------------------------------------------


def test_times_text_is_numbers_dates_or_durations():
    assert _parse_times("0,1,2.5") == [0.0, 1.0, 2.5]
    assert _parse_times(["0", "1", "2.5"]) == [0.0, 1.0, 2.5]  # --times 0 1 2.5
    dates = _parse_times(["2024-03-01T06:00,2024-03-02"])
    assert list(dates) == [pd.Timestamp("2024-03-01 06:00"), pd.Timestamp("2024-03-02")]
    # a time of day without a date is a duration, not today's date at that hour
    assert list(_parse_times("00:30:00,01:00:00")) == [pd.Timedelta("30min"), pd.Timedelta("1h")]
    assert list(_parse_times(["90min", "1 days 02:00:00"])) == [
        pd.Timedelta("90min"),
        pd.Timedelta("26h"),
    ]


@pytest.fixture(scope="module")
def time_models(tmp_path_factory):
    """csv.yaml fitted on hourly date-times and on durations (time_unit h)."""
    root = tmp_path_factory.mktemp("units")
    models = {}
    for kind in ("date-times", "durations"):
        data = _write(kind, root / f"{kind}.csv", "patient", "taken")
        models[kind] = (_fit("csv.yaml", data, root / kind), data)
    return models


def _sample_times(folder: Path, out: Path, *times: str) -> list[pd.Timedelta]:
    argv = ["sample", "--model", str(folder), "--times", *times, "--n-samples", "1"]
    assert main([*argv, "--out", str(out)]) == 0
    return pd.to_timedelta(_column(out, "taken")).tolist()


def test_sample_takes_durations_for_a_datetime_model(time_models, tmp_path):
    folder, _ = time_models["date-times"]
    got = _sample_times(folder, tmp_path / "s.csv", "00:00:00,01:30:00")
    assert got == [pd.Timedelta(0), pd.Timedelta("90min")]
    got = _sample_times(folder, tmp_path / "t.csv", "0h", "90min")  # space-separated
    assert got == [pd.Timedelta(0), pd.Timedelta("90min")]


def test_predict_takes_dates_and_a_horizon_in_hours_for_a_datetime_model(time_models, tmp_path):
    folder, data = time_models["date-times"]
    base = ["predict", "--model", str(folder), "--data", str(data), "--num-samples", "3"]
    out = tmp_path / "p.csv"
    assert main([*base, "--times", "2024-03-01T06:00", "2024-03-02", "--out", str(out)]) == 0
    assert set(_column(out, "taken")) == {"2024-03-01 06:00:00", "2024-03-02 00:00:00"}
    ahead = tmp_path / "h.csv"
    argv = [*base, "--horizon", "2", "--horizon-points", "4", "--out", str(ahead)]
    assert main(argv) == 0
    pred = read_table(ahead, id_col="patient", time_col="taken")
    last = read_table(data, id_col="patient", time_col="taken").groupby("patient")["taken"].max()
    step = pred.groupby("patient")["taken"].max() - last
    assert (step == pd.Timedelta("2h")).all()


@pytest.mark.parametrize("kind", ["date-times", "durations"])
def test_sample_reads_plain_numbers_in_the_models_time_unit(time_models, kind, tmp_path):
    """`--times 0,1.5` for a model fitted with time_unit='h' means 0 h and 1.5 h since the new
    series' start, not 0 and 1.5 nanoseconds."""
    folder, _ = time_models[kind]
    got = _sample_times(folder, tmp_path / "s.csv", "0,1.5")
    assert got == [pd.Timedelta(0), pd.Timedelta("90min")]


def test_predict_reads_plain_numbers_as_hours_since_each_series_start(time_models, tmp_path):
    """For datetimes, numbers in time_unit count from each series' first observation (as
    --horizon counts from its last): `--times 0,1.5` → first and first + 1.5 h."""
    folder, data = time_models["date-times"]
    out = tmp_path / "p.csv"
    argv = ["predict", "--model", str(folder), "--data", str(data), "--times", "0,1.5"]
    assert main([*argv, "--num-samples", "3", "--out", str(out)]) == 0
    pred = read_table(out, id_col="patient", time_col="taken")
    first = read_table(data, id_col="patient", time_col="taken").groupby("patient")["taken"].min()
    for sid, times in pred.groupby("patient")["taken"]:
        assert times.tolist() == [first[sid], first[sid] + pd.Timedelta("90min")]


def test_predict_reads_plain_numbers_as_durations_in_hours(time_models, tmp_path):
    """For durations, numbers in time_unit are durations on the data's own axis: 1.5 → 1.5 h."""
    folder, data = time_models["durations"]
    out = tmp_path / "p.csv"
    argv = ["predict", "--model", str(folder), "--data", str(data), "--times", "0,1.5"]
    assert main([*argv, "--num-samples", "3", "--out", str(out)]) == 0
    got = set(pd.to_timedelta(_column(out, "taken")))
    assert got == {pd.Timedelta(0), pd.Timedelta("90min")}
