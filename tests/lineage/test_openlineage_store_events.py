"""Final OpenLineage events for runs the store ends outside the engine: a run whose process died
(crash marking) gets FAIL, a Scheduled run cancelled before it starts gets START + ABORT, each
emitted by the process that records the change, valid against the official schemas."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from openlineage_schemas import validate_lines

from headrace.cli import main
from headrace.lineage.openlineage import close_emitters
from headrace.store import get_store, utcnow


@pytest.fixture
def events_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "events" / "openlineage.ndjson"
    monkeypatch.setenv("HEADRACE_OPENLINEAGE_URL", path.as_uri())
    yield path
    close_emitters()


def read_events(path: Path) -> list[dict[str, Any]]:
    close_emitters()
    return validate_lines(path.read_text()) if path.exists() else []


def runs_of(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        out.setdefault(e["run"]["runId"], []).append(e)
    return out


CRASHING = textwrap.dedent("""
    import os, signal
    from headrace import flow, task
    from headrace.lineage.openlineage import emitter_from_env
    from headrace.store import get_store

    @task
    def waiting() -> int:
        return 1

    @task
    def doomed(x: int) -> None:
        # what a longer task would have by now: its Running state stored, its START delivered
        get_store().writer.flush()
        emitter_from_env().drain()
        os.kill(os.getpid(), signal.SIGKILL)

    @flow
    def crashing() -> None:
        doomed(waiting())

    crashing()
""")


def test_a_crashed_run_gets_its_fail_events_from_the_process_that_marks_it(
        events_file: Path, tmp_path: Path) -> None:
    script = tmp_path / "crashing.py"
    script.write_text(CRASHING)
    done = subprocess.run([sys.executable, str(script)], env=os.environ.copy(), capture_output=True, timeout=120)
    assert done.returncode == -9, done.stderr.decode()[-2000:]
    before = validate_lines(events_file.read_text())
    assert [(e["job"]["name"], e["eventType"]) for e in before if e["eventType"] != "COMPLETE"] == [
        ("crashing", "START"), ("crashing.waiting", "START"), ("crashing.doomed", "START")]

    store = get_store()  # opening the store marks the runs of dead processes (mark_crashed)
    store.mark_crashed()
    crashed = [r["id"] for r in store.list_flow_runs() if r["state_name"] == "Crashed"]
    assert len(crashed) == 1
    events = read_events(events_file)
    by_run = runs_of(events)
    for run_id, run_events in by_run.items():  # each run: one START, then one final event
        assert [e["eventType"] for e in run_events][0] == "START", run_id
        assert len(run_events) == 2, [(e["job"]["name"], e["eventType"]) for e in run_events]
    finals = {e["job"]["name"]: e for e in events[len(before):]}
    assert set(finals) == {"crashing", "crashing.doomed"}
    assert all(e["eventType"] == "FAIL" for e in finals.values())
    assert "ended without finishing" in finals["crashing"]["run"]["facets"]["errorMessage"]["message"]
    doomed = finals["crashing.doomed"]
    assert doomed["run"]["facets"]["parent"]["run"]["runId"] == finals["crashing"]["run"]["runId"]
    assert uuid.UUID(finals["crashing"]["run"]["runId"]) == uuid.UUID(crashed[0])
    assert store.mark_crashed() == []   # nothing ends twice
    assert len(read_events(events_file)) == len(events)


def test_a_pending_task_crashed_with_its_flow_gets_start_and_fail(events_file: Path) -> None:
    store = get_store()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    flow_id = uuid.uuid4().hex
    store.insert_flow_run({"id": flow_id, "flow_name": "nightly", "name": "nightly-x", "state_type": "RUNNING",
                           "state_name": "Running", "run_count": 1, "started_at": utcnow(),
                           "cancel_requested": False, "pid": int(dead.stdout)})
    task_id = uuid.uuid4().hex
    store.write_batch(task_inserts=[{
        "id": task_id, "flow_run_id": flow_id, "task_name": "load", "task_key": "load-0", "state_type": "PENDING",
        "state_name": "Pending", "state_message": None, "attempts": 0, "tags": None, "cache_key": None,
        "inputs_hash": None, "error": None, "result": None, "created_at": utcnow(), "started_at": None,
        "ended_at": None}], task_updates=[], changes=[], log_rows=[], metric_rows=[], io_rows=[], flow_updates=[])
    assert store.mark_crashed() == [flow_id]
    events = read_events(events_file)
    assert [(e["job"]["name"], e["eventType"]) for e in events] == [
        ("nightly.load", "START"), ("nightly.load", "FAIL"), ("nightly", "FAIL")]


def test_a_scheduled_run_cancelled_before_it_starts_gets_start_and_abort(events_file: Path) -> None:
    store = get_store()
    run_id = uuid.uuid4().hex
    slot = datetime(2030, 1, 1, 6, 0, tzinfo=UTC)
    store.insert_flow_run({"id": run_id, "flow_name": "nightly", "name": "nightly-slot", "state_type": "SCHEDULED",
                           "state_name": "Scheduled", "run_count": 0, "expected_start": slot,
                           "cancel_requested": False, "pid": None})
    assert main(["runs", "cancel", run_id]) in (0, None)
    events = read_events(events_file)
    assert [(e["job"]["name"], e["eventType"]) for e in events] == [("nightly", "START"), ("nightly", "ABORT")]
    assert all(uuid.UUID(e["run"]["runId"]) == uuid.UUID(run_id) for e in events)
    assert events[1]["run"]["facets"]["nominalTime"]["nominalStartTime"].startswith("2030-01-01T06:00:00")
    # a run that already ended is not ended again
    assert not store.cancel_scheduled(run_id, "again", utcnow() + timedelta(seconds=1))
    assert len(read_events(events_file)) == 2


def test_nothing_is_read_or_emitted_when_openlineage_is_off(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HEADRACE_OPENLINEAGE_URL", raising=False)
    store = get_store()
    run_id = uuid.uuid4().hex
    store.insert_flow_run({"id": run_id, "flow_name": "nightly", "name": "n", "state_type": "SCHEDULED",
                           "state_name": "Scheduled", "run_count": 0, "cancel_requested": False, "pid": None})
    assert store.cancel_scheduled(run_id, "off", utcnow())
    assert store.get_flow_run(run_id)["state_name"] == "Cancelled"
    assert not list(tmp_path.rglob("*.ndjson"))


TICKER = """
from headrace import flow

