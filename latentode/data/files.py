"""Reading and writing the long tables users keep on disk (CSV, Parquet), with clear errors.

Files carry text, not types, so two columns are read by rule, not by pandas' guessing:

- the **id column** of a CSV is text, exactly as written: ``001``, ``1``, ``1.0`` and `` 1``
  are four series, ``000`` stays ``000`` and ``NA`` is an id like any other (only an empty
  field is a missing id). Ids are labels; they come back verbatim in every output. Parquet keeps
  the types it stored.
- the **time column**, when it holds text, is parsed (``parse_dates=None``, the default) as
  ISO-8601 dates or date-times when every value is one (``2024-01-31``,
  ``2024-01-31T08:30:00``, ``2024-01-31 08:30``, with an optional UTC offset ``Z`` or
  ``+01:00``), else as durations when every value is one (``1 days 02:00:00``, ``02:00:00``,
  ``90min``); any other text is refused, naming the first value that is neither.
  ``parse_dates=True`` requires ISO-8601 dates; ``False`` leaves the text as it was read.
  Numbers stay numbers.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["TABLE_SUFFIXES", "parse_time_text", "read_table", "write_table"]

TABLE_SUFFIXES = (".csv", ".parquet")

# pandas' default missing-value strings (the `na_values` list in `pandas.read_csv`'s docs),
# still applied to every column but the id column.
_NA_TEXT = (
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
)

# ISO-8601 calendar date, optionally a time of day, and with a time of day optionally a UTC offset
_ISO_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?P<offset>Z|[+-]\d{2}(?::?\d{2})?)?)?"
)
_FORMS = (
    "numbers, ISO-8601 dates or date-times (2024-01-31, 2024-01-31T08:30:00, with an optional "
    "UTC offset such as Z or +01:00) or durations (1 days 02:00:00, 02:00:00, 90min)"
)


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise ValueError(
            f"{str(path)!r} must end in one of {', '.join(TABLE_SUFFIXES)} (the table's format); "
            f"got {suffix or 'no suffix'!r}"
        )
    return suffix


def read_table(
    path: str | Path,
    *,
    id_col: str | None = None,
    time_col: str | None = None,
    parse_dates: bool | None = None,
) -> pd.DataFrame:
    """Read a long table from a ``.csv`` (UTF-8) or ``.parquet`` file.

    Args:
        path: The file; its suffix names the format.
        id_col: The id column, read from a CSV as text exactly as written, so ids that look
            alike (``001`` and ``1``) never merge and come back verbatim; Parquet keeps its
            stored types. A row without an id (an empty CSV field) is refused.
        time_col: The time column: text in it is parsed by ``parse_dates`` (see
            :func:`parse_time_text`); numbers stay numbers.
        parse_dates: ``None`` (default): parse text times that are all ISO-8601 dates or
            date-times, or all durations; other text is refused. ``True``: they must be
            ISO-8601 dates or date-times. ``False``: leave text as it was read.

    Raises:
        FileNotFoundError: no such file.
        ValueError: an unknown suffix, a file that is not UTF-8 text or not a readable table,
            a row without an id, or a time column of text that is neither dates nor durations.
        TypeError: ``parse_dates`` is not None, True or False.
        ImportError: Parquet without pyarrow (``pip install 'latentode[cli]'``).
    """
    if parse_dates is not None and not isinstance(parse_dates, bool):
        raise TypeError(
            f"`parse_dates` must be None (detect dates), True or False; got {parse_dates!r}"
        )
    path = Path(path)
    suffix = _suffix(path)
    if not path.is_file():
        raise FileNotFoundError(f"no data file at {str(path)!r}")
    with table_errors(path):
        frame = _read_csv(path, id_col) if suffix == ".csv" else pd.read_parquet(path)
    line = csv_line if suffix == ".csv" else (lambda i: f"row {i}")
    if id_col is not None and id_col in frame.columns:
        refuse_missing_ids(frame[id_col], id_col, path, line)
    if time_col is not None and time_col in frame.columns and parse_dates is not False:
        frame[time_col] = parse_time_text(
            frame[time_col],
            f"time column {time_col!r} of {str(path)!r}",
            dates_only=bool(parse_dates),
            where=line,
        )
    return frame


def csv_line(i: int) -> str:
    """Where row ``i`` of a CSV is: its header is line 1, so row i is line i + 2 (what an
    editor shows)."""
    return f"row {i} (line {i + 2})"


@contextlib.contextmanager
def table_errors(path: Path) -> Iterator[None]:
    """Reading ``path`` (a table file, or a Parquet folder): what pandas and pyarrow raise
    about the file becomes a ValueError (an ImportError for a missing pyarrow) that names it
    and the fix."""
    kind = "parquet" if path.is_dir() else path.suffix.lower()[1:]
    try:
        yield
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
        # pyarrow's ArrowInvalid (a file that is not Parquet) is a ValueError, and passes
        raise ValueError(f"{str(path)!r} is not a readable {kind} table: {err}") from None


def refuse_missing_ids(
    ids: pd.Series,
    id_col: str,
    path: Path,
    where: Callable[[int], str],
    offset: int = 0,
    *,
    counted: bool = True,
) -> None:
    """Raise when a row of ``ids`` (rows ``offset`` on of ``path``) names no series; the
    message counts them when ``ids`` is the whole column (``counted``)."""
    missing = ids.isna().to_numpy()
    if missing.any():
        first = where(offset + int(missing.argmax()))
        how_many = f"{int(missing.sum())} row(s)" if counted else "row(s)"
        raise ValueError(
            f"id column {id_col!r} of {str(path)!r} must name a series on every row; "
            f"{how_many} have none, the first at {first}; fill in their ids or delete those rows"
        )


def csv_options(path: Path, id_col: str | None) -> dict:
    """``pandas.read_csv`` options that read ``id_col`` (when the header has it) as verbatim
    text, ``""`` alone being a missing id, and every other column with pandas' NA strings."""
    if id_col is None:
        return {"encoding": "utf-8"}
    header = pd.read_csv(path, encoding="utf-8", nrows=0).columns
    if id_col not in header:
        return {"encoding": "utf-8"}  # the layer that needs it names the column
    na_values = {c: list(_NA_TEXT) for c in header}
    na_values[id_col] = [""]
    return {
        "encoding": "utf-8",
        "dtype": {id_col: str},
        "keep_default_na": False,
        "na_values": na_values,
    }


