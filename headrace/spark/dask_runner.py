"""Task bodies on a Dask cluster: ``@flow(task_runner=DaskTaskRunner())``.

As with every headrace runner, a task run's orchestration (states, retries, records) stays in
the flow's process; only the body runs on a Dask worker. It runs there under a snapshot of its
run context (``headrace.engine.snapshot``, the mechanism of ``ProcessPoolTaskRunner``), so its
load keys, dataset records, metrics, rows loaded and log lines come back and are recorded as if
it had run in a thread of the flow's process.

An attempt given up on (its timeout passed on the worker, or its flow run was cancelled) is
fenced where it runs: whatever its thread does afterwards never commits a load.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import pickle
import signal
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import CancelledError
from typing import Any

from headrace.engine.context import AttemptFence, current_task_run
from headrace.engine.runners import FunctionRef, TaskRunner, Terminated
from headrace.engine.snapshot import RemoteOutcome, apply_outcome, run_with_snapshot, take_snapshot
from headrace.errors import ConfigError, RemoteTaskError, TaskRunError, TaskTimeout

log = logging.getLogger("headrace.spark")

DASK_EXTRA = "pip install 'headrace[dask]'"
# A cluster the runner starts itself: on loopback only, no dashboard (several flow runs may each
# start one), and a worker death fails the attempt at once, so headrace's retries decide what
# happens next (Dask would otherwise re-run the body up to 3 times under the same attempt).
DEFAULT_CLUSTER: dict[str, Any] = {"processes": True, "host": "127.0.0.1", "dashboard_address": None}
CLOSE_LIMIT = 10.0  # seconds for the runner's own LocalCluster to close (1-6 s seen on a busy 2-core machine)
ABANDON_LIMIT = 40.0  # seconds to fence a given-up attempt on the workers (a commit in flight ends first)
POLL = 0.1  # how often a waiting task run looks at its flow run's cancel event


def require_distributed() -> Any:
    """The ``distributed`` module, or a ConfigError naming the extra to install."""
    try:
        import distributed
    except ImportError:
        raise ConfigError("DaskTaskRunner needs dask.distributed, which is not installed: "
                          f"{DASK_EXTRA}") from None
    return distributed


class DaskTaskRunner(TaskRunner):
    """Runs task bodies on a dask.distributed cluster.

    ``address=None`` starts a ``LocalCluster`` (``cluster_kwargs`` passed to it) when the flow
    run submits its first task and closes it when the run ends; ``address="tcp://host:8786"``
    uses a running scheduler. ``client_kwargs`` go to ``distributed.Client``. ``max_workers``
    bounds the task runs orchestrated at once in the flow's process (default: twice the
    cluster's threads, at least 16). Workers import the task's module (or receive a function
    defined in a script by value), like any Dask function.
    """

    def __init__(self, address: str | None = None, cluster_kwargs: dict[str, Any] | None = None,
                 client_kwargs: dict[str, Any] | None = None, max_workers: int | None = None) -> None:
        require_distributed()
        if address is not None and cluster_kwargs:
            raise ConfigError("DaskTaskRunner: cluster_kwargs apply to the LocalCluster it starts; with "
                              "address= the cluster exists already, so leave them out")
        super().__init__(max_workers)
        self.address = address
        self.cluster_kwargs = dict(cluster_kwargs or {})
        self.client_kwargs = dict(client_kwargs or {})
        self._client: Any = None
        self._cluster: Any = None
        self._connect_lock = threading.Lock()
        self._running: set[str] = set()
        # Cancel events of the flow-run attempts served so far, and of those the runner was shut
        # down for: a body still retrying for a finished attempt must not start a new cluster.
        self._events: weakref.WeakSet[threading.Event] = weakref.WeakSet()
        self._retired: weakref.WeakSet[threading.Event] = weakref.WeakSet()

    def duplicate(self) -> TaskRunner:
        return DaskTaskRunner(self.address, self.cluster_kwargs, self.client_kwargs, self.max_workers)

    def __repr__(self) -> str:
        return f"DaskTaskRunner(address={self.address!r})"

    # -- the cluster ---------------------------------------------------------------------------
    def _connect(self) -> Any:
        if self._client is not None:
            return self._client
        with self._connect_lock:
            if self._client is None:
                self._client = _outside_runs(self._start)
        return self._client

    def _start(self) -> Any:
        distributed = require_distributed()
        target: Any = self.address or self._cluster  # a cluster whose client failed is reused
        if target is None:
            kwargs = {**DEFAULT_CLUSTER, **self.cluster_kwargs}
            own: dict[str, Any] = {"allowed_failures": 0}
            if kwargs["dashboard_address"] is None:  # its HTTP endpoints (health, metrics) on a free port
                own["dashboard_address"] = "127.0.0.1:0"
            kwargs["scheduler_kwargs"] = {**own, **kwargs.get("scheduler_kwargs", {})}
            _silence(kwargs.get("silence_logs", logging.WARNING))
            try:
                self._cluster = target = distributed.LocalCluster(**kwargs)
            except Exception as exc:
                raise TaskRunError(f"DaskTaskRunner could not start its LocalCluster: {type(exc).__name__}: "
                                   f"{exc}") from exc
        try:
            return distributed.Client(target, set_as_default=False, **self.client_kwargs)
        except Exception as exc:
            where = self.address or "its LocalCluster"
            raise TaskRunError(f"DaskTaskRunner cannot reach the Dask scheduler at {where}: "
                               f"{type(exc).__name__}: {exc}") from exc

    def submit(self, fn: Callable[[], Any]) -> Any:
        if self._pool is None and self.max_workers is None:
            try:
                threads = sum(_outside_runs(self._connect().nthreads).values())
            except TaskRunError:  # each task run reports it (its call connects again)
                threads = 0
            self.max_workers = max(16, 2 * threads)
        return super().submit(fn)

    # -- one body ------------------------------------------------------------------------------
    def call(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
             timeout: float | None, cancel: threading.Event) -> Any:
        import cloudpickle

        if cancel in self._retired:
            raise Terminated("its flow run's attempt has ended")
        self._events.add(cancel)
        client = self._connect()
        snapshot = take_snapshot()
        name = snapshot.task_name if snapshot else getattr(fn, "__name__", "task")
        try:
            payload = cloudpickle.dumps((_DaskFunctionRef(fn), args, kwargs, snapshot), protocol=5)
        except Exception as exc:
            raise TaskRunError(f"the arguments of task {name!r} cannot be sent to a Dask worker: "
                               f"{type(exc).__name__}: {exc}") from None
        attempt = f"headrace-{name}-{snapshot.attempt if snapshot else 1}-{uuid.uuid4().hex[:12]}"
        with self._connect_lock:
            self._running.add(attempt)
        try:
            future = _outside_runs(client.submit, run_on_worker, payload, timeout, attempt, key=attempt,
                                   pure=False)
            packed = self._wait(future, attempt, name, cancel)
        finally:
            with self._connect_lock:
                self._running.discard(attempt)
        try:
            outcome = pickle.loads(packed)
        except Exception as exc:
            raise RemoteTaskError(f"the result of task {name!r} came back from its Dask worker but cannot "
                                  f"be read here: {type(exc).__name__}: {exc}") from None
        return apply_outcome(outcome)

    def _wait(self, future: Any, attempt: str, name: str, cancel: threading.Event) -> bytes:
        from distributed import KilledWorker

        done = threading.Event()
        future.add_done_callback(lambda _f: done.set())
        while not done.wait(POLL):
            if cancel.is_set():
                self._give_up(self._client, [attempt])
                _outside_runs(future.cancel)
                raise Terminated("cancelled")
        try:
            return _outside_runs(future.result)  # type: ignore[no-any-return]
        except KilledWorker as exc:
            raise RemoteTaskError(f"the Dask worker running task {name!r} died (killed or out of memory): "
                                  f"{exc}") from None
        except CancelledError:
            if cancel.is_set():
                raise Terminated("cancelled") from None
            raise RemoteTaskError(f"the Dask cluster dropped task {name!r} (its scheduler or the connection "
                                  "to it was lost)") from None
        except Exception as exc:
            raise RemoteTaskError(f"task {name!r} failed on Dask outside its body: {type(exc).__name__}: "
                                  f"{exc}") from None

    @staticmethod
    def _give_up(client: Any, attempts: list[str]) -> None:
        """Fence these attempts on every worker; once this returns, none of them commits a load."""
        if client is None or not attempts:
            return
        try:
            _outside_runs(client.run, abandon_on_worker, attempts, on_error="ignore",
                          callback_timeout=ABANDON_LIMIT)
        except Exception as exc:
            log.warning("could not fence %d given-up task attempt(s) on the Dask workers: %s",
                        len(attempts), exc)

    def shutdown(self, cancel: bool = False) -> None:
        super().shutdown(cancel)
        with self._connect_lock:
            self._retired.update(self._events)
            self._events = weakref.WeakSet()
            running = list(self._running)
            client, cluster = self._client, self._cluster
            self._client = self._cluster = None
        if client is not None and cancel and cluster is None:
            self._give_up(client, running)  # on a cluster that stays up, the bodies keep running
        if client is not None:
            _outside_runs(client.close)
        if cluster is not None:
            _close_cluster(cluster)


def _close_cluster(cluster: Any) -> None:
    """Close the runner's LocalCluster. Dask's close can hang when a nanny is still restarting a
    worker that was killed; then the worker processes are killed, so no flow run waits for ever."""
    try:
        _outside_runs(cluster.close, timeout=CLOSE_LIMIT)
        return
    except Exception as exc:
        log.warning("the Dask LocalCluster did not close within %g s (%s); killing its worker processes",
                    CLOSE_LIMIT, type(exc).__name__)
    killed: set[int] = set()
    for _ in range(5):  # a nanny may be starting a replacement as we go
        for nanny in list(getattr(cluster, "workers", {}).values()):
            pid = getattr(nanny, "pid", None)
            if pid and pid not in killed:
                killed.add(pid)
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        time.sleep(0.2)


def _silence(level: int | bool) -> None:
    """What LocalCluster's ``silence_logs`` promises (its lifecycle lines below WARNING not shown),
    also for handlers of this process (the CLI's), which Dask's own setting does not reach."""
    if level:
        cluster_log = logging.getLogger("distributed")
        if cluster_log.getEffectiveLevel() < int(level):
            cluster_log.setLevel(int(level))


def _outside_runs(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call into the Dask client from an empty context: its event loop runs what we hand it in a copy
    of the caller's context, and the cluster's own log lines are not lines of the task run."""
    return contextvars.Context().run(fn, *args, **kwargs)


class _DaskFunctionRef(FunctionRef):
    """A task's function by module and name (workers import it), or by value (cloudpickle) when it
    lives in a script run as ``__main__`` or in a module registered with
    ``cloudpickle.register_pickle_by_value`` (for workers that do not have it installed)."""

    def __getstate__(self) -> dict[str, Any]:
        import cloudpickle

        if self.module == "__main__" or self.module in cloudpickle.list_registry_pickle_by_value():
            return {"module": None, "qualname": self.qualname, "fn": self.fn}
        return super().__getstate__()


# -- on the worker ------------------------------------------------------------------------------
_registry_lock = threading.Lock()
_fences: dict[str, AttemptFence] = {}
_given_up: OrderedDict[str, None] = OrderedDict()  # attempts fenced before their body started
_GIVEN_UP_KEPT = 10_000
_local: dict[str, Any] = {}


def _thread_runner() -> TaskRunner:
    """Serves the tasks a body submits (in threads of this worker), as in a task process."""
    runner = _local.get("runner")
    if runner is None:
        # This process's logging must not print what bodies log: the flow's process stores and
        # shows it (without a handler, logging's last resort would print warnings here too).
        logging.getLogger().addHandler(logging.NullHandler())
        runner = _local.setdefault("runner", TaskRunner())
    return runner  # type: ignore[no-any-return]


def _take_fence(attempt: str) -> AttemptFence | None:
    """The running attempt's fence, or ``None`` after marking the attempt fenced before it starts."""
    with _registry_lock:
        fence = _fences.get(attempt)
        if fence is None:
            _given_up[attempt] = None
            while len(_given_up) > _GIVEN_UP_KEPT:
                _given_up.popitem(last=False)
        return fence


async def abandon_on_worker(attempts: list[str]) -> int:
    """Give up on these attempts here (run by ``Client.run``); returns how many were running."""
    running = 0
    for attempt in attempts:
        fence = _take_fence(attempt)
        if fence is not None:
            running += 1
            await asyncio.to_thread(fence.abandon)  # waits for a commit in flight, off the event loop
    return running


def _fenced(fn: Callable[..., Any], attempt: str) -> Callable[..., Any]:
    """``fn``, registering its attempt's fence first (refused if the attempt was given up on)."""

    def body(*args: Any, **kwargs: Any) -> Any:
        task = current_task_run()
        with _registry_lock:
            if attempt in _given_up:
                raise TaskRunError("the attempt was given up on before its body started")
            if task is not None:
                _fences[attempt] = task.fence
        return fn(*args, **kwargs)

    return body


def run_on_worker(payload: bytes, timeout: float | None, attempt: str) -> bytes:
    """A Dask task: one body under its run snapshot; returns the pickled ``RemoteOutcome``."""
    runner = _thread_runner()
    name = "task"
    try:
        ref, args, kwargs, snapshot = pickle.loads(payload)
        name = snapshot.task_name if snapshot is not None else getattr(ref, "qualname", name)
        fn = ref.resolve()
    except BaseException as exc:  # the function or its arguments cannot be loaded here
        return _pack(RemoteOutcome(ok=False, error_text=f"task {name!r} cannot be loaded on its Dask worker "
                                                        f"(install its module there): {type(exc).__name__}: {exc}"),
                     name)
    body = _fenced(fn, attempt)
    try:
        if timeout is None:
            outcome = run_with_snapshot(body, args, kwargs, snapshot, runner)
        else:
            outcome = _within(timeout, body, args, kwargs, snapshot, runner, attempt)
    finally:
        with _registry_lock:
            _fences.pop(attempt, None)
    return _pack(outcome, name)


def _within(timeout: float, body: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
            snapshot: Any, runner: TaskRunner, attempt: str) -> RemoteOutcome:
    """The body in a helper thread; past ``timeout`` the thread is given up on and fenced."""
    box: dict[str, RemoteOutcome] = {}

    def target() -> None:
        box["outcome"] = run_with_snapshot(body, args, kwargs, snapshot, runner)

    thread = threading.Thread(target=target, daemon=True, name=f"headrace-body-{attempt}")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        fence = _take_fence(attempt)
        if fence is not None:
            fence.abandon()  # whatever the thread does from now on, it never loads
        return RemoteOutcome(ok=False, error=TaskTimeout(
            f"task body ran past its timeout of {timeout:g} s on its Dask worker; its thread there was "
            "given up on and can no longer load"))
    return box["outcome"]


def _pack(outcome: RemoteOutcome, name: str) -> bytes:
    """The outcome as bytes; a value that does not pickle becomes an error naming the task."""
    import cloudpickle

    try:
        return cloudpickle.dumps(outcome, protocol=5)  # type: ignore[no-any-return]
    except Exception as exc:
        text = (f"the result of task {name!r} cannot be sent back from its Dask worker: it does not pickle "
                f"({type(exc).__name__}: {exc}); return a picklable value, or write the data to a table "
                "or file and return its name")
    records = RemoteOutcome(ok=False, calls=outcome.calls, rows_loaded=outcome.rows_loaded,
                            log_lines=outcome.log_lines, error_text=text)
    try:
        return cloudpickle.dumps(records, protocol=5)  # type: ignore[no-any-return]
    except Exception:
        return cloudpickle.dumps(RemoteOutcome(ok=False, error_text=text), protocol=5)  # type: ignore[no-any-return]


__all__ = ["DaskTaskRunner", "require_distributed"]
