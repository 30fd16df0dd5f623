"""PostgreSQL through ADBC: Arrow in, Arrow out, binary COPY underneath.

A load runs in ONE transaction: ledger check, create/evolve the table, COPY the
frame (straight into the table for append/replace, into a temporary staging
table otherwise), apply the mode, write the ledger row, commit. Anything that
stops it half-way - an error, a dropped connection, a killed process - leaves
the target as it was.
"""

from __future__ import annotations

import logging
import math
from contextlib import closing
from typing import Any

import pyarrow as pa

from headrace.errors import ConnectionFailed, DataIOError, SchemaMismatch
from headrace.io import _pgindex, _pgpool
from headrace.io._frames import add_column_sql, check_exact, create_table_sql, new_columns
from headrace.io._ledger import LEDGER_TABLE, Ledger
from headrace.io._pgmerge import batches, merge, stage
from headrace.io._sqlparams import to_positional
from headrace.io._target import Loaded, Target, WriteSpec, compose, qualified, quote
from headrace.secrets import redact

log = logging.getLogger("headrace.io")

_LOST = ("server closed the connection", "no connection to the server", "terminating connection",
         "connection to server", "could not send data", "could not receive data")


def connect(target: Target) -> Any:
    """An ADBC connection (autocommit off), or ConnectionFailed without the password."""
    import adbc_driver_postgresql.dbapi as pgdb

    try:
        return pgdb.connect(with_connect_timeout(target.url, target.connect_timeout))
    except pgdb.Error as exc:
        msg = redact(str(exc)).strip()
        if "timeout expired" in msg:
            msg = (f"no answer within {target.connect_timeout:g} s; check the host and port, or "
                   "allow longer with connect_timeout= or HEADRACE_CONNECT_TIMEOUT")
        raise ConnectionFailed(f"cannot connect to PostgreSQL at {target.display}: {msg}") from None


def with_connect_timeout(url: str, seconds: float) -> str:
    """``url`` with libpq's ``connect_timeout`` (whole seconds, at least 2) unless it has one."""
    if "connect_timeout=" in url:
        return url
    return f"{url}{'&' if '?' in url else '?'}connect_timeout={max(2, math.ceil(seconds))}"


def read(target: Target, query: str, params: dict[str, Any] | None) -> pa.Table:
    """Run ``query`` with ``:name`` values bound server-side; the result as Arrow."""
    sql, names = to_positional(query, params)
    try:
        with _pgpool.session(target.url, lambda: connect(target)) as conn:
            with closing(conn.cursor()) as cur:
                if names:
                    # Prepare first so the server infers each parameter's type (a date compared
                    # with '2024-01-31' is a date); the values are sent with exactly those types.
                    types = cur.adbc_prepare(sql)
                    cur.execute(sql, _bind(names, params or {}, types))
                else:
                    cur.execute(sql)
                table = cur.fetch_arrow_table()
            conn.rollback()
            return table
    except DataIOError:
        raise
    except Exception as exc:
        raise translate(exc, target, "reading a query") from None


def _bind(names: list[str], params: dict[str, Any], types: pa.Schema) -> pa.RecordBatch:
    arrays = []
    for name, field in zip(names, types, strict=True):
        try:
            arrays.append(pa.array([params[name]]).cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            raise DataIOError(f"parameter :{name} = {str(params[name])[:80]!r} is not a valid "
                              f"{field.metadata.get(b'POSTGRESQL:type', b'?').decode()} "
                              "value for this query") from None
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(
        [pa.field(f.name, f.type) for f in types]))


