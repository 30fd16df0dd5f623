"""What ``headrace.io`` tells lineage about each read and write (plain values in, records out).

A lineage failure never fails the read or write it describes: it is logged at debug level.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from headrace.engine.context import get_run_context
from headrace.lineage.frames import Origin, inherited, origin_of, remember
from headrace.lineage.model import ColumnSource, DatasetIO, DatasetRef, schema_of
from headrace.lineage.naming import SqlSource, duckdb_connection_source, file_dataset, sql_source
from headrace.lineage.record import record, source_dicts
from headrace.lineage.sql import analyze, analyze_statement, warm_up

log = logging.getLogger("headrace.lineage")

# Table names after FROM/JOIN, for SQL sqlglot cannot parse (table-level lineage still recorded).
_FROM = re.compile(r"\b(?:FROM|JOIN)\s+((?:\"[^\"]+\"|[A-Za-z_][\w$]*)(?:\s*\.\s*(?:\"[^\"]+\"|[A-Za-z_][\w$]*)){0,2})",
                   re.IGNORECASE)


def source_for(url: str, duckdb_conn: Any = None) -> SqlSource:
    """The lineage source of a connection (a URL that may hold a password, or a DuckDB connection)."""
    if duckdb_conn is not None:
        return duckdb_connection_source(duckdb_conn)
    return sql_source(url)


def prepare(dialect: str) -> None:
    """About to run a query inside a run: get the SQL parser ready while it runs."""
    if get_run_context() is not None:
        warm_up(dialect)


def sql_read(source: SqlSource, kind: str, query: str, table: Any, frame: Any) -> None:
    """``read_sql`` ran ``query``: record the tables it read; remember the frame's column lineage."""
    if get_run_context() is None:
        return
    try:
        columns = list(table.column_names)
        found = analyze(query, source, columns)
        tables = found.tables or _fallback_tables(query, source)
        if not tables:   # SELECT 1, a table function...: the query itself is what was read
            tables = [DatasetRef(source.namespace, "query:" + " ".join(query.split())[:200])]
        schema = schema_of(table) if len(tables) == 1 else None
        for i, ref in enumerate(tables):
            # The result's rows are counted once, on the first table the query reads, which also
            # keeps the result's column lineage (a cached or reused result gets it back from there).
            extra = {"frame_lineage": source_dicts(found.columns)} if i == 0 and found.columns else {}
            record(DatasetIO(ref, "input", rows=table.num_rows if i == 0 else None,
                             bytes=table.nbytes if i == 0 else None, schema=schema, sql=query, extra=extra), kind)
        remember(frame, Origin(tables, found.columns, query, indirect=found.indirect))
    except Exception as exc:  # lineage never fails a read
        log.debug("lineage: could not record the read of %s: %s", source.namespace, exc)


def record_sql(sql: str, con: Any, *, rows: int | None = None) -> list[DatasetIO]:
    """Record a SQL transform run outside ``headrace.io`` (``INSERT INTO ... SELECT``, ``CREATE
    TABLE ... AS SELECT``, or a query): the tables it reads and the table it writes, with column
    lineage. ``con`` is a database URL, a SQLAlchemy engine or a DuckDB connection::

        con.execute(sql)                      # your own DuckDB connection
        record_sql(sql, con, rows=n)
    """
    if get_run_context() is None:
        return []
    try:
        source = _source_of(con)
        statement = analyze_statement(sql, source)
        tables = statement.lineage.tables or _fallback_tables(sql, source)
        recorded = [record(DatasetIO(t, "input", sql=sql)) for t in tables if t != statement.target]
        if statement.target is not None:
            recorded.append(record(DatasetIO(statement.target, "output", rows=rows, sql=sql,
                                             column_lineage=statement.lineage.columns or None,
                                             indirect=statement.lineage.indirect or None)))
        return [r for r in recorded if r is not None]
    except Exception as exc:  # lineage never fails the transform
        log.debug("lineage: could not record SQL: %s", exc)
        return []


def _source_of(con: Any) -> SqlSource:
    if isinstance(con, str):
        return source_for(con)
    if type(con).__module__.lstrip("_").startswith("duckdb"):   # duckdb 2 names it _duckdb
        return source_for("", con)
    url = getattr(con, "url", None)
    if url is not None:
        return source_for(url.render_as_string(hide_password=False))
    raise TypeError(f"con must be a database URL, a SQLAlchemy engine or a DuckDB connection, "
                    f"not {type(con).__name__}")


def _fallback_tables(query: str, source: SqlSource) -> list[DatasetRef]:
    refs: dict[DatasetRef, None] = {}
    for match in _FROM.finditer(query):
        parts = [p.strip().strip('"') for p in match.group(1).split(".")]
        parts = [None] * (3 - len(parts)) + parts  # type: ignore[list-item]
        catalog, schema, name = parts
        if name and name.lower() not in ("select", "lateral", "unnest"):
            refs.setdefault(source.table(name, schema, catalog), None)
    return list(refs)


