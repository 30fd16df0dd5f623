"""Where data goes: which backend a connection names, load keys, dataset records."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from headrace.engine.context import current_task_run, record_dataset
from headrace.errors import DataIOError
from headrace.secrets import redact_url

log = logging.getLogger("headrace.io")

LEDGER_TABLE = "headrace_load_ledger"


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

    @property
    def dialect(self) -> str:
        return self.kind if self.kind != "generic" else self.url.split(":", 1)[0].split("+")[0]


def resolve(con: Any) -> Target:
    """Name the backend for ``con``: a URL string, a SQLAlchemy engine or a DuckDB connection."""
    if isinstance(con, str):
        return _from_url(con, engine=None)
    if type(con).__module__.startswith("duckdb"):
        return Target("duckdb", "duckdb://", "duckdb://<connection>", conn=con)
    url = getattr(con, "url", None)
    if url is not None and hasattr(con, "connect"):
        return _from_url(url.render_as_string(hide_password=False), engine=con)
    raise DataIOError(f"con must be a database URL, a SQLAlchemy engine or a DuckDB "
                      f"connection, not {type(con).__name__}")


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
    return f"{quote(schema)}.{quote(table)}" if schema else quote(table)


# Per task attempt: how many loads it has made, so the n-th load keeps its key on a retry.
_ORDINALS: OrderedDict[tuple[str, int], int] = OrderedDict()
_ORDINALS_LOCK = threading.Lock()


def load_key(explicit: str | None, table: str, schema: str | None) -> str | None:
    """The exactly-once key of this load: ``explicit``, else derived from the task run, else None.

    Inside a task: flow run, task key (stable across retries), a hash of the task's parameters,
    the table, and the load's ordinal within the attempt.
    """
    if explicit is not None:
        return explicit
    ctx = current_task_run()
    if ctx is None:
        return None
    from headrace.engine.hashing import stable_hash

    with _ORDINALS_LOCK:
        slot = (ctx.task_run_id, ctx.attempt)
        n = _ORDINALS.get(slot, 0)
        _ORDINALS[slot] = n + 1
        while len(_ORDINALS) > 10_000:
            _ORDINALS.popitem(last=False)
    try:
        params = stable_hash(ctx.parameters)[:16]
    except Exception:  # unhashable parameters: the task key alone still names the load
        params = "-"
    run = ctx.flow_run_id or ctx.task_run_id
    return f"{run}/{ctx.task_key}/{params}/{schema or ''}.{table}#{n}"


def record(direction: str, target: Target, name: str, rows: int, bytes_: int | None) -> None:
    """Declare the dataset on the current run (a no-op outside a run)."""
    record_dataset(direction, target.dialect, target.display, name, rows=rows, bytes_=bytes_)


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

    @property
    def name(self) -> str:
        """``schema.table`` as users write it (for messages and lineage)."""
        return f"{self.schema}.{self.table}" if self.schema else self.table

    @property
    def qualified(self) -> str:
        return qualified(self.table, self.schema)
