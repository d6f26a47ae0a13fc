"""``trainer_kwargs`` are merged over the estimator's own Trainer arguments: the user's win.

Before, any argument the estimator also set (``logger``, ``enable_checkpointing``,
``enable_progress_bar``, ...) failed with Python's raw "got multiple values for keyword
argument" TypeError, so no TensorBoard, CSV or W&B logger could be used.
"""

from __future__ import annotations

import warnings

import pytest
from pytorch_lightning.loggers import CSVLogger

from latentode.data import make_periodic
from latentode.estimator import LatentODE

TINY = {
    "latent_dim": 2,
    "encoder_hidden": 4,
    "decoder_width": 4,
    "decoder_depth": 1,
    "max_epochs": 2,
    "random_state": 0,
}
DF = make_periodic(n_series=8, n_points=8, random_state=0).observed


def test_a_users_logger_is_used(tmp_path):
    logger = CSVLogger(tmp_path, name="run")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        LatentODE(**TINY, trainer_kwargs={"logger": logger, "log_every_n_steps": 1}).fit(DF)
    metrics = list(tmp_path.rglob("metrics.csv"))
    assert metrics, "the user's logger wrote nothing"
    assert "val/loss" in metrics[0].read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"enable_progress_bar": False},
        {"enable_model_summary": False},
        {"num_sanity_val_steps": 0},
        {"default_root_dir": "."},
        {"enable_checkpointing": False},
    ],
    ids=lambda k: next(iter(k)),
)
def test_arguments_the_estimator_also_sets_are_accepted(kwargs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LatentODE(**TINY, trainer_kwargs=kwargs).fit(DF)
    assert model.n_epochs_ == 2


def test_budget_arguments_are_still_refused_with_the_parameter_to_set():
    with pytest.raises(ValueError, match=r"may not set max_epochs.*set those instead"):
        LatentODE(**TINY, trainer_kwargs={"max_epochs": 5}).fit(DF)
