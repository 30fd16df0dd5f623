"""Scheduler benchmark (issues 5 and 9, "Speed").

1. Fake clock: 1,000 deployments on a cron of every minute; the scheduler ticks
   whenever its pure ``next_wake`` says, over a simulated day. Reports the wall
   time per tick and the scheduler's CPU per simulated hour. A stand-in worker
   marks due runs completed between ticks (not timed), so the store grows as
   it would in production.
2. Real clock: the same 1,000 deployments served by the scheduler and workers
   for 3 minutes; reports the lateness from scheduled time to Running (p50, p99).
3. Same-second bursts: 1,000 runs due in one second (created ahead, as the
   scheduler does), taken by the workers; the p99 lateness from the slot to
   Running of each burst, as the median of ``--bursts`` bursts with the range.

Targets: a tick over 1,000 deployments under 50 ms; p99 lateness under 1 s.

    .venv/bin/python bench/scheduler.py                  # the issue's numbers
    .venv/bin/python bench/scheduler.py --hours 2 --real-seconds 70   # quicker
    .venv/bin/python bench/scheduler.py --hours 0 --real-seconds 0    # only the bursts
    .venv/bin/python bench/scheduler.py --hours 0 --real-seconds 0 --against 8dd8f34   # bursts, and A/B
    .venv/bin/python bench/scheduler.py --store postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text, update
from sqlalchemy.schema import CreateSchema, DropSchema

FLOW = """
from headrace import flow

@flow(name="bench")
def bench(n: int = 0):
    return n
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def open_fresh(url: str | None, folder: Path, name: str):  # type: ignore[no-untyped-def]
    from headrace.store import open_store

    if url is None:
        return open_store(f"sqlite:///{folder / name}.db")
    schema = f"bench_{name}_{os.getpid()}"
    admin = open_store(url)
    with admin.engine.connect() as conn:
        conn.execute(DropSchema(schema, cascade=True, if_exists=True))
        conn.execute(CreateSchema(schema))
        conn.commit()
    admin.close()
    sep = "&" if "?" in url else "?"
    return open_store(f"{url}{sep}options=-csearch_path%3D{schema}")


def drop_scratch(store) -> None:  # type: ignore[no-untyped-def]
    """Remove a PostgreSQL scratch schema made by ``open_fresh``."""
    if store.dialect != "postgresql":
        return
    with store.engine.connect() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar()
        if schema and str(schema).startswith("bench_"):
            conn.execute(DropSchema(str(schema), cascade=True))
            conn.commit()
    store.close()


def deploy_many(store, flow_file: Path, count: int, now: datetime, cron: bool = True) -> None:  # type: ignore[no-untyped-def]
    from headrace.engine import load_flow
    from headrace.schedule import CronSchedule, Deployment

    flow = load_flow(f"{flow_file}:bench")
    for i in range(count):
        schedule = CronSchedule("* * * * *") if cron else None
        Deployment(flow, f"bench-{i:04d}", parameters={"n": i}, schedule=schedule).apply(store=store, now=now)


