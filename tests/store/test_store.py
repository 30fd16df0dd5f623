"""One store test suite, run on SQLite and on PostgreSQL."""

from __future__ import annotations

import multiprocessing as mp
import os
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import insert

from headrace.errors import RunNotFound, SchemaVersionError, StoreNotWritable
from headrace.store import RunStore, utcnow
from headrace.store.schema import migrations_table


def _flow_row(**kw: object) -> dict[str, object]:
    rid = uuid.uuid4().hex
    return {"id": rid, "flow_name": "f", "name": f"f-{rid[:8]}", "state_type": "RUNNING",
            "state_name": "Running", "run_count": 1, "created_at": utcnow(), "started_at": utcnow(),
            "cancel_requested": False, **kw}


def _task_row(flow_run_id: str, **kw: object) -> dict[str, object]:
    return {"id": uuid.uuid4().hex, "flow_run_id": flow_run_id, "task_name": "t", "task_key": "t-0",
            "state_type": "RUNNING", "state_name": "Running", "state_message": None, "attempts": 1,
            "tags": None, "cache_key": None, "inputs_hash": None, "error": None, "result": None,
            "created_at": utcnow(), "started_at": utcnow(), "ended_at": None, **kw}


def test_migrations_are_recorded(store: RunStore) -> None:
    assert store.schema_version() >= "0001_initial"
    # Opening again applies nothing and keeps working.
    again = RunStore(store.url)
    assert again.schema_version() == store.schema_version()
    again.close()


def test_newer_schema_is_refused_with_a_clear_error(store: RunStore) -> None:
    with store.transaction() as conn:
        conn.execute(insert(migrations_table).values(id="9999_from_the_future", applied_at=utcnow()))
    with pytest.raises(SchemaVersionError, match="9999_from_the_future.*upgrade headrace"):
        RunStore(store.url)


def test_flow_runs_round_trip_and_filter(store: RunStore) -> None:
    a = _flow_row(flow_name="sales", state_type="COMPLETED", state_name="Completed")
    b = _flow_row(flow_name="sales", state_type="FAILED", state_name="Failed")
    c = _flow_row(flow_name="other")
    for row in (a, b, c):
        store.insert_flow_run(row)
    assert {r["id"] for r in store.list_flow_runs(flow="sales")} == {a["id"], b["id"]}
    assert [r["id"] for r in store.list_flow_runs(state="failed")] == [b["id"]]
    assert len(store.list_flow_runs(limit=2)) == 2
    got = store.get_flow_run(str(a["id"])[:10])
    assert got["id"] == a["id"] and got["created_at"].tzinfo is not None
    with pytest.raises(RunNotFound, match="runs list"):
        store.get_flow_run("doesnotexist")


def test_batches_insert_then_update_task_runs(store: RunStore) -> None:
    fr = _flow_row()
    store.insert_flow_run(fr)
    tr = _task_row(str(fr["id"]))
    now = utcnow()
    store.write_batch(task_inserts=[tr], task_updates=[], flow_updates=[],
                      changes=[{"run_id": tr["id"], "run_kind": "task", "from_type": "PENDING",
                                "to_type": "RUNNING", "to_name": "Running", "message": None, "at": now}],
                      log_rows=[{"flow_run_id": fr["id"], "task_run_id": tr["id"], "at": now, "level": 20,
                                 "logger": "x", "message": "hello"}],
                      metric_rows=[{"flow_run_id": fr["id"], "task_run_id": None, "name": "rows",
                                    "value": 3.0, "at": now}],
                      io_rows=[{"flow_run_id": fr["id"], "task_run_id": tr["id"], "kind": "duckdb",
                                "uri": "duckdb:///w.db", "name": "fact", "direction": "output",
                                "rows": 3, "bytes": 10}])
    done = {**tr, "state_type": "COMPLETED", "state_name": "Completed", "ended_at": utcnow()}
    ends = [{"run_id": tr["id"], "run_kind": "task", "from_type": "RUNNING", "to_type": "COMPLETED",
             "to_name": "Completed", "message": None, "at": now},
            {"run_id": fr["id"], "run_kind": "flow", "from_type": "RUNNING", "to_type": "COMPLETED",
             "to_name": "Completed", "message": None, "at": now}]
    store.write_batch(task_inserts=[], task_updates=[done], changes=ends, log_rows=[], metric_rows=[],
                      flow_updates=[{"id": fr["id"], "rows_loaded": 3}],
                      io_rows=[{"flow_run_id": fr["id"], "task_run_id": tr["id"], "kind": "duckdb",
                                "uri": "duckdb:///w.db", "name": "fact", "direction": "input"}])
    tasks = store.list_task_runs(str(fr["id"]))
    assert [(t["id"], t["state_name"]) for t in tasks] == [(tr["id"], "Completed")]
    assert store.get_flow_run(str(fr["id"]))["state_name"] == "Completed"
    assert [line["message"] for line in store.get_logs(str(fr["id"]))] == ["hello"]
    assert [(m["name"], m["value"]) for m in store.get_metrics(str(fr["id"]))] == [("rows", 3.0)]
    io = store.get_dataset_io(str(fr["id"]))
    assert [(i["direction"], i["name"], i["rows"]) for i in io] == [("output", "fact", 3), ("input", "fact", None)]
    assert io[0]["dataset_id"] == io[1]["dataset_id"]  # one dataset identity


