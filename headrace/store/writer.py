"""Buffered writing of run records: batches between state boundaries, flushed on demand."""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from typing import Any, Protocol

from headrace.errors import StoreError
from headrace.state_types import TERMINAL_TYPES

log = logging.getLogger("headrace.store")

FLUSH_INTERVAL = 0.5      # seconds between background flushes
FLUSH_SIZE = 2000         # pending records that trigger a flush
HEARTBEAT_EVERY = 30.0    # seconds between heartbeats of active flow runs
RETRY_DELAYS = (0.1, 0.5, 2.0)

_TERMINAL = frozenset(TERMINAL_TYPES)
_WRITERS: weakref.WeakSet[BatchWriter] = weakref.WeakSet()


class BatchTarget(Protocol):
    """What the writer needs of a store (the store's runs part provides it)."""

    def write_batch(self, *, task_inserts: list[dict[str, Any]], task_updates: list[dict[str, Any]],
                    changes: list[dict[str, Any]], log_rows: list[dict[str, Any]],
                    metric_rows: list[dict[str, Any]], io_rows: list[dict[str, Any]],
                    flow_updates: list[dict[str, Any]]) -> None: ...

    def heartbeat(self, flow_run_ids: list[str], now: Any = None) -> None: ...

    def cancel_requested(self, flow_run_ids: list[str]) -> set[str]: ...


class BatchWriter:
    """Collects records in memory and writes them in one transaction per batch.

    Task runs are kept as whole rows: the first flush inserts a row, later
    flushes update it. ``flush()`` is called by the engine at every state
    boundary that must survive a crash (a flow run's start and end, a failure).
    """

    def __init__(self, store: BatchTarget) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._tasks: dict[str, dict[str, Any]] = {}
        self._inserted: set[str] = set()
        self._changes: list[dict[str, Any]] = []
        self._logs: list[dict[str, Any]] = []
        self._metrics: list[dict[str, Any]] = []
        self._io: list[dict[str, Any]] = []
        self._flow_updates: list[dict[str, Any]] = []
        self._pending = 0
        self.active_flow_runs: set[str] = set()
        self.cancelled: set[str] = set()
        # flow run id -> event the engine waits on; set when a cancel request is seen
        self.cancel_events: dict[str, threading.Event] = {}
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._since_beat = 0.0
        self._closed = False
        _WRITERS.add(self)

    # -- adding records (cheap: called on the hot path) -------------------------------
    def task_run(self, row: dict[str, Any]) -> None:
        with self._lock:
            self._tasks[row["id"]] = row
            self._bump()

    def state_change(self, row: dict[str, Any]) -> None:
        with self._lock:
            self._changes.append(row)
            self._bump()

    def log(self, row: dict[str, Any]) -> None:
        with self._lock:
            self._logs.append(row)
            self._bump()

    def metric(self, row: dict[str, Any]) -> None:
        with self._lock:
            self._metrics.append(row)
            self._bump()

    def dataset_io(self, row: dict[str, Any]) -> None:
        with self._lock:
            self._io.append(row)
            self._bump()

    def flow_update(self, row: dict[str, Any]) -> None:
        with self._lock:
            self._flow_updates.append(row)
            self._bump()

    def _bump(self) -> None:
        self._pending += 1
        if self._thread is None and not self._closed:
            self._start()
        if self._pending >= FLUSH_SIZE:
            self._wake.set()

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="headrace-writer", daemon=True)
        self._thread.start()

    # -- flushing -------------------------------------------------------------------------
    def flush(self) -> None:
        """Write every buffered record now."""
        with self._flush_lock:
            with self._lock:
                if not self._pending:
                    return
                tasks, self._tasks = self._tasks, {}
                batch = dict(changes=self._changes, log_rows=self._logs, metric_rows=self._metrics,
                             io_rows=self._io, flow_updates=self._flow_updates)
                self._changes, self._logs, self._metrics, self._io, self._flow_updates = [], [], [], [], []
                self._pending = 0
            inserts = [r for i, r in tasks.items() if i not in self._inserted]
            updates = [r for i, r in tasks.items() if i in self._inserted]
            try:
                self._write(inserts, updates, batch)
            except Exception:
                # Keep the records so the next flush tries again; nothing is dropped.
                with self._lock:
                    for row in inserts + updates:
                        self._tasks.setdefault(row["id"], row)
                    self._changes[:0] = batch["changes"]
                    self._logs[:0] = batch["log_rows"]
                    self._metrics[:0] = batch["metric_rows"]
                    self._io[:0] = batch["io_rows"]
                    self._flow_updates[:0] = batch["flow_updates"]
                    self._pending += len(tasks) + sum(len(v) for v in batch.values())
                raise
            # A task row in a terminal state is never written again: forget it.
            for row in inserts + updates:
                if row["state_type"] in _TERMINAL:
                    self._inserted.discard(row["id"])
                else:
                    self._inserted.add(row["id"])

    def _write(self, inserts: list[dict[str, Any]], updates: list[dict[str, Any]],
               batch: dict[str, list[dict[str, Any]]]) -> None:
        """One batch, retried a few times so a dropped connection or a restart loses nothing."""
        for delay in RETRY_DELAYS:
            try:
                self.store.write_batch(task_inserts=inserts, task_updates=updates, **batch)  # type: ignore[arg-type]
                return
            except StoreError as exc:
                log.warning("writing run records failed (%s); retrying in %.1f s", exc, delay)
                time.sleep(delay)
        self.store.write_batch(task_inserts=inserts, task_updates=updates, **batch)  # type: ignore[arg-type]

    def close(self) -> None:
        """Write what is buffered and stop the background thread."""
        self._closed = True
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(10)
        self.flush()

    def _loop(self) -> None:
        while not self._closed:
            self._wake.wait(FLUSH_INTERVAL)
            self._wake.clear()
            try:
                self.flush()
                self._since_beat += FLUSH_INTERVAL
                if self.active_flow_runs and self._since_beat >= HEARTBEAT_EVERY:
                    self._since_beat = 0.0
                    active = list(self.active_flow_runs)
                    self.store.heartbeat(active)
                    self.cancelled |= self.store.cancel_requested(active)
                elif self.active_flow_runs:
                    # Cancellation requests are polled more often than heartbeats.
                    self.cancelled |= self.store.cancel_requested(list(self.active_flow_runs))
                for run_id in self.cancelled:
                    event = self.cancel_events.get(run_id)
                    if event is not None:
                        event.set()
            except Exception as exc:  # the writer thread must survive a store hiccup
                log.warning("run store write failed, will retry: %s", exc)


@atexit.register
def _flush_all() -> None:
    for writer in list(_WRITERS):
        try:
            writer.flush()
        except Exception as exc:
            log.error("could not write the last run records: %s", exc)
