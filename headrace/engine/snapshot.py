"""A task body run elsewhere (a child process, later a Dask worker) with its run context.

The parent takes a picklable ``RunSnapshot`` of the attempt; ``run_with_snapshot`` runs the
body under that context wherever it is called and returns a ``RemoteOutcome``: the body's
value or error plus everything the body recorded (datasets, metrics, nested task runs, rows
loaded, log lines). ``apply_outcome`` replays those records in the parent, so the store ends
up exactly as if the body had run in a thread of the flow's process, with the same load keys.
"""

from __future__ import annotations

import asyncio
import inspect
import pickle
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from headrace.engine.context import (
    FlowRunContext,
    TaskRunContext,
    current_flow_run,
    current_task_run,
    flow_run_var,
    task_run_var,
)
from headrace.engine.logs import LogLevels, install_capture, levels_of, log_levels, replay_line
from headrace.errors import RemoteTaskError


@dataclass(frozen=True)
class RunSnapshot:
    """What a task body may ask about its run, as plain data."""

    task_run_id: str
    task_name: str
    task_key: str
    flow_run_id: str | None
    attempt: int
    tags: tuple[str, ...]
    load_prefix: str
    parameters: dict[str, Any]
    flow_name: str | None = None
    flow_parameters: dict[str, Any] = field(default_factory=dict)
    scheduled_time: datetime | None = None
    deployment_id: str | None = None
    work_id: str = ""
    log_levels: LogLevels = field(default_factory=LogLevels)
    # The flow's run store (a URL with its password, never shown): what the body reads there is
    # read from it, wherever the body runs (a Dask worker may have another HEADRACE_STORE).
    store_url: str = field(default="", repr=False)
    # argument position or name -> headrace.lineage.frames.Origin of a frame argument
    arg_origins: dict[int | str, Any] = field(default_factory=dict)


