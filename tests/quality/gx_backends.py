"""GX's datasets loaded into every backend, in bulk: one DuckDB database, one PostgreSQL
schema filled by COPY in one transaction, one Parquet file per dataset."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from gx_cases import Case, arrow_from_pandas, datasets, pandas_frame, sql_table
from psycopg import sql

from headrace.quality import DuckDBTable, ParquetFile, PostgresTable
from headrace.quality.backends.sources import close_engines

PG_TYPES = {"int8": "SMALLINT", "int16": "SMALLINT", "int32": "INTEGER", "int64": "BIGINT",
            "float": "REAL", "double": "DOUBLE PRECISION", "string": "TEXT", "bool": "BOOLEAN",
            "date32[day]": "DATE", "timestamp[us]": "TIMESTAMP", "timestamp[us, tz=UTC]": "TIMESTAMPTZ"}


@dataclass
class Loaded:
    """Each backend's data per dataset, and the columns a frame library could not hold as GX's
    pandas frame holds them (a column of mixed Python types becomes text there)."""

    data: dict[str, dict[tuple[str, int], Any]] = field(default_factory=dict)
    lossy: dict[tuple[str, int], set[str]] = field(default_factory=dict)


@contextmanager
def loaded(cases: list[Case], tmp: Path, pg_url: str) -> Iterator[Loaded]:
    out = Loaded({b: {} for b in ("pandas", "polars", "arrow")})
    typed: dict[tuple[str, int], pa.Table] = {}
    for etype, ds, case in datasets(cases):
        key = (etype, ds)
        frame = pandas_frame(case)
        arrow = arrow_from_pandas(frame)
        out.data["pandas"][key] = frame
        out.data["arrow"][key] = arrow
        out.data["polars"][key] = pl.from_arrow(arrow)
        out.lossy[key] = {str(c) for c in frame.columns if frame[c].dtype == object
                          and len({type(v) for v in frame[c] if v is not None and v == v}) > 1}
        typed[key] = sql_table(case)
    with in_databases(typed, tmp, pg_url) as sql_data:
        out.data.update(sql_data)
        yield out


@contextmanager
def in_databases(tables: dict[Any, pa.Table], tmp: Path, pg_url: str) -> Iterator[dict[str, dict[Any, Any]]]:
    """Each table in one DuckDB database, as a Parquet file, and in one fresh PostgreSQL
    schema (created and filled by COPY in one transaction, dropped afterwards)."""
    out: dict[str, dict[Any, Any]] = {"duckdb": {}, "parquet": {}, "postgresql": {}}
    con = duckdb.connect()
    schema = "gx_" + uuid.uuid4().hex[:10]
    named: list[tuple[str, pa.Table]] = []
    for i, (key, table) in enumerate(tables.items()):
        name = f"t{i}"
        con.from_arrow(table).create(name)      # the Python API: no SQL text
        out["duckdb"][key] = DuckDBTable(name, con)
        path = tmp / f"{name}.parquet"
        pq.write_table(table, path)
        out["parquet"][key] = ParquetFile(path)
        out["postgresql"][key] = PostgresTable(name, pg_url, schema=schema)
        named.append((name, table))
    libpq = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(libpq, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        _copy_into(libpq, schema, named)
        yield out
    finally:
        con.close()
        close_engines()
        with psycopg.connect(libpq, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def _copy_into(libpq: str, schema: str, tables: list[tuple[str, pa.Table]]) -> None:
    """Every table created and filled by COPY in one transaction."""
    with psycopg.connect(libpq) as conn, conn.cursor() as cur:
        for name, table in tables:
            target = sql.Identifier(schema, name)
            cols = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(f.name), sql.SQL(PG_TYPES[str(f.type)]))
                                      for f in table.schema)
            cur.execute(sql.SQL("CREATE TABLE {} ({})").format(target, cols))
            if table.num_rows:
                with cur.copy(sql.SQL("COPY {} FROM STDIN").format(target)) as copy:
                    for row in zip(*(c.to_pylist() for c in table.columns), strict=True):
                        copy.write_row(row)
