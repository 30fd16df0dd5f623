"""One dataset shown to the checks through every backend they run on."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from qdata import sample_table
from sqlalchemy.dialects import postgresql as pg

from headrace.quality import CsvFile, DuckDBTable, ParquetFile, PostgresTable

BACKENDS = ["pandas", "polars", "arrow", "duckdb", "parquet", "csv", "postgresql"]

PG_TYPES = {"int64": sa.BigInteger, "double": pg.DOUBLE_PRECISION, "string": sa.Text,
            "large_string": sa.Text, "bool": sa.Boolean, "date32[day]": sa.Date, "timestamp[us]": sa.DateTime}

CSV_TYPES = {"int64": "BIGINT", "double": "DOUBLE", "string": "VARCHAR", "large_string": "VARCHAR",
             "bool": "BOOLEAN", "date32[day]": "DATE", "timestamp[us]": "TIMESTAMP"}

_names = itertools.count()


def _postgres(table: pa.Table, pg_url: str) -> PostgresTable:
    """The table in PostgreSQL, written through SQLAlchemy constructs (names quoted, values bound)."""
    name = f"q{next(_names)}"
    target = sa.Table(name, sa.MetaData(), *(sa.Column(f.name, PG_TYPES[str(f.type)]()) for f in table.schema))
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        target.create(conn)
        if table.num_rows:
            conn.execute(target.insert(), table.to_pylist())
    engine.dispose()
    return PostgresTable(name, pg_url)


def convert(kind: str, table: pa.Table, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    if kind == "pandas":
        return table.to_pandas()
    if kind == "polars":
        import polars as pl

        return pl.from_arrow(table)
    if kind == "arrow":
        return table
    if kind == "duckdb":
        con = duckdb.connect()
        con.register("src", table)
        con.execute("CREATE TABLE data AS SELECT * FROM src")
        return DuckDBTable("data", con)
    if kind == "parquet":
        path = tmp_path / f"data{next(_names)}.parquet"
        pq.write_table(table, path)
        return ParquetFile(path)
    if kind == "csv":
        import pyarrow.csv as pcsv

        path = tmp_path / f"data{next(_names)}.csv"
        pcsv.write_csv(table, path)
        return CsvFile(path, {"dtype": {f.name: CSV_TYPES[str(f.type)] for f in table.schema}})
    if kind == "postgresql":
        return _postgres(table, request.getfixturevalue("pg_url"))
    raise ValueError(kind)


@pytest.fixture(autouse=True)
def _close_pg_connections() -> Iterator[None]:
    """Each test's schema is a database URL of its own: give its pooled connections back."""
    yield
    from headrace.quality.backends.sources import close_engines

    close_engines()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def to_data(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[pa.Table], Any]:
    """Turn an Arrow table into the backend's kind of data."""
    return lambda table: convert(backend, table, tmp_path, request)


@pytest.fixture
def data(to_data: Callable[[pa.Table], Any]) -> Any:
    return to_data(sample_table())


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The GX conformance counts per backend, or a visible note that the cases did not run."""
    import sys

    module = sys.modules.get("test_gx_conformance")
    report = getattr(module, "REPORT", None)
    if report is None:
        return
    write = terminalreporter.write_line
    if "missing" in report:
        terminalreporter.section("GX conformance", yellow=True)
        write(f"NOT RUN: Great Expectations' test definitions are missing at {report['missing']}")
        return
    if "results" not in report:
        return
    terminalreporter.section("GX conformance")
    gx_pandas = sum(1 for c in report["cases"] if c.runs_on("pandas"))
    for backend, results in report["results"].items():
        passed = report.get("passed", {}).get(backend, "?")
        extra = f" (GX runs {gx_pandas} cases on pandas)" if backend == "pandas" else ""
        held = report["not_held"].get(backend)
        extra += f"; {held} cases read a mixed-type column only pandas holds" if held else ""
        write(f"{backend:<11} {passed}/{len(results)} cases pass{extra}")
