"""The training recipe: step budgets, auto batch sizes, warm-up-aware selection, the schedule."""

from __future__ import annotations

import itertools
import logging
import math
import warnings

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from latentode.data.collate import SeriesItem
from latentode.lightning import (
    BestWeights,
    IrregularTimeSeriesDataModule,
    KLAnnealing,
    LatentODEModule,
    split_items,
)
from latentode.lightning.module import _Cosine
from latentode.lightning.plan import auto_batch_size, plan_training

TINY = {
    "latent_dim": 3,
    "encoder_hidden": 6,
    "decoder_width": 8,
    "decoder_depth": 1,
    "method": "rk4",
    "obs_std": 0.1,
}


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.mark.parametrize(
    ("n_train", "size"),
    [(1, 1), (3, 3), (16, 4), (20, 4), (96, 12), (250, 32), (400, 50), (10_000, 50)],
)
def test_auto_batch_size_gives_small_panels_several_batches(n_train, size):
    assert auto_batch_size(n_train) == size
    if n_train >= 32:
        assert math.ceil(n_train / size) >= 8 or size == 50


def test_plan_counts_the_budget_in_steps_with_epochs_as_a_cap():
    plan = plan_training(16, batch_size=None, max_steps=3000, max_epochs=None)
    assert (plan.batch_size, plan.steps_per_epoch) == (4, 4)
    assert (plan.total_steps, plan.max_epochs, plan.max_steps) == (3000, 750, -1)
    assert plan.val_every_n_epochs == 15  # a check every 60 steps, at an epoch's end
    assert plan.trainer_kwargs() == {
        "max_epochs": 750,
        "max_steps": -1,
        "check_val_every_n_epoch": 15,
    }
    rounded = plan_training(20, batch_size=3, max_steps=100, max_epochs=None)
    assert (rounded.steps_per_epoch, rounded.total_steps, rounded.max_epochs) == (7, 105, 15)
    capped = plan_training(16, batch_size=8, max_steps=3000, max_epochs=10)
    assert (capped.total_steps, capped.max_epochs, capped.val_every_n_epochs) == (20, 10, 1)
    epochs_only = plan_training(16, batch_size=8, max_steps=None, max_epochs=5)
    assert epochs_only.total_steps == 10
    assert plan_training(3, batch_size=50, max_steps=5, max_epochs=None).batch_size == 3


def test_a_budget_inside_one_epoch_still_validates():
    huge = plan_training(100_000, batch_size=None, max_steps=300, max_epochs=None)
    assert (huge.steps_per_epoch, huge.max_epochs, huge.max_steps) == (2000, -1, 300)
    assert (huge.val_every_n_epochs, huge.val_check_interval) == (None, 6)
    assert huge.trainer_kwargs()["val_check_interval"] == 6


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_steps": None, "max_epochs": None}, ValueError, "give a training budget"),
        ({"max_steps": 0}, ValueError, "`max_steps` must be at least 1"),
        ({"n_checks": 0}, ValueError, "`n_checks` must be at least 1"),
        ({"max_epochs": 1.5}, TypeError, "`max_epochs` must be an integer"),
    ],
)
def test_bad_plans_are_refused(kwargs, error, match):
    args = {"batch_size": None, "max_steps": 100, "max_epochs": None, **kwargs}
    with pytest.raises(error, match=match):
        plan_training(10, **args)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: KLAnnealing(share=1.0), r"`share` must be a share of the budget in \[0, 1\)"),
        (lambda: KLAnnealing(share=-0.1), "`share` must be >= 0"),
        (lambda: BestWeights(min_share=1.5), r"`min_share` must be a share of the budget"),
    ],
)
def test_bad_warm_up_shares_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_warm_ups_given_as_shares_follow_the_trainers_budget(tmp_path):
    annealing = KLAnnealing(end=0.1, share=0.25)
    best = BestWeights("val/loss", min_share=0.25)
    trainer = pl.Trainer(
        max_steps=12,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        default_root_dir=tmp_path,
        callbacks=[annealing, best],
    )
    dm = IrregularTimeSeriesDataModule(
        "periodic", dataset_kwargs={"n_series": 16, "n_points": 10}, batch_size=4, seed=0
    )
    module = LatentODEModule(1, **TINY)
    trainer.fit(module, dm)
    assert (annealing.n_steps, best.min_step) == (3, 3)
    assert module.kl_weight == pytest.approx(0.1)


