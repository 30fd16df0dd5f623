"""DuckDB: Arrow frames are scanned in place (no copy) and loaded in one transaction."""

from __future__ import annotations

import logging
import urllib.parse
import uuid
from typing import Any

import pyarrow as pa

from headrace.errors import ConnectionFailed, DataIOError
from headrace.io._frames import new_columns, sql_type
from headrace.io._sqlparams import to_positional
from headrace.io._target import LEDGER_TABLE, Target, WriteSpec, qualified, quote

log = logging.getLogger("headrace.io")


def _open(target: Target) -> tuple[Any, bool]:
    """The connection and whether we opened it (and so must close it)."""
    import duckdb

    if target.conn is not None:
        return target.conn, False
    # SQLAlchemy's spelling: duckdb:///relative.db, duckdb:////absolute.db, duckdb:// in memory;
    # ?access_mode=read_only opens a file read-only (so other readers may open it too).
    path, _, query = target.url.split("://", 1)[1].partition("?")
    path = (path[1:] if path.startswith("/") else path) or ":memory:"
    mode = urllib.parse.parse_qs(query).get("access_mode", [""])[0].lower()
    try:
        return duckdb.connect(path, read_only=mode == "read_only"), True
    except duckdb.Error as exc:
        raise ConnectionFailed(f"cannot open DuckDB database {target.display}: {exc}") from None


def read(target: Target, query: str, params: dict[str, Any]) -> pa.Table:
    """Run ``query`` with ``:name`` values bound as DuckDB ``$n`` parameters."""
    import duckdb

    sql, names = to_positional(query, params)
    con, owned = _open(target)
    try:
        rel = con.sql(sql, params=[params[n] for n in names] or None)
        return rel.to_arrow_table() if rel is not None else pa.table({})
    except duckdb.Error as exc:
        raise DataIOError(f"reading a query on {target.display} failed: {exc}") from None
    finally:
        if owned:
            con.close()


def write(target: Target, data: pa.Table, spec: WriteSpec) -> int:
    """Load ``data`` per ``spec`` in one DuckDB transaction; the rows written."""
    import duckdb

    con, owned = _open(target)
    stage = f"headrace_stage_{uuid.uuid4().hex[:12]}"
    con.register(stage, data)
    try:
        con.execute("BEGIN TRANSACTION")
        rows = _load(con, stage, data, spec)
        con.execute("COMMIT")
        return rows
    except BaseException as exc:
        con.execute("ROLLBACK")
        if isinstance(exc, duckdb.Error):
            raise DataIOError(f"writing table {spec.name} on {target.display} failed: "
                              f"{exc}") from None
        raise
    finally:
        con.unregister(stage)
        if owned:
            con.close()


def _load(con: Any, stage: str, data: pa.Table, spec: WriteSpec) -> int:
    if spec.load_key:
        prior = _ledger_lookup(con, spec)
        if prior is not None:
            log.info("load %s into %s already done (%s rows); skipping", spec.load_key,
                     spec.name, prior)
            return prior
    columns = _columns(con, spec)
    what = f"table {spec.name}"
    if not columns:
        cols = [f"{quote(f.name)} {sql_type(f, what)}" for f in data.schema]
        if spec.mode == "merge":
            cols.append(f"PRIMARY KEY ({', '.join(quote(k) for k in spec.keys)})")
        con.execute(f"CREATE TABLE {spec.qualified} ({', '.join(cols)})")
        log.info("created table %s with %d columns", spec.name, len(cols))
    for field in new_columns(data, columns, what) if columns else []:
        typ = sql_type(field, what)
        con.execute(f"ALTER TABLE {spec.qualified} ADD COLUMN {quote(field.name)} {typ}")
        log.warning("schema evolution: added nullable column %s %s to table %s",
                    field.name, typ, spec.name)
    _apply_mode(con, stage, data, spec, list(_columns(con, spec)))
    if spec.load_key:
        con.execute(f"INSERT INTO {qualified(LEDGER_TABLE, spec.schema)} VALUES "
                    "($1, $2, $3, $4, now())", [spec.load_key, spec.name, spec.mode, data.num_rows])
    return data.num_rows


def _ledger_lookup(con: Any, spec: WriteSpec) -> int | None:
    ledger = qualified(LEDGER_TABLE, spec.schema)
    con.execute(f"CREATE TABLE IF NOT EXISTS {ledger} (load_key VARCHAR PRIMARY KEY, "
                "table_name VARCHAR NOT NULL, mode VARCHAR NOT NULL, rows BIGINT NOT NULL, "
                "loaded_at TIMESTAMPTZ NOT NULL)")
    row = con.execute(f"SELECT rows FROM {ledger} WHERE load_key = $1",
                      [spec.load_key]).fetchone()
    return None if row is None else int(row[0])


def _columns(con: Any, spec: WriteSpec) -> dict[str, str]:
    rows = con.execute("SELECT column_name, data_type FROM information_schema.columns "
                       "WHERE table_schema = coalesce($1, current_schema()) AND table_name = $2 "
                       "ORDER BY ordinal_position", [spec.schema, spec.table]).fetchall()
    return {str(name): str(typ) for name, typ in rows}


def _apply_mode(con: Any, stage: str, data: pa.Table, spec: WriteSpec,
                table_cols: list[str]) -> None:
    cols = ", ".join(quote(n) for n in data.column_names)
    insert = f"INSERT INTO {spec.qualified} ({cols}) SELECT {cols} FROM {quote(stage)} s"
    match = spec.keys if spec.mode == "merge" else spec.partition_by
    cond = " AND ".join(f"t.{quote(c)} IS NOT DISTINCT FROM s.{quote(c)}" for c in match)
    if spec.mode == "replace":
        con.execute(f"DELETE FROM {spec.qualified}")
    elif spec.mode == "merge" and not set(table_cols) <= set(data.column_names):
        # The frame has only some columns: update those in place, keep the rest.
        rest = [n for n in data.column_names if n not in spec.keys]
        if rest:
            sets = ", ".join(f"{quote(n)} = s.{quote(n)}" for n in rest)
            con.execute(f"UPDATE {spec.qualified} t SET {sets} FROM {quote(stage)} s "
                        f"WHERE {cond}")
        con.execute(f"{insert} WHERE NOT EXISTS (SELECT 1 FROM {spec.qualified} t "
                    f"WHERE {cond})")
        return
    elif spec.mode in ("merge", "overwrite_partitions"):
        con.execute(f"DELETE FROM {spec.qualified} t WHERE EXISTS "
                    f"(SELECT 1 FROM {quote(stage)} s WHERE {cond})")
    con.execute(insert)
