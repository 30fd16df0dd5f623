"""What the code running inside a flow or task can ask about its run.

The engine sets these context variables; io, quality and lineage read them.
Outside a run every accessor returns ``None`` and recorders do nothing.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from headrace.store import utcnow

if TYPE_CHECKING:
    from headrace.store import RunStore


@dataclass
class FlowRunContext:
    """The flow run in progress."""

    flow_run_id: str
    flow_name: str
    parameters: dict[str, Any]
    store: RunStore
    task_runner: Any  # a headrace.engine.runners.TaskRunner (which itself builds on this module)
    now: Callable[[], datetime] = utcnow
    scheduled_time: datetime | None = None
    deployment_id: str | None = None
    # task key -> (result reference, run id) of a completed run of the flow run being retried
    reusable: dict[str, tuple[str, str]] = field(default_factory=dict)
    # task key -> value of a task completed in an earlier attempt of this flow run
    completed: dict[str, Any] = field(default_factory=dict)
    futures: list[Any] = field(default_factory=list)
    persist_result: bool | None = None
    limited_tags: frozenset[str] = frozenset()
    key_counts: dict[str, int] = field(default_factory=dict)
    cancel_event: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    rows_loaded: int = 0
    # What this run's loads are keys of: the work, not the attempt (see ``work_identity``).
    work_id: str = ""
    # headrace.lineage.model.DatasetIO of the flow's own reads and writes (outside tasks)
    lineage: list[Any] = field(default_factory=list)
    # observers of this run's starts and ends (headrace.run_observers); empty: none is called
    observers: tuple[Any, ...] = ()

    def next_task_key(self, task_name: str) -> str:
        """``name-N``: the N-th call of this task in this flow run (stable across retries)."""
        with self.lock:
            n = self.key_counts.get(task_name, 0)
            self.key_counts[task_name] = n + 1
        return f"{task_name}-{n}"


class AttemptFence:
    """One attempt of a task run: counts its loads, and refuses them once it is given up on.

    The engine abandons an attempt that ran past its timeout (its thread cannot be stopped);
    a load checks ``guard()`` around its commit, so an abandoned attempt never commits, and
    an attempt abandoned mid-commit is waited for (briefly) before the retry starts.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._abandoned = False
        self._loads = 0

    @property
    def abandoned(self) -> bool:
        return self._abandoned

    def next_ordinal(self) -> int:
        """0 for the attempt's first load, 1 for its second, ... (the same in every attempt)."""
        with self._lock:
            n = self._loads
            self._loads += 1
        return n

    def abandon(self, wait: float = 30.0) -> None:
        """Give up on the attempt; waits up to ``wait`` s for a commit in flight to end."""
        got = self._lock.acquire(timeout=wait)
        self._abandoned = True
        if got:
            self._lock.release()

    @contextmanager
    def guard(self, what: str) -> Iterator[None]:
        """Hold the attempt current while the block commits; raise if it was abandoned."""
        from headrace.errors import TaskRunError

        with self._lock:
            if self._abandoned:
                raise TaskRunError(f"{what}: refused, its task attempt was abandoned after a "
                                   "timeout; the retry does this load")
            yield


@dataclass
class TaskRunContext:
    """One attempt of a task run: a new context per attempt, never changed under the body."""

    task_run_id: str
    task_name: str
    task_key: str
    flow_run_id: str | None
    parameters: dict[str, Any]
    store: RunStore
    attempt: int = 1
    tags: tuple[str, ...] = ()
    task: Any = None
    work_id: str | None = None
    fence: AttemptFence = field(default_factory=AttemptFence)
    # Shared by the attempts of one task run: the load key's prefix, computed once.
    prefix_box: list[str] = field(default_factory=list)
    # headrace.lineage.model.DatasetIO of this attempt's reads and writes
    lineage: list[Any] = field(default_factory=list)
    # task name -> counter of the tasks this attempt's body has called (their keys, see ``child_key``)
    child_counts: dict[str, Any] = field(default_factory=dict)

    def child_key(self, task_name: str) -> str:
        """``parent key/name-N``: the N-th call of a task by this attempt's body.

        Counted per attempt, so a retried body names its calls as the first attempt did and
        their loads keep their keys (on every runner: threads, processes, Dask).
        """
        counter = self.child_counts.get(task_name)
        if counter is None:
            counter = self.child_counts.setdefault(task_name, itertools.count())
        return f"{self.task_key}/{task_name}-{next(counter)}"

    def load_prefix(self) -> str:
        """``work/task key/parameters hash``: what every load key of this task run starts with."""
        if not self.prefix_box:
            self.prefix_box.append(load_prefix(self.work_id or self.flow_run_id or self.task_run_id,
                                               self.task_key, self.parameters))
        return self.prefix_box[0]


def load_prefix(work_id: str, task_key: str, parameters: dict[str, Any]) -> str:
    from headrace.engine.hashing import stable_hash

    try:
        params = stable_hash(parameters)[:16]
    except Exception:  # unhashable parameters: the task key alone still names the load
        params = "-"
    return f"{work_id}/{task_key}/{params}"