def test_cosine_factor_runs_from_one_to_the_floor():
    factor = _Cosine(100, 0.02)
    assert factor(0) == pytest.approx(1.0)
    assert factor(50) == pytest.approx(0.51)
    assert factor(100) == pytest.approx(0.02)
    assert factor(1000) == pytest.approx(0.02)
    assert all(factor(s) >= factor(s + 1) for s in range(100))


class _Strategy:
    """One process: the reduced decision is the local one (as Lightning's single-device)."""

    @staticmethod
    def reduce_boolean_decision(decision, all=True):
        return decision


class _Trainer:
    def __init__(self, step, score):
        self.sanity_checking = False
        self.global_step = step
        self.current_epoch = step // 10
        self.callback_metrics = {"val/mse": torch.tensor(score)}
        self.should_stop = False
        self.strategy = _Strategy()


class _Module(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))


def test_best_weights_ignore_checks_during_warm_up_and_stop_on_patience():
    best = BestWeights("val/mse", min_step=100, patience=2)
    module = _Module()
    for step, score in [(10, 0.01), (50, 0.02)]:  # great scores, but during warm-up
        module.w.data.fill_(step)
        best.on_validation_end(_Trainer(step, score), module)
    assert best.best_score is None
    assert best.best_step is None
    scores = [(100, 0.5), (110, 0.3), (120, 0.4), (130, 0.35)]
    trainers = []
    for step, score in scores:
        module.w.data.fill_(step)
        trainers.append(_Trainer(step, score))
        best.on_validation_end(trainers[-1], module)
    assert best.best_score == pytest.approx(0.3)
    assert best.best_step == 110
    assert [t.should_stop for t in trainers] == [False, False, False, True]
    module.w.data.fill_(-1)
    assert best.restore(module)
    assert module.w.item() == 110
    state = best.state_dict()
    again = BestWeights("val/mse", min_step=100, patience=2)
    again.load_state_dict(state)
    assert (again.best_step, again.stale) == (110, 2)


def test_best_weights_without_patience_never_stop():
    best = BestWeights("val/mse")
    trainers = [_Trainer(s, 1.0 + s) for s in range(20)]
    for t in trainers:
        best.on_validation_end(t, _Module())
    assert not any(t.should_stop for t in trainers)
    assert best.best_step == 0


def test_validation_targets_are_the_held_out_points_only():
    g = torch.Generator().manual_seed(0)
    times = torch.linspace(0, 1, 10)
    item = SeriesItem(0, times, torch.randn(10, 2), torch.ones(10, 2))
    cond, target = split_items(
        [item], "interpolation", cond_fraction=0.5, extrap_cut=0.5, generator=g, held_out=True
    )
    seen = {round(float(t), 6) for t in cond.times[0]}
    scored = target.mask[0].amax(-1) > 0
    assert torch.equal(target.times[0], times)  # every time stays: the window is the series'
    for t, is_scored in zip(target.times[0], scored, strict=True):
        assert bool(is_scored) == (round(float(t), 6) not in seen)
    assert int(scored.sum()) == 5
    g = torch.Generator().manual_seed(0)
    _, train_target = split_items(
        [item], "interpolation", cond_fraction=0.5, extrap_cut=0.5, generator=g
    )
    assert bool((train_target.mask > 0).all())  # training still scores every point


def test_cosine_schedule_decays_over_the_trainers_budget(tmp_path):
    dm = IrregularTimeSeriesDataModule(
        "periodic", dataset_kwargs={"n_series": 16, "n_points": 10}, batch_size=4, seed=0
    )
    module = LatentODEModule(1, **TINY, lr=0.1, lr_schedule="cosine", min_lr_ratio=0.1)
    lrs = []

    class Record(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, idx):
            lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    trainer = pl.Trainer(
        max_steps=12,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        default_root_dir=tmp_path,
        callbacks=[Record()],
    )
    trainer.fit(module, dm)
    assert lrs[0] == pytest.approx(0.1)
    assert all(a > b for a, b in itertools.pairwise(lrs))
    assert lrs[-1] == pytest.approx(0.1 * _Cosine(12, 0.1)(11))