def test_cache_entries_expire(store: RunStore) -> None:
    now = utcnow()
    store.put_cached("k", "t", '{"kind":"json","value":1}', now + timedelta(minutes=5), now)
    assert store.get_cached("k", now + timedelta(minutes=4)) is not None
    assert store.get_cached("k", now + timedelta(minutes=6)) is None
    store.put_cached("k", "t", '{"kind":"json","value":2}', None, now)  # replaced, never expires
    assert store.get_cached("k", now + timedelta(days=999)) == '{"kind":"json","value":2}'


def test_concurrency_slots_respect_limits(store: RunStore) -> None:
    store.set_concurrency_limit("db", 2)
    assert store.try_acquire_slots(["db", "free"], "h1", None)
    assert store.try_acquire_slots(["db"], "h2", None)
    assert not store.try_acquire_slots(["db"], "h3", None)
    assert store.concurrency_usage() == {"db": 2}
    store.release_slots("h1")
    assert store.try_acquire_slots(["db"], "h3", None)
    assert store.try_acquire_slots(["untracked"], "h4", None)  # no limit, nothing held


def test_runs_of_dead_processes_are_marked_crashed(store: RunStore) -> None:
    proc = mp.get_context("spawn").Process(target=os.getpid)
    proc.start()
    proc.join()
    dead = _flow_row(pid=proc.pid, hostname=__import__("socket").gethostname())
    alive = _flow_row(pid=os.getpid(), hostname=__import__("socket").gethostname())
    store.insert_flow_run(dead)
    store.insert_flow_run(alive)
    tr = _task_row(str(dead["id"]))
    store.write_batch(task_inserts=[tr], task_updates=[], changes=[], log_rows=[], metric_rows=[],
                      io_rows=[], flow_updates=[])
    store.set_concurrency_limit("x", 1)
    assert store.try_acquire_slots(["x"], str(tr["id"]), str(dead["id"]))
    assert store.mark_crashed() == [dead["id"]]
    assert store.get_flow_run(str(dead["id"]))["state_name"] == "Crashed"
    assert store.list_task_runs(str(dead["id"]))[0]["state_name"] == "Crashed"
    assert store.get_flow_run(str(alive["id"]))["state_name"] == "Running"
    assert store.concurrency_usage() == {}  # the crashed run's slot is released


def test_unwritable_store_location_is_a_one_line_error(tmp_path: object) -> None:
    with pytest.raises(StoreNotWritable, match="HEADRACE_HOME"):
        RunStore("sqlite:////proc/headrace-cannot-write-here/headrace.db")


def _hammer(url: str, n: int) -> None:
    os.environ["HEADRACE_STORE"] = url
    from headrace import flow, task

    @task
    def one(i: int) -> int:
        return i

    @flow
    def many() -> None:
        for i in range(n):
            one(i)

    for _ in range(3):
        many()


def test_several_processes_write_at_once_without_lock_errors(store_url: str) -> None:
    RunStore(store_url).close()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_hammer, args=(store_url, 150)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    check = RunStore(store_url)
    runs = check.list_flow_runs(limit=100)
    assert len(runs) == 12 and all(r["state_name"] == "Completed" for r in runs)
    assert all(len(check.list_task_runs(r["id"])) == 150 for r in runs)
