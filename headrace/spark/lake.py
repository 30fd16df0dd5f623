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

import logging
import time
from typing import Any

from headrace.errors import ConfigError
from headrace.spark.lakespec import (
    ARROW_TYPES,
    ENGINES,
    QUARANTINE_SCHEMA,
    SPARK_EXTRA,
    TYPE_NAMES,
    LakeJobError,
    LakeResult,
    LakeSpec,
    quarantine_file_name,
    row_rules,
    schema_types,
)
from headrace.spark.progress import LakeProgress

__all__ = ["ARROW_TYPES", "ENGINES", "QUARANTINE_SCHEMA", "SPARK_EXTRA", "TYPE_NAMES", "LakeJob", "LakeJobError",
           "LakeResult", "engine_runner", "quarantine_file_name", "row_rules", "schema_types"]

log = logging.getLogger("headrace.spark")


class LakeJob(LakeSpec):
    """Raw NDJSON from ``source`` to Parquet at ``target``, bad rows to ``quarantine``.

    See the module docstring for the contract. ``quarantine`` defaults to
    ``<target>/_quarantine`` (readers skip folders starting with ``_``). ``memory_limit``
    caps DuckDB (e.g. ``"1GB"``); ``spark_master`` defaults to ``HEADRACE_SPARK_MASTER``,
    else ``local[*]``. ``progress`` shows a live display (``None``: when stderr is a terminal).
    """

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
