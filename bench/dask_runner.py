"""What running a flow's tasks on Dask costs, next to plain dask.distributed doing the same work.

    .venv/bin/python bench/dask_runner.py   (not dask.py: that name would shadow the dask package)

1. Per task: a flow mapping N tiny tasks with ``DaskTaskRunner(address=...)`` on a running
   LocalCluster (2 worker processes, 1 thread each), against ``client.map`` + ``gather`` of the
   same function on the same cluster. The flow's figure includes connecting its client and
   recording every task run in SQLite.
2. What a user pays: a fresh process running a one-task flow with ``DaskTaskRunner()`` (its own
   LocalCluster, started and closed), against a fresh process doing the same with plain Dask.

Each figure is the median of 5 runs with the min-max range; ok/MISS per target.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

N = 200
REPEATS = 5
TARGET_PER_TASK_MS = 5.0  # headrace's extra cost per task over client.map
TARGET_ONE_TASK_RATIO = 1.5  # a one-task flow on its own cluster, over plain Dask's start + task + close

HEADRACE_ONE = textwrap.dedent("""
    from headrace import DaskTaskRunner, flow, task

    @task
    def one() -> int:
        return 1

    @flow(task_runner=DaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 1}))
    def one_task() -> int:
        return one()

    if __name__ == "__main__":
        assert one_task() == 1
""")

DASK_ONE = textwrap.dedent("""
    from distributed import Client, LocalCluster

    def one() -> int:
        return 1

    if __name__ == "__main__":
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None) as cluster, Client(cluster) as client:
            assert client.submit(one).result() == 1
""")


def noop(i: int) -> int:
    return i


def timed(fn: Callable[[], Any]) -> list[float]:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def spread(times: list[float], scale: float = 1.0, unit: str = "s") -> str:
    return (f"{statistics.median(times) * scale:8.2f} {unit} "
            f"({min(times) * scale:.2f}-{max(times) * scale:.2f})")


def per_task() -> tuple[str, str, float]:
    from distributed import Client, LocalCluster

    from headrace import DaskTaskRunner, flow, task

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        tiny = task(name="noop")(noop)

        @flow(name="bench-dask", task_runner=DaskTaskRunner(address=cluster.scheduler_address))
        def mapped(n: int) -> int:
            return len([f.result() for f in tiny.map(range(n))])

        mapped(10)  # open and migrate the store, warm the workers
        client.gather(client.map(noop, range(10), pure=False))
        base = timed(lambda: client.gather(client.map(noop, range(N), pure=False)))
        ours = timed(lambda: mapped(N))
    extra_ms = (statistics.median(ours) - statistics.median(base)) / N * 1000
    return spread(base, 1000, "ms"), spread(ours, 1000, "ms"), extra_ms


def fresh(script: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, str(script)], env=env, check=True, cwd=script.parent,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def one_task(folder: Path) -> tuple[list[float], list[float]]:
    ours, theirs = folder / "headrace_one.py", folder / "dask_one.py"
    ours.write_text(HEADRACE_ONE)
    theirs.write_text(DASK_ONE)
    env = {**os.environ, "HEADRACE_HOME": str(folder / "home")}
    fresh(ours, env)  # the store is created outside the timings
    a, b = [], []
    for _ in range(REPEATS):  # alternating, so the machine's load weighs on both alike
        b.append(fresh(theirs, env))
        a.append(fresh(ours, env))
    return b, a


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="headrace-bench-dask-") as tmp:
        os.environ["HEADRACE_HOME"] = str(Path(tmp) / "home")
        base, ours, extra_ms = per_task()
        dask_one, headrace_one = one_task(Path(tmp))
    ratio = statistics.median(headrace_one) / statistics.median(dask_one)
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores\n")
    print(f"{'measure':<44} {'plain Dask':<28} {'headrace':<28} {'figure':<16} target")
    rows = [
        (f"{N} tiny tasks, running cluster", base, ours, f"{extra_ms:.2f} ms/task", extra_ms,
         TARGET_PER_TASK_MS, "ms/task extra"),
        ("one-task flow, fresh process, own cluster", spread(dask_one), spread(headrace_one),
         f"{ratio:.2f}x", ratio, TARGET_ONE_TASK_RATIO, "x"),
    ]
    missed = 0
    for label, plain, measured, figure, value, target, unit in rows:
        verdict = "ok" if value <= target else "MISS"
        missed += verdict == "MISS"
        print(f"{label:<44} {plain:<28} {measured:<28} {figure:<16} <= {target:g} {unit}  {verdict}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
