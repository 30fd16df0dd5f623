"""The lake job on DuckDB: one typed read per file into a staging table, then one write per output.

Memory stays bounded by DuckDB's ``memory_limit``: each file streams through the typed read
(``lakesql.typed_select``) into a staging table that spills to a temporary folder, and the
outputs are written by streaming ``COPY`` statements. A file DuckDB's line reader refuses
(invalid UTF-8, a control character it splits on) is read line by line in Python, in chunks,
and the same query runs on those lines; a line that is not UTF-8 is quarantined there.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pyarrow as pa

from headrace.spark import reasons as R
from headrace.spark.lakefiles import LakeFile, local_copy, open_lake, staging_dir
from headrace.spark.lakespec import LakeResult, LakeSpec
from headrace.spark.lakesql import MASK_BITS, SQL_TYPES, is_strict_json, typed_select
from headrace.spark.progress import LakeProgress
from headrace.spark.publish import NULL_PARTITION, publish

log = logging.getLogger("headrace.spark")

_LINES = ("SELECT line AS __hr_line, CAST(list_position($paths, filename) - 1 + $first AS INTEGER) AS __hr_file "
          "FROM read_csv($paths, columns={'line': 'VARCHAR'}, delim=chr(31), quote='', escape='', header=false, "
          "auto_detect=false, new_line='\\n', filename=true)")
# Files are read in batches of about this many bytes, one query each: one query over several
# files measured about a quarter cheaper than a query per file; the counters move per batch.
BATCH_BYTES = 256 << 20
_CHUNK_LINES = 100_000
_INSERT = "INSERT INTO __hr_staged "  # + a typed_select(...) statement (identifiers quoted, values bound)


def run_duckdb(job: LakeSpec, progress: LakeProgress) -> LakeResult:
    """Run ``job`` on DuckDB (see ``headrace.spark.lake`` for the contract)."""
    import duckdb

    files, result = open_lake(job, "duckdb", progress)
    if not files:
        return result
    with tempfile.TemporaryDirectory(prefix="headrace-duckdb-") as work:
        con = duckdb.connect(config=_config(job, work))
        try:
            _create_staging(con, job)
            for first, batch in _batches(files):
                _load_batch(con, job, first, batch, work)
                _count_files(con, first, batch, result)
                progress.update(**{k: getattr(result, k) for k in ("files_read", "bytes_read", "rows_read",
                                                                     "good_rows", "bad_rows", "bad_bytes")})
            result.missing = _missing(con, job)
            with staging_dir(job.target) as stage:
                _write_outputs(con, job, files, stage)
                out = publish(stage, job.target, job.partition_by, str(job.quarantine), [f.uri for f in files])
        finally:
            con.close()
    result.bytes_written, result.partitions, result.quarantine_files = (
        out.bytes_written, out.partitions, out.quarantine_files)
    return result


def _config(job: LakeSpec, work: str) -> dict[str, Any]:
    config: dict[str, Any] = {"temp_directory": os.path.join(work, "spill"), "preserve_insertion_order": False}
    if job.memory_limit:
        config["memory_limit"] = job.memory_limit
    if job.threads:
        config["threads"] = job.threads
    return config


def _create_staging(con: Any, job: LakeSpec) -> None:
    from headrace.quality.backends.sqltext import quote

    cols = [f"{quote(n)} {SQL_TYPES[t]}" for n, t in job.types.items()]
    masks = [f"__hr_miss{i} BIGINT" for i in range(_masks(job))]
    con.execute("CREATE TABLE __hr_staged (" + ", ".join(
        [*cols, "__hr_reason VARCHAR", "__hr_raw VARCHAR", *masks, "__hr_suspect BOOLEAN", "__hr_file INTEGER"]) + ")")


def _masks(job: LakeSpec) -> int:
    return (len(job.types) + MASK_BITS - 1) // MASK_BITS


def _batches(files: list[LakeFile]) -> Iterator[tuple[int, list[LakeFile]]]:
    """(number of the first file, files) in order, each batch about ``BATCH_BYTES`` or one file."""
    start, size = 0, 0
    for i, f in enumerate(files):
        if i > start and size + f.size > BATCH_BYTES:
            yield start, files[start:i]
            start, size = i, 0
        size += f.size
    if start < len(files):
        yield start, files[start:]


def _load_batch(con: Any, job: LakeSpec, first: int, batch: list[LakeFile], work: str) -> None:
    import duckdb

    with ExitStack() as stack:
        copies = [stack.enter_context(local_copy(f, work)) for f in batch]
        sql, params = typed_select(job.types, job.checks, _LINES)
        try:
            con.execute(_INSERT + sql, {**params, "paths": [c[0] for c in copies], "first": first})
        except duckdb.InvalidInputException:  # a file it cannot read as lines; nothing of the batch is staged
            for no, (f, (local, _)) in enumerate(zip(batch, copies, strict=True), start=first):
                _load_file(con, job, no, f, local)
        for no, (_, damage) in enumerate(copies, start=first):
            if damage is not None:
                _insert_bad(con, job, no, [(damage[0], damage[1])])
    _settle_suspects(con, first, first + len(batch) - 1)


def _load_file(con: Any, job: LakeSpec, no: int, f: LakeFile, local: str) -> None:
    import duckdb

    sql, params = typed_select(job.types, job.checks, _LINES)
    try:
        con.execute(_INSERT + sql, {**params, "paths": [local], "first": no})
    except duckdb.InvalidInputException as exc:  # invalid UTF-8, a line it would cut in two
        log.info("%s: DuckDB's line reader refused it (%s); reading its lines in Python",
                 f.uri, str(exc).splitlines()[0])
        _load_lines_in_python(con, job, no, local)


def _settle_suspects(con: Any, lo: int, hi: int) -> None:
    """Lines DuckDB parsed with NaN/Infinity in them are invalid JSON; the others keep their verdict."""
    rows = con.execute("SELECT rowid, __hr_raw FROM __hr_staged WHERE __hr_file BETWEEN $1 AND $2 AND "
                       "__hr_suspect", [lo, hi]).fetchall()
    invalid = [[R.INVALID_JSON, rowid] for rowid, raw in rows if not is_strict_json(raw)]
    if invalid:
        con.executemany("UPDATE __hr_staged SET __hr_reason = $1 WHERE rowid = $2", invalid)
    if rows:
        con.execute("UPDATE __hr_staged SET __hr_raw = NULL, __hr_suspect = false "
                    "WHERE __hr_file BETWEEN $1 AND $2 AND __hr_suspect AND __hr_reason IS NULL", [lo, hi])


def _load_lines_in_python(con: Any, job: LakeSpec, no: int, local: str) -> None:
    chunk_lines = "SELECT __hr_line, CAST($file AS INTEGER) AS __hr_file FROM __hr_chunk"
    sql, params = typed_select(job.types, job.checks, chunk_lines)
    insert, params = _INSERT + sql, {**params, "file": no}
    for lines, bad in _chunks(local):
        if bad:
            _insert_bad(con, job, no, bad)
        chunk = pa.table({"__hr_line": pa.array(lines, pa.string())})  # noqa: F841 - DuckDB reads it by name
        con.register("__hr_chunk", chunk)
        try:
            con.execute(insert, params)
        finally:
            con.unregister("__hr_chunk")


def _chunks(local: str) -> Any:
    """Lines of the file in chunks: ``(valid UTF-8 lines, [(raw, reason) of the others])``."""
    lines: list[str] = []
    bad: list[tuple[str, str]] = []
    with open(local, "rb") as fh:
        for raw in fh:
            raw = raw.rstrip(b"\n").rstrip(b"\r")
            try:
                lines.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                bad.append((raw.decode("utf-8", errors="replace"), R.INVALID_UTF8))
            if len(lines) + len(bad) >= _CHUNK_LINES:
                yield lines, bad
                lines, bad = [], []
    yield lines, bad


def _insert_bad(con: Any, job: LakeSpec, no: int, rows: list[tuple[str, str]]) -> None:
    # typed columns null, the raw line and its reason, no rule failed, not suspect, the file's number
    values = ["NULL"] * len(job.types) + ["$2", "$1"] + ["0"] * _masks(job) + ["false", "$3"]
    con.executemany("INSERT INTO __hr_staged VALUES (" + ", ".join(values) + ")", [[*r, no] for r in rows])


def _count_files(con: Any, first: int, batch: list[LakeFile], result: LakeResult) -> None:
    counts = {no: (rows, bad, bad_bytes) for no, rows, bad, bad_bytes in con.execute(
        "SELECT __hr_file, count(*), count(__hr_reason), coalesce(sum(octet_length(encode(__hr_raw))), 0) "
        "FROM __hr_staged WHERE __hr_file BETWEEN $1 AND $2 GROUP BY __hr_file",
        [first, first + len(batch) - 1]).fetchall()}
    for no, f in enumerate(batch, start=first):
        rows, bad, bad_bytes = counts.get(no, (0, 0, 0))
        result.files_read += 1
        result.bytes_read += f.size
        result.rows_read += int(rows)
        result.bad_rows += int(bad)
        result.good_rows += int(rows) - int(bad)
        result.bad_bytes += int(bad_bytes)


def _missing(con: Any, job: LakeSpec) -> dict[str, int]:
    names = list(job.types)
    exprs = [f"count(*) FILTER (WHERE __hr_miss{k // MASK_BITS} & {1 << (k % MASK_BITS)} <> 0)"
             for k in range(len(names))]
    counts = con.execute("SELECT " + ", ".join(exprs) + " FROM __hr_staged WHERE __hr_reason IS NULL").fetchone()
    return {n: int(c) for n, c in zip(names, counts, strict=True) if c}


def _write_outputs(con: Any, job: LakeSpec, files: list[LakeFile], stage: str) -> None:
    from headrace.quality.backends.sqltext import quote

    good = os.path.join(stage, "good")
    os.makedirs(good)
    parts = list(job.partition_by)
    cols = [quote(n) for n in job.types if n not in parts]
    keys = [f"hex(CASE WHEN {quote(c)} IS NULL THEN $null ELSE CAST({quote(c)} AS VARCHAR) END) AS __hr_p{i}"
            for i, c in enumerate(parts)]
    select = "SELECT " + ", ".join(cols + keys) + " FROM __hr_staged WHERE __hr_reason IS NULL"
    if parts:
        by = ", ".join(f"__hr_p{i}" for i in range(len(parts)))
        con.execute("COPY (" + select + ") TO $dest (FORMAT parquet, PARTITION_BY (" + by + "), OVERWRITE_OR_IGNORE)",
                    {"dest": good, "null": NULL_PARTITION})
    elif con.execute("SELECT count(*) FROM __hr_staged WHERE __hr_reason IS NULL").fetchone()[0]:
        # No good row, nothing published: like a partition the run has no rows for.
        con.execute("COPY (" + select + ") TO $dest (FORMAT parquet)", {"dest": os.path.join(good, "data.parquet")})
    con.execute("CREATE TEMP TABLE __hr_files (no INTEGER, uri VARCHAR)")
    con.executemany("INSERT INTO __hr_files VALUES ($1, $2)", [[i, f.uri] for i, f in enumerate(files)])
    bad = os.path.join(stage, "bad")
    os.makedirs(bad)
    con.execute("COPY (SELECT f.uri AS source_file, s.__hr_raw AS raw, s.__hr_reason AS reason FROM __hr_staged s "
                "JOIN __hr_files f ON f.no = s.__hr_file WHERE s.__hr_reason IS NOT NULL) TO $dest (FORMAT parquet)",
                {"dest": os.path.join(bad, "bad.parquet")})
