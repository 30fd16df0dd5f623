"""Task runners: where submitted task runs execute (threads or processes).

The orchestration of a task run (states, retries, records) always happens in
the flow's process; a runner decides where the task's body is called.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import math
import multiprocessing as mp
import os
import pickle
import threading
import time
from collections.abc import Callable
from contextvars import copy_context
from typing import Any

from headrace.engine.context import current_task_run
from headrace.engine.snapshot import (
    RemoteOutcome,
    RemoteTaskError,
    apply_outcome,
    run_sync,
    run_with_snapshot,
    take_snapshot,
)
from headrace.errors import TaskRunError, TaskTimeout

_CTX = mp.get_context("spawn")


class TaskRunner:
    """Runs submitted task runs on a thread pool; the body runs in the same thread."""

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = max_workers
        self._pool: cf.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def duplicate(self) -> TaskRunner:
        """A fresh runner with the same options, for one flow run."""
        return type(self)(self.max_workers)

    def submit(self, fn: Callable[[], Any]) -> cf.Future[Any]:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = cf.ThreadPoolExecutor(self.max_workers, thread_name_prefix="headrace-task")
        ctx = copy_context()
        return self._pool.submit(ctx.run, fn)

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
             timeout: float | None, cancel: threading.Event) -> Any:
        """Call a task body; with a timeout, in a helper thread that is abandoned when late."""
        if timeout is None:
            return run_sync(fn, args, kwargs)
        box: dict[str, Any] = {}
        ctx = copy_context()

        def target() -> None:
            try:
                box["value"] = ctx.run(run_sync, fn, args, kwargs)
            except BaseException as exc:  # handed to the caller below
                box["error"] = exc

        thread = threading.Thread(target=target, daemon=True, name="headrace-timeout")
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            attempt = current_task_run()
            if attempt is not None:
                attempt.fence.abandon()  # whatever the thread does from now on, it never loads
            raise TaskTimeout(f"task body ran past its timeout of {timeout:g} s")
        if "error" in box:
            raise box["error"]
        return box.get("value")

    def shutdown(self, cancel: bool = False) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=not cancel, cancel_futures=cancel)
            self._pool = None


ThreadPoolTaskRunner = TaskRunner
ConcurrentTaskRunner = TaskRunner  # the older peer's name


class SequentialTaskRunner(TaskRunner):
    """Runs submitted tasks one at a time, in submission order."""

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__(1)

    def duplicate(self) -> TaskRunner:
        return SequentialTaskRunner()


class _FunctionRef:
    """Pickles a task's function by module and name.

    ``@task`` replaces the module attribute with the Task, so pickling the plain
    function by reference would find the Task instead; the child unwraps it.
    """

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.module = getattr(fn, "__module__", None)
        self.qualname = getattr(fn, "__qualname__", "")
        self.fn = fn

    def __getstate__(self) -> dict[str, Any]:
        if self.module and "<locals>" not in self.qualname:
            return {"module": self.module, "qualname": self.qualname, "fn": None}
        return {"module": None, "qualname": self.qualname, "fn": self.fn}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def resolve(self) -> Callable[..., Any]:
        if self.fn is not None:
            return self.fn
        import importlib

        obj: Any = importlib.import_module(str(self.module))
        for part in self.qualname.split("."):
            obj = getattr(obj, part)
        return getattr(obj, "fn", obj)  # a Task -> its function


def _worker_main(conn: Any) -> None:
    """A task process: run bodies one after another until told to stop (``None``)."""
    # The flow's process stores and shows what bodies log here (apply_outcome); without a
    # handler of its own this process would also print their warnings (logging.lastResort).
    logging.getLogger().addHandler(logging.NullHandler())
    runner = TaskRunner()
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        ref, args, kwargs, snapshot = job
        try:
            fn = ref.resolve()  # imports the task's module: not part of the body's time
        except BaseException as exc:  # the function itself could not be found
            conn.send(RemoteOutcome(ok=False, error_text=f"{type(exc).__name__}: {exc}"))
            continue
        conn.send(_STARTED)
        outcome = run_with_snapshot(fn, args, kwargs, snapshot, runner)
        try:
            conn.send(outcome)
        except Exception as exc:  # the value (or error) does not pickle
            conn.send(RemoteOutcome(ok=False, calls=outcome.calls, log_lines=outcome.log_lines,
                                    rows_loaded=outcome.rows_loaded,
                                    error_text=f"the task's result cannot be sent back from its "
                                               f"process: {exc}"))


_STARTED = "started"
STARTUP_LIMIT = 120.0  # seconds for a fresh process to import the task's module


class _Process:
    """One task process and the pipe to it."""

    def __init__(self) -> None:
        self.conn, child = _CTX.Pipe(duplex=True)
        self.proc = _CTX.Process(target=_worker_main, args=(child,), daemon=True,
                                 name="headrace-task-process")
        self.proc.start()
        child.close()

    def stop(self, kill: bool) -> None:
        if not kill and self.proc.is_alive():
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.proc.join(2)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5)
            if self.proc.is_alive():
                self.proc.kill()
        self.proc.join()
        self.conn.close()


class ProcessPoolTaskRunner(TaskRunner):
    """Runs task bodies in up to ``max_workers`` processes, reused from task to task.

    The body runs with a snapshot of its run context, and what it records comes back to
    the flow's process (see ``headrace.engine.snapshot``). A timed-out or cancelled body is
    terminated with its process, and a fresh process takes its place. Task functions and
    their arguments must be picklable (module-level functions).
    """

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__(max_workers or os.cpu_count() or 2)
        self._slots = threading.BoundedSemaphore(self.max_workers or 2)
        self._idle: list[_Process] = []
        self._busy: set[_Process] = set()
        self._plock = threading.Lock()
        self._closed = False

    def duplicate(self) -> TaskRunner:
        return ProcessPoolTaskRunner(self.max_workers)

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
             timeout: float | None, cancel: threading.Event) -> Any:
        with self._slots:
            proc = self._take()
            healthy = False
            try:
                try:
                    proc.conn.send((_FunctionRef(fn), args, kwargs, take_snapshot(args, kwargs)))
                except (TypeError, AttributeError, ValueError, pickle.PicklingError) as exc:
                    healthy = proc.proc.is_alive()
                    raise TaskRunError(f"the arguments of {getattr(fn, '__name__', fn)!r} cannot "
                                       f"be sent to a task process: {exc}") from None
                outcome = self._wait(proc, timeout, cancel)
                healthy = True
            finally:
                self._give_back(proc, healthy)
        return apply_outcome(outcome)

    def _take(self) -> _Process:
        with self._plock:
            proc = self._idle.pop() if self._idle else None
        if proc is None or not proc.proc.is_alive():
            if proc is not None:
                proc.stop(kill=True)
            proc = _Process()
        with self._plock:
            self._busy.add(proc)
        return proc

    def _give_back(self, proc: _Process, healthy: bool) -> None:
        with self._plock:
            self._busy.discard(proc)
            keep = healthy and not self._closed
            if keep:
                self._idle.append(proc)
        if not keep:
            proc.stop(kill=True)
            with self._plock:
                if not self._closed:
                    self._idle.append(_Process())  # the replacement starts now, not at next use

    @staticmethod
    def _wait(proc: _Process, timeout: float | None, cancel: threading.Event) -> RemoteOutcome:
        """The body's outcome; its timeout counts from the moment the body starts."""
        started = False
        deadline = time.monotonic() + STARTUP_LIMIT
        while True:
            if proc.conn.poll(0.05):
                try:
                    message = proc.conn.recv()
                except (EOFError, OSError):
                    message = None  # the process died while sending
                if message == _STARTED:
                    started = True
                    deadline = time.monotonic() + (timeout if timeout is not None else math.inf)
                    continue
                if message is not None:
                    return message  # type: ignore[no-any-return]
            if cancel.is_set():
                raise _Terminated("cancelled")
            if time.monotonic() >= deadline:
                if started:
                    raise TaskTimeout(f"task body ran past its timeout of {timeout:g} s; its "
                                      "process was terminated")
                raise RemoteTaskError(f"the task process did not start the body within "
                                      f"{STARTUP_LIMIT:g} s")
            if not proc.proc.is_alive() and not proc.conn.poll():
                raise RemoteTaskError(f"the task process died with exit code {proc.proc.exitcode}")

    def shutdown(self, cancel: bool = False) -> None:
        super().shutdown(cancel)
        with self._plock:
            self._closed = True
            idle, self._idle = self._idle, []
            busy = list(self._busy) if cancel else []
        for proc in idle:
            proc.stop(kill=False)
        for proc in busy:
            proc.proc.terminate()


class _Terminated(Exception):
    pass


__all__ = ["ConcurrentTaskRunner", "ProcessPoolTaskRunner", "RemoteTaskError", "SequentialTaskRunner",
           "TaskRunner", "ThreadPoolTaskRunner", "run_sync"]

# For task runners outside the engine (headrace.spark's DaskTaskRunner): how a body's function
# travels by name, and the signal that ends a running attempt as Cancelled.
FunctionRef = _FunctionRef
Terminated = _Terminated