def write(target: Target, data: pa.Table, spec: WriteSpec) -> Loaded:
    """Load ``data`` per ``spec`` in one transaction; what landed."""
    try:
        with _pgpool.session(target.url, lambda: connect(target)) as conn:
            with closing(conn.cursor()) as cur:
                ledger = _ledger(cur, spec)
                if ledger is not None:
                    prior = _claim(conn, cur, ledger, spec, data.num_rows)
                    if prior is not None:
                        return Loaded(prior, 0)
                _load(cur, data, spec)
                # Staging tables go with the transaction, so a pooled session starts clean.
                cur.execute("DISCARD TEMP")
            with spec.committing():
                conn.commit()
            return Loaded(data.num_rows, data.num_rows)
    except (DataIOError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise translate(exc, target, f"writing table {spec.name}") from None


def translate(exc: BaseException, target: Target, doing: str) -> DataIOError:
    """A driver error as a headrace error; the password never appears."""
    msg = redact(str(exc)).strip()
    state = str(getattr(exc, "sqlstate", "") or "")
    if state in ("08000", "08003", "08006", "57P01", "57P02") or any(s in msg for s in _LOST):
        return ConnectionFailed(f"lost the connection to {target.display} while {doing}; "
                                f"nothing was committed, so it is safe to retry ({msg})")
    if isinstance(exc, DataIOError):
        return exc
    return DataIOError(f"{doing} on {target.display} failed: {msg}")


def _ledger(cur: Any, spec: WriteSpec) -> Ledger | None:
    if not spec.load_key:
        return None

    def fetch(sql: str, params: dict[str, Any]) -> list[Any]:
        text, names = to_positional(sql, params)
        cur.execute(text, tuple(params[n] for n in names) or None)
        return list(cur.fetchall()) if cur.description else []

    return Ledger(fetch, spec.schema, timestamp="timestamptz")


def _claim(conn: Any, cur: Any, ledger: Ledger, spec: WriteSpec, rows: int) -> int | None:
    """Claim the load key; the prior count (and nothing left open) if the load was done."""
    name = qualified(LEDGER_TABLE, spec.schema)
    cur.execute("SELECT to_regclass($1) IS NULL", (name,))
    if cur.fetchone()[0]:
        # Created in a transaction of its own, so a failed load never takes the ledger along.
        _lock(cur, "ledger", spec.schema, LEDGER_TABLE)
        ledger.ensure()
        conn.commit()
    prior = ledger.claim(spec, rows)
    if prior is not None:
        conn.rollback()
        log.info("load %s into %s was done before (%s rows); skipped", spec.load_key,
                 spec.name, prior)
    return prior


def _lock(cur: Any, kind: str, schema: str | None, table: str) -> None:
    """Serialize DDL on one table across sessions until the transaction ends.

    Two first loads into a missing table would otherwise both CREATE it and one would fail on
    the catalog's unique index; the second now waits, then finds the table.
    """
    cur.execute("SELECT pg_advisory_xact_lock(hashtext($1 || ':' || coalesce($2, current_schema())"
                " || '.' || $3))", (f"headrace-{kind}", schema, table))


def _load(cur: Any, data: pa.Table, spec: WriteSpec) -> None:
    columns = _columns(cur, spec)
    what = f"table {spec.name}"
    if not columns or new_columns(data, columns, what):
        _lock(cur, "table", spec.schema, spec.table)
        columns = _columns(cur, spec)  # as the session before us left it
    created = not columns
    if created:
        _create(cur, data, spec)
    else:
        check_exact(data, columns, "postgresql", what)
        _evolve(cur, data, columns, spec)
    _apply_mode(cur, data, _columns(cur, spec), spec, created)
    if created and spec.mode == "merge":
        # Built after the COPY: one sort is much cheaper than growing the index row by row.
        keys = ", ".join(quote(k) for k in spec.keys)
        cur.execute(compose("ALTER TABLE {table} ADD PRIMARY KEY ({keys})", table=spec.qualified,
                            keys=keys))


def _columns(cur: Any, spec: WriteSpec) -> dict[str, str]:
    cur.execute("SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped "
                "ORDER BY a.attnum", (spec.qualified,))
    return {str(name): str(typ) for name, typ in cur.fetchall()}


def _create(cur: Any, data: pa.Table, spec: WriteSpec) -> None:
    cur.execute(create_table_sql(data, spec))
    log.info("created table %s with %d columns", spec.name, data.num_columns)


def _evolve(cur: Any, data: pa.Table, columns: dict[str, str], spec: WriteSpec) -> None:
    for field, sql in add_column_sql(data, columns, spec):
        cur.execute(sql)
        log.warning("schema evolution: added nullable column %s to table %s", field.name,
                    spec.name)


def _direct(data: pa.Table, columns: dict[str, str], spec: WriteSpec) -> pa.Table | None:
    """``data`` cast to the table's own types for a straight COPY, or None if a column needs SQL."""
    fields = []
    for field in data.schema:
        typ = _copy_type(columns[field.name], field.type)
        if typ is None:
            return None
        fields.append(pa.field(field.name, typ))
    out = []
    for field, col in zip(fields, data.columns, strict=True):
        # PostgreSQL keeps microseconds: nanoseconds are cut as the server would cut them.
        safe = not (pa.types.is_timestamp(field.type) and pa.types.is_timestamp(col.type))
        try:
            out.append(col.cast(field.type, safe=safe))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise SchemaMismatch(f"table {spec.name}: column {field.name!r} does not fit "
                                 f"{columns[field.name]}: {exc}") from None
    return pa.Table.from_arrays(out, schema=pa.schema(fields))


_SIMPLE = {"smallint": pa.int16(), "integer": pa.int32(), "bigint": pa.int64(),
           "real": pa.float32(), "double precision": pa.float64(), "boolean": pa.bool_(),
           "date": pa.date32(), "timestamp without time zone": pa.timestamp("us"),
           "timestamp with time zone": pa.timestamp("us", "UTC")}


def _copy_type(column_type: str, frame_type: pa.DataType) -> pa.DataType | None:
    """The Arrow type whose binary COPY form the column accepts, if it is a plain one."""
    if column_type in _SIMPLE:
        return _SIMPLE[column_type]
    if column_type == "text" or column_type.startswith("character"):
        return frame_type if pa.types.is_large_string(frame_type) else pa.string()
    if column_type == "bytea":
        return frame_type if pa.types.is_large_binary(frame_type) else pa.binary()
    return None


def _apply_mode(cur: Any, data: pa.Table, columns: dict[str, str], spec: WriteSpec,
                created: bool) -> None:
    if spec.mode == "replace":
        # DELETE, not TRUNCATE: readers with an older snapshot keep seeing the old rows.
        cur.execute(compose("DELETE FROM {table}", table=spec.qualified))
    elif spec.mode == "overwrite_partitions" and not created:
        staged = stage(cur, data.select(list(spec.partition_by)).group_by(
            list(spec.partition_by)).aggregate([]))
        cur.execute(_delete_matching(spec, staged, spec.partition_by, columns))
    elif spec.mode == "merge" and not created:
        data, dropped = merge(cur, data, columns, spec)
        _insert(cur, data, columns, spec)
        _pgindex.rebuild(cur, dropped)
        return
    _insert(cur, data, columns, spec)


def _insert(cur: Any, data: pa.Table, columns: dict[str, str], spec: WriteSpec) -> None:
    """Append ``data``: a straight binary COPY when the types allow, else via a staging table."""
    if not data.num_rows:
        return
    direct = _direct(data, columns, spec)
    if direct is not None:
        cur.adbc_ingest(spec.table, batches(direct), mode="append", db_schema_name=spec.schema)
        return
    staged = stage(cur, data)
    names = data.column_names
    cur.execute(compose("INSERT INTO {table} ({names}) SELECT {casts} FROM {stage} s",
                        table=spec.qualified, names=", ".join(quote(n) for n in names),
                        casts=", ".join(f"CAST(s.{quote(n)} AS {columns[n]})" for n in names),
                        stage=quote(staged)))


def _delete_matching(spec: WriteSpec, staged: str, cols: tuple[str, ...],
                     columns: dict[str, str]) -> str:
    """Delete the target rows that share a value of ``cols`` with the staged rows."""
    cond = " AND ".join(f"t.{quote(c)} IS NOT DISTINCT FROM CAST(s.{quote(c)} AS {columns[c]})"
                        for c in cols)
    return compose("DELETE FROM {table} t WHERE EXISTS (SELECT 1 FROM {stage} s WHERE {cond})",
                   table=spec.qualified, stage=quote(staged), cond=cond)
