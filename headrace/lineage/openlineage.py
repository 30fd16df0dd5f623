"""OpenLineage events for every flow run and task run: START, then COMPLETE, FAIL or ABORT.

Set ``HEADRACE_OPENLINEAGE_URL`` to turn it on (unset: off, and the engine calls nothing)::

    HEADRACE_OPENLINEAGE_URL=file:///var/lib/etl/events.ndjson   # or console, or http://marquez:5000
    HEADRACE_OPENLINEAGE_NAMESPACE=analytics                       # job namespace (default "headrace")
    HEADRACE_OPENLINEAGE_API_KEY=...                               # Bearer token for an HTTP endpoint
    HEADRACE_OPENLINEAGE_TIMEOUT=5                                 # seconds one HTTP request may take

A flow run is the job ``<flow name>``, a task run the job ``<flow name>.<task name>`` with the
parent run facet naming its flow run. The engine only queues a small record at each start and
end; the events are built (with ``openlineage-python``'s classes) and delivered on the
transport's thread, and all of a top-level flow run's events are delivered when it ends.
Events without datasets are filled into a template serialised once per job, so a flow of
thousands of small tasks stays cheap.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from headrace.lineage.render import Dispatcher, EventRenderer, _facets
from headrace.lineage.transport import dispatcher_for

# state type of a run's final state -> OpenLineage event type
EVENT_TYPES = {"COMPLETED": "COMPLETE", "FAILED": "FAIL", "CRASHED": "FAIL", "CANCELLED": "ABORT"}
_STATE_EVENT: dict[str, str] = {}


def _event_type(state: str) -> str:
    found = _STATE_EVENT.get(state)
    if found is None:
        from headrace.state_types import STATE_TYPES

        found = _STATE_EVENT[state] = EVENT_TYPES.get(STATE_TYPES[state].value, "OTHER")
    return found


@dataclass(frozen=True)
class OpenLineageSettings:
    """What ``HEADRACE_OPENLINEAGE_*`` says. ``url``: where events go (``None``: off); ``timeout``:
    the seconds one HTTP request may take (connecting: at most 2)."""

    url: str | None
    namespace: str = "headrace"
    api_key: str | None = None
    home: str | None = None
    timeout: float = 5.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OpenLineageSettings:
        env = os.environ if env is None else env
        return cls(url=(env.get("HEADRACE_OPENLINEAGE_URL") or "").strip() or None,
                   namespace=(env.get("HEADRACE_OPENLINEAGE_NAMESPACE") or "").strip() or "headrace",
                   api_key=env.get("HEADRACE_OPENLINEAGE_API_KEY") or None, home=env.get("HEADRACE_HOME"),
                   timeout=_seconds(env.get("HEADRACE_OPENLINEAGE_TIMEOUT")))


def _seconds(text: str | None) -> float:
    if not text:
        return 5.0
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        from headrace.errors import ConfigError

        raise ConfigError(f"HEADRACE_OPENLINEAGE_TIMEOUT={text!r}: give a number of seconds above 0, e.g. 5")
    return value


@dataclass
class _FlowSeen:
    """What the emitter keeps of a flow run in progress: its tasks' datasets."""

    datasets: list[Any] = field(default_factory=list)


