"""Issue 9: nothing stays Running, retries after a timeout really run, every state change is recorded."""

from __future__ import annotations

import threading
import time

from headrace import flow, task
from headrace.state_types import StateType
from headrace.store import get_store


def _only_run() -> dict:
    runs = get_store().list_flow_runs(limit=5)
    assert len(runs) == 1
    return runs[0]


def test_a_flow_timeout_leaves_no_task_run_running() -> None:
    release = threading.Event()

    @task
    def stuck() -> int:
        release.wait(5)
        return 1

    @flow(timeout_seconds=0.3)
    def pipeline() -> int:
        return stuck()

    state = pipeline(return_state=True)
    assert state.name == "TimedOut"
    release.set()  # the abandoned body finishes now: its late result must not be recorded
    time.sleep(0.3)
    get_store().writer.flush()
    run = _only_run()
    tasks = get_store().list_task_runs(run["id"])
    assert [t["state_name"] for t in tasks] == ["Cancelled"]
    assert "timeout" in tasks[0]["state_message"]
    changes = [c["to_name"] for c in get_store().get_state_changes(tasks[0]["id"])]
    assert changes == ["Pending", "Running", "Cancelled"]


def test_a_flow_retry_after_a_timeout_really_runs() -> None:
    calls: list[int] = []

    @task
    def step(n: int) -> int:
        calls.append(n)
        if len(calls) == 1:
            time.sleep(1.0)  # the first attempt times out here
        return n * 2

    @flow(timeout_seconds=0.4, retries=1)
    def pipeline() -> int:
        return step(21)

    state = pipeline(return_state=True)
    assert state.name == "Completed" and state.result() == 42
    get_store().writer.flush()
    run = _only_run()
    names = [c["to_name"] for c in get_store().get_state_changes(run["id"])]
    assert names[-1] == "Completed" and "Cancelled" not in names
    tasks = sorted(get_store().list_task_runs(run["id"]), key=lambda t: t["created_at"])
    assert [t["state_name"] for t in tasks] == ["Cancelled", "Completed"]


def test_every_state_change_of_a_flow_and_its_tasks_is_recorded() -> None:
    attempts: list[int] = []

    @task(retries=1)
    def flaky() -> int:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("first try fails")
        return 1

    @flow
    def pipeline() -> int:
        return flaky()

    assert pipeline() == 1
    store = get_store()
    run = _only_run()
    flow_changes = store.get_state_changes(run["id"])
    assert [(c["from_type"], c["to_type"]) for c in flow_changes] == [
        (None, "PENDING"), ("PENDING", "RUNNING"), ("RUNNING", "COMPLETED")]
    (task_run,) = store.list_task_runs(run["id"])
    chain = store.get_state_changes(task_run["id"])
    assert [c["to_name"] for c in chain] == ["Pending", "Running", "Retrying", "Retrying", "Completed"]
    for before, after in zip(chain, chain[1:], strict=False):
        assert after["from_type"] == before["to_type"]
    assert StateType(task_run["state_type"]).is_terminal


def test_crash_marking_also_ends_the_task_runs() -> None:
    from headrace.store.schema import flow_runs

    store = get_store()

    @task
    def hold() -> None:
        store.writer.flush()

    @flow
    def pipeline() -> None:
        hold()

    pipeline()
    run = _only_run()
    # Pretend the process died mid-run: the flow run and its task run back to Running under a dead pid.
    from headrace.store.transitions import change, record_transitions

    (tr,) = store.list_task_runs(run["id"])
    with store.transaction() as conn:
        record_transitions(conn, "flow", [change(run["id"], "RUNNING", "Running", run["ended_at"])])
        record_transitions(conn, "task", [change(tr["id"], "RUNNING", "Running", run["ended_at"])])
        conn.execute(flow_runs.update().where(flow_runs.c.id == run["id"]).values(pid=2**22 + 12345))
    assert store.mark_crashed() == [run["id"]]
    assert store.get_flow_run(run["id"])["state_name"] == "Crashed"
    crashed = store.get_task_run(tr["id"])
    assert crashed["state_name"] == "Crashed"
    last = store.get_state_changes(tr["id"])[-1]
    assert (last["from_type"], last["to_type"]) == ("RUNNING", "CRASHED")
