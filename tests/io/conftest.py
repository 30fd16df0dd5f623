"""io fixtures: one database URL per backend, a real S3-compatible server on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["postgresql", "duckdb", "sqlite"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same io test suite runs against every SQL backend."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_libpq_url"))
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    return f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
