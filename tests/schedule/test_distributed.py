"""Two schedulers and four workers on one store (PostgreSQL, and SQLite too): each slot runs once."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

from headrace.schedule import CronSchedule, Deployment, Scheduler, Worker
from headrace.store import open_store

from .conftest import NO_SPREAD, T0


def _together(functions) -> list:
    """Start every function at the same moment in its own thread; return their results."""
    barrier = threading.Barrier(len(functions))
    results: list = [None] * len(functions)
    errors: list[BaseException] = []

    def call(i: int) -> None:
        barrier.wait()
        try:
            results[i] = functions[i]()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(functions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    return results


def test_two_schedulers_and_four_workers_run_each_slot_once(store_url, flow_file, monkeypatch):
    monkeypatch.setenv("HEADRACE_STORE", store_url)
    stores = [open_store(store_url) for _ in range(6)]
    flow = flow_file.load()
    for name in ("a", "b", "c"):
        Deployment(flow, name, parameters={"label": name}, schedule=CronSchedule("* * * * *"), catchup=True).apply(
            store=stores[0], now=T0
        )
    schedulers = [Scheduler(stores[i], spread=NO_SPREAD, lookahead=timedelta(minutes=2)) for i in range(2)]
    workers = [Worker(stores[2 + i], name=f"w{i}", concurrency=3) for i in range(4)]
    end = T0 + timedelta(minutes=10)
    now = T0
    while now <= end:
        _together([lambda s=s, n=now: s.tick(n) for s in schedulers])
        while any(_together([lambda w=w, n=now: w.run_due(n) for w in workers])):
            pass
        now += timedelta(seconds=30)
    lines = flow_file.lines()
    counts = Counter(lines)
    assert len(lines) == 3 * 10  # 06:01 .. 06:10 for three deployments
    assert max(counts.values()) == 1  # no slot ran twice
    runs = stores[0].list_flow_runs(limit=1000)
    assert Counter(r["state_name"] for r in runs) == {"Completed": 30, "Scheduled": 6}
    assert len({(r["deployment_id"], r["expected_start"]) for r in runs}) == len(runs)
    for st in stores:
        st.close()


def test_serving_workers_start_a_burst_in_batches_and_run_each_run_once(store_url, flow_file, monkeypatch):
    import time

    from headrace.schedule.scheduler import new_run_row
    from headrace.store import utcnow

    monkeypatch.setenv("HEADRACE_STORE", store_url)
    stores = [open_store(store_url) for _ in range(4)]
    flow = flow_file.load()
    for name in ("a", "b", "c", "d"):
        Deployment(flow, name, parameters={"label": name}).apply(store=stores[0])
    now = utcnow()
    burst = [new_run_row(d, now - timedelta(seconds=s), now) for d in stores[0].list_deployments() for s in range(12)]
    assert stores[0].create_scheduled_runs(burst) == 48  # 48 runs due at once
    stop = threading.Event()
    workers = [Worker(stores[1 + i], name=f"w{i}", concurrency=4) for i in range(3)]
    threads = [threading.Thread(target=w.serve, args=(stop,)) for w in workers]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(stores[0].list_flow_runs(state="Completed", limit=100)) < 48:
        time.sleep(0.2)
    stop.set()
    for w in workers:
        w.wakeup.set()
    for t in threads:
        t.join(30)
    lines = flow_file.lines()
    assert len(lines) == 48 and max(Counter(lines).values()) == 1  # every run ran, none twice
    starts: Counter[tuple[str, object]] = Counter()
    for run in stores[0].list_flow_runs(limit=100):
        history = stores[0].get_state_changes(run["id"])
        assert [c["to_type"] for c in history] == ["SCHEDULED", "PENDING", "RUNNING", "COMPLETED"]
        claim, start = history[1], history[2]
        assert claim["message"] == f"claimed by {run['worker']}" and start["at"] == claim["at"] == run["started_at"]
        starts[(run["worker"], run["started_at"])] += 1
    assert max(starts.values()) > 1  # runs were started in batches, one transaction each
    for st in stores:
        st.close()
