"""DaskTaskRunner: task bodies on a dask.distributed cluster, recorded exactly as on threads.

One LocalCluster (2 worker processes) serves the module (``dask_address``); the tests that are
about the runner's own cluster (started and closed with the flow run) start one each.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from headrace import (
    DaskTaskRunner,
    ProcessPoolTaskRunner,
    ThreadPoolTaskRunner,
    as_completed,
    flow,
    get_run_logger,
    log_metric,
    task,
    unmapped,
    wait,
)
from headrace.engine import record_dataset
from headrace.io import read_sql, write_table
from headrace.quality import Suite, expect
from headrace.secrets import Secret
from headrace.store import get_store

CANARY = "s3cr3t-dask-canary"
SUITE = Suite("dask_sales", [expect.column_values_to_not_be_null("order_id"),
                             expect.column_values_to_be_between("amount", min_value=0)], on_failure="warn")


def frame(n: int, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"order_id": range(start, start + n), "amount": [1.5] * n})


def count(url: str, table: str = "sales") -> int:
    return int(read_sql(f"SELECT count(*) AS n FROM {table}", url)["n"][0])


def ledger(url: str) -> list[str]:
    return sorted(read_sql("SELECT load_key FROM headrace_load_ledger", url)["load_key"].tolist())


def make_runner(kind: str, address: str) -> Any:
    if kind == "threads":
        return ThreadPoolTaskRunner(max_workers=4)
    if kind == "processes":
        return ProcessPoolTaskRunner(max_workers=2)
    return DaskTaskRunner(address=address)


# -- task bodies (module level: the workers import this module) ------------------------------
@task
def square(x: int) -> int:
    return x * x


@task
def add(x: int, y: int) -> int:
    return x + y


@task
def where() -> int:
    return os.getpid()


@task
async def async_double(x: int) -> int:
    return 2 * x


@task(retries=1, retry_delay_seconds=0)
def report_and_load(url: str, flag: str, password: str) -> int:
    """Everything a body records: run-logger and plain lines (with a secret), a metric, a nested
    task run (the quality gate, with its results), a dataset read and a load; it fails once after
    its load committed, so its retry must not load again."""
    get_run_logger().info("loading with %s", password)
    logging.getLogger("app.worker").warning("plain line postgresql://etl:%s@db/dwh", password)
    log_metric("rows_in", 300)
    record_dataset("input", "file", "file:///lake/raw", "orders.json", rows=300)
    rows = write_table(SUITE.gate(frame(300)), "sales", url)
    if not os.path.exists(flag):
        Path(flag).write_text("failed once")
        raise ConnectionError("the worker lost its connection after the commit")
    return rows


@flow
def reporting(url: str, flag: str, password: Secret[str]) -> list[int]:
    loaded = report_and_load.submit(url, flag, password)
    doubled = [async_double.submit(i) for i in range(2)]
    return [loaded.result(), *(f.result() for f in doubled)]


def summary(run_id: str, warehouse: str) -> dict[str, Any]:
    """What the store holds about a run, without ids, times or the warehouse's file name."""
    store = get_store()
    store.writer.flush()
    tasks = store.list_task_runs(run_id)
    name = {t["id"]: t["task_name"] for t in tasks}
    quality = [(name.get(q["task_run_id"]), q["suite"], q["success"])
               for t in tasks for q in store.get_quality_results(t["id"])]
    return {
        "run": {k: store.get_flow_run(run_id)[k] for k in ("state_name", "rows_loaded")},
        "tasks": sorted((t["task_name"], t["task_key"], t["state_name"], t["attempts"]) for t in tasks),
        "logs": sorted((name.get(r["task_run_id"]), r["logger"], _plain(r["message"], run_id, warehouse))
                       for r in store.get_logs(run_id) if r["logger"] != "headrace.engine"),
        "metrics": sorted((name.get(m["task_run_id"]), m["name"], m["value"]) for m in store.get_metrics(run_id)),
        # a DuckDB table is named <file stem>.<schema>.<table> (OpenLineage's rules): the stem differs
        "datasets": sorted((name.get(d["task_run_id"]), d["direction"], d["kind"],
                            d["name"].removeprefix(Path(warehouse).stem + ".main."), d["rows"])
                           for d in store.get_dataset_io(run_id)),
        "quality": sorted(quality),
    }


