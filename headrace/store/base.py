"""Opening the run store: the engine, its pragmas, migrations and transactions."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, insert, select, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from headrace.errors import SchemaVersionError, StoreError, StoreNotWritable, StoreUnavailable
from headrace.secrets import redact
from headrace.store.retry import retried, sqlite_busy_ms, store_error
from headrace.store.schema import MIGRATIONS, metadata, migrations_table

log = logging.getLogger("headrace.store")


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; they were written as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def normalize_url(url: str) -> str:
    """Pick the driver headrace ships with for a bare ``postgresql://`` URL."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_path(url: str) -> Path | None:
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    if u.query.get("uri") and u.database.startswith("file:"):  # sqlite:///file:PATH?mode=ro&uri=true
        return Path(u.database[5:])
    return Path(u.database)


def _prepare_sqlite_file(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            raise PermissionError(f"permission denied: {path}")
    except OSError as exc:
        raise StoreNotWritable(
            f"cannot write the run store at {path}: {exc.strerror or exc}; "
            "set HEADRACE_HOME to a writable folder") from exc


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=OFF")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Taking the write lock up front lets busy_timeout wait for it instead of
        # failing with "database is locked" when a reader later upgrades to a writer.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


_FILE_LOCKS: dict[Path, threading.RLock] = {}
_FILE_LOCKS_GUARD = threading.Lock()


def _file_write_lock(path: Path | None) -> threading.RLock:
    """One lock per SQLite file in this process: threads take turns writing here, woken at once,
    instead of in SQLite's busy handler, which polls with sleeps of up to 100 ms."""
    if path is None:
        return threading.RLock()
    with _FILE_LOCKS_GUARD:
        return _FILE_LOCKS.setdefault(path.resolve(), threading.RLock())


class StoreBase:
    """A connection to the run store; the table-specific methods live in mixins."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = normalize_url(url)
        self.safe_url = redact(self.url)
        path = _sqlite_path(self.url)
        sqlite = self.url.startswith("sqlite")
        self._write_lock = _file_write_lock(path) if sqlite else None
        if path is not None and make_url(self.url).query.get("mode") != "ro":
            _prepare_sqlite_file(path)
        try:
            self.engine = self._create_engine()
        except (SQLAlchemyError, ImportError) as exc:
            raise StoreError(f"cannot open the run store {self.safe_url}: {redact(str(exc))}") from exc
        self.dialect = self.engine.dialect.name
        if migrate:
            self.migrate()

    def _create_engine(self) -> Engine:
        if self.url.startswith("sqlite"):
            # sqlite3's `timeout` is SQLite's busy timeout: how long a connection waits for a lock.
            engine = create_engine(self.url, connect_args={"check_same_thread": False,
                                                           "timeout": sqlite_busy_ms() / 1000})
            _configure_sqlite(engine)
            return engine
        # The application name lets operators (and tests) find a process's store connections.
        return create_engine(self.url, pool_pre_ping=True, pool_size=5, max_overflow=10,
                             connect_args={"application_name": f"headrace-store-{os.getpid()}"})

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction. A lock or a dropped connection raises StoreUnavailable,
        which the store's methods retry as a whole (see :func:`retried`)."""
        with self._turn():
            try:
                with self.engine.begin() as conn:
                    yield conn
            except DBAPIError as exc:
                raise self._wrap(exc) from exc

    @contextmanager
    def _turn(self) -> Iterator[None]:
        """This process's turn to write a SQLite store, waited for as long as SQLite would wait."""
        if self._write_lock is None:
            yield
            return
        if not self._write_lock.acquire(timeout=sqlite_busy_ms() / 1000):
            raise StoreUnavailable(f"the run store {self.safe_url} is busy with another write of this process "
                                   "for too long; it is retried")
        try:
            yield
        finally:
            self._write_lock.release()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except DBAPIError as exc:
            raise self._wrap(exc) from exc

    def _wrap(self, exc: SQLAlchemyError) -> StoreError:
        return store_error(exc, self.safe_url, self.dialect, _sqlite_path(self.url))

    @retried
    def migrate(self) -> None:
        """Apply the migrations this store lacks; refuse a store from a newer headrace."""
        known = [mid for mid, _ in MIGRATIONS]
        try:
            with self.transaction() as conn:
                if self.dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(724031)"))
                metadata.create_all(conn, tables=[migrations_table], checkfirst=True)
                applied = {r[0] for r in conn.execute(select(migrations_table.c.id))}
                unknown = sorted(applied - set(known))
                if unknown:
                    raise SchemaVersionError(
                        f"the run store {self.safe_url} has schema migration {unknown[-1]}, "
                        f"newer than this headrace knows (latest {known[-1]}); upgrade headrace")
                for mid, step in MIGRATIONS:
                    if mid not in applied:
                        step(conn)
                        conn.execute(insert(migrations_table).values(id=mid, applied_at=utcnow()))
                        log.debug("run store %s: applied migration %s", self.safe_url, mid)
        except StoreError:
            raise
        except SQLAlchemyError as exc:
            raise self._wrap(exc) from exc

    def schema_version(self) -> str:
        with self.read() as conn:
            ids = [r[0] for r in conn.execute(select(migrations_table.c.id))]
        return max(ids) if ids else ""

    def insert_stmt(self) -> Any:
        """The dialect's ``insert`` with ``on_conflict_do_*`` (imported lazily: it is heavy)."""
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert

    def close(self) -> None:
        self.engine.dispose()
