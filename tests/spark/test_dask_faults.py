"""DaskTaskRunner under faults: a worker process SIGKILLed mid-task, a scheduler that is not there,
Dask not installed; and the runner's own LocalCluster, started and closed with its flow run."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
import pytest
from dask_test_cluster import shared_cluster

from headrace import DaskTaskRunner, flow, task
from headrace.errors import ConfigError
from headrace.io import read_sql, write_table
from headrace.store import get_store


@pytest.fixture(scope="module")
def dask_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running scheduler for this module (see dask_test_cluster.py)."""
    yield from shared_cluster(tmp_path_factory)


def frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"order_id": range(n), "amount": [1.5] * n})


def wait_for(path: Path, limit: float = 60) -> str:
    deadline = time.monotonic() + limit
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)
    return path.read_text()


def kill_when_started(pid_file: Path) -> threading.Thread:
    """SIGKILL the worker process whose body wrote ``pid_file``, as soon as it does."""
    def kill() -> None:
        os.kill(int(wait_for(pid_file)), signal.SIGKILL)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


@task(retries=1, retry_delay_seconds=0)
def load_then_die(url: str, folder: str) -> int:
    """Loads, then its worker is killed (first attempt); the retry's load must not land again."""
    rows = write_table(frame(1000), "sales", url)
    pid_file = Path(folder) / "load_then_die.pid"
    if not pid_file.exists():
        pid_file.write_text(str(os.getpid()))
        time.sleep(60)  # killed here
    return rows


@task
def dies(folder: str) -> int:
    (Path(folder) / "dies.pid").write_text(str(os.getpid()))
    time.sleep(60)  # killed here
    return 0


@task
def worker_pid() -> int:
    return os.getpid()


