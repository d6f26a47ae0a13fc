"""Long tables larger than memory: read and written a chunk of whole series at a time.

:func:`iter_series_chunks` reads a CSV file, a Parquet file or a Parquet dataset (a folder of
``.parquet`` files, optionally hive-partitioned as ``id=.../``) in blocks of rows and hands out
frames of ``n_series`` whole series each; :class:`TableWriter` appends such frames to one CSV or
Parquet file and puts it in place only when every chunk is written.

**The rule: the rows of a series are contiguous.** One pass over the rows keeps memory bounded
by a chunk, and a series is complete when the next id starts. Rows of one id anywhere in the
file would need either the whole id column and a row index per series (a first pass) and then
random access to every row (a CSV has none), or an external sort: both cost a second copy of the
data or many passes. Instead an id that comes back after another one is refused, naming both
rows and the fix (sort the file by id, or write the dataset partitioned by id). Checking it
keeps the ids seen so far (not their rows): tens of bytes per series.

Files are read by the rules of :func:`latentode.data.read_table`: CSV ids are text exactly as
written; text times are parsed, block by block, and every block must hold the same kind of time
(numbers, dates, dates with a UTC offset, durations); dates with a UTC offset are converted to
the zone of the first block. Ids of a hive partition (``id=001/``) are the text of the folder
name. Only the columns asked for are read.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pandas as pd

from latentode.data.files import (
    check_output_path,
    csv_line,
    csv_options,
    parse_time_text,
    refuse_missing_ids,
    table_errors,
)

__all__ = ["BLOCK_ROWS", "SeriesChunk", "TableWriter", "iter_series_chunks"]

BLOCK_ROWS = 65_536  # rows read from the file at a time (a chunk holds whole series besides)

_HIDDEN = (".", "_")  # files a Parquet dataset skips: _SUCCESS, _metadata, .crc, ...


@dataclass(frozen=True)
class SeriesChunk:
    """One chunk of whole series.

    Attributes:
        frame: Rows of ``n_series`` (the last chunk: fewer) whole series, in file order.
        number: 1 for the first chunk.
        span: Where its rows are, for messages (``"rows 0–99 (lines 2–101) of 'x.csv'"``).
        series_before: Series in the chunks before this one.
        rows_before: Rows in the chunks before this one.
    """

    frame: pd.DataFrame
    number: int
    span: str
    series_before: int
    rows_before: int


@dataclass(frozen=True)
class _Block:
    """Rows read from the file: ``frame``, its first row's position in the whole table."""

    frame: pd.DataFrame
    start: int


def iter_series_chunks(
    path: str | Path,
    *,
    id_col: str,
    time_col: str | None = None,
    n_series: int = 1000,
    columns: Sequence[str] | None = None,
    parse_dates: bool | None = None,
) -> Iterator[SeriesChunk]:
    """Frames of ``n_series`` whole series from a CSV, a Parquet file or a Parquet folder.

    Args:
        path: ``.csv`` or ``.parquet`` file, or a folder of ``.parquet`` files (a Parquet
            dataset; read in the order of the files' paths).
        id_col: The id column; the rows of each id must be contiguous.
        time_col: The time column; text in it is parsed as :func:`read_table` does.
        n_series: Series per chunk (the last chunk may have fewer).
        columns: Read only these columns (``id_col`` and ``time_col`` among them); default all.
        parse_dates: As in :func:`read_table`.

    Yields:
        :class:`SeriesChunk` per ``n_series`` series, lazily: memory holds one chunk and one
        block of :data:`BLOCK_ROWS` rows, plus the ids already read.

    Raises:
        FileNotFoundError: no such file or folder.
        ValueError: an unknown suffix; a folder that is not a Parquet dataset; a Parquet file
            that lacks a column (the id column in some partition) or whose id type differs from
            the others'; a row without an id; the rows of a series split by another series';
            blocks with different kinds of time; no rows at all; an unreadable file.
        TypeError: ``parse_dates`` is not None, True or False.
        ImportError: Parquet without pyarrow.
    """
    if not isinstance(n_series, int) or isinstance(n_series, bool) or n_series < 1:
        raise ValueError(f"`n_series` must be a positive integer; got {n_series!r}")
    if parse_dates is not None and not isinstance(parse_dates, bool):
        raise TypeError(
            f"`parse_dates` must be None (detect dates), True or False; got {parse_dates!r}"
        )
    path = Path(path)
    wanted = None if columns is None else list(dict.fromkeys([id_col, *columns]))
    kind = "folder" if path.is_dir() else path.suffix.lower()
    if not path.exists():
        raise FileNotFoundError(f"no data file or folder at {str(path)!r}")
    if kind not in _SOURCES:
        raise ValueError(
            f"{str(path)!r} must end in .csv or .parquet (the table's format), or be a folder of "
            f".parquet files; got {path.suffix or 'no suffix'!r}"
        )
    source = _SOURCES[kind](path, id_col, wanted)
    blocks = _with_times(source, time_col, parse_dates)
    yield from _whole_series(blocks, source, id_col, n_series)


