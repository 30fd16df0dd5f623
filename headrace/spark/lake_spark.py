"""The lake job on Apache Spark: the same rows, reasons and counters as the DuckDB engine.

Spark's JSON reader is not strict (single quotes, text after an object, two objects on a line
and duplicate keys all pass), and its text reader turns invalid UTF-8 into U+FFFD. So the
Spark engine reads each file's raw lines itself, in Spark tasks, and types them with the very
query the DuckDB engine runs (``lakesql.typed_select``: the strict record contract and the row
rules), inside each task on a batch of lines (``mapInArrow``). The two engines therefore
classify every line the same way by construction; Spark distributes the work (one task per
gzip file, per ``CHUNK_BYTES`` of a plain file), writes the Parquet, and counts.

Why DuckDB inside the tasks: on 2 cores the typing of 200,000 lines in the tasks took 1.9 s
of a 4-5 s job (the rest is Spark's scheduling, cache and write); a second, Python
implementation of the contract would be slower and one more thing to keep equal, and Spark's
own ``from_json`` cannot see duplicate keys, text after the object or invalid UTF-8.

The job's staging folder must be visible to every executor: a local target on ``local[*]``
(or on a folder every node mounts); see :func:`check_cluster_target`.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import re
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from headrace.io._compressed import is_compressed
from headrace.spark import reasons as R
from headrace.spark.lakefiles import LakeFile, local_copy, open_lake, staging_dir
from headrace.spark.lakespec import ARROW_TYPES, LakeJobError, LakeResult, LakeSpec
from headrace.spark.lakesql import MASK_BITS, is_strict_json, typed_select
from headrace.spark.progress import LakeProgress
from headrace.spark.publish import NULL_PARTITION, publish

log = logging.getLogger("headrace.spark")

CHUNK_BYTES = 64 * 1024 * 1024   # a plain file is read by one task per this many bytes
BATCH_LINES = 100_000            # lines typed by one DuckDB query inside a task
LIVE_EVERY = 0.5                 # seconds between two looks at the running tasks' totals
_SPARK_TYPES = {"int64": "bigint", "float64": "double", "string": "string", "bool": "boolean",
                "date": "date", "timestamp": "timestamp"}


@dataclass(frozen=True)
class Piece:
    """What one Spark task reads: a whole file, or the lines that start in ``[start, end)``."""

    no: int
    file: LakeFile
    start: int = 0
    end: int | None = None      # None: to the end of the file

    @property
    def last(self) -> bool:
        return self.end is None or self.end >= self.file.size


def plan(files: list[LakeFile], chunk: int | None = None) -> list[Piece]:
    """The pieces of the lake: compressed files whole, plain files in ``chunk``-byte ranges."""
    chunk = chunk or CHUNK_BYTES
    pieces = []
    for no, f in enumerate(files):
        if is_compressed(f.path) or f.size <= chunk:
            pieces.append(Piece(no, f))
            continue
        for start in range(0, f.size, chunk):
            pieces.append(Piece(no, f, start, min(start + chunk, f.size)))
    return pieces


def arrow_schema(types: dict[str, str]) -> pa.Schema:
    """What a task yields: the typed fields, the reason, the raw line, the missing-field masks,
    the source file."""
    masks = (len(types) + MASK_BITS - 1) // MASK_BITS
    return pa.schema([*((n, ARROW_TYPES[t]) for n, t in types.items()), ("__hr_reason", pa.string()),
                      ("__hr_raw", pa.string()), *((f"__hr_miss{i}", pa.int64()) for i in range(masks)),
                      ("__hr_source", pa.string())])


def _spark_ddl(schema: pa.Schema, types: dict[str, str]) -> str:
    def quote(name: str) -> str:
        return "`" + name.replace("`", "``") + "`"
    cols = [quote(f.name) + " " + (_SPARK_TYPES[types[f.name]] if f.name in types else
                                   "bigint" if pa.types.is_integer(f.type) else "string") for f in schema]
    return ", ".join(cols)


class _Counters:
    """Live totals from the tasks (Spark accumulators), for the progress display only: the
    final counters come from the rows themselves."""

    def __init__(self, sc: Any) -> None:
        self.bytes, self.rows, self.files = sc.accumulator(0), sc.accumulator(0), sc.accumulator(0)


class PieceReader:
    """The function each Spark task runs (``mapInArrow``): piece ids in, typed rows out.

    It holds only picklable values: the pieces, the SQL text and its bound parameters.
    """

    def __init__(self, job: LakeSpec, pieces: list[Piece], counters: _Counters) -> None:
        self.pieces = pieces
        self.schema = arrow_schema(job.types)
        self.sql, self.params = typed_select(job.types, job.checks, "SELECT __hr_line, __hr_file FROM __hr_chunk")
        self.masks = (len(job.types) + MASK_BITS - 1) // MASK_BITS
        self.counters = counters

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import duckdb

        # One thread: a task has one core. Without the ICU extension (never downloaded) DuckDB reads
        # a timestamp without offset as UTC, as the DuckDB engine does.
        con = duckdb.connect(config={"threads": 1})
        try:
            for batch in batches:
                for no in batch.column(0).to_pylist():
                    yield from self._piece(con, self.pieces[no])
        finally:
            con.close()

    def _piece(self, con: Any, piece: Piece) -> Iterator[pa.RecordBatch]:
        with tempfile.TemporaryDirectory(prefix="headrace-spark-") as work:
            if is_compressed(piece.file.path):
                with local_copy(piece.file, work) as (local, damage):
                    with open(local, "rb") as fh:
                        yield from self._typed(con, piece, _lines(fh, 0, None))
                    if damage is not None:
                        yield self._bad(piece, [(damage[0], damage[1])])
            else:
                with _open(piece.file) as fh:
                    yield from self._typed(con, piece, _lines(fh, piece.start, piece.end))
        self.counters.bytes.add((piece.end or piece.file.size) - piece.start)
        self.counters.files.add(1 if piece.last else 0)

    def _typed(self, con: Any, piece: Piece, lines: Iterator[bytes]) -> Iterator[pa.RecordBatch]:
        good: list[str] = []
        bad: list[tuple[str, str]] = []
        for raw in lines:
            try:
                good.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                bad.append((raw.decode("utf-8", errors="replace"), R.INVALID_UTF8))
            if len(good) + len(bad) >= BATCH_LINES:
                yield from self._flush(con, piece, good, bad)
                good, bad = [], []
        yield from self._flush(con, piece, good, bad)

    def _flush(self, con: Any, piece: Piece, good: list[str], bad: list[tuple[str, str]]) -> Iterator[pa.RecordBatch]:
        if bad:
            self.counters.rows.add(len(bad))
            yield self._bad(piece, bad)
        if not good:
            return
        con.register("__hr_chunk", pa.table({"__hr_line": pa.array(good, pa.string()),
                                             "__hr_file": pa.array([piece.no] * len(good), pa.int32())}))
        try:
            table = con.sql(self.sql, params=self.params).to_arrow_table()
        finally:
            con.unregister("__hr_chunk")
        self.counters.rows.add(table.num_rows)
        table = settle_suspects(table.drop_columns(["__hr_file"]))
        source = pa.array([piece.file.uri] * table.num_rows, pa.string())
        table = table.append_column("__hr_source", source).cast(self.schema)
        yield from table.to_batches()

    def _bad(self, piece: Piece, rows: list[tuple[str, str]]) -> pa.RecordBatch:
        n = len(rows)
        cols = {f.name: pa.nulls(n, f.type) for f in self.schema}
        cols["__hr_raw"] = pa.array([r[0] for r in rows], pa.string())
        cols["__hr_reason"] = pa.array([r[1] for r in rows], pa.string())
        for i in range(self.masks):
            cols[f"__hr_miss{i}"] = pa.array([0] * n, pa.int64())
        cols["__hr_source"] = pa.array([piece.file.uri] * n, pa.string())
        return pa.RecordBatch.from_pydict(cols, schema=self.schema)


def settle_suspects(table: pa.Table) -> pa.Table:
    """The DuckDB engine's last word on lines its parser read with NaN/Infinity in them (``__hr_suspect``):
    invalid JSON unless Python's strict parser takes them; a good one keeps no raw line."""
    suspect = table.column("__hr_suspect")
    table = table.drop_columns(["__hr_suspect"])
    rows = pc.indices_nonzero(pc.fill_null(suspect, False)).to_pylist()
    if not rows:
        return table
    reasons = table.column("__hr_reason").to_pylist()
    raws = table.column("__hr_raw").to_pylist()
    for i in rows:
        if not is_strict_json(raws[i]):
            reasons[i] = R.INVALID_JSON
        elif reasons[i] is None:
            raws[i] = None
    table = table.set_column(table.schema.get_field_index("__hr_reason"), "__hr_reason", pa.array(reasons, pa.string()))
    return table.set_column(table.schema.get_field_index("__hr_raw"), "__hr_raw", pa.array(raws, pa.string()))


