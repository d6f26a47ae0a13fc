"""Resumable training: atomic checkpoint files, and the RNG state saved with them.

A killed fit resumes from ``last.ckpt`` and ends with the weights an uninterrupted run with
the same seed would have ended with. That needs every source of randomness to be either
restored or a pure function of (seed, epoch):

- model weights, optimiser moments, the epoch/step counters (and with them the KL-annealing
  schedule, a function of the step), early stopping and the best epoch's weights: Lightning
  checkpoint state, plus :class:`~latentode.lightning.BestWeights`' own ``state_dict``;
- torch's global RNGs, CPU and CUDA (posterior noise, DataLoader seeds): :class:`RNGState`
  saves and restores them;
- the shuffling and the conditioning subsets: drawn from (seed, epoch, series) by the data
  module, so they need no state at all and do not depend on DataLoader workers.

Checkpoints are written to a temporary file, flushed to disk and renamed over the old one
(:class:`AtomicCheckpointIO`), so a kill during a save leaves the previous ``last.ckpt``
intact. They are read back with ``weights_only=True``: no code runs from a checkpoint file.

A resume is checked before Lightning reads the file (:func:`resume_point`):

- the file must be a whole torch checkpoint (:func:`read_checkpoint`): an empty, cut-off or
  foreign file is refused with a ValueError that says so, never torch's or pickle's own error;
- it must come from the same run: every checkpoint carries a :class:`RunFingerprint` (the
  settings that shape the model and the training recipe, and hashes of the data), and a resume
  with other settings or other data is refused, naming what differs; its weights must fit the
  model being trained;
- one fit at a time per folder: :class:`FolderLock` holds an exclusive lock on
  ``.latentode.lock`` in the folder for the whole fit, so a second fit there is refused at
  once instead of overwriting the first one's checkpoints.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]
try:  # Windows
    import msvcrt
except ImportError:
    msvcrt = None  # type: ignore[assignment]

__all__ = [
    "LAST",
    "LOCK",
    "AtomicCheckpointIO",
    "FolderLock",
    "RNGState",
    "RunFingerprint",
    "check_same_run",
    "checkpoint_callbacks",
    "data_fingerprint",
    "last_checkpoint",
    "read_checkpoint",
    "resume_point",
]

LAST = "last.ckpt"
LOCK = ".latentode.lock"
"""The lock file of a checkpoint folder. It stays after a fit (removing it while another
process waits on it would let two processes hold two different locks); it is not a checkpoint."""

# Keys every Lightning training checkpoint has; a file without them is something else.
_CHECKPOINT_KEYS = ("epoch", "global_step", "state_dict", "optimizer_states", "callbacks")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write checkpoints as temp file → fsync → rename; read them with ``weights_only=True``."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)  # atomic on POSIX and Windows: old or new, never half
        finally:
            tmp.unlink(missing_ok=True)

    def load_checkpoint(
        self, path: str | os.PathLike, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        if not Path(path).is_file():
            raise FileNotFoundError(f"no checkpoint at {str(path)!r}")
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)


class RNGState(pl.Callback):
    """Save torch's global RNG states in every checkpoint and restore them on resume.

    The CPU generator always; each CUDA device's generator too (``"cuda"``, one state per
    device) when CUDA is in use, since posterior noise drawn on a GPU comes from it. A process
    that never initialised CUDA has drawn nothing from it, so nothing is saved (and reading
    the states would start CUDA for nothing). On restore, CUDA states are set for the devices
    this machine has, up to as many as were saved; on a machine without CUDA they are ignored,
    so a GPU checkpoint resumes on a CPU, and a checkpoint without them resumes anywhere.
    """

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = list(torch.cuda.get_rng_state_all())
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        cuda = state_dict.get("cuda")
        if cuda and torch.cuda.is_available():
            # a run resumed on fewer devices than it was saved on restores those it has
            torch.cuda.set_rng_state_all(list(cuda)[: torch.cuda.device_count()])


def checkpoint_callbacks(
    folder: str | os.PathLike, fingerprint: RunFingerprint | None = None
) -> list[pl.Callback]:
    """A ``last.ckpt`` in ``folder`` after every validation check, with the RNG state in it.

    Without validation, after every epoch. Validation checks fall at epoch ends (every epoch
    or every few, see :class:`~latentode.lightning.plan.TrainingPlan`), so a resumed fit
    starts at an epoch boundary. With a ``fingerprint``, it is saved in every checkpoint too,
    for :func:`resume_point` to check.
    """
    # One file, rewritten (atomically, by AtomicCheckpointIO) after each validation check.
    # `save_last` would not do: Lightning writes "last" only next to a top-k file. No version
    # counter: a resumed fit must keep writing last.ckpt.
    callbacks: list[pl.Callback] = [
        pl.callbacks.ModelCheckpoint(
            dirpath=str(folder),
            filename=LAST.removesuffix(".ckpt"),
            save_top_k=1,
            save_last=False,
            enable_version_counter=False,
        ),
        RNGState(),
    ]
    if fingerprint is not None:
        callbacks.append(fingerprint)
    return callbacks


def last_checkpoint(folder: str | os.PathLike) -> Path | None:
    """``folder/last.ckpt`` if a fit has written one, else None."""
    path = Path(folder) / LAST
    return path if path.is_file() else None


# -- reading a checkpoint back ---------------------------------------------------------------


def _unreadable(path: Path, why: str) -> ValueError:
    return ValueError(
        f"the checkpoint {str(path)!r} is truncated or not a checkpoint written by latentode "
        f"({why}); delete it to start afresh, or give the folder of an intact checkpoint"
    )


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint at ``path``, read with ``weights_only=True`` and checked to be one.

    Raises:
        ValueError: The file is empty, cut off, not a torch zip file, or a torch file that is
            not a Lightning training checkpoint with latentode's :class:`RunFingerprint`.
    """
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise _unreadable(path, "it is empty: 0 bytes")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            head = f.read(4)
        if head == b"PK\x03\x04":  # a zip's first bytes, without the index at its end
            raise _unreadable(path, f"it ends early: {size} bytes and no zip index at the end")
        raise _unreadable(path, "it is not a torch zip file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any failure to read it means the same to the user
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise _unreadable(path, f"torch cannot read it: {first[:200]}") from None
    if not isinstance(checkpoint, dict):
        raise _unreadable(path, f"it holds a {type(checkpoint).__name__}, not a checkpoint")
    missing = [key for key in _CHECKPOINT_KEYS if key not in checkpoint]
    if missing:
        raise _unreadable(path, f"it lacks the checkpoint entries {missing}")
    callbacks = checkpoint["callbacks"]
    if not isinstance(callbacks, dict) or not isinstance(callbacks.get(RunFingerprint.KEY), dict):
        raise _unreadable(
            path,
            "it carries no record of the settings and data it was trained on: it was written "
            "by Lightning itself or by an older latentode, so resuming it cannot be checked",
        )
    return checkpoint


# -- the run a checkpoint belongs to ---------------------------------------------------------


class RunFingerprint(pl.Callback):
    """What a checkpoint was trained with: settings and data, saved in every checkpoint.

    Args:
        writer: Who trains: ``"LatentODE.fit"`` or ``"latentode fit"``; a checkpoint of one is
            not resumed by the other (their settings have different names).
        settings: Setting name → value (JSON-like) for everything that must be equal for a
            resume to continue the same run: whatever shapes the model or the training recipe.
        data: :func:`data_fingerprint` of the training data.
    """

    KEY = "RunFingerprint"

    def __init__(self, writer: str, settings: Mapping[str, Any], data: Mapping[str, Any]):
        self.writer = str(writer)
        self.settings = {str(k): _plain(v) for k, v in settings.items()}
        self.data = {str(k): _plain(v) for k, v in data.items()}

    @property
    def state_key(self) -> str:
        return self.KEY

    def state_dict(self) -> dict[str, Any]:
        return {"writer": self.writer, "settings": self.settings, "data": self.data}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        pass  # compared by resume_point before training; nothing to restore

    def differences(self, saved: Mapping[str, Any]) -> tuple[list[str], list[str]]:
        """(settings, data) that differ from a saved :meth:`state_dict`, as phrases."""
        if saved.get("writer") != self.writer:
            return [f"it was written by `{saved.get('writer')}`, not by `{self.writer}`"], []
        return (
            _differing_settings(saved.get("settings") or {}, self.settings),
            _differing_data(saved.get("data") or {}, self.data),
        )


def _plain(value: Any) -> Any:
    """``value`` as JSON-like Python (what ``weights_only`` loading accepts back)."""
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    if callable(value):  # e.g. a transform's numpy function: compared by name
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', value)}"
    return repr(value)


_UNSET = object()


def _differing_settings(saved: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    out = []
    for key in sorted(set(saved) | set(now)):
        there, here = saved.get(key, _UNSET), now.get(key, _UNSET)
        if there != here:
            out.append(f"{key}={_show(there)} in the checkpoint, {_show(here)} now")
    return out


def _show(value: Any) -> str:
    return "(not set)" if value is _UNSET else repr(value)


_DATA_WORDS = {
    "layout": "column names and time type",
    "ids": "series ids",
    "times": "observation times",
    "values": "values",
    "events": "events",
    "covariates": "inputs or static features",
}


def _differing_data(saved: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    out = []
    for key in ("features", "series", "observations"):
        if saved.get(key) != now.get(key):
            out.append(f"{key} {saved.get(key)!r} in the checkpoint, {now.get(key)!r} now")
    other = [words for key, words in _DATA_WORDS.items() if saved.get(key) != now.get(key)]
    if other:
        out.append("other " + ", ".join(other))
    return out


def data_fingerprint(dm: Any) -> dict[str, Any]:
    """Sizes and SHA-256 hashes of a set-up data module's series, as a fit reads them.

    The series are taken after the data module's own validation and canonical ordering
    (training and validation series alike, in one list), so the same frame fingerprints the
    same whatever its row order; ids, times, values (with the mask, and the standardisation
    that was applied to them) and events are hashed apart, so a refusal can say which of them
    changed.
    """
    dataset = dm.dataset
    fmt = dataset.fmt
    ids, times, values, events = (hashlib.sha256() for _ in range(4))
    n_obs = 0
    for series, item in zip(dataset.series, dataset, strict=True):
        ids.update(json.dumps([type(series.id).__name__, str(series.id)]).encode() + b"\0")
        times.update(np.int64(len(series.times)).tobytes())
        times.update(np.ascontiguousarray(series.times, dtype=np.float64).tobytes())
        values.update(np.ascontiguousarray(series.values, dtype=np.float64).tobytes())
        values.update(np.ascontiguousarray(series.mask, dtype=bool).tobytes())
        if item.event_times is not None:
            events.update(np.int64(len(item.event_times)).tobytes())
            events.update(item.event_times.double().numpy().tobytes())
            events.update(item.event_kinds.numpy().astype(np.int64).tobytes())
        n_obs += len(series.times)
    scaler = getattr(dm, "feature_scaler", None)
    if scaler is not None:  # the series are standardised: x and 2x would look alike without it
        values.update(np.ascontiguousarray(scaler.mean_, dtype=np.float64).tobytes())
        values.update(np.ascontiguousarray(scaler.scale_, dtype=np.float64).tobytes())
    layout = [fmt.id_col, fmt.time_col, fmt.time_kind, fmt.time_unit, fmt.time_reference, fmt.tz]
    extra = {}
    if getattr(dataset, "covariates", None) is not None:  # inputs and static features
        covariates = hashlib.sha256(json.dumps(dataset.covariate_schema.to_dict()).encode())
        for c in dataset.covariates:
            for part in (c.times, c.held, c.doses, c.static):
                covariates.update(np.int64(part.size).tobytes())
                covariates.update(np.ascontiguousarray(part, dtype=np.float64).tobytes())
        extra["covariates"] = covariates.hexdigest()
    return extra | {
        "features": [str(c) for c in fmt.value_cols],
        "series": len(dataset.series),
        "observations": n_obs,
        "layout": hashlib.sha256(json.dumps(_plain(layout)).encode()).hexdigest(),
        "ids": ids.hexdigest(),
        "times": times.hexdigest(),
        "values": values.hexdigest(),
        "events": events.hexdigest(),
    }


def resume_point(
    folder: str | os.PathLike,
    resume: bool,
    fingerprint: RunFingerprint,
    module: torch.nn.Module,
) -> Path | None:
    """The checkpoint to hand to ``trainer.fit(ckpt_path=...)``, checked; None to start afresh.

    Call it while holding the folder's :class:`FolderLock`, after any earlier look at the
    folder: what it finds then is what training will meet.

    Raises:
        ValueError: Without ``resume``, the folder holds a checkpoint already. With it, the
            checkpoint is unreadable (:func:`read_checkpoint`), was trained with other
            settings or data than ``fingerprint`` says, or its weights do not fit ``module``.
    """
    path = last_checkpoint(folder)
    if path is None:
        return None
    if not resume:
        raise ValueError(
            f"{str(folder)!r} already holds a checkpoint of another fit; pass resume=True to "
            "continue it, or give an empty folder"
        )
    checkpoint = read_checkpoint(path)
    check_same_run(checkpoint, fingerprint, path)
    _check_weights_fit(checkpoint["state_dict"], module.state_dict(), path)
    return path


def check_same_run(
    checkpoint: Mapping[str, Any], fingerprint: RunFingerprint, path: str | os.PathLike
) -> None:
    """Refuse a checkpoint (from :func:`read_checkpoint`) of another run, naming what differs.

    Pass a fingerprint whose ``data`` is empty to check the settings alone.
    """
    saved = checkpoint["callbacks"][RunFingerprint.KEY]
    settings, data = fingerprint.differences(saved)
    if not fingerprint.data:
        data = []
    if not settings and not data:
        return
    parts = []
    if settings:
        parts.append("other settings: " + "; ".join(settings))
    if data:
        parts.append("other data: " + "; ".join(data))
    hint = ""
    if any(s.startswith(("max_steps=", "max_epochs=")) for s in settings):
        hint = (
            " (the training budget must match too: the learning-rate schedule, KL warm-up and "
            "validation checks are spread over it; to train longer, start a new fit with the "
            "larger budget)"
        )
    raise ValueError(
        f"the checkpoint {str(path)!r} is of another fit, with {' and '.join(parts)}. Resume "
        "with the same settings and data, or give an empty checkpoint_dir to start afresh" + hint
    )


def _check_weights_fit(
    saved: Any, expected: Mapping[str, torch.Tensor], path: str | os.PathLike
) -> None:
    if not isinstance(saved, Mapping):
        raise _unreadable(Path(path), "its `state_dict` is not a mapping of weights")
    wrong = []
    for name in sorted(set(saved) | set(expected)):
        there, here = saved.get(name), expected.get(name)
        if there is None or here is None:
            wrong.append(
                f"{name} {'not in the checkpoint' if there is None else 'not in the model'}"
            )
        elif not isinstance(there, torch.Tensor) or tuple(there.shape) != tuple(here.shape):
            shape = tuple(there.shape) if isinstance(there, torch.Tensor) else type(there).__name__
            wrong.append(f"{name} {shape} in the checkpoint, {tuple(here.shape)} in the model")
    if wrong:
        more = f" and {len(wrong) - 3} more" if len(wrong) > 3 else ""
        raise ValueError(
            f"the checkpoint {str(path)!r} holds weights of a model of another shape "
            f"({'; '.join(wrong[:3])}{more}); resume with the settings it was trained with, "
            "or give an empty checkpoint_dir to start afresh"
        )


# -- one fit per folder ----------------------------------------------------------------------


class FolderLock:
    """An exclusive lock on a checkpoint folder, held for one fit (a context manager).

    ``fcntl.flock`` (POSIX) or ``msvcrt.locking`` (Windows) on ``folder/.latentode.lock``,
    taken without waiting: a second fit in the same folder is refused at once. The operating
    system drops the lock when the holder exits, however it ends (a killed process included),
    so a stale lock never outlives its process. The lock file holds the holder's process id,
    for the message; the lock is the flock, not the text.

    Not locked, so not enforced: on a file system that cannot lock (a warning says so), and in
    the worker processes a distributed launcher starts (``RANK``, ``LOCAL_RANK`` or
    ``NODE_RANK`` above 0), which run the same fit as the process that holds the lock.

    Raises:
        ValueError: On entry, when another fit holds the lock, or the lock file cannot be
            opened (a symbolic link is refused: it is opened with ``O_NOFOLLOW`` where the
            platform has it).
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK
        self._fd: int | None = None

    def __enter__(self) -> FolderLock:
        if _launched_worker():
            return self
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as err:
            raise ValueError(
                f"cannot open the lock file {str(self.path)!r} of `checkpoint_dir` "
                f"({err.strerror}); it must be a plain file (not a link) in a writable folder"
            ) from None
        try:
            _lock(fd)
        except OSError as err:
            holder = _holder(fd)
            os.close(fd)
            if not _busy(err):  # e.g. a network file system without locks
                warnings.warn(
                    f"checkpoint_dir {str(self.folder)!r} cannot be locked ({err.strerror}); "
                    "the fit goes on unlocked, so make sure no other fit uses this folder",
                    RuntimeWarning,
                    stacklevel=2,
                )
                return self
            raise ValueError(
                f"another fit{holder} is using checkpoint_dir {str(self.folder)!r}; wait for it "
                "to end, or give another folder"
            ) from None
        with contextlib.suppress(OSError):  # the pid is for messages only
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                _unlock(fd)
            finally:
                os.close(fd)


def _launched_worker() -> bool:
    """A process a distributed launcher started for rank > 0 (Lightning's, torchrun)."""
    for name in ("RANK", "LOCAL_RANK", "NODE_RANK"):
        value = os.environ.get(name, "0")
        if value.isdigit() and int(value) > 0:
            return True
    return False


def _busy(err: OSError) -> bool:
    """Whether a failed non-blocking lock means "held by another" (not "cannot lock here")."""
    return isinstance(err, BlockingIOError) or err.errno in (
        errno.EACCES,
        errno.EAGAIN,
        errno.EDEADLK,  # msvcrt.locking's "already locked"
    )


def _lock(fd: int) -> None:
    """Lock ``fd`` exclusively, without waiting; OSError when another holds it."""
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    elif msvcrt is not None:  # pragma: no cover - Windows
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)


def _unlock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
    elif msvcrt is not None:  # pragma: no cover - Windows
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


def _holder(fd: int) -> str:
    """`` (process N)`` from the lock file, or nothing when it cannot be read."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii", "replace").strip()
    except OSError:  # Windows: the locked byte cannot be read
        return ""
    return f" (process {text})" if text.isdigit() else ""