class _CsvSource:
    """Blocks of a CSV file's rows, ids as verbatim text."""

    def __init__(self, path: Path, id_col: str, columns: list[str] | None) -> None:
        self.path = path
        self.where = csv_line
        with table_errors(path):
            header = pd.read_csv(path, encoding="utf-8", nrows=0).columns
            self.options = csv_options(path, id_col)
        if id_col not in header:
            raise ValueError(
                f"{str(path)!r} has no id column {id_col!r} (its columns: "
                f"{', '.join(map(repr, header[:10]))}); rename the id column or pass its name"
            )
        if columns is not None:
            self.options["usecols"] = lambda c: c in columns  # missing ones: the model says

    def __iter__(self) -> Iterator[_Block]:
        start = 0
        with table_errors(self.path):
            reader = pd.read_csv(self.path, chunksize=BLOCK_ROWS, **self.options)
            with reader:
                for frame in reader:
                    yield _Block(frame.reset_index(drop=True), start)
                    start += len(frame)

    def describe(self, first: int, last: int) -> str:
        return f"rows {first}–{last} (lines {first + 2}–{last + 2}) of {str(self.path)!r}"


class _ParquetSource:
    """Blocks of the rows of a Parquet file or of every file of a Parquet folder, in path
    order; an id that is a hive partition key is the folder name's text."""

    def __init__(self, path: Path, id_col: str, columns: list[str] | None) -> None:
        self.path = path
        self.id_col = id_col
        self.columns = columns
        self.starts: list[tuple[int, str]] = []  # (first row, file) of each file read so far
        with table_errors(path):
            import pyarrow as pa
            import pyarrow.dataset as ds

            self.fragments = self._fragments(ds, pa)

    def _fragments(self, ds: Any, pa: Any) -> list[tuple[Any, dict[str, Any]]]:
        """``(fragment, partition keys)`` of every file, in path order, checked."""
        with _parquet_errors(str(self.path), pa):
            if self.path.is_dir():
                _check_parquet_folder(self.path)
                found = ds.dataset(self.path, format="parquet", partitioning="hive")
                names = {
                    name
                    for fragment in found.get_fragments()
                    for name in ds.get_partition_keys(fragment.partition_expression)
                }
                if self.id_col in names:  # ids from folder names stay text, as written
                    fields = [
                        pa.field(n, pa.string() if n == self.id_col else found.schema.field(n).type)
                        for n in sorted(names)
                    ]
                    partitioning = ds.partitioning(pa.schema(fields), flavor="hive")
                    found = ds.dataset(self.path, format="parquet", partitioning=partitioning)
            else:
                found = ds.dataset(self.path, format="parquet")
        fragments = sorted(found.get_fragments(), key=lambda f: f.path)
        out = []
        id_types: dict[str, str] = {}
        for fragment in fragments:
            keys = ds.get_partition_keys(fragment.partition_expression)
            with _parquet_errors(fragment.path, pa):
                schema = fragment.physical_schema
            have = set(schema.names) | set(keys)
            lacking = [c for c in (self.columns or [self.id_col]) if c not in have]
            if lacking:
                raise ValueError(
                    f"Parquet file {fragment.path!r} lacks column(s) "
                    f"{', '.join(map(repr, lacking))}; every file of {str(self.path)!r} must "
                    f"hold them (the id column {self.id_col!r} as a column or as a hive "
                    f"partition folder {self.id_col}=...); add them or move that file out of the "
                    "folder"
                )
            id_type = "string" if self.id_col in keys else str(schema.field(self.id_col).type)
            id_types.setdefault(id_type, fragment.path)
            if len(id_types) > 1:
                (a, file_a), (b, file_b) = list(id_types.items())[:2]
                raise ValueError(
                    f"id column {self.id_col!r} must have one type in every file of "
                    f"{str(self.path)!r}; it is {a} in {file_a!r} and {b} in {file_b!r}; "
                    "rewrite the files with one type"
                )
            out.append((fragment, keys))
        return out

    def __iter__(self) -> Iterator[_Block]:
        start = 0
        with table_errors(self.path):
            import pyarrow as pa

            for fragment, keys in self.fragments:
                self.starts.append((start, fragment.path))
                names = fragment.physical_schema.names
                read = [c for c in (self.columns or names) if c in names]
                for batch in _batches(fragment, read, pa):
                    frame = pa.Table.from_batches([batch]).to_pandas()
                    for name, value in keys.items():  # partition keys asked for: constant
                        if self.columns is None or name in self.columns:
                            frame[name] = value
                    if len(frame):
                        yield _Block(frame, start)
                    start += len(frame)

    def where(self, row: int) -> str:
        first, file = next(s for s in reversed(self.starts) if s[0] <= row)  # skips empty files
        return f"row {row - first} of {file!r}"

    def describe(self, first: int, last: int) -> str:
        return f"{self.where(first)} to {self.where(last)}"


