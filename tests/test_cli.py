"""The `latentode` command runs as a user would run it, on a tiny quiet budget."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from latentode.cli import main
from latentode.estimator import LatentODE


def test_demo_writes_metrics_predictions_model_and_plot(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["demo", "--series", "30", "--epochs", "2", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "interpolation RMSE" in printed
    assert "extrapolation RMSE" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("interpolation_rmse", "extrapolation_rmse", "coverage_90", "fit_seconds"):
        assert metrics[key] >= 0
    assert metrics["epochs"] == 2
    assert (out / "predictions.csv").stat().st_size > 100
    assert LatentODE.load(out / "model").n_features_in_ == 1
    pytest.importorskip("matplotlib")
    assert (out / "demo.png").stat().st_size > 5000


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demo", "--epochs", "0"], "must be a positive integer"),
        (["demo", "--series", "many"], "must be a positive integer"),
        (["demo", "--out", "/no/such/folder/demo"], "does not exist"),
        (["fly"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_demo_refuses_a_file_as_output_folder(tmp_path, capsys):
    file = tmp_path / "taken.txt"
    file.write_text("x")
    with pytest.raises(SystemExit):
        main(["demo", "--out", str(file)])
    assert "is a file" in capsys.readouterr().err


def test_console_script_entry_point_is_wired():
    out = subprocess.run(
        [sys.executable, "-m", "latentode.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "demo" in out