def _plain(message: str, run_id: str, warehouse: str) -> str:
    """A log line without what differs from run to run: the run id, parameter hashes, the file."""
    return re.sub(r"/[0-9a-f]{16}/", "/HASH/", message.replace(run_id, "RUN").replace(warehouse, "W"))


def test_a_body_on_a_worker_is_recorded_exactly_as_on_threads_and_processes(
        dask_address: str, tmp_path: Path) -> None:
    seen: dict[str, dict[str, Any]] = {}
    for kind in ("threads", "processes", "dask"):
        url = f"duckdb:///{tmp_path / f'{kind}.duckdb'}"
        pipeline = reporting.with_options(task_runner=make_runner(kind, dask_address))
        state = pipeline(url, str(tmp_path / f"{kind}.flag"), CANARY, return_state=True)  # type: ignore[call-arg]
        assert state.is_completed(), (kind, state.message)
        assert state.result() == [300, 0, 2]
        assert count(url) == 300  # the retry did not load again
        (key,) = ledger(url)
        assert key.startswith(f"run:{state.run_id}/report_and_load-0/")
        seen[kind] = summary(str(state.run_id), f"{kind}.duckdb")
    threads = seen["threads"]
    assert threads["run"] == {"state_name": "Completed", "rows_loaded": 300}
    assert ("report_and_load", "report_and_load-0", "Completed", 2) in threads["tasks"]
    assert ("quality-gate:dask_sales", "quality-gate:dask_sales-1", "Completed", 1) in threads["tasks"]
    assert ("report_and_load", "headrace.runs", "loading with ***") in threads["logs"]
    assert ("report_and_load", "app.worker", "plain line postgresql://etl:***@db/dwh") in threads["logs"]
    assert ("report_and_load", "rows_in", 300.0) in threads["metrics"]
    assert ("report_and_load", "output", "duckdb", "sales", 0) in threads["datasets"]  # the retry's skip
    assert ("report_and_load", "output", "duckdb", "sales", 300) in threads["datasets"]
    assert ("quality-gate:dask_sales", "dask_sales", True) in threads["quality"]
    assert seen["dask"] == seen["processes"]
    # One difference with threads, shared by both process runners: a task that a body calls is
    # keyed per attempt there (both gates are quality-gate:dask_sales-0), per flow run on threads.
    nested_keys = {"quality-gate:dask_sales-0", "quality-gate:dask_sales-1"}
    assert {t[1] for t in threads["tasks"]} & nested_keys == nested_keys
    assert [t[1] for t in seen["dask"]["tasks"]].count("quality-gate:dask_sales-0") == 2
    keyless = {k: v if k != "tasks" else sorted((t[0], t[2], t[3]) for t in v) for k, v in threads.items()}
    assert {k: v if k != "tasks" else sorted((t[0], t[2], t[3]) for t in v) for k, v in seen["dask"].items()} \
        == keyless
    assert CANARY not in repr(seen)


def test_submit_map_futures_wait_and_as_completed_as_on_other_runners(dask_address: str) -> None:
    @flow(task_runner=DaskTaskRunner(address=dask_address))
    def fan_out() -> tuple[list[int], int, list[int], list[int], set[int]]:
        squares = square.map([1, 2, 3, 4])
        total = add.submit(squares[0], squares[3])
        shifted = add.map([1, 2], unmapped(10))
        done, not_done = wait([*squares, total])
        assert not not_done and len(done) == 5
        finished = sorted(f.result() for f in as_completed(squares))
        pids = {where.submit().result() for _ in range(2)}
        return [f.result() for f in squares], total.result(), shifted.result(), finished, pids

    squares, total, shifted, finished, pids = fan_out()
    assert (squares, total, shifted, finished) == ([1, 4, 9, 16], 17, [11, 12], [1, 4, 9, 16])
    assert os.getpid() not in pids  # the bodies ran in worker processes
    run = get_store().list_flow_runs(limit=1)[0]
    keys = sorted((t["task_key"], t["state_name"]) for t in get_store().list_task_runs(run["id"]))
    assert keys == [("add-0", "Completed"), ("add-1", "Completed"), ("add-2", "Completed"),
                    ("square-0", "Completed"), ("square-1", "Completed"), ("square-2", "Completed"),
                    ("square-3", "Completed"), ("where-0", "Completed"), ("where-1", "Completed")]


