"""Every YAML config in configs/ trains for a step through `latentode fit` and saves a model."""

from __future__ import annotations

import importlib.util
import logging
import warnings
from pathlib import Path

import pytest

from latentode.cli import main
from latentode.estimator import LatentODE

CONFIGS = Path(__file__).parent.parent / "configs"
SMALL = {  # shrink the data so one step takes a second; the configs' own sizes stay as written
    "hopper": ["--data.dataset_kwargs.n_trajectories=12"],
    "periodic": ["--data.dataset_kwargs.n_series=12"],
    "spiral": ["--data.dataset_kwargs.n_series=12"],
}


def _needs(name: str) -> list[str]:
    return {"hopper": ["dm_control", "mujoco"], "csv": []}.get(name.split("_")[0], [])


def test_every_config_is_listed():
    names = sorted(p.stem for p in CONFIGS.glob("*.yaml"))
    assert names == sorted(
        ["co2", "coal", "csv", "hopper_extrap", "pbcseq", "periodic", "periodic_flow", "spiral"]
        + [f"hopper_interp_{p}" for p in (10, 20, 30, 50)]
    )


# The Hopper interpolation configs differ only in cond_fraction: one runs by default (each
# simulates and fits for ~18 s), the others with -m slow.
_SLOW_CONFIGS = {"hopper_interp_20", "hopper_interp_30", "hopper_interp_50"}


@pytest.mark.parametrize(
    "config",
    [
        pytest.param(p, marks=pytest.mark.slow) if p.stem in _SLOW_CONFIGS else p
        for p in sorted(CONFIGS.glob("*.yaml"))
        if p.stem != "csv"
    ],
    ids=lambda p: p.stem,
)
def test_config_fits_one_step(config, tmp_path, monkeypatch):
    for module in _needs(config.stem):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{config.stem} needs {module}: pip install 'latentode[datasets]'")
    monkeypatch.setenv("LATENTODE_CACHE", str(tmp_path / "cache"))
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    out = tmp_path / "model"
    argv = [
        "fit",
        "--config",
        str(config),
        "--trainer.max_epochs=1",
        "--trainer.limit_train_batches=1",
        "--trainer.limit_val_batches=1",
        "--trainer.accelerator=cpu",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--model.decoder_width=8",
        "--model.latent_dim=3",
        *SMALL.get(config.stem.split("_")[0], []),
        f"--out={out}",
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(argv) == 0
    model = LatentODE.load(out)
    assert model.latent_dim == 3
    if config.stem == "coal":
        assert model.event_kinds_ == ["disaster"]
