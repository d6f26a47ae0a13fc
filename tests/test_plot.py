"""plot_series draws a PNG of series, predictions, samples and truth; bad frames are refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from latentode.plot import plot_series


def _frames():
    rng = np.random.default_rng(0)
    obs = pd.DataFrame(
        {
            "id": np.repeat(["a", "b", "c"], 6),
            "time": np.tile(np.sort(rng.uniform(0, 4, 6)), 3),
            "x": rng.normal(size=18),
        }
    )
    grid = np.linspace(0, 6, 25)
    pred = pd.DataFrame({"id": np.repeat(["a", "b", "c"], 25), "time": np.tile(grid, 3)})
    pred["x"] = np.sin(pred["time"])
    pred["x_q0.05"], pred["x_q0.95"] = pred["x"] - 0.3, pred["x"] + 0.3
    samples = pd.concat([pred[["id", "time"]].assign(sample=k, x=pred["x"] + k) for k in range(3)])
    return obs, pred, samples


def test_writes_a_png_with_a_panel_per_series(tmp_path):
    obs, pred, samples = _frames()
    fig = plot_series(obs, pred, samples=samples, truth=pred[["id", "time", "x"]], ncols=2)
    path = tmp_path / "series.png"
    fig.savefig(path)
    assert path.stat().st_size > 5000
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 3
    # the band, the extrapolation region and the legend entries are there
    assert any("extrapolation" in t.get_text() for t in fig.legends[0].get_texts())


def test_observations_alone_and_chosen_ids():
    obs, _, _ = _frames()
    fig = plot_series(obs, ids=["b"])
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"observed": [1, 2]}, TypeError, r"`observed` must be a pandas DataFrame"),
        ({"id_col": "patient"}, ValueError, r"`observed` lacks column\(s\) 'patient'"),
        ({"ids": ["zz"]}, ValueError, r"`ids` \['zz'\] are not in `observed`"),
        ({"max_series": 0}, ValueError, r"`max_series` must be at least 1"),
        ({"features": ["y"]}, ValueError, r"lacks column\(s\) 'y'"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    obs, _, _ = _frames()
    args = {"observed": obs, **kwargs}
    with pytest.raises(error, match=match):
        plot_series(**args)
