"""SQLite and any other SQLAlchemy database: portable SQL, one transaction per load."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import uuid
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from headrace.errors import ConnectionFailed, DataIOError
from headrace.io._frames import arrow_family, check_exact, new_columns
from headrace.io._ledger import LEDGER_TABLE, Ledger
from headrace.io._target import Loaded, Target, WriteSpec, compose
from headrace.secrets import redact

log = logging.getLogger("headrace.io")


def _engine(target: Target) -> tuple[sa.Engine, bool]:
    if target.engine is not None:
        return target.engine, False
    try:
        if target.url.split(":", 1)[0].split("+")[0] == "sqlite":
            # Wait for another process's load rather than fail with "database is locked".
            return sa.create_engine(target.url, connect_args={"timeout": 60}), True
        return sa.create_engine(target.url), True
    except Exception as exc:
        raise ConnectionFailed(f"cannot use database URL {target.display}: "
                               f"{redact(str(exc))}") from None


def _fail(exc: Exception, target: Target, doing: str) -> DataIOError:
    orig = getattr(exc, "orig", None) or exc
    msg = redact(str(orig)).strip()
    if isinstance(exc, sa.exc.OperationalError) and "unable to open" in msg:
        return ConnectionFailed(f"cannot open {target.display} while {doing}: {msg}")
    return DataIOError(f"{doing} on {target.display} failed: {msg}")


def read(target: Target, query: str, params: dict[str, Any]) -> pa.Table:
    """Run ``query`` through SQLAlchemy's ``text()``, which binds the ``:name`` values."""
    engine, owned = _engine(target)
    try:
        with engine.connect() as conn:
            result = conn.execute(sa.text(query), params)
            names = list(result.keys())
            rows = result.fetchall()
    except sa.exc.SQLAlchemyError as exc:
        raise _fail(exc, target, "reading a query") from None
    finally:
        if owned:
            engine.dispose()
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return pa.table({n: pa.array(list(c)) for n, c in zip(names, columns, strict=True)})


def write(target: Target, data: pa.Table, spec: WriteSpec) -> Loaded:
    """Load ``data`` per ``spec`` in one transaction; what landed."""
    engine, owned = _engine(target)
    try:
        with _writer_lock(engine):
            with engine.connect() as conn:
                return _transaction(conn, data, spec)
    except sa.exc.SQLAlchemyError as exc:
        raise _fail(exc, target, f"writing table {spec.name}") from None
    finally:
        if owned:
            engine.dispose()


_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _writer_lock(engine: sa.Engine) -> Any:
    """SQLite has one writer per file: loads of this process take turns instead of failing
    with "database is locked" (other processes wait on ``BEGIN IMMEDIATE``)."""
    database = engine.url.database or ""
    if engine.dialect.name != "sqlite" or database in ("", ":memory:"):
        return contextlib.nullcontext()
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(os.path.realpath(database), threading.Lock())


def _transaction(conn: sa.Connection, data: pa.Table, spec: WriteSpec) -> Loaded:
    if conn.dialect.name == "sqlite":
        # The write lock first: the table check, its creation and the load are then one unit.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    try:
        if spec.load_key:
            prior = _claim(conn, spec, data.num_rows)
            if prior is not None:
                conn.rollback()
                log.info("load %s into %s was done before (%s rows); skipped", spec.load_key,
                         spec.name, prior)
                return Loaded(prior, 0)
        table = _prepare_table(conn, data, spec, sa.MetaData(schema=spec.schema))
        _apply_mode(conn, table, data, spec)
        with spec.committing():
            conn.commit()
        return Loaded(data.num_rows, data.num_rows)
    except BaseException:
        conn.rollback()
        raise


def _claim(conn: sa.Connection, spec: WriteSpec, rows: int) -> int | None:
    def fetch(sql: str, params: dict[str, Any]) -> list[Any]:
        result = conn.execute(sa.text(sql), params)
        return list(result.fetchall()) if result.returns_rows else []

    upsert = conn.dialect.name in ("sqlite", "postgresql")
    ledger = Ledger(fetch, spec.schema, upsert=upsert,
                    quote=conn.dialect.identifier_preparer.quote)
    if upsert:
        ledger.ensure()
        return ledger.claim(spec, rows)
    _ledger_table(spec.schema).create(conn, checkfirst=True)
    try:
        with conn.begin_nested():
            return ledger.claim(spec, rows)
    except sa.exc.IntegrityError:  # the key is taken: that load committed
        return ledger.prior(spec)


def _ledger_table(schema: str | None) -> sa.Table:
    """The ledger for databases without ``CREATE TABLE IF NOT EXISTS`` (same columns)."""
    return sa.Table(LEDGER_TABLE, sa.MetaData(schema=schema),
                    sa.Column("load_key", sa.String(500), primary_key=True),
                    sa.Column("table_name", sa.String(500), nullable=False),
                    sa.Column("mode", sa.String(40), nullable=False),
                    sa.Column("rows", sa.BigInteger, nullable=False),
                    sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False))