def fake_clock_phase(store, flow_file: Path, count: int, hours: float) -> None:  # type: ignore[no-untyped-def]
    from headrace.schedule import Scheduler
    from headrace.store.schema import flow_runs

    start = datetime(2024, 1, 1, tzinfo=UTC)
    deploy_many(store, flow_file, count, start)
    scheduler = Scheduler(store)
    now, end = start, start + timedelta(hours=hours)
    ticks: list[float] = []
    busy: list[float] = []  # ticks that created runs (a new minute entered the window)
    cpu_by_hour: dict[int, float] = {}
    created = 0
    while now < end:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        result = scheduler.tick(now)
        ticks.append(time.perf_counter() - wall0)
        hour = int((now - start).total_seconds() // 3600)
        cpu_by_hour[hour] = cpu_by_hour.get(hour, 0.0) + time.process_time() - cpu0
        created += result.created
        if result.created:
            busy.append(ticks[-1] * 1000)
        with store.transaction() as conn:  # the stand-in worker: due runs are done
            conn.execute(
                update(flow_runs)
                .where(flow_runs.c.state_type == "SCHEDULED", flow_runs.c.expected_start <= now)
                .values(state_type="COMPLETED", state_name="Completed", ended_at=now)
            )
        now = max(result.next_wake or now, now + timedelta(milliseconds=1))
    ms = [t * 1000 for t in ticks]
    cpu = list(cpu_by_hour.values())
    print(
        f"fake clock: {count} deployments every minute, {hours:g} simulated hour(s), "
        f"{len(ticks)} ticks, {created} runs created"
    )
    print(
        f"  tick wall time: mean {statistics.mean(ms):.1f} ms, p50 {pct(ms, 0.5):.1f} ms, "
        f"p99 {pct(ms, 0.99):.1f} ms, max {max(ms):.1f} ms (target < 50 ms)"
    )
    print(
        f"  ticks that created runs ({len(busy)}): p50 {pct(busy, 0.5):.1f} ms, "
        f"p99 {pct(busy, 0.99):.1f} ms; first tick (plans the whole lookahead) {ms[0]:.1f} ms"
    )
    print(f"  scheduler CPU per simulated hour: mean {statistics.mean(cpu):.2f} s, max {max(cpu):.2f} s")


def real_clock_phase(
    store,
    flow_file: Path,
    count: int,
    seconds: float,  # type: ignore[no-untyped-def]
    processes: int,
    concurrency: int,
) -> None:
    from headrace.schedule.service import serve
    from headrace.store import utcnow

    began = utcnow()
    deploy_many(store, flow_file, count, began)
    procs = start_worker_processes(store, processes, concurrency)
    stop = threading.Event()
    workers = 0 if processes else 1
    thread = threading.Thread(
        target=serve, args=(store,), daemon=True, kwargs={"stop": stop, "workers": workers, "concurrency": concurrency}
    )
    thread.start()
    time.sleep(seconds)  # the real-clock phase is meant to take wall time
    stop.set()
    stop_worker_processes(procs)
    thread.join(60)
    report_lateness(store, began, began + timedelta(seconds=seconds), count, processes, concurrency)


def report_lateness(
    store,
    began: datetime,
    ended: datetime,
    count: int,  # type: ignore[no-untyped-def]
    processes: int,
    concurrency: int,
) -> None:
    from headrace.store.schema import flow_runs

    query = flow_runs.select().where(
        flow_runs.c.expected_start > began, flow_runs.c.expected_start <= ended - timedelta(seconds=5)
    )
    with store.read() as conn:
        rows = conn.execute(query).mappings().all()
    late, missing = [], 0
    for row in rows:
        if row["started_at"] is None:
            missing += 1
            continue
        started = row["started_at"].replace(tzinfo=UTC) if row["started_at"].tzinfo is None else row["started_at"]
        expected = (
            row["expected_start"].replace(tzinfo=UTC) if row["expected_start"].tzinfo is None else row["expected_start"]
        )
        late.append((started - expected).total_seconds())
    who = f"{processes} worker process(es)" if processes else "1 in-process worker"
    print(
        f"real clock: {count} deployments every minute for {(ended - began).total_seconds():.0f} s "
        f"on {store.dialect}, {who} x {concurrency} at a time; {len(rows)} runs due, "
        f"{len(late)} started, {missing} not started"
    )
    if late:
        print(
            f"  lateness scheduled -> Running: p50 {pct(late, 0.5):.3f} s, p99 {pct(late, 0.99):.3f} s, "
            f"max {max(late):.3f} s (target p99 < 1 s)"
        )


def wait_started(store, slot: datetime, count: int, timeout: float = 120.0) -> tuple[list[float], int]:  # type: ignore[no-untyped-def]
    """Lateness (s) of the runs of ``slot`` once all started (or ``timeout`` passed), and how many did not."""
    from headrace.store.schema import flow_runs

    query = flow_runs.select().with_only_columns(flow_runs.c.started_at).where(flow_runs.c.expected_start == slot)
    deadline = time.monotonic() + timeout
    while True:
        with store.read() as conn:
            started = [r[0] for r in conn.execute(query)]
        done = [t for t in started if t is not None]
        if len(done) >= count or time.monotonic() > deadline:
            late = [((t if t.tzinfo else t.replace(tzinfo=UTC)) - slot).total_seconds() for t in done]
            return late, count - len(done)
        time.sleep(0.5)


def run_bursts(store, flow_file: Path, count: int, bursts: int, processes: int, concurrency: int,  # type: ignore[no-untyped-def]
               verbose: bool = True) -> tuple[list[float], list[float]]:
    """``bursts`` times: ``count`` runs due in the same second, created 5 s ahead (the scheduler
    creates them minutes ahead), taken by the workers; the p50 and p99 lateness slot -> Running."""
    from headrace.schedule.scheduler import new_run_row
    from headrace.schedule.service import serve
    from headrace.store import utcnow

    deploy_many(store, flow_file, count, utcnow(), cron=False)
    deployments = store.list_deployments()
    procs = start_worker_processes(store, processes, concurrency)
    stop = threading.Event()
    options = {"stop": stop, "workers": 0 if processes else 1, "concurrency": concurrency, "scheduler": False}
    thread = threading.Thread(target=serve, args=(store,), kwargs=options, daemon=True)
    thread.start()
    p50s, p99s = [], []
    try:
        for i in range(bursts):
            now = utcnow()
            slot = (now + timedelta(seconds=5)).replace(microsecond=0)
            store.create_scheduled_runs([new_run_row(d, slot, now, key=f"{d['id']}:burst{i}") for d in deployments])
            late, missing = wait_started(store, slot, count)
            p50s.append(pct(late, 0.5))
            p99s.append(pct(late, 0.99) if not missing else float("inf"))
            if verbose:
                print(f"  burst {i + 1}: p50 {p50s[-1]:.3f} s, p99 {p99s[-1]:.3f} s, max {max(late):.3f} s"
                      + (f", {missing} not started" if missing else ""))
    finally:
        stop.set()
        stop_worker_processes(procs)
        thread.join(60)
    return p50s, p99s


def burst_phase(store, flow_file: Path, count: int, bursts: int, processes: int, concurrency: int) -> None:  # type: ignore[no-untyped-def]
    who = f"{processes} worker process(es)" if processes else "1 in-process worker"
    print(f"same-second bursts: {count} runs due in one second, {bursts} bursts, on {store.dialect}, "
          f"{who} x {concurrency} at a time")
    p50s, p99s = run_bursts(store, flow_file, count, bursts, processes, concurrency)
    p99 = statistics.median(p99s)
    print(f"  lateness slot -> Running, median of {bursts}: p50 {statistics.median(p50s):.3f} s; "
          f"p99 {p99:.3f} s (range {min(p99s):.3f}-{max(p99s):.3f} s); target p99 < 1 s: "
          f"{'ok' if p99 < 1.0 else 'MISS'}")


def burst_against(args: argparse.Namespace) -> None:
    """The same-second burst in this tree and in commit ``args.against``, alternating fresh processes."""
    import _ab

    tree = _ab.export(args.against)
    child = ["--child-burst", "--deployments", str(args.deployments), "--processes", str(args.processes),
             "--concurrency", str(args.concurrency)] + (["--store", args.store] if args.store else [])
    p99: dict[str, list[float]] = {"this tree": [], args.against: []}
    for _, this_first in _ab.alternate(args.bursts):
        for side in (("this tree", args.against) if this_first else (args.against, "this tree")):
            result = _ab.run_child(Path(__file__).resolve(), child, None if side == "this tree" else tree)
            p99[side].append(result["p99"])
    mine, theirs = p99["this tree"], p99[args.against]
    ratios = [a / b for a, b in zip(mine, theirs, strict=True)]  # each pair ran back to back
    print(f"A/B same-second burst ({args.deployments} runs, {args.bursts} alternating fresh processes each): "
          f"p99 lateness this tree {_ab.summary(mine)} s, {args.against} {_ab.summary(theirs)} s, "
          f"ratio of pairs {_ab.summary(ratios)}; this tree's p99 < 1 s: "
          f"{'ok' if statistics.median(mine) < 1.0 else 'MISS'}")
    import shutil

    shutil.rmtree(tree.parent, ignore_errors=True)


def burst_child(args: argparse.Namespace, folder: Path, flow_file: Path) -> None:
    import json

    store = open_fresh(args.store, folder, "abburst")
    os.environ["HEADRACE_STORE"] = store.url
    p50s, p99s = run_bursts(store, flow_file, args.deployments, 1, args.processes, args.concurrency, verbose=False)
    drop_scratch(store)
    print(json.dumps({"p50": p50s[0], "p99": p99s[0]}))


def start_worker_processes(store, processes: int, concurrency: int) -> list[subprocess.Popen[bytes]]:  # type: ignore[no-untyped-def]
    env = {**os.environ, "HEADRACE_STORE": store.url, "HEADRACE_LOG_LEVEL": "WARNING"}
    code = "import sys; from headrace.cli import main; sys.exit(main())"
    cmd = [sys.executable, "-c", code, "worker", "--concurrency", str(concurrency)]
    return [subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL) for _ in range(processes)]


