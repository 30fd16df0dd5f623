"""PostgreSQL through ADBC: Arrow in, Arrow out, binary COPY underneath.

A load runs in ONE transaction: ledger check, create/evolve the table, COPY the
frame (straight into the table for append/replace, into a temporary staging
table otherwise), apply the mode, write the ledger row, commit. Anything that
stops it half-way - an error, a dropped connection, a killed process - leaves
the target as it was.
"""

from __future__ import annotations

import logging
from contextlib import closing
from typing import Any

import pyarrow as pa

from headrace.errors import ConnectionFailed, DataIOError, SchemaMismatch
from headrace.io import _pgindex, _pgpool
from headrace.io._frames import new_columns, sql_type
from headrace.io._pgmerge import batches, merge, stage
from headrace.io._sqlparams import to_positional
from headrace.io._target import LEDGER_TABLE, Target, WriteSpec, qualified, quote
from headrace.secrets import redact

log = logging.getLogger("headrace.io")

_LOST = ("server closed the connection", "no connection to the server", "terminating connection",
         "connection to server", "could not send data", "could not receive data")


def connect(target: Target) -> Any:
    """An ADBC connection (autocommit off), or ConnectionFailed without the password."""
    import adbc_driver_postgresql.dbapi as pgdb

    try:
        return pgdb.connect(target.url)
    except pgdb.Error as exc:
        raise ConnectionFailed(f"cannot connect to PostgreSQL at {target.display}: "
                               f"{redact(str(exc)).strip()}") from None


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


def write(target: Target, data: pa.Table, spec: WriteSpec) -> int:
    """Load ``data`` per ``spec`` in one transaction; the rows written (or first written)."""
    try:
        with _pgpool.session(target.url, lambda: connect(target)) as conn:
            with closing(conn.cursor()) as cur:
                if spec.load_key:
                    _ensure_ledger(conn, cur, spec)
                rows = _load(cur, data, spec)
                # Staging tables go with the transaction, so a pooled session starts clean.
                cur.execute("DISCARD TEMP")
            conn.commit()
            return rows
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


def _load(cur: Any, data: pa.Table, spec: WriteSpec) -> int:
    if spec.load_key:
        prior = _ledger_lookup(cur, spec)
        if prior is not None:
            log.info("load %s into %s already done (%s rows); skipping", spec.load_key,
                     spec.name, prior)
            return prior
    columns = _columns(cur, spec)
    created = not columns
    if created:
        _create(cur, data, spec)
    else:
        _evolve(cur, data, columns, spec)
    _apply_mode(cur, data, _columns(cur, spec), spec, created)
    if created and spec.mode == "merge":
        # Built after the COPY: one sort is much cheaper than growing the index row by row.
        cur.execute(f"ALTER TABLE {spec.qualified} ADD PRIMARY KEY "
                    f"({', '.join(quote(k) for k in spec.keys)})")
    if spec.load_key:
        cur.execute(f"INSERT INTO {qualified(LEDGER_TABLE, spec.schema)} "
                    "(load_key, table_name, mode, rows, loaded_at) VALUES ($1, $2, $3, $4, now())",
                    (spec.load_key, spec.name, spec.mode, data.num_rows))
    return data.num_rows


def _ensure_ledger(conn: Any, cur: Any, spec: WriteSpec) -> None:
    """Create the ledger in a transaction of its own, so concurrent first loads don't collide."""
    ledger = qualified(LEDGER_TABLE, spec.schema)
    cur.execute("SELECT to_regclass($1) IS NULL", (ledger,))
    if not cur.fetchone()[0]:
        return
    try:
        cur.execute(f"CREATE TABLE IF NOT EXISTS {ledger} (load_key text PRIMARY KEY, "
                    "table_name text NOT NULL, mode text NOT NULL, rows bigint NOT NULL, "
                    "loaded_at timestamptz NOT NULL)")
        conn.commit()
    except Exception:  # another load created it a moment ago
        conn.rollback()
        cur.execute("SELECT to_regclass($1) IS NULL", (ledger,))
        if cur.fetchone()[0]:
            raise


def _ledger_lookup(cur: Any, spec: WriteSpec) -> int | None:
    ledger = qualified(LEDGER_TABLE, spec.schema)
    # Two runs with the same key wait for each other here, so only one of them loads.
    cur.execute("SELECT pg_advisory_xact_lock(hashtext($1))", (spec.load_key,))
    cur.execute(f"SELECT rows FROM {ledger} WHERE load_key = $1", (spec.load_key,))
    row = cur.fetchone()
    return None if row is None else int(row[0])


def _columns(cur: Any, spec: WriteSpec) -> dict[str, str]:
    cur.execute("SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped "
                "ORDER BY a.attnum", (spec.qualified,))
    return {str(name): str(typ) for name, typ in cur.fetchall()}


def _create(cur: Any, data: pa.Table, spec: WriteSpec) -> None:
    what = f"table {spec.name}"
    cols = [f"{quote(f.name)} {sql_type(f, what)}" for f in data.schema]
    cur.execute(f"CREATE TABLE {spec.qualified} ({', '.join(cols)})")
    log.info("created table %s with %d columns", spec.name, len(cols))


def _evolve(cur: Any, data: pa.Table, columns: dict[str, str], spec: WriteSpec) -> None:
    for field in new_columns(data, columns, f"table {spec.name}"):
        typ = sql_type(field, f"table {spec.name}")
        cur.execute(f"ALTER TABLE {spec.qualified} ADD COLUMN {quote(field.name)} {typ}")
        log.warning("schema evolution: added nullable column %s %s to table %s",
                    field.name, typ, spec.name)


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
        cur.execute(f"DELETE FROM {spec.qualified}")
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
    select = ", ".join(f"CAST(s.{quote(n)} AS {columns[n]})" for n in names)
    cur.execute(f"INSERT INTO {spec.qualified} ({', '.join(quote(n) for n in names)}) "
                f"SELECT {select} FROM {quote(staged)} s")


def _delete_matching(spec: WriteSpec, stage: str, cols: tuple[str, ...],
                     columns: dict[str, str]) -> str:
    """Delete the target rows that share a value of ``cols`` with the staged rows."""
    cond = " AND ".join(f"t.{quote(c)} IS NOT DISTINCT FROM CAST(s.{quote(c)} AS {columns[c]})"
                        for c in cols)
    return (f"DELETE FROM {spec.qualified} t WHERE EXISTS "
            f"(SELECT 1 FROM {quote(stage)} s WHERE {cond})")
