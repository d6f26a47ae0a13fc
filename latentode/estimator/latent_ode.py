"""`LatentODE`: the scikit-learn facade. Parameters, fit, and one-line delegations.

The work lives beside it: :mod:`~latentode.estimator.params` (the constraint table),
:mod:`~latentode.estimator.training` (fit), :mod:`~latentode.estimator.predictor` (predict,
sample, score), :mod:`~latentode.estimator.events` (intensities and event draws) and
:mod:`~latentode.estimator.saving` (save and load).
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from latentode._validation import check_bool
from latentode.data import FeatureScaler, LongFormat, TimeScaler
from latentode.data.covariates import CovariateSchema
from latentode.data.transforms import FeatureTransform
from latentode.estimator.events import predict_intensity, sample_events
from latentode.estimator.params import check_params
from latentode.estimator.predictor import NonFiniteModelError, Predictor, _non_finite_weights
from latentode.estimator.saving import load_model, save_model
from latentode.estimator.scoring import score_details
from latentode.estimator.times import HORIZON_POINTS
from latentode.estimator.training import calibrate_noise, fit_estimator
from latentode.lightning import IrregularTimeSeriesDataModule, LatentODEModule

__all__ = ["LatentODE"]


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
    encoder : {"odernn", "gru", "flowrnn"}, default="odernn"
        ODE-RNN (the state follows a learned ODE between observations), a GRU with time gaps,
        or an ODE-RNN whose state crosses each gap by a neural flow (``flow``) in one step.
    encoder_hidden : int, default=32
        Encoder state size.
    decoder_width, decoder_depth : int, default=64, 2
        Width and residual blocks of the latent vector field (with ``decoder="flow"``, of
        each of the flow's networks).
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
    memory_budget : int or None, default=None
        Bytes of decoded samples one block of a prediction call may hold (at least 1 MiB);
        None: 256 MiB. Series, samples and a long series' times are cut into blocks that fit.
    decoder : {"ode", "flow"}, default="ode"
        A Neural ODE decoder, or a neural flow (Biloš et al. 2021): the solution map
        ``z(t) = F(t, z0)`` itself, one network evaluation per output time and no solver
        (the solver settings then apply only to a Poisson head's integral).
    flow : {"coupling", "resnet", "gru"}, default="coupling"
        The flow of ``decoder="flow"`` and of ``encoder="flowrnn"``: affine coupling layers,
        a time-gated residual block with a Lipschitz bound, or the GRU flow. Coupling is the
        default because it is the one that matched the ODE decoder on
        ``benchmarks/baselines.py`` (geometric mean 0.575 against 0.609 at seed 0; the ResNet
        and GRU flows 0.865 and 0.920, up to 3.9× worse on the oscillating families).

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
        memory_budget: int | None = None,
        decoder: str = "ode",
        flow: str = "coupling",
    ) -> None:
        self.latent_dim = latent_dim
        self.encoder = encoder
        self.encoder_hidden = encoder_hidden
        self.decoder_width = decoder_width
        self.decoder_depth = decoder_depth
        self.decoder = decoder
        self.flow = flow
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
        self.memory_budget = memory_budget

    def _check_params(self) -> None:
        check_params(self.get_params(deep=False))

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
        inputs: pd.DataFrame | None = None,
        static: pd.DataFrame | None = None,
        input_kind: dict[str, str] | None = None,
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
        inputs : DataFrame, optional
            Known inputs that drive the series (doses, infusion rates, controls), not
            modelled but given: a long frame with ``id_col``, ``time_col`` (the time type of
            ``df``) and one numeric column per input, one row per change point. A *held*
            input keeps its row's value until the series' next row (an infusion rate); an
            *impulse* input is an amount given at that instant (a bolus; 0 for none). They
            enter the latent dynamics, ``dz/dt = f(z, u(t), s)``: the solver steps to every
            change point rather than across it, and a dose moves the latent state there by a
            learned jump. The encoder reads them too. Each series needs rows from its first
            observation (or before) to its last (or after); inputs are scaled like the
            features. With ``decoder="flow"`` the path is the flow of the latent state and
            the inputs in force from change point to change point.
        static : DataFrame, optional
            Static features: ``id_col`` and one numeric column per feature, one row per
            series (weight, age, arm). They enter the encoder and the vector field.
        input_kind : dict, optional
            ``{column: "held" | "impulse"}``; columns not named are held.
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

        return fit_estimator(
            self,
            df=df,
            y=y,
            id_col=id_col,
            time_col=time_col,
            value_cols=value_cols,
            time_unit=time_unit,
            val_df=val_df,
            events=events,
            inputs=inputs,
            static=static,
            input_kind=input_kind,
            checkpoint_dir=checkpoint_dir,
            resume=resume,
        )

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
        covariate_schema: CovariateSchema | None = None,
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
        self.covariate_schema_ = covariate_schema
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
            decoder=hp.get("decoder", "ode"),
            flow=hp.get("flow", "coupling"),
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
                calibration, factors = calibrate_noise(
                    module.model, datamodule, datamodule.seed, conformal=model.conformal
                )
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
            covariate_schema=datamodule.covariate_schema,
        )

    def _check_fitted(self) -> None:
        check_is_fitted(self, "module_")
        bad = _non_finite_weights(self.module_.state_dict())
        if bad:
            raise NonFiniteModelError(
                f"this model's weights hold NaN or infinity ({', '.join(bad[:3])}"
                f"{', …' if len(bad) > 3 else ''}), so every answer would be NaN. They were "
                "edited, or come from a fit that diverged; refit the model"
            )

    def _predictor(self, device: str | torch.device | None = None) -> Predictor:
        """The fitted state as a :class:`~latentode.estimator.predictor.Predictor` on ``device``."""
        return Predictor(
            self.module_,
            self.format_,
            self.time_scaler_,
            self.feature_scaler_,
            self.transforms_,
            self._seed,
            conformal=self.conformal_,
            event_kinds=self.event_kinds_,
            event_source=self.event_source_,
            device=_prediction_device(self.accelerator) if device is None else device,
            memory_budget=self.memory_budget,
            covariate_schema=getattr(self, "covariate_schema_", None),
        )

    def predict(
        self,
        df: pd.DataFrame,
        times: Any = None,
        *,
        horizon: Any = None,
        horizon_points: int = HORIZON_POINTS,
        quantiles: Sequence[float] = (0.05, 0.5, 0.95),
        num_samples: int = 100,
        interval: str = "predictive",
        inputs: pd.DataFrame | None = None,
        static: pd.DataFrame | None = None,
        events: pd.DataFrame | None = None,
        device: str | torch.device | None = None,
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

        inputs : DataFrame, optional
            Known inputs, as in :meth:`fit` (required exactly when the model was fitted with
            them). They must cover every requested time: to ask "what if", pass another
            schedule (e.g. a doubled dose) for the same series.
        static : DataFrame, optional
            Static features, one row per series, as in :meth:`fit`.
        events : DataFrame, optional
            The series' events, as in :meth:`fit`: required for a model fitted with an
            events frame, whose encoder reads each series' past events (those up to its last
            row in ``df``), so its own history informs its posterior and forecasts.

        device : str or torch.device, optional
            Where to decode: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``. Default: the
            device ``accelerator`` names (``"cpu"`` unless it was set; ``"auto"`` picks a GPU
            when torch sees one).

        Returns
        -------
        DataFrame
            ``id, time``, each feature's mean under its own name, and one column per quantile
            per feature (``"<feature>_q<level>"``).
        """

        self._check_fitted()
        return self._predictor(device).predict(
            df=df,
            times=times,
            horizon=horizon,
            horizon_points=horizon_points,
            quantiles=quantiles,
            num_samples=num_samples,
            interval=interval,
            inputs=inputs,
            static=static,
            events=events,
        )

    def sample(
        self,
        n_samples: int,
        times: Any,
        *,
        df: pd.DataFrame | None = None,
        random_state: int | np.random.Generator | None = None,
        noise: bool = True,
        inputs: pd.DataFrame | None = None,
        static: pd.DataFrame | None = None,
        events: pd.DataFrame | None = None,
        device: str | torch.device | None = None,
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

        inputs : DataFrame, optional
            Known inputs, as in :meth:`fit` (required exactly when the model was fitted with
            them). They must cover every requested time: to ask "what if", pass another
            schedule (e.g. a doubled dose) for the same series. Without ``df``: the one
            schedule every new series follows (the time column, as ``times``, and the input
            columns; an id column may be left out), from time 0.
        static : DataFrame, optional
            Static features, one row per series, as in :meth:`fit`; without ``df``, one row.
        events : DataFrame, optional
            The series' events, as in :meth:`fit`: required for a model fitted with an
            events frame, whose encoder reads each series' past events (those up to its last
            row in ``df``), so its own history informs its posterior and forecasts.

        device : str or torch.device, optional
            Where to decode: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``. Default: the
            device ``accelerator`` names (``"cpu"`` unless it was set; ``"auto"`` picks a GPU
            when torch sees one).

        Returns
        -------
        DataFrame
            Columns ``sample``, then (with ``df``) the id column, the time column and the
            features.
        """

        self._check_fitted()
        return self._predictor(device).sample(
            n_samples=n_samples,
            times=times,
            df=df,
            random_state=random_state,
            noise=noise,
            inputs=inputs,
            static=static,
            events=events,
        )

    def predict_intensity(
        self,
        df: pd.DataFrame,
        times: Any = None,
        *,
        horizon: Any = None,
        horizon_points: int = HORIZON_POINTS,
        quantiles: Sequence[float] = (0.05, 0.5, 0.95),
        num_samples: int = 100,
        kinds: Sequence[Hashable] | None = None,
        inputs: pd.DataFrame | None = None,
        static: pd.DataFrame | None = None,
        events: pd.DataFrame | None = None,
        device: str | torch.device | None = None,
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

        inputs : DataFrame, optional
            Known inputs, as in :meth:`fit` (required exactly when the model was fitted with
            them). They must cover every requested time: to ask "what if", pass another
            schedule (e.g. a doubled dose) for the same series.
        static : DataFrame, optional
            Static features, one row per series, as in :meth:`fit`.
        events : DataFrame, optional
            The series' events, as in :meth:`fit`: required for a model fitted with an
            events frame, whose encoder reads each series' past events (those up to its last
            row in ``df``), so its own history informs its posterior and forecasts.

        device : str or torch.device, optional
            Where to decode: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``. Default: the
            device ``accelerator`` names (``"cpu"`` unless it was set; ``"auto"`` picks a GPU
            when torch sees one).

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

        self._check_fitted()
        return predict_intensity(
            self._predictor(device),
            df=df,
            times=times,
            horizon=horizon,
            horizon_points=horizon_points,
            quantiles=quantiles,
            num_samples=num_samples,
            kinds=kinds,
            inputs=inputs,
            static=static,
            events=events,
        )

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
        inputs: pd.DataFrame | None = None,
        static: pd.DataFrame | None = None,
        events: pd.DataFrame | None = None,
        device: str | torch.device | None = None,
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

        inputs : DataFrame, optional
            Known inputs, as in :meth:`fit` (required exactly when the model was fitted with
            them). They must cover every requested time: to ask "what if", pass another
            schedule (e.g. a doubled dose) for the same series.
        static : DataFrame, optional
            Static features, one row per series, as in :meth:`fit`.
        events : DataFrame, optional
            The series' events, as in :meth:`fit`: required for a model fitted with an
            events frame, whose encoder reads each series' past events (those up to its last
            row in ``df``), so its own history informs its posterior and forecasts.

        device : str or torch.device, optional
            Where to decode: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``. Default: the
            device ``accelerator`` names (``"cpu"`` unless it was set; ``"auto"`` picks a GPU
            when torch sees one).

        Returns
        -------
        DataFrame
            ``sample, id, time, kind``, sorted. A prior draw is a new series whose id is its
            sample number; its times count from its start.
        """

        self._check_fitted()
        return sample_events(
            self._predictor(device),
            df=df,
            t_start=t_start,
            t_end=t_end,
            n_samples=n_samples,
            random_state=random_state,
            kinds=kinds,
            n_grid=n_grid,
            max_refinements=max_refinements,
            inputs=inputs,
            static=static,
            events=events,
        )

    def score(
        self,
        df: pd.DataFrame,
        n_samples: int = 10,
        *,
        events: pd.DataFrame | None = None,
        inputs: pd.DataFrame | None = None,
        static: pd.DataFrame | None = None,
        device: str | torch.device | None = None,
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
        details = self.score_details(
            df, n_samples, events=events, inputs=inputs, static=static, device=device
        )
        return float(details.loc["total", "log_likelihood"])

    def score_details(
        self,
        df: pd.DataFrame,
        n_samples: int = 10,
        *,
        events: pd.DataFrame | None = None,
        inputs: pd.DataFrame | None = None,
        static: pd.DataFrame | None = None,
        device: str | torch.device | None = None,
    ) -> pd.DataFrame:
        """The terms of :meth:`score`, each beside a simple reference, so a number can be read.

        device : str or torch.device, optional
            Where to decode: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``. Default: the
            device ``accelerator`` names (``"cpu"`` unless it was set; ``"auto"`` picks a GPU
            when torch sees one).

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
        return score_details(
            self._predictor(device),
            df=df,
            n_samples=n_samples,
            events=events,
            inputs=inputs,
            static=static,
        )

    def save(self, path: str | Path) -> Path:
        """Write the fitted model to the folder ``path`` (created if missing); returns it.

        Two files: ``latentode.json`` (parameters, data layout and fitted scalers) and
        ``weights.pt`` (tensors only). :meth:`load` runs no code from either. The folder is
        written whole beside ``path`` and swapped in, so a crash leaves the old model or
        none; a symbolic link, or a folder holding other files, is refused (see
        :mod:`latentode.persistence`).
        """
        self._check_fitted()
        return save_model(self, path)

    @classmethod
    def load(cls, path: str | Path) -> LatentODE:
        """Read a model written by :meth:`save`. Runs no code from the files.

        Raises:
            FileNotFoundError: no folder at ``path``, or a file of it missing.
            ValueError: a malformed, edited or mismatched folder, settings that disagree with
                each other or with the weights; :class:`NonFiniteModelError` for weights
                holding NaN or infinity.
        """
        return load_model(cls, path)


def _prediction_device(accelerator: str) -> str:
    """The torch device ``accelerator`` (a Lightning accelerator name) means for predictions."""
    if accelerator in ("gpu", "cuda", "auto"):
        # a model trained on a GPU and loaded where there is none predicts on the CPU
        return "cuda" if torch.cuda.is_available() else "cpu"
    if accelerator == "mps" and torch.backends.mps.is_available():
        return "mps"
    return "cpu"