@flow(name="ticker")
def ticker(label: str = "x"):
    return label
"""


def test_slots_skipped_by_the_scheduler_and_cancelled_by_a_pause_get_start_and_abort(
        events_file: Path, tmp_path: Path) -> None:
    from headrace.engine import load_flow
    from headrace.schedule import CronSchedule, Deployment, Scheduler

    path = tmp_path / "ticker_flows.py"
    path.write_text(TICKER)
    t0 = datetime(2024, 1, 1, 6, 0, tzinfo=UTC)
    minute = timedelta(minutes=1)
    dep = Deployment(load_flow(f"{path}:ticker"), "every-10", schedule=CronSchedule("*/10 * * * *"))
    dep.apply(now=t0 - minute)
    store = get_store()
    Scheduler(store, spread=timedelta(0)).tick(t0 - minute)        # plans the next slot(s), then "crashes"
    scheduled = {r["id"] for r in store.list_flow_runs(deployment_id=dep.id, limit=100)}
    assert scheduled
    result = Scheduler(store, spread=timedelta(0)).tick(t0 + timedelta(minutes=30, seconds=30))
    assert result.skipped >= 1                                       # catchup=False: missed slots cancelled
    scheduled |= {r["id"] for r in store.list_flow_runs(deployment_id=dep.id, limit=100)
                  if r["state_name"] == "Scheduled"}
    store.set_deployment_paused(dep.name, True, now=t0 + timedelta(minutes=31))  # the rest: cancelled
    every = store.list_flow_runs(deployment_id=dep.id, limit=100)
    assert every and all(r["state_name"] == "Cancelled" for r in every)
    # slots skipped while planning were never Scheduled runs (created Cancelled): no event for them
    runs = [r for r in every if r["id"] in scheduled]
    assert len(runs) >= 2
    events = read_events(events_file)
    by_run = runs_of(events)
    assert {uuid.UUID(r) for r in by_run} == {uuid.UUID(r["id"]) for r in runs}
    for run in runs:
        mine = by_run[str(uuid.UUID(run["id"]))]
        assert [e["eventType"] for e in mine] == ["START", "ABORT"]
        assert mine[0]["job"]["name"] == "ticker"
        slot = run["expected_start"].astimezone(UTC).isoformat()
        assert mine[1]["run"]["facets"]["nominalTime"]["nominalStartTime"][:19] == slot[:19]
