"""The lake-to-warehouse job: raw NDJSON in a lake, clean partitioned Parquet out, bad rows kept.

    job = LakeJob(source="s3://lake/raw/*.json",
                  schema={"order_id": "int64", "customer_id": "int64", "quantity": "int64",
                          "price": "float64", "date": "date", "at": "timestamp"},
                  rules=[expect.column_values_to_not_be_null("customer_id"),
                         expect.column_values_to_be_between("quantity", min_value=0)],
                  target="s3://warehouse/sales/", partition_by=["date"],
                  quarantine="s3://warehouse/_quarantine/sales/")
    result = job.run()       # engine="duckdb" (default) or "spark"

The contract both engines follow (``engine="spark"`` runs ``headrace.spark.lake_spark.run_spark``):

* **Input**: every file ``source`` names (a path, glob or folder; any fsspec URL, ``s3://`` too;
  ``.gz`` files are decompressed), one JSON object per line. Blank lines are skipped and not
  counted. Keys outside the schema are ignored; a schema field missing from a record is null
  and counted in ``LakeResult.missing``.
* **Types** (``schema``: a ``pyarrow.Schema`` or ``{field: type name}``): ``int64`` takes JSON
  integers that fit 64 bits; ``float64`` JSON numbers (an integer beyond 2**53 is bad);
  ``string`` JSON strings; ``bool`` true/false; ``date`` a string ``YYYY-MM-DD``; ``timestamp``
  a string ``YYYY-MM-DD[T ]HH:MM[:SS[.ffffff]]`` with an optional ``Z``/``+HH:MM`` offset
  (no offset means UTC), stored as ``timestamp[us, tz=UTC]``. No cast between kinds ("5" is
  not 5, 2.5 is not 3), JSON null is null.
* **Bad rows** (``headrace.spark.reasons`` lists the reasons and their order) go to the
  quarantine folder as Parquet with ``QUARANTINE_SCHEMA``: ``source_file`` (the file's full
  URL), ``raw`` (the line; invalid UTF-8 bytes shown as U+FFFD) and ``reason``. One file per
  source file with bad rows: ``<quarantine>/<quarantine_file_name(source_file)>``.
* **Rules**: a ``Suite`` or a list of expectations; only row-level ones (not null, between,
  in set, regex, like, lengths, pair comparisons...), applied to the typed row.
* **Good rows** go to ``target`` as Parquet, Hive-partitioned by ``partition_by``
  (``col=value/part-0.parquet``; null is ``__HIVE_DEFAULT_PARTITION__``), without the
  partition columns in the files. Each partition is published whole by one atomic replace of
  its ``part-0.parquet``, other data files in it are removed: a rerun replaces, never
  duplicates; partitions the run has no good rows for are left alone (without
  ``partition_by`` the target is one partition). ``publish`` does this.
* **Counters** (``LakeResult``, and run metrics ``lake_<counter>`` updated while the job runs
  through ``LakeProgress``): ``files_read``, ``bytes_read`` (file sizes as stored),
  ``rows_read == good_rows + bad_rows``, ``bad_bytes`` (UTF-8 bytes of the bad lines, without
  the newline), ``bytes_written`` (Parquet bytes of the good rows published), and the backlog
  (bytes of the files not yet read). ``LakeResult.missing`` counts, per schema field, the good
  rows whose record lacked the key.

**An engine** is ``run(job, progress) -> LakeResult`` (``engine_runner``); the Spark one is
``headrace.spark.lake_spark.run_spark(job: LakeJob, progress: LakeProgress) -> LakeResult``.
It reads ``job.types`` (``{field: type name}``), ``job.checks`` (the row-level expectations),
``job.partition_by``, ``job.target``, ``job.quarantine``; lists the input with
``lakefiles.list_files(job.sources)`` (and ``lakefiles.local_copy`` for gzip damage), calls
``lakefiles.check_writable`` on target and quarantine before reading, ``progress.start(files,
total_bytes)`` then ``progress.update(files_read=..., ...)`` as it goes; stages its output in
``lakefiles.staging_dir(job.target)`` as ``headrace.spark.publish`` describes and publishes it
with ``publish.publish(stage, job.target, job.partition_by, job.quarantine, [f.uri ...])``;
and returns a ``LakeResult(engine=..., files=..., partitions=..., quarantine_files=...)``.
``LakeJob.run`` records the metrics' last values and the datasets read and written.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from headrace.errors import ConfigError, DataIOError, QualityError
from headrace.spark.progress import LakeProgress

log = logging.getLogger("headrace.spark")

ENGINES = ("duckdb", "spark")
TYPE_NAMES = ("int64", "float64", "string", "bool", "date", "timestamp")
ARROW_TYPES: dict[str, pa.DataType] = {
    "int64": pa.int64(), "float64": pa.float64(), "string": pa.string(), "bool": pa.bool_(),
    "date": pa.date32(), "timestamp": pa.timestamp("us", tz="UTC")}
QUARANTINE_SCHEMA = pa.schema([("source_file", pa.string()), ("raw", pa.string()),
                               ("reason", pa.string())])
SPARK_EXTRA = "pip install 'headrace[spark]'"


class LakeJobError(DataIOError):
    """A lake job that cannot run as declared (bad schema, rules, paths or engine)."""


@dataclass
class LakeResult:
    """What one run of a lake job read and wrote; ``rows_read == good_rows + bad_rows``."""

    files_read: int = 0
    bytes_read: int = 0
    rows_read: int = 0
    good_rows: int = 0
    bad_rows: int = 0
    bad_bytes: int = 0
    bytes_written: int = 0
    engine: str = "duckdb"
    files: list[str] = field(default_factory=list)
    partitions: list[str] = field(default_factory=list)   # partition folders published
    quarantine_files: list[str] = field(default_factory=list)
    missing: dict[str, int] = field(default_factory=dict)  # schema field -> records lacking it
    seconds: float = 0.0

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        if self.rows_read != self.good_rows + self.bad_rows:
            raise AssertionError(f"lake counters do not add up: rows_read {self.rows_read} != good "
                                 f"{self.good_rows} + bad {self.bad_rows}")


def schema_types(schema: pa.Schema | dict[str, str]) -> dict[str, str]:
    """``{field: type name}`` from a pyarrow schema or a dict of type names (checked)."""
    if isinstance(schema, pa.Schema):
        out = {}
        for f in schema:
            name = next((n for n, t in ARROW_TYPES.items() if _same_type(t, f.type)), None)
            if name is None:
                raise LakeJobError(f"schema field {f.name!r}: type {f.type} is not supported; use one of "
                                   f"{', '.join(TYPE_NAMES)}")
            out[f.name] = name
        return out
    if not isinstance(schema, dict) or not schema:
        raise LakeJobError("schema must be a pyarrow schema or a non-empty dict of field name to type name")
    for name, typ in schema.items():
        if typ not in TYPE_NAMES:
            raise LakeJobError(f"schema field {name!r}: unknown type {typ!r}; use one of {', '.join(TYPE_NAMES)}")
    return dict(schema)


def _same_type(ours: pa.DataType, theirs: pa.DataType) -> bool:
    if pa.types.is_timestamp(ours):
        return pa.types.is_timestamp(theirs)
    if pa.types.is_string(ours):
        return pa.types.is_string(theirs) or pa.types.is_large_string(theirs)
    if pa.types.is_date(ours):
        return pa.types.is_date(theirs)
    return bool(ours == theirs)


# Row-level checks that look at one row alone (a streamed job sees one file at a time).
_NOT_PER_ROW = {"unique", "compound_unique", "increasing", "decreasing", "strftime", "dateutil"}


def row_rules(rules: Any) -> list[Any]:
    """The row-level expectations of a Suite or list, checked to run one row at a time."""
    from headrace.quality import Suite

    checks = list(rules.expectations if isinstance(rules, Suite) else (rules or []))
    for e in checks:
        if not e.row_level:
            raise LakeJobError(f"rule {e.name}: a lake job applies row-level rules only; validate the "
                               "target afterwards for table and aggregate checks (Suite.validate)")
        if e.op in _NOT_PER_ROW:
            raise LakeJobError(f"rule {e.name}: {e.op} compares rows with each other (or parses in "
                               "Python) and cannot run row by row in a lake job")
        from headrace.spark.lakesql import supported_op

        if not supported_op(e):
            raise LakeJobError(f"rule {e.name}: {e.expectation_type} is not supported in a lake job")
        if e.kwargs.get("row_condition"):
            raise LakeJobError(f"rule {e.name}: row_condition is not supported in a lake job")
    return checks


def quarantine_file_name(source_file: str) -> str:
    """The quarantine file of one source file's bad rows (stable, so a rerun replaces it)."""
    return "bad-" + hashlib.sha1(source_file.encode()).hexdigest()[:16] + ".parquet"


