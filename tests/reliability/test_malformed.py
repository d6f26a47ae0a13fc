"""Hostile and malformed input: a clear ValueError/TypeError/FileNotFoundError, never a deep trace.

Each case names the call, the bad input, the exception type and words its message must hold
(the problem and the fix). The raising frame must be latentode's own code: an error that
escapes from inside torch or pandas is a failure even when its type is right.
"""

from __future__ import annotations

import json
import shutil
import traceback
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from latentode.cli import main
from latentode.data import make_clinical_events, make_periodic
from latentode.estimator import LatentODE

TINY = {
    "latent_dim": 2,
    "encoder_hidden": 4,
    "decoder_width": 4,
    "decoder_depth": 1,
    "max_epochs": 1,
    "random_state": 0,
}
DF = make_periodic(n_series=8, n_points=8, random_state=0).observed
EVENTS = make_clinical_events(n_series=6, n_labs=5, random_state=0)


@pytest.fixture(scope="module")
def fitted():
    return LatentODE(**TINY).fit(DF)


@pytest.fixture(scope="module")
def poisson():
    return LatentODE(**TINY, poisson=True).fit(EVENTS.observed, events=EVENTS.events)


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved") / "model"
    fitted.save(folder)
    return folder


def _fit(frame, **kwargs):
    return lambda ctx: LatentODE(**TINY).fit(frame, **kwargs)


