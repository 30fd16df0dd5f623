"""Fault injection: SIGKILL `headrace run` and `headrace retry` at random points while tasks time
out, fail after committing and retry, in threads or child processes, on PostgreSQL, DuckDB and
SQLite; then retry until the run completes. Each row must be in the table exactly once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from headrace.io import read_sql
from headrace.store import get_store

FLOW_FILE = '''
import os, random, time
import pandas as pd
from headrace import ProcessPoolTaskRunner, ThreadPoolTaskRunner, flow, task
from headrace.io import write_table

URL = os.environ["TEST_WAREHOUSE"]
RUNNER = (ProcessPoolTaskRunner(max_workers=2) if os.environ["TEST_RUNNER"] == "processes"
          else ThreadPoolTaskRunner(max_workers=3))


@task(retries=3, retry_delay_seconds=0, timeout_seconds=2.0)
def load(i: int) -> int:
    time.sleep(random.uniform(0, 0.2))
    if random.random() < 0.08:
        time.sleep(2.5)  # past the timeout: abandoned or terminated, then retried
    rows = write_table(pd.DataFrame({"order_id": range(i * 100, i * 100 + 100)}), "sales", URL)
    time.sleep(random.uniform(0, 0.2))
    if random.random() < 0.15:
        raise RuntimeError("failed after the commit")
    return rows


@flow(task_runner=RUNNER)
def pipeline(n: int = 4) -> int:
    return sum(f.result() for f in load.map(range(n)))
'''

CASES = [("postgresql", "processes", 11), ("duckdb", "threads", 12), ("sqlite", "processes", 13)]


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    headrace = str(Path(sys.executable).with_name("headrace"))
    # Its own process group: the kill takes its task processes along, as a machine crash would.
    return subprocess.Popen([headrace, *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _kill_after(proc: subprocess.Popen[bytes], delay: float) -> None:
    try:
        proc.wait(delay)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _latest_run() -> dict[str, Any]:
    store = get_store()
    store.mark_crashed()  # a killed process leaves its run Running; the next command does this
    runs = store.list_flow_runs(limit=1)
    return runs[0] if runs else {"state_type": "NONE"}


@pytest.mark.parametrize(("backend", "runner", "seed"), CASES)
def test_killed_runs_and_retries_load_each_row_exactly_once(
        backend: str, runner: str, seed: int, request: Any, tmp_path: Path,
        headrace_home: Path) -> None:
    url = {"postgresql": lambda: request.getfixturevalue("pg_libpq_url"),
           "duckdb": lambda: f"duckdb:///{tmp_path / 'w.duckdb'}",
           "sqlite": lambda: f"sqlite:///{tmp_path / 'w.sqlite'}"}[backend]()
    rng = random.Random(seed)
    (tmp_path / "flows.py").write_text(FLOW_FILE)
    env = {**os.environ, "TEST_WAREHOUSE": url, "TEST_RUNNER": runner,
           "HEADRACE_HOME": str(headrace_home)}
    start = ["run", f"{tmp_path / 'flows.py'}:pipeline"]
    _kill_after(_start(start, env), rng.uniform(2.0, 5.0))
    kills = 1
    for _ in range(8):
        run = _latest_run()
        if run["state_type"] == "COMPLETED":
            break
        # Killed before its run was even recorded: start it again.
        proc = _start(["retry", run["id"]] if "id" in run else start, env)
        if kills < 2:  # kill the first retry too, at its own random point
            _kill_after(proc, rng.uniform(2.0, 5.0))
            kills += 1
        else:
            proc.wait(240)
        time.sleep(0.1)
    assert _latest_run()["state_type"] == "COMPLETED"
    got = read_sql("SELECT count(*) AS n, count(DISTINCT order_id) AS d FROM sales", url)
    assert (int(got["n"][0]), int(got["d"][0])) == (400, 400)
