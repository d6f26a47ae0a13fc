"""The generator registry: its names, dispatch by name, the unknown-name error, package exports."""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd
import pytest

import latentode.data as data_pkg
import latentode.data.generators as generators
from latentode.data.generators import GENERATORS, make_dataset
from latentode.data.panels import PANELS
from latentode.data.synthetic import make_periodic, make_spiral

SMALL = {
    "periodic": {"n_series": 6, "n_points": 30},
    "spiral": {"n_series": 6, "n_points": 20, "n_grid": 120},
    "oscillators": {"n_series": 8, "n_points": 15},
    "absorption": {"n_series": 8},
    "growth": {"n_series": 8},
    "lotka_volterra": {"n_series": 8, "n_points": 15, "t_max": 5.0},
    "sparse_sines": {"n_series": 8},
}


def _assert_same_data(first, second):
    for field in ("observed", "truth", "params"):
        pd.testing.assert_frame_equal(getattr(first, field), getattr(second, field))


def test_registry_holds_the_toys_then_the_panels():
    assert {"periodic": make_periodic, "spiral": make_spiral, **PANELS} == GENERATORS
    assert list(GENERATORS) == ["periodic", "spiral", *PANELS]
    assert set(SMALL) == set(GENERATORS)


def test_package_exports_the_one_registry():
    assert data_pkg.GENERATORS is GENERATORS
    assert data_pkg.make_dataset is make_dataset
    for module in ("synthetic", "panels"):
        assert not hasattr(getattr(data_pkg, module), "GENERATORS")
        assert not hasattr(getattr(data_pkg, module), "make_dataset")


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_make_dataset_dispatches_by_name(name):
    via_name = make_dataset(name, **SMALL[name], random_state=3)
    _assert_same_data(via_name, GENERATORS[name](**SMALL[name], random_state=3))


@pytest.mark.parametrize("name", sorted(PANELS))
def test_make_dataset_builds_every_panel_with_its_defaults(name):
    _assert_same_data(make_dataset(name), PANELS[name]())


def test_unknown_dataset_name_lists_every_generator():
    names = (
        "'absorption', 'growth', 'lotka_volterra', 'oscillators', 'periodic', 'sparse_sines', "
        "'spiral'"
    )
    with pytest.raises(ValueError, match=rf"^`name` must be one of {names}; got 'x'$"):
        make_dataset("x")


@pytest.mark.parametrize("name", ["periodic", "growth"])
def test_make_dataset_forwards_bad_kwargs(name):
    with pytest.raises(TypeError, match="unexpected keyword argument 'window'"):
        make_dataset(name, window=3)


def test_module_imports_only_the_generator_modules():
    modules = set()
    for node in ast.walk(ast.parse(Path(generators.__file__).read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    allowed = {"__future__", "collections.abc", "typing", "latentode._validation"}
    assert modules <= allowed | {"latentode.data.panels", "latentode.data.synthetic"}
