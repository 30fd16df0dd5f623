"""The store's read side for the page, on SQLite and PostgreSQL: summaries, keyset pages, capped counts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import seed
from sqlalchemy import create_engine, delete, select, text


def _summaries(store: Any) -> dict[str, dict[str, Any]]:
    from headrace.store.schema import run_summaries

    with store.read() as conn:
        return {r["flow_run_id"]: {k: v for k, v in r.items() if k != "updated_at"}
                for r in conn.execute(select(run_summaries)).mappings()}


def test_summaries_kept_while_writing_equal_a_recount(store: Any, tmp_path: Path) -> None:
    from headrace.store.summaries import rebuild_run_summaries

    seeded = seed(store, tmp_path)
    kept = _summaries(store)
    assert kept[seeded.bad]["tasks_failed"] == 1 and kept[seeded.bad]["tasks_retried"] == 1
    assert kept[seeded.checked]["rows_quarantined"] == 2 and kept[seeded.checked]["checks_failed"] == 2
    with store.transaction() as conn:
        rebuild_run_summaries(conn)
    assert _summaries(store) == kept


def test_keyset_pages_never_repeat_or_skip_runs_created_at_the_same_instant(store: Any) -> None:
    from headrace.store import views

    same = datetime(2024, 5, 1, 6, 0, tzinfo=UTC)
    ids = [uuid.uuid4().hex for _ in range(23)]
    for i, run_id in enumerate(ids):
        store.insert_flow_run({"id": run_id, "flow_name": "f", "name": f"f-{i}", "state_type": "COMPLETED",
                               "state_name": "Completed", "created_at": same if i < 20 else same - timedelta(days=i)})
    seen: list[str] = []
    cursor = None
    while True:
        rows, cursor = views.runs_page(store, views.RunFilter(), after=cursor, limit=7)
        seen += [r["id"] for r in rows]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 23
    assert views.count_runs(store, views.RunFilter(), cap=10) == (10, True)
    assert views.count_runs(store, views.RunFilter(), cap=100) == (23, False)
    assert views.count_runs(store, views.RunFilter(states=("FAILED",))) == (0, False)


def test_the_migration_sums_runs_stored_before_it(store_url: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from headrace.store import RunStore, get_store
    from headrace.store.schema import migrations_table, rerun_plans, run_summaries

    monkeypatch.setenv("HEADRACE_STORE", store_url)
    store = get_store(store_url)
    seeded = seed(store, tmp_path)
    kept = _summaries(store)
    with store.transaction() as conn:  # as a store written before 0013 looks
        conn.execute(delete(migrations_table).where(migrations_table.c.id == "0013_ui_summaries"))
        run_summaries.drop(conn)
        rerun_plans.drop(conn)
    again = RunStore(store_url)
    try:
        assert again.schema_version() == "0013_ui_summaries"
        assert _summaries(again) == kept and seeded.bad in kept
    finally:
        again.close()


@pytest.mark.postgres
def test_an_unreachable_store_gives_a_clear_page_and_the_server_stays_up(tmp_path: Path) -> None:
    import httpx

    from headrace.ui import UIServer, UISettings

    name = f"hr_ui_{uuid.uuid4().hex[:10]}"
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test", isolation_level="AUTOCOMMIT")
    srv = UIServer(UISettings(port=0, store_url=url)).start()
    try:
        with httpx.Client(base_url=srv.url, timeout=20) as client:
            page = client.get("/runs")
            assert page.status_code == 503 and "The run store cannot be reached" in page.text and name in page.text
            api = client.get("/api/runs")
            assert api.status_code == 503 and "does not exist" in api.json()["detail"]
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            assert client.get("/runs").status_code == 200  # the same server, once the store is back
    finally:
        srv.stop()
        from headrace import store as store_mod

        for key in [k for k in store_mod._STORES if name in k]:
            store_mod._STORES.pop(key).close()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
