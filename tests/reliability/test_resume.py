"""Interrupted training: kill -9 mid-epoch, resume, and end with the uninterrupted run's weights."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import warnings

import pandas as pd
import pytest
import torch

from latentode.data import make_periodic
from latentode.estimator import LatentODE
from latentode.lightning.checkpointing import AtomicCheckpointIO, last_checkpoint

TINY = {
    "latent_dim": 3,
    "encoder_hidden": 6,
    "decoder_width": 8,
    "decoder_depth": 1,
    "max_epochs": 5,
    "batch_size": 8,
    "random_state": 0,
}
FRAME_ARGS = {"n_series": 24, "n_points": 10, "random_state": 0}

CHILD = textwrap.dedent(
    """
    import os, signal, sys, warnings
    import torch
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    from latentode.data import make_periodic
    from latentode.estimator import LatentODE
    from latentode.lightning import LatentODEModule

    kill_at = int(sys.argv[2])
    step = LatentODEModule.training_step

    def dying_step(self, batch, batch_idx):
        if self.global_step == kill_at:  # mid-epoch: the batch of step `kill_at` never ends
            os.kill(os.getpid(), signal.SIGKILL)
        return step(self, batch, batch_idx)

    LatentODEModule.training_step = dying_step
    df = make_periodic(**{frame_args}).observed
    LatentODE(**{tiny}).fit(df, checkpoint_dir=sys.argv[1])
    print("not killed")
    """
)


def _frame():
    return make_periodic(**FRAME_ARGS).observed


@pytest.mark.timeout(300)
@pytest.mark.parametrize("val_fraction", [0.2, 0.0])
def test_kill_mid_epoch_then_resume_gives_the_uninterrupted_weights(tmp_path, val_fraction):
    """With validation the kept weights may predate the kill; without, they are the last ones,
    so every step after the resume must match too (an off-by-one epoch in the shuffle did not)."""
    tiny = {**TINY, "val_fraction": val_fraction}
    folder = tmp_path / "checkpoints"
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(frame_args=FRAME_ARGS, tiny=tiny), encoding="utf-8")
    # 19 training series in batches of 8: 3 steps an epoch; step 7 is the middle of epoch 3
    child = subprocess.run(
        [sys.executable, str(script), str(folder), "7"], capture_output=True, text=True
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    assert "not killed" not in child.stdout
    saved = torch.load(last_checkpoint(folder), weights_only=True)
    assert saved["epoch"] == 1  # epochs 0 and 1 finished and were saved; epoch 2 was cut

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        resumed = LatentODE(**tiny).fit(_frame(), checkpoint_dir=folder, resume=True)
        straight = LatentODE(**tiny).fit(_frame())
    a, b = resumed.module_.state_dict(), straight.module_.state_dict()
    assert a.keys() == b.keys()
    differ = [key for key in a if not torch.equal(a[key], b[key])]
    assert not differ, f"{differ} differ after resuming"
    assert resumed.best_epoch_ == straight.best_epoch_
    assert resumed.n_epochs_ == straight.n_epochs_
    assert resumed.n_steps_ == straight.n_steps_
    pd.testing.assert_frame_equal(
        resumed.predict(_frame(), num_samples=5), straight.predict(_frame(), num_samples=5)
    )


def test_a_crash_while_saving_leaves_the_last_checkpoint_intact(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"epoch": 1, "w": torch.ones(3)}, path)

    def crash_midway(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")  # some bytes reach the disk ...
        raise KeyboardInterrupt  # ... then the process is interrupted

    monkeypatch.setattr("latentode.lightning.checkpointing.torch.save", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"epoch": 2, "w": torch.zeros(3)}, path)
    monkeypatch.undo()
    restored = io.load_checkpoint(path)
    assert restored["epoch"] == 1
    assert torch.equal(restored["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary left behind


def test_checkpoints_load_without_running_code(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    path = tmp_path / "last.ckpt"
    torch.save({"epoch": 0, "x": Payload()}, path)
    with pytest.raises(Exception, match=r"Weights only load failed|Unsupported"):
        AtomicCheckpointIO().load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"resume": True}, ValueError, "resume=True needs checkpoint_dir"),
        ({"checkpoint_dir": 3}, TypeError, "must be a folder path"),
        ({"checkpoint_dir": "/no/such/parent/ck"}, FileNotFoundError, "does not exist"),
    ],
)
def test_bad_checkpoint_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        LatentODE(**TINY).fit(_frame(), **kwargs)


def test_a_folder_with_another_run_is_not_clobbered(tmp_path):
    folder = tmp_path / "ck"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        LatentODE(**{**TINY, "max_epochs": 1}).fit(_frame(), checkpoint_dir=folder)
    with pytest.raises(ValueError, match=r"already holds a checkpoint.*resume=True"):
        LatentODE(**TINY).fit(_frame(), checkpoint_dir=folder)
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(ValueError, match="is a file"):
        LatentODE(**TINY).fit(_frame(), checkpoint_dir=tmp_path / "file")
