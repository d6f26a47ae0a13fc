"""Reading and writing the long tables users keep on disk (CSV, Parquet), with clear errors."""

from __future__ import annotations

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


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` to ``.csv`` or ``.parquet`` by the suffix of ``path``; returns the path."""
    path = Path(path)
    suffix = _suffix(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder {str(path.parent)!r} does not exist; create it first")
    if suffix == ".csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)
    return path
