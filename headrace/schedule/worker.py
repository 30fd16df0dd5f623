"""Workers: claim due scheduled runs atomically and run them with the engine.

``Worker.claim(now)`` takes runs (never twice, whatever the number of workers
and machines sharing the store); ``Worker.execute(run)`` runs one and sends the
deployment's alerts; ``Worker.serve`` is the loop that sleeps until the next
run is due and then claims and starts as many runs as it has free slots in one
store transaction (a burst of due runs is started in batches). A run whose
flow no longer imports fails with the import error and the worker carries on.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headrace.schedule.alerts import AlertEvent, first_line
from headrace.schedule.deployment import stored_alerts
from headrace.schedule.scheduler import parameters_of
from headrace.secrets import redact
from headrace.state_types import UNFINISHED_TYPES, StateType
from headrace.store.base import utcnow
from headrace.store.summaries import rerun_plan

if TYPE_CHECKING:
    from headrace.store import RunStore

log = logging.getLogger("headrace.schedule")

_load_lock = threading.Lock()
_loaded: dict[str, tuple[float, Any]] = {}


def load_entrypoint(entrypoint: str) -> Any:
    """The flow at ``entrypoint``, re-imported when its file changed since the last load."""
    from headrace.engine import load_flow

    where = entrypoint.rpartition(":")[0]
    with _load_lock:
        mtime = _mtime(where) if where.endswith(".py") else 0.0
        cached = _loaded.get(entrypoint)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        if where.endswith(".py"):
            # First load here, or the file changed: import it afresh, not a stale copy.
            sys.modules.pop(Path(where).stem, None)
        flow = load_flow(entrypoint)
        _loaded[entrypoint] = (mtime, flow)
        return flow


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def sleep_seconds(next_start: datetime | None, now: datetime, poll: timedelta) -> float:
    """How long an idle worker waits: until the next run is due, at most ``poll``."""
    wake = now + poll if next_start is None else min(next_start, now + poll)
    return max(0.0, (wake - now).total_seconds())


class Worker:
    """Runs due scheduled runs, up to ``concurrency`` at a time in this process."""

    def __init__(
        self,
        store: RunStore | None = None,
        *,
        name: str | None = None,
        concurrency: int = 4,
        poll: timedelta = timedelta(seconds=2),
    ) -> None:
        from headrace.store import get_store

        self.store = store or get_store()
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{id(self) % 10000}"
        self.concurrency = concurrency
        self.poll = poll
        self.wakeup = threading.Event()
        self._active: set[Future[Any]] = set()
        self._lock = threading.Lock()

    def claim(self, now: datetime, limit: int | None = None, run_ids: list[str] | None = None) -> list[dict[str, Any]]:
        """Take up to ``limit`` runs due at ``now`` (oldest slot first) for this worker (Pending)."""
        return self.store.claim_runs(now, self.name, self.concurrency if limit is None else limit, run_ids=run_ids)

    def start(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        """Claim up to ``limit`` due runs and record them Running at ``now``, in one transaction:
        for runs this worker executes right away (``execute`` takes them over)."""
        return self.store.claim_runs(now, self.name, limit, start=True)

    def execute(self, run: dict[str, Any]) -> str:
        """Run one claimed run to its end; return its final state name. Never raises."""
        from headrace.engine import run_flow

        try:
            flow = load_entrypoint(run["entrypoint"])
        except Exception as exc:  # noqa: BLE001 - the run fails, the worker goes on
            msg = redact(f"cannot load flow {run['entrypoint']}: {first_line(exc)}")
            log.error("run %s: %s", run["name"], msg)
            self.store.transition_runs([run["id"]], StateType.FAILED, "Failed", msg, only_from=UNFINISHED_TYPES)
            self._alert(run, "failure", "Failed", msg)
            return "Failed"
        try:
            state = run_flow(
                flow,
                parameters_of(run),
                flow_run_id=run["id"],
                scheduled_time=run["expected_start"],
                deployment_id=run["deployment_id"],
                retry_of=run.get("retry_of"),  # a re-run asked for by the web page
                rerun_tasks=rerun_plan(self.store, run["id"]) if run.get("retry_of") else None,
                started_at=run["started_at"] if run["state_type"] == StateType.RUNNING else None,
            )
        except Exception as exc:  # noqa: BLE001 - e.g. the run was cancelled before it started
            log.error("run %s could not start: %s", run["name"], first_line(exc))
            self.store.transition_runs(
                [run["id"]], StateType.FAILED, "Failed", redact(first_line(exc) or ""),
                only_from=(StateType.PENDING, StateType.RUNNING),
            )
            return "Failed"
        kind = "success" if state.is_completed() else "failure"
        error = state.message or (first_line(state.error) if state.error is not None else None)
        self._alert(run, kind, state.name, redact(error or ""))
        return str(state.name)

    def _alert(self, run: dict[str, Any], kind: str, state: str, error: str | None) -> None:
        """Send the deployment's alerts for this outcome, once per run whatever the workers."""
        try:
            alerts = stored_alerts(run, kind)  # the claim brought the deployment's alerts along
            if not alerts or not self.store.mark_alerted(run["id"], kind):
                return
            rows = self.store.get_flow_run(run["id"]).get("rows_loaded")
        except Exception as exc:  # noqa: BLE001 - alerts never change a run's outcome
            log.warning("run %s: cannot prepare alerts: %s", run["name"], first_line(exc))
            return
        event = AlertEvent(
            kind=kind,
            flow_name=run["flow_name"],
            run_id=run["id"],
            run_name=run["name"],
            state=state,
            rows_loaded=rows,
            error=first_line(error) if kind == "failure" else None,
            scheduled_time=run["expected_start"],
            deployment=run.get("deployment_name"),
        )
        for alert in alerts:
            alert.notify(event)

    def run_due(self, now: datetime, limit: int | None = None) -> list[str]:
        """Claim what is due at ``now`` and run it here, one after another (tests, one-shot use)."""
        return [self.execute(run) for run in self.claim(now, limit)]

    # -- the loop ------------------------------------------------------------------------------
    def serve(self, stop: threading.Event, clock: Callable[[], datetime] = utcnow) -> None:
        """Claim and run until ``stop`` is set; wakes when the next run is due."""
        log.info("worker %s started (%s at a time) on %s", self.name, self.concurrency, self.store.safe_url)
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="headrace-worker") as pool:
            while not stop.is_set():
                try:
                    delay = self._step(pool, clock)
                except Exception:  # noqa: BLE001 - keep serving; the store may come back
                    log.exception("worker %s: claiming failed", self.name)
                    delay = self.poll.total_seconds()
                if delay > 0:
                    self.wakeup.wait(delay)
                self.wakeup.clear()
            log.info("worker %s stopping; waiting for %s run(s)", self.name, len(self._active))

    def _free(self) -> int:
        # Only runs that start at once are taken: a run is Running from the moment its body can
        # run, and the runs this worker cannot start yet stay Scheduled for other workers.
        with self._lock:
            return self.concurrency - len(self._active)

    def _step(self, pool: ThreadPoolExecutor, clock: Callable[[], datetime]) -> float:
        """Claim what fits; return how long to wait before looking again."""
        claimed = self._fill(pool, clock())
        if self._free() == 0:
            return self.poll.total_seconds()  # a finishing run sets `wakeup`
        next_start, now = self.store.next_scheduled_start(), clock()
        if claimed == 0 and next_start is not None and next_start <= now:
            # Due runs we may not take (deployment limits): look again soon, without spinning.
            return min(0.5, self.poll.total_seconds())
        return sleep_seconds(next_start, now, self.poll)

    def _fill(self, pool: ThreadPoolExecutor, now: datetime) -> int:
        free = self._free()
        if free <= 0:
            return 0
        runs = self.start(now, free)
        for run in runs:
            future = pool.submit(self.execute, run)
            with self._lock:
                self._active.add(future)
            future.add_done_callback(self._done)
        return len(runs)

    def _done(self, future: Future[Any]) -> None:
        with self._lock:
            self._active.discard(future)
        self.wakeup.set()
