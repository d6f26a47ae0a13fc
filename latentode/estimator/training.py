"""Fitting: the data module, the training plan, the Trainer and its callbacks, then calibration.

:func:`fit_estimator` is :meth:`LatentODE.fit`'s work; the estimator keeps the signature and
the documentation. ``trainer_kwargs`` are merged over the estimator's own Trainer arguments:
the user's win (except the budget and plan arguments in
:data:`~latentode.estimator.params.RESERVED_TRAINER_KWARGS`, refused with the parameter to set
instead), so a logger, checkpointing, precision or strategy of their own is used as given.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import tempfile
import warnings
from collections.abc import Hashable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytorch_lightning as pl
import torch

from latentode._validation import check_bool
from latentode.calibration import HeldOutPoints, calibrate, held_out_points
from latentode.data.covariates import CovariateSchema
from latentode.data.transforms import FeatureTransform
from latentode.estimator.params import check_params, module_kwargs
from latentode.estimator.predictor import _canonical_order
from latentode.estimator.seeds import as_seed
from latentode.lightning import (
    BestWeights,
    IrregularTimeSeriesDataModule,
    KLAnnealing,
    LatentODEModule,
    NonFiniteGuard,
    NonFiniteLossError,
)
from latentode.lightning.checkpointing import (
    AtomicCheckpointIO,
    FolderLock,
    RunFingerprint,
    check_same_run,
    checkpoint_callbacks,
    data_fingerprint,
    last_checkpoint,
    read_checkpoint,
    resume_point,
)
from latentode.lightning.plan import plan_training
from latentode.lightning.progress import EpochLines

if TYPE_CHECKING:
    from latentode.estimator.latent_ode import LatentODE

__all__ = ["calibrate_noise", "fit_estimator"]

# Conditioning shares drawn per series in training: a model trained on one share learns to
# expect that many points and does worse when a user gives it all of theirs.
_COND_FRACTION = {"interpolation": (0.3, 1.0), "extrapolation": (0.5, 1.0)}


@contextlib.contextmanager
def _quiet(verbose: bool) -> Iterator[None]:
    """Silence Lightning's banners, tips and warnings unless ``verbose``."""
    if verbose:
        yield
        return
    loggers = [logging.getLogger(n) for n in ("pytorch_lightning", "lightning.pytorch")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"pytorch_lightning.*|lightning.*")
            warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def fit_estimator(
    est: LatentODE,
    df: pd.DataFrame,
    y: None = None,
    *,
    id_col: str = "id",
    time_col: str = "time",
    value_cols: Sequence[str] | None = None,
    time_unit: str | None = None,
    val_df: pd.DataFrame | None = None,
    events: pd.DataFrame | None = None,
    inputs: pd.DataFrame | None = None,
    static: pd.DataFrame | None = None,
    input_kind: dict[str, str] | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
) -> LatentODE:
    """The work of :meth:`LatentODE.fit` (see there)."""
    check_params(est.get_params(deep=False))
    folder = _checkpoint_folder(checkpoint_dir, check_bool("resume", resume))
    if events is not None and not est.poisson:
        raise ValueError(
            "`events` were given but poisson=False; set poisson=True to learn their intensity"
        )
    if events is not None and not isinstance(events, pd.DataFrame):
        raise TypeError(
            f"`events` must be a DataFrame ({id_col!r}, {time_col!r}[, 'kind']); got "
            f"{type(events).__name__}"
        )
    for name, frame in (("df", df), ("val_df", val_df)):
        if frame is not None and not isinstance(frame, pd.DataFrame):
            raise TypeError(
                f"`{name}` must be a pandas DataFrame in long format (one row per "
                f"observation: {id_col!r}, {time_col!r} and one column per feature); got "
                f"{type(frame).__name__}. Convert wide arrays with pandas first"
            )
    seed = _fit_seed(est, folder, resume)
    transform = _fit_transform(est.transforms, df, id_col, time_col, value_cols)
    df = transform.apply(df, id_col, time_col)
    if val_df is not None:
        val_df = transform.apply(val_df, id_col, time_col)
    dm = IrregularTimeSeriesDataModule(
        _canonical_order(df, id_col),
        val_data=val_df,
        id_col=id_col,
        time_col=time_col,
        value_cols=value_cols,
        time_unit=time_unit,
        task=est.task,
        cond_fraction=_COND_FRACTION[est.task],
        val_fraction=0.0 if val_df is not None else float(est.val_fraction),
        test_fraction=0.0,
        batch_size=1,  # set from the plan below, once the training series are counted
        standardize=True,
        time_gaps_per_unit=est.time_gaps_per_unit,
        seed=seed % (2**31),
        events=events,
        event_kinds=est.event_kinds if events is not None else None,
        inputs=inputs,
        static=static,
        input_kind=input_kind,
    )
    dm.setup()
    schema = dm.covariate_schema
    kinds, source = _resolve_kinds(est, dm)
    has_val = len(dm.split["val"]) > 0
    plan = plan_training(
        len(dm.split["train"]),
        batch_size=est.batch_size,
        max_steps=est.max_steps,
        max_epochs=est.max_epochs,
    )
    dm.batch_size = plan.batch_size
    # The kept weights are those of the validation check with the lowest error on the
    # held-out points of the validation series: what a user measures. Checks while β is
    # still rising count for nothing (see BestWeights).
    best = BestWeights(
        "val/mse", min_share=float(est.kl_warmup), patience=est.early_stopping_patience
    )
    callbacks: list[pl.Callback] = [
        # β rises over the first share of the budget: a fast rise pulls the posterior onto
        # the prior before the decoder has learned to use z0 (posterior collapse).
        KLAnnealing(end=float(est.kl_weight), share=float(est.kl_warmup)),
        NonFiniteGuard(),
    ]
    if folder is not None:
        fingerprint = RunFingerprint(_FIT, _run_settings(est, seed), data_fingerprint(dm))
        callbacks.extend(checkpoint_callbacks(folder, fingerprint))
    if has_val:
        callbacks.append(best)
    if est.verbose and not _is_terminal():
        callbacks.append(EpochLines())
    with (
        FolderLock(folder) if folder is not None else contextlib.nullcontext(),
        _quiet(est.verbose),
        torch.random.fork_rng(devices=[]),
        tempfile.TemporaryDirectory(prefix="latentode-") as scratch,
    ):
        torch.manual_seed(seed)
        module = LatentODEModule(
            dm.n_features,
            **module_kwargs(est.get_params(deep=False)),
            n_event_kinds=len(kinds or ()),
            # explicit events are evidence too: a series' own past events inform its posterior
            event_inputs=source == "events",
            **_covariate_sizes(schema),
        )
        ours = {
            **plan.trainer_kwargs(),
            "max_time": None if est.max_time is None else timedelta(seconds=est.max_time),
            "accelerator": est.accelerator,
            "callbacks": callbacks,
            "logger": False,
            "enable_checkpointing": folder is not None,
            "plugins": [AtomicCheckpointIO()] if folder is not None else None,
            # a bar on a terminal; in a file or pipe, one line per epoch (EpochLines)
            "enable_progress_bar": est.verbose and _is_terminal(),
            "enable_model_summary": est.verbose,
            "num_sanity_val_steps": 0,
            "limit_val_batches": 1.0 if has_val else 0,
            "default_root_dir": scratch,
        }
        # the user's Trainer arguments win over ours (the reserved ones were refused)
        trainer = pl.Trainer(**{**ours, **dict(est.trainer_kwargs or {})})
        # checked under the lock: what it finds is what Lightning will read
        resume_from = None if folder is None else resume_point(folder, resume, fingerprint, module)
        trainer.fit(module, dm, ckpt_path=resume_from)
    best.restore(module)
    module.fit_level_prior(dm)  # again: the kept weights may be an earlier step's
    module.eval()
    calibration, conformal = calibrate_noise(module.model, dm, seed, conformal=est.conformal)
    return est._set_fitted(
        module,
        dm.dataset.fmt,
        dm.dataset.scaler,
        dm.feature_scaler,
        seed=seed,
        best_epoch=best.best_epoch,
        best_val_loss=best.best_score,
        n_epochs=trainer.current_epoch,
        n_steps=trainer.global_step,
        event_kinds=kinds,
        event_source=source,
        calibration=calibration,
        conformal=conformal,
        transform=transform,
        covariate_schema=schema,
    )