def run_sync(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Call ``fn``; an ``async def`` body runs to completion on an event loop of this thread."""
    value = fn(*args, **kwargs)
    if inspect.isawaitable(value):
        return asyncio.run(_await(value))
    return value


async def _await(awaitable: Any) -> Any:
    return await awaitable


def take_snapshot(args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> RunSnapshot | None:
    """The current attempt as a snapshot (``None`` outside a task run), with the lineage origins of
    the frames among ``args``/``kwargs`` (a pickled frame arrives without them)."""
    task = current_task_run()
    if task is None:
        return None
    flow = current_flow_run()
    return RunSnapshot(
        task_run_id=task.task_run_id, task_name=task.task_name, task_key=task.task_key,
        flow_run_id=task.flow_run_id, attempt=task.attempt, tags=tuple(task.tags),
        load_prefix=task.load_prefix(), parameters=task.parameters,
        flow_name=flow.flow_name if flow else None,
        flow_parameters=_picklable_or_empty(flow.parameters) if flow else {},
        scheduled_time=flow.scheduled_time if flow else None,
        deployment_id=flow.deployment_id if flow else None,
        work_id=flow.work_id if flow else "", log_levels=log_levels(),
        store_url=str(getattr(task.store, "url", "") or ""), arg_origins=_origins(args, kwargs or {}))


def _origins(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[int | str, Any]:
    frames = sys.modules.get("headrace.lineage.frames")   # no origins exist before lineage is loaded
    if frames is None:
        return {}
    found: dict[int | str, Any] = {}
    pairs: list[tuple[int | str, Any]] = [*enumerate(args), *kwargs.items()]
    for key, value in pairs:
        origin = frames.origin_of(value)
        if origin is not None:
            found[key] = origin
    return found


def _picklable_or_empty(value: dict[str, Any]) -> dict[str, Any]:
    try:
        pickle.dumps(value)
        return value
    except Exception:  # an unpicklable flow parameter is not worth failing the task for
        return {}


class RecordingWriter:
    """Stands in for the store's writer where the body runs: keeps every record in order.

    Log lines (already redacted by ``headrace.engine.logs``) are kept apart: the parent
    replays them through its own logging (``replay_line``).
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.lines: list[tuple[float, int, str, str]] = []
        self.cancelled: set[str] = set()
        self.active_flow_runs: set[str] = set()
        self.cancel_events: dict[str, Any] = {}

    def flush(self) -> None:
        """Records reach the store when the parent replays them."""

    def log(self, row: dict[str, Any]) -> None:
        """Keep a run's log line for the parent to replay."""
        self.lines.append((row["at"].timestamp(), row["level"], row["logger"], row["message"]))

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name.startswith("_"):
            raise AttributeError(name)

        def keep(*args: Any) -> None:
            self.calls.append((name, args))

        return keep


# Store methods a body calls that write records (quality gates): kept and replayed like the writer's.
RECORDED_WRITES = frozenset({"save_quality_results", "save_quality_profile"})
STORE_CALL = "store."  # prefix of a kept store method call in ``RemoteOutcome.calls``


class RecordingStore:
    """The run store where the body runs: records go to ``writer``; reads go to the flow's store."""

    def __init__(self, url: str = "") -> None:
        self.writer = RecordingWriter()
        self.url = url
        self._real: Any = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in RECORDED_WRITES:
            def keep(**kwargs: Any) -> None:
                self.writer.calls.append((STORE_CALL + name, (kwargs,)))

            return keep
        if self._real is None:
            from headrace.store import get_store

            self._real = get_store(self.url or None)
        return getattr(self._real, name)


@dataclass
class RemoteOutcome:
    """What a body run elsewhere sends back: its value or error, and its records."""

    ok: bool
    value: Any = None
    error: BaseException | None = None
    error_text: str = ""
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    rows_loaded: int = 0
    log_lines: list[tuple[float, int, str, str]] = field(default_factory=list)
    # the task context's ``lineage`` (headrace.lineage.DatasetIO), already stored through ``calls``
    lineage: list[Any] = field(default_factory=list)
    # where the returned frame came from (headrace.lineage.frames.Origin), if lineage knows
    value_origin: Any = None


def run_with_snapshot(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                      snapshot: RunSnapshot | None, task_runner: Any) -> RemoteOutcome:
    """Call ``fn`` under ``snapshot``'s run context; return its value or error and its records.

    ``task_runner`` serves the tasks the body submits (a thread ``TaskRunner`` there). The
    outcome is always picklable: an error that does not pickle travels as text.
    """
    store = RecordingStore(snapshot.store_url if snapshot is not None else "")
    flow_token = task_token = None
    if snapshot is not None:
        flow_token, task_token = _enter(snapshot, store, task_runner)
    install_capture()
    if snapshot is not None and snapshot.arg_origins:
        frames = _lineage_frames()
        for key, origin in snapshot.arg_origins.items():
            value = args[key] if isinstance(key, int) and key < len(args) else kwargs.get(str(key))
            frames.remember(value, origin)
    outcome = RemoteOutcome(ok=True)
    try:
        with levels_of(snapshot.log_levels if snapshot is not None else LogLevels()):
            outcome.value = run_sync(fn, args, kwargs)
    except BaseException as exc:  # sent back to the parent, which raises it there
        outcome = RemoteOutcome(ok=False, error=exc if _pickles(exc) else None,
                                error_text=f"{type(exc).__name__}: {exc}\n"
                                           + "".join(traceback.format_exception(exc)))
    finally:
        flow = flow_run_var.get()
        outcome.rows_loaded = flow.rows_loaded if flow is not None and snapshot else 0
        task = task_run_var.get()
        outcome.lineage = list(task.lineage) if task is not None and snapshot else []
        if outcome.lineage:
            outcome.value_origin = _lineage_frames().origin_of(outcome.value)
        if task_token is not None and flow_token is not None:
            task_run_var.reset(task_token)
            flow_run_var.reset(flow_token)
    outcome.calls, outcome.log_lines = store.writer.calls, store.writer.lines
    return outcome


def _enter(snap: RunSnapshot, store: Any, task_runner: Any) -> tuple[Any, Any]:
    flow = FlowRunContext(
        flow_run_id=snap.flow_run_id or snap.task_run_id, flow_name=snap.flow_name or "",
        parameters=snap.flow_parameters, store=store, task_runner=task_runner,
        scheduled_time=snap.scheduled_time, deployment_id=snap.deployment_id,
        work_id=snap.work_id)
    task = TaskRunContext(snap.task_run_id, snap.task_name, snap.task_key, snap.flow_run_id,
                          snap.parameters, store, attempt=snap.attempt, tags=snap.tags,
                          work_id=snap.work_id, prefix_box=[snap.load_prefix])
    # Outside a flow the parent had no flow context either: keep it that way.
    flow_token = flow_run_var.set(flow if snap.flow_run_id else None)
    return flow_token, task_run_var.set(task)


def _lineage_frames() -> Any:
    """headrace.lineage's frame origins, loaded by name (the engine may not import the parts
    above it) and only when a body recorded lineage."""
    from importlib import import_module

    return import_module("headrace.lineage.frames")


def _pickles(exc: BaseException) -> bool:
    try:
        pickle.loads(pickle.dumps(exc))
        return True
    except Exception:
        return False


def apply_outcome(outcome: RemoteOutcome) -> Any:
    """In the parent, inside the task run: replay the records, then return or raise.

    Log lines are stored with the task run and shown by this process's logging, each once
    (``headrace.engine.logs.replay_line``).
    """
    flow, task = current_flow_run(), current_task_run()
    store = task.store if task else flow.store if flow else None
    if store is not None:
        for name, args in outcome.calls:
            if name.startswith(STORE_CALL):
                getattr(store, name[len(STORE_CALL):])(**args[0])
            else:
                getattr(store.writer, name)(*args)
    if flow is not None and outcome.rows_loaded:
        with flow.lock:
            flow.rows_loaded += outcome.rows_loaded
    if outcome.lineage and (task or flow) is not None:
        (task or flow).lineage.extend(outcome.lineage)  # type: ignore[union-attr]
    if outcome.value_origin is not None and outcome.ok:
        _lineage_frames().remember(outcome.value, outcome.value_origin)
    for created, level, name, message in outcome.log_lines:
        replay_line(created, level, name, message)
    if outcome.ok:
        return outcome.value
    if outcome.error is not None:
        raise outcome.error
    raise RemoteTaskError(outcome.error_text.strip())