class OpenLineageEmitter:
    """A run observer (``headrace.run_observers``) that emits OpenLineage RunEvents through ``dispatcher``."""

    def __init__(self, dispatcher: Dispatcher, namespace: str = "headrace") -> None:
        self.dispatcher = dispatcher
        self.namespace = namespace
        self._flows: dict[str, _FlowSeen] = {}
        self._started: set[str] = set()
        self.renderer = EventRenderer(namespace)
        dispatcher.render = self.renderer.render
        self._put = dispatcher.put

    # -- the engine's calls (hot path: record, queue, return) -------------------------------------
    def flow_started(self, *, flow_run_id: str, flow_name: str, fn: Any = None, at: datetime,
                     scheduled_time: datetime | None = None, parent_run_id: str | None = None,
                     parent_flow_name: str | None = None, **kwargs: Any) -> None:
        self._flows[flow_run_id] = _FlowSeen()
        self.dispatcher.put(("flow", "START", flow_run_id, flow_name, at, fn,
                             _parent(parent_run_id, parent_flow_name), scheduled_time, None, None, ()))

    def flow_ended(self, *, flow_run_id: str, flow_name: str, state: str, at: datetime, fn: Any = None,
                   message: str | None = None, error: BaseException | None = None, lineage: Any = (),
                   parent_run_id: str | None = None, parent_flow_name: str | None = None,
                   scheduled_time: datetime | None = None, started: bool = True, **kwargs: Any) -> None:
        seen = self._flows.pop(flow_run_id, None)
        if not started:  # ended before it started (a Scheduled run cancelled): it still starts
            self.dispatcher.put(("flow", "START", flow_run_id, flow_name, at, fn,
                                 _parent(parent_run_id, parent_flow_name), scheduled_time, None, None, ()))
        datasets = [*(seen.datasets if seen else ()), *lineage]
        self.dispatcher.put(("flow", _event_type(state), flow_run_id, flow_name, at, fn,
                             _parent(parent_run_id, parent_flow_name), scheduled_time, message, error, datasets))
        if parent_run_id is None:
            self.dispatcher.flush()

    def task_started(self, *, task_run_id: str, task_name: str, at: datetime, fn: Any = None,
                     flow_run_id: str | None = None, flow_name: str | None = None, **kwargs: Any) -> None:
        self._started.add(task_run_id)
        # hot path (twice per task): one tuple into the queue, nothing else built here
        self._put(("task", "START", task_run_id, f"{flow_name}.{task_name}" if flow_name else task_name, at, fn,
                   (flow_run_id, flow_name) if flow_run_id and flow_name else None, None, None, None, ()))

    def task_ended(self, *, task_run_id: str, task_name: str, state: str, at: datetime, fn: Any = None,
                   flow_run_id: str | None = None, flow_name: str | None = None, message: str | None = None,
                   error: BaseException | None = None, lineage: Any = (), started: bool | None = None,
                   **kwargs: Any) -> None:
        # started: None = as this emitter saw it; True/False = as the store knows (crash marking)
        job = f"{flow_name}.{task_name}" if flow_name else task_name
        parent = (flow_run_id, flow_name) if flow_run_id and flow_name else None
        if task_run_id in self._started or started:
            self._started.discard(task_run_id)
        else:  # ended without running (cached, reused, upstream failed, cancelled): it still starts
            self._put(("task", "START", task_run_id, job, at, fn, parent, None, None, None, ()))
        datasets: Any = ()
        if lineage:
            datasets = list(lineage)
            seen = self._flows.get(flow_run_id) if flow_run_id is not None else None
            if seen is not None:
                seen.datasets.extend(datasets)
        etype = _STATE_EVENT.get(state) or _event_type(state)
        self._put(("task", etype, task_run_id, job, at, fn, parent, None, message, error, datasets))
        if flow_run_id is None:
            self.dispatcher.flush()

    # -- wherever events are built (the sender process, or a local transport's thread) ----------
    def render(self, record: tuple[Any, ...]) -> str:
        """One queued record as a JSON line."""
        return self.renderer.render(record)

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every event emitted so far is delivered (or kept in the outbox); True if so."""
        return self.dispatcher.drain(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is queued (HTTP: wait at most its ``exit_wait``, then keep the rest on disk)."""
        self.dispatcher.close(timeout)


def _parent(run_id: str | None, job: str | None) -> tuple[str, str] | None:
    return (run_id, job) if run_id and job else None


_EMITTERS: dict[OpenLineageSettings, OpenLineageEmitter] = {}
_LOCK = threading.Lock()


def emitter_from_env(env: Mapping[str, str] | None = None) -> OpenLineageEmitter | None:
    """The process's emitter for the current ``HEADRACE_OPENLINEAGE_*`` settings (``None``: off)."""
    settings = OpenLineageSettings.from_env(env)
    if settings.url is None:
        return None
    emitter = _EMITTERS.get(settings)
    if emitter is None:
        with _LOCK:
            emitter = _EMITTERS.get(settings)
            if emitter is None:
                emitter = _EMITTERS[settings] = _make(settings)
    return emitter


def _make(settings: OpenLineageSettings) -> OpenLineageEmitter:
    from headrace.config import load_settings

    assert settings.url is not None
    home = load_settings({"HEADRACE_HOME": settings.home} if settings.home else {}).home
    dispatcher = dispatcher_for(settings.url, home=Path(home), api_key=settings.api_key, timeout=settings.timeout,
                                namespace=settings.namespace)
    emitter = OpenLineageEmitter(dispatcher, settings.namespace)
    atexit.register(emitter.close)
    # The client library takes about half a second to import: start now, beside the run. Its imports
    # include concurrent.futures.thread, which cannot be imported once the interpreter is exiting
    # (it registers an exit hook): import that here, so a short process's last events still build.
    import concurrent.futures.thread  # noqa: F401

    threading.Thread(target=_warm_up, args=(dispatcher,), daemon=True, name="headrace-openlineage-import").start()
    return emitter


def _warm_up(dispatcher: Any) -> None:
    """Beside the run: start the sender process (its start overlaps the run's work, not its end),
    and import the client library (events with datasets or an error are built in this process)."""
    warm = getattr(dispatcher, "warm", None)
    if warm is not None:
        warm()
    _facets()


def close_emitters(timeout: float | None = None) -> None:
    """Deliver and close every emitter of this process (a process's exit does it by itself);
    ``timeout``: the most an HTTP transport waits for its queue to drain (default its ``exit_wait``)."""
    with _LOCK:
        emitters = list(_EMITTERS.values())
        _EMITTERS.clear()
    for emitter in emitters:
        atexit.unregister(emitter.close)
        emitter.close(timeout)


os.register_at_fork(after_in_child=_EMITTERS.clear)  # a forked child starts its own senders
