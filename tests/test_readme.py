"""The README's Python blocks run as written, in order, in one namespace (as a reader would).

Slow (the quickstart fits models at their defaults): run with ``python -m pytest -m slow``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _blocks() -> list[str]:
    return BLOCK.findall(README.read_text(encoding="utf-8"))


def test_the_readme_has_python_blocks():
    assert len(_blocks()) >= 4


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_every_python_block_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # blocks that save models write here
    monkeypatch.setenv("LATENTODE_CACHE", os.environ.get("LATENTODE_CACHE", str(tmp_path)))
    namespace: dict = {"__name__": "__readme__"}
    for number, block in enumerate(_blocks(), start=1):
        try:
            exec(compile(block, f"README.md python block {number}", "exec"), namespace)
        except Exception as err:  # pragma: no cover - the message is the point
            pytest.fail(f"README python block {number} failed: {type(err).__name__}: {err}")
