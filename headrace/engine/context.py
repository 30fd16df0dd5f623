"""What the code running inside a flow or task can ask about its run.

The engine sets these context variables; io, quality and lineage read them.
Outside a run every accessor returns ``None`` and recorders do nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from headrace.store import utcnow

if TYPE_CHECKING:
    from headrace.engine.runners import TaskRunner
    from headrace.store import RunStore


@dataclass
class FlowRunContext:
    """The flow run in progress."""

    flow_run_id: str
    flow_name: str
    parameters: dict[str, Any]
    store: RunStore
    task_runner: TaskRunner
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

    def next_task_key(self, task_name: str) -> str:
        """``name-N``: the N-th call of this task in this flow run (stable across retries)."""
        with self.lock:
            n = self.key_counts.get(task_name, 0)
            self.key_counts[task_name] = n + 1
        return f"{task_name}-{n}"


@dataclass
class TaskRunContext:
    """The task run in progress (one attempt at a time)."""

    task_run_id: str
    task_name: str
    task_key: str
    flow_run_id: str | None
    parameters: dict[str, Any]
    store: RunStore
    attempt: int = 1
    tags: tuple[str, ...] = ()
    task: Any = None


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
                   rows: int | None = None, bytes_: int | None = None) -> None:
    """Record that the current run read (``input``) or wrote (``output``) a dataset.

    ``uri`` must already be free of secrets. Rows written to a database table
    count towards the flow run's rows loaded. Outside a run this does nothing.
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
    store.writer.dataset_io({
        "flow_run_id": task.flow_run_id if task else flow.flow_run_id if flow else None,
        "task_run_id": task.task_run_id if task else None,
        "kind": kind, "uri": uri, "name": name, "direction": direction,
        "rows": rows, "bytes": bytes_, "at": utcnow()})


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
