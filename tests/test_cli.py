"""The `latentode` command runs as a user would run it, on a tiny quiet budget."""

from __future__ import annotations

import subprocess
import sys

import pytest

from latentode.cli import main


def test_demo_runs_and_reports(capsys):
    assert main(["demo", "--iterations", "3", "--points", "12", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "RMSE to the true curve" in out


def test_demo_writes_a_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "fit.png"
    assert main(["demo", "--iterations", "2", "--points", "10", "--quiet", "--plot", str(png)]) == 0
    assert png.stat().st_size > 1000


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demo", "--iterations", "0"], "must be a positive integer"),
        (["demo", "--plot", "fit.jpg"], "give a .png path"),
        (["demo", "--plot", "/no/such/folder/fit.png"], "does not exist"),
        (["fly"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_console_script_entry_point_is_wired():
    out = subprocess.run(
        [sys.executable, "-m", "latentode.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "demo" in out
