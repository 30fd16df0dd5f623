"""Fixtures for lineage: a small DuckDB source with orders and customers.

The `store` fixture (tests/conftest.py) runs each test on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest


@pytest.fixture
def source_db(tmp_path: Path) -> Path:
    path = tmp_path / "src.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE orders AS SELECT i AS order_id, i % 5 AS customer_id, i * 1.5 AS amount, "
                    "DATE '2024-01-01' + CAST(i AS INTEGER) AS order_date FROM range(40) t(i)")
        con.execute("CREATE TABLE customers AS SELECT i AS id, 'c' || i AS name, "
                    "CASE WHEN i % 2 = 0 THEN 'North' ELSE 'South' END AS region FROM range(5) t(i)")
    return path


@pytest.fixture
def sqlite_store():  # type: ignore[no-untyped-def]
    """The embedded store only: for tests about runners, not about the store (kept lean)."""
    from headrace.store import get_store

    return get_store()
