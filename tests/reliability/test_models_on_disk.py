"""Saved models: written whole, never through links, never mixed; every bad folder refused clearly.

Each load case edits a saved folder the way a careless or hostile user could, and names the
exception and words its message must hold. Edits to the weights re-sign the settings (as an
attacker who edits both would), so that the case reaches the check it is about rather than the
digest.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import threading
import traceback
from pathlib import Path

import numpy as np
import pytest
import torch

from latentode import persistence
from latentode.cli import main
from latentode.data import make_clinical_events, make_periodic
from latentode.estimator import LatentODE, NonFiniteModelError

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
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    plain = LatentODE(**TINY).fit(DF)
    other = LatentODE(**{**TINY, "random_state": 1}).fit(DF)
    poisson = LatentODE(**TINY, poisson=True).fit(EVENTS.observed, events=EVENTS.events)
    return {
        "plain": (plain, plain.save(root / "plain")),
        "other": (other, other.save(root / "other")),
        "poisson": (poisson, poisson.save(root / "poisson")),
    }


def _config(folder: Path) -> dict:
    return json.loads((folder / "latentode.json").read_text(encoding="utf-8"))


def _write_config(folder: Path, config: dict) -> None:
    (folder / "latentode.json").write_text(json.dumps(config), encoding="utf-8")


def _resign(folder: Path) -> None:
    config = _config(folder)
    config["weights_sha256"] = hashlib.sha256((folder / "weights.pt").read_bytes()).hexdigest()
    _write_config(folder, config)


def _edit_config(edit):
    def apply(folder: Path, models) -> None:
        config = _config(folder)
        edit(config)
        _write_config(folder, config)

    return apply


def _edit_text(edit):
    def apply(folder: Path, models) -> None:
        path = folder / "latentode.json"
        path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")

    return apply


def _weights_bytes(data: bytes):
    def apply(folder: Path, models) -> None:
        (folder / "weights.pt").write_bytes(data)
        _resign(folder)

    return apply


def _edit_state(edit):
    def apply(folder: Path, models) -> None:
        state = torch.load(folder / "weights.pt", weights_only=True)
        edit(state)
        torch.save(state, folder / "weights.pt")
        _resign(folder)

    return apply


def _swap(name: str):
    def apply(folder: Path, models) -> None:
        shutil.copy(models["other"][1] / name, folder / name)

    return apply


def _torch_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _first_float(state: dict) -> str:
    return next(k for k, v in state.items() if v.is_floating_point())


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


LOAD_CASES = [
    # (name, model, edit, exception, words)
    (
        "text weights",
        "plain",
        _weights_bytes(b"these are not weights\n"),
        ValueError,
        "not a weights file written by save",
    ),
    ("empty weights", "plain", _weights_bytes(b""), ValueError, "not a weights file"),
    (
        "weights are a list",
        "plain",
        _weights_bytes(_torch_bytes([torch.zeros(2)])),
        ValueError,
        "must map weight names to tensors",
    ),
    (
        "weights hold a class",
        "plain",
        _weights_bytes(_torch_bytes({"model.head.log_std": object})),
        ValueError,
        "cannot be read as model weights",
    ),
    (
        "NaN weight",
        "plain",
        _edit_state(lambda s: s[_first_float(s)].fill_(float("nan"))),
        NonFiniteModelError,
        "NaN or infinity",
    ),
    (
        "inf weight",
        "plain",
        _edit_state(lambda s: s[_first_float(s)].fill_(float("inf"))),
        NonFiniteModelError,
        "NaN or infinity",
    ),
    (
        "a missing tensor",
        "plain",
        _edit_state(lambda s: s.pop(_first_float(s))),
        ValueError,
        "missing",
    ),
    (
        "an extra tensor",
        "plain",
        _edit_state(lambda s: s.update({"model.extra": torch.zeros(1)})),
        ValueError,
        "unexpected",
    ),
    (
        "another model's weights",
        "plain",
        _swap("weights.pt"),
        ValueError,
        "does not match latentode.json",
    ),
    (
        "another model's settings",
        "plain",
        _swap("latentode.json"),
        ValueError,
        "does not match latentode.json",
    ),
    (
        "deeply nested JSON",
        "plain",
        _edit_text(
            lambda t: t.replace('"best_epoch":', f'"deep": {_nested(100_000)}, "best_epoch":')
        ),
        ValueError,
        "nests too deeply",
    ),
    (
        "nested 40 deep",
        "plain",
        _edit_config(lambda c: c["params"].update(trainer_kwargs=json.loads(_nested(40)))),
        ValueError,
        "nests deeper than",
    ),
    (
        "seed Infinity",
        "plain",
        _edit_text(lambda t: t.replace('"seed": ', '"seed": Infinity, "x": ')),
        ValueError,
        "must be finite",
    ),
    (
        "seed 1e400",
        "plain",
        _edit_text(lambda t: t.replace('"seed": ', '"seed": 1e400, "x": ')),
        ValueError,
        "beyond float range",
    ),
    (
        "seed NaN",
        "plain",
        _edit_text(lambda t: t.replace('"seed": ', '"seed": NaN, "x": ')),
        ValueError,
        "must be finite",
    ),
    (
        "seed 1.5",
        "plain",
        _edit_config(lambda c: c.update(seed=1.5)),
        ValueError,
        "`seed` must be an integer",
    ),
    (
        "seed negative",
        "plain",
        _edit_config(lambda c: c.update(seed=-3)),
        ValueError,
        "`seed` must be an integer",
    ),
    (
        "seed 2**70",
        "plain",
        _edit_config(lambda c: c.update(seed=2**70)),
        ValueError,
        "`seed` must be an integer",
    ),
    (
        "settings are a list",
        "plain",
        _edit_text(lambda t: "[1, 2]"),
        ValueError,
        "must hold a JSON object",
    ),
    (
        "time scale 0",
        "plain",
        _edit_config(lambda c: c["time_scaler"].update(scale_=0.0)),
        ValueError,
        "scale_",
    ),
    (
        "time scale text",
        "plain",
        _edit_config(lambda c: c["time_scaler"].update(scale_="1")),
        ValueError,
        "scale_",
    ),
    (
        "feature scale negative",
        "plain",
        _edit_config(
            lambda c: c["feature_scaler"].update(scale_=[-1.0] * len(c["feature_scaler"]["scale_"]))
        ),
        ValueError,
        "scale_",
    ),
    (
        "feature scale text",
        "plain",
        _edit_config(
            lambda c: c["feature_scaler"].update(scale_=["x"] * len(c["feature_scaler"]["scale_"]))
        ),
        ValueError,
        "corrupt or incompatible",
    ),
    (
        "feature count",
        "plain",
        _edit_config(lambda c: c.update(n_features=c["n_features"] + 1)),
        ValueError,
        "disagree on the number of features",
    ),
    (
        "feature scaler length",
        "plain",
        _edit_config(lambda c: c["feature_scaler"].update(mean_=[0.0] * 5, scale_=[1.0] * 5)),
        ValueError,
        "disagree on the number of features",
    ),
    (
        "latent size",
        "plain",
        _edit_config(
            lambda c: c["module_hparams"].update(latent_dim=c["module_hparams"]["latent_dim"] + 3)
        ),
        ValueError,
        "do not match the settings",
    ),
    (
        "duplicated event kinds",
        "poisson",
        _edit_config(
            lambda c: c.update(event_kinds=[c["event_kinds"][0]] * max(2, len(c["event_kinds"])))
        ),
        ValueError,
        "names a kind twice",
    ),
    (
        "one event kind too many",
        "poisson",
        _edit_config(lambda c: c.update(event_kinds=[*c["event_kinds"], "extra"])),
        ValueError,
        "intensities",
    ),
]


def test_at_least_25_load_cases():
    assert len(LOAD_CASES) >= 25


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize(
    ("name", "which", "edit", "error", "words"), LOAD_CASES, ids=[c[0] for c in LOAD_CASES]
)
def test_a_bad_model_folder_gets_a_clear_error(models, tmp_path, name, which, edit, error, words):
    folder = tmp_path / "model"
    shutil.copytree(models[which][1], folder)
    edit(folder, models)
    with pytest.raises(error) as info:
        LatentODE.load(folder)
    assert words in str(info.value), f"{name}: {str(info.value)!r} lacks {words!r}"
    frame = traceback.extract_tb(info.tb)[-1]
    assert "/latentode/" in frame.filename.replace(os.sep, "/"), f"{name}: raised in {frame}"
    # the command line says the same in one line, with a non-zero exit
    with pytest.raises(SystemExit) as exit_info:
        main(
            ["predict", "--model", str(folder), "--data", "x.csv", "--out", str(tmp_path / "o.csv")]
        )
    assert words in str(exit_info.value.code)
    assert not (tmp_path / "o.csv").exists()


def _predictions(model) -> np.ndarray:
    return model.predict(DF.head(16), num_samples=3).iloc[:, 2:].to_numpy()


def test_save_replaces_a_model_folder_whole(models, tmp_path):
    plain, other = models["plain"][0], models["other"][0]
    folder = plain.save(tmp_path / "m")
    other.save(folder)  # an existing model folder is replaced
    np.testing.assert_array_equal(_predictions(LatentODE.load(folder)), _predictions(other))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary folders left


def test_a_crash_mid_save_leaves_the_previous_model(models, tmp_path, monkeypatch):
    plain, other = models["plain"][0], models["other"][0]
    folder = plain.save(tmp_path / "m")
    write = persistence._write_new

    def crash(path, data):
        if path.name == "latentode.json":  # the weights are written, the settings never are
            raise KeyboardInterrupt
        write(path, data)

    monkeypatch.setattr(persistence, "_write_new", crash)
    with pytest.raises(KeyboardInterrupt):
        other.save(folder)
    np.testing.assert_array_equal(_predictions(LatentODE.load(folder)), _predictions(plain))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_save_never_writes_through_a_linked_folder(models, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep", encoding="utf-8")
    link = tmp_path / "link"
    link.symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValueError, match="symbolic link"):
        models["plain"][0].save(link)
    assert sorted(p.name for p in outside.iterdir()) == ["precious.txt"]


def test_save_never_writes_through_linked_files(models, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep", encoding="utf-8")
    folder = tmp_path / "m"
    folder.mkdir()
    for name in ("weights.pt", "latentode.json"):
        (folder / name).symlink_to(outside)
    models["plain"][0].save(folder)
    assert outside.read_text(encoding="utf-8") == "keep"
    assert not (folder / "weights.pt").is_symlink()
    LatentODE.load(folder)


def test_save_refuses_a_folder_holding_other_files(models, tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ValueError, match=r"holds files that are not a saved model \(notes.txt\)"):
        models["plain"][0].save(folder)
    assert (folder / "notes.txt").read_text(encoding="utf-8") == "mine"


@pytest.mark.parametrize(
    ("target", "error", "words"),
    [
        ("file", ValueError, "is a file"),
        ("missing/parent", FileNotFoundError, "does not exist"),
        ("", ValueError, "must name a folder"),
        (3, TypeError, "must be a folder path"),
    ],
    ids=["a file", "no parent", "empty path", "not a path"],
)
def test_bad_save_paths(models, tmp_path, target, error, words):
    (tmp_path / "file").write_text("x", encoding="utf-8")
    path = tmp_path / target if isinstance(target, str) and target else target
    with pytest.raises(error, match=words):
        models["plain"][0].save(path)


def test_racing_saves_leave_one_whole_model(models, tmp_path):
    """Two writers, 15 saves each, into one folder: what is there at the end is one of the two
    models, whole; a writer that loses a swap is told so, never left with a mixed folder."""
    folder = tmp_path / "m"
    errors: list[BaseException] = []

    def writer(model) -> None:
        for _ in range(15):
            try:
                model.save(folder)
            except FileExistsError:
                pass
            except BaseException as err:
                errors.append(err)

    threads = [threading.Thread(target=writer, args=(models[k][0],)) for k in ("plain", "other")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    got = _predictions(LatentODE.load(folder))
    assert any(np.array_equal(got, _predictions(models[k][0])) for k in ("plain", "other"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_a_model_with_non_finite_weights_is_not_saved(models, tmp_path):
    import copy

    broken = copy.deepcopy(models["plain"][0])
    with torch.no_grad():
        next(broken.module_.parameters()).fill_(float("nan"))
    with pytest.raises(NonFiniteModelError, match="NaN or infinity"):
        broken.save(tmp_path / "m")
    assert not (tmp_path / "m").exists()
