"""What OpenLineage events cost a pipeline: per-task time and the demo's wall time, lineage off and on.

    .venv/bin/python bench/lineage.py                 # per-task A/B and the demo A/B, 5 rounds each
    .venv/bin/python bench/lineage.py --rounds 7 --skip-demo

Each round runs every mode in its own fresh process, in an order that rotates from round to
round: ``off`` (HEADRACE_OPENLINEAGE_URL unset), ``file`` (file:// transport) and ``http``
(POSTs to a local HTTP server that answers 200, run in its own process). Per-task time is the
engine benchmark's method (``bench/engine_overhead.py``: the flow of N no-op tasks minus a
plain-Python loop, best of 3 in the process, N = 2,000): wall is the flow call alone, CPU is
the process's CPU time (all threads) for the call plus delivering every event it emitted, the
whole work lineage adds, and the figure least disturbed by other load); the demo is ``demo/sales_etl.py``
(its wall time, the process included). Since the events are built and written by a sender
process, its CPU is reported too ("sender CPU", read from /proc, averaged over the 3 runs) and
added to the pipeline's ("CPU+sender", the machine's whole cost); in the demo, a file sender's
CPU is in the demo's own (the demo waits for it at exit), an HTTP sender's is not. Reported:
the median of the rounds with the min-max range, and the median of each round's on/off ratio;
target: lineage on adds under 5 %.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from functools import partial
from pathlib import Path
from typing import Any

import _ab

ROOT = Path(__file__).resolve().parent.parent
TARGET = 1.05
MODES = ("off", "file", "http")

SERVER = textwrap.dedent("""
    import sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()
""")


def mode_env(mode: str, work: Path, url: str) -> dict[str, str]:
    env = _ab.child_env(None)
    env["HEADRACE_HOME"] = str(work / f"home-{mode}")
    env.pop("HEADRACE_STORE", None)
    env.pop("HEADRACE_OPENLINEAGE_URL", None)
    if mode == "file":
        env["HEADRACE_OPENLINEAGE_URL"] = (work / "events.ndjson").as_uri()
    elif mode == "http":
        env["HEADRACE_OPENLINEAGE_URL"] = url
    return env


def timed(repeats: int, fn: Any, drain: Any) -> tuple[float, float]:
    """Least wall time of ``fn`` alone, and least CPU time (all threads) of ``fn`` plus delivering
    every event it emitted (``drain``): what the pipeline waits, and all the work lineage adds."""
    walls, cpus = [], []
    for _ in range(repeats):
        cpu, wall = time.process_time(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - wall)
        drain()
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def child(n: int) -> None:
    """In a fresh process: ms/task (wall and CPU) of a sequential and a submitted flow (best of 3), as JSON."""
    sys.path.insert(0, str(ROOT / "bench"))
    from engine_overhead import make_flows, plain_loop, plain_pool

    from headrace.lineage.openlineage import emitter_from_env

    sequential, submitted = make_flows()
    sequential(10)  # store opened, client imported: outside the timings
    emitter = emitter_from_env()
    if emitter is not None:
        from headrace.lineage import openlineage_facets  # noqa: F401  (the import thread's work, done)

        emitter.drain()
    drain = emitter.drain if emitter is not None else (lambda: True)
    pid = getattr(emitter.dispatcher, "sender_pid", None) if emitter is not None else None
    out = {}
    for kind, flow_fn, plain in (("sequential", sequential, plain_loop), ("submit", submitted, plain_pool)):
        base = timed(3, partial(plain, n), lambda: True)
        before = sender_cpu(pid)
        total = timed(3, partial(flow_fn, n), drain)
        out[f"{kind} wall"] = (total[0] - base[0]) / n * 1000
        out[f"{kind} CPU"] = (total[1] - base[1]) / n * 1000
        # the sender process's CPU (building and writing or POSTing the events), averaged over the 3 runs
        sender = (sender_cpu(pid) - before) / (3 * n) * 1000 if pid else 0.0
        if pid:
            out[f"{kind} sender CPU"] = sender
        out[f"{kind} CPU+sender"] = out[f"{kind} CPU"] + sender
    print(json.dumps(out))


def sender_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) the sender process has used so far (Linux /proc)."""
    if not pid:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(args: list[str], env: dict[str, str], timeout: float = 900) -> tuple[float, str, float]:
    """Run a fresh Python process: (wall seconds, its stdout, its CPU seconds, user + system)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=timeout)
    took = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return took, done.stdout, cpu


def report(title: str, unit: str, figures: dict[str, dict[str, list[float]]]) -> None:
    print(f"\n{title}; median (range) over the rounds; ratio: median of each round's mode/off")
    print(f"{'measure':<16} {'mode':<6} {'figure (' + unit + ')':>30} {'ratio (range)':>26}  target < {TARGET:.2f}")
    for kind, by_mode in figures.items():
        for mode in MODES:
            values = by_mode.get(mode)
            if not values:
                continue
            line = f"{kind:<16} {mode:<6} {_ab.summary(values):>30}"
            if mode != "off" and by_mode.get("off"):
                ratios = [a / b for a, b in zip(values, by_mode["off"], strict=True)]
                ok = "ok" if statistics.median(ratios) < TARGET else "MISS"
                line += f" {_ab.summary(ratios):>26}  {ok}"
            print(line)


def per_task(rounds: int, n: int, work: Path, url: str) -> None:
    figures: dict[str, dict[str, list[float]]] = {}
    for i in range(rounds):
        for mode in MODES[i % 3:] + MODES[:i % 3]:
            _, out, _ = run([__file__, "--child", str(n)], mode_env(mode, work, url))
            for kind, value in json.loads(out.strip().splitlines()[-1]).items():
                figures.setdefault(kind, {}).setdefault(mode, []).append(value)
    report(f"per-task time, N={n:,} no-op tasks, {rounds} rounds of fresh processes", "ms/task", figures)


def demo(rounds: int, work: Path, url: str) -> None:
    script = str(ROOT / "demo" / "sales_etl.py")
    run([script], mode_env("off", work, url))  # the source database is generated once, outside the timings
    figures: dict[str, dict[str, list[float]]] = {"demo wall": {}, "demo CPU": {}}
    for i in range(rounds):
        for mode in MODES[i % 3:] + MODES[:i % 3]:
            env = mode_env(mode, work, url)
            if mode == "off":
                env["HEADRACE_OPENLINEAGE_URL"] = ""  # the demo's default (a file) turned off
            took, _, cpu = run([script], env)
            figures["demo wall"].setdefault(mode, []).append(took)
            figures["demo CPU"].setdefault(mode, []).append(cpu)
    report(f"demo (python demo/sales_etl.py, a fresh process: wall, and CPU user+system), {rounds} rounds", "s",
           figures)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the cost of OpenLineage events")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=2_000)
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--skip-tasks", action="store_true", help="only the demo")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child)
        return 0
    work = Path(tempfile.mkdtemp(prefix="headrace-bench-lineage-"))
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        url = f"http://127.0.0.1:{server.stdout.readline().strip()}"
        print(f"OpenLineage cost: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
              f"HTTP endpoint {url} (a local server in its own process)")
        if not args.skip_tasks:
            per_task(args.rounds, args.tasks, work, url)
        if not args.skip_demo:
            demo(args.rounds, work, url)
        return 0  # a report: misses are printed, not raised
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
