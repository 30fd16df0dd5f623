"""Web page benchmark (issue 13, "Speed").

Fills a store with 100,000 flow runs and 1,000,000 task runs (SQLite, and
PostgreSQL in a database of its own that is dropped afterwards), serves it with
`headrace ui` in a fresh process, and times what a browser waits for over a
kept-alive connection: the first byte and the whole page, for the runs page and
for one run's page, p50 and p99 over 50 requests. Each figure is the median of
5 rounds with the min-max range, next to the baseline of the same server
answering a static file. With Chromium installed it also reports the browser's
load time of the two pages (informational).

Target: p99 under 150 ms for the first byte and the full page of both pages.

    .venv/bin/python bench/ui.py                          # the issue's numbers, both stores
    .venv/bin/python bench/ui.py --runs 20000 --backend sqlite   # quicker
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
TARGET_MS = 150.0
FLOWS = [f"flow-{i:02d}" for i in range(20)]
RUN_COLS = ("id", "flow_name", "name", "state_type", "state_name", "state_message", "parameters", "tags", "run_count",
            "created_at", "started_at", "ended_at", "cancel_requested", "rows_loaded")
TASK_COLS = ("id", "flow_run_id", "task_name", "task_key", "state_type", "state_name", "attempts", "created_at",
             "started_at", "ended_at")
CHANGE_COLS = ("run_id", "run_kind", "from_type", "to_type", "to_name", "message", "at")
LOG_COLS = ("flow_run_id", "task_run_id", "at", "level", "logger", "message")


def generate(runs: int, tasks_per_run: int, seed: int = 7) -> Iterator[tuple[str, Any]]:
    """Rows of runs over the last 100 days: mostly completed, some failed, a few running."""
    rnd = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=100)
    step = timedelta(days=100) / runs
    for i in range(runs):
        created = start + step * i
        run_id = uuid.UUID(int=rnd.getrandbits(128)).hex
        roll = rnd.random()
        state = ("FAILED", "Failed") if roll < 0.07 else ("RUNNING", "Running") if i >= runs - 5 else \
            ("COMPLETED", "Completed")
        ended = created + timedelta(seconds=30 + rnd.random() * 600) if state[0] != "RUNNING" else None
        flow = FLOWS[i % len(FLOWS)]
        yield "run", (run_id, flow, f"{flow}-{run_id[:8]}", state[0], state[1], None, '{"day": "2024-01-01"}',
                      '["bench"]', 1, created, created, ended, False, rnd.randint(0, 100_000))
        for k in range(tasks_per_run):
            failed = state[0] == "FAILED" and k == tasks_per_run - 1
            t_state = ("FAILED", "Failed") if failed else ("COMPLETED", "Completed")
            t_start = created + timedelta(seconds=k * 3)
            yield "task", (uuid.UUID(int=rnd.getrandbits(128)).hex, run_id, f"task{k}", f"task{k}-0", t_state[0],
                           t_state[1], 2 if failed else 1, t_start, t_start, t_start + timedelta(seconds=2))


def details(run_id: str, task_ids: list[str], at: datetime, lines: int) -> tuple[list[Any], list[Any]]:
    """State changes of one run's tasks and a long log, for the run page that is measured."""
    changes, logs = [], []
    for tid in task_ids:
        for n, (frm, to, name) in enumerate(((None, "PENDING", "Pending"), ("PENDING", "RUNNING", "Running"),
                                             ("RUNNING", "COMPLETED", "Completed"))):
            changes.append((tid, "task", frm, to, name, None, at + timedelta(seconds=n)))
    for n in range(lines):
        logs.append((run_id, task_ids[n % len(task_ids)], at + timedelta(milliseconds=n), 20, "bench",
                     f"processed batch {n} of the day's orders"))
    return changes, logs


