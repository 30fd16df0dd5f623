"""Dataset identity by the OpenLineage naming rules, never with a secret in it.

================  ===========================  ==============================
source            namespace                    name
================  ===========================  ==============================
PostgreSQL        ``postgres://host:port``     ``database.schema.table``
DuckDB            ``duckdb://<file path>``     ``database.schema.table``
SQLite            ``sqlite://<file path>``     ``table``
other SQL         ``<scheme>://host:port``     ``database.table``
local files       ``file``                     the absolute path
object storage    ``s3://bucket``              the key (path in the bucket)
================  ===========================  ==============================

A namespace is built from the host, port or file path only, so a URL's user and password
never reach it; a last ``redact`` pass hides any registered secret that a path might hold.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

from headrace.lineage.model import DatasetRef
from headrace.secrets import redact

# sqlglot's dialect for each source (None: sqlglot's default)
DIALECTS = {"postgres": "postgres", "duckdb": "duckdb", "sqlite": "sqlite", "mysql": "mysql",
            "mssql": "tsql", "oracle": "oracle", "snowflake": "snowflake", "bigquery": "bigquery"}
_DEFAULT_PORTS = {"postgres": 5432, "mysql": 3306, "mssql": 1433, "oracle": 1521}
_WILDCARDS = frozenset("*?[")


@dataclass(frozen=True)
class SqlSource:
    """Where a SQL connection points: its namespace and how it completes a table's name."""

    scheme: str                 # postgres, duckdb, sqlite, mysql, ...
    namespace: str
    database: str | None = None
    schema: str | None = None   # the default schema (public, main); None where there are none

    @property
    def dialect(self) -> str | None:
        return DIALECTS.get(self.scheme)

    def table(self, table: str, schema: str | None = None, database: str | None = None) -> DatasetRef:
        """The dataset of ``table``, completed with this source's database and default schema."""
        if self.scheme == "sqlite":
            name = table if not schema or schema == "main" else f"{schema}.{table}"
        elif self.schema is None:   # database.table (MySQL and most others)
            name = ".".join(p for p in (schema or self.database, table) if p)
        else:
            name = ".".join(p for p in (database or self.database, schema or self.schema, table) if p)
        return DatasetRef(self.namespace, redact(name))


def sql_source(url: str, *, duckdb_path: str | None = None) -> SqlSource:
    """The source a database URL names (the URL may hold a password: it is not kept).

    >>> sql_source("postgresql://etl:s3cret@db.internal/sales").namespace
    'postgres://db.internal:5432'
    """
    from sqlalchemy.engine import make_url

    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    scheme = {"postgresql": "postgres", "mssql": "mssql"}.get(scheme, scheme)
    try:
        u = make_url(url if "://" in url else f"{url}://")
    except Exception:  # an odd URL still gets a namespace, just a coarse one
        return SqlSource(scheme, f"{scheme}://unknown")
    if scheme == "duckdb":
        return duckdb_source(duckdb_path if duckdb_path is not None else (u.database or ":memory:"))
    if scheme == "sqlite":
        path = u.database or ":memory:"
        if path.startswith("file:"):   # sqlite:///file:PATH?mode=ro&uri=true
            path = path[5:]
        where = "memory" if path in ("", ":memory:") else os.path.abspath(path)
        return SqlSource("sqlite", redact(f"sqlite://{where}"))
    host = u.host or str(u.query.get("host") or "localhost")
    port = u.port or _DEFAULT_PORTS.get(scheme)
    authority = f"{host}:{port}" if port else host
    schema = "public" if scheme == "postgres" else "dbo" if scheme == "mssql" else None
    if scheme == "postgres":
        schema = _search_path(str(u.query.get("options") or "")) or schema
    return SqlSource(scheme, redact(f"{scheme}://{authority}"), u.database or None, schema)


def _search_path(options: str) -> str | None:
    """The first schema of ``options=-csearch_path=a,b`` (where unqualified tables live)."""
    match = re.search(r"search_path\s*=\s*([^\s,]+)", urllib.parse.unquote(options))
    return match.group(1).strip('"') if match else None


def duckdb_source(path: str) -> SqlSource:
    """A DuckDB database file (or ``:memory:``): its catalog is the file's stem, schema ``main``."""
    if path in ("", ":memory:", "memory"):
        return SqlSource("duckdb", "duckdb://memory", "memory", "main")
    full = os.path.abspath(path)
    stem = os.path.splitext(os.path.basename(full))[0]
    return SqlSource("duckdb", redact(f"duckdb://{full}"), stem, "main")


def duckdb_connection_source(con: Any) -> SqlSource:
    """The database a DuckDB connection has open (``duckdb://memory`` when it cannot tell)."""
    try:
        row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
                          ).fetchone()
    except Exception:  # a closed or unusual connection: lineage is not worth failing for
        return duckdb_source(":memory:")
    return duckdb_source(row[0] if row and row[0] else ":memory:")


def file_dataset(url: str, protocol: str | None = None, path: str | None = None) -> DatasetRef:
    """The dataset of a file, folder or glob (a glob is named by the folder before its wildcard).

    >>> file_dataset("s3://raw/orders/2024-*.ndjson")
    DatasetRef(namespace='s3://raw', name='orders')
    >>> file_dataset("/data/in.csv").namespace
    'file'
    """
    if protocol is None or path is None:
        protocol, _, rest = url.partition("://") if "://" in url else ("file", "", url)
        path = rest
    protocol = protocol.lower()
    path = _before_wildcard(path)
    if protocol in ("file", "local"):
        return DatasetRef("file", redact(os.path.abspath(path) if path else "/"))
    bucket, _, key = path.lstrip("/").partition("/")
    scheme = {"s3a": "s3", "gcs": "gs", "abfss": "abfs"}.get(protocol, protocol)
    return DatasetRef(redact(f"{scheme}://{bucket}"), redact(key.rstrip("/") or "/"))


def _before_wildcard(path: str) -> str:
    parts = path.split("/")
    for i, part in enumerate(parts):
        if _WILDCARDS & set(part):
            return "/".join(parts[:i]) or ("/" if path.startswith("/") else "")
    return path


def parse_dataset(value: Any) -> DatasetRef:
    """A ``DatasetRef`` from what users write: a ``DatasetRef``, ``"namespace/name"`` for URLs
    (``"postgres://db:5432/dwh.public.orders"``, ``"s3://bucket/key"``) or a local path."""
    if isinstance(value, DatasetRef):
        return DatasetRef(redact(value.namespace), redact(value.name))
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"a dataset is a DatasetRef, a URL such as 'postgres://host:5432/db.schema.table' "
                         f"or a file path, not {value!r}")
    text = value.strip()
    if "://" not in text:
        return file_dataset(text)
    scheme, _, rest = text.partition("://")
    scheme = scheme.split("+", 1)[0].lower()       # postgresql+psycopg -> postgresql
    if scheme == "file":
        return file_dataset(rest)
    if "@" in rest.split("/", 1)[0]:
        rest = rest.split("/", 1)[0].rsplit("@", 1)[1] + rest[len(rest.split("/", 1)[0]):]  # user:password@: never kept
    if scheme in ("duckdb", "sqlite"):
        path, _, name = rest.rpartition("/")
        return DatasetRef(redact(f"{scheme}://{path}"), redact(name))
    authority, _, name = rest.partition("/")
    scheme = "postgres" if scheme == "postgresql" else scheme
    return DatasetRef(redact(f"{scheme}://{authority}"), redact(name))