def _covariate_sizes(schema: CovariateSchema | None) -> dict[str, int]:
    """The module arguments for the covariates of ``schema`` (none without one)."""
    if schema is None:
        return {}
    return {
        "n_held_inputs": schema.n_held,
        "n_impulse_inputs": schema.n_impulse,
        "n_static_features": schema.n_static,
    }


def _fit_transform(
    spec: dict[str, Any] | None,
    df: Any,
    id_col: Any,
    time_col: Any,
    value_cols: Sequence[str] | None,
) -> FeatureTransform:
    """The feature transforms of ``spec`` for the features of ``df``."""
    if value_cols is not None:
        features = list(value_cols)
    elif isinstance(df, pd.DataFrame):
        features = [c for c in df.columns if c not in (id_col, time_col)]
    else:
        features = []  # not a frame: the data layer refuses it with its own message
    return FeatureTransform(spec, features)


def calibrate_noise(
    model: Any, dm: IrregularTimeSeriesDataModule, seed: int, *, conformal: bool
) -> tuple[pd.DataFrame | None, list[list[float]] | None]:
    """Fit the predictive noise on held-out points; measure, and optionally fix, coverage.

    The points are interior points and the last 20-50% of the span of the validation
    series (the training series when there are none, which flatters the bands). Returns
    the ``calibration_`` table and the conformal factors (None unless ``conformal``).
    """
    rows, label = dm.split["val"], "validation"
    if not rows:
        rows, label = dm.split["train"], "training"
    points = held_out_points(model, [dm.dataset[i] for i in rows], seed=seed % (2**31))
    if points is None:  # every series too short to hide a point: the floor alone
        return None, None
    _check_not_diverged(points, label)
    names = list(dm.dataset.fmt.value_cols)
    table, factors = calibrate(model.noise, points, names, conformal=conformal, seed=seed % (2**31))
    table.insert(0, "series", label)
    return table, None if factors is None else factors.tolist()