@dataclass
class LakeJob:
    """Raw NDJSON from ``source`` to Parquet at ``target``, bad rows to ``quarantine``.

    See the module docstring for the contract. ``quarantine`` defaults to
    ``<target>/_quarantine`` (readers skip folders starting with ``_``). ``memory_limit``
    caps DuckDB (e.g. ``"1GB"``); ``spark_master`` defaults to ``HEADRACE_SPARK_MASTER``,
    else ``local[*]``. ``progress`` shows a live display (``None``: when stderr is a terminal).
    """

    source: str | Sequence[str]
    schema: pa.Schema | dict[str, str]
    rules: Any = ()
    target: str = ""
    partition_by: Sequence[str] = ()
    quarantine: str | None = None
    engine: str = "duckdb"
    spark_master: str | None = None
    name: str | None = None
    memory_limit: str | None = None
    threads: int | None = None
    progress: bool | None = None

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise LakeJobError(f"engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")
        if not self.target:
            raise LakeJobError("a lake job needs a target folder (target='s3://warehouse/sales/')")
        if isinstance(self.partition_by, str):
            self.partition_by = [self.partition_by]
        self.types = schema_types(self.schema)
        for name in self.types:
            if name.startswith("__hr_"):
                raise LakeJobError(f"schema field {name!r}: names starting with __hr_ are reserved")
        for col in self.partition_by:
            if col not in self.types:
                raise LakeJobError(f"partition_by column {col!r} is not in the schema")
            if self.types[col] in ("float64", "timestamp"):
                raise LakeJobError(f"partition_by column {col!r} is {self.types[col]}: partition by an "
                                   "int64, string, bool or date column (derive a date from a timestamp)")
        try:
            self.checks = row_rules(self.rules)
        except QualityError as exc:
            raise LakeJobError(str(exc)) from None
        for e in self.checks:
            for col in e.columns:
                if col not in self.types:
                    raise LakeJobError(f"rule {e.name}: column {col!r} is not in the schema")
        if self.quarantine is None:
            self.quarantine = self.target.rstrip("/") + "/_quarantine"
        if self.name is None:
            self.name = "lake:" + self.target.rstrip("/").rsplit("/", 1)[-1]

    @property
    def sources(self) -> list[str]:
        return [self.source] if isinstance(self.source, str) else list(self.source)

    @property
    def arrow_schema(self) -> pa.Schema:
        """The schema of the good rows (partition columns included)."""
        return pa.schema([(n, ARROW_TYPES[t]) for n, t in self.types.items()])

    def run(self, progress: bool | None = None) -> LakeResult:
        """Run the job; inside a flow (and outside a task) it runs as a task of its own."""
        from headrace.engine.context import current_flow_run, current_task_run

        if current_flow_run() is not None and current_task_run() is None:
            from headrace.engine import task

            return task(name=self.name or "lake")(self._run)(progress)  # type: ignore[no-any-return]
        return self._run(progress)

    def _run(self, progress: bool | None = None) -> LakeResult:
        show = self.progress if progress is None else progress
        started = time.perf_counter()
        with LakeProgress(self.name or "lake", show=show) as prog:
            result = engine_runner(self.engine)(self, prog)
            prog.done(result)
        result.seconds = time.perf_counter() - started
        result.check()
        _record(self, result)
        return result


