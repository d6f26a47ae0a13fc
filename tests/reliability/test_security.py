"""Loading a model never runs code from its files, and refuses settings it does not know."""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil

import pytest

from latentode.cli import main
from latentode.data import make_periodic
from latentode.estimator import LatentODE

TINY = {"latent_dim": 2, "encoder_hidden": 4, "decoder_width": 4, "decoder_depth": 1}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    df = make_periodic(n_series=8, n_points=8, random_state=0).observed
    folder = tmp_path_factory.mktemp("saved") / "model"
    LatentODE(**TINY, max_epochs=1, random_state=0).fit(df).save(folder)
    return folder


def _copy(saved, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(saved, folder)
    return folder


def _resign(folder):
    """Record the current weights' digest in the settings, as an attacker who edits both would,
    so that the test reaches the weights' content checks."""
    config = json.loads((folder / "latentode.json").read_text(encoding="utf-8"))
    config["weights_sha256"] = hashlib.sha256((folder / "weights.pt").read_bytes()).hexdigest()
    (folder / "latentode.json").write_text(json.dumps(config), encoding="utf-8")


class _Payload:
    """Unpickling this calls ``open(marker, "w")``: a stand-in for arbitrary code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_payload_in_the_weights_is_refused_and_never_runs(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    marker = tmp_path / "pwned"
    with open(folder / "weights.pt", "wb") as f:
        pickle.dump({"model.head.log_std": _Payload(marker)}, f)
    with pytest.raises(ValueError, match=r"does not match latentode\.json"):
        LatentODE.load(folder)
    _resign(folder)
    with pytest.raises(ValueError, match="not a weights file written by save"):
        LatentODE.load(folder)
    assert not marker.exists()
    with pytest.raises(SystemExit, match="not a weights file written by save"):
        main(["sample", "--model", str(folder), "--times", "0,1", "--out", str(tmp_path / "s.csv")])
    assert not marker.exists()


def test_a_torch_save_with_a_payload_is_refused(saved, tmp_path):
    import torch

    folder = _copy(saved, tmp_path)
    marker = tmp_path / "pwned2"
    torch.save({"x": _Payload(marker)}, folder / "weights.pt")
    _resign(folder)
    with pytest.raises(ValueError, match="cannot be read as model weights"):
        LatentODE.load(folder)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda c: c.update(surprise=1), r"unknown keys \['surprise'\]"),
        (lambda c: c["params"].update(exec="rm -rf /"), r"unknown keys \['params.exec'\]"),
        (lambda c: c.pop("time_scaler"), r"missing keys \['time_scaler'\]"),
        (lambda c: c["params"].update(latent_dim="16"), r"corrupt or incompatible.*latent_dim"),
        (lambda c: c["params"].update(rtol=-1.0), r"corrupt or incompatible.*rtol"),
        (lambda c: c["module_hparams"].update(evil=True), r"module_hparams has unknown keys"),
        (lambda c: c.update(params=[1, 2]), r"`params` is not a mapping"),
    ],
    ids=["top-level key", "param", "missing", "param type", "param range", "hparam", "params type"],
)
def test_settings_are_validated_against_known_names_and_types(saved, tmp_path, edit, match):
    folder = _copy(saved, tmp_path)
    config = json.loads((folder / "latentode.json").read_text(encoding="utf-8"))
    edit(config)
    (folder / "latentode.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ValueError, match=match):
        LatentODE.load(folder)