def _tz_mix():
    times = [pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-01-02")]
    return pd.DataFrame({"id": [0, 0], "time": pd.Series(times, dtype=object), "x": [1.0, 2.0]})


def _broken_model(saved: Path, tmp: Path, how: str) -> Path:
    folder = tmp / f"model-{how}".replace(" ", "-")
    shutil.copytree(saved, folder, dirs_exist_ok=True)
    if how == "no weights":
        (folder / "weights.pt").unlink()
    elif how == "no config":
        (folder / "latentode.json").unlink()
    elif how == "bad json":
        (folder / "latentode.json").write_text("{not json", encoding="utf-8")
    elif how == "truncated weights":
        data = (folder / "weights.pt").read_bytes()
        (folder / "weights.pt").write_bytes(data[: len(data) // 2])
    elif how == "wrong version":
        config = json.loads((folder / "latentode.json").read_text(encoding="utf-8"))
        config["format_version"] = 99
        (folder / "latentode.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def _cli(*argv):
    def run(ctx):
        args = [a.format(**ctx) for a in argv]
        main(args)

    return run


CASES = [
    # -- fit
    ("fit: a frame with no rows", _fit(DF.iloc[:0]), ValueError, "at least one row"),
    ("fit: only NaN in one feature", _fit(DF.assign(y=np.nan)), ValueError, "never observed"),
    (
        "fit: one observation per series",
        _fit(DF.groupby("id").head(1)),
        ValueError,
        "single time",
    ),
    (
        "fit: 10⁶ identical timestamps",
        _fit(pd.DataFrame({"id": np.arange(10**6) % 2, "time": 0.0, "x": 1.0})),
        ValueError,
        "one row per time",
    ),
    (
        "fit: times spanning 10¹² units",
        _fit(DF.assign(time=np.where(DF["id"] == 0, DF["time"] * 1e12, DF["time"]))),
        ValueError,
        "squeezed below float32 resolution",
    ),
    (
        "fit: object column of text",
        _fit(DF.assign(x=DF["x"].astype(str).astype(object))),
        TypeError,
        "must hold numbers",
    ),
    ("fit: tz-aware and naive datetimes", _fit(_tz_mix(), time_unit="D"), TypeError, "a mix"),
    (
        "fit: duplicate column names",
        _fit(pd.concat([DF, DF[["x"]]], axis=1)),
        ValueError,
        "unique column names",
    ),
    (
        "fit: MultiIndex columns",
        _fit(pd.DataFrame(DF.to_numpy(), columns=pd.MultiIndex.from_product([["a"], DF.columns]))),
        ValueError,
        "flat column names",
    ),
    (
        "fit: MultiIndex rows (id, time in the index)",
        _fit(DF.set_index(["id", "time"])),
        ValueError,
        "pass id_col=",
    ),
    ("fit: ±inf values", _fit(DF.assign(x=np.inf)), ValueError, "must be finite or NaN"),
    ("fit: text times", _fit(DF.assign(time=DF["time"].astype(str))), TypeError, "found strings"),
    ("fit: a numpy array", lambda ctx: LatentODE(**TINY).fit(DF.to_numpy()), TypeError, "long"),
    ("fit: a negative learning rate", lambda ctx: LatentODE(lr=-1).fit(DF), ValueError, "lr"),
    # -- predict / sample
    (
        "predict: times with NaN",
        lambda ctx: ctx["fitted"].predict(DF, times=[0.0, np.nan]),
        ValueError,
        "missing",
    ),
    (
        "predict: a horizon of NaN",
        lambda ctx: ctx["fitted"].predict(DF, horizon=float("nan")),
        ValueError,
        "finite",
    ),
    (
        "predict: num_samples of 10⁹",
        lambda ctx: ctx["fitted"].predict(DF, num_samples=10**9),
        ValueError,
        "at most 100,000",
    ),
    (
        "predict: a frame without the fitted feature",
        lambda ctx: ctx["fitted"].predict(DF.rename(columns={"x": "z"})),
        ValueError,
        "rename or add",
    ),
    ("predict: a list", lambda ctx: ctx["fitted"].predict([1, 2]), TypeError, "DataFrame"),
    (
        "predict: quantiles outside (0, 1)",
        lambda ctx: ctx["fitted"].predict(DF, quantiles=[1.5]),
        ValueError,
        "strictly inside",
    ),
    (
        "predict: datetimes for numeric times",
        lambda ctx: ctx["fitted"].predict(DF, times=pd.to_datetime(["2024-01-01"])),
        TypeError,
        "pd.to_numeric",
    ),
    (
        "sample: n_samples of 10⁹",
        lambda ctx: ctx["fitted"].sample(10**9, [0.0]),
        ValueError,
        "at most 100,000",
    ),
    (
        "sample: times with NaN",
        lambda ctx: ctx["fitted"].sample(2, [0.0, np.nan]),
        ValueError,
        "finite",
    ),
    # -- events
    (
        "predict_intensity: an unknown kind",
        lambda ctx: ctx["poisson"].predict_intensity(EVENTS.observed, kinds=["surgery"]),
        ValueError,
        "unknown event kind",
    ),
    (
        "predict_intensity: a model without events",
        lambda ctx: ctx["fitted"].predict_intensity(DF),
        ValueError,
        "poisson=True",
    ),
    (
        "sample_events: no end time for new series",
        lambda ctx: ctx["poisson"].sample_events(n_samples=2),
        ValueError,
        "t_end",
    ),
    # -- load
    (
        "load: no such folder",
        lambda ctx: LatentODE.load(ctx["tmp"] / "nope"),
        FileNotFoundError,
        "not a folder",
    ),
    (
        "load: weights missing",
        lambda ctx: LatentODE.load(_broken_model(ctx["saved"], ctx["tmp"], "no weights")),
        FileNotFoundError,
        "weights.pt is missing",
    ),
    (
        "load: settings missing",
        lambda ctx: LatentODE.load(_broken_model(ctx["saved"], ctx["tmp"], "no config")),
        FileNotFoundError,
        "latentode.json is missing",
    ),
    (
        "load: settings not JSON",
        lambda ctx: LatentODE.load(_broken_model(ctx["saved"], ctx["tmp"], "bad json")),
        ValueError,
        "not valid JSON",
    ),
    (
        "load: weights cut in half",
        lambda ctx: LatentODE.load(_broken_model(ctx["saved"], ctx["tmp"], "truncated weights")),
        ValueError,
        "corrupt",
    ),
    (
        "load: another format version",
        lambda ctx: LatentODE.load(_broken_model(ctx["saved"], ctx["tmp"], "wrong version")),
        ValueError,
        "format version",
    ),
    # -- command line (its errors are SystemExit with the message)
    (
        "cli: a CSV that is not UTF-8",
        _cli("predict", "--model", "{saved}", "--data", "{latin1}", "--out", "{tmp}/p1.csv"),
        SystemExit,
        "not UTF-8",
    ),
    (
        "cli: a CSV with a 1 MB header",
        _cli("predict", "--model", "{saved}", "--data", "{wide}", "--out", "{tmp}/p2.csv"),
        SystemExit,
        "lacks column",
    ),
    (
        "cli: a model folder with a corrupt weights file",
        _cli("sample", "--model", "{corrupt}", "--times", "0,1", "--out", "{tmp}/s.csv"),
        SystemExit,
        "corrupt",
    ),
    (
        "cli: an output table of unknown type",
        _cli("predict", "--model", "{saved}", "--data", "{series}", "--out", "{tmp}/p.txt"),
        SystemExit,
        ".csv",
    ),
]


@pytest.fixture(scope="module")
def ctx(fitted, poisson, saved, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("malformed")
    series = tmp / "series.csv"
    DF.to_csv(series, index=False)
    latin1 = tmp / "latin1.csv"
    latin1.write_bytes("id,time,x\n1,0.0,caf\xe9\n".encode("latin-1"))
    wide = tmp / "wide.csv"
    names = [f"c{j:05d}_" + "x" * 94 for j in range(10_000)]  # 10,000 names of 100 characters
    wide.write_text(",".join(names) + "\n" + ",".join("1" for _ in names) + "\n", "utf-8")
    corrupt = _broken_model(saved, tmp, "truncated weights")
    return {
        "fitted": fitted,
        "poisson": poisson,
        "saved": saved,
        "tmp": tmp,
        "series": series,
        "latin1": latin1,
        "wide": wide,
        "corrupt": corrupt,
    }


def test_at_least_25_cases():
    assert len(CASES) >= 25


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize(("name", "call", "error", "words"), CASES, ids=[c[0] for c in CASES])
def test_malformed_input_gets_a_clear_error(ctx, name, call, error, words):
    with pytest.raises(error) as info:
        call(ctx)
    assert words in str(info.value), f"{name}: message {str(info.value)!r} lacks {words!r}"
    assert type(info.value) is error or error is SystemExit
    # raised by latentode's own checks, not deep inside torch or pandas
    origin = traceback.extract_tb(info.tb)[-1].filename
    assert "latentode" in Path(origin).parts, f"{name}: raised from {origin}"
    assert info.value.__cause__ is None or isinstance(info.value.__cause__, type(info.value))


def _finite(frame: pd.DataFrame) -> bool:
    numbers = frame.select_dtypes("number")
    return bool(np.isfinite(numbers.to_numpy()).all())


def test_inputs_that_look_odd_but_are_valid_work(fitted):
    """Categorical ids, object columns of numbers, booleans and times before the data are fine.

    Refusing them would turn away correct data, so they are handled, not rejected.
    """
    cat = DF.assign(id=DF["id"].astype("category"))
    assert _finite(LatentODE(**TINY).fit(cat).predict(cat, num_samples=5))
    obj = DF.assign(x=DF["x"].astype(object))
    assert _finite(LatentODE(**TINY).fit(obj).predict(obj, num_samples=5))
    flags = DF.assign(flag=DF["x"] > 0)
    assert _finite(LatentODE(**TINY).fit(flags).predict(flags, num_samples=5))
    before = fitted.predict(DF, times=[-3.0, -1.0], num_samples=5)  # a backwards solve
    assert _finite(before)