def _open(f: LakeFile) -> Any:
    from headrace.io import fs as fsmod

    return open(f.path, "rb") if fsmod.is_local(f.fs) else f.fs.open(f.path, "rb", block_size=8 * 1024 * 1024)


def _lines(fh: Any, start: int, end: int | None) -> Iterator[bytes]:
    """The lines that start in ``[start, end)``, without their line ending; blank lines are left
    to the typing query (it skips them, as the DuckDB engine does)."""
    pos = start
    if start > 0:
        fh.seek(start - 1)
        pos = start - 1 + len(fh.readline())     # the line in progress at ``start`` is the previous piece's
    while end is None or pos < end:
        raw = fh.readline()
        if not raw:
            return
        pos += len(raw)
        yield raw.rstrip(b"\n").rstrip(b"\r")


def check_cluster_target(job: LakeSpec, master: str) -> None:
    """Executors write the staged output: on a cluster, the target must be a shared folder."""
    from headrace.io import fs as fsmod

    fs, _ = fsmod.filesystem(job.target)
    if not master.startswith("local") and not fsmod.is_local(fs):
        raise LakeJobError(f"engine='spark' on {master} writes its staged output where every executor can "
                           f"reach it; {job.target} is not a local path. Use a folder every node mounts, "
                           "or engine='duckdb' for object-store targets")