@task
def failing(x: int) -> int:
    raise ValueError(f"bad row {x}")


@task
def downstream(x: int) -> int:
    return x


def test_a_failed_body_fails_its_run_and_its_downstream_with_the_error_itself(dask_address: str) -> None:
    @flow(task_runner=DaskTaskRunner(address=dask_address))
    def pipeline() -> None:
        downstream.submit(failing.submit(7))

    state = pipeline(return_state=True)  # type: ignore[call-arg]
    assert state.is_failed()
    rows = {t["task_name"]: t for t in get_store().list_task_runs(str(state.run_id))}
    assert rows["failing"]["state_name"] == "Failed"
    assert rows["failing"]["state_message"] == "ValueError: bad row 7"
    assert "upstream task 'failing'" in rows["downstream"]["state_message"]


@task
def returns_a_lock() -> Any:
    return threading.Lock()


@task
def takes(value: Any) -> int:
    return 1


def test_a_result_or_argument_that_does_not_pickle_fails_with_the_task_named(dask_address: str) -> None:
    @flow(task_runner=DaskTaskRunner(address=dask_address))
    def pipeline() -> None:
        returns_a_lock.submit().wait()
        takes.submit(threading.Lock()).wait()

    state = pipeline(return_state=True)  # type: ignore[call-arg]
    assert state.is_failed()
    rows = {t["task_name"]: t for t in get_store().list_task_runs(str(state.run_id))}
    assert rows["returns_a_lock"]["state_name"] == "Failed"
    assert rows["returns_a_lock"]["state_message"].startswith(
        "RemoteTaskError: the result of task 'returns_a_lock' cannot be sent back from its Dask worker: "
        "it does not pickle (TypeError: cannot pickle '_thread.lock' object)")
    assert rows["takes"]["state_name"] == "Failed"
    assert rows["takes"]["state_message"] == ("TaskRunError: the arguments of task 'takes' cannot be sent to a "
                                              "Dask worker: TypeError: cannot pickle '_thread.lock' object")


@task(retries=1, retry_delay_seconds=0, timeout_seconds=1.0)
def slow_then_load(url: str, marker: str) -> int:
    first = not os.path.exists(marker + ".started")
    Path(marker + ".started").write_text("1")
    if first:
        time.sleep(2.0)  # given up on at 1 s; it still reaches its load afterwards
        try:
            write_table(frame(10, start=100), "sales", url)
            Path(marker).write_text("loaded")
        except Exception as exc:
            Path(marker).write_text(f"refused: {exc}")
        return 0
    return write_table(frame(10), "sales", url)


