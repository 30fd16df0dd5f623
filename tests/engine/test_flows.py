"""Flows and tasks: records, states, retries, hooks and logs."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

from headrace import (
    State,
    exponential_backoff,
    flow,
    get_run_logger,
    task,
)
from headrace.engine.retries import retry_delays, with_jitter
from headrace.errors import FlowRunError, ParameterError
from headrace.store import get_store


def _only_run() -> dict[str, Any]:
    runs = get_store().list_flow_runs(limit=5)
    assert len(runs) == 1
    return runs[0]


def test_a_flow_run_and_its_task_runs_are_recorded() -> None:
    @task
    def double(x: int) -> int:
        return 2 * x

    @flow(name="Doubler")
    def doubler(n: int) -> int:
        return double(n) + double(n + 1)

    assert doubler(3) == 14
    store = get_store()
    run = _only_run()
    assert (run["flow_name"], run["state_name"], run["parameters"]) == ("Doubler", "Completed", '{"n":3}')
    tasks = store.list_task_runs(run["id"])
    assert [(t["task_key"], t["state_name"], t["attempts"]) for t in tasks] == [
        ("double-0", "Completed", 1), ("double-1", "Completed", 1)]
    changes = [c["to_name"] for c in store.get_state_changes(tasks[0]["id"])]
    assert changes == ["Pending", "Running", "Completed"]
    assert [c["to_name"] for c in store.get_state_changes(run["id"])] == ["Pending", "Running", "Completed"]
    assert all(c["at"] is not None for c in store.get_state_changes(run["id"]))


def test_return_state_gives_the_failure_instead_of_raising() -> None:
    @task
    def broken() -> None:
        raise ValueError("source table is empty")

    @flow
    def pipeline() -> None:
        broken()

    state = pipeline(return_state=True)
    assert isinstance(state, State)
    assert state.is_failed() and not state.is_completed()
    assert state.name == "Failed" and state.type.value == "FAILED" and state.type.is_terminal
    assert "source table is empty" in (state.message or "")
    with pytest.raises(ValueError, match="source table is empty"):
        state.result()
    assert isinstance(state.result(raise_on_failure=False), ValueError)
    with pytest.raises(ValueError, match="source table is empty"):
        pipeline()
    task_row = get_store().list_task_runs(get_store().list_flow_runs(limit=1)[0]["id"])[0]
    assert task_row["state_name"] == "Failed" and "ValueError" in task_row["error"]


def test_task_retries_until_success_and_records_each_attempt() -> None:
    calls = []

    @task(retries=3, retry_delay_seconds=[0, 0.01, 0.02])
    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError(f"attempt {len(calls)} lost the connection")
        return "ok"

    @flow
    def pipeline() -> str:
        return flaky()

    assert pipeline() == "ok"
    run = _only_run()
    (tr,) = get_store().list_task_runs(run["id"])
    assert tr["attempts"] == 3 and tr["state_name"] == "Completed"
    names = [c["to_name"] for c in get_store().get_state_changes(tr["id"])]
    assert names == ["Pending", "Running", "Retrying", "Retrying", "Retrying", "Retrying", "Completed"]


def test_task_fails_after_its_retries_are_spent() -> None:
    calls = []

    @task(retries=2)
    def always_broken() -> None:
        calls.append(1)
        raise RuntimeError("nope")

    @flow
    def pipeline() -> None:
        always_broken()

    assert pipeline(return_state=True).is_failed()
    assert len(calls) == 3


def test_retry_condition_can_stop_retries() -> None:
    calls = []

    @task(retries=5, retry_condition_fn=lambda t, r, s: not isinstance(s.error, KeyError))
    def lookup() -> None:
        calls.append(1)
        raise KeyError("missing")

    @flow
    def pipeline() -> None:
        lookup()

    assert pipeline(return_state=True).is_failed()
    assert len(calls) == 1


def test_retry_delay_forms() -> None:
    assert retry_delays(3, 10) == [10, 10, 10]
    assert retry_delays(3, [1, 2]) == [1, 2, 2]
    assert retry_delays(4, exponential_backoff(backoff_factor=10)) == [10, 20, 40, 80]
    assert retry_delays(0, 5) == []
    import random

    jittered = [with_jitter(10, 0.5, random.Random(i)) for i in range(50)]
    assert all(10 <= d <= 15 for d in jittered) and len(set(jittered)) > 1
    with pytest.raises(ValueError):
        retry_delays(2, [-1])


def test_flow_retry_reuses_tasks_completed_in_the_failed_attempt() -> None:
    extract_calls: list[int] = []
    load_calls: list[int] = []

    @task
    def extract() -> list[int]:
        extract_calls.append(1)
        return [1, 2, 3]

    @task
    def load(rows: list[int]) -> int:
        load_calls.append(1)
        if len(load_calls) == 1:
            raise TimeoutError("warehouse busy")
        return len(rows)

    @flow(retries=1, retry_delay_seconds=0)
    def etl() -> int:
        return load(extract())

    assert etl() == 3
    assert len(extract_calls) == 1 and len(load_calls) == 2
    run = _only_run()
    assert run["run_count"] == 2 and run["state_name"] == "Completed"


def test_hooks_are_called_with_flow_run_and_state() -> None:
    seen: list[tuple[str, str, str]] = []

    def on_done(fl: Any, run: Any, state: State) -> None:
        seen.append(("flow-done", fl.name, state.name))

    def on_fail(fl: Any, run: Any, state: State) -> None:
        seen.append(("flow-fail", run.flow_name, (run.error or "")[:10]))

    def task_fail(tk: Any, run: Any, state: State) -> None:
        seen.append(("task-fail", tk.name, state.name))

    def bad_hook(*args: Any) -> None:
        raise RuntimeError("hooks never change the outcome")

    @task(on_failure=[task_fail])
    def breaks() -> None:
        raise ValueError("boom")

    @flow(on_completion=[on_done, bad_hook], on_failure=[on_fail])
    def good() -> int:
        return 1

    @flow(on_completion=[on_done], on_failure=[on_fail, bad_hook])
    def bad() -> None:
        breaks()

    assert good() == 1
    assert bad(return_state=True).is_failed()
    assert seen == [("flow-done", "good", "Completed"), ("task-fail", "breaks", "Failed"),
                    ("flow-fail", "bad", "ValueError")]


def test_run_logger_lines_and_enabled_plain_logging_lines_are_stored_with_the_run() -> None:
    module_logger = logging.getLogger("my.module")

    @task
    def work() -> None:
        get_run_logger().info("processing %d rows", 42)
        module_logger.warning("plain warning")
        module_logger.info("plain info")

    @flow
    def pipeline() -> None:
        get_run_logger().info("flow says hi")
        work()

    pipeline()
    logging.getLogger("outside").warning("not inside any run")
    run = _only_run()
    lines = get_store().get_logs(run["id"])
    messages = [line["message"] for line in lines]
    assert "flow says hi" in messages and "processing 42 rows" in messages
    # Plain logging: stored at the levels the application's logging enables (Python's default: WARNING).
    assert "plain warning" in messages and "plain info" not in messages
    assert "not inside any run" not in messages
    by_msg = {line["message"]: line for line in lines}
    assert by_msg["flow says hi"]["task_run_id"] is None
    assert by_msg["processing 42 rows"]["task_run_id"] is not None
    assert by_msg["plain warning"]["logger"] == "my.module"

    module_logger.setLevel(logging.INFO)  # the application enables INFO for its module
    try:
        state = pipeline(return_state=True)
    finally:
        module_logger.setLevel(logging.NOTSET)
    assert "plain info" in [line["message"] for line in get_store().get_logs(str(state.run_id))]


def test_passwords_never_reach_the_log_records() -> None:
    @task
    def connect() -> None:
        get_run_logger().info("connecting to postgresql://etl:hunter2@db:5432/dwh")
        raise ConnectionError("could not reach postgresql://etl:hunter2@db/dwh")

    @flow
    def pipeline() -> None:
        connect()

    state = pipeline(return_state=True)
    run = _only_run()
    text = repr(get_store().get_logs(run["id"])) + repr(get_store().list_task_runs(run["id"]))
    text += repr(get_store().get_flow_run(run["id"])) + (state.message or "")
    assert "hunter2" not in text and "etl:***@db" in text


def test_unknown_or_missing_parameters_name_the_flow() -> None:
    @flow(name="Sales")
    def sales(start: str) -> None:
        return None

    with pytest.raises(ParameterError, match="Sales"):
        sales()  # type: ignore[call-arg]
    with pytest.raises(ParameterError, match="Sales"):
        sales("a", nope=1)  # type: ignore[call-arg]


def test_flow_timeout_ends_timed_out_and_stops_later_tasks() -> None:
    started: list[int] = []

    @task
    def slow(i: int) -> None:
        started.append(i)
        time.sleep(0.3)

    @flow(timeout_seconds=0.5)
    def pipeline() -> None:
        for i in range(10):
            slow(i)

    state = pipeline(return_state=True)
    assert state.name == "TimedOut" and state.is_failed()
    time.sleep(0.5)
    assert len(started) <= 3  # the remaining tasks were never started


def test_subflows_record_their_parent() -> None:
    @flow
    def child() -> int:
        return 1

    @flow
    def parent() -> int:
        return child() + 1

    assert parent() == 2
    runs = {r["flow_name"]: r for r in get_store().list_flow_runs()}
    assert runs["child"]["parent_run_id"] == runs["parent"]["id"]


def test_cancellation_stops_a_running_flow_at_the_next_task() -> None:
    started: list[int] = []
    gate = threading.Event()

    @task
    def step(i: int) -> None:
        started.append(i)
        if i == 2:
            gate.set()
        time.sleep(0.05)

    @flow
    def long_flow() -> None:
        for i in range(200):
            step(i)

    holder: dict[str, State] = {}
    thread = threading.Thread(target=lambda: holder.setdefault("s", long_flow(return_state=True)))
    thread.start()
    assert gate.wait(10)
    run = get_store().list_flow_runs(limit=1)[0]
    get_store().request_cancel(run["id"])
    thread.join(30)
    assert holder["s"].is_cancelled()
    assert len(started) < 200
    final = get_store().get_flow_run(run["id"])
    assert final["state_name"] == "Cancelled"
    with pytest.raises(FlowRunError, match="cancelled"):
        holder["s"].result()


def test_log_prints_turns_prints_into_run_logs(capsys: pytest.CaptureFixture[str]) -> None:
    @task
    def shout() -> None:
        print("from the task")

    @flow(log_prints=True)
    def pipeline() -> None:
        print("from the flow")
        shout()

    pipeline()
    assert "from the flow" in capsys.readouterr().out
    messages = [line["message"] for line in get_store().get_logs(_only_run()["id"])]
    assert "from the flow" in messages and "from the task" in messages


def test_peer_module_paths_resolve() -> None:
    from headrace.states import StateType
    from headrace.task_runners import ConcurrentTaskRunner, ThreadPoolTaskRunner
    from headrace.tasks import exponential_backoff as eb
    from headrace.tasks import task_input_hash as tih

    assert eb is exponential_backoff and callable(tih)
    assert ConcurrentTaskRunner is ThreadPoolTaskRunner and StateType.COMPLETED.is_terminal


def test_parameters_are_coerced_to_their_annotations_and_state_names_the_run() -> None:
    from datetime import date

    @flow
    def dated(day: date, n: int = 1, label: str = "x") -> tuple[date, int, str]:
        return day, n, label

    state = dated("2024-02-01", "3", "7", return_state=True)
    assert state.result() == (date(2024, 2, 1), 3, "7")
    assert get_store().get_flow_run(str(state.run_id))["flow_name"] == "dated"
    with pytest.raises(ParameterError, match="parameter 'day' of flow 'dated' expects date"):
        dated("not-a-date")
