"""``read_files`` and ``write_parquet`` on any fsspec URL.

Reading never loses a row: malformed NDJSON/CSV lines are returned apart in
``ReadResult.quarantine`` (file, line, raw, reason) and written as a Parquet
quarantine dataset, and ``rows_read == rows_returned + rows_quarantined``.
Writing is atomic per file and per partition.
"""

from __future__ import annotations

import json
import logging
import math
import posixpath
import tempfile
import urllib.parse
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from headrace.config import load_settings
from headrace.engine.context import current_task_run
from headrace.errors import DataFileError, DataIOError
from headrace.io import _frames
from headrace.io import fs as fsmod
from headrace.io._compressed import cut_damage, gunzip, is_compressed, strip_suffix
from headrace.io._text import Parsed, parse_csv, parse_ndjson_bytes, parse_ndjson_file
from headrace.lineage import capture

log = logging.getLogger("headrace.io")

FILE_FORMATS = ("ndjson", "csv", "parquet", "json")
_SUFFIXES = {".ndjson": "ndjson", ".jsonl": "ndjson", ".csv": "csv", ".parquet": "parquet",
             ".pq": "parquet", ".json": "json"}
QUARANTINE_SCHEMA = pa.schema([("file", pa.string()), ("line", pa.int64()),
                               ("raw", pa.large_string()), ("reason", pa.string())])


@dataclass
class ReadResult:
    """What ``read_files`` read.

    ``data``: the good rows (pandas, Arrow or Polars, per ``as_``). ``quarantine``: an Arrow
    table of the bad lines with ``file, line, raw, reason`` (line numbers count from 1 and
    include a CSV header). ``quarantine_path``: where that table was written as Parquet
    (``None`` when nothing was bad). The counts always add up:
    ``rows_read == rows_returned + rows_quarantined``.
    """

    data: Any
    files: list[str]
    rows_read: int
    rows_returned: int
    rows_quarantined: int
    quarantine: pa.Table
    quarantine_path: str | None = None

    def __post_init__(self) -> None:
        if self.rows_read != self.rows_returned + self.rows_quarantined:
            raise AssertionError("rows read must equal rows returned + rows quarantined")


def read_files(pattern: str, format: str | None = None, *, as_: str = "pandas",
               quarantine_path: str | None = None) -> ReadResult:
    """Read every file ``pattern`` names (a path, glob or folder; any fsspec URL).

    ``format`` is ``ndjson``, ``csv``, ``parquet`` or ``json`` (one JSON array of records per
    file); by default it follows the file suffix. Bad lines go to ``quarantine_path`` (default
    ``HEADRACE_HOME/quarantine/<run>/<id>.parquet``)::

        res = read_files("s3://raw/orders/*.ndjson")
        df, bad = res.data, res.quarantine
    """
    _frames.check_format(as_)
    fs, path = fsmod.filesystem(pattern)
    files = fsmod.expand(fs, path, pattern)
    fmt = format or _guess(files[0])
    if fmt not in FILE_FORMATS:
        raise DataIOError(f"format must be one of {', '.join(FILE_FORMATS)}, not {fmt!r}")
    if fmt == "parquet":
        table = _read_parquet(fs, files, path)
        parsed = [Parsed(table)]
    else:
        parsed = [_read_text(fs, f, fmt) for f in files]
        table = _concat([p.table for p in parsed], pattern)
    bad = _quarantine_table(fs, files, parsed) if fmt != "parquet" else QUARANTINE_SCHEMA.empty_table()
    qpath = _write_quarantine(bad, quarantine_path) if bad.num_rows else None
    rows_read = sum(p.rows_read for p in parsed)
    if bad.num_rows:
        log.warning("%s: %d of %d rows quarantined to %s", pattern, bad.num_rows, rows_read, qpath)
    frame = _frames.from_arrow(table, as_)
    capture.file_read(fsmod.protocols(fs)[0], path, _kind(fs), table, frame, rows_read)
    return ReadResult(frame, [fsmod.uri(fs, f) for f in files],
                      rows_read, table.num_rows, bad.num_rows, bad, qpath)


def _guess(path: str) -> str:
    suffix = posixpath.splitext(strip_suffix(path))[1].lower()
    if suffix not in _SUFFIXES:
        raise DataIOError(f"cannot tell the format of {path}; pass format='ndjson', 'csv', "
                          "'parquet' or 'json'")
    return _SUFFIXES[suffix]


def _kind(fs: Any) -> str:
    return "file" if fsmod.is_local(fs) else str(fsmod.protocols(fs)[0])


def _read_text(fs: Any, path: str, fmt: str) -> Parsed:
    name = fsmod.uri(fs, path)
    if fmt == "ndjson" and not is_compressed(path):
        return _read_ndjson(fs, path, name)
    try:
        with fs.open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise DataFileError(f"no such file: {name}") from None
    damaged = None
    if is_compressed(path):
        data, damaged = cut_damage(*gunzip(data, name))
    if fmt in ("ndjson", "csv"):
        parsed = parse_csv(data, name) if fmt == "csv" else parse_ndjson_bytes(data, name)
        if damaged is not None:
            parsed.bad.append(damaged)
        return parsed
    if damaged is not None:
        raise DataFileError(damaged[2])
    try:
        records = json.loads(data)
    except ValueError as exc:
        raise DataFileError(f"cannot read JSON file {name}: {exc}") from None
    records = records if isinstance(records, list) else [records]
    if not all(isinstance(r, dict) for r in records):
        raise DataFileError(f"JSON file {name} must hold an object or an array of objects")
    try:
        return Parsed(pa.Table.from_pylist(records))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataFileError(f"cannot read JSON file {name}: {exc}") from None