# -- filling ---------------------------------------------------------------------------------------------
def fill_sqlite(path: Path, runs: int, tasks: int) -> tuple[str, str]:
    import sqlite3

    from headrace.store import RunStore

    url = f"sqlite:///{path}"
    RunStore(url).close()  # creates the schema (all migrations)
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    fmt = lambda v: v.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v  # noqa: E731
    batch: dict[str, list[Any]] = {"run": [], "task": []}
    sql = {"run": _insert("hr_flow_runs", RUN_COLS, "?"), "task": _insert("hr_task_runs", TASK_COLS, "?")}
    last: tuple[str, list[str], datetime] | None = None
    for kind, row in generate(runs, tasks):
        batch[kind].append(tuple(fmt(v) for v in row))
        if kind == "run" and row[3] == "COMPLETED":
            last = (row[0], [], row[9])
        elif kind == "task" and last is not None and row[1] == last[0]:
            last[1].append(row[0])
        if len(batch[kind]) >= 50_000:
            con.executemany(sql[kind], batch[kind])
            batch[kind] = []
    for kind, rows in batch.items():
        if rows:
            con.executemany(sql[kind], rows)
    assert last is not None
    changes, logs = details(*last, lines=5000)
    con.executemany(_insert("hr_state_changes", CHANGE_COLS, "?"), [tuple(fmt(v) for v in r) for r in changes])
    con.executemany(_insert("hr_logs", LOG_COLS, "?"), [tuple(fmt(v) for v in r) for r in logs])
    con.commit()
    con.close()
    _summaries(url)
    return url, last[0]


def _insert(table: str, cols: tuple[str, ...], mark: str) -> str:
    return "INSERT INTO " + table + " (" + ", ".join(cols) + ") VALUES (" + ", ".join([mark] * len(cols)) + ")"


def _summaries(url: str) -> None:
    from headrace.store import RunStore
    from headrace.store.summaries import rebuild_run_summaries

    store = RunStore(url)
    with store.transaction() as conn:
        rebuild_run_summaries(conn)
    if store.dialect == "postgresql":
        with store.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
    store.close()


@contextmanager
def pg_database() -> Iterator[str]:
    import psycopg
    from psycopg import sql

    name = f"hr_bench_ui_{os.getpid()}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def fill_postgres(url: str, runs: int, tasks: int) -> tuple[str, str]:
    import psycopg

    from headrace.store import RunStore

    RunStore(url).close()
    last: tuple[str, list[str], datetime] | None = None
    with psycopg.connect(url) as con, con.cursor() as cur:
        with cur.copy("COPY hr_flow_runs (" + ", ".join(RUN_COLS) + ") FROM STDIN") as runs_copy:
            pending_tasks = []
            for kind, row in generate(runs, tasks):
                if kind == "run":
                    runs_copy.write_row(row)
                    if row[3] == "COMPLETED":
                        last = (row[0], [], row[9])
                else:
                    pending_tasks.append(row)
                    if last is not None and row[1] == last[0]:
                        last[1].append(row[0])
        with cur.copy("COPY hr_task_runs (" + ", ".join(TASK_COLS) + ") FROM STDIN") as task_copy:
            for row in pending_tasks:
                task_copy.write_row(row)
        assert last is not None
        changes, logs = details(*last, lines=5000)
        cur.executemany(_insert("hr_state_changes", CHANGE_COLS, "%s"), changes)
        cur.executemany(_insert("hr_logs", LOG_COLS, "%s"), logs)
    _summaries(url)
    return url, last[0]


# -- measuring ---------------------------------------------------------------------------------------------
@contextmanager
def serve(url: str) -> Iterator[tuple[str, int]]:
    """`headrace ui` on a free port, in a fresh process."""
    exe = Path(sys.executable).with_name("headrace")
    env = {**os.environ, "HEADRACE_STORE": url}
    env.pop("HEADRACE_UI_TOKEN", None)
    proc = subprocess.Popen([str(exe), "ui", "--port", "0"], env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
    try:
        while True:
            found = re.search(r"Web page on http://(127\.0\.0\.1):(\d+)", lines.get(timeout=120))
            if found:
                yield found.group(1), int(found.group(2))
                return
    finally:
        proc.terminate()
        proc.wait(20)


def _pump(stream: Any, into: queue.Queue[str]) -> None:
    for line in stream or ():
        into.put(line)


def timed(conn: http.client.HTTPConnection, path: str) -> tuple[float, float]:
    t0 = time.perf_counter()
    conn.request("GET", path, headers={"Accept": "text/html"})
    resp = conn.getresponse()
    first = time.perf_counter() - t0
    body = resp.read()
    if resp.status != 200 or not body:
        raise SystemExit(f"GET {path} answered {resp.status}: {body[:300]!r}")
    return first * 1000, (time.perf_counter() - t0) * 1000


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered))) - 1))]


