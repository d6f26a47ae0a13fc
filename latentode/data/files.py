"""Reading and writing the long tables users keep on disk (CSV, Parquet), with clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

__all__ = ["TABLE_SUFFIXES", "read_table", "write_table"]

TABLE_SUFFIXES = (".csv", ".parquet")


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise ValueError(
            f"{str(path)!r} must end in one of {', '.join(TABLE_SUFFIXES)} (the table's format); "
            f"got {suffix or 'no suffix'!r}"
        )
    return suffix


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a long table from a ``.csv`` (UTF-8) or ``.parquet`` file.

    Raises:
        FileNotFoundError: no such file.
        ValueError: an unknown suffix, a file that is not UTF-8 text or not a readable table.
        ImportError: Parquet without pyarrow (``pip install 'latentode[cli]'``).
    """
    path = Path(path)
    suffix = _suffix(path)
    if not path.is_file():
        raise FileNotFoundError(f"no data file at {str(path)!r}")
    try:
        if suffix == ".csv":
            return pd.read_csv(path, encoding="utf-8")
        return pd.read_parquet(path)
    except ImportError as err:
        raise ImportError(
            f"reading Parquet needs pyarrow; install it with: pip install 'latentode[cli]' ({err})"
        ) from None
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{str(path)!r} is not UTF-8 text ({err.reason} at byte {err.start}); re-save it as "
            "UTF-8, e.g. df.to_csv(path, encoding='utf-8')"
        ) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as err:
        raise ValueError(f"{str(path)!r} is not a readable {suffix[1:]} table: {err}") from None


def check_output_path(path: str | Path, *, overwrite: bool = False) -> Path:
    """An output table path that may be written: known suffix, existing folder, no clobbering.

    Raises:
        ValueError: an unknown suffix, or ``path`` is a folder.
        FileNotFoundError: its folder does not exist.
        FileExistsError: the file exists and ``overwrite`` is False.
    """
    path = Path(path)
    _suffix(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder {str(path.parent)!r} does not exist; create it first")
    if path.is_dir():
        raise ValueError(f"{str(path)!r} is a folder; give a file name ending in .csv or .parquet")
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{str(path)!r} exists; choose another name or pass --overwrite (overwrite=True) to "
            "replace it"
        )
    return path


def write_table(df: pd.DataFrame, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``df`` to ``.csv`` or ``.parquet`` by the suffix of ``path``; returns the path.

    The table is written to a temporary file beside ``path`` and renamed over it, so a crash
    never leaves half a table under the final name. An existing file is replaced only with
    ``overwrite=True``.
    """
    path = check_output_path(path, overwrite=overwrite)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if _suffix(path) == ".csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