def _read_ndjson(fs: Any, path: str, name: str) -> Parsed:
    if fsmod.is_local(fs):
        if not fs.exists(path):
            raise DataFileError(f"no such file: {name}")
        return parse_ndjson_file(path, name)
    with tempfile.TemporaryDirectory() as tmp:  # DuckDB reads local files; fetch it once
        local = posixpath.join(tmp, "data.ndjson")
        try:
            fs.get(path, local)
        except FileNotFoundError:
            raise DataFileError(f"no such file: {name}") from None
        return parse_ndjson_file(local, name)


def _read_parquet(fs: Any, files: list[str], base: str) -> pa.Table:
    import pyarrow.dataset as ds

    root = base if fs.isdir(base) else posixpath.dirname(files[0])
    try:
        return ds.dataset(files, filesystem=fs, format="parquet", partitioning="hive",
                          partition_base_dir=root).to_table()
    except (pa.ArrowInvalid, OSError):
        for f in files:  # name the file that is broken
            try:
                with fs.open(f, "rb") as fh:
                    pq.ParquetFile(fh).schema_arrow  # noqa: B018 - reading it is the check
            except Exception as exc:
                raise DataFileError(f"cannot read Parquet file {fsmod.uri(fs, f)}: "
                                    f"{exc}") from None
        raise


def _concat(tables: list[pa.Table], pattern: str) -> pa.Table:
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataFileError(f"the files of {pattern} do not share column types: {exc}") from None


def _quarantine_table(fs: Any, files: list[str], parsed: list[Parsed]) -> pa.Table:
    cols: dict[str, list[Any]] = {"file": [], "line": [], "raw": [], "reason": []}
    for f, p in zip(files, parsed, strict=True):
        name = fsmod.uri(fs, f)
        for line, raw, reason in p.bad:
            cols["file"].append(name)
            cols["line"].append(line)
            cols["raw"].append(raw)
            cols["reason"].append(reason)
    return pa.table(cols, schema=QUARANTINE_SCHEMA)


def _write_quarantine(bad: pa.Table, path: str | None) -> str:
    if path is None:
        ctx = current_task_run()
        run = (ctx.flow_run_id or ctx.task_run_id) if ctx else "adhoc"
        home = load_settings().home / "quarantine" / str(run)
        path = str(home / f"{uuid.uuid4().hex[:12]}.parquet")
    write_parquet(bad, path)
    return path


def write_parquet(df: Any, path: str, partition_by: Iterable[str] | str | None = None) -> int:
    """Write ``df`` as Parquet at ``path`` (any fsspec URL); return the rows written.

    Without ``partition_by`` the file is replaced atomically. With it, ``path`` is a folder of
    Hive partitions (``col=value/part-0.parquet``); each partition in the frame is replaced
    whole and atomically, the others are left alone.
    """
    parts = [partition_by] if isinstance(partition_by, str) else list(partition_by or [])
    table = _frames.to_arrow(df, f"Parquet {path}")
    _frames.check_columns(table, tuple(parts), "partition", f"Parquet {path}")
    fs, root = fsmod.filesystem(path)
    written = table.num_rows
    if not parts:
        _write_one(fs, root, table)
    else:
        written = 0
        for values, piece in _partitions(table, parts):
            folder = posixpath.join(root, *(_segment(c, v) for c, v in zip(parts, values,
                                                                             strict=True)))
            _replace_partition(fs, folder, piece.drop_columns(parts))
            written += piece.num_rows
        if written != table.num_rows:  # every row has exactly one partition
            raise DataIOError(f"Parquet {path}: wrote {written} of {table.num_rows} rows")
    capture.file_write(fsmod.protocols(fs)[0], root, _kind(fs), table, df, written, table.nbytes)
    return written


def _write_one(fs: Any, path: str, table: pa.Table) -> None:
    def write(f: Any) -> None:
        pq.write_table(table, f)

    fsmod.atomic_write(fs, path, write)


def _replace_partition(fs: Any, folder: str, table: pa.Table) -> None:
    target = posixpath.join(folder, "part-0.parquet")
    _write_one(fs, target, table)
    # Files another writer left in this partition would make it more than the frame's rows.
    for other in fs.find(folder):
        if other.rstrip("/") != target and not fsmod.hidden(other):
            fs.rm(other)


def _segment(column: str, value: Any) -> str:
    """``column=value`` as Hive writes it: null is ``__HIVE_DEFAULT_PARTITION__``, NaN ``NaN``."""
    if value is None:
        return f"{column}=__HIVE_DEFAULT_PARTITION__"
    if isinstance(value, float) and math.isnan(value):
        return f"{column}=NaN"
    return f"{column}={urllib.parse.quote(str(value), safe='')}"


def _partitions(table: pa.Table, parts: list[str]) -> Iterable[tuple[tuple[Any, ...], pa.Table]]:
    keys = table.select(parts).group_by(parts).aggregate([]).to_pylist()
    for key in keys:
        mask = None
        for col in parts:
            v = key[col]
            if v is None:
                m = pc.is_null(table[col])
            elif isinstance(v, float) and math.isnan(v):  # NaN equals nothing, not even NaN
                m = pc.fill_null(pc.is_nan(table[col]), False)
            else:
                m = pc.fill_null(pc.equal(table[col], v), False)
            mask = m if mask is None else pc.and_(mask, m)
        yield tuple(key[c] for c in parts), table.filter(mask)