def rounds(host: str, port: int, path: str, requests: int, n_rounds: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"ttfb_p50": [], "ttfb_p99": [], "full_p50": [], "full_p99": []}
    conn = http.client.HTTPConnection(host, port, timeout=30)
    for _ in range(3):
        timed(conn, path)  # warm: the first request of a process compiles templates, opens the pool
    for _ in range(n_rounds):
        samples = [timed(conn, path) for _ in range(requests)]
        first, full = [s[0] for s in samples], [s[1] for s in samples]
        out["ttfb_p50"].append(pct(first, 0.5))
        out["ttfb_p99"].append(pct(first, 0.99))
        out["full_p50"].append(pct(full, 0.5))
        out["full_p99"].append(pct(full, 0.99))
    conn.close()
    return out


def browser_loads(base: str, paths: list[str], requests: int) -> dict[str, tuple[float, float]] | None:
    chromium = shutil.which("chromium")
    if chromium is None:
        return None
    from playwright.sync_api import sync_playwright

    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run"]
    out = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=flags, headless=True)
        page = browser.new_page()
        for path in paths:
            loads = []
            for _ in range(2):
                page.goto(base + path)  # warm: the browser's first navigation starts its own processes
            for _ in range(requests):
                page.goto(base + path)
                timing = page.evaluate("JSON.stringify(performance.getEntriesByType('navigation')[0])")
                loads.append(json.loads(timing)["loadEventEnd"])
            out[path] = (pct(loads, 0.5), pct(loads, 0.99))
        browser.close()
    return out


def report(label: str, figures: dict[str, dict[str, list[float]]], base: dict[str, list[float]]) -> bool:
    ok_all = True
    print(f"\n{label}: ms, median of rounds [min-max]; baseline = the same server's static file")
    for name, vals in figures.items():
        for key in ("ttfb_p50", "ttfb_p99", "full_p50", "full_p99"):
            med = statistics.median(vals[key])
            line = (f"  {name:<9} {key:<9} {med:7.1f} [{min(vals[key]):.1f}-{max(vals[key]):.1f}]   "
                    f"baseline {statistics.median(base[key]):5.1f}")
            if key.endswith("p99"):
                ok = med < TARGET_MS
                ok_all &= ok
                line += f"   target < {TARGET_MS:.0f}: {'ok' if ok else 'MISS'}"
            print(line)
    return ok_all


def measure(label: str, url: str, run_id: str, args: argparse.Namespace) -> bool:
    with serve(url) as (host, port):
        base = rounds(host, port, "/static/app.css", args.requests, args.rounds)
        figures = {"runs page": rounds(host, port, "/runs", args.requests, args.rounds),
                   "run page": rounds(host, port, f"/runs/{run_id}", args.requests, args.rounds)}
        ok = report(label, figures, base)
        extra = {"filtered runs (state=FAILED)": "/runs?state=FAILED", "API /api/runs": "/api/runs"}
        for name, path in extra.items():
            vals = rounds(host, port, path, args.requests, 1)
            print(f"  {name}: full p99 {vals['full_p99'][0]:.1f} ms (informational)")
        if args.browser:
            loads = browser_loads(f"http://{host}:{port}", ["/runs", f"/runs/{run_id}"], args.requests)
            for path, (p50, p99) in (loads or {}).items():
                print(f"  Chromium load event of {path}: p50 {p50:.0f} ms, p99 {p99:.0f} ms (informational)")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--tasks-per-run", type=int, default=10)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--no-browser", dest="browser", action="store_false")
    args = parser.parse_args(argv)
    print(f"{args.runs:,} flow runs, {args.runs * args.tasks_per_run:,} task runs; "
          f"{args.requests} requests x {args.rounds} rounds per page")
    ok = True
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as folder:
            t0 = time.perf_counter()
            url, run_id = fill_sqlite(Path(folder) / "bench.db", args.runs, args.tasks_per_run)
            print(f"SQLite filled in {time.perf_counter() - t0:.0f} s")
            ok &= measure("SQLite", url, run_id, args)
    if args.backend in ("postgresql", "both"):
        with pg_database() as url:
            t0 = time.perf_counter()
            url, run_id = fill_postgres(url, args.runs, args.tasks_per_run)
            print(f"PostgreSQL filled in {time.perf_counter() - t0:.0f} s")
            ok &= measure("PostgreSQL", url, run_id, args)
    print("\nall targets ok" if ok else "\nsome targets MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