# how each kind of --data is read: a folder is a Parquet dataset
_SOURCES: dict[str, type[_CsvSource] | type[_ParquetSource]] = {
    ".csv": _CsvSource,
    ".parquet": _ParquetSource,
    "folder": _ParquetSource,
}


def _batches(fragment: Any, columns: list[str], pa: Any) -> Iterator[Any]:
    """A Parquet file's record batches of :data:`BLOCK_ROWS` rows (a corrupt file: a
    ValueError naming it)."""
    with _parquet_errors(fragment.path, pa):
        yield from fragment.to_batches(columns=columns, batch_size=BLOCK_ROWS)


@contextlib.contextmanager
def _parquet_errors(file: str, pa: Any) -> Iterator[None]:
    """What pyarrow raises about ``file`` (a file or a folder) → a ValueError naming it."""
    try:
        yield
    except pa.ArrowException as err:
        what = "folder of Parquet files" if Path(file).is_dir() else "Parquet file"
        raise ValueError(
            f"{file!r} is not a readable {what} ({err}); rewrite it, or move it out of the way"
        ) from None


def _check_parquet_folder(path: Path) -> None:
    files = [
        p
        for p in sorted(path.rglob("*"))
        if p.is_file() and not any(part.startswith(_HIDDEN) for part in p.relative_to(path).parts)
    ]
    if not files:
        raise ValueError(
            f"folder {str(path)!r} is not a Parquet dataset: it holds no files; give a folder "
            "of .parquet files (e.g. df.to_parquet(folder, partition_cols=['id'])) or a file"
        )
    other = [p for p in files if p.suffix.lower() != ".parquet"]
    if other:
        raise ValueError(
            f"folder {str(path)!r} is not a Parquet dataset: {str(other[0])!r} "
            f"{f'(and {len(other) - 1} more) ' if len(other) > 1 else ''}does not end in "
            ".parquet; a dataset folder holds only .parquet files (and hidden or _ files): "
            "move the others out, or give a .csv or .parquet file instead"
        )


_KINDS = {"M": "dates", "m": "durations", "f": "numbers", "i": "numbers", "u": "numbers"}


