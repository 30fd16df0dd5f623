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


def _recounted(store: Any) -> dict[str, dict[str, Any]]:
    from headrace.store.summaries import rebuild_run_summaries

    kept = _summaries(store)
    with store.transaction() as conn:
        rebuild_run_summaries(conn)
    return kept


def _left_by_a_dead_process(store: Any) -> tuple[str, str]:
    """A flow run and a task run (second attempt) Running, as a killed process leaves them."""
    from headrace.store.base import utcnow
    from headrace.store.transitions import change

    run_id, task_id, now = uuid.uuid4().hex, uuid.uuid4().hex, utcnow()
    store.start_flow_run({"id": run_id, "flow_name": "f", "name": "f-dead", "state_type": "RUNNING",
                          "state_name": "Running", "started_at": now, "pid": 2**22 + 12345},
                         [change(run_id, "RUNNING", "Running", now)], adopt=False)
    store.write_batch(
        task_inserts=[{"id": task_id, "flow_run_id": run_id, "task_name": "t", "task_key": "t-0",
                       "state_type": "RUNNING", "state_name": "Retrying", "attempts": 2, "created_at": now}],
        task_updates=[], changes=[{"run_id": task_id, "run_kind": "task", "from_type": None, "to_type": "RUNNING",
                                   "to_name": "Retrying", "message": None, "at": now}],
        log_rows=[], metric_rows=[], io_rows=[], flow_updates=[])
    return run_id, task_id


def test_summaries_count_tasks_ended_by_crash_marking_timeouts_and_cancels(store: Any) -> None:
    import threading
    import time

    from headrace import flow, task

    crashed_run, _ = _left_by_a_dead_process(store)
    assert store.mark_crashed() == [crashed_run]
    release, started = threading.Event(), threading.Event()

    @task
    def stuck() -> int:
        started.set()
        release.wait(10)
        return 1

    @task
    def quick() -> int:
        return 2

    @flow(timeout_seconds=0.3)
    def timed() -> int:
        return quick() + stuck()

    @task
    def tick() -> None:
        time.sleep(0.02)

    @flow
    def cancelled() -> int:
        waiting = stuck.submit()
        for _ in range(500):  # a cancel ends the flow run at its next task
            tick()
        return quick() + waiting.result()  # type: ignore[no-any-return]

    assert timed(return_state=True).name == "TimedOut"
    release.set()
    release.clear()
    started.clear()
    holder: list[Any] = []
    thread = threading.Thread(target=lambda: holder.append(cancelled(return_state=True)))
    thread.start()
    assert started.wait(10)
    store.writer.flush()
    store.request_cancel(next(r["id"] for r in store.list_flow_runs() if r["flow_name"] == "cancelled"))
    thread.join(30)
    release.set()
    assert holder[0].is_cancelled()
    store.writer.flush()
    kept = _recounted(store)
    assert _summaries(store) == kept  # what the writes kept equals a full recount
    by_flow = {r["flow_name"]: r["id"] for r in store.list_flow_runs()}
    assert (kept[crashed_run]["tasks_total"], kept[crashed_run]["tasks_failed"],
            kept[crashed_run]["tasks_retried"]) == (1, 1, 1)
    assert (kept[by_flow["timed"]]["tasks_completed"], kept[by_flow["timed"]]["tasks_cancelled"]) == (1, 1)
    assert kept[by_flow["cancelled"]]["tasks_cancelled"] >= 1  # ``stuck``, closed when its flow run ended


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
