"""`LatentODE`: the scikit-learn-style estimator. A pandas frame in, a pandas frame out."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import inspect
import json
import logging
import math
import os
import sys
import tempfile
import warnings
from collections.abc import Hashable, Iterator, Sequence
from datetime import timedelta
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from torch.distributions import Normal

from latentode import __version__
from latentode._validation import check_bool, check_choice, check_int, check_real
from latentode.calibration import (
    TASK_BANDS,
    HeldOutPoints,
    band_quantiles,
    calibrate,
    held_out_points,
)
from latentode.core.solver import METHODS
from latentode.data import (
    FeatureScaler,
    IrregularDataset,
    LongFormat,
    TimeScaler,
    arrays_to_frame,
    frame_to_series,
)
from latentode.data.collate import _pad_repeating_last
from latentode.data.events import _plain, frame_to_events
from latentode.data.transforms import FeatureTransform
from latentode.decoders import LEVELS
from latentode.encoders import ENCODERS
from latentode.heads.gaussian import STD_FLOOR as _STD_FLOOR
from latentode.heads.poisson import sample_thinning
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
from latentode.lightning.module import LR_SCHEDULES, OPTIMIZERS
from latentode.lightning.plan import plan_training
from latentode.lightning.progress import EpochLines
from latentode.lightning.tasks import TASKS
from latentode.persistence import CONFIG_FILE, read_model, write_model

__all__ = ["LatentODE", "NonFiniteModelError"]


class NonFiniteModelError(ValueError):
    """A model whose weights, or whose answer to a request, hold NaN or infinity.

    Raised instead of returning NaN: by :meth:`LatentODE.load` for such weights, and by the
    prediction methods when a fitted model's weights or read-outs are not finite.
    """


_FORMAT_VERSION = 1
_MAX_SAMPLES = 100_000  # posterior/prior draws per call; more is a typo, not a request
_MAX_SERIES_PER_CHUNK = 200
_HORIZON_POINTS = 20  # times per series that `horizon=` asks for, by default
_MAX_HORIZON_POINTS = 100_000
_MAX_SEED = 2**63  # seeds are kept below this; larger ints are hashed into range
INTERVALS = ("predictive", "mean")
# Conditioning shares drawn per series in training: a model trained on one share learns to
# expect that many points and does worse when a user gives it all of theirs.
_COND_FRACTION = {"interpolation": (0.3, 1.0), "extrapolation": (0.5, 1.0)}
_MAX_VALUES_PER_CHUNK = 20_000_000  # floats of (samples, series, times, features) in memory
# Bytes one prediction call may hold at once for its decoded samples, whatever the request:
# series, samples and times are cut into blocks that fit (see LatentODE._blocks).
_MEMORY_BUDGET = 256 * 2**20


def _as_seed(random_state: Any, name: str = "random_state") -> int:
    """An int seed below 2**63 from an int, None (fresh entropy) or a numpy Generator.

    Ints up to 2**63 - 1 are used as they are; larger ones (numpy takes any size, torch only
    64 bits) are hashed into range, reproducibly.
    """
    if random_state is None:
        return int(np.random.SeedSequence().entropy % (2**63))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    if isinstance(random_state, Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"`{name}` must be >= 0; got {random_state}")
        if random_state < _MAX_SEED:
            return int(random_state)
        # torch seeds are 64-bit: a larger int is hashed to 63 bits, as reproducibly
        words = np.random.SeedSequence(int(random_state)).generate_state(2, np.uint32)
        return (int(words[0]) << 32 | int(words[1])) % _MAX_SEED
    raise TypeError(
        f"`{name}` must be an int, None or a numpy.random.Generator; got "
        f"{random_state!r} ({type(random_state).__name__})"
    )


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


class LatentODE(BaseEstimator):
    """Latent ODE for irregularly sampled time series, with a scikit-learn interface.

    An ODE-RNN (or GRU-Δt) encoder reads each series' observations and gives a posterior over
    the latent initial state; a Neural ODE carries it to any time; a Gaussian head reads the
    features out. Fit it on a long DataFrame (one row per observation time of one series, NaN
    for "not observed"); predict, extrapolate and sample in the same frame layout, in your own
    units and column names.

    Parameters
    ----------
    latent_dim : int, default=16
        Size of the latent state.
    encoder : {"odernn", "gru"}, default="odernn"
        ODE-RNN (the state follows a learned ODE between observations) or a GRU with time gaps.
    encoder_hidden : int, default=32
        Encoder state size.
    decoder_width, decoder_depth : int, default=64, 2
        Width and residual blocks of the latent vector field.
    solver : str, default="dopri5"
        ODE method for training and prediction (see ``latentode.core.METHODS``).
    rtol, atol : float, default=1e-2, 1e-3
        Solver tolerances, for training and prediction alike (a trained latent ODE is the
        function its solver computes). On standardised features 1e-2 is well below the
        observation noise of every data set in ``benchmarks/baselines.py``, and it trained
        1.4–2.5× faster than 1e-3 there at the same accuracy.
    adjoint : bool, default=False
        Adjoint gradients (memory constant in the solver steps, slower).
    likelihood_std : float, default=0.1
        The training likelihood's noise std, in standardised feature units (features are
        scaled to std 1). It weighs the fit to the points against the KL term while training;
        it is not the noise of the bands: ``predict``, ``sample`` and ``score`` use the
        predictive noise learned per feature after ``fit`` (see ``calibration_``).
    learn_std : bool, default=False
        Learn one training noise std per feature instead, starting at ``likelihood_std``
        and never below 1e-3 (a floor that keeps the bound finite on exactly fitted features).
    n_iwae_samples : int, default=1
        Posterior samples per series in training; above 1 the IWAE bound is used.
    task : {"interpolation", "extrapolation"}, default="interpolation"
        Training task. Interpolation: each series conditions on a random 30–100% of its points
        (a new share and subset every epoch) and all its points are targets. Extrapolation:
        it conditions on 50–100% of the points in the first half of its span, and the second
        half are the targets. A range rather than one share, so the model uses however many
        points it is given at prediction time.
    max_steps : int or None, default=3000
        The training budget, in optimiser steps (rounded up to whole epochs, so a resumed fit
        restarts at an epoch boundary). Steps, not epochs: a 20-series panel has a handful of
        batches per epoch, a 10,000-series one hundreds, and both need a few thousand steps.
    max_epochs : int or None, default=None
        A cap on epochs on top of ``max_steps`` (at least one of the two must be set).
    max_time : float or None, default=None
        A cap on training time in seconds. A fit stopped by it depends on the machine's speed,
        so it is not reproducible; the step budget is.
    batch_size : int or None, default=None
        Series per step. None: ``ceil(n_train / 8)`` within ``[4, 50]``, so a small panel
        still gets about eight batches per epoch and a large one batches of 50.
    lr : float, default=1e-2
        Peak learning rate.
    optimizer : {"adamax", "adam", "adamw", "sgd"}, default="adamax"
    lr_schedule : {"cosine", "constant"}, default="cosine"
        Cosine decay from ``lr`` to 2% of it over the budget: large early steps find the
        dynamics, small late ones settle the detail interpolation is judged on.
    gradient_clip : float or None, default=1.0
        Clip the gradients' global norm to this before each step (None: no clipping). A
        non-finite gradient stops training with ``NonFiniteLossError`` either way.
    kl_warmup : float, default=0.2
        Share of the budget over which the KL weight rises from 0 to ``kl_weight``. Validation
        checks before its end do not count for the kept weights.
    kl_weight : float, default=0.1
        Final weight β of the KL term. 1 is the ELBO; below 1 the posterior may be sharper
        than the prior allows, which at a budget of a few thousand steps fits each series'
        own points far better (measured in ``benchmarks/baselines.py``).
    val_fraction : float, default=0.2
        Share of series held out (unused with ``fit(..., val_df=...)``; 0 trains on
        everything and keeps the last weights). About 50 times over the budget, the model
        predicts held-out points of these series from the rest, and the weights with the
        lowest error there (in standardised units) are kept. After training, the same series
        fit the predictive noise of the bands (see ``calibration_``).
    early_stopping_patience : int or None, default=None
        Stop after this many validation checks (each about 2% of the budget) without a better
        one; None runs the whole budget, which the cosine schedule makes the better default.
    random_state : int, numpy Generator or None, default=None
        Seeds the split, the initial weights, training and sampling: the same seed and data
        give the same model and the same samples on CPU.
    verbose : bool, default=False
        Show a progress bar and Lightning's messages; otherwise fitting prints nothing.
    trainer_kwargs : dict or None, default=None
        Extra ``pytorch_lightning.Trainer`` arguments (e.g. ``{"devices": 2, "strategy":
        "ddp"}``). The budget, callbacks, accelerator and clipping are set through the
        estimator's own parameters.
    accelerator : str, default="cpu"
        Lightning accelerator: ``"cpu"``, ``"gpu"``, ``"auto"``...
    poisson : bool, default=False
        Also learn event intensities ``λ_k(t) = softplus(g_k(z(t)))`` (a Poisson-process head)
        and fit them jointly. The events are ``fit(..., events=...)``, or by default the
        observation times of each feature (how often a value is measured is itself data).
    event_kinds : list or None, default=None
        The event kinds to model, in order. Default: the sorted kinds of the events frame, or
        the feature names when the observation times are the events.
    event_weight : float, default=1.0
        Weight of the events' log-likelihood next to the values' one.
    level : {"series", "none"}, default="series"
        ``"series"``: each series' level is the mean of its conditioning values, and the
        decoded curve is shifted to match it at those very points; the latent state describes
        the shape around the level (:class:`~latentode.decoders.SeriesLevel`). ``"none"``:
        the latent state carries the level too (Rubanova et al. 2019).
    time_gaps_per_unit : float or None, default=4.0
        The model's time unit, as a number of median gaps between consecutive observations of
        the training series: dense series get long model windows, in which a vector field of
        order one has room to move, and sparse series short ones. None maps the longest
        training span to one unit.
    conformal : bool, default=False
        After fitting the predictive noise, also widen (or narrow) each feature's bands by a
        split-conformal factor, per task band (interpolation inside a series' window,
        extrapolation past it), so that the 90% band covers 90% of the validation series'
        held-out points: bands then hold their level even where the model fits badly, at the
        price of the validation series' size (at least 10 points per feature and band).
    transforms : dict or None, default=None
        Per-feature transforms, e.g. ``{"conc": "log"}``: ``"log"`` (values > 0), ``"logit"``
        (values in (0, 1)) or an increasing ``(forward, inverse)`` pair of numpy functions.
        The model fits the transformed values; means, bands and samples come back in the
        feature's own units and domain. A value outside a transform's domain is refused,
        naming the rows. Function pairs cannot be saved. (Named ``transforms``, not
        ``transform``: scikit-learn treats an estimator with a ``transform`` attribute as a
        transformer.)

    Attributes
    ----------
    module_ : LatentODEModule
        The trained Lightning module (its ``.model`` is a plain ``nn.Module``).
    format_ : LongFormat
        Column names and time type/unit of the training frame.
    time_scaler_, feature_scaler_ : TimeScaler, FeatureScaler
        Time and feature scaling fitted on the training series.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
    best_epoch_ : int or None
        Epoch of the validation check whose weights were kept (None without validation).
    best_val_loss_ : float or None
        Its validation error: the mean squared error on held-out points of the validation
        series, in standardised units.
    n_epochs_ : int
        Epochs trained.
    n_steps_ : int or None
        Optimiser steps trained (None for models saved before it was recorded).
    calibration_ : DataFrame or None
        Coverage of the 50% and 90% predictive bands on held-out points of the series that
        fitted the predictive noise (``series``: ``"validation"``, or ``"training"`` without
        validation series), by task band
        (``interpolation``: 25% of interior points hidden, in 4 rounds; ``extrapolation``:
        the last 50%, 40%, 30% and 20% of each span) and feature (and ``"all"``): columns
        ``series, audit, task, feature, n, coverage_50, coverage_90``. The audit is
        ``"out-of-sample"``: the noise (and conformal factors) fitted on one half of these
        series, the coverage counted on the other half, both ways round; with fewer than 5
        series with hidden points per half it is ``"in-sample"``, on the points the bands
        were fitted on, which flatters them.
    conformal_ : list or None
        The conformal factors ``(n_features, 2)`` (interpolation, extrapolation), with
        ``conformal=True``.
    transforms_ : FeatureTransform
        The fitted feature transforms (none when ``transforms`` is None).
    event_kinds_ : list or None
        The modelled event kinds (None without ``poisson``).
    event_source_ : {"observations", "events"} or None
        Whether the events were the observation times or an events frame.

    Examples
    --------
    >>> from latentode import LatentODE
    >>> from latentode.data import make_periodic
    >>> df = make_periodic(n_series=40, n_points=20, random_state=0).observed
    >>> model = LatentODE(latent_dim=4, max_steps=20, random_state=0).fit(df)
    >>> pred = model.predict(df.head(10), times=[0.0, 2.5, 6.0], num_samples=20)
    >>> list(pred.columns)
    ['id', 'time', 'x', 'x_q0.05', 'x_q0.5', 'x_q0.95']
    """

    def __init__(
        self,
        latent_dim: int = 16,
        encoder: str = "odernn",
        encoder_hidden: int = 32,
        decoder_width: int = 64,
        decoder_depth: int = 2,
        solver: str = "dopri5",
        rtol: float = 1e-2,
        atol: float = 1e-3,
        adjoint: bool = False,
        likelihood_std: float = 0.1,
        learn_std: bool = False,
        n_iwae_samples: int = 1,
        task: str = "interpolation",
        max_steps: int | None = 3000,
        max_epochs: int | None = None,
        max_time: float | None = None,
        batch_size: int | None = None,
        lr: float = 1e-2,
        optimizer: str = "adamax",
        lr_schedule: str = "cosine",
        gradient_clip: float | None = 1.0,
        kl_warmup: float = 0.2,
        kl_weight: float = 0.1,
        val_fraction: float = 0.2,
        early_stopping_patience: int | None = None,
        random_state: int | np.random.Generator | None = None,
        verbose: bool = False,
        trainer_kwargs: dict[str, Any] | None = None,
        accelerator: str = "cpu",
        poisson: bool = False,
        event_kinds: Sequence[Hashable] | None = None,
        event_weight: float = 1.0,
        level: str = "series",
        time_gaps_per_unit: float | None = 4.0,
        conformal: bool = False,
        transforms: dict[str, Any] | None = None,
    ) -> None:
        self.latent_dim = latent_dim
        self.encoder = encoder
        self.encoder_hidden = encoder_hidden
        self.decoder_width = decoder_width
        self.decoder_depth = decoder_depth
        self.solver = solver
        self.rtol = rtol
        self.atol = atol
        self.adjoint = adjoint
        self.likelihood_std = likelihood_std
        self.learn_std = learn_std
        self.n_iwae_samples = n_iwae_samples
        self.task = task
        self.max_steps = max_steps
        self.max_epochs = max_epochs
        self.max_time = max_time
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.lr_schedule = lr_schedule
        self.gradient_clip = gradient_clip
        self.kl_warmup = kl_warmup
        self.kl_weight = kl_weight
        self.val_fraction = val_fraction
        self.early_stopping_patience = early_stopping_patience
        self.random_state = random_state
        self.verbose = verbose
        self.trainer_kwargs = trainer_kwargs
        self.accelerator = accelerator
        self.poisson = poisson
        self.event_kinds = event_kinds
        self.event_weight = event_weight
        self.level = level
        self.time_gaps_per_unit = time_gaps_per_unit
        self.conformal = conformal
        self.transforms = transforms

    # -- checks ------------------------------------------------------------------------------

    def _check_params(self) -> None:
        check_int("latent_dim", self.latent_dim, minimum=1)
        check_choice("encoder", self.encoder, ENCODERS)
        check_int("encoder_hidden", self.encoder_hidden, minimum=1)
        check_int("decoder_width", self.decoder_width, minimum=1)
        check_int("decoder_depth", self.decoder_depth, minimum=0)
        check_choice("solver", self.solver, METHODS)
        check_real("rtol", self.rtol, positive=True)
        check_real("atol", self.atol, positive=True)
        check_bool("adjoint", self.adjoint)
        check_real("likelihood_std", self.likelihood_std, positive=True)
        if check_bool("learn_std", self.learn_std) and self.likelihood_std <= _STD_FLOOR:
            raise ValueError(
                f"a learned noise std starts at likelihood_std and stays above {_STD_FLOOR:g}; "
                f"got likelihood_std={self.likelihood_std!r}: pass a larger likelihood_std "
                "(0.1, the default) or learn_std=False"
            )
        check_int("n_iwae_samples", self.n_iwae_samples, minimum=1)
        check_choice("task", self.task, TASKS)
        if self.max_steps is None and self.max_epochs is None:
            raise ValueError(
                "give a training budget: max_steps (optimiser steps, the default) or "
                "max_epochs; both are None"
            )
        if self.max_steps is not None:
            check_int("max_steps", self.max_steps, minimum=1)
        if self.max_epochs is not None:
            check_int("max_epochs", self.max_epochs, minimum=1)
        check_real("max_time", self.max_time, positive=True, allow_none=True)
        if self.batch_size is not None:
            check_int("batch_size", self.batch_size, minimum=1)
        check_real("lr", self.lr, positive=True)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        check_real("gradient_clip", self.gradient_clip, positive=True, allow_none=True)
        check_real("kl_weight", self.kl_weight, nonnegative=True)
        warmup = check_real("kl_warmup", self.kl_warmup, nonnegative=True)
        if warmup >= 1:
            raise ValueError(
                f"`kl_warmup` is the share of the step budget over which the KL weight rises, "
                f"in [0, 1); got {warmup}"
            )
        fraction = check_real("val_fraction", self.val_fraction, nonnegative=True)
        if fraction >= 1:
            raise ValueError(f"`val_fraction` must be in [0, 1); got {fraction}")
        if self.early_stopping_patience is not None:
            check_int("early_stopping_patience", self.early_stopping_patience, minimum=1)
        check_bool("verbose", self.verbose)
        if self.trainer_kwargs is not None and not isinstance(self.trainer_kwargs, dict):
            raise TypeError(
                "`trainer_kwargs` must be a dict of Trainer arguments or None; got "
                f"{type(self.trainer_kwargs).__name__}"
            )
        reserved = {
            "max_epochs",
            "max_steps",
            "max_time",
            "accelerator",
            "callbacks",
            "gradient_clip_val",
            "check_val_every_n_epoch",
            "val_check_interval",
            "limit_train_batches",
            "accumulate_grad_batches",
        } & set(self.trainer_kwargs or {})
        if reserved:
            raise ValueError(
                f"`trainer_kwargs` may not set {', '.join(sorted(reserved))}: the estimator "
                "sets them from its own parameters (the budget max_steps / max_epochs / "
                "max_time, batch_size, gradient_clip, accelerator) and its training plan; set "
                "those instead"
            )
        if not isinstance(self.accelerator, str):
            raise TypeError(f"`accelerator` must be a string; got {self.accelerator!r}")
        check_choice("level", self.level, LEVELS)
        check_real("time_gaps_per_unit", self.time_gaps_per_unit, positive=True, allow_none=True)
        check_bool("conformal", self.conformal)
        check_bool("poisson", self.poisson)
        check_real("event_weight", self.event_weight, nonnegative=True)
        if self.event_kinds is not None:
            kinds = self.event_kinds
            if isinstance(kinds, str | bytes) or not isinstance(kinds, Sequence | np.ndarray):
                raise TypeError(f"`event_kinds` must be a list of kinds or None; got {kinds!r}")
            if len(kinds) == 0 or len(set(kinds)) != len(kinds):
                raise ValueError(
                    f"`event_kinds` must be a non-empty list of distinct kinds; got {list(kinds)}"
                )
            if not self.poisson:
                raise ValueError("`event_kinds` needs poisson=True")

    def _module_kwargs(self) -> dict[str, Any]:
        return {
            "latent_dim": self.latent_dim,
            "encoder": self.encoder,
            "encoder_hidden": self.encoder_hidden,
            "decoder_width": self.decoder_width,
            "decoder_depth": self.decoder_depth,
            "obs_std": float(self.likelihood_std),
            "learn_std": self.learn_std,
            "method": self.solver,
            "rtol": float(self.rtol),
            "atol": float(self.atol),
            "adjoint": self.adjoint,
            "n_samples": self.n_iwae_samples,
            "bound": "iwae" if self.n_iwae_samples > 1 else "elbo",
            "optimizer": self.optimizer,
            "lr": float(self.lr),
            "lr_schedule": self.lr_schedule,
            "gradient_clip": None if self.gradient_clip is None else float(self.gradient_clip),
            "event_weight": float(self.event_weight),
            "level": self.level,
        }

    # -- fit ---------------------------------------------------------------------------------

    def fit(
        self,
        df: pd.DataFrame,
        y: None = None,
        *,
        id_col: str = "id",
        time_col: str = "time",
        value_cols: Sequence[str] | None = None,
        time_unit: str | None = None,
        val_df: pd.DataFrame | None = None,
        events: pd.DataFrame | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        resume: bool = False,
    ) -> LatentODE:
        """Fit on a long frame of irregular series; returns ``self``.

        Parameters
        ----------
        df : DataFrame
            One row per observation time of one series: ``id_col``, ``time_col`` (numbers,
            datetimes or timedeltas) and one column per feature, NaN where not observed.
        id_col, time_col : str
            Column names of the series id and the time.
        value_cols : sequence of str, optional
            Feature columns; default every other column.
        time_unit : str, optional
            Required for datetime/timedelta times: the unit the model counts in (``"D"``,
            ``"h"``, ``"s"``...).
        y : None
            Ignored (scikit-learn's signature for unsupervised estimators): the series are the
            targets.
        val_df : DataFrame, optional
            Validation series in the same layout; default: ``val_fraction`` of ``df``'s series.
        events : DataFrame, optional
            With ``poisson=True``: event streams ``(id_col, time_col[, "kind"])`` in the time
            type of ``df``, for series of ``df`` (and ``val_df``). A series' window, over which
            the likelihood integrates its intensity, runs from its first observation-or-event
            to its last: events after the last row of ``df`` (or before the first) widen it,
            none is dropped; the series' time origin stays its first row. To score a longer
            window, add an all-NaN row to ``df`` at its end. Default: the observation times of
            each feature are its events.
        checkpoint_dir : str or path, optional
            Write a checkpoint (``last.ckpt``: weights, optimiser, epoch and step, KL
            schedule, early stopping, best epoch, RNG state, and a fingerprint of the settings
            and data) to this folder after every epoch, atomically. Without ``resume`` the
            folder must not hold one already. The folder is locked for the whole fit
            (``.latentode.lock``): a second fit in it is refused at once.
        resume : bool, default=False
            Continue from ``checkpoint_dir/last.ckpt`` when there is one (else start afresh),
            e.g. after the process was killed. With the same data and ``random_state`` the
            result equals an uninterrupted fit's, bit for bit on CPU. A checkpoint written
            with other settings (any parameter but ``verbose``, ``max_time``,
            ``accelerator``, ``trainer_kwargs`` and ``conformal``; the budget ``max_steps`` /
            ``max_epochs`` included) or on other data (``df``, ``val_df``, ``events``) is
            refused, as is an unreadable one. With ``random_state=None`` the resumed fit takes
            the seed of the fit it continues.
        """
        self._check_params()
        folder = _checkpoint_folder(checkpoint_dir, check_bool("resume", resume))
        if events is not None and not self.poisson:
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
        seed = _fit_seed(self, folder, resume)
        transform = self._fit_transform(df, id_col, time_col, value_cols)
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
            task=self.task,
            cond_fraction=_COND_FRACTION[self.task],
            val_fraction=0.0 if val_df is not None else float(self.val_fraction),
            test_fraction=0.0,
            batch_size=1,  # set from the plan below, once the training series are counted
            standardize=True,
            time_gaps_per_unit=self.time_gaps_per_unit,
            seed=seed % (2**31),
            events=events,
            event_kinds=self.event_kinds if events is not None else None,
        )
        dm.setup()
        kinds, source = self._resolve_kinds(dm)
        has_val = len(dm.split["val"]) > 0
        plan = plan_training(
            len(dm.split["train"]),
            batch_size=self.batch_size,
            max_steps=self.max_steps,
            max_epochs=self.max_epochs,
        )
        dm.batch_size = plan.batch_size
        # The kept weights are those of the validation check with the lowest error on the
        # held-out points of the validation series: what a user measures. Checks while β is
        # still rising count for nothing (see BestWeights).
        best = BestWeights(
            "val/mse", min_share=float(self.kl_warmup), patience=self.early_stopping_patience
        )
        callbacks: list[pl.Callback] = [
            # β rises over the first share of the budget: a fast rise pulls the posterior onto
            # the prior before the decoder has learned to use z0 (posterior collapse).
            KLAnnealing(end=float(self.kl_weight), share=float(self.kl_warmup)),
            NonFiniteGuard(),
        ]
        if folder is not None:
            fingerprint = RunFingerprint(_FIT, _run_settings(self, seed), data_fingerprint(dm))
            callbacks.extend(checkpoint_callbacks(folder, fingerprint))
        if has_val:
            callbacks.append(best)
        if self.verbose and not _is_terminal():
            callbacks.append(EpochLines())
        with (
            FolderLock(folder) if folder is not None else contextlib.nullcontext(),
            _quiet(self.verbose),
            torch.random.fork_rng(devices=[]),
            tempfile.TemporaryDirectory(prefix="latentode-") as scratch,
        ):
            torch.manual_seed(seed)
            module = LatentODEModule(
                dm.n_features, **self._module_kwargs(), n_event_kinds=len(kinds or ())
            )
            trainer = pl.Trainer(
                **plan.trainer_kwargs(),
                max_time=None if self.max_time is None else timedelta(seconds=self.max_time),
                accelerator=self.accelerator,
                callbacks=callbacks,
                logger=False,
                enable_checkpointing=folder is not None,
                plugins=[AtomicCheckpointIO()] if folder is not None else None,
                # a bar on a terminal; in a file or pipe, one line per epoch (EpochLines)
                enable_progress_bar=self.verbose and _is_terminal(),
                enable_model_summary=self.verbose,
                num_sanity_val_steps=0,
                limit_val_batches=1.0 if has_val else 0,
                default_root_dir=scratch,
                **dict(self.trainer_kwargs or {}),
            )
            # checked under the lock: what it finds is what Lightning will read
            resume_from = (
                None if folder is None else resume_point(folder, resume, fingerprint, module)
            )
            trainer.fit(module, dm, ckpt_path=resume_from)
        best.restore(module)
        module.fit_level_prior(dm)  # again: the kept weights may be an earlier step's
        module.eval()
        calibration, conformal = self._calibrate(module.model, dm, seed)
        return self._set_fitted(
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
        )

    def _fit_transform(
        self, df: Any, id_col: Any, time_col: Any, value_cols: Sequence[str] | None
    ) -> FeatureTransform:
        """The feature transforms of ``self.transforms`` for the features of ``df``."""
        if value_cols is not None:
            features = list(value_cols)
        elif isinstance(df, pd.DataFrame):
            features = [c for c in df.columns if c not in (id_col, time_col)]
        else:
            features = []  # not a frame: the data layer refuses it with its own message
        return FeatureTransform(self.transforms, features)

    def _calibrate(
        self, model: Any, dm: IrregularTimeSeriesDataModule, seed: int
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
        table, factors = calibrate(
            model.noise, points, names, conformal=self.conformal, seed=seed % (2**31)
        )
        table.insert(0, "series", label)
        return table, None if factors is None else factors.tolist()

    def _resolve_kinds(
        self, dm: IrregularTimeSeriesDataModule
    ) -> tuple[list[Hashable] | None, str | None]:
        """The modelled event kinds and where the events come from, after ``dm.setup()``."""
        if not self.poisson:
            return None, None
        if dm.event_kinds_ is not None:
            return list(dm.event_kinds_), "events"
        features = list(dm.dataset.fmt.value_cols)
        if self.event_kinds is not None and list(self.event_kinds) != features:
            raise ValueError(
                "without an events frame, each feature's observation times are its events, so "
                f"event_kinds must be None or the features {features}; got "
                f"{list(self.event_kinds)}"
            )
        return features, "observations"

    def _set_fitted(
        self,
        module: LatentODEModule,
        fmt: LongFormat,
        time_scaler: TimeScaler,
        feature_scaler: FeatureScaler,
        *,
        seed: int,
        best_epoch: int | None,
        best_val_loss: float | None,
        n_epochs: int,
        n_steps: int | None = None,
        event_kinds: list[Hashable] | None = None,
        event_source: str | None = None,
        calibration: pd.DataFrame | None = None,
        conformal: list[list[float]] | None = None,
        transform: FeatureTransform | None = None,
    ) -> LatentODE:
        """Set every fitted attribute at once (fit, from_lightning and load share it)."""
        n_kinds = module.hparams.get("n_event_kinds", 0) or 0
        if len(event_kinds or ()) != n_kinds:
            raise ValueError(
                f"the module models {n_kinds} event kinds but {len(event_kinds or ())} kind "
                "names were given"
            )
        if (event_source is None) != (n_kinds == 0):
            raise ValueError("an event source is needed exactly when the module has event kinds")
        self.event_kinds_ = None if event_kinds is None else list(event_kinds)
        self.event_source_ = event_source
        self.module_ = module.to("cpu").eval()
        self.format_ = fmt
        self.time_scaler_ = time_scaler
        self.feature_scaler_ = feature_scaler
        self.n_features_in_ = len(fmt.value_cols)
        self.feature_names_in_ = np.asarray(fmt.value_cols, dtype=object)
        self.best_epoch_ = best_epoch
        self.best_val_loss_ = best_val_loss
        self.n_epochs_ = n_epochs
        self.n_steps_ = n_steps
        self.calibration_ = calibration
        self.conformal_ = conformal
        self.transforms_ = transform if transform is not None else FeatureTransform(None, [])
        self._seed = seed
        return self

    @classmethod
    def from_lightning(
        cls,
        module: LatentODEModule,
        datamodule: IrregularTimeSeriesDataModule,
        *,
        conformal: bool = False,
    ) -> LatentODE:
        """Wrap a module trained with any Lightning ``Trainer`` (e.g. by ``latentode fit``).

        The estimator takes the module's weights and hyperparameters and the data module's
        layout and scalers, so it predicts, samples, scores and saves like a fitted one. A
        module whose predictive noise is not fitted yet gets it fitted here, as ``fit`` does,
        on the data module's validation series (its training series without any), with
        ``calibration_`` and, with ``conformal``, the conformal factors.
        """
        if not isinstance(module, LatentODEModule):
            raise TypeError(f"`module` must be a LatentODEModule; got {type(module).__name__}")
        if not isinstance(datamodule, IrregularTimeSeriesDataModule):
            raise TypeError(
                "`datamodule` must be an IrregularTimeSeriesDataModule; got "
                f"{type(datamodule).__name__}"
            )
        if datamodule.dataset is None:
            datamodule.setup()
        hp = module.hparams
        model = cls(
            latent_dim=hp.latent_dim,
            encoder=hp.encoder,
            encoder_hidden=hp.encoder_hidden,
            decoder_width=hp.decoder_width,
            decoder_depth=hp.decoder_depth,
            solver=hp.method,
            rtol=hp.rtol,
            atol=hp.atol,
            adjoint=hp.adjoint,
            likelihood_std=hp.obs_std,
            learn_std=hp.learn_std,
            n_iwae_samples=hp.n_samples,
            task=datamodule.task,
            batch_size=datamodule.batch_size,
            lr=hp.lr,
            optimizer=hp.get("optimizer", "adamax"),
            lr_schedule=hp.get("lr_schedule", "constant"),
            gradient_clip=hp.get("gradient_clip"),
            random_state=datamodule.seed,
            poisson=bool(hp.get("n_event_kinds", 0)),
            event_weight=hp.get("event_weight", 1.0),
            level=hp.get("level", "none"),
            time_gaps_per_unit=datamodule.time_gaps_per_unit,
            conformal=check_bool("conformal", conformal),
        )
        calibration, factors = None, None
        if not bool(module.model.noise.fitted):
            module.eval()
            with torch.no_grad():
                calibration, factors = model._calibrate(module.model, datamodule, datamodule.seed)
        kinds, source = None, None
        if hp.get("n_event_kinds", 0):
            if datamodule.event_kinds_ is not None:
                kinds, source = list(datamodule.event_kinds_), "events"
            else:
                kinds, source = list(datamodule.dataset.fmt.value_cols), "observations"
        scaler = datamodule.feature_scaler
        if scaler is None:  # trained on raw values: an identity scaling
            n = datamodule.n_features
            scaler = FeatureScaler.from_dict({"mean_": [0.0] * n, "scale_": [1.0] * n})
        return model._set_fitted(
            module,
            datamodule.dataset.fmt,
            datamodule.dataset.scaler,
            scaler,
            seed=datamodule.seed,
            best_epoch=None,
            best_val_loss=None,
            n_epochs=module.current_epoch,
            n_steps=module.global_step if module._trainer is not None else None,
            event_kinds=kinds,
            event_source=source,
            calibration=calibration,
            conformal=factors,
        )

    # -- shared prediction machinery -----------------------------------------------------------

    def _check_fitted(self) -> None:
        check_is_fitted(self, "module_")
        bad = _non_finite_weights(self.module_.state_dict())
        if bad:
            raise NonFiniteModelError(
                f"this model's weights hold NaN or infinity ({', '.join(bad[:3])}"
                f"{', …' if len(bad) > 3 else ''}), so every answer would be NaN. They were "
                "edited, or come from a fit that diverged; refit the model"
            )

    def _check_finite(self, values: np.ndarray, what: str) -> np.ndarray:
        """``values`` unchanged when all finite; else :class:`NonFiniteModelError`."""
        finite = np.isfinite(values)
        if finite.all():
            return values
        raise NonFiniteModelError(
            f"the model's {what} is NaN or infinite at {int((~finite).sum()):,} of "
            f"{values.size:,} values, so it is not returned. The learned dynamics overflow "
            "at these times (far from the training data, or in units beyond float range); ask "
            "for times nearer the observations, or refit with tighter solver tolerances"
        )

    def _check_added_columns(
        self, method: str, added: Sequence[str], *, with_features: bool = True
    ) -> None:
        """Refuse a call whose output columns would overwrite or duplicate the user's own.

        ``added`` are the columns ``method`` adds beside the id, time (and, with
        ``with_features``, feature) columns the model was fitted with.
        """
        fmt = self.format_
        own = {fmt.id_col: "the id column", fmt.time_col: "the time column"}
        if with_features:
            own.update(dict.fromkeys(fmt.value_cols, "a feature"))
        clashes = [f"{c!r} ({own[c]})" for c in dict.fromkeys(added) if c in own]
        if clashes:
            raise ValueError(
                f"{method}() adds the column(s) {', '.join(clashes)}, which this model's data "
                "already uses; the output would overwrite them. Rename those columns in your "
                "frame and fit again (the model keeps its training names), or ask for other "
                "quantile levels if the clash is a quantile column"
            )

    def _encode_frame(
        self, df: pd.DataFrame, events: pd.DataFrame | None = None
    ) -> IrregularDataset:
        """A new frame → a dataset in the fitted layout, scaling and time origins.

        ``events`` (a frame as in ``fit``) are attached to the series, for models whose
        events came from an events frame.
        """
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"`df` must be a pandas DataFrame; got {type(df).__name__}")
        fmt = self.format_
        missing = [c for c in (fmt.id_col, fmt.time_col, *fmt.value_cols) if c not in df.columns]
        if missing:
            raise ValueError(
                f"`df` lacks column(s) {', '.join(map(repr, missing))} that the model was fitted "
                f"on (id {fmt.id_col!r}, time {fmt.time_col!r}, features "
                f"{list(fmt.value_cols)}); rename or add them"
            )
        # Series in id order, whatever the row order: the batch (and with it the solver's
        # error norm and steps) is then the same for any ordering of the same series.
        df = self.transforms_.apply(df, fmt.id_col, fmt.time_col)
        series, _ = frame_to_series(_canonical_order(df, fmt.id_col), fmt=fmt)
        event_series = None
        if events is not None:
            if self.event_source_ != "events":
                raise ValueError(
                    "`events` were given, but this model's events are "
                    + (
                        "the observation times of each feature; leave events out"
                        if self.event_source_ == "observations"
                        else "absent (it was fitted without poisson=True)"
                    )
                )
            event_series = frame_to_events(events, series, fmt, self.event_kinds_)
        series = [self.feature_scaler_.transform_series(s) for s in series]
        return IrregularDataset(series, fmt, self.time_scaler_, events=event_series)

    def _target_times(
        self,
        ds: IrregularDataset,
        times: Any,
        horizon: Any,
        horizon_points: int = _HORIZON_POINTS,
    ) -> list[np.ndarray]:
        """Per series, the user-unit float times to predict at."""
        fmt = self.format_
        if times is not None and horizon is not None:
            raise ValueError("give `times` or `horizon`, not both")
        n_points = check_int("horizon_points", horizon_points, minimum=1)
        if n_points > _MAX_HORIZON_POINTS:
            raise ValueError(
                f"`horizon_points` must be at most {_MAX_HORIZON_POINTS:,}; got {n_points:,}. "
                "For a finer grid, pass the times themselves (`times=`)"
            )
        if horizon is not None:
            step = self._horizon_in_units(horizon)
            grid = np.linspace(0.0, step, n_points + 1)[1:]  # evenly spaced past the end
            return [s.times[-1] + grid for s in ds.series]
        if times is None:
            return [s.times for s in ds.series]
        if isinstance(times, pd.DataFrame):
            for col in (fmt.id_col, fmt.time_col):
                if col not in times.columns:
                    raise ValueError(
                        f"a `times` frame needs columns {fmt.id_col!r} and {fmt.time_col!r}; "
                        f"{col!r} is missing"
                    )
            known = {sid: i for i, sid in enumerate(ds.ids)}
            unknown = [i for i in pd.unique(times[fmt.id_col]) if i not in known]
            if unknown:
                raise ValueError(
                    f"`times` names series {unknown[:5]} that are not in `df`; every series to "
                    "predict needs its observations in `df`"
                )
            numbers = _plain_numbers(times[fmt.time_col])
            if numbers is not None and fmt.time_kind != "numeric":
                floats = self._numbers_to_float(numbers, ds, [known[i] for i in times[fmt.id_col]])
            else:
                floats = fmt.times_to_float(times[fmt.time_col])
            out: list[list[float]] = [[] for _ in ds.series]
            for sid, t in zip(times[fmt.id_col], floats, strict=True):
                out[known[sid]].append(float(t))
            return [np.unique(np.asarray(t, dtype=np.float64)) for t in out]
        if isinstance(times, str | bytes) or np.isscalar(times):
            raise TypeError(
                "`times` must be an array-like of times or a DataFrame of (id, time) pairs; "
                f"got {type(times).__name__}"
            )
        numbers = _plain_numbers(times)
        if numbers is not None and fmt.time_kind == "datetime":
            if numbers.size == 0:
                raise ValueError("`times` is empty; give at least one time")
            self._numbers_to_float(numbers, ds, [0] * numbers.size)  # checks them
            grid = np.unique(numbers)
            return [s.times[0] + grid for s in ds.series]
        try:
            if numbers is not None and fmt.time_kind == "timedelta":
                floats = self._numbers_to_float(numbers, ds, [0] * numbers.size)
            else:
                floats = fmt.times_to_float(times)
        except (TypeError, ValueError) as err:
            raise type(err)(f"bad `times`: {err}") from None
        if floats.size == 0:
            raise ValueError("`times` is empty; give at least one time")
        grid = np.unique(floats)
        return [grid for _ in ds.series]

    def _numbers_to_float(
        self, numbers: np.ndarray, ds: IrregularDataset, rows: Sequence[int]
    ) -> np.ndarray:
        """Plain numbers given to a datetime or timedelta model → float user-unit times.

        One rule: a number is an amount of the model's ``time_unit``. A timedelta model's
        axis has a zero, so it is the duration itself; a datetime model's has none, so it
        counts from the first observation of the series at ``rows`` (as ``horizon`` counts
        from the last).
        """
        if not np.isfinite(numbers).all():
            raise ValueError("`times` must be finite; found NaN or inf")
        if self.format_.time_kind == "timedelta":
            return numbers.astype(np.float64)
        firsts = np.array([ds.series[i].times[0] for i in rows], dtype=np.float64)
        return firsts + numbers

    def _horizon_in_units(self, horizon: Any) -> float:
        fmt = self.format_
        if isinstance(horizon, pd.Timedelta | np.timedelta64):
            if fmt.time_kind == "numeric":
                raise TypeError("`horizon` must be a number for numeric times; got a timedelta")
            value = pd.Timedelta(horizon) / pd.Timedelta(1, unit=fmt.time_unit)
        elif isinstance(horizon, Real) and not isinstance(horizon, bool):
            value = float(horizon)
        else:
            raise TypeError(
                f"`horizon` must be a positive number (in the model's time unit) or a "
                f"timedelta; got {horizon!r}"
            )
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"`horizon` must be finite and > 0; got {horizon!r}")
        return value

    def _chunks(self, n_series: int, n_times: int, n_samples: int) -> Iterator[range]:
        per_series = max(1, n_samples * n_times * self.n_features_in_)
        size = max(1, min(_MAX_SERIES_PER_CHUNK, _MAX_VALUES_PER_CHUNK // per_series))
        for start in range(0, n_series, size):
            yield range(start, min(start + size, n_series))

    def _blocks(
        self, user_times: list[np.ndarray], n_samples: int, width: int = 0
    ) -> Iterator[tuple[range, list[np.ndarray], int]]:
        """Cut a request into blocks that fit :data:`_MEMORY_BUDGET`.

        Yields ``(rows, times, block)``: the series of the block, the per-series times to use
        (``user_times`` itself, or for a block of one series' times a copy with that series'
        entry cut to the block), and the block's number within its series (0 unless the
        series is cut). A block's bytes count every sample × series × time × (latent state of
        the solve, which runs on the union of the block's times, + ``width`` user-unit values
        held per feature; default ~5, the draws, noise and quantiles).
        """
        model = self.module_.model
        width = width or 5 * model.n_features
        latent = model.latent_dim
        n_series = len(user_times)
        max_t = max(t.size for t in user_times)

        def cost(size: int, n_times: int) -> int:
            union = size * n_times
            return n_samples * size * (union * latent * 4 + n_times * width * 8)

        size = min(_MAX_SERIES_PER_CHUNK, n_series)
        while size > 1 and cost(size, max_t) > _MEMORY_BUDGET:
            size = max(1, size // 2)
        if cost(size, max_t) <= _MEMORY_BUDGET:
            for start in range(0, n_series, size):
                yield range(start, min(start + size, n_series)), user_times, 0
                if size < n_series:
                    _release_freed_memory()
            return
        for i in range(n_series):  # one series per block, its times cut to fit
            times = user_times[i]
            step = 1
            while step < times.size and cost(1, step * 2) <= _MEMORY_BUDGET:
                step *= 2
            if cost(1, times.size) <= _MEMORY_BUDGET:
                step = times.size
            for block, start in enumerate(range(0, times.size, step)):
                view = list(user_times)
                view[i] = times[start : start + step]
                yield range(i, i + 1), view, block
                _release_freed_memory()

    def _decode_samples(
        self,
        ds: IrregularDataset,
        rows: range,
        user_times: list[np.ndarray],
        n_samples: int,
        salt: int,
        *,
        noise: bool = False,
        block: int = 0,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Posterior samples for the series ``rows``: ``(S, B, T, F)`` in user units.

        Returns the decoded curves, the padded user times ``(B, T)``, the lengths, and with
        ``noise`` the predictive noise to add to the curves for new observations
        (:class:`~latentode.heads.predictive.PredictiveNoise`, independent at each time),
        ``(S, B, T, F)`` in user units (else None). Each series draws its own latent and
        observation noise from seeds made of its id and ``salt``, so a series gets the same
        samples whatever else is in the frame and in whatever row order, and the same curves
        with or without observation noise.
        """
        model = self.module_.model
        batch = ds.batch(list(rows))
        times, padded_user, lengths = self._scaled_times(ds, rows, user_times)  # (B, T)
        ids = [ds.ids[i] for i in rows]
        eps = self._noise(ids, n_samples, salt)  # (S, B, latent)
        with torch.no_grad():
            q, anchor = model.encode(batch)
            draws = model.decode(q.loc + q.scale * eps, times, anchor)  # (S, B, T, F)
            noisy = None
            if noise:
                std = model.noise_std(batch, times, draws)  # (S, B, T, F), standardised
                outside = batch.outside_window(times.to(batch.times.dtype)).numpy()  # (B, T)
                unit = self._observation_noise(ids, lengths, draws.shape, salt, outside, block)
                noisy = draws + unit * std
        # Padding repeats each series' last time, so every entry is a real read-out.
        values = self._check_finite(self._to_user(draws), "prediction")  # (S, B, T, F)
        if noisy is not None:
            noisy = self._check_finite(self._to_user(noisy), "predictive draw")
        return values, padded_user, lengths, noisy

    def _to_user(self, draws: torch.Tensor) -> np.ndarray:
        """Standardised, transformed model values ``(..., F)`` → the user's units."""
        scaled = self.feature_scaler_.inverse_transform(draws.double().numpy())
        return self.transforms_.inverse(scaled)

    def _noise(self, ids: list[Hashable], n_samples: int, salt: int) -> torch.Tensor:
        """``(n_samples, len(ids), latent)`` standard normal noise, seeded per series."""
        latent = self.module_.model.latent_dim
        return torch.stack(
            [
                torch.randn(
                    n_samples,
                    latent,
                    generator=torch.Generator().manual_seed(_series_seed(i, salt)),
                )
                for i in ids
            ],
            dim=1,
        )

    def _observation_noise(
        self,
        ids: list[Hashable],
        lengths: np.ndarray,
        shape: torch.Size,
        salt: int,
        outside: np.ndarray,
        block: int = 0,
    ) -> torch.Tensor:
        """Unit-scale noise ``shape = (S, B, T, F)``: each feature's t, per series seeded.

        ``outside (B, T)`` marks times outside each series' observed window, which draw from
        that window's law. A series draws exactly ``(S, its own n_times, F)`` values (padding
        stays 0) from a seed of its id and ``salt``, so its noise does not depend on its
        batch-mates.
        """
        noise = self.module_.model.noise
        n_samples, _, _, n_features = shape
        out = np.zeros(tuple(shape))
        for b, (sid, n) in enumerate(zip(ids, lengths, strict=True)):
            # a series cut into blocks of times draws each block from its own stream
            key = ("observation", sid) if block == 0 else ("observation", sid, block)
            rng = np.random.default_rng(_series_seed(key, salt))
            where = outside[b, : int(n), None]  # (n, 1)
            out[:, b, : int(n)] = noise.standard_draws(rng, (n_samples, int(n), n_features), where)
        return torch.as_tensor(out, dtype=torch.float32)

    # -- predict -----------------------------------------------------------------------------

    def predict(
        self,
        df: pd.DataFrame,
        times: Any = None,
        *,
        horizon: Any = None,
        horizon_points: int = _HORIZON_POINTS,
        quantiles: Sequence[float] = (0.05, 0.5, 0.95),
        num_samples: int = 100,
        interval: str = "predictive",
    ) -> pd.DataFrame:
        """Predictive mean and quantiles of every feature at any times, given observations.

        Times inside a series' observed window interpolate; times after it extrapolate.

        Parameters
        ----------
        df : DataFrame
            The observations to condition on, in the layout the model was fitted on.
        times : array-like or DataFrame, optional
            One grid of times for every series (numbers, datetimes or timedeltas, as in the
            training frame), or a frame of ``(id, time)`` pairs. Default: each series' own
            observation times. Plain numbers always count the model's ``time_unit``: for
            timedelta data they are durations (1.5 → 1.5 h), for datetime data they count
            from each series' first observation (as ``horizon`` counts from its last).
        horizon : float or timedelta, optional
            Instead of ``times``: ``horizon_points`` evenly spaced times after each series'
            last observation, up to this far past it.
        horizon_points : int, default=20
            How many times ``horizon`` asks for per series.
        quantiles : sequence of float, default=(0.05, 0.5, 0.95)
            Quantile levels in (0, 1).
        num_samples : int, default=100
            Posterior samples the mean and quantiles are estimated from.
        interval : {"predictive", "mean"}, default="predictive"
            ``"predictive"``: quantiles of a *new observation* at each time: the decoded curve
            under the posterior plus the predictive noise learned after ``fit`` on held-out
            points (it grows with the distance to the nearest observation, and has one law
            inside each series' observed window and another outside it), widened by the
            conformal factors when the model was fitted with ``conformal=True``. A 90% band
            (``q0.05``–``q0.95``) is meant to hold 90% of new observations; ``calibration_``
            says how well it did on the validation series. ``"mean"``: quantiles of the
            decoded curve alone (where the noise-free signal may be), much narrower.
            Quantiles of the ``num_samples`` draws use the positions ``k / (S + 1)``, so that
            a band holds a new draw with the probability it names.

        Returns
        -------
        DataFrame
            ``id, time``, each feature's mean under its own name, and one column per quantile
            per feature (``"<feature>_q<level>"``).
        """
        self._check_fitted()
        levels = self._check_quantiles(quantiles)
        n_samples = self._check_num_samples(num_samples, "num_samples")
        predictive = check_choice("interval", interval, INTERVALS) == "predictive"
        ds = self._encode_frame(df)
        user_times = self._target_times(ds, times, horizon, horizon_points)
        names = list(self.format_.value_cols)
        added = [f"{f}_q{q:g}" for q in levels for f in names]
        self._check_added_columns("predict", added)
        columns = names + added
        frames = []
        for rows, block_times, block in self._blocks(user_times, n_samples):
            curves, padded, lengths, noisy = self._decode_samples(
                ds, rows, block_times, n_samples, self._seed, noise=predictive, block=block
            )
            draws = curves if noisy is None else noisy  # (S, B, T, F)
            bands = band_quantiles(draws, levels)  # (Q, B, T, F)
            if predictive and self.conformal_ is not None:
                bands = self._widen(bands, np.median(draws, axis=0), ds, rows, padded)
            # Without a transform the noise has mean 0, and the curves' mean is exact; with
            # one, a new observation's mean is the back-transformed draws' (e.g. lognormal).
            mean = (draws if self.transforms_.spec else curves).mean(axis=0)
            stats = [mean, *bands]
            out = np.concatenate(stats, axis=-1)  # (B, T, F * (1 + n_quantiles))
            frames.append(
                _arrays_frame(
                    [ds.ids[i] for i in rows], padded, out, lengths, self.format_, columns
                )
            )
        return pd.concat(frames, ignore_index=True)

    def _widen(
        self,
        bands: np.ndarray,
        median: np.ndarray,
        ds: IrregularDataset,
        rows: range,
        padded: np.ndarray,
    ) -> np.ndarray:
        """Quantiles ``(Q, B, T, F)`` moved from the median by the conformal factors.

        Each time uses its feature's factor for its task band: interpolation inside the
        series' observed window, extrapolation outside it.
        """
        first = np.array([ds.series[i].times[0] for i in rows])[:, None]  # (B, 1)
        last = np.array([ds.series[i].times[-1] for i in rows])[:, None]
        outside = (padded < first) | (padded > last)  # (B, T)
        factors = np.asarray(self.conformal_)  # (F, n_bands)
        k = np.where(outside[..., None], factors[:, 1], factors[:, 0])  # (B, T, F)
        return median + k * (bands - median)

    # -- sample ------------------------------------------------------------------------------

    def sample(
        self,
        n_samples: int,
        times: Any,
        *,
        df: pd.DataFrame | None = None,
        random_state: int | np.random.Generator | None = None,
        noise: bool = True,
    ) -> pd.DataFrame:
        """Draw whole trajectories: new series from the prior, or posterior samples given ``df``.

        Parameters
        ----------
        n_samples : int
            Trajectories to draw (per series of ``df`` when given).
        times : array-like
            Without ``df``: times since the start of a new series, as numbers in the model's
            time unit or as timedeltas. With ``df``: as ``times`` in :meth:`predict`.
        df : DataFrame, optional
            Observations to condition on.
        random_state : int, numpy Generator or None
            Seeds the draw; the same seed gives the same samples.
        noise : bool, default=True
            Draw observations: each path is a decoded curve plus the predictive noise (see
            :meth:`predict`), independent at each time; for a new series, the noise of an
            observed time. False draws the curves alone (the same curves, for the same seed).

        Returns
        -------
        DataFrame
            Columns ``sample``, then (with ``df``) the id column, the time column and the
            features.
        """
        self._check_fitted()
        n = self._check_num_samples(n_samples, "n_samples")
        seed = _as_seed(random_state)
        check_bool("noise", noise)
        self._check_added_columns("sample", ["sample"])
        if df is not None:
            ds = self._encode_frame(df)
            user_times = self._target_times(ds, times, None)
            frames = []
            for rows, block_times, block in self._blocks(
                user_times, n, 3 * len(self.format_.value_cols)
            ):
                curves, padded, lengths, noisy = self._decode_samples(
                    ds, rows, block_times, n, seed, noise=noise, block=block
                )
                values = curves if noisy is None else noisy
                ids = [ds.ids[i] for i in rows]
                for k in range(n):
                    part = _arrays_frame(ids, padded, values[k], lengths, self.format_, None)
                    frames.append(part.assign(sample=k))
            out = pd.concat(frames, ignore_index=True)
            out = out.sort_values(["sample"], kind="stable", ignore_index=True)
            return out[["sample", *[c for c in out.columns if c != "sample"]]]
        offsets = self._prior_offsets(times)
        scaled = torch.as_tensor(offsets / self.time_scaler_.scale_, dtype=torch.float32)
        model = self.module_.model
        per_sample = offsets.size * (model.latent_dim * 4 + 3 * model.n_features * 8)
        chunk = max(1, min(n, _MEMORY_BUDGET // max(1, per_sample)))
        parts = []
        for block, start in enumerate(range(0, n, chunk)):
            size = min(chunk, n - start)
            # one block draws from the seed itself; further blocks from streams of their own
            generator = torch.Generator().manual_seed(
                seed if block == 0 else _series_seed(("prior", block), seed)
            )
            with torch.no_grad():
                draws = model.sample_prior(
                    scaled.unsqueeze(0), n_samples=size, generator=generator
                )  # (size, 1, T, F)
                if noise:  # a new series has no observations: the noise at an observed time
                    std = model.noise.std(torch.zeros_like(draws), draws)  # (size, 1, T, F)
                    eps = self._observation_noise(
                        ["prior"],
                        np.array([offsets.size]),
                        draws.shape,
                        seed,
                        np.zeros((1, offsets.size), dtype=bool),
                        block,
                    )
                    draws = draws + eps * std
            parts.append(self._check_finite(self._to_user(draws[:, 0]), "prior draw"))
        values = np.concatenate(parts)  # (n, T, F)
        fmt = self.format_
        time_values = fmt.float_to_times(offsets) if fmt.time_kind == "numeric" else None
        if time_values is None:
            unit = pd.Timedelta(1, unit=fmt.time_unit)
            time_values = pd.to_timedelta(offsets * unit.value, unit="ns")
        frame = pd.DataFrame(
            {
                "sample": np.repeat(np.arange(n), offsets.size),
                fmt.time_col: np.tile(np.asarray(time_values), n),
            }
        )
        for j, name in enumerate(fmt.value_cols):
            frame[name] = values[:, :, j].reshape(-1)
        return frame

    def _prior_offsets(self, times: Any) -> np.ndarray:
        fmt = self.format_
        if times is None or isinstance(times, str | bytes | pd.DataFrame) or np.isscalar(times):
            raise TypeError(
                "`times` for prior samples must be an array-like of times since the start of a "
                f"series; got {type(times).__name__}"
            )
        numbers = _plain_numbers(times)
        if numbers is not None:  # in the model's time unit, whatever its kind of time
            offsets = numbers
        elif fmt.time_kind == "numeric":
            arr = np.asarray(times)
            if not np.issubdtype(arr.dtype, np.number) or arr.ndim != 1:
                raise TypeError(
                    "`times` for prior samples must be a 1-D array of numbers (time since the "
                    f"series' start); got dtype {arr.dtype} and shape {arr.shape}"
                )
            offsets = arr.astype(np.float64)
        else:
            if any(isinstance(v, Real) and not isinstance(v, bool) for v in list(times)):
                raise TypeError(
                    "`times` for prior samples mixes plain numbers with other times; give all "
                    f"numbers (in the model's time unit, {fmt.time_unit!r}) or all timedeltas"
                )
            try:
                deltas = pd.to_timedelta(pd.Series(list(times)))
            except (TypeError, ValueError) as err:
                raise TypeError(
                    "`times` for prior samples must be numbers (in the model's time unit, "
                    f"{fmt.time_unit!r}) or timedeltas since the series' start; {err}"
                ) from None
            offsets = np.asarray(deltas / pd.Timedelta(1, unit=fmt.time_unit), dtype=np.float64)
        if offsets.size == 0:
            raise ValueError("`times` is empty; give at least one time")
        if not np.isfinite(offsets).all():
            raise ValueError("`times` must be finite; found NaN or inf")
        return np.unique(offsets)

    # -- events (Poisson head) ---------------------------------------------------------------

    def _check_poisson(self) -> None:
        self._check_fitted()
        if self.event_kinds_ is None:
            raise ValueError(
                "this model has no event intensities; fit it with LatentODE(poisson=True)"
            )

    def _kind_rows(self, kinds: Any) -> list[int]:
        """Positions of the requested kinds among ``event_kinds_`` (all when None)."""
        known = self.event_kinds_
        if kinds is None:
            return list(range(len(known)))
        if isinstance(kinds, str | bytes) or not isinstance(kinds, Sequence | np.ndarray):
            kinds = [kinds]
        unknown = [k for k in kinds if k not in known]
        if unknown:
            raise ValueError(
                f"unknown event kind(s) {unknown}; this model knows {known}. Pick kinds from "
                "event_kinds_"
            )
        if len(kinds) == 0:
            raise ValueError(f"`kinds` is empty; pick kinds from {known} or pass None for all")
        return [known.index(k) for k in kinds]

    def predict_intensity(
        self,
        df: pd.DataFrame,
        times: Any = None,
        *,
        horizon: Any = None,
        horizon_points: int = _HORIZON_POINTS,
        quantiles: Sequence[float] = (0.05, 0.5, 0.95),
        num_samples: int = 100,
        kinds: Sequence[Hashable] | None = None,
    ) -> pd.DataFrame:
        """Event intensities of the series in ``df``, with their posterior spread.

        Parameters
        ----------
        df : DataFrame
            Observations to condition on, in the training layout.
        times, horizon, horizon_points : optional
            Where to evaluate, as in :meth:`predict` (default: each series' own times). Any
            time works, inside or past the observations, as a window in ``fit`` may reach past
            them to its last event.
        quantiles : sequence of float, default=(0.05, 0.5, 0.95)
            Levels of the intensity's posterior quantiles.
        num_samples : int, default=100
            Posterior samples the estimates come from.
        kinds : list, optional
            Event kinds to report; default all of ``event_kinds_``.

        Returns
        -------
        DataFrame
            One row per series, time and kind: ``id, time, kind``; ``intensity`` (posterior mean
            of λ, in events per unit of the training time unit); ``intensity_q<level>``; and
            ``expected_count``, the posterior mean number of events between the series'
            previous requested time and this one (0 on its first row). For the expected count
            on an interval ``[a, b]``, pass ``times=[a, b]`` and read the row at ``b``. The
            compensator behind it comes from the ODE solve itself, not from quadrature.
        """
        self._check_poisson()
        levels = self._check_quantiles(quantiles)
        n_samples = self._check_num_samples(num_samples, "num_samples")
        rows_k = self._kind_rows(kinds)
        ds = self._encode_frame(df)
        user_times = self._target_times(ds, times, horizon, horizon_points)
        model = self.module_.model
        scale = self.time_scaler_.scale_
        columns = ["intensity", *[f"intensity_q{q:g}" for q in levels], "expected_count"]
        self._check_added_columns("predict_intensity", ["kind", *columns], with_features=False)
        frames = []
        n_kinds = len(self.event_kinds_)
        width = 2 * model.n_features + (3 + len(levels)) * n_kinds
        carry = None  # a cut series' mean compensator at the end of its previous block
        for rows, block_times, block in self._blocks(user_times, n_samples, width):
            batch = ds.batch(list(rows))
            times_b, padded, lengths = self._scaled_times(ds, rows, block_times)
            eps = self._noise([ds.ids[i] for i in rows], n_samples, self._seed)
            with torch.no_grad():
                q, anchor = model.encode(batch)
                _, lam, integral = model.intensity(q.loc + q.scale * eps, times_b, anchor)
            lam = self._check_finite(lam.double().numpy() / scale, "intensity")  # (S, B, T, K)
            integral = self._check_finite(integral.double().numpy(), "expected count")
            mean_integral = integral.mean(axis=0)  # (B, T, K); counts are its differences
            first = mean_integral[:, :1] if block == 0 else carry
            counts = np.diff(mean_integral, axis=1, prepend=first)
            carry = mean_integral[:, -1:]
            stats = [lam.mean(axis=0), *np.quantile(lam, levels, axis=0), counts]
            out = np.stack(stats, axis=-1)  # (B, T, K, n_columns)
            ids = [ds.ids[i] for i in rows]
            for k in rows_k:
                part = _arrays_frame(ids, padded, out[:, :, k, :], lengths, self.format_, columns)
                part.insert(2, "kind", [self.event_kinds_[k]] * len(part))
                frames.append(part.assign(_kind=k))
        out = pd.concat(frames, ignore_index=True).drop(columns="_kind")
        return _sort_long(out, self.format_, "kind", [self.event_kinds_[k] for k in rows_k])

    def _scaled_times(
        self, ds: IrregularDataset, rows: range, user_times: list[np.ndarray]
    ) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """Padded model times ``(B, T)``, padded user times and lengths for series ``rows``."""
        lengths = np.array([user_times[i].size for i in rows])
        scaled = [
            torch.as_tensor(
                self.time_scaler_.transform(user_times[i], ds.origins[i]), dtype=torch.float32
            )
            for i in rows
        ]
        times = _pad_repeating_last(scaled, int(lengths.max()))
        padded_user = np.zeros(times.shape)
        for b, i in enumerate(rows):
            padded_user[b, : lengths[b]] = user_times[i]
        return times, padded_user, lengths

    def sample_events(
        self,
        df: pd.DataFrame | None = None,
        *,
        t_start: Any = None,
        t_end: Any = None,
        n_samples: int = 1,
        random_state: int | np.random.Generator | None = None,
        kinds: Sequence[Hashable] | None = None,
        n_grid: int = 64,
        max_refinements: int = 6,
    ) -> pd.DataFrame:
        """Draw event times along sampled latent trajectories, by thinning.

        For each sample a latent path is drawn (from the posterior given ``df``, or from the
        prior), and events are drawn from its intensity by Lewis–Shedler thinning under a
        piecewise-constant bound that is checked at every candidate: where the intensity is
        found above it, the grid is refined and that path's events are drawn again (see
        :func:`latentode.heads.poisson.sample_thinning`); a wrong bound is never accepted.

        Parameters
        ----------
        df : DataFrame, optional
            Observations to condition on; without it, new series are drawn from the prior.
        t_start, t_end : optional
            The window to draw events on. With ``df``: times as in the training frame (default:
            each series' first and last row of ``df``; events are not an input here, so to
            draw past the last observation, as events in ``fit`` may lie, pass ``t_end``).
            Without ``df``: time since a new series' start, numbers in the model's time unit
            or timedeltas; ``t_start`` defaults to 0 and ``t_end`` is required. Plain numbers
            with ``df`` follow :meth:`predict`'s rule for ``times``.
        n_samples : int, default=1
            Samples (per series of ``df``).
        random_state : int, numpy Generator or None
            Seeds the draw; the same seed gives the same events.
        kinds : list, optional
            Kinds to return; default all.
        n_grid, max_refinements : int
            Cells of the first bounding grid and how often it may be refined.

        Returns
        -------
        DataFrame
            ``sample, id, time, kind``, sorted. A prior draw is a new series whose id is its
            sample number; its times count from its start.
        """
        self._check_poisson()
        n = self._check_num_samples(n_samples, "n_samples")
        self._check_added_columns("sample_events", ["sample", "kind"], with_features=False)
        rows_k = self._kind_rows(kinds)
        seed = _as_seed(random_state)
        fmt = self.format_
        scale = self.time_scaler_.scale_
        model = self.module_.model
        latent = model.latent_dim
        if df is not None:
            ds = self._encode_frame(df)
            starts = np.array([s.times[0] for s in ds.series])
            ends = np.array([s.times[-1] for s in ds.series])
            if t_start is not None:
                starts = self._window_edge(t_start, "t_start", ds)
            if t_end is not None:
                ends = self._window_edge(t_end, "t_end", ds)
            ids = list(ds.ids)
            with torch.no_grad():
                q, _ = model.encode(ds.batch())
            eps = self._noise(ids, n, seed)  # (S, B, latent)
            z0 = (q.loc + q.scale * eps).reshape(-1, latent)  # sample-major
            origins = np.tile(ds.origins, n)
            windows = (np.tile(starts, n), np.tile(ends, n))
            traj_ids = ids * n
        else:
            if t_end is None:
                raise ValueError(
                    "give `t_end`: how long the new series last (time since their start)"
                )
            start = 0.0 if t_start is None else float(self._prior_offsets([t_start])[0])
            end = float(self._prior_offsets([t_end])[0])
            ids = list(range(n))
            z0 = torch.randn(n, latent, generator=torch.Generator().manual_seed(seed))
            origins = np.zeros(n)
            windows = (np.full(n, start), np.full(n, end))
            traj_ids = ids
        lo, hi = windows
        if (hi <= lo).any():
            raise ValueError(
                f"`t_end` must be after `t_start`; got windows ending at or before their start "
                f"(e.g. [{lo[hi <= lo][0]:g}, {hi[hi <= lo][0]:g}] in model time units)"
            )
        n_traj = z0.shape[0]
        samples = np.repeat(np.arange(n), n_traj // n)
        # one stream per (series, sample); prior draws get their own tag, not a series' stream
        tags = traj_ids if df is not None else [("prior", i) for i in traj_ids]
        rngs = [
            np.random.default_rng([_series_seed(i, seed), int(k)])
            for i, k in zip(tags, samples, strict=True)
        ]

        def intensity(rows: np.ndarray, times: np.ndarray) -> np.ndarray:
            out = []
            for start in range(0, rows.size, 64):  # bounds the union grid of one solve
                part = rows[start : start + 64]
                t = torch.as_tensor(times[start : start + 64], dtype=torch.float32)
                with torch.no_grad():
                    z = model.decoder.trajectory(z0[part].unsqueeze(0), t)[0]
                    out.append(model.poisson(z).double().numpy())
            return self._check_finite(np.concatenate(out), "intensity")

        result = sample_thinning(
            intensity,
            (lo - origins) / scale,
            (hi - origins) / scale,
            rngs,
            n_grid=n_grid,
            max_refinements=max_refinements,
        )
        wanted = np.asarray(rows_k)
        rows_out = []
        for j in range(n_traj):
            keep = np.isin(result.kinds[j], wanted)
            t_user = result.times[j][keep] * scale + origins[j]
            for t, k in zip(t_user, result.kinds[j][keep], strict=True):
                rows_out.append((int(samples[j]), traj_ids[j], float(t), int(k)))
        sample_col = np.array([r[0] for r in rows_out], dtype=np.int64)
        floats = np.array([r[2] for r in rows_out], dtype=np.float64)
        if df is not None:
            time_values = fmt.float_to_times(floats)
        elif fmt.time_kind == "numeric":
            time_values = floats
        else:
            unit = pd.Timedelta(1, unit=fmt.time_unit)
            time_values = pd.to_timedelta(floats * unit.value, unit="ns")
        id_values = [r[1] for r in rows_out]
        out = pd.DataFrame(
            {
                "sample": sample_col,
                fmt.id_col: pd.Series(id_values, dtype=object if df is not None else np.int64),
                fmt.time_col: np.asarray(time_values),
                "kind": pd.Series([self.event_kinds_[r[3]] for r in rows_out], dtype=object),
            }
        )
        if df is not None and len(out):
            out[fmt.id_col] = out[fmt.id_col].astype(pd.Series(ds.ids).dtype)
        return out

    def _window_edge(self, value: Any, name: str, ds: IrregularDataset) -> np.ndarray:
        """``(n_series,)`` float user times of one window edge given for every series.

        A plain number is in the model's time unit (for datetimes, since each series' first
        observation); a datetime or timedelta is used as it is.
        """
        numbers = _plain_numbers(value) if np.isscalar(value) else None
        if numbers is not None and self.format_.time_kind != "numeric":
            try:
                return self._numbers_to_float(np.repeat(numbers, len(ds)), ds, range(len(ds)))
            except ValueError as err:
                raise ValueError(f"bad `{name}`: {err}") from None
        return np.full(len(ds), self._one_time(value, name))

    def _one_time(self, value: Any, name: str) -> float:
        """One user time (number, datetime or timedelta as in training) → float user units."""
        try:
            floats = self.format_.times_to_float([value])
        except (TypeError, ValueError) as err:
            raise type(err)(f"bad `{name}`: {err}") from None
        return float(floats[0])

    # -- score -------------------------------------------------------------------------------

    def score(
        self, df: pd.DataFrame, n_samples: int = 10, *, events: pd.DataFrame | None = None
    ) -> float:
        """Log-likelihood of held-out series per observed value, in nats (higher is better).

        An importance-weighted lower bound (IWAE, ``n_samples`` draws) of ``log p(x)`` for
        each series, conditioned on and scoring all its observations, divided by its number of
        observed values and averaged over series. The density is in the data's own units (the
        feature scaling's and any ``transforms``' Jacobians are accounted for), so a score
        changes with the units: compare models on the same data, or read it beside the
        reference in :meth:`score_details`. The noise is the predictive noise fitted after
        training; with ``level="series"`` each series' level is integrated out under the
        prior fitted to the training series, not fitted to the points scored. With
        ``poisson=True`` the events' log-likelihood is added (the observation times as events,
        or ``events`` as in ``fit``, on windows widened to them as there);
        :meth:`score_details` reports the two apart.
        """
        details = self.score_details(df, n_samples, events=events)
        return float(details.loc["total", "log_likelihood"])

    def score_details(
        self, df: pd.DataFrame, n_samples: int = 10, *, events: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """The terms of :meth:`score`, each beside a simple reference, so a number can be read.

        Returns
        -------
        DataFrame
            Indexed by term: ``"values"`` (per observed value), ``"events"`` (per event, given
            the values; only with ``poisson=True``) and ``"total"`` (values and events, per
            observed value: what :meth:`score` returns). Columns: ``n`` (values or events
            scored), ``log_likelihood`` (nats per unit, averaged over series) and
            ``reference``: for values, independent Gaussians with each feature's training mean
            and std (a model that knows nothing about time or series); for events, a
            homogeneous Poisson process with each kind's rate over ``df`` itself.

        Notes
        -----
        The bound pays for the posterior's distance from the prior (its KL). Trained with
        ``kl_weight < 1`` (the default 0.1), posteriors are sharper than the prior explains,
        which lowers this bound, at times below the reference, while predictions are far
        better than the reference's; judge predictions with :func:`latentode.evaluate.compare`
        (CRPS, coverage) and use scores to compare models trained alike.
        """
        self._check_fitted()
        k = self._check_num_samples(n_samples, "n_samples")
        if self.event_source_ == "events" and events is None:
            raise ValueError(
                "this model learned its intensities from an events frame: pass the series' "
                "events too (score(df, events=frame of id, time[, kind]))"
            )
        ds = self._encode_frame(df, events=events)
        model = self.module_.model
        poisson = model.poisson is not None
        log_scale = np.log(self.feature_scaler_.scale_)  # (F,)
        parts: dict[str, list[np.ndarray]] = {"values": [], "total": [], "events": []}
        counts: dict[str, list[np.ndarray]] = {"values": [], "events": []}
        reference: list[np.ndarray] = []
        with torch.no_grad():
            for rows in self._chunks(len(ds), max(s.n_obs for s in ds.series), k):
                batch = ds.batch(list(rows))
                q, _ = model.encode(batch)
                z0 = q.loc + q.scale * self._noise([ds.ids[i] for i in rows], k, self._seed)
                prior = Normal(torch.zeros_like(q.loc), 1.0)
                log_ratio = (prior.log_prob(z0) - q.log_prob(z0)).sum(-1)  # (K, B)
                values_ll = model.log_likelihood(z0, batch)  # (K, B)
                events_ll = model.event_log_likelihood(z0, batch) if poisson else 0.0
                bound_values = torch.logsumexp(values_ll + log_ratio, 0) - math.log(k)  # (B,)
                bound_total = torch.logsumexp(values_ll + events_ll + log_ratio, 0) - math.log(k)
                mask = batch.mask.double().numpy()
                # log p(x) = log p(z) - log(scale) + log|transform'(x)|, z the model's value
                user = self._to_user(batch.values.unsqueeze(0))[0]  # (B, T, F)
                slope = np.where(mask > 0, self.transforms_.log_abs_slope(user), 0.0)
                jacobian = (mask * log_scale).sum(axis=(1, 2)) - slope.sum(axis=(1, 2))  # (B,)
                values = bound_values.double().numpy() - jacobian
                total = bound_total.double().numpy() - jacobian
                parts["values"].append(values)
                parts["total"].append(total)
                parts["events"].append(total - values)
                counts["values"].append(mask.sum(axis=(1, 2)))
                counts["events"].append(_n_events(batch))
                z = np.where(mask > 0, batch.values.double().numpy(), 0.0)
                gauss = -0.5 * z**2 - 0.5 * math.log(2 * math.pi)
                reference.append((gauss * mask).sum(axis=(1, 2)) - jacobian)
        n_values = np.concatenate(counts["values"])
        n_events = np.concatenate(counts["events"])
        self._check_finite(np.concatenate(parts["total"]), "log-likelihood")
        table = {
            "values": (n_values, np.concatenate(parts["values"]), np.concatenate(reference)),
            "total": (n_values, np.concatenate(parts["total"]), None),
        }
        if poisson:
            table["events"] = (n_events, np.concatenate(parts["events"]), None)
        rows_out = {}
        for term, (n, nats, ref) in table.items():
            has = n > 0
            rows_out[term] = {
                "n": int(n.sum()),
                "log_likelihood": float(np.mean(nats[has] / n[has])) if has.any() else np.nan,
                "reference": np.nan if ref is None else float(np.mean(ref[has] / n[has])),
            }
        if poisson:
            rows_out["events"]["reference"] = _homogeneous_poisson(ds, n_events)
            rows_out["total"]["reference"] = np.nan
        frame = pd.DataFrame.from_dict(rows_out, orient="index")
        return frame.reindex([t for t in ("values", "events", "total") if t in frame.index])

    # -- checks of call arguments ----------------------------------------------------------------

    @staticmethod
    def _check_quantiles(quantiles: Any) -> list[float]:
        if isinstance(quantiles, str | bytes) or not isinstance(quantiles, Sequence | np.ndarray):
            raise TypeError(f"`quantiles` must be a sequence of levels; got {quantiles!r}")
        levels = []
        for q in quantiles:
            value = check_real("quantiles", q)
            if not 0 < value < 1:
                raise ValueError(f"`quantiles` must lie strictly inside (0, 1); got {q!r}")
            levels.append(value)
        if len(set(levels)) != len(levels):
            raise ValueError(f"`quantiles` must be distinct; got {list(quantiles)}")
        return levels

    @staticmethod
    def _check_num_samples(value: Any, name: str) -> int:
        n = check_int(name, value, minimum=1)
        if n > _MAX_SAMPLES:
            raise ValueError(
                f"`{name}` must be at most {_MAX_SAMPLES:,} per call; got {n:,}. Draw in several "
                "calls with different random_state values"
            )
        return n

    # -- persistence -------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the fitted model to the folder ``path`` (created if missing); returns it.

        Two files: ``latentode.json`` (parameters, data layout and fitted scalers) and
        ``weights.pt`` (tensors only). :meth:`load` runs no code from either. The folder is
        written whole beside ``path`` and swapped in, so a crash leaves the old model or
        none; a symbolic link, or a folder holding other files, is refused (see
        :mod:`latentode.persistence`).
        """
        self._check_fitted()
        params = self.get_params(deep=False)
        if not isinstance(params["random_state"], int | type(None)):
            params["random_state"] = None
        if params["event_kinds"] is not None:
            params["event_kinds"] = _plain_kinds(list(params["event_kinds"]))
        config = {
            "format_version": _FORMAT_VERSION,
            "latentode_version": __version__,
            "params": params,
            "n_features": self.n_features_in_,
            "module_hparams": _module_hparams(self.module_),
            "format": self.format_.to_dict(),
            "time_scaler": self.time_scaler_.to_dict(),
            "feature_scaler": self.feature_scaler_.to_dict(),
            "seed": self._seed,
            "best_epoch": self.best_epoch_,
            "best_val_loss": self.best_val_loss_,
            "n_epochs": self.n_epochs_,
            "n_steps": self.n_steps_,
            "event_kinds": _plain_kinds(self.event_kinds_),
            "event_source": self.event_source_,
            "calibration": None
            if self.calibration_ is None
            else {c: _plain(v) for c, v in self.calibration_.to_dict(orient="list").items()},
            "conformal": self.conformal_,
            "transforms": self.transforms_.to_dict(),
        }
        return write_model(path, config, self.module_.state_dict())

    @classmethod
    def load(cls, path: str | Path) -> LatentODE:
        """Read a model written by :meth:`save`. Runs no code from the files.

        Raises:
            FileNotFoundError: no folder at ``path``, or a file of it missing.
            ValueError: a malformed, edited or mismatched folder, settings that disagree with
                each other or with the weights; :class:`NonFiniteModelError` for weights
                holding NaN or infinity.
        """
        folder = Path(path)
        config, state = read_model(folder)
        config_file = folder / CONFIG_FILE
        if config.get("format_version") != _FORMAT_VERSION:
            raise ValueError(
                f"{config_file} is not a latentode model file of format version {_FORMAT_VERSION}"
            )
        _check_config_keys(config, config_file)
        try:
            model = cls(**{**_LEGACY_PARAMS, **config["params"]})
            model._check_params()
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
            )
        except NonFiniteModelError:
            raise
        except (
            KeyError,
            TypeError,
            ValueError,
            RuntimeError,
        ) as err:
            raise ValueError(
                f"{str(folder)!r} holds a corrupt or incompatible model: {err}"
            ) from None
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
}
# weights a model saved before them lacks; they keep their defaults (a band at the noise floor)
_OPTIONAL_WEIGHTS = {"model.noise.coef", "model.noise.fitted"}


def _release_freed_memory() -> None:
    """Hand memory freed by the last block back to the system (glibc only; else nothing).

    Blocks of a long request allocate and free arrays of a few hundred megabytes again and
    again; glibc keeps the freed pages in its heap, fragmented, and the process grew by ~20 MB
    a block (7 GB over one series x 5000 times x 100,000 samples) though nothing was kept.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return None


def _plain_numbers(values: Any) -> np.ndarray | None:
    """``values`` as a 1-D float64 array when they are plain real numbers (not bools, not
    datetimes or timedeltas, not text); else None."""
    if isinstance(values, str | bytes) or (np.isscalar(values) and not isinstance(values, Real)):
        return None
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError):
        return None
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.dtype == object and arr.size:
        if not all(isinstance(v, Real) and not isinstance(v, bool) for v in arr.ravel()):
            return None
        arr = arr.astype(np.float64)
    if arr.ndim != 1 or arr.dtype.kind not in "iuf":
        return None
    return arr.astype(np.float64)


def _non_finite_weights(state: dict[str, Any]) -> list[str]:
    """Names of the floating-point tensors in ``state`` that hold NaN or infinity."""
    return [
        name
        for name, value in state.items()
        if isinstance(value, torch.Tensor)
        and value.is_floating_point()
        and not bool(torch.isfinite(value).all())
    ]


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


def _check_consistent(config: dict[str, Any], module: LatentODEModule, state: dict) -> None:
    """Refuse settings that disagree with each other or with the weights' shapes."""
    seed = config["seed"]
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < _MAX_SEED:
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
}


def _check_config_keys(config: dict[str, Any], path: Path) -> None:
    """Refuse a model file with unknown or missing settings, before anything is built from it."""
    unknown = sorted(set(config) - _CONFIG_KEYS - _OPTIONAL_CONFIG_KEYS)
    missing = sorted(_CONFIG_KEYS - set(config))
    params = config.get("params")
    if not isinstance(params, dict):
        raise ValueError(f"{path} is not a latentode model file: `params` is not a mapping")
    unknown_params = sorted(set(params) - set(LatentODE._get_param_names()))
    if unknown or missing or unknown_params:
        raise ValueError(
            f"{path} does not match this latentode's model format: unknown keys "
            f"{unknown + [f'params.{k}' for k in unknown_params]}, missing keys {missing}. It "
            "was edited, or written by another version; re-save the model with this version"
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
    {"verbose", "max_time", "accelerator", "trainer_kwargs", "conformal", "random_state"}
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
        return _as_seed(estimator.random_state)
    checkpoint = read_checkpoint(path)
    saved = checkpoint["callbacks"][RunFingerprint.KEY].get("settings") or {}
    given = estimator.random_state
    if given is None and isinstance(saved.get("random_state"), int):
        given = saved["random_state"]
    seed = _as_seed(given)
    settings_only = RunFingerprint(_FIT, _run_settings(estimator, seed), {})
    check_same_run(checkpoint, settings_only, path)
    return seed


def _plain_kinds(kinds: list[Hashable] | None) -> list[Any] | None:
    """Event kinds as JSON values (numpy scalars become Python ones)."""
    return None if kinds is None else _plain(kinds)


def _module_hparams(module: LatentODEModule) -> dict[str, Any]:
    """The module's constructor arguments (LightningCLI adds bookkeeping keys of its own)."""
    accepted = inspect.signature(LatentODEModule.__init__).parameters
    return {k: v for k, v in module.hparams.items() if k in accepted}


def _canonical_order(df: Any, id_col: str) -> Any:
    """``df`` with its series in id order, so a fit does not depend on row or series order.

    Ids that cannot be compared with each other (mixed types) are ordered by their text.
    Anything that is not a frame with ``id_col`` is passed on for the data layer to refuse.
    """
    if not isinstance(df, pd.DataFrame) or id_col not in df.columns:
        return df
    ids = df[id_col]
    try:
        order = np.argsort(ids.to_numpy(), kind="stable")
    except TypeError:
        order = np.argsort(ids.astype(str).to_numpy(), kind="stable")
    return df.iloc[order]


def _n_events(batch: Any) -> np.ndarray:
    """``(batch,)`` events of each series: its explicit events, else its observed entries."""
    if batch.events is not None:
        return batch.events.mask.double().numpy().sum(axis=1)
    return batch.mask.double().numpy().sum(axis=(1, 2))


def _homogeneous_poisson(ds: IrregularDataset, n_events: np.ndarray) -> float:
    """Log-likelihood per event of one constant rate, fitted to ``ds`` itself (MLE)."""
    spans = np.array([s.times[-1] - s.times[0] for s in ds.series])
    total_events, total_span = float(n_events.sum()), float(spans.sum())
    if total_events == 0 or total_span <= 0:
        return float("nan")
    rate = total_events / total_span
    per_series = n_events * math.log(rate) - rate * spans
    has = n_events > 0
    return float(np.mean(per_series[has] / n_events[has]))


def _is_terminal() -> bool:
    """Whether standard output is a terminal (where a redrawn progress bar reads well)."""
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty())


def _series_seed(series_id: Hashable, salt: int) -> int:
    """A seed from a series id and a salt, stable across processes (unlike ``hash``)."""
    digest = hashlib.sha256(f"{salt}:{type(series_id).__name__}:{series_id!r}".encode())
    return int.from_bytes(digest.digest()[:8], "little") % (2**63)


def _arrays_frame(
    ids: list[Hashable],
    times: np.ndarray,
    values: np.ndarray,
    lengths: np.ndarray,
    fmt: LongFormat,
    columns: list[str] | None,
) -> pd.DataFrame:
    return arrays_to_frame(
        ids, times, values, fmt, lengths=lengths.astype(np.int64), value_cols=columns
    )


def _sort_long(
    frame: pd.DataFrame, fmt: LongFormat, kind_col: str, kind_order: list[Hashable]
) -> pd.DataFrame:
    """Rows by series (in the frame's order of first appearance), time, then kind order."""
    series_pos = pd.factorize(frame[fmt.id_col])[0]
    kind_pos = frame[kind_col].map({k: j for j, k in enumerate(kind_order)}).to_numpy()
    time_key = fmt.times_to_float(frame[fmt.time_col])
    order = np.lexsort((kind_pos, time_key, series_pos))
    return frame.iloc[order].reset_index(drop=True)