def test_an_attempt_that_timed_out_on_a_worker_never_commits_its_load(dask_address: str, tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    marker = tmp_path / "late"

    @flow(task_runner=DaskTaskRunner(address=dask_address))
    def pipeline() -> int:
        return slow_then_load(url, str(marker))  # type: ignore[no-any-return]

    state = pipeline(return_state=True)  # type: ignore[call-arg]
    assert state.is_completed(), state.message
    assert state.result() == 10
    deadline = time.monotonic() + 20
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.read_text().startswith("refused:") and "abandoned" in marker.read_text()
    assert read_sql("SELECT order_id FROM sales ORDER BY 1", url)["order_id"].tolist() == list(range(10))
    changes = [c["to_name"] for c in get_store().get_state_changes(
        next(t["id"] for t in get_store().list_task_runs(str(state.run_id))))]
    assert changes == ["Pending", "Running", "Retrying", "Retrying", "Completed"]
    (tr,) = get_store().list_task_runs(str(state.run_id))
    assert tr["attempts"] == 2


@task(retries=1, retry_delay_seconds=0)
def load_fail_once(url: str, flag: str) -> int:
    rows = write_table(frame(1000), "sales", url)
    if not os.path.exists(flag):
        Path(flag).write_text("failed once")
        raise RuntimeError("failed after the commit")
    return rows


@pytest.mark.parametrize("backend", ["postgresql", "duckdb", "sqlite"])
def test_a_retried_load_on_a_worker_lands_once(backend: str, dask_address: str, request: Any,
                                              tmp_path: Path) -> None:
    url = {"postgresql": lambda: str(request.getfixturevalue("pg_libpq_url")),
           "duckdb": lambda: f"duckdb:///{tmp_path / 'w.duckdb'}",
           "sqlite": lambda: f"sqlite:///{tmp_path / 'w.sqlite'}"}[backend]()

    @flow(task_runner=DaskTaskRunner(address=dask_address))
    def pipeline() -> list[int]:
        return [f.result() for f in load_fail_once.map(unmapped(url), [str(tmp_path / "flag")])]

    state = pipeline(return_state=True)  # type: ignore[call-arg]
    assert state.is_completed(), state.message
    assert state.result() == [1000]  # the retry got the first load's count back
    assert count(url) == 1000
    assert get_store().get_flow_run(str(state.run_id))["rows_loaded"] == 1000
    (key,) = ledger(url)
    assert key.startswith(f"run:{state.run_id}/load_fail_once-0/")


@task
def sleeps_then_loads(url: str, marker: str) -> int:
    Path(marker + ".started").write_text(str(os.getpid()))
    time.sleep(3.0)  # the flow run is cancelled meanwhile
    try:
        rows = write_table(frame(5), "late", url)
        Path(marker).write_text(f"loaded {rows}")
    except Exception as exc:
        Path(marker).write_text(f"refused: {exc}")
    return 5


def test_cancelling_the_flow_run_ends_its_task_run_and_fences_the_body(dask_address: str, tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    marker = tmp_path / "late"

    @flow(task_runner=DaskTaskRunner(address=dask_address))
    def pipeline() -> int:
        return sleeps_then_loads(url, str(marker))  # type: ignore[no-any-return]

    holder: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: holder.setdefault("s", pipeline(return_state=True)))
    thread.start()
    deadline = time.monotonic() + 60
    while not Path(str(marker) + ".started").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    run = get_store().list_flow_runs(limit=1)[0]
    get_store().request_cancel(run["id"])
    thread.join(30)
    assert holder["s"].is_cancelled()
    (tr,) = get_store().list_task_runs(run["id"])
    assert tr["state_name"] == "Cancelled"
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.read_text().startswith("refused:")  # the body went on, but could not load
    assert not read_sql("SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'late'",
                        url)["n"][0]


SCRIPT = '''
import os
from headrace import DaskTaskRunner, flow, task

OFFSET = 40

@task
def shifted(x: int) -> int:
    return x + OFFSET

@flow(task_runner=DaskTaskRunner(address=os.environ["TEST_DASK_ADDRESS"]))
def pipeline() -> list[int]:
    return [f.result() for f in shifted.map(range(3))]

if __name__ == "__main__":
    print(pipeline())
'''


def test_tasks_of_a_script_run_as_main_reach_workers_that_cannot_import_it(
        dask_address: str, tmp_path: Path, headrace_home: Path) -> None:
    script = tmp_path / "nightly.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "TEST_DASK_ADDRESS": dask_address, "HEADRACE_HOME": str(headrace_home)}
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[40, 41, 42]"
    (run,) = get_store().list_flow_runs()
    assert run["state_name"] == "Completed"


@task
def first_attempt_hangs(url: str, marker: str) -> int:
    if not os.path.exists(marker + ".started"):
        Path(marker + ".started").write_text("1")
        time.sleep(4.0)  # the flow's attempt times out meanwhile; its retry runs on
        try:
            write_table(frame(3, start=100), "sales", url)
            Path(marker).write_text("loaded")
        except Exception as exc:
            Path(marker).write_text(f"refused: {exc}")
        return 0
    return write_table(frame(3), "sales", url)


def test_a_flow_retry_after_its_timeout_runs_on_the_runner_again_and_the_late_body_is_fenced(
        dask_address: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    marker = tmp_path / "late"

    @flow(task_runner=DaskTaskRunner(address=dask_address), timeout_seconds=1.5, retries=1,
          retry_delay_seconds=0)
    def pipeline() -> int:
        return first_attempt_hangs(url, str(marker))  # type: ignore[no-any-return]

    state = pipeline(return_state=True)  # type: ignore[call-arg]
    assert state.is_completed(), state.message
    assert state.result() == 3
    deadline = time.monotonic() + 20
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.read_text().startswith("refused:")
    assert read_sql("SELECT order_id FROM sales ORDER BY 1", url)["order_id"].tolist() == [0, 1, 2]
