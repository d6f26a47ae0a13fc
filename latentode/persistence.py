"""A fitted model's folder on disk: written whole or not at all, read without running code.

A model folder holds two files: ``latentode.json`` (settings, data layout, fitted scalers) and
``weights.pt`` (tensors only). This module knows the folder, not the model:
:meth:`~latentode.estimator.LatentODE.save` builds the settings and hands them here with the
weights, and :meth:`~latentode.estimator.LatentODE.load` rebuilds the model from what
:func:`read_model` returns.

Guarantees:

- **Atomic.** The two files are written into a new hidden folder beside the target, flushed
  to disk, and only then swapped in by renames. A crash mid-save leaves the previous model (or
  nothing), never one model's settings beside another's weights.
- **Matched.** The settings record the SHA-256 of the weights file; :func:`read_model` refuses
  a folder whose weights are not the ones its settings were written with (a copy mixed by
  hand, or two saves racing).
- **No links followed, nothing clobbered.** A target that is a symbolic link, or a folder
  holding anything other than a saved model, is refused; the old folder is removed only after
  the new one is in place, and removing it never follows links inside it.
- **No code run.** Weights load with ``torch.load(weights_only=True)`` from bytes already
  read; the settings are plain JSON with NaN, Infinity and deep nesting refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["CONFIG_FILE", "WEIGHTS_FILE", "read_model", "write_model"]

CONFIG_FILE = "latentode.json"
WEIGHTS_FILE = "weights.pt"
_DIGEST_KEY = "weights_sha256"
_MAX_CONFIG_BYTES = 64 * 2**20  # settings files are kilobytes; more is not one of ours
_MAX_DEPTH = 32  # nesting of the settings JSON; ours is 4 deep


def write_model(path: str | os.PathLike[str], config: dict[str, Any], state: dict) -> Path:
    """Write ``config`` and the tensors ``state`` as a model folder at ``path``; returns it.

    ``config`` gains the weights' SHA-256 under ``"weights_sha256"``. An existing model
    folder at ``path`` is replaced atomically.

    Raises:
        TypeError: ``path`` is not a str or path.
        ValueError: ``path`` is a file, a symbolic link, or a folder holding other files;
            ``config`` is not JSON-serialisable.
        FileNotFoundError: the parent folder does not exist.
        FileExistsError: another process replaced the folder during this save.
    """
    folder = _target(path)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    weights = buffer.getvalue()
    config = {**config, _DIGEST_KEY: hashlib.sha256(weights).hexdigest()}
    try:
        text = json.dumps(config, indent=2, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"cannot save: a setting is not plain JSON ({err}); use finite numbers, strings, "
            "lists and dicts (in trainer_kwargs too)"
        ) from None
    fresh = Path(tempfile.mkdtemp(prefix=f".{folder.name}.saving-", dir=folder.parent))
    try:
        _write_new(fresh / WEIGHTS_FILE, weights)
        _write_new(fresh / CONFIG_FILE, text.encode("utf-8"))
        _fsync(fresh)
        _swap_in(fresh, folder)
    finally:
        if fresh.exists():
            shutil.rmtree(fresh, ignore_errors=True)
    return folder


def read_model(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The settings and the weights of the model folder at ``path``.

    The settings are checked to be a JSON object of finite numbers, not deeper than
    ``_MAX_DEPTH``; the weights to be a mapping of names to tensors, and to be the ones the
    settings were saved with (when the settings record their digest; models saved before
    digests existed do not).

    Raises:
        FileNotFoundError: ``path`` is not a folder, or a file is missing.
        ValueError: anything malformed, with the file and what is wrong.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"no saved model at {str(folder)!r}: not a folder")
    config_file, weights_file = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    for needed in (config_file, weights_file):
        if not needed.is_file():
            raise FileNotFoundError(
                f"{str(folder)!r} is not a complete saved model: {needed.name} is missing"
            )
    config = _read_config(config_file)
    weights = weights_file.read_bytes()
    digest = config.pop(_DIGEST_KEY, None)
    if digest is not None and digest != hashlib.sha256(weights).hexdigest():
        raise ValueError(
            f"{str(folder)!r} is corrupt: {WEIGHTS_FILE} does not match {CONFIG_FILE} (its "
            "SHA-256 differs from the one saved with the settings). It was truncated or edited, "
            "copied from another model, or two saves raced. Save the model again"
        )
    return config, _read_weights(weights, weights_file)


def _target(path: Any) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"`path` must be a folder path (str or Path); got {type(path).__name__}")
    folder = Path(path)
    if not str(path) or folder.name in ("", ".", ".."):
        raise ValueError(f"`path` must name a folder to write the model into; got {str(path)!r}")
    if folder.is_symlink():
        raise ValueError(
            f"{str(folder)!r} is a symbolic link; save() never writes through links. Give the "
            "real folder's path"
        )
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"`path` must be a folder; {str(folder)!r} is a file")
    if not folder.parent.is_dir():
        raise FileNotFoundError(
            f"the parent folder {str(folder.parent)!r} does not exist; create it first"
        )
    if folder.is_dir():
        other = sorted(
            p.name for p in folder.iterdir() if p.name not in (CONFIG_FILE, WEIGHTS_FILE)
        )
        if other:
            raise ValueError(
                f"{str(folder)!r} holds files that are not a saved model ({', '.join(other[:3])}"
                f"{', …' if len(other) > 3 else ''}); save() replaces the whole folder, so give "
                "a new or empty folder, or one written by save()"
            )
    return folder


def _write_new(path: Path, data: bytes) -> None:
    """Create ``path`` (never an existing file or link) with ``data``, flushed to disk."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync(folder: Path) -> None:
    """Flush ``folder``'s entries (new names, renames) to disk, where the platform can."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows cannot open folders
        return
    try:
        with contextlib.suppress(OSError):  # some file systems refuse to sync a folder
            os.fsync(fd)
    finally:
        os.close(fd)


def _swap_in(fresh: Path, folder: Path) -> None:
    """Put the complete folder ``fresh`` at ``folder``, replacing an old model there."""
    old = None
    if folder.is_dir():
        old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
        old.rmdir()
        try:
            os.rename(folder, old)
        except FileNotFoundError:  # another save moved it away first; ours goes in below
            old = None
    try:
        os.rename(fresh, folder)
    except OSError as err:  # another save put its folder in place between our renames
        if old is not None:  # the model we moved aside goes back, or, superseded, away
            try:
                os.rename(old, folder)
            except OSError:
                shutil.rmtree(old, ignore_errors=True)
        raise FileExistsError(
            f"another process saved a model to {str(folder)!r} during this save; its model is "
            "there now. Save again if this one should win"
        ) from err
    _fsync(folder.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)  # removes links inside, never their targets


def _read_config(path: Path) -> dict[str, Any]:
    size = path.stat().st_size
    if size > _MAX_CONFIG_BYTES:
        raise ValueError(
            f"{path} is {size:,} bytes; a model's settings file is kilobytes. It is not one "
            "written by save()"
        )
    try:
        config = json.loads(
            path.read_text(encoding="utf-8"), parse_constant=_no_constant, parse_float=_finite
        )
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    except RecursionError:
        raise ValueError(f"{path} nests too deeply to be a model's settings") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a JSON object; got {type(config).__name__}")
    if _depth(config) > _MAX_DEPTH:
        raise ValueError(
            f"{path} nests deeper than {_MAX_DEPTH} levels; a model's settings are 4 deep"
        )
    return config


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid setting; every number must be finite")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is beyond float range; every number must be finite")
    return value


def _depth(value: Any) -> int:
    """Nesting depth of a JSON value, iteratively (deep input cannot exhaust the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > _MAX_DEPTH:
            break
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _read_weights(data: bytes, path: Path) -> dict[str, torch.Tensor]:
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise ValueError(
            f"{path} is not a weights file written by save() (a torch zip archive); it is "
            "truncated, or another kind of file"
        )
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"{path} cannot be read as model weights: {reason}") from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ValueError(f"{path} must map weight names to tensors; it holds something else")
    return state