def _time_kind(times: pd.Series) -> str | None:
    """What a parsed time column holds (None when no time is present)."""
    if not times.notna().any():
        return None
    kind = _KINDS.get(times.dtype.kind, "text")
    if kind == "dates" and getattr(times.dtype, "tz", None) is not None:
        return "dates with a UTC offset"
    return kind


def _with_times(source: Any, time_col: str | None, parse_dates: bool | None) -> Iterator[_Block]:
    """Blocks with their text times parsed, each holding the first block's kind of time."""
    first: tuple[str, int, Any] | None = None  # (kind, first row, tz)
    for block in source:
        frame = block.frame
        if time_col is None or time_col not in frame.columns:
            yield block
            continue
        if parse_dates is not False:

            def where(i: int, start: int = block.start) -> str:
                return source.where(start + i)

            frame[time_col] = parse_time_text(
                frame[time_col],
                f"time column {time_col!r} of {str(source.path)!r}",
                dates_only=bool(parse_dates),
                where=where,
            )
        kind = _time_kind(frame[time_col])  # None: a block of missing times says nothing
        if kind is not None and first is None:
            row = block.start + int(frame[time_col].notna().to_numpy().argmax())
            first = (kind, row, getattr(frame[time_col].dtype, "tz", None))
        elif kind is not None and kind != first[0]:
            row = block.start + int(frame[time_col].notna().to_numpy().argmax())
            raise ValueError(
                f"time column {time_col!r} of {str(source.path)!r} must hold one kind of time "
                f"throughout; it holds {first[0]} from {source.where(first[1])} and {kind} at "
                f"{source.where(row)}; write every time in one form: all numbers, all dates or "
                "all durations"
            )
        elif kind is not None and first[2] is not None and frame[time_col].dtype.tz != first[2]:
            frame[time_col] = frame[time_col].dt.tz_convert(first[2])  # one zone, same instants
        yield block


def _whole_series(
    blocks: Iterator[_Block], source: Any, id_col: str, n_series: int
) -> Iterator[SeriesChunk]:
    """Blocks of rows → chunks of ``n_series`` whole series (ids contiguous, checked)."""
    seen: dict[Hashable, int] = {}  # id of every complete series → its first row
    pending: list[pd.DataFrame] = []  # complete series not handed out yet, in order
    pending_starts: list[np.ndarray] = []  # their series' first rows (positions in the file)
    tail: _Block | None = None  # rows of the last series read, which may go on
    number = series_before = rows_before = 0

    def flush(final: bool) -> Iterator[SeriesChunk]:
        nonlocal pending, pending_starts, number, series_before, rows_before
        starts = np.concatenate(pending_starts) if pending_starts else np.zeros(0, np.int64)
        if starts.size == 0 or (starts.size < n_series and not final):
            return
        frame = pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0]
        offsets = starts - starts[0]  # series' first rows within ``frame``
        while offsets.size >= n_series or (final and offsets.size):
            cut = int(offsets[n_series]) if offsets.size > n_series else len(frame)
            piece = frame.iloc[:cut].reset_index(drop=True)
            first = rows_before
            number += 1
            yield SeriesChunk(
                piece,
                number,
                source.describe(int(starts[0]), int(starts[0]) + cut - 1),
                series_before,
                rows_before,
            )
            series_before += min(n_series, offsets.size)
            rows_before = first + cut
            frame = frame.iloc[cut:]
            starts, offsets = starts[n_series:], offsets[n_series:] - cut
        pending = [frame] if len(frame) else []
        pending_starts = [starts] if starts.size else []

    for block in blocks:
        if not len(block.frame):
            continue
        refuse_missing_ids(
            block.frame[id_col], id_col, source.path, source.where, block.start, counted=False
        )
        if tail is not None:
            block = _Block(pd.concat([tail.frame, block.frame], ignore_index=True), tail.start)
        ids = block.frame[id_col].to_numpy()
        new = np.ones(len(ids), dtype=bool)
        new[1:] = ids[1:] != ids[:-1]
        firsts = np.flatnonzero(new)  # (series in the block,) first row of each run
        _check_contiguous(ids[firsts], block.start + firsts, seen, source, id_col)
        last = int(firsts[-1])
        if last:  # every run but the last is complete
            pending.append(block.frame.iloc[:last])
            pending_starts.append(block.start + firsts[:-1])
            done = firsts[:-1]
            seen.update(zip(ids[done].tolist(), (block.start + done).tolist(), strict=True))
        tail = _Block(block.frame.iloc[last:].reset_index(drop=True), block.start + last)
        yield from flush(final=False)
    if tail is None:
        raise ValueError(
            f"{str(source.path)!r} holds no rows; give a table with at least one series"
        )
    pending.append(tail.frame)
    pending_starts.append(np.array([tail.start]))
    yield from flush(final=True)


