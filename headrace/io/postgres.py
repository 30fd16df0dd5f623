"""PostgreSQL through ADBC: Arrow in, Arrow out, binary COPY underneath.

A load runs in ONE transaction: ledger check, create/evolve the table, COPY the
frame (straight into the table for append/replace, into a temporary staging
table otherwise), apply the mode, write the ledger row, commit. Anything that
stops it half-way - an error, a dropped connection, a killed process - leaves
the target as it was.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pyarrow as pa

from headrace.errors import ConnectionFailed, DataIOError, SchemaMismatch
from headrace.io._frames import new_columns, sql_type
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
    conn = connect(target)
    try:
        cur = conn.cursor()
        if names:
            # Prepare first so the server infers each parameter's type (a date compared with
            # '2024-01-31' is a date); the values are then sent with exactly those types.
            types = cur.adbc_prepare(sql)
            cur.execute(sql, _bind(names, params or {}, types))
        else:
            cur.execute(sql)
        return cur.fetch_arrow_table()
    except Exception as exc:
        raise translate(exc, target, "reading a query") from None
    finally:
        conn.close()


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
    conn = connect(target)
    try:
        cur = conn.cursor()
        rows = _load(cur, data, spec)
        conn.commit()
        return rows
    except (DataIOError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise translate(exc, target, f"writing table {spec.name}") from None
    finally:
        _close(conn)


def _close(conn: Any) -> None:
    try:
        conn.close()  # an open transaction is rolled back by the server when we hang up
    except Exception:  # the connection may already be gone; nothing was committed
        log.debug("closing a broken PostgreSQL connection failed", exc_info=True)


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
    if not columns:
        _create(cur, data, spec)
        columns = _columns(cur, spec)
    else:
        _evolve(cur, data, columns, spec)
        columns = _columns(cur, spec)
    _apply_mode(cur, data, columns, spec)
    if spec.load_key:
        cur.execute(f"INSERT INTO {qualified(LEDGER_TABLE, spec.schema)} "
                    "(load_key, table_name, mode, rows, loaded_at) VALUES ($1, $2, $3, $4, now())",
                    (spec.load_key, spec.name, spec.mode, data.num_rows))
    return data.num_rows


def _ledger_lookup(cur: Any, spec: WriteSpec) -> int | None:
    ledger = qualified(LEDGER_TABLE, spec.schema)
    cur.execute(f"CREATE TABLE IF NOT EXISTS {ledger} (load_key text PRIMARY KEY, "
                "table_name text NOT NULL, mode text NOT NULL, rows bigint NOT NULL, "
                "loaded_at timestamptz NOT NULL)")
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
    if spec.mode == "merge":
        cols.append(f"PRIMARY KEY ({', '.join(quote(k) for k in spec.keys)})")
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
        try:
            out.append(col.cast(field.type))
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


def _apply_mode(cur: Any, data: pa.Table, columns: dict[str, str], spec: WriteSpec) -> None:
    if spec.mode == "replace":
        # DELETE, not TRUNCATE: readers with an older snapshot keep seeing the old rows.
        cur.execute(f"DELETE FROM {spec.qualified}")
    direct = _direct(data, columns, spec) if spec.mode in ("append", "replace") else None
    if direct is not None:
        cur.adbc_ingest(spec.table, direct, mode="append", db_schema_name=spec.schema)
        return
    stage = f"headrace_stage_{uuid.uuid4().hex[:12]}"
    cur.adbc_ingest(stage, data, mode="create", temporary=True)
    names = data.column_names
    target_cols = ", ".join(quote(n) for n in names)
    select = ", ".join(f"CAST(s.{quote(n)} AS {columns[n]})" for n in names)
    insert = f"INSERT INTO {spec.qualified} ({target_cols}) SELECT {select} FROM {quote(stage)} s"
    if spec.mode == "merge" and _has_unique(cur, spec):
        cur.execute(insert + _on_conflict(names, spec.keys))
        return
    if spec.mode in ("merge", "overwrite_partitions"):
        cur.execute(_delete_matching(spec, stage, columns))
    cur.execute(insert)


def _on_conflict(names: list[str], keys: tuple[str, ...]) -> str:
    keycols = ", ".join(quote(k) for k in keys)
    rest = [n for n in names if n not in keys]
    if not rest:
        return f" ON CONFLICT ({keycols}) DO NOTHING"
    sets = ", ".join(f"{quote(n)} = EXCLUDED.{quote(n)}" for n in rest)
    return f" ON CONFLICT ({keycols}) DO UPDATE SET {sets}"


def _delete_matching(spec: WriteSpec, stage: str, columns: dict[str, str]) -> str:
    """Delete target rows that share a key (merge) or a partition (overwrite) with the frame."""
    cols = spec.keys if spec.mode == "merge" else spec.partition_by
    cond = " AND ".join(f"t.{quote(c)} IS NOT DISTINCT FROM CAST(s.{quote(c)} AS {columns[c]})"
                        for c in cols)
    return (f"DELETE FROM {spec.qualified} t WHERE EXISTS "
            f"(SELECT 1 FROM {quote(stage)} s WHERE {cond})")


def _has_unique(cur: Any, spec: WriteSpec) -> bool:
    """Whether a unique index covers exactly the merge keys (what ON CONFLICT needs)."""
    cur.execute("SELECT ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) k "
                "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k) "
                "FROM pg_index i WHERE i.indrelid = to_regclass($1) AND i.indisunique "
                "AND i.indpred IS NULL AND i.indexprs IS NULL", (spec.qualified,))
    wanted = set(spec.keys)
    return any(set(row[0]) == wanted for row in cur.fetchall())
