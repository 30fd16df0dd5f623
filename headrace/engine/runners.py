"""Task runners: where submitted task runs execute (threads or processes).

The orchestration of a task run (states, retries, records) always happens in
the flow's process; a runner decides where the task's body is called.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import inspect
import logging
import multiprocessing as mp
import os
import threading
import traceback
from collections.abc import Callable
from contextvars import copy_context
from typing import Any

from headrace.errors import RemoteTaskError, TaskTimeout

_CTX = mp.get_context("spawn")


def run_sync(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Call ``fn``; an ``async def`` body runs to completion on an event loop of this thread."""
    value = fn(*args, **kwargs)
    if inspect.isawaitable(value):
        return asyncio.run(_await(value))
    return value


async def _await(awaitable: Any) -> Any:
    return await awaitable


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


def _child_call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[bool, Any, list[Any]]:
    """Runs in the child process: call the body, collect its log lines, return plain data."""
    lines: list[Any] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append((record.created, record.levelno, record.name, record.getMessage()))

    root = logging.getLogger()
    handler = _Collect(logging.DEBUG)
    root.addHandler(handler)
    if root.level == logging.WARNING:
        root.setLevel(logging.INFO)
    try:
        return True, run_sync(fn, args, kwargs), lines
    except BaseException as exc:
        detail = "".join(traceback.format_exception(exc))
        return False, (type(exc).__module__, type(exc).__name__, str(exc), detail, _picklable(exc)), lines
    finally:
        root.removeHandler(handler)


def _picklable(exc: BaseException) -> BaseException | None:
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return None


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


def _child_main(conn: Any, ref: _FunctionRef, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    conn.send(_child_call(ref.resolve(), args, kwargs))
    conn.close()


class ProcessPoolTaskRunner(TaskRunner):
    """Runs task bodies in separate processes; a timed-out or cancelled body is terminated.

    Task functions and their arguments must be picklable (module-level functions).
    """

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__(max_workers or os.cpu_count() or 2)
        self._procs: cf.ProcessPoolExecutor | None = None
        self._dedicated: set[Any] = set()

    def duplicate(self) -> TaskRunner:
        return ProcessPoolTaskRunner(self.max_workers)

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
             timeout: float | None, cancel: threading.Event) -> Any:
        ok, payload, lines = self._run_dedicated(fn, args, kwargs, timeout, cancel)
        _replay_logs(lines)
        if ok:
            return payload
        module, name, message, detail, original = payload
        if original is not None:
            raise original
        raise RemoteTaskError(f"{name}: {message}\n{detail}")

    def _run_dedicated(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                       timeout: float | None, cancel: threading.Event) -> tuple[bool, Any, list[Any]]:
        parent, child = _CTX.Pipe(duplex=False)
        proc = _CTX.Process(target=_child_main, args=(child, _FunctionRef(fn), args, kwargs), daemon=True)
        proc.start()
        child.close()
        self._dedicated.add(proc)
        try:
            waited = 0.0
            while True:
                step = 0.05 if timeout is None else min(0.05, max(0.0, timeout - waited))
                if parent.poll(step):
                    return parent.recv()  # type: ignore[no-any-return]
                waited += step
                if cancel.is_set():
                    raise _Terminated("cancelled")
                if timeout is not None and waited >= timeout:
                    raise TaskTimeout(f"task body ran past its timeout of {timeout:g} s; its process was terminated")
                if not proc.is_alive() and not parent.poll():
                    raise RemoteTaskError(f"the task process died with exit code {proc.exitcode}")
        finally:
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
                if proc.is_alive():
                    proc.kill()
            proc.join()
            parent.close()
            self._dedicated.discard(proc)

    def shutdown(self, cancel: bool = False) -> None:
        super().shutdown(cancel)
        for proc in list(self._dedicated):
            if cancel and proc.is_alive():
                proc.terminate()


class _Terminated(Exception):
    pass


def _replay_logs(lines: list[Any]) -> None:
    for created, level, name, message in lines:
        record = logging.LogRecord(name, level, "", 0, message, None, None)
        record.created = created
        logging.getLogger(name).handle(record)
