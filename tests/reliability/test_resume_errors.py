"""Resuming refused, clearly: another run's checkpoint, a broken one, a folder in use.

Each case names the call, the exception type and words its message must hold (the problem and
the fix), as in ``test_malformed.py``; the raising frame must be latentode's own code, never
torch's, Lightning's or pickle's. Tests after the table check what must still work: a resume
with the same settings and data (and the settings a resume may change), and the folder lock
between real processes, released when a fit ends, fails or is killed.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import traceback
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import latentode
from latentode.cli import main
from latentode.data import make_periodic
from latentode.estimator import LatentODE
from latentode.lightning.checkpointing import LAST, LOCK, FolderLock, RunFingerprint

TINY = {
    "latent_dim": 2,
    "encoder_hidden": 4,
    "decoder_width": 4,
    "decoder_depth": 1,
    "max_epochs": 2,
    "random_state": 0,
}
DF = make_periodic(n_series=8, n_points=8, random_state=0).observed
CONFIG = Path(__file__).resolve().parents[2] / "configs" / "periodic.yaml"
CLI_BASE = [
    "fit",
    "--config",
    str(CONFIG),
    "--data.dataset_kwargs.n_series=8",
    "--data.dataset_kwargs.n_points=8",
    "--model.latent_dim=2",
    "--model.encoder_hidden=4",
    "--model.decoder_width=4",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--trainer.max_epochs=1",
]


def _quiet_fit(frame=DF, **kwargs):
    params = {**TINY, **kwargs.pop("params", {})}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LatentODE(**params).fit(frame, **kwargs)


def _resume(frame=DF, folder="written", **params):
    """Resume the checkpoint in ctx[folder] (a path made by a function of ctx, or a key)."""

    def call(ctx):
        where = folder(ctx) if callable(folder) else ctx[folder]
        return _quiet_fit(frame, params=params, checkpoint_dir=where, resume=True)

    return call


def _broken(how: str):
    """A folder with a copy of the written checkpoint, spoiled in one way."""

    def make(ctx) -> Path:
        folder = ctx["tmp"] / how.replace(" ", "-")
        folder.mkdir()
        good = (ctx["written"] / LAST).read_bytes()
        path = folder / LAST
        if how == "empty":
            path.write_bytes(b"")
        elif how == "half":
            path.write_bytes(good[: len(good) // 2])
        elif how == "random bytes":
            path.write_bytes(np.random.default_rng(0).bytes(len(good)))
        elif how == "text":
            path.write_text("epoch: 3\nweights: see elsewhere\n", encoding="utf-8")
        elif how == "a list":
            torch.save([1, 2], path)
        elif how == "a dict":
            torch.save({"weights": torch.ones(3)}, path)
        else:
            checkpoint = torch.load(ctx["written"] / LAST, weights_only=True)
            if how == "no fingerprint":  # as Lightning itself, or an older latentode, writes
                del checkpoint["callbacks"][RunFingerprint.KEY]
            elif how == "other shape":  # a fingerprint that matches, weights that do not
                other = torch.load(ctx["wider"] / LAST, weights_only=True)
                checkpoint["state_dict"] = other["state_dict"]
            torch.save(checkpoint, path)
        return folder

    return make


def _cli(*extra: str, folder: str = "cli_written", resume: bool = True):
    def run(ctx):
        argv = [*CLI_BASE, f"--checkpoint_dir={ctx[folder]}", f"--out={ctx['tmp'] / 'out'}"]
        main([*argv, *(["--resume=true"] if resume else []), *extra])

    return run


def _cli_broken(how: str):
    def run(ctx):
        argv = [*CLI_BASE, f"--out={ctx['tmp'] / 'out'}", "--resume=true"]
        main([*argv, f"--checkpoint_dir={_broken(how)(ctx)}"])

    return run


def _linked_lock(ctx) -> Path:
    folder = ctx["tmp"] / "linked-lock"
    folder.mkdir()
    (folder / LOCK).symlink_to(ctx["tmp"] / "elsewhere.lock")
    return folder


_NOT_A_CHECKPOINT = "is truncated or not a checkpoint written by latentode"
_OTHER_FIT = "is of another fit, with other"

CASES = [
    # -- 1. another run's checkpoint: other settings
    (
        "resume: another latent_dim",
        _resume(latent_dim=3),
        ValueError,
        "latent_dim=2 in the checkpoint, 3 now",
    ),
    ("resume: another lr", _resume(lr=0.1), ValueError, "lr=0.01 in the checkpoint, 0.1 now"),
    (
        "resume: a larger max_epochs",
        _resume(max_epochs=4),
        ValueError,
        "to train longer, start a new fit with the larger budget",
    ),
    (
        "resume: another random_state",
        _resume(random_state=1),
        ValueError,
        "random_state=0 in the checkpoint, 1 now",
    ),
    ("resume: another task", _resume(task="extrapolation"), ValueError, "task='interpolation'"),
    # -- 1. another run's checkpoint: other data
    (
        "resume: other values",
        _resume(DF.assign(x=DF["x"] + 1.0)),
        ValueError,
        "other data: other values",
    ),
    (
        "resume: the values doubled (alike once standardised)",
        _resume(DF.assign(x=DF["x"] * 2.0)),
        ValueError,
        "other data: other values",
    ),
    (
        "resume: other series ids",
        _resume(DF.assign(id=DF["id"] + 100)),
        ValueError,
        "other data: other series ids",
    ),
    (
        "resume: other times",
        _resume(DF.assign(time=DF["time"] * 2.0)),
        ValueError,
        "other observation times",
    ),
    (
        "resume: another feature",
        _resume(DF.assign(y=DF["x"])),
        ValueError,
        "features ['x'] in the checkpoint, ['x', 'y'] now",
    ),
    (
        "resume: fewer series",
        _resume(DF[DF["id"] != DF["id"].iloc[0]]),
        ValueError,
        "series 8 in the checkpoint, 7 now",
    ),
    (
        "resume: a checkpoint of `latentode fit`",
        _resume(folder="cli_written"),
        ValueError,
        "written by `latentode fit`, not by `LatentODE.fit`",
    ),
    ("cli: --resume with another latent_dim", _cli("--model.latent_dim=3"), SystemExit, _OTHER_FIT),
    (
        "cli: --resume on other data",
        _cli("--data.dataset_kwargs.n_series=9"),
        SystemExit,
        "series 8 in the checkpoint, 9 now",
    ),
    # -- 2. a broken checkpoint
    ("resume: 0 bytes", _resume(folder=_broken("empty")), ValueError, "it is empty: 0 bytes"),
    ("resume: half the bytes", _resume(folder=_broken("half")), ValueError, "it ends early"),
    (
        "resume: random bytes",
        _resume(folder=_broken("random bytes")),
        ValueError,
        "it is not a torch zip file",
    ),
    ("resume: a text file", _resume(folder=_broken("text")), ValueError, _NOT_A_CHECKPOINT),
    (
        "resume: a torch file of a list",
        _resume(folder=_broken("a list")),
        ValueError,
        "it holds a list, not a checkpoint",
    ),
    (
        "resume: a torch file of another dict",
        _resume(folder=_broken("a dict")),
        ValueError,
        "it lacks the checkpoint entries",
    ),
    (
        "resume: a checkpoint without a fingerprint",
        _resume(folder=_broken("no fingerprint")),
        ValueError,
        "carries no record of the settings and data",
    ),
    (
        "resume: weights of another model shape",
        _resume(folder=_broken("other shape")),
        ValueError,
        "holds weights of a model of another shape",
    ),
    (
        "resume: a checkpoint of a wider model",
        _resume(folder="wider"),
        ValueError,
        "decoder_width=8 in the checkpoint, 4 now",
    ),
    ("cli: --resume from half a checkpoint", _cli_broken("half"), SystemExit, _NOT_A_CHECKPOINT),
    # -- 3. a folder in use
    (
        "fit: a folder another fit is using",
        lambda ctx: _quiet_fit(checkpoint_dir=ctx["starting"]),
        ValueError,
        "is using checkpoint_dir",
    ),
    ("resume: a folder another fit is using", _resume(folder="busy"), ValueError, "wait for it"),
    (
        "cli: a folder another fit is using",
        _cli(folder="starting", resume=False),
        SystemExit,
        "another fit",
    ),
    (
        "fit: a lock file that is a symbolic link",
        lambda ctx: _quiet_fit(checkpoint_dir=_linked_lock(ctx)),
        ValueError,
        "must be a plain file (not a link)",
    ),
]


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resume-errors")
    written, wider, busy = tmp / "written", tmp / "wider", tmp / "busy"
    _quiet_fit(checkpoint_dir=written)
    _quiet_fit(params={"decoder_width": 8}, checkpoint_dir=wider)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main([*CLI_BASE, f"--checkpoint_dir={tmp / 'cli'}", f"--out={tmp / 'cli-model'}"])
    busy.mkdir()
    shutil.copy(written / LAST, busy / LAST)
    starting = tmp / "starting"  # a fit that has not written its first checkpoint yet
    starting.mkdir()
    # held as a running fit holds them (by another process: see the lock tests below)
    with FolderLock(busy), FolderLock(starting):
        yield {
            "written": written,
            "wider": wider,
            "cli_written": tmp / "cli",
            "busy": busy,
            "starting": starting,
        }


@pytest.fixture
def case_ctx(ctx, tmp_path):
    return {**ctx, "tmp": tmp_path}  # a fresh folder for each case's own files


def test_at_least_12_cases():
    assert len(CASES) >= 12


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize(("name", "call", "error", "words"), CASES, ids=[c[0] for c in CASES])
def test_a_resume_that_cannot_continue_gets_a_clear_error(case_ctx, name, call, error, words):
    before = _snapshot(case_ctx)
    with pytest.raises(error) as info:
        call(case_ctx)
    assert words in str(info.value), f"{name}: message {str(info.value)!r} lacks {words!r}"
    assert type(info.value) is error
    assert "\n" not in str(info.value)  # one line, on the command line too
    # raised by latentode's own checks, not deep inside torch, Lightning or pickle
    origin = traceback.extract_tb(info.tb)[-1].filename
    assert "latentode" in Path(origin).parts, f"{name}: raised from {origin}"
    assert info.value.__cause__ is None or isinstance(info.value.__cause__, type(info.value))
    assert _snapshot(case_ctx) == before, f"{name}: a refused fit changed a checkpoint"


def _snapshot(ctx) -> dict[str, bytes]:
    folders = ("written", "wider", "cli_written", "busy")
    return {key: (Path(ctx[key]) / LAST).read_bytes() for key in folders}


# -- what must still work ------------------------------------------------------------------


def test_a_resume_with_the_same_run_goes_on_and_may_change_how_it_runs(tmp_path):
    folder = tmp_path / "ck"
    first = _quiet_fit(checkpoint_dir=folder)
    shuffled = DF.sample(frac=1.0, random_state=1)  # the same rows in another order
    # settings a resume may change: how it runs (not what it trains)
    loose = {"random_state": None, "max_time": 3600.0, "trainer_kwargs": {"benchmark": False}}
    again = _quiet_fit(shuffled, params=loose, checkpoint_dir=folder, resume=True)
    assert again.n_epochs_ == first.n_epochs_  # nothing left to train: the same run, finished
    a, b = first.module_.state_dict(), again.module_.state_dict()
    assert all(torch.equal(a[key], b[key]) for key in a)
    # random_state=None took the checkpoint's seed: the same calibration and samples
    pd.testing.assert_frame_equal(
        first.predict(DF, num_samples=5), again.predict(DF, num_samples=5)
    )


# -- the folder lock -----------------------------------------------------------------------

HOLDER = textwrap.dedent(
    """
    import sys, time
    from latentode.lightning.checkpointing import FolderLock

    with FolderLock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(600)
    """
)


def _child_env() -> dict[str, str]:
    """This checkout first on the child's path, whatever latentode is installed."""
    root = str(Path(latentode.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and flock are POSIX")
def test_a_second_process_is_refused_until_the_holder_dies(tmp_path):
    folder = tmp_path / "ck"
    folder.mkdir()
    script = tmp_path / "holder.py"
    script.write_text(HOLDER, encoding="utf-8")
    holder = subprocess.Popen(
        [sys.executable, str(script), str(folder)],
        stdout=subprocess.PIPE,
        text=True,
        env=_child_env(),
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ValueError, match=rf"another fit \(process {holder.pid}\) is using"):
            _quiet_fit(checkpoint_dir=folder)
        assert not (folder / LAST).exists()  # refused before it trained or wrote anything
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        holder.stdout.close()
    assert holder.returncode == -signal.SIGKILL
    # the operating system dropped the dead holder's lock: the folder is free again
    assert _quiet_fit(checkpoint_dir=folder).n_epochs_ == TINY["max_epochs"]


def test_the_lock_is_released_when_a_fit_ends_or_fails(tmp_path):
    folder = tmp_path / "ck"
    _quiet_fit(checkpoint_dir=folder)
    assert sorted(p.name for p in folder.iterdir()) == [LOCK, LAST]
    _quiet_fit(checkpoint_dir=folder, resume=True)  # after a fit ended
    with pytest.raises(ValueError, match="other data"):  # refused while holding the lock
        _quiet_fit(DF.assign(x=DF["x"] * 2.0), checkpoint_dir=folder, resume=True)
    _quiet_fit(checkpoint_dir=folder, resume=True)  # after a fit failed
    with FolderLock(folder):  # and nobody else holds it now
        pass


def test_the_lock_file_is_not_a_checkpoint(tmp_path):
    folder = tmp_path / "ck"
    folder.mkdir()
    (folder / LOCK).write_text("12345\n", encoding="utf-8")  # left by a fit that died early
    _quiet_fit(checkpoint_dir=folder)  # not "already holds a checkpoint"
    # ... but the checkpoint that fit wrote is one
    with pytest.raises(ValueError, match=r"already holds a checkpoint of another fit"):
        _quiet_fit(checkpoint_dir=folder)


def test_distributed_workers_leave_the_lock_to_their_launcher(tmp_path, monkeypatch):
    """Lightning's DDP launcher and torchrun run the same fit in every rank: only rank 0 locks."""
    with FolderLock(tmp_path):
        monkeypatch.setenv("LOCAL_RANK", "1")
        with FolderLock(tmp_path):  # a worker of the fit that holds it: not refused
            pass
        monkeypatch.setenv("LOCAL_RANK", "0")
        with pytest.raises(ValueError, match="another fit"):
            FolderLock(tmp_path).__enter__()


@pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")
def test_a_folder_that_cannot_be_locked_warns_and_trains(tmp_path, monkeypatch):
    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr("latentode.lightning.checkpointing.fcntl.flock", no_locks)
    with pytest.warns(RuntimeWarning, match="cannot be locked"):
        model = LatentODE(**TINY).fit(DF, checkpoint_dir=tmp_path / "ck")
    assert model.n_epochs_ == TINY["max_epochs"]
    assert (tmp_path / "ck" / LAST).is_file()