def run_spark(job: LakeSpec, progress: LakeProgress) -> LakeResult:
    """Run ``job`` on Spark (see ``headrace.spark.lake`` for the contract both engines follow)."""
    from headrace.spark.session import master_from, spark_session

    files, result = open_lake(job, "spark", progress)
    if not files:
        return result
    master = master_from(job.spark_master)
    check_cluster_target(job, master)
    spark = spark_session(master)
    counters = _Counters(spark.sparkContext)
    typed = _typed_frame(spark, job, plan(files), counters)
    with _Live(progress, counters), staging_dir(job.target) as stage:
        typed.persist()
        try:
            started = time.perf_counter()
            with _task_errors(job):
                _write_staged(job, typed, stage)
                staged = time.perf_counter()
                _count(job, typed, files, result)
            counted = time.perf_counter()
        finally:
            typed.unpersist()
        out = publish(stage, job.target, job.partition_by, str(job.quarantine), [f.uri for f in files])
        log.debug("%s on Spark: typed and staged %.2f s, counted %.2f s, published %.2f s", job.name,
                  staged - started, counted - staged, time.perf_counter() - counted)
    result.bytes_written, result.partitions, result.quarantine_files = (
        out.bytes_written, out.partitions, out.quarantine_files)
    return result


@contextlib.contextmanager
def _task_errors(job: LakeSpec) -> Iterator[None]:
    """A failed Spark job as one line naming the cause (a task's Python error, or Spark's own),
    not pages of JVM stack; nothing is published when the job fails."""
    try:
        yield
    except Exception as exc:
        if not type(exc).__module__.startswith(("pyspark", "py4j")):
            raise
        raise LakeJobError(f"{job.name} failed on Spark: {task_error(str(exc))}") from exc