def stop_worker_processes(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours (fake clock)")
    parser.add_argument("--real-seconds", type=float, default=180.0, help="real-clock phase length; 0 skips it")
    parser.add_argument(
        "--store", default=None, help="PostgreSQL URL (a scratch schema is created); default SQLite files"
    )
    parser.add_argument(
        "--processes", type=int, default=0, help="worker processes for the real-clock phase (0: workers in-process)"
    )
    parser.add_argument("--concurrency", type=int, default=4, help="runs at once per worker")
    parser.add_argument("--bursts", type=int, default=5, help="same-second bursts; 0 skips them")
    parser.add_argument("--against", metavar="COMMIT", help="also run the bursts A/B: this tree vs COMMIT")
    parser.add_argument("--child-burst", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("headrace").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="headrace-bench-") as tmp:
        folder = Path(tmp)
        os.environ["HEADRACE_HOME"] = str(folder)
        flow_file = folder / "bench_flow.py"
        flow_file.write_text(FLOW)
        if args.child_burst:
            burst_child(args, folder, flow_file)
            return
        if args.hours > 0:
            store = open_fresh(args.store, folder, "fake")
            fake_clock_phase(store, flow_file, args.deployments, args.hours)
            drop_scratch(store)
        if args.real_seconds > 0:
            store = open_fresh(args.store, folder, "real")
            os.environ["HEADRACE_STORE"] = store.url
            real_clock_phase(store, flow_file, args.deployments, args.real_seconds, args.processes, args.concurrency)
            drop_scratch(store)
        if args.bursts > 0:
            store = open_fresh(args.store, folder, "burst")
            os.environ["HEADRACE_STORE"] = store.url
            burst_phase(store, flow_file, args.deployments, args.bursts, args.processes, args.concurrency)
            drop_scratch(store)
        if args.against and args.bursts > 0:
            burst_against(args)


if __name__ == "__main__":
    main()
