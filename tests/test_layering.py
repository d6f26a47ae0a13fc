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