def _check_contiguous(
    run_ids: np.ndarray,
    run_starts: np.ndarray,
    seen: dict[Hashable, int],
    source: Any,
    id_col: str,
) -> None:
    """Refuse an id whose rows were interrupted by another series' rows."""
    earlier = {}
    for sid, row in zip(run_ids.tolist(), run_starts.tolist(), strict=True):
        before = seen.get(sid, earlier.get(sid))
        if before is not None:
            whole = "" if source.path.is_dir() else ", or read it whole (without --chunk-series)"
            raise ValueError(
                f"the rows of each series must be contiguous to be read in chunks; series "
                f"{sid!r} (id column {id_col!r}) starts at {source.where(before)} and comes "
                f"back at {source.where(row)} after other series. Sort the table by id (a "
                "stable sort keeps each series' rows in order), or write it as a Parquet "
                f"dataset partitioned by id (df.to_parquet(folder, partition_cols=[{id_col!r}]))"
                f"{whole}"
            )
        earlier[sid] = row


class TableWriter:
    """Frames appended to one ``.csv`` or ``.parquet`` file, put in place at the end.

    Rows go to a temporary file beside ``path``, renamed over it when the ``with`` block ends
    without an error (and removed when it ends with one), so a crash never leaves half a table
    under the final name. A CSV gets its header once; a Parquet file a row group per frame, with
    the first frame's schema (later frames are cast to it).

    Example:
        >>> with TableWriter("pred.csv") as out:  # doctest: +SKIP
        ...     for chunk in chunks:
        ...         out.write(predict(chunk))
    """

    def __init__(self, path: str | Path, *, overwrite: bool = False) -> None:
        self.path = check_output_path(path, overwrite=overwrite)
        self.rows = 0
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self._file: Any = None
        self._columns: list[str] | None = None
        self._schema: Any = None
        self._write: Callable[[pd.DataFrame], None] = (
            self._write_csv if self.path.suffix.lower() == ".csv" else self._write_parquet
        )

    def __enter__(self) -> TableWriter:
        return self

    def write(self, frame: pd.DataFrame) -> None:
        """Append ``frame``; every frame must have the first frame's columns."""
        if self._columns is None:
            self._columns = list(frame.columns)
        elif list(frame.columns) != self._columns:
            raise ValueError(
                f"every frame written to {str(self.path)!r} must have the columns "
                f"{self._columns}; got {list(frame.columns)}"
            )
        self._write(frame)
        self.rows += len(frame)

    def _write_csv(self, frame: pd.DataFrame) -> None:
        if self._file is None:
            self._file = open(self._tmp, "w", encoding="utf-8", newline="")  # noqa: SIM115
            frame.to_csv(self._file, index=False)
        else:
            frame.to_csv(self._file, index=False, header=False)

    def _write_parquet(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._file is None:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            self._schema = table.schema
            self._file = pq.ParquetWriter(self._tmp, self._schema)
        else:
            table = pa.Table.from_pandas(frame, schema=self._schema, preserve_index=False)
        self._file.write_table(table)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            if self._file is not None:
                self._file.close()
            if kind is None:
                if self._file is None:
                    raise ValueError(f"nothing was written to {str(self.path)!r}")
                os.replace(self._tmp, self.path)
        finally:
            self._tmp.unlink(missing_ok=True)