def _dataset_place(where: str) -> tuple[str, str, str]:
    """(protocol, path, store kind) of a file, folder or glob as headrace.io names it."""
    from headrace.io import fs as fsmod

    fs, path = fsmod.filesystem(where)
    protocol = str(fsmod.protocols(fs)[0])
    return protocol, path, "file" if fsmod.is_local(fs) else protocol


def engine_runner(engine: str) -> Any:
    """``run(job, progress) -> LakeResult`` of an engine; a clear error when Spark is missing."""
    if engine == "duckdb":
        from headrace.spark.lake_duckdb import run_duckdb

        return run_duckdb
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise ConfigError(f"engine='spark' needs PySpark, which is not installed: {SPARK_EXTRA} "
                          "(and Java 17), or use engine='duckdb'") from None
    try:
        from headrace.spark.lake_spark import run_spark
    except ImportError as exc:
        raise ConfigError(f"engine='spark' is not available in this headrace: {exc}") from None
    return run_spark


def _record(job: LakeJob, result: LakeResult) -> None:
    """Record the job's datasets on the running task (its lineage, the store, OpenLineage): each
    source read, the Parquet table written (its schema, each column from the same field of the
    sources) and the quarantine, named by OpenLineage's rules (``file``/``s3://bucket`` + path)."""
    try:
        from headrace.lineage.capture import record_lake

        record_lake(sources=[_dataset_place(src) for src in job.sources], target=_dataset_place(job.target),
                    quarantine=_dataset_place(str(job.quarantine)) if result.bad_rows else None,
                    schema=job.arrow_schema, quarantine_schema=QUARANTINE_SCHEMA,
                    rows_read=result.rows_read, bytes_read=result.bytes_read, good_rows=result.good_rows,
                    bytes_written=result.bytes_written, bad_rows=result.bad_rows, bad_bytes=result.bad_bytes)
    except Exception as exc:  # lineage never fails the job it describes
        log.debug("lineage: could not record the lake job %s: %s", job.name, exc)
    log.info("%s: %d files, %d rows read, %d good, %d bad", job.name, result.files_read, result.rows_read,
             result.good_rows, result.bad_rows)
