"""io inside flows: exactly-once loads across task retries and re-runs, datasets on the run."""

from __future__ import annotations

import threading
from typing import Any

import pandas as pd
import pytest
from pg_helpers import kill_backend, make_slow_once, victim_pid
from sqlalchemy import create_engine

from headrace import flow, task
from headrace.io import read_sql, write_table
from headrace.store import get_store


def frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"order_id": range(n), "amount": [1.5] * n})


def count(url: str, table: str = "sales") -> int:
    return int(read_sql(f"SELECT count(*) AS n FROM {table}", url)["n"][0])


def test_retry_after_a_dropped_connection_loads_exactly_once(pg_libpq_url: str, pg_url: str,
                                                             pg_schema: str) -> None:
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    write_table(frame(0).astype({"order_id": "int64"}), "sales", pg_libpq_url)
    make_slow_once(admin, pg_schema)
    attempts: list[str] = []

    @task(retries=2, retry_delay_seconds=0)
    def load(df: pd.DataFrame) -> int:
        attempts.append("try")
        return write_table(df, "sales", pg_libpq_url)  # append: a duplicate would show

    @flow
    def pipeline() -> int:
        return load(frame(3000))

    killer = threading.Thread(target=lambda: kill_backend(admin, victim_pid(admin, pg_schema)))
    killer.start()
    try:
        assert pipeline() == 3000
    finally:
        killer.join(30)
        admin.dispose()
    assert len(attempts) == 2  # the first attempt lost its connection mid-load
    assert count(pg_libpq_url) == 3000
    assert count(pg_libpq_url, "headrace_load_ledger") == 1


@pytest.mark.parametrize("backend", ["postgresql", "duckdb", "sqlite"])
def test_a_retry_after_a_committed_load_is_a_no_op(backend: str, request: Any,
                                                   tmp_path: Any) -> None:
    url = {"postgresql": lambda: request.getfixturevalue("pg_libpq_url"),
           "duckdb": lambda: f"duckdb:///{tmp_path / 'w.duckdb'}",
           "sqlite": lambda: f"sqlite:///{tmp_path / 'w.sqlite'}"}[backend]()
    results: list[int] = []

    @task(retries=2, retry_delay_seconds=0)
    def load(df: pd.DataFrame) -> int:
        rows = write_table(df, "sales", url)
        results.append(rows)
        if len(results) == 1:
            raise ConnectionError("the worker died after the commit")  # before the task ended
        return rows

    @flow
    def pipeline() -> int:
        return load(frame(100))

    assert pipeline() == 100
    assert results == [100, 100]  # the retry got the first count back ...
    assert count(url) == 100  # ... and wrote nothing


def test_loads_and_reads_are_recorded_on_the_run_without_secrets(pg_libpq_url: str) -> None:
    url = pg_libpq_url.replace("postgres@", "postgres:hunter2-s3cret@")

    @task
    def roundtrip() -> int:
        write_table(frame(5), "sales", url)
        return len(read_sql("SELECT * FROM sales WHERE order_id < :n", url, {"n": 3}))

    @flow
    def pipeline() -> int:
        return roundtrip()

    state = pipeline(return_state=True)  # type: ignore[call-arg]
    assert state.is_completed()
    store = get_store()
    store.writer.flush()
    rows = store.get_dataset_io(state.run_id)
    assert {(r["direction"], r["kind"], r["rows"]) for r in rows} == {
        ("output", "postgresql", 5), ("input", "postgresql", 3)}
    # Named as OpenLineage does (postgres://host:port, database.schema.table), never with the password.
    schema = pg_libpq_url.rsplit("%3D", 1)[1]
    assert {(r["uri"], r["name"]) for r in rows} == {("postgres://127.0.0.1:5432", f"test.{schema}.sales")}
    recorded = repr(rows) + repr(store.get_logs(state.run_id)) + repr(store.get_flow_run(
        state.run_id))
    assert "hunter2" not in recorded


def test_a_flow_retry_does_not_load_twice(tmp_path: Any) -> None:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    runs: list[int] = []

    @task
    def load(n: int) -> int:
        return write_table(frame(n), "sales", url)  # append: a second load would show

    @flow(retries=1, retry_delay_seconds=0)
    def pipeline() -> int:
        rows = load(50)
        runs.append(rows)
        if len(runs) == 1:
            raise RuntimeError("the flow failed after its load")
        return rows

    assert pipeline() == 50
    assert count(url) == 50