def test_cosine_schedule_without_a_budget_is_refused(tmp_path):
    dm = IrregularTimeSeriesDataModule(
        "periodic", dataset_kwargs={"n_series": 8, "n_points": 10}, batch_size=4, seed=0
    )
    module = LatentODEModule(1, **TINY, lr_schedule="cosine")
    trainer = pl.Trainer(
        max_epochs=-1,
        max_steps=-1,
        max_time={"seconds": 5},
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    with pytest.raises(ValueError, match=r"decays over the training budget"):
        trainer.fit(module, dm)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lr_schedule": "linear"}, "`lr_schedule` must be one of 'constant', 'cosine'"),
        ({"min_lr_ratio": 1.5}, r"`min_lr_ratio` must be in \[0, 1\]"),
    ],
)
def test_bad_schedules_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LatentODEModule(1, **TINY, **kwargs)


def test_a_conditioning_range_gives_each_series_its_own_share():
    g = torch.Generator().manual_seed(0)
    items = [
        SeriesItem(i, torch.linspace(0, 1, 40), torch.randn(40, 1), torch.ones(40, 1))
        for i in range(200)
    ]
    cond, _ = split_items(
        items, "interpolation", cond_fraction=(0.3, 1.0), extrap_cut=0.5, generator=g
    )
    counts = cond.lengths.double()
    assert counts.min() >= 12
    assert counts.max() <= 40
    assert counts.min() <= 16
    assert counts.max() >= 36
    assert counts.std() > 5


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ((0.8, 0.3), "must have low <= high"),
        ((0.2, 1.5), r"must be in \(0, 1\]"),
        ((0.1, 0.2, 0.3), r"a \(low, high\) pair"),
        (0.0, "must be > 0"),
    ],
)
def test_bad_conditioning_shares_are_refused(value, match):
    with pytest.raises(ValueError, match=match):
        IrregularTimeSeriesDataModule("periodic", cond_fraction=value)


def _trainer_for(tmp_path, steps):
    return pl.Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        default_root_dir=tmp_path,
    )


def _dm_small():
    return IrregularTimeSeriesDataModule(
        "periodic", dataset_kwargs={"n_series": 8, "n_points": 10}, batch_size=4, seed=0
    )


def test_a_step_with_a_non_finite_gradient_is_skipped(tmp_path):
    module = LatentODEModule(1, **TINY, gradient_clip=1.0)
    weight = module.model.decoder.readout.weight
    bad_steps = {1, 3}

    def poison(grad):
        return torch.full_like(grad, float("nan")) if module.global_step in bad_steps else grad

    weight.register_hook(poison)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    seen = []

    class Watch(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, idx):
            seen.append({k: v.clone() for k, v in pl_module.state_dict().items()})

    trainer = _trainer_for(tmp_path, 5)
    trainer.callbacks.append(Watch())
    trainer.fit(module, _dm_small())
    assert module.skipped_steps == 2
    assert all(torch.isfinite(v).all() for v in module.state_dict().values())
    # the skipped steps left every weight where it was
    for step in bad_steps:
        start = before if step == 0 else seen[step - 1]
        assert all(torch.equal(start[k], seen[step][k]) for k in start)
    assert not torch.equal(
        seen[0]["model.decoder.readout.weight"], before["model.decoder.readout.weight"]
    )


def test_non_finite_gradients_in_a_row_stop_training_with_the_fixes(tmp_path):
    from latentode.lightning import NonFiniteLossError
    from latentode.lightning.module import MAX_SKIPPED_STEPS

    module = LatentODEModule(1, **TINY, gradient_clip=1.0)
    weight = module.model.decoder.readout.weight
    weight.register_hook(lambda grad: torch.full_like(grad, float("inf")))
    with pytest.raises(NonFiniteLossError, match=r"gradient was inf in 10 steps in a row.*lower"):
        _trainer_for(tmp_path, 50).fit(module, _dm_small())
    assert module.skipped_steps == MAX_SKIPPED_STEPS
    assert torch.isfinite(weight).all()


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (((0.2, 0.3), 0.5), TypeError, "`cond_fraction` must be a real number"),
        (np.array([0.2, 0.9]), None, None),
        ([0.3, 1.0], None, None),
    ],
)
def test_conditioning_share_pairs(value, error, match):
    if error is None:
        dm = IrregularTimeSeriesDataModule("periodic", cond_fraction=value)
        assert dm.cond_fraction == (float(value[0]), float(value[1]))
        return
    with pytest.raises(error, match=match):
        IrregularTimeSeriesDataModule("periodic", cond_fraction=value)