def work_identity(store: RunStore, flow_run_id: str, *, retry_of: str | None = None,
                  deployment_id: str | None = None, scheduled_time: datetime | None = None,
                  parent: FlowRunContext | None = None, flow_name: str = "") -> str:
    """The work a flow run does, which names its loads: the same for every run that redoes it.

    ``headrace retry`` runs follow ``retry_of`` to the first run; a deployment's run is its
    deployment and scheduled slot (a backfill or a re-claimed run of the slot finds it again);
    a subflow is its parent's work plus its call; anything else is the flow run itself.
    """
    if parent is not None and parent.work_id:
        return f"{parent.work_id}/{parent.next_task_key('subflow:' + flow_name)}"
    seen = {flow_run_id}
    while retry_of and retry_of not in seen:
        seen.add(retry_of)
        row = store.get_flow_run(retry_of)
        flow_run_id, retry_of = row["id"], row.get("retry_of")
        deployment_id, scheduled_time = row.get("deployment_id"), row.get("expected_start")
    if deployment_id and scheduled_time is not None:
        slot = scheduled_time if scheduled_time.tzinfo else scheduled_time.replace(tzinfo=UTC)
        return f"deployment:{deployment_id}@{slot.astimezone(UTC).isoformat()}"
    return f"run:{flow_run_id}"


flow_run_var: ContextVar[FlowRunContext | None] = ContextVar("headrace_flow_run", default=None)
task_run_var: ContextVar[TaskRunContext | None] = ContextVar("headrace_task_run", default=None)


def current_flow_run() -> FlowRunContext | None:
    return flow_run_var.get()


def current_task_run() -> TaskRunContext | None:
    return task_run_var.get()


def get_run_context() -> TaskRunContext | FlowRunContext | None:
    """The innermost run: the task run if inside one, else the flow run, else ``None``."""
    return task_run_var.get() or flow_run_var.get()


# Outputs of these kinds are files or side datasets, not rows loaded into a warehouse.
_NOT_LOADS = frozenset({"file", "s3", "gcs", "abfs", "memory", "quarantine", "parquet", "csv", "ndjson"})


def record_dataset(direction: str, kind: str, uri: str, name: str, *,
                   rows: int | None = None, bytes_: int | None = None, details: str | None = None,
                   lineage: Any = None) -> None:
    """Record that the current run read (``input``) or wrote (``output``) a dataset.

    ``uri`` must already be free of secrets. Rows written to a database table
    count towards the flow run's rows loaded. ``details`` (JSON text) and ``lineage``
    (a ``headrace.lineage.DatasetIO``, appended to the run's ``lineage`` list) come from
    ``headrace.lineage``. Outside a run this does nothing.
    """
    if direction not in ("input", "output"):
        raise ValueError(f"direction must be 'input' or 'output', not {direction!r}")
    task = task_run_var.get()
    flow = flow_run_var.get()
    store = task.store if task else flow.store if flow else None
    if store is None:
        return
    if direction == "output" and rows and flow is not None and kind not in _NOT_LOADS:
        with flow.lock:
            flow.rows_loaded += int(rows)
    if lineage is not None:
        (task or flow).lineage.append(lineage)  # type: ignore[union-attr]
    store.writer.dataset_io({
        "flow_run_id": task.flow_run_id if task else flow.flow_run_id if flow else None,
        "task_run_id": task.task_run_id if task else None,
        "kind": kind, "uri": uri, "name": name, "direction": direction,
        "rows": rows, "bytes": bytes_, "at": utcnow(), "details": details})


_FRAME_MODULES = ("pandas", "polars", "pyarrow")


def record_declared(task: Any, direction: str, parameters: dict[str, Any] | None = None,
                    value: Any = None) -> None:
    """Lineage of a task attempt: its declared ``inputs`` as it starts; its declared ``outputs``
    and, for a frame returned from frames (a pandas transform), the schema in and out as it
    completes.

    The work is done by headrace.lineage, which the engine loads by name (it may not import the
    parts above it), and only for tasks that declare datasets or return a frame.
    """
    declared = getattr(task, "inputs" if direction == "input" else "outputs", ())
    frame = direction == "output" and type(value).__module__.startswith(_FRAME_MODULES)
    if declared or frame:
        from importlib import import_module

        lineage = import_module("headrace.lineage.record")
        if declared:
            lineage.record_declared(declared, direction)
        if frame:
            lineage.record_transform(task.name, parameters or {}, value)


def replay_lineage(ctx: TaskRunContext, earlier_flow_run_id: str | None, *, cache_key: str | None = None,
                   value: Any = None) -> None:
    """A task run whose result was reused from an earlier flow run, or read from the cache, did
    not read its inputs now: headrace.lineage records those of the run that did (without rows).
    Never fails the run."""
    token = task_run_var.set(ctx)
    try:
        from importlib import import_module

        import_module("headrace.lineage.record").replay_inputs(earlier_flow_run_id, ctx.task_key, cache_key,
                                                               value)
    except Exception as exc:  # lineage is a by-product; the reuse stands
        import logging

        logging.getLogger("headrace.lineage").debug("lineage: could not replay the reads of %s: %s",
                                                    ctx.task_key, exc)
    finally:
        task_run_var.reset(token)


def log_metric(name: str, value: float) -> None:
    """Record a named number on the current run (shown by the CLI and the web page)."""
    task = task_run_var.get()
    flow = flow_run_var.get()
    store = task.store if task else flow.store if flow else None
    if store is None:
        return
    store.writer.metric({
        "flow_run_id": task.flow_run_id if task else flow.flow_run_id if flow else None,
        "task_run_id": task.task_run_id if task else None,
        "name": name, "value": float(value), "at": utcnow()})