def sql_write(source: SqlSource, kind: str, table: str, schema: str | None, data: Any, frame: Any,
              rows: int, bytes_: int | None) -> None:
    """``write_table`` loaded ``rows`` rows of ``data`` into ``schema.table``."""
    if get_run_context() is None:
        return
    try:
        ref = source.table(table, schema)
        _write(ref, kind, data, frame, rows, bytes_)
    except Exception as exc:
        log.debug("lineage: could not record the write of %s: %s", table, exc)


def _from_task_frames(frame: Any) -> Origin | None:
    """A frame the task made from the frames it was given (``df[cols]``, a join...): it inherits
    from their origins, by column name."""
    ctx = get_run_context()
    params = getattr(ctx, "parameters", None) or {}
    given = [v for v in params.values() if origin_of(v) is not None]
    if not given:
        return None
    return inherited(given, frame)


def file_read(protocol: str, path: str, kind: str, table: Any, frame: Any, rows: int) -> None:
    """``read_files`` read ``rows`` rows from the files ``path`` (a file, folder or glob) names."""
    if get_run_context() is None:
        return
    try:
        ref = file_dataset("", protocol, path)
        record(DatasetIO(ref, "input", rows=rows, bytes=table.nbytes, schema=schema_of(table)), kind)
        remember(frame, Origin([ref], {c: [ColumnSource(ref, c, "DIRECT", "IDENTITY")]
                                       for c in table.column_names}))
    except Exception as exc:
        log.debug("lineage: could not record the read of %s: %s", path, exc)


def file_write(protocol: str, path: str, kind: str, data: Any, frame: Any, rows: int,
               bytes_: int | None, *, quarantine: bool = False) -> None:
    """``write_parquet`` (or a gate's ``quarantine``) wrote ``rows`` rows at ``path``."""
    if get_run_context() is None:
        return
    try:
        _write(file_dataset("", protocol, path), kind, data, frame, rows, bytes_,
               {"quarantine": True} if quarantine else None)
    except Exception as exc:
        log.debug("lineage: could not record the write of %s: %s", path, exc)


def record_lake(*, sources: list[tuple[str, str, str]], target: tuple[str, str, str],
                quarantine: tuple[str, str, str] | None, schema: Any, quarantine_schema: Any, rows_read: int,
                bytes_read: int, good_rows: int, bytes_written: int, bad_rows: int, bad_bytes: int) -> None:
    """A lake job (``headrace.spark.LakeJob``) read ``sources`` and wrote ``target`` (Parquet) and
    ``quarantine``; each place is (protocol, path, store kind). Several sources: their rows and
    bytes are not told apart (the first source carries none)."""
    if get_run_context() is None:
        return
    one = len(sources) == 1
    refs = []
    for protocol, path, kind in sources:
        ref = file_dataset("", protocol, path)
        refs.append(ref)
        record(DatasetIO(ref, "input", rows=rows_read if one else None, bytes=bytes_read if one else None), kind)
    columns = schema_of(schema) or []
    protocol, path, kind = target
    record(DatasetIO(file_dataset("", protocol, path), "output", rows=good_rows, bytes=bytes_written,
                     schema=columns,
                     column_lineage={c: [ColumnSource(ref, c, "DIRECT", "IDENTITY") for ref in refs]
                                     for c, _ in columns} or None), kind)
    if quarantine is not None:
        protocol, path, kind = quarantine
        record(DatasetIO(file_dataset("", protocol, path), "output", rows=bad_rows, bytes=bad_bytes,
                         schema=schema_of(quarantine_schema), extra={"quarantine": True}), kind)


def _write(ref: DatasetRef, kind: str, data: Any, frame: Any, rows: int, bytes_: int | None,
           extra: dict[str, Any] | None = None) -> None:
    origin = origin_of(frame) if frame is not None else None
    if origin is None and data is not frame:
        origin = origin_of(data)
    if origin is None and frame is not None:
        origin = _from_task_frames(frame)
    io = DatasetIO(ref, "output", rows=rows, bytes=bytes_, schema=schema_of(data), extra=dict(extra or {}))
    if origin is not None:
        written = set(getattr(data, "column_names", None) or [])
        io.column_lineage = {c: s for c, s in origin.columns.items() if not written or c in written} or None
        io.assertions, io.metrics = origin.assertions, origin.metrics
        io.sql = origin.sql
        io.indirect = list(origin.indirect) or None
        if origin.transforms:
            io.extra["transforms"] = origin.transforms
    record(io, kind)