def _sa_type(field: pa.Field) -> Any:
    t = field.type
    if pa.types.is_decimal(t):
        return sa.Numeric(t.precision, t.scale)
    if pa.types.is_timestamp(t):
        return sa.DateTime(timezone=bool(t.tz))
    types = {"int": sa.BigInteger(), "float": sa.Double(), "str": sa.Text(), "null": sa.Text(),
             "bool": sa.Boolean(), "date": sa.Date(), "time": sa.Time(), "binary": sa.LargeBinary()}
    family = arrow_family(t)
    if family not in types:
        raise DataIOError(f"column {field.name!r} has type {t}, which cannot be stored; "
                          "convert it first")
    return types[family]


def _prepare_table(conn: sa.Connection, data: pa.Table, spec: WriteSpec,
                   meta: sa.MetaData) -> sa.Table:
    """Create the table, or add the frame's new columns to it; return it reflected."""
    insp = sa.inspect(conn)
    if not insp.has_table(spec.table, schema=spec.schema):
        cols = [sa.Column(f.name, _sa_type(f), primary_key=f.name in spec.keys)
                for f in data.schema]
        sa.Table(spec.table, meta, *cols).create(conn)
        log.info("created table %s with %d columns", spec.name, len(cols))
    else:
        existing = {c["name"]: _type_name(c["type"], conn) for c in
                    insp.get_columns(spec.table, schema=spec.schema)}
        check_exact(data, existing, conn.dialect.name, f"table {spec.name}")
        prep = conn.dialect.identifier_preparer
        for field in new_columns(data, existing, f"table {spec.name}"):
            typ = _sa_type(field).compile(dialect=conn.dialect)
            conn.execute(sa.text(compose(
                "ALTER TABLE {table} ADD COLUMN {column} {type}", column=prep.quote(field.name),
                table=prep.format_table(sa.table(spec.table, schema=spec.schema)), type=typ)))
            log.warning("schema evolution: added nullable column %s %s to table %s",
                        field.name, typ, spec.name)
    return sa.Table(spec.table, sa.MetaData(schema=spec.schema), autoload_with=conn)


def _type_name(typ: Any, conn: sa.Connection) -> str:
    try:
        return str(typ.compile(dialect=conn.dialect))
    except Exception:  # an untyped SQLite column takes anything
        return "text"


def _utc(data: pa.Table) -> pa.Table:
    """Zone-aware timestamps as UTC: some databases (SQLite) keep only the wall-clock time."""
    fields = [pa.field(f.name, pa.timestamp(f.type.unit, "UTC"))
              if pa.types.is_timestamp(f.type) and f.type.tz else f for f in data.schema]
    return data.cast(pa.schema(fields))


def _apply_mode(conn: sa.Connection, table: sa.Table, data: pa.Table, spec: WriteSpec) -> None:
    rows = _utc(data).to_pylist()
    if spec.mode == "append":
        if rows:
            conn.execute(table.insert(), rows)
        return
    if spec.mode == "replace":
        conn.execute(table.delete())
        if rows:
            conn.execute(table.insert(), rows)
        return
    stage = sa.Table(f"headrace_stage_{uuid.uuid4().hex[:12]}", sa.MetaData(),
                     *[sa.Column(c.name, c.type) for c in table.columns
                       if c.name in data.column_names], prefixes=["TEMPORARY"])
    stage.create(conn)
    if rows:
        conn.execute(stage.insert(), rows)
    match = spec.keys if spec.mode == "merge" else spec.partition_by
    # Indexed, so matching target rows against the frame is a lookup, not a scan per row.
    sa.Index(f"{stage.name}_match", *[stage.c[c] for c in match]).create(conn)
    names = data.column_names
    if spec.mode == "merge" and len(names) < len(table.columns):
        _update_then_insert(conn, table, stage, names, spec.keys)
    else:
        cond = sa.and_(*[table.c[c].is_not_distinct_from(stage.c[c]) for c in match])
        conn.execute(table.delete().where(sa.exists().where(cond)))
        conn.execute(table.insert().from_select(names, sa.select(*[stage.c[n] for n in names])))
    stage.drop(conn)


def _update_then_insert(conn: sa.Connection, table: sa.Table, stage: sa.Table,
                        names: list[str], keys: tuple[str, ...]) -> None:
    """Merge a frame with only some of the table's columns: update those, keep the rest."""
    cond = sa.and_(*[table.c[k] == stage.c[k] for k in keys])
    rest = [n for n in names if n not in keys]
    if rest:
        conn.execute(table.update().values(
            {n: sa.select(stage.c[n]).where(cond).scalar_subquery() for n in rest})
            .where(sa.exists().where(cond)))
    # NOT IN over the table's keys: the database builds one lookup set instead of a scan per row.
    present = sa.select(*[table.c[k] for k in keys]).where(
        sa.and_(*[table.c[k].is_not(None) for k in keys]))
    mine = sa.tuple_(*[stage.c[k] for k in keys]) if len(keys) > 1 else stage.c[keys[0]]
    conn.execute(table.insert().from_select(
        names, sa.select(*[stage.c[n] for n in names]).where(mine.not_in(present))))
