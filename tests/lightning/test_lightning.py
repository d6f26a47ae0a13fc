"""Lightning layer: tiny fits on CPU, checkpoints, seeded reproducibility, task splits."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from latentode.data.collate import SeriesItem
from latentode.lightning import (
    IrregularTimeSeriesDataModule,
    KLAnnealing,
    LatentODEModule,
    NonFiniteGuard,
    NonFiniteLossError,
    split_items,
)

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


def _pk_frames():
    from latentode.data.pk import make_pk

    pk = make_pk(6, random_state=0)
    return pk.observed, pk.inputs


_INPUTS_DATA = _pk_frames()


def _dm(**kwargs):
    args = {
        "data": "periodic",
        "dataset_kwargs": {"n_series": 24, "n_points": 20},
        "batch_size": 8,
        "seed": 0,
        **kwargs,
    }
    return IrregularTimeSeriesDataModule(**args)


def _trainer(tmp_path, **kwargs):
    return pl.Trainer(
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        **kwargs,
    )


def test_fast_dev_run_fit(tmp_path):
    dm = _dm()
    dm.setup()
    module = LatentODEModule(dm.n_features, **TINY)
    trainer = _trainer(
        tmp_path, fast_dev_run=True, callbacks=[KLAnnealing(n_steps=5), NonFiniteGuard()]
    )
    trainer.fit(module, dm)
    logged = trainer.callback_metrics
    for name in ("loss", "log_likelihood", "kl", "mse", "nfe_forward", "nfe_encoder"):
        assert torch.isfinite(logged[f"train/{name}"]), name
    assert logged["train/nfe_forward"] > 0
    assert logged["train/nfe_encoder"] > 0
    assert "train/nfe_backward" in logged


def _first_conditioning(dm, epochs=2):
    loader = dm.train_dataloader()
    batches = []
    for epoch in range(epochs):  # a fresh pass per epoch, as Lightning runs it
        loader.sampler.set_epoch(epoch)
        batches.append(next(iter(loader))[0])
    return batches


def test_workers_give_reproducible_batches_that_change_between_epochs():
    runs = [_first_conditioning(_setup(_dm(num_workers=2))) for _ in range(2)]
    for a, b in zip(*runs, strict=True):  # same seed, same batches
        assert torch.equal(a.index, b.index)
        assert torch.equal(a.times, b.times)
    epoch1, epoch2 = runs[0]
    assert not (torch.equal(epoch1.index, epoch2.index) and torch.equal(epoch1.times, epoch2.times))
    # the batches are a function of (seed, epoch): no workers gives the very same ones
    for a, b in zip(runs[0], _first_conditioning(_setup(_dm(num_workers=0))), strict=True):
        assert torch.equal(a.index, b.index)
        assert torch.equal(a.times, b.times)


def _setup(dm):
    dm.setup()
    return dm


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fit_and_predict_on_cuda(tmp_path):
    dm = _setup(_dm())
    module = LatentODEModule(dm.n_features, **TINY)
    trainer = pl.Trainer(
        accelerator="gpu",
        devices=1,
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, dm)
    cuda_module = module.to("cuda").eval()
    cond, target = next(iter(dm.val_dataloader()))
    with torch.no_grad():
        out = cuda_module.model(cond.to("cuda"), target.times.to("cuda"))
    assert out.mean.device.type == "cuda"
    assert torch.isfinite(out.mean).all()


@pytest.mark.parametrize("task", ["interpolation", "extrapolation"])
def test_datamodule_splits_series_and_tasks(task):
    dm = _dm(task=task)
    dm.setup()
    assert sorted(i for part in dm.split.values() for i in part) == list(range(24))
    assert (len(dm.split["val"]), len(dm.split["test"])) == (2, 2)
    cond, target = next(iter(dm.train_dataloader()))
    assert cond.index.tolist() == target.index.tolist()
    if task == "extrapolation":
        last_cond = cond.times.gather(1, (cond.lengths - 1).unsqueeze(1))
        assert (last_cond.squeeze(1) < target.times[:, 0]).all()
    else:
        assert (cond.lengths <= target.lengths).all()


def test_interpolation_conditions_on_a_subset():
    item = SeriesItem(0, torch.linspace(0, 1, 10), torch.ones(10, 1), torch.ones(10, 1))
    cond, target = split_items(
        [item],
        "interpolation",
        cond_fraction=0.3,
        extrap_cut=0.5,
        generator=torch.Generator().manual_seed(0),
    )
    assert cond.lengths.tolist() == [3]
    assert target.lengths.tolist() == [10]


def test_extrapolation_cuts_the_observed_span_not_the_all_missing_rows():
    # an all-missing last row (a window widened to a late event) does not move the cut past
    # the observations: the span cut is [0, 0.2], so 0.2 is a target
    mask = torch.tensor([[1.0], [1.0], [0.0]])
    item = SeriesItem(4, torch.tensor([0.0, 0.2, 1.0]), torch.ones(3, 1) * mask, mask)
    cond, target = split_items(
        [item], "extrapolation", cond_fraction=1.0, extrap_cut=0.5, generator=torch.Generator()
    )
    assert cond.times[0].tolist() == [0.0]
    torch.testing.assert_close(target.times[0], torch.tensor([0.2, 1.0]))


def test_extrapolation_cut_leaving_no_conditioning_points_raises():
    # one observed time: nothing observed lies before any cut of its (empty) span
    mask = torch.tensor([[0.0], [1.0], [0.0]])
    item = SeriesItem(4, torch.tensor([0.0, 0.2, 1.0]), torch.ones(3, 1) * mask, mask)
    with pytest.raises(ValueError, match=r"leaves series #4 with no conditioning points"):
        split_items(
            [item], "extrapolation", cond_fraction=0.5, extrap_cut=0.5, generator=torch.Generator()
        )


def test_load_from_checkpoint_rebuilds_the_same_module(tmp_path):
    dm = _dm()
    dm.setup()
    module = LatentODEModule(dm.n_features, **TINY)
    trainer = _trainer(tmp_path, max_epochs=1, limit_train_batches=2, limit_val_batches=1)
    trainer.fit(module, dm)
    path = tmp_path / "m.ckpt"
    trainer.save_checkpoint(path)
    again = LatentODEModule.load_from_checkpoint(path, weights_only=True)
    assert again.hparams == module.hparams
    for (n, a), (_, b) in zip(module.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), n


def test_two_seeded_fits_give_identical_weights(tmp_path):
    weights = []
    for run in range(2):
        pl.seed_everything(0, verbose=False)
        dm = _dm()
        dm.setup()
        module = LatentODEModule(dm.n_features, **TINY)
        _trainer(
            tmp_path / str(run),
            max_epochs=1,
            limit_train_batches=2,
            limit_val_batches=0,
            deterministic=True,
        ).fit(module, dm)
        weights.append(module.state_dict())
    for k in weights[0]:
        assert torch.equal(weights[0][k], weights[1][k]), k


def test_kl_annealing_schedule():
    kl = KLAnnealing(start=0.0, end=1.0, n_steps=10)
    assert [kl.weight(s) for s in (0, 5, 10, 20)] == [0.0, 0.5, 1.0, 1.0]


def test_non_finite_guard_names_the_fix():
    class Boom:
        global_step, current_epoch = 3, 0

    module = LatentODEModule(1, **TINY)
    with pytest.raises(NonFiniteLossError, match=r"lower learning rate .*gradient_clip_val"):
        NonFiniteGuard().on_train_batch_end(Boom(), module, torch.tensor(float("nan")), None, 0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"encoder": "lstm"}, ValueError, r"`encoder` must be one of 'flowrnn', 'gru', 'odernn'"),
        ({"latent_dim": 0}, ValueError, r"`latent_dim` must be at least 1"),
        ({"n_samples": 0}, ValueError, r"`n_samples` must be at least 1"),
        ({"rtol": -1e-3}, ValueError, r"`rtol` must be > 0"),
        ({"optimizer": "lbfgs"}, ValueError, r"`optimizer` must be one of"),
    ],
)
def test_bad_module_configuration(kwargs, error, match):
    with pytest.raises(error, match=match):
        LatentODEModule(1, **{**TINY, **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"data": "sines"},
            ValueError,
            r"`data` must be one of 'absorption', 'co2', 'coal', 'growth', 'hopper', "
            r"'lotka_volterra', 'oscillators', 'pbcseq', 'periodic', 'sparse_sines', 'spiral' ",
        ),
        ({"data": [1, 2]}, TypeError, r"`data` must be a long DataFrame"),
        ({"task": "forecast"}, ValueError, r"`task` must be one of"),
        ({"extrap_cut": 1.0}, ValueError, r"`extrap_cut` must be strictly inside \(0, 1\)"),
        ({"val_fraction": 0.6, "test_fraction": 0.4}, ValueError, r"must leave series to train"),
        ({"origin": "calendar"}, ValueError, r"`origin` must be one of 'global', 'series'"),
        ({"time_scale": 0.0}, ValueError, r"`time_scale` must be > 0"),
        ({"inputs": [1, 2]}, TypeError, r"`inputs` must be a DataFrame, a .csv/.parquet path"),
        (
            {"data": _INPUTS_DATA[0], "inputs": _INPUTS_DATA[1], "origin": "global"},
            ValueError,
            r"known inputs need origin='series'",
        ),
        ({"static": "no-such.csv"}, FileNotFoundError, r"`static` must be a DataFrame or an exis"),
        (
            {"time_scale": 1.0, "time_gaps_per_unit": 4.0},
            ValueError,
            r"give `time_scale` \(1.0\) or `time_gaps_per_unit` \(4.0\), not both",
        ),
    ],
)
def test_bad_datamodule_configuration(kwargs, error, match):
    with pytest.raises(error, match=match):
        _dm(**kwargs).setup()


def test_datamodule_takes_a_user_frame_with_its_own_column_names():
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    rows = []
    for patient in ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]:
        days = np.sort(rng.choice(60, size=6, replace=False))
        for day in days:
            rows.append(
                {
                    "patient": patient,
                    "taken": pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(day)),
                    "hb": rng.normal(13, 1),
                    "crp": rng.normal(5, 2) if rng.random() < 0.7 else np.nan,
                }
            )
    frame = pd.DataFrame(rows)
    dm = IrregularTimeSeriesDataModule(
        frame, id_col="patient", time_col="taken", time_unit="D", batch_size=4, seed=1
    )
    dm.setup()
    assert dm.n_features == 2
    assert sorted(i for part in dm.split.values() for i in part) == list(range(10))
    cond, target = next(iter(dm.train_dataloader()))
    assert cond.n_features == target.n_features == 2
    assert float(target.times.max()) <= 1.0 + 1e-6  # days rescaled on the training series
    kept = IrregularTimeSeriesDataModule(
        frame,
        id_col="patient",
        time_col="taken",
        time_unit="D",
        batch_size=4,
        seed=1,
        time_scale=1.0,
    )
    kept.setup()
    _, target = next(iter(kept.train_dataloader()))
    assert float(target.times.max()) > 1.0  # a fixed scale keeps the days
    assert kept.dataset.scaler.scale_ == 1.0


def test_training_and_evaluation_use_their_own_solvers():
    module = LatentODEModule(1, **{**TINY, "method": "dopri5"}, eval_method="rk4", eval_rtol=1e-5)
    decoder = module.model.decoder
    module.train()
    assert (decoder.solver.method, decoder.solver.rtol) == ("dopri5", 1e-3)
    module.eval()
    assert (decoder.solver.method, decoder.solver.rtol) == ("rk4", 1e-5)


def test_val_frame_is_the_validation_split_and_standardize_uses_train_only():
    from latentode.data import make_periodic

    data = make_periodic(n_series=12, n_points=10, random_state=0).observed
    val = make_periodic(n_series=3, n_points=10, random_state=1).observed
    val = val.assign(id=val["id"] + 100, x=val["x"] * 50 + 7)  # far off the training scale
    dm = IrregularTimeSeriesDataModule(
        data, val_data=val, test_fraction=0.0, standardize=True, batch_size=4, seed=0
    )
    dm.setup()
    assert sorted(dm.split["train"]) == list(range(12))
    assert dm.split["val"] == [12, 13, 14]
    assert [dm.dataset.ids[i] for i in dm.split["val"]] == [100, 101, 102]
    train_values = data["x"].to_numpy()
    np.testing.assert_allclose(dm.feature_scaler.mean_, [train_values.mean()])
    cond, _ = next(iter(dm.train_dataloader()))
    observed = cond.values[cond.mask > 0]
    assert abs(float(observed.mean())) < 0.5
    assert 0.5 < float(observed.std()) < 1.5


def test_val_frame_must_be_a_frame():
    with pytest.raises(TypeError, match=r"`val_data` must be a long DataFrame or None"):
        _dm(val_data="periodic")