def _read_csv(path: Path, id_col: str | None) -> pd.DataFrame:
    """A CSV with ``id_col`` (when the header has it) as verbatim text; ``""`` = missing."""
    return pd.read_csv(path, **csv_options(path, id_col))


def parse_time_text(
    times: pd.Series,
    what: str,
    *,
    dates_only: bool = False,
    where: Callable[[int], str] = lambda i: f"row {i}",
) -> pd.Series:
    """Times written as text → datetimes or timedeltas; anything else is returned unchanged.

    Args:
        times: ``(n,)`` times. Only a column whose present values are all strings is parsed;
            missing values stay missing (for the frame layer to report).
        what: How messages name the times (``"time column 'taken' of 'labs.csv'"``).
        dates_only: Refuse durations: every value must be an ISO-8601 date or date-time.
        where: Position ``i`` → how messages place the value (``"row 3 (line 5)"``).

    Returns:
        ``(n,)`` datetime64 when every value is an ISO-8601 date or date-time (tz-aware when
        they carry UTC offsets: in that zone when they share one, else in UTC), timedelta64
        when every value is a duration; ``times`` itself when it is not text.

    Raises:
        ValueError: text that is neither; dates with and without UTC offsets mixed; an
            ISO-8601-looking value that is no calendar date or time (``2024-02-30``).
    """
    present = times.notna().to_numpy()
    if not (pd.api.types.is_object_dtype(times) or pd.api.types.is_string_dtype(times)):
        return times
    values = times[present]
    if values.empty or not all(isinstance(v, str) for v in values):
        return times
    text = values.str.strip()
    positions = present.nonzero()[0]
    matches = [_ISO_DATETIME.fullmatch(v) for v in text]
    if all(matches):
        return _parse_iso(times, text, matches, positions, what, where)
    some_dates = any(matches)
    if not dates_only and not some_dates:
        numbers = pd.to_numeric(text, errors="coerce")
        is_number = numbers.notna().to_numpy()
        if is_number.all():  # e.g. a Parquet column of numbers stored as strings
            return numbers.reindex(times.index)
        if is_number.any():
            i, j = int(is_number.argmax()), int((~is_number).argmax())
            raise ValueError(
                f"{what} must hold one form of time; found a mix of numbers and text: "
                f"{values.iloc[i]!r} at {where(int(positions[i]))} and {values.iloc[j]!r} at "
                f"{where(int(positions[j]))}; write every time as a number, or every one as "
                "a date or a duration"
            )
        spans = pd.to_timedelta(text, errors="coerce")
        if spans.notna().all():
            return spans.reindex(times.index)
        bad = int(spans.isna().to_numpy().argmax())
    else:
        bad = next(k for k, m in enumerate(matches) if m is None)
    value = values.iloc[bad]
    if dates_only:
        expected = (
            "ISO-8601 dates or date-times (2024-01-31, 2024-01-31T08:30:00, with an optional "
            "UTC offset such as Z or +01:00)"
        )
    else:
        expected = _FORMS
    fix = "rewrite it in one of these forms"
    if some_dates:
        fix = "write every time as an ISO-8601 date, e.g. 2024-01-31 or 2024-01-31T08:30:00"
    raise ValueError(
        f"{what} must hold {expected}; found {value!r} at {where(int(positions[bad]))}; {fix}"
    )


def _parse_iso(
    times: pd.Series,
    text: pd.Series,
    matches: list[re.Match[str]],
    positions: np.ndarray,
    what: str,
    where: Callable[[int], str],
) -> pd.Series:
    """ISO-8601 strings (all matching :data:`_ISO_DATETIME`) → datetime64, checked."""
    offsets = [m["offset"] for m in matches]
    aware = [o is not None for o in offsets]
    if any(aware) and not all(aware):
        i, j = aware.index(True), aware.index(False)
        raise ValueError(
            f"{what} must give every time a UTC offset or none; found {text.iloc[i]!r} at "
            f"{where(int(positions[i]))} with one and {text.iloc[j]!r} at "
            f"{where(int(positions[j]))} without; add the offset (e.g. Z for UTC) to every time "
            "or drop it from all"
        )
    distinct = {_canonical_offset(o) for o in offsets if o is not None}
    parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=len(distinct) > 1)
    invalid = parsed.isna().to_numpy()
    if invalid.any():
        k = int(invalid.argmax())
        raise ValueError(
            f"{what} must hold valid ISO-8601 dates or date-times; {text.iloc[k]!r} at "
            f"{where(int(positions[k]))} is not a calendar date or time of day; correct it"
        )
    return parsed.reindex(times.index)


def _canonical_offset(offset: str) -> str:
    """``"Z"``, ``"+00"``, ``"+0000"`` and ``"+00:00"`` are one offset."""
    if offset == "Z":
        return "+00:00"
    digits = offset[1:].replace(":", "")
    return f"{offset[0]}{digits[:2]}:{digits[2:] or '00'}"


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
