"""Every YAML config in configs/ trains for a step through `latentode fit` and saves a model."""

from __future__ import annotations

import importlib.util
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
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
        ["co2", "coal", "covariates", "csv", "hopper_extrap", "pbcseq", "periodic"]
        + ["periodic_flow", "spiral"]
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
        if p.stem not in ("csv", "covariates")  # their own files: tested below
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


def test_the_covariates_config_fits_and_predicts_under_a_schedule(tmp_path, capsys):
    """configs/covariates.yaml on its three tables, then `latentode predict --inputs --static`,
    and a doubled dose moves the forecast."""
    from latentode.data.pk import make_pk

    pk = make_pk(12, random_state=0)
    names = {"id": "patient", "time": "hour"}
    conc, rates, weights = (tmp_path / f for f in ("conc.csv", "rates.csv", "weights.csv"))
    pk.observed.rename(columns=names).to_csv(conc, index=False)
    pk.inputs.assign(bolus=0.0).rename(columns=names).to_csv(rates, index=False)
    pk.static.rename(columns=names).to_csv(weights, index=False)
    out = tmp_path / "model"
    argv = [
        "fit",
        "--config",
        str(CONFIGS / "covariates.yaml"),
        f"--data.data={conc}",
        f"--data.inputs={rates}",
        f"--data.static={weights}",
        "--trainer.max_epochs=1",
        "--trainer.accelerator=cpu",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--model.decoder_width=8",
        "--model.latent_dim=3",
        f"--out={out}",
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(argv) == 0
    model = LatentODE.load(out)
    assert model.covariate_schema_.input_kind == {"rate": "held", "bolus": "impulse"}
    assert model.covariate_schema_.static == ("weight",)
    doubled = tmp_path / "doubled.csv"
    pk.inputs.assign(bolus=0.0, rate=2 * pk.inputs["rate"]).rename(columns=names).to_csv(
        doubled, index=False
    )
    forecasts = []
    for schedule in (rates, doubled):
        result = tmp_path / f"forecast-{schedule.stem}.csv"
        args = ["predict", "--model", str(out), "--data", str(conc), "--inputs", str(schedule)]
        args += ["--static", str(weights), "--times", "20", "--out", str(result)]
        assert main(args) == 0
        forecasts.append(pd.read_csv(result)["conc"].to_numpy())
    assert len(forecasts[0]) == 12
    assert not np.allclose(forecasts[0], forecasts[1])
    with pytest.raises(SystemExit, match=r"this model reads known inputs; give `inputs=`"):
        main(
            ["predict", "--model", str(out), "--data", str(conc), "--out", str(tmp_path / "x.csv")]
        )
