"""Exactly-once loads, whatever repeats them: headrace retry, task and flow retries, timeouts,
a second run of a deployment slot, tasks in child processes, concurrent first loads."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from headrace import ProcessPoolTaskRunner, ThreadPoolTaskRunner, flow, task
from headrace.engine import run_flow
from headrace.io import read_sql, write_table
from headrace.store import get_store

BACKENDS = ["postgresql", "duckdb", "sqlite"]


def frame(n: int, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"order_id": range(start, start + n), "amount": [1.5] * n})


def count(url: str, table: str = "sales") -> int:
    return int(read_sql(f"SELECT count(*) AS n FROM {table}", url)["n"][0])


def distinct(url: str, table: str = "sales") -> int:
    return int(read_sql(f"SELECT count(DISTINCT order_id) AS n FROM {table}", url)["n"][0])


def url_for(backend: str, request: Any, tmp_path: Path) -> str:
    if backend == "postgresql":
        return str(request.getfixturevalue("pg_libpq_url"))
    if backend == "duckdb":
        return f"duckdb:///{tmp_path / 'w.duckdb'}"
    return f"sqlite:///{tmp_path / 'w.sqlite'}"


FLOW_FILE = '''
import os
import pandas as pd
from headrace import flow, task
from headrace.io import write_table

URL = os.environ["TEST_WAREHOUSE"]

@task
def load(n: int) -> int:
    rows = write_table(pd.DataFrame({"order_id": range(n), "amount": [1.5] * n}), "sales", URL)
    if os.path.exists(os.environ["TEST_FAIL_FLAG"]):
        raise RuntimeError("the task failed after its load committed")
    return rows

@flow
def pipeline(n: int = 100) -> int:
    return load(n)
'''


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    headrace = str(Path(sys.executable).with_name("headrace"))
    return subprocess.run([headrace, *args], env=env, text=True, capture_output=True, timeout=120)


def test_headrace_retry_of_a_run_whose_load_committed_does_not_load_again(
        tmp_path: Path, headrace_home: Path) -> None:
    warehouse = f"duckdb:///{tmp_path / 'w.duckdb'}"
    flag = tmp_path / "fail"
    flag.write_text("1")
    (tmp_path / "flows.py").write_text(FLOW_FILE)
    env = {**os.environ, "TEST_WAREHOUSE": warehouse, "TEST_FAIL_FLAG": str(flag),
           "HEADRACE_HOME": str(headrace_home)}
    first = _cli("run", f"{tmp_path / 'flows.py'}:pipeline", env=env)
    assert first.returncode == 1, first.stdout + first.stderr
    failed = get_store().list_flow_runs(limit=1)[0]
    flag.unlink()
    retried = _cli("retry", failed["id"], env=env)
    assert retried.returncode == 0, retried.stdout + retried.stderr
    again = _cli("retry", failed["id"], env=env)  # a second retry of the same failed run
    assert again.returncode == 0, again.stdout + again.stderr
    assert count(warehouse) == 100
    runs = get_store().list_flow_runs(limit=3)
    assert [r["rows_loaded"] for r in runs] == [0, 0, 100]  # the retries landed nothing


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_task_retry_after_a_committed_load_counts_the_rows_once(
        backend: str, request: Any, tmp_path: Path) -> None:
    url = url_for(backend, request, tmp_path)
    calls: list[int] = []

    @task(retries=1, retry_delay_seconds=0)
    def load() -> int:
        rows = write_table(frame(1000), "sales", url)
        calls.append(rows)
        if len(calls) == 1:
            raise ConnectionError("the worker lost its connection after the commit")
        return rows

    @flow
    def pipeline() -> int:
        return load()

    state = pipeline(return_state=True)  # type: ignore[call-arg]
    assert state.is_completed()
    assert calls == [1000, 1000]  # the retry got the first count back
    assert count(url) == 1000
    assert get_store().get_flow_run(state.run_id)["rows_loaded"] == 1000  # not 2,000
    logs = " ".join(r["message"] for r in get_store().get_logs(state.run_id))
    assert "skipped the load into sales" in logs


def test_an_abandoned_timed_out_attempt_never_commits_its_load(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    attempts: list[int] = []
    late: list[BaseException | int] = []
    done = threading.Event()

    @task(retries=1, retry_delay_seconds=0, timeout_seconds=0.5)
    def load() -> int:
        attempts.append(1)
        if len(attempts) == 1:
            time.sleep(1.0)  # given up on at 0.5 s; it still reaches its load afterwards
            try:
                late.append(write_table(frame(10, start=100), "sales", url))
            except BaseException as exc:
                late.append(exc)
            finally:
                done.set()
            return 0
        return write_table(frame(10), "sales", url)

    @flow
    def pipeline() -> int:
        return load()

    assert pipeline() == 10
    assert done.wait(10)
    assert isinstance(late[0], Exception) and "abandoned" in str(late[0])
    assert read_sql("SELECT order_id FROM sales ORDER BY 1", url)["order_id"].tolist() == \
        list(range(10))


def test_a_second_run_of_the_same_deployment_slot_does_not_load_again(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    slot = datetime(2024, 2, 1, 6, tzinfo=UTC)

    @task
    def load() -> int:
        return write_table(frame(50), "sales", url)

    @flow
    def pipeline() -> int:
        return load()

    first = run_flow(pipeline, {}, scheduled_time=slot, deployment_id="dep-1")
    second = run_flow(pipeline, {}, scheduled_time=slot, deployment_id="dep-1")
    other = run_flow(pipeline, {}, scheduled_time=slot.replace(day=2), deployment_id="dep-1")
    assert first.is_completed() and second.is_completed() and other.is_completed()
    assert count(url) == 100  # the slot of Feb 1 once, the slot of Feb 2 once


@task(retries=1, retry_delay_seconds=0)
def process_load(url: str, flag: str) -> int:
    rows = write_table(frame(200), "sales", url)
    if not os.path.exists(flag):
        Path(flag).write_text("failed once")
        raise RuntimeError("failed after the commit")
    return rows


@task
def child_pid() -> int:
    return os.getpid()


@task(timeout_seconds=0.5)
def sleeper() -> None:
    time.sleep(30)


def test_a_process_runner_task_carries_its_run_context(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=1))
    def pipeline() -> tuple[int, list[int], str]:
        rows = process_load.submit(url, str(tmp_path / "flag")).result()
        pids = [child_pid.submit().result() for _ in range(3)]
        timed = sleeper.submit()
        timed.wait()
        pids.append(child_pid.submit().result())
        return rows, pids, timed.state.name

    state = pipeline(return_state=True)  # type: ignore[call-arg]
    assert state.is_completed(), state.message
    rows, pids, timed_state = state.result()
    assert rows == 200 and count(url) == 200  # the retry in a child process did not load again
    assert timed_state == "TimedOut"
    assert len(set(pids[:3])) == 1 and pids[0] != os.getpid()  # one process, reused
    assert pids[3] != pids[0]  # the timed-out body's process was replaced
    store = get_store()
    store.writer.flush()
    run = store.get_flow_run(state.run_id)
    assert run["rows_loaded"] == 200
    written = [d for d in store.get_dataset_io(state.run_id) if d["direction"] == "output"]
    assert sorted(d["rows"] for d in written) == [0, 200]
    load_runs = [t for t in store.list_task_runs(state.run_id) if t["task_name"] == "process_load"]
    assert {d["task_run_id"] for d in written} == {load_runs[0]["id"]}
    ledger = read_sql("SELECT load_key FROM headrace_load_ledger", url)["load_key"].tolist()
    assert len(ledger) == 1 and ledger[0].startswith(f"run:{state.run_id}/process_load-0/")


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_first_loads_into_a_missing_table_all_land(
        backend: str, request: Any, tmp_path: Path) -> None:
    url = url_for(backend, request, tmp_path)

    @task
    def load(table: str, i: int) -> int:
        return write_table(frame(200, start=i * 200), table, url)

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=8))
    def pipeline(table: str) -> list[int]:
        return [f.result() for f in load.map(table, range(8))]

    for table in ("sales_a", "sales_b", "sales_c"):  # three races, each on a missing table
        state = pipeline(table, return_state=True)  # type: ignore[call-arg]
        assert state.is_completed(), state.message
        assert state.result() == [200] * 8
        assert count(url, table) == distinct(url, table) == 1600



@task
def nested_load(url: str, start: int) -> int:
    return write_table(frame(100), "sales", url)


@task(retries=1, retry_delay_seconds=0)
def calling_task(url: str, flag: str, start: int) -> int:
    rows = nested_load(url, start)
    if not os.path.exists(flag):
        Path(flag).write_text("1")
        raise ConnectionError("lost the connection after the nested load committed")
    return rows


@pytest.mark.parametrize("runner", ["threads", "processes"])
def test_a_task_called_by_a_retried_task_loads_once(runner: str, tmp_path: Path) -> None:
    """The calls a retried body makes keep their keys (caller's key + call number per attempt):
    a nested load that committed in the first attempt is not repeated by the second, and two
    callers of the same nested task with the same arguments each get their load."""
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    flag = str(tmp_path / "failed-once")
    task_runner = ThreadPoolTaskRunner(1) if runner == "threads" else ProcessPoolTaskRunner(1)

    @flow(task_runner=task_runner)
    def pipeline() -> list[int]:
        # two callers of the same nested task with the same arguments: two loads
        first = calling_task.submit(url, flag, 0).result()
        return [first, calling_task.submit(url, flag, 0).result()]

    state = pipeline(return_state=True)  # type: ignore[call-arg]
    assert state.is_completed(), state.message
    assert count(url) == 200            # each caller's load once; the retry repeated none
    store = get_store()
    store.writer.flush()
    keys = sorted(r["task_key"] for r in store.list_task_runs(state.run_id) if r["task_name"] == "nested_load")
    # the first caller's two attempts called it under one key; the second caller has its own
    assert keys == ["calling_task-0/nested_load-0", "calling_task-0/nested_load-0",
                    "calling_task-1/nested_load-0"]