def test_a_killed_worker_fails_or_retries_its_task_run_and_the_load_lands_once(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    runner = DaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 1})

    @flow(task_runner=runner)
    def pipeline() -> tuple[str, str, int]:
        retried = load_then_die.submit(url, str(tmp_path))
        retried.wait()
        failed = dies.submit(str(tmp_path))
        failed.wait()
        return retried.state.name, failed.state.name, worker_pid()

    killers = [kill_when_started(tmp_path / "load_then_die.pid"), kill_when_started(tmp_path / "dies.pid")]
    state = pipeline(return_state=True)  # type: ignore[call-arg]
    for killer in killers:
        killer.join(5)
    assert state.is_completed(), state.message
    retried, failed, survivor = state.result()
    assert (retried, failed) == ("Completed", "Failed")
    runs = {t["task_name"]: t for t in get_store().list_task_runs(str(state.run_id))}
    assert runs["load_then_die"]["attempts"] == 2
    assert "the Dask worker running task 'load_then_die' died" in str(
        [c["message"] for c in get_store().get_state_changes(runs["load_then_die"]["id"])])
    assert runs["dies"]["state_message"].startswith("RemoteTaskError: the Dask worker running task 'dies' died")
    assert not [t for t in runs.values() if t["state_type"] not in ("COMPLETED", "FAILED")]
    got = read_sql("SELECT count(*) AS n, count(DISTINCT order_id) AS d FROM sales", url)
    assert (int(got["n"][0]), int(got["d"][0])) == (1000, 1000)  # landed once, through a SIGKILL
    assert len(read_sql("SELECT load_key FROM headrace_load_ledger", url)) == 1
    # The runner closed the cluster it started: its worker processes are gone.
    with pytest.raises(ProcessLookupError):
        os.kill(survivor, 0)
    left = [" ".join(p.cmdline()) for p in psutil.Process().children(recursive=True)
            if p.pid not in before and p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    # multiprocessing's resource tracker lives as long as this process, whoever spawned first
    assert [c for c in left if "resource_tracker" not in c] == []


@task
def load_die_once(url: str, folder: str) -> int:
    rows = write_table(frame(500), "sales", url)
    pid_file = Path(folder) / "load_die_once.pid"
    if not pid_file.exists():
        pid_file.write_text(str(os.getpid()))
        time.sleep(60)  # killed here; Dask runs the body again on a worker that is alive
    return rows


def test_on_a_shared_cluster_dask_reruns_a_killed_body_and_its_load_still_lands_once(
        dask_address: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"

    @flow(task_runner=DaskTaskRunner(address=dask_address))
    def pipeline() -> int:
        return load_die_once(url, str(tmp_path))  # type: ignore[no-any-return]

    killer = kill_when_started(tmp_path / "load_die_once.pid")
    state = pipeline(return_state=True)  # type: ignore[call-arg]
    killer.join(5)
    assert state.is_completed(), state.message
    assert state.result() == 500
    (run,) = get_store().list_task_runs(str(state.run_id))
    assert (run["state_name"], run["attempts"]) == ("Completed", 1)  # one attempt, run twice by Dask
    got = read_sql("SELECT count(*) AS n, count(DISTINCT order_id) AS d FROM sales", url)
    assert (int(got["n"][0]), int(got["d"][0])) == (500, 500)


@task(retries=4, retry_delay_seconds=0)
def load_part(url: str, i: int, folder: str) -> int:
    (Path(folder) / f"{i}.started").touch()
    time.sleep(random.uniform(0, 0.3))
    rows = write_table(pd.DataFrame({"order_id": range(i * 100, i * 100 + 100)}), "sales", url)
    time.sleep(random.uniform(0, 0.3))  # a kill here comes after the commit
    return rows


def _worker_processes(before: set[int]) -> list[int]:
    """The worker processes (spawned by the nannies of this process) that appeared since ``before``."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            cmd = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if proc.pid not in before and "spawn_main" in cmd and "resource_tracker" not in cmd:
            found.append(proc.pid)
    return sorted(found)


@pytest.mark.parametrize(("backend", "seed"), [("postgresql", 21)])
def test_workers_killed_at_random_points_never_duplicate_or_lose_a_load(
        backend: str, seed: int, request: Any, tmp_path: Path) -> None:
    url = (str(request.getfixturevalue("pg_libpq_url")) if backend == "postgresql"
           else f"sqlite:///{tmp_path / 'w.sqlite'}")
    rng = random.Random(seed)
    stop = threading.Event()
    kills: list[int] = []
    before = {p.pid for p in psutil.Process().children(recursive=True)}

    killing = threading.Lock()

    @flow(task_runner=DaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 1}))
    def pipeline() -> int:
        total = sum(load_part.map(url, range(8), str(tmp_path)).result())
        with killing:  # kills are of workers running bodies, not of a cluster being closed
            stop.set()
        return total

    def killer() -> None:
        while not list(tmp_path.glob("*.started")):  # the cluster is up, bodies are running
            if stop.wait(0.02):
                return
        while len(kills) < 3 and not stop.wait(rng.uniform(0.3, 1.0)):
            with killing:
                pids = _worker_processes(before)
                if pids and not stop.is_set():
                    kills.append(rng.choice(pids))
                    os.kill(kills[-1], signal.SIGKILL)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    state = pipeline(return_state=True)  # type: ignore[call-arg]
    stop.set()
    thread.join(10)
    assert kills, "no worker was killed"
    assert state.is_completed(), state.message
    got = read_sql("SELECT count(*) AS n, count(DISTINCT order_id) AS d FROM sales", url)
    assert (int(got["n"][0]), int(got["d"][0])) == (800, 800)
    runs = get_store().list_task_runs(str(state.run_id))
    assert sorted(t["state_name"] for t in runs) == ["Completed"] * 8
    time.sleep(0.5)
    assert _worker_processes(before) == []  # the cluster is gone, even when Dask's close hung


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@task
def anything() -> int:
    return 1


def test_a_scheduler_that_is_not_there_fails_the_task_run_with_its_address() -> None:
    address = f"tcp://127.0.0.1:{_closed_port()}"

    @flow(task_runner=DaskTaskRunner(address=address, client_kwargs={"timeout": "1s"}))
    def pipeline() -> int:
        return anything() + anything.submit().result()  # type: ignore[no-any-return]

    state = pipeline(return_state=True)  # type: ignore[call-arg]
    assert state.is_failed()
    (run,) = get_store().list_task_runs(str(state.run_id))
    assert run["state_name"] == "Failed"
    assert run["state_message"].startswith(f"TaskRunError: DaskTaskRunner cannot reach the Dask scheduler at {address}")

    @flow(task_runner=DaskTaskRunner(address=address, client_kwargs={"timeout": "1s"}))
    def submitted() -> int:
        return anything.submit().result()  # type: ignore[no-any-return]

    state = submitted(return_state=True)  # type: ignore[call-arg]
    assert state.is_failed()
    (run,) = get_store().list_task_runs(str(state.run_id))
    assert run["state_message"].startswith(f"TaskRunError: DaskTaskRunner cannot reach the Dask scheduler at {address}")


def test_cluster_kwargs_with_an_address_is_refused() -> None:
    with pytest.raises(ConfigError, match="cluster_kwargs apply to the LocalCluster it starts"):
        DaskTaskRunner(address="tcp://127.0.0.1:8786", cluster_kwargs={"n_workers": 2})


def test_without_dask_the_runner_names_the_extra_to_install() -> None:
    code = ("import sys; sys.modules['distributed'] = None; sys.modules['dask'] = None\n"
            "import headrace.spark, headrace.task_runners\n"
            "from headrace import DaskTaskRunner\n"
            "try:\n    DaskTaskRunner()\n"
            "except Exception as exc:\n    print(type(exc).__name__, exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == ("ConfigError DaskTaskRunner needs dask.distributed, which is not installed: "
                                  "pip install 'headrace[dask]'")
