"""Saving and loading a fitted estimator: its settings as JSON, its weights as tensors.

The folder itself (atomic writes, digests, no links followed, no code run) is
:mod:`latentode.persistence`; here the estimator's fitted state becomes settings and back, with
every setting checked against the others and against the weights.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Hashable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from latentode import __version__
from latentode.calibration import TASK_BANDS
from latentode.data import FeatureScaler, LongFormat, TimeScaler
from latentode.data.covariates import CovariateSchema
from latentode.data.events import _plain
from latentode.data.transforms import FeatureTransform
from latentode.estimator.params import check_params
from latentode.estimator.predictor import NonFiniteModelError, _non_finite_weights
from latentode.estimator.seeds import MAX_SEED
from latentode.lightning import LatentODEModule
from latentode.persistence import CONFIG_FILE, read_model, write_model

if TYPE_CHECKING:
    from latentode.estimator.latent_ode import LatentODE

__all__ = ["load_model", "save_model"]

_FORMAT_VERSION = 1


def save_model(est: LatentODE, path: str | Path) -> Path:
    """The work of :meth:`LatentODE.save`."""
    params = est.get_params(deep=False)
    if not isinstance(params["random_state"], int | type(None)):
        params["random_state"] = None
    if params["event_kinds"] is not None:
        params["event_kinds"] = _plain_kinds(list(params["event_kinds"]))
    config = {
        "format_version": _FORMAT_VERSION,
        "latentode_version": __version__,
        "params": params,
        "n_features": est.n_features_in_,
        "module_hparams": _module_hparams(est.module_),
        "format": est.format_.to_dict(),
        "time_scaler": est.time_scaler_.to_dict(),
        "feature_scaler": est.feature_scaler_.to_dict(),
        "seed": est._seed,
        "best_epoch": est.best_epoch_,
        "best_val_loss": est.best_val_loss_,
        "n_epochs": est.n_epochs_,
        "n_steps": est.n_steps_,
        "event_kinds": _plain_kinds(est.event_kinds_),
        "event_source": est.event_source_,
        "calibration": None
        if est.calibration_ is None
        else {c: _plain(v) for c, v in est.calibration_.to_dict(orient="list").items()},
        "conformal": est.conformal_,
        "transforms": est.transforms_.to_dict(),
        "covariates": None
        if getattr(est, "covariate_schema_", None) is None
        else est.covariate_schema_.to_dict(),
    }
    return write_model(path, config, est.module_.state_dict())


def load_model(cls: type[LatentODE], path: str | Path) -> LatentODE:
    """The work of :meth:`LatentODE.load`."""
    folder = Path(path)
    config, state = read_model(folder)
    config_file = folder / CONFIG_FILE
    if config.get("format_version") != _FORMAT_VERSION:
        raise ValueError(
            f"{config_file} is not a latentode model file of format version {_FORMAT_VERSION}"
        )
    _check_config_keys(config, config_file, cls._get_param_names())
    try:
        model = cls(**{**_LEGACY_PARAMS, **config["params"]})
        check_params(model.get_params(deep=False))
        hparams = dict(config["module_hparams"])
        accepted = set(inspect.signature(LatentODEModule.__init__).parameters) - {"self"}
        unknown = sorted(set(hparams) - accepted)
        if unknown:
            raise ValueError(f"module_hparams has unknown keys {unknown}")
        module = LatentODEModule(**hparams)
        bad = _non_finite_weights(state)
        if bad:
            raise NonFiniteModelError(
                f"{str(folder)!r} holds weights with NaN or infinity ({', '.join(bad[:3])}"
                f"{', …' if len(bad) > 3 else ''}): they come from a fit that diverged, or "
                "were edited. Refit and save the model again"
            )
        _check_consistent(config, module, state)
        _load_weights(module, state)
        model._set_fitted(
            module,
            LongFormat.from_dict(config["format"]),
            TimeScaler.from_dict(config["time_scaler"]),
            FeatureScaler.from_dict(config["feature_scaler"]),
            seed=int(config["seed"]),
            best_epoch=config["best_epoch"],
            best_val_loss=config["best_val_loss"],
            n_epochs=config["n_epochs"],
            n_steps=config.get("n_steps"),
            event_kinds=config.get("event_kinds"),
            event_source=config.get("event_source"),
            calibration=_calibration_frame(config.get("calibration")),
            conformal=_conformal_factors(config.get("conformal"), module),
            transform=FeatureTransform(
                config.get("transforms"), config["format"].get("value_cols", [])
            ),
            covariate_schema=_covariate_schema(config.get("covariates"), module),
        )
    except NonFiniteModelError:
        raise
    except (
        KeyError,
        TypeError,
        ValueError,
        RuntimeError,
    ) as err:
        raise ValueError(f"{str(folder)!r} holds a corrupt or incompatible model: {err}") from None
    return model


_CONFIG_KEYS = {
    "format_version",
    "latentode_version",
    "params",
    "n_features",
    "module_hparams",
    "format",
    "time_scaler",
    "feature_scaler",
    "seed",
    "best_epoch",
    "best_val_loss",
    "n_epochs",
}


# absent in models saved before them
_OPTIONAL_CONFIG_KEYS = {
    "event_kinds",
    "event_source",
    "n_steps",
    "calibration",
    "conformal",
    "transforms",
    "covariates",
}


# weights a model saved before them lacks; they keep their defaults (a band at the noise floor)
_OPTIONAL_WEIGHTS = {"model.noise.coef", "model.noise.fitted"}


def _covariate_schema(saved: Any, module: LatentODEModule) -> CovariateSchema | None:
    """The saved covariate schema, checked against the module's covariate sizes."""
    hp = module.hparams
    sizes = tuple(
        int(hp.get(k, 0) or 0) for k in ("n_held_inputs", "n_impulse_inputs", "n_static_features")
    )
    if saved is None:
        if any(sizes):
            raise ValueError("the module reads covariates but no covariate schema was saved")
        return None
    if not isinstance(saved, dict):
        raise ValueError(f"`covariates` must be a mapping; got {type(saved).__name__}")
    schema = CovariateSchema.from_dict(saved)
    scalers = {
        "held_mean": schema.n_held, "held_scale": schema.n_held,
        "dose_scale": schema.n_impulse,
        "static_mean": schema.n_static, "static_scale": schema.n_static,
    }  # fmt: skip
    for key, n in scalers.items():
        value = getattr(schema, key)
        if value is None or value.shape != (n,) or not np.all(np.isfinite(value)):
            raise ValueError(f"`covariates.{key}` must hold {n} finite numbers")
    if (schema.n_held, schema.n_impulse, schema.n_static) != sizes:
        raise ValueError(
            f"the covariate schema has {schema.n_held} held inputs, {schema.n_impulse} impulse "
            f"inputs and {schema.n_static} static features; the module {sizes}"
        )
    return schema


