"""DuckDB: Arrow frames are scanned in place (no copy) and loaded in one transaction."""

from __future__ import annotations

import logging
import os
import threading
import urllib.parse
import uuid
from typing import Any

import pyarrow as pa

from headrace.errors import ConnectionFailed, DataIOError
from headrace.io._frames import add_column_sql, check_exact, create_table_sql
from headrace.io._ledger import Ledger
from headrace.io._sqlparams import to_positional
from headrace.io._target import Loaded, Target, WriteSpec, compose, quote

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
    with _lock(target):  # opening and closing a database is not safe beside a writer
        con, owned = _open(target)
        cur = con.cursor()  # a connection of its own: a shared one is not safe across threads
    try:
        rel = cur.sql(sql, params=[params[n] for n in names] or None)
        return rel.to_arrow_table() if rel is not None else pa.table({})
    except duckdb.Error as exc:
        raise DataIOError(f"reading a query on {target.display} failed: {exc}") from None
    finally:
        with _lock(target):
            cur.close()
            if owned:
                con.close()


_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock(target: Target) -> threading.Lock:
    """One lock per database in this process, taken around a load and around opening and
    closing: DuckDB lets one writer commit at a time and fails the other (a write-write
    conflict) instead of making it wait."""
    if target.conn is not None:
        row = target.conn.execute("SELECT path FROM duckdb_databases() WHERE database_name = "
                                  "current_database()").fetchone()
        path = row[0] if row and row[0] else None
        key = os.path.realpath(path) if path else f"memory:{id(target.conn)}"
    else:
        path = target.url.split("://", 1)[1].partition("?")[0]
        path = path[1:] if path.startswith("/") else path
        if not path or path == ":memory:":
            return threading.Lock()  # a private in-memory database: nobody to wait for
        key = os.path.realpath(path)
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


def write(target: Target, data: pa.Table, spec: WriteSpec) -> Loaded:
    """Load ``data`` per ``spec`` in one DuckDB transaction; what landed."""
    import duckdb

    with _lock(target):
        con, owned = _open(target)
        try:
            cur = con.cursor()
            try:
                return _transaction(cur, data, spec)
            finally:
                cur.close()
        except duckdb.Error as exc:
            raise DataIOError(f"writing table {spec.name} on {target.display} failed: "
                              f"{exc}") from None
        finally:
            if owned:
                con.close()


def _transaction(cur: Any, data: pa.Table, spec: WriteSpec) -> Loaded:
    stage = f"headrace_stage_{uuid.uuid4().hex[:12]}"  # this load's own name for the frame
    cur.register(stage, data)
    cur.execute("BEGIN TRANSACTION")
    try:
        if spec.load_key:
            ledger = Ledger(_fetch(cur), spec.schema, timestamp="TIMESTAMPTZ")
            ledger.ensure()
            prior = ledger.claim(spec, data.num_rows)
            if prior is not None:
                cur.execute("ROLLBACK")
                log.info("load %s into %s was done before (%s rows); skipped", spec.load_key,
                         spec.name, prior)
                return Loaded(prior, 0)
        _load(cur, stage, data, spec)
        with spec.committing():
            cur.execute("COMMIT")
        return Loaded(data.num_rows, data.num_rows)
    except BaseException:
        _rollback(cur)
        raise
    finally:
        cur.unregister(stage)


def _rollback(cur: Any) -> None:
    import duckdb

    try:
        cur.execute("ROLLBACK")
    except duckdb.Error:  # a failed COMMIT has already ended the transaction
        pass


def _fetch(cur: Any) -> Any:
    def fetch(sql: str, params: dict[str, Any]) -> list[Any]:
        text, names = to_positional(sql, params)
        return list(cur.execute(text, [params[n] for n in names] or None).fetchall())

    return fetch


def _load(con: Any, stage: str, data: pa.Table, spec: WriteSpec) -> None:
    columns = _columns(con, spec)
    what = f"table {spec.name}"
    if not columns:
        con.execute(create_table_sql(data, spec, primary_key=spec.mode == "merge"))
        log.info("created table %s with %d columns", spec.name, data.num_columns)
    else:
        check_exact(data, columns, "duckdb", what)
    for field, sql in add_column_sql(data, columns, spec) if columns else []:
        con.execute(sql)
        log.warning("schema evolution: added nullable column %s to table %s", field.name,
                    spec.name)
    _apply_mode(con, stage, data, spec, list(_columns(con, spec)))


def _columns(con: Any, spec: WriteSpec) -> dict[str, str]:
    rows = con.execute("SELECT column_name, data_type FROM information_schema.columns "
                       "WHERE table_schema = coalesce($1, current_schema()) AND table_name = $2 "
                       "ORDER BY ordinal_position", [spec.schema, spec.table]).fetchall()
    return {str(name): str(typ) for name, typ in rows}


def _apply_mode(con: Any, stage: str, data: pa.Table, spec: WriteSpec,
                table_cols: list[str]) -> None:
    names = ", ".join(quote(n) for n in data.column_names)
    match = spec.keys if spec.mode == "merge" else spec.partition_by
    ids = {"table": spec.qualified, "stage": quote(stage), "names": names,
           "cond": " AND ".join(f"t.{quote(c)} IS NOT DISTINCT FROM s.{quote(c)}" for c in match)}
    insert = "INSERT INTO {table} ({names}) SELECT {names} FROM {stage} s"
    if spec.mode == "replace":
        con.execute(compose("DELETE FROM {table}", **ids))
    elif spec.mode == "merge" and not set(table_cols) <= set(data.column_names):
        # The frame has only some columns: update those in place, keep the rest.
        rest = [n for n in data.column_names if n not in spec.keys]
        if rest:
            sets = ", ".join(f"{quote(n)} = s.{quote(n)}" for n in rest)
            con.execute(compose("UPDATE {table} t SET {sets} FROM {stage} s WHERE {cond}",
                                sets=sets, **ids))
        con.execute(compose(insert + " WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {cond})",
                            **ids))
        return
    elif spec.mode in ("merge", "overwrite_partitions"):
        con.execute(compose("DELETE FROM {table} t WHERE EXISTS "
                            "(SELECT 1 FROM {stage} s WHERE {cond})", **ids))
    con.execute(compose(insert, **ids))
