"""Every script in examples/ runs to completion."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))

# Scripts that draw a picture, and its name: written to the folder the script is run from
# (or its --out folder) and printed, not hidden in a temporary folder.
PICTURES = {"quickstart.py": "quickstart.png", "clinical_events.py": "clinical_events.png"}


def test_there_are_examples():
    assert EXAMPLES


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path, capsys, tmp_path, monkeypatch):
    # As a user runs it: no arguments, from a folder of their own (so nothing lands in the repo).
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(path)])
    runpy.run_path(str(path), run_name="__main__")
    out = capsys.readouterr().out
    assert out.strip()
    picture = PICTURES.get(path.name)
    if picture is not None and "no plot" not in out:
        written = tmp_path / picture
        assert written.stat().st_size > 10_000
        assert f"plot written to {written.resolve()}" in out


def test_an_example_takes_an_out_folder(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    path = next(p for p in EXAMPLES if p.name == "quickstart.py")
    main = runpy.run_path(str(path))["main"]
    main(max_epochs=1, out=tmp_path / "figures")
    assert (tmp_path / "figures" / "quickstart.png").stat().st_size > 10_000