def _resolve_kinds(
    est: LatentODE, dm: IrregularTimeSeriesDataModule
) -> tuple[list[Hashable] | None, str | None]:
    """The modelled event kinds and where the events come from, after ``dm.setup()``."""
    if not est.poisson:
        return None, None
    if dm.event_kinds_ is not None:
        return list(dm.event_kinds_), "events"
    features = list(dm.dataset.fmt.value_cols)
    if est.event_kinds is not None and list(est.event_kinds) != features:
        raise ValueError(
            "without an events frame, each feature's observation times are its events, so "
            f"event_kinds must be None or the features {features}; got "
            f"{list(est.event_kinds)}"
        )
    return features, "observations"


def _check_not_diverged(points: HeldOutPoints, label: str) -> None:
    """Refuse a fit whose curves miss held-out points by far more than the features' means do.

    Without validation series, nothing during training sees the weights blow up on unseen
    points; this is the same test as :class:`NonFiniteGuard`'s, on the calibration points.
    """
    curves = points.curves
    error = float(((curves.mean(0) - points.values) ** 2).mean()) if curves.numel() else 0.0
    reference = max(float((points.values**2).mean()), 1e-12)
    if math.isfinite(error) and error / reference <= NonFiniteGuard.diverged_ratio:
        return
    raise NonFiniteLossError(
        f"the fitted model's predictions of hidden points of the {label} series are "
        f"{'not finite' if not math.isfinite(error) else f'{error / reference:.3g}× worse'} "
        "than predicting each feature's mean: training diverged. Fixes: a lower learning rate, "
        "gradient clipping (gradient_clip=1.0), or tighter solver tolerances"
    )


def _checkpoint_folder(checkpoint_dir: Any, resume: bool) -> Path | None:
    """The validated checkpoint folder (created), or None; refuses to clobber another run."""
    if checkpoint_dir is None:
        if resume:
            raise ValueError("resume=True needs checkpoint_dir: the folder to resume from")
        return None
    if not isinstance(checkpoint_dir, str | os.PathLike):
        raise TypeError(
            f"`checkpoint_dir` must be a folder path (str or Path); got "
            f"{type(checkpoint_dir).__name__}"
        )
    folder = Path(checkpoint_dir)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"`checkpoint_dir` {str(folder)!r} is a file; give a folder")
    if not folder.parent.is_dir():
        raise FileNotFoundError(
            f"the parent of `checkpoint_dir` {str(folder.parent)!r} does not exist; create it"
        )
    if not resume and last_checkpoint(folder) is not None:
        raise ValueError(
            f"{str(folder)!r} already holds a checkpoint of another fit; pass resume=True to "
            "continue it, or give an empty folder"
        )
    folder.mkdir(exist_ok=True)
    return folder


_FIT = "LatentODE.fit"


# Settings a resumed fit may change: how and where it runs, or what happens after training.
# Every other parameter shapes the model or the training recipe, so it must match.
_RESUME_MAY_CHANGE = frozenset(
    {
        "verbose",
        "max_time",
        "accelerator",
        "trainer_kwargs",
        "conformal",
        "random_state",
        "memory_budget",
    }
)


def _run_settings(estimator: LatentODE, seed: int) -> dict[str, Any]:
    """The settings a checkpoint records and a resume must match (``random_state``: the seed)."""
    params = estimator.get_params(deep=False)
    settings = {k: v for k, v in params.items() if k not in _RESUME_MAY_CHANGE}
    return {**settings, "random_state": seed}


def _fit_seed(estimator: LatentODE, folder: Path | None, resume: bool) -> int:
    """The fit's seed. Resuming, the checkpoint and its settings are checked here first, before
    any work on the data; with ``random_state=None`` the seed is the resumed fit's."""
    path = last_checkpoint(folder) if folder is not None and resume else None
    if path is None:
        return as_seed(estimator.random_state)
    checkpoint = read_checkpoint(path)
    saved = checkpoint["callbacks"][RunFingerprint.KEY].get("settings") or {}
    given = estimator.random_state
    if given is None and isinstance(saved.get("random_state"), int):
        given = saved["random_state"]
    seed = as_seed(given)
    settings_only = RunFingerprint(_FIT, _run_settings(estimator, seed), {})
    check_same_run(checkpoint, settings_only, path)
    return seed


def _is_terminal() -> bool:
    """Whether standard output is a terminal (where a redrawn progress bar reads well)."""
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty())
