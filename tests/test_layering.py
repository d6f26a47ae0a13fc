"""Imports flow one way: core never sees pandas, sklearn or Lightning; data never the last two."""

from __future__ import annotations

import subprocess
import sys

import pytest

FORBIDDEN = {
    "latentode.core": ["pandas", "sklearn", "pytorch_lightning", "lightning"],
    "latentode.data": ["sklearn", "pytorch_lightning", "lightning", "latentode.core"],
    "latentode": ["pandas", "sklearn", "pytorch_lightning", "lightning", "torch"],
}


@pytest.mark.parametrize("module", sorted(FORBIDDEN))
def test_module_imports_without_forbidden_packages(module):
    code = (
        "import sys, importlib\n"
        f"importlib.import_module({module!r})\n"
        f"bad = [m for m in {FORBIDDEN[module]!r} if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"importing {module} pulled in {out}"


def test_public_names_resolve_lazily():
    import latentode

    for name in latentode.__all__:
        assert getattr(latentode, name) is not None
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        latentode.Nope  # noqa: B018


def test_torchdiffeq_is_imported_only_by_the_solver():
    # solve() is the one place tolerances, step limits and errors are defined for torchdiffeq.
    import ast
    from pathlib import Path

    import latentode

    root = Path(latentode.__file__).parent
    importers = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n.split(".")[0] == "torchdiffeq" for n in names):
                importers.append(path.relative_to(root).as_posix())
    assert importers == ["core/solver.py"]