def task_error(text: str) -> str:
    """The line that says what went wrong in a Spark error's text: the last line of a Python
    task's traceback (``DataFileError: lake file ... vanished``), else Spark's first line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    python = [ln for ln in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b.*:", ln)
              and not ln.startswith(("org.", "java.", "py4j.", "scala.", "pyspark.errors"))]
    return (python[-1] if python else lines[0] if lines else "unknown error")[:500]


def _typed_frame(spark: Any, job: LakeSpec, pieces: list[Piece], counters: _Counters) -> Any:
    """The lake's lines as typed rows with their reason: one Spark task per piece."""
    reader = PieceReader(job, pieces, counters)
    ids = spark.range(len(pieces), numPartitions=len(pieces))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
        return ids.mapInArrow(reader, _spark_ddl(reader.schema, job.types))


def _write_staged(job: LakeSpec, typed: Any, stage: str) -> None:
    """Good rows Hive-partitioned by the hex of each partition value's text; bad rows apart
    (the layout ``publish`` expects)."""
    from pyspark.sql import functions as F

    parts = list(job.partition_by)
    good = typed.where(F.col("__hr_reason").isNull())
    keys = [F.hex(F.coalesce(F.col(c).cast("string"), F.lit(NULL_PARTITION))).alias(f"__hr_p{i}")
            for i, c in enumerate(parts)]
    good = good.select(*[F.col(n) for n in job.types if n not in parts], *keys)
    if parts:
        # Each partition's rows to one task: one file per partition, not one per (piece, partition).
        by = [f"__hr_p{i}" for i in range(len(parts))]
        # As many writers as read tasks (not spark.sql.shuffle.partitions, 200 by default).
        tasks = typed.rdd.getNumPartitions()
        writer = good.repartition(tasks, *by).write.mode("overwrite").partitionBy(*by)
    else:
        writer = good.write.mode("overwrite")
    writer.parquet(os.path.join(stage, "good"))
    bad = typed.where(F.col("__hr_reason").isNotNull()).select(
        F.col("__hr_source").alias("source_file"), F.col("__hr_raw").alias("raw"), F.col("__hr_reason").alias("reason"))
    bad.write.mode("overwrite").parquet(os.path.join(stage, "bad"))


def _count(job: LakeSpec, typed: Any, files: list[LakeFile], result: LakeResult) -> None:
    from pyspark.sql import functions as F

    names = list(job.types)
    is_good = F.col("__hr_reason").isNull()
    missing = [F.sum(F.when(is_good & ((F.col(f"__hr_miss{k // MASK_BITS}").bitwiseAND(F.lit(1 << (k % MASK_BITS))))
                                       != 0), 1).otherwise(0)) for k in range(len(names))]
    row = typed.agg(F.count(F.lit(1)), F.count("__hr_reason"),
                    F.coalesce(F.sum(F.octet_length("__hr_raw")), F.lit(0)), *missing).collect()[0]
    result.files_read = len(files)
    result.bytes_read = sum(f.size for f in files)
    result.rows_read, result.bad_rows, result.bad_bytes = int(row[0]), int(row[1]), int(row[2])
    result.good_rows = result.rows_read - result.bad_rows
    result.missing = {n: int(c) for n, c in zip(names, row[3:], strict=True) if c}


class _Live:
    """Shows the tasks' running totals every half second while the Spark job runs."""

    def __init__(self, progress: LakeProgress, counters: _Counters) -> None:
        self.progress, self.counters, self.every = progress, counters, LIVE_EVERY
        self._stop = threading.Event()
        # The run's context (flow and task run) goes with the thread, so its metrics are recorded.
        ctx = contextvars.copy_context()
        self._thread = threading.Thread(target=ctx.run, args=(self._loop,), name="headrace-lake-progress",
                                        daemon=True)

    def __enter__(self) -> _Live:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            c = self.counters
            self.progress.update(files_read=c.files.value, bytes_read=c.bytes.value, rows_read=c.rows.value)