def _check_consistent(config: dict[str, Any], module: LatentODEModule, state: dict) -> None:
    """Refuse settings that disagree with each other or with the weights' shapes."""
    seed = config["seed"]
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < MAX_SEED:
        raise ValueError(f"`seed` must be an integer in [0, 2**63); got {seed!r}")
    n_features = module.model.n_features
    sizes = {
        "n_features": config["n_features"],
        "format.value_cols": len(config["format"].get("value_cols", []) or []),
        "feature_scaler.mean_": len(config["feature_scaler"].get("mean_", []) or []),
    }
    wrong = {k: v for k, v in sizes.items() if v != n_features}
    if wrong:
        raise ValueError(
            f"the settings disagree on the number of features: module_hparams say {n_features}, "
            + ", ".join(f"{k} {v!r}" for k, v in wrong.items())
        )
    kinds = config.get("event_kinds")
    n_kinds = int(module.hparams.get("n_event_kinds", 0) or 0)
    if kinds is not None:
        plain = [json.dumps(k, sort_keys=True) for k in kinds]
        if len(set(plain)) != len(plain):
            raise ValueError(f"`event_kinds` names a kind twice: {kinds}")
    if len(kinds or ()) != n_kinds:
        raise ValueError(
            f"`event_kinds` lists {len(kinds or ())} kinds but the model has {n_kinds} intensities"
        )
    expected = module.state_dict()
    shapes = [
        f"{name}: {tuple(value.shape)} in the weights, {tuple(expected[name].shape)} from "
        "the settings"
        for name, value in state.items()
        if name in expected and value.shape != expected[name].shape
    ]
    if shapes:
        raise ValueError(
            "the weights do not match the settings (latent_dim, widths, features): "
            + "; ".join(shapes[:3])
        )


