"""Names for data that lives in a database or a file: the SQL backend runs checks there.

    DuckDBTable("sales", con)                       # a table or view in DuckDB
    ParquetFile("sales/*.parquet"), CsvFile("x.csv")  # files, read by DuckDB
    PostgresTable("sales", "postgresql://host/db", schema="public")

Plain ``str``/``Path`` values ending in ``.parquet`` or ``.csv`` work too.
"""

from __future__ import annotations

import re
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from headrace.errors import QualityError
from headrace.quality.backends.sql_ops import Dialect, PostgresDialect
from headrace.quality.backends.sqltext import describe, qualified
from headrace.secrets import redact


class SqlRelation(ABC):
    """A relation plus the connection to query it: all the SQL backend needs of an engine.

    ``sql`` is the relation as it appears after FROM (a quoted table name or view);
    ``dialect`` spells what the engine spells differently. Spark SQL plugs in here:
    a subclass over a temporary view, with a Dialect for its regex and quantile functions.
    """

    kind = "sql"
    dialect: Dialect = Dialect()
    sql = ""

    @abstractmethod
    def columns(self) -> list[tuple[str, str]]:
        """(name, the engine's type name) of each column, in table order."""

    @abstractmethod
    def fetch(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """The rows of a query with bound parameters."""

    @abstractmethod
    def fetch_arrow(self, sql: str, params: dict[str, Any]) -> pa.Table:
        """A query's rows as an Arrow table (for ``split``)."""


class DuckDBRelation(SqlRelation):
    def __init__(self, con: Any, sql: str, kind: str) -> None:
        self.con, self.sql, self.kind = con, sql, kind
        self._lock = threading.Lock()  # a DuckDB connection serves one query at a time

    def columns(self) -> list[tuple[str, str]]:
        rows = self.fetch(describe(self.sql), {})
        return [(r[0], r[1]) for r in rows]

    def fetch(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._run(sql, params).fetchall())

    def fetch_arrow(self, sql: str, params: dict[str, Any]) -> pa.Table:
        with self._lock:
            used = set(re.findall(r"\$(p\d+)\b", sql))
            return self.con.sql(sql, params={k: v for k, v in params.items() if k in used}).to_arrow_table()

    def _run(self, sql: str, params: dict[str, Any]) -> Any:
        import duckdb

        # DuckDB refuses parameters a statement does not use; a shared Query has extras.
        used = set(re.findall(r"\$(p\d+)\b", sql))
        params = {k: v for k, v in params.items() if k in used}
        try:
            return self.con.execute(sql, params or None)
        except duckdb.Error as exc:
            raise QualityError(f"DuckDB could not run a check on {self.sql}: {exc}") from exc


@dataclass(frozen=True)
class DuckDBTable:
    """A table or view in a DuckDB database (a connection, a file path, or in-memory)."""

    table: str
    database: Any = None
    schema: str | None = None

    def relation(self) -> SqlRelation:
        import duckdb

        con = self.database
        if con is None or isinstance(con, str | Path):
            con = duckdb.connect(str(con) if con is not None else ":memory:")
        return DuckDBRelation(con, qualified(self.schema, self.table), "duckdb")


_FILES: list[Any] = []


def file_cursor() -> Any:
    """A connection of its own to one in-memory DuckDB shared by every file check.

    Opening a DuckDB database costs tens of milliseconds; a cursor of a shared one costs
    microseconds, and the names a cursor registers are its own.
    """
    import duckdb

    with _ENGINES_LOCK:
        if not _FILES:
            _FILES.append(duckdb.connect())
        return _FILES[0].cursor()


@dataclass(frozen=True)
class ParquetFile:
    """One Parquet file or a glob of them, checked by DuckDB without loading them into Python."""

    path: str | Path

    def relation(self) -> SqlRelation:
        import duckdb

        con = file_cursor()
        try:
            # Through the Python API the path travels as a value, not as SQL text.
            con.register("__hr_parquet", con.read_parquet(str(self.path)))
        except duckdb.Error as exc:
            raise QualityError(f"cannot read Parquet {self.path}: {exc}") from exc
        return DuckDBRelation(con, '"__hr_parquet"', "parquet")


@dataclass(frozen=True)
class CsvFile:
    """A CSV file (header row), read by DuckDB.

    ``options`` go to DuckDB's ``read_csv`` by keyword, e.g.
    ``CsvFile("x.csv", {"dtype": {"amount": "DOUBLE"}, "sep": ";"})``; CSV has no
    types, so giving them makes the checks independent of DuckDB's guesses.
    """

    path: str | Path
    options: dict[str, Any] = field(default_factory=dict)

    def relation(self) -> SqlRelation:
        import duckdb

        con = file_cursor()
        try:
            # The Python API takes the options as values, so no SQL is built from them.
            con.register("__hr_csv", con.read_csv(str(self.path), **self.options))
        except (duckdb.Error, TypeError) as exc:
            raise QualityError(f"cannot read CSV {self.path}: {exc}") from exc
        return DuckDBRelation(con, '"__hr_csv"', "csv")

    def __hash__(self) -> int:
        return hash(str(self.path))


_ENGINES: dict[str, Any] = {}      # most recently used last
_ENGINES_LOCK = threading.Lock()
MAX_ENGINES = 4                    # databases whose connections are kept between checks
POOL = {"pool_size": 2, "max_overflow": 4}


def _pg_engine(url: str) -> Any:
    """A pooled engine per database; the least recently used beyond MAX_ENGINES is closed, so a
    process that checks many databases does not hold their connections forever."""
    from sqlalchemy import create_engine

    from headrace.store.base import normalize_url

    key = normalize_url(url)
    with _ENGINES_LOCK:
        engine = _ENGINES.pop(key, None) or create_engine(key, pool_pre_ping=True, **POOL)
        _ENGINES[key] = engine
        while len(_ENGINES) > MAX_ENGINES:
            _ENGINES.pop(next(iter(_ENGINES))).dispose()
        return engine


def close_engines() -> None:
    """Close every pooled PostgreSQL connection of the quality checks."""
    with _ENGINES_LOCK:
        for engine in _ENGINES.values():
            engine.dispose()
        _ENGINES.clear()


class _PostgresRelation(SqlRelation):
    kind = "postgresql"
    dialect = PostgresDialect()

    def __init__(self, url: str, table: str, schema: str | None) -> None:
        self.engine = _pg_engine(url)
        self.safe_url = redact(url)
        self.regclass = qualified(schema, table)
        self.sql = self.regclass

    def columns(self) -> list[tuple[str, str]]:
        sql = ("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
               "WHERE attrelid = CAST(:t AS regclass) AND attnum > 0 AND NOT attisdropped "
               "ORDER BY attnum")
        return [(r[0], r[1]) for r in self.fetch(sql, {"t": self.regclass})]

    def fetch(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self._run(sql, params)[1]]

    def fetch_arrow(self, sql: str, params: dict[str, Any]) -> pa.Table:
        keys, rows = self._run(sql, params)
        return pa.table({k: [r[i] for r in rows] for i, k in enumerate(keys)})

    def _run(self, sql: str, params: dict[str, Any]) -> tuple[list[str], list[Any]]:
        from sqlalchemy import text
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with self.engine.connect() as conn:
                result = conn.execute(text(sql), params)
                return list(result.keys()), list(result.fetchall())
        except SQLAlchemyError as exc:
            msg = redact(str(exc).splitlines()[0])
            raise QualityError(f"PostgreSQL {self.safe_url} could not run a check on "
                               f"{self.sql}: {msg}") from exc


@dataclass(frozen=True)
class PostgresTable:
    """A PostgreSQL table; checks run as SQL on the server, rows stay there."""

    table: str
    url: str
    schema: str | None = None

    def relation(self) -> SqlRelation:
        return _PostgresRelation(self.url, self.table, self.schema)

    def __repr__(self) -> str:
        return f"PostgresTable({self.table!r}, {redact(self.url)!r}, schema={self.schema!r})"


def relation_for(data: Any) -> SqlRelation | None:
    """The SQL relation for a table or file reference, or None."""
    if isinstance(data, DuckDBTable | ParquetFile | CsvFile | PostgresTable):
        return data.relation()
    if isinstance(data, str | Path):
        suffix = Path(str(data)).suffix.lower()
        if suffix in (".parquet", ".pq"):
            return ParquetFile(data).relation()
        if suffix in (".csv", ".tsv"):
            return CsvFile(data).relation()
        raise QualityError(f"cannot run checks on {str(data)!r}: give a .parquet or .csv path, "
                           "or DuckDBTable(...) / PostgresTable(...) for a table")
    return None
