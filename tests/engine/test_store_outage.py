"""A dropped run-store connection in the middle of a flow loses no record."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, text

from headrace import flow, task
from headrace.store import get_store

PG_ADMIN_URL = os.environ.get("HEADRACE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _kill_store_connections() -> int:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        killed = conn.execute(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :app"),
            {"app": f"headrace-store-{os.getpid()}"}).scalar_one()
    admin.dispose()
    return int(killed)


def test_records_survive_a_dropped_store_connection(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADRACE_STORE", pg_url)
    killed: list[int] = []

    @task
    def step(i: int) -> int:
        if i == 20:
            get_store().writer.flush()
            killed.append(_kill_store_connections())
        return i

    @flow
    def pipeline() -> int:
        return sum(step(i) for i in range(40))

    assert pipeline() == sum(range(40))
    assert killed and killed[0] >= 1
    run = get_store().list_flow_runs(limit=1)[0]
    assert run["state_name"] == "Completed"
    tasks = get_store().list_task_runs(run["id"])
    assert len(tasks) == 40 and all(t["state_name"] == "Completed" for t in tasks)