def _load_weights(module: LatentODEModule, state: dict[str, Any]) -> None:
    """Load ``state`` into ``module``; only the weights added since it was saved may lack."""
    missing, unexpected = module.load_state_dict(state, strict=False)
    if unexpected or set(missing) - _OPTIONAL_WEIGHTS:
        raise RuntimeError(
            f"the weights do not match the settings: missing {sorted(missing)}, unexpected "
            f"{sorted(unexpected)}"
        )


def _calibration_frame(table: Any) -> pd.DataFrame | None:
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ValueError(f"`calibration` must be a mapping of columns; got {type(table).__name__}")
    return pd.DataFrame(table)


def _conformal_factors(factors: Any, module: LatentODEModule) -> list[list[float]] | None:
    if factors is None:
        return None
    array = np.asarray(factors, dtype=np.float64)
    expected = (module.model.n_features, len(TASK_BANDS))
    if array.shape != expected or not np.isfinite(array).all() or (array <= 0).any():
        raise ValueError(
            f"`conformal` must be {expected} positive finite factors; got shape {array.shape}"
        )
    return array.tolist()


# Parameters added after models were first saved, with the values that describe how a model
# saved before them was trained (so get_params and clone reproduce that model's recipe).
_LEGACY_PARAMS = {
    "max_steps": None,
    "max_time": None,
    "optimizer": "adamax",
    "lr_schedule": "constant",
    "gradient_clip": None,
    "kl_warmup": 1 / 3,
    "kl_weight": 1.0,
    "level": "none",
    "time_gaps_per_unit": None,
    "memory_budget": None,
    "decoder": "ode",
    "flow": "coupling",
}


def _check_config_keys(config: dict[str, Any], path: Path, param_names: list[str]) -> None:
    """Refuse a model file with unknown or missing settings, before anything is built from it."""
    unknown = sorted(set(config) - _CONFIG_KEYS - _OPTIONAL_CONFIG_KEYS)
    missing = sorted(_CONFIG_KEYS - set(config))
    params = config.get("params")
    if not isinstance(params, dict):
        raise ValueError(f"{path} is not a latentode model file: `params` is not a mapping")
    unknown_params = sorted(set(params) - set(param_names))
    if unknown or missing or unknown_params:
        raise ValueError(
            f"{path} does not match this latentode's model format: unknown keys "
            f"{unknown + [f'params.{k}' for k in unknown_params]}, missing keys {missing}. It "
            "was edited, or written by another version; re-save the model with this version"
        )


def _plain_kinds(kinds: list[Hashable] | None) -> list[Any] | None:
    """Event kinds as JSON values (numpy scalars become Python ones)."""
    return None if kinds is None else _plain(kinds)


def _module_hparams(module: LatentODEModule) -> dict[str, Any]:
    """The module's constructor arguments (LightningCLI adds bookkeeping keys of its own)."""
    accepted = inspect.signature(LatentODEModule.__init__).parameters
    return {k: v for k, v in module.hparams.items() if k in accepted}
