"""Where data goes: which backend a connection names, load keys, dataset records."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from headrace.engine.context import current_task_run
from headrace.errors import ConfigError, DataIOError
from headrace.lineage.capture import source_for
from headrace.lineage.naming import SqlSource
from headrace.secrets import redact_url

log = logging.getLogger("headrace.io")

@dataclass(frozen=True)
class Target:
    """A database named by ``con``.

    ``kind`` is ``postgresql``, ``duckdb`` or ``generic`` (any other SQLAlchemy dialect);
    ``url`` is the usable URL (may hold a password: never print it), ``display`` the
    redacted one; ``engine``/``conn`` carry a caller's SQLAlchemy engine or DuckDB connection.
    """

    kind: str
    url: str
    display: str
    engine: Any = None
    conn: Any = None
    connect_timeout: float = 10.0

    @property
    def dialect(self) -> str:
        return self.kind if self.kind != "generic" else self.url.split(":", 1)[0].split("+")[0]


def resolve(con: Any, connect_timeout: float | None = None) -> Target:
    """Name the backend for ``con``: a URL string, a SQLAlchemy engine or a DuckDB connection."""
    timeout = connect_timeout_seconds(connect_timeout)
    if isinstance(con, str):
        return replace(_from_url(con, engine=None), connect_timeout=timeout)
    if type(con).__module__.lstrip("_").startswith("duckdb"):   # duckdb 2 names it _duckdb
        return Target("duckdb", "duckdb://", "duckdb://<connection>", conn=con)
    url = getattr(con, "url", None)
    if url is not None and hasattr(con, "connect"):
        target = _from_url(url.render_as_string(hide_password=False), engine=con)
        return replace(target, connect_timeout=timeout)
    raise DataIOError(f"con must be a database URL, a SQLAlchemy engine or a DuckDB "
                      f"connection, not {type(con).__name__}")


DEFAULT_CONNECT_TIMEOUT = 10.0


def connect_timeout_seconds(given: float | None) -> float:
    """``given``, else ``HEADRACE_CONNECT_TIMEOUT``, else 10 seconds."""
    if given is None:
        raw = os.environ.get("HEADRACE_CONNECT_TIMEOUT", "").strip()
        try:
            given = float(raw) if raw else DEFAULT_CONNECT_TIMEOUT
        except ValueError:
            raise ConfigError(f"HEADRACE_CONNECT_TIMEOUT={raw!r} is not a number of seconds") from None
    if given <= 0:
        raise ConfigError(f"connect_timeout must be a positive number of seconds, not {given!r}")
    return float(given)


def _from_url(url: str, engine: Any) -> Target:
    scheme = url.split(":", 1)[0].lower()
    base = scheme.split("+", 1)[0]
    display = redact_url(url)
    if base in ("postgresql", "postgres"):
        # ADBC and libpq want the plain scheme; the SQLAlchemy driver suffix means nothing to them.
        libpq = "postgresql" + url[len(scheme):]
        return Target("postgresql", libpq, display, engine=engine)
    if base == "duckdb":
        return Target("duckdb", url, display, engine=engine)
    if "://" not in url:
        raise DataIOError(f"{display!r} is not a database URL (expected e.g. "
                          "postgresql://host/db, duckdb:///file.db, sqlite:///file.db)")
    return Target("generic", url, display, engine=engine)


def quote(name: str) -> str:
    """Quote an identifier the way PostgreSQL, DuckDB and SQLite all read it."""
    return '"' + name.replace('"', '""') + '"'


def qualified(table: str, schema: str | None) -> str:
    """``"schema"."table"`` (or ``"table"``), quoted."""
    return f"{quote(schema)}.{quote(table)}" if schema else quote(table)


def compose(template: str, **identifiers: str) -> str:
    """SQL text from a constant ``template`` and already-quoted identifiers (never values).

    >>> compose("DELETE FROM {table}", table=quote("fact sales"))
    'DELETE FROM "fact sales"'
    """
    return template.format(**identifiers)


def load_key(explicit: str | None, table: str, schema: str | None) -> tuple[str | None, Any]:
    """The exactly-once key of this load and the fence of the attempt making it.

    ``explicit`` wins. Inside a task: the work (see ``headrace.engine.context.work_identity``),
    the task key (stable across retries), a hash of the task's parameters, the table, and the
    load's ordinal within the attempt. Outside a task: no key.
    """
    ctx = current_task_run()
    fence = ctx.fence if ctx is not None else None
    if explicit is not None or ctx is None:
        return explicit, fence
    return f"{ctx.load_prefix()}/{schema or ''}.{table}#{ctx.fence.next_ordinal()}", fence


def lineage_source(target: Target) -> SqlSource:
    """The target as lineage names it (``postgres://host:port``, ``duckdb://path``...): no secrets."""
    return source_for(target.url, target.conn)


MODES = ("append", "replace", "merge", "overwrite_partitions")


@dataclass(frozen=True)
class WriteSpec:
    """One ``write_table`` call, checked: what goes where, how, under which load key."""

    table: str
    schema: str | None
    mode: str
    keys: tuple[str, ...] = ()
    partition_by: tuple[str, ...] = ()
    load_key: str | None = None
    fence: Any = field(default=None, compare=False)

    @property
    def name(self) -> str:
        """``schema.table`` as users write it (for messages and lineage)."""
        return f"{self.schema}.{self.table}" if self.schema else self.table

    @property
    def qualified(self) -> str:
        return qualified(self.table, self.schema)

    @contextlib.contextmanager
    def committing(self) -> Iterator[None]:
        """Around the COMMIT: refuses it when the task attempt making the load was abandoned."""
        if self.fence is None:
            yield
            return
        with self.fence.guard(f"load into table {self.name}"):
            yield


@dataclass(frozen=True)
class Loaded:
    """A load's outcome: ``rows`` of the load (its first count when it was done before) and
    ``landed``, the rows this call wrote (0 when the ledger skipped it)."""

    rows: int
    landed: int
