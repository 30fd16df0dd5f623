"""``read_sql`` and ``write_table``: the checks every backend shares, then the backend."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

from headrace.engine.logs import get_run_logger
from headrace.errors import DataIOError, TaskRunError
from headrace.io import _frames, _target
from headrace.io._target import MODES, Loaded, Target, WriteSpec
from headrace.lineage import capture

log = logging.getLogger("headrace.io")


def _backend(target: Target) -> Any:
    if target.kind == "postgresql":
        from headrace.io import postgres

        return postgres
    if target.kind == "duckdb":
        from headrace.io import duckdb

        return duckdb
    from headrace.io import generic

    return generic


def read_sql(query: str, con: Any, params: Mapping[str, Any] | None = None, *,
             as_: str = "pandas", connect_timeout: float | None = None) -> Any:
    """Run ``query`` and return the rows as a pandas, Arrow or Polars frame.

    Values go only in ``params`` and are written ``:name`` in the query; they are bound by
    the driver, never pasted into the SQL::

        read_sql("SELECT * FROM sales WHERE date BETWEEN :start AND :end",
                 "postgresql://dwh/sales", params={"start": "2024-01-01", "end": "2024-01-31"})

    ``con`` is a URL (``postgresql://``, ``duckdb:///file.db``, ``sqlite:///file.db``, any
    SQLAlchemy URL), a SQLAlchemy engine or a DuckDB connection. A PostgreSQL server that
    does not answer within ``connect_timeout`` seconds (default ``HEADRACE_CONNECT_TIMEOUT``,
    else 10) is a ``ConnectionFailed`` naming the host.
    """
    _frames.check_format(as_)
    target = _target.resolve(con, connect_timeout)
    capture.prepare(target.dialect)
    table: pa.Table = _backend(target).read(target, query, dict(params or {}))
    log.debug("read %d rows from %s", table.num_rows, target.display)
    frame = _frames.from_arrow(table, as_)
    # Named by the tables the query reads (see headrace.lineage), with its column lineage.
    capture.sql_read(_target.lineage_source(target), target.dialect, query, table, frame)
    return frame


def write_table(df: Any, table: str, con: Any, *, mode: str = "append",
                keys: Iterable[str] | None = None, partition_by: Iterable[str] | None = None,
                schema: str | None = None, load_key: str | None = None,
                connect_timeout: float | None = None) -> int:
    """Write ``df`` (pandas, Polars or Arrow) to ``table`` atomically; return the rows written.

    ``mode``: ``append``; ``replace`` (the table's rows become the frame's); ``merge``
    (upsert on ``keys``); ``overwrite_partitions`` (rows sharing a ``partition_by`` value
    with the frame are replaced). The table is created when missing and gains the frame's
    new columns (nullable); a changed column type is refused with SchemaMismatch.

    Inside a task the load is exactly-once: a load whose key (the work, task, parameters,
    table and the load's ordinal in the task; see the README) committed before writes nothing
    and returns the first count. Pass ``load_key`` to choose the key yourself.
    """
    target = _target.resolve(con, connect_timeout)
    spec = _spec(table, mode, keys, partition_by, schema, load_key)
    data = _frames.to_arrow(df, f"table {spec.name}")
    _check(data, spec)
    if spec.fence is not None and spec.fence.abandoned:
        raise TaskRunError(f"load into table {spec.name}: refused, its task attempt was "
                           "abandoned after a timeout; the retry does this load")
    loaded: Loaded = _backend(target).write(target, data, spec)
    # Rows loaded count what landed: a load the ledger skipped adds nothing.
    capture.sql_write(_target.lineage_source(target), target.dialect, spec.table, spec.schema, data, df,
                      loaded.landed, data.nbytes if loaded.landed else 0)
    # The run logger: what a load did belongs to the run's record, whatever levels the application logs at.
    run_log = get_run_logger("io")
    if loaded.landed or not spec.load_key:
        run_log.info("wrote %d rows to %s (%s) on %s", loaded.rows, spec.name, mode, target.display)
    else:
        run_log.info("skipped the load into %s on %s: key %s committed before (%d rows)",
                     spec.name, target.display, spec.load_key, loaded.rows)
    return loaded.rows


def _spec(table: str, mode: str, keys: Iterable[str] | None, partition_by: Iterable[str] | None,
          schema: str | None, load_key: str | None) -> WriteSpec:
    if mode not in MODES:
        raise DataIOError(f"table {table}: mode must be one of {', '.join(MODES)}, not {mode!r}")
    keys_t = tuple([keys] if isinstance(keys, str) else keys or ())
    parts_t = tuple([partition_by] if isinstance(partition_by, str) else partition_by or ())
    if mode == "merge" and not keys_t:
        raise DataIOError(f"table {table}: mode='merge' needs keys=[...], the columns that "
                          "identify a row")
    if mode == "overwrite_partitions" and not parts_t:
        raise DataIOError(f"table {table}: mode='overwrite_partitions' needs partition_by=[...]")
    key, fence = _target.load_key(load_key, table, schema)
    return WriteSpec(table, schema, mode, keys_t, parts_t, key, fence)


def _check(data: pa.Table, spec: WriteSpec) -> None:
    what = f"table {spec.name}"
    if not data.num_columns:
        raise DataIOError(f"{what}: the frame has no columns")
    if spec.mode == "merge":
        _frames.check_keys(data, list(spec.keys), what)
    _frames.check_columns(data, spec.partition_by, "partition", what)
