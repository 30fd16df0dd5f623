"""Running one flow call: the flow run's states, retries, timeout, records and hooks."""

from __future__ import annotations

import dataclasses
import logging
import threading
import traceback
import uuid
from collections.abc import Callable, Iterable
from contextvars import copy_context
from datetime import datetime
from typing import Any

from headrace.engine import results
from headrace.engine.context import FlowRunContext, flow_run_var, work_identity
from headrace.engine.futures import TaskFuture
from headrace.engine.hashing import to_json
from headrace.engine.logs import get_run_logger, install_capture
from headrace.engine.retries import with_jitter
from headrace.engine.runners import run_sync
from headrace.engine.states import STATE_TYPES, RunView, State, first_line
from headrace.engine.taskrun import close_unfinished
from headrace.errors import Cancelled, FlowError, FlowRunError
from headrace.run_observers import active_observers, notify
from headrace.secrets import protect_parameters, redact
from headrace.store import RunStore, get_store, utcnow

log = logging.getLogger("headrace.engine")

Flow = Any  # a headrace.engine.flow.Flow (which imports this module to run itself)


class _FlowTimedOut(Exception):
    pass


class FlowRun:
    """One call of a flow, from its first record to its final state."""

    def __init__(self, flow: Flow, parameters: dict[str, Any], *, flow_run_id: str | None,
                 scheduled_time: datetime | None, deployment_id: str | None, retry_of: str | None,
                 now: Callable[[], datetime] | None, rerun_tasks: frozenset[str] = frozenset(),
                 started_at: datetime | None = None) -> None:
        self.flow = flow
        self.parameters = parameters
        self.store: RunStore = get_store()
        self.now = now or utcnow
        self.parent = flow_run_var.get()
        self.id = flow_run_id or uuid.uuid4().hex
        self.adopt = flow_run_id is not None
        self.started_at = started_at  # the caller (a worker) recorded the run Running already
        self.retry_of = retry_of
        self.rerun_tasks = rerun_tasks
        self.state = State("Pending")
        self.ctx = FlowRunContext(
            flow_run_id=self.id, flow_name=flow.name, parameters=parameters, store=self.store,
            task_runner=flow.task_runner.duplicate(), now=self.now, scheduled_time=scheduled_time,
            deployment_id=deployment_id, persist_result=flow.persist_result,
            limited_tags=frozenset(self.store.cached_concurrency_limits()), observers=active_observers())
        self.error: BaseException | None = None
        self.attempts = 0

    # -- the one function that changes state ------------------------------------------------------
    def set_state(self, name: str, message: str | None = None, *, flush: bool = False) -> None:
        """Record a new state of the flow run (its message redacted); the store writes it as a transition."""
        message = redact(message) if message else message
        if STATE_TYPES[name].is_terminal:  # no task run of a finished flow run stays unfinished
            close_unfinished(self.id, "Crashed" if name == "Crashed" else "Cancelled",
                             f"its flow run ended {name} before this task run finished")
        previous = self.state.type.value
        self.state = State(name, message, self.now())
        at = self.state.timestamp
        stype = STATE_TYPES[name].value
        update: dict[str, Any] = {"id": self.id, "run_count": self.attempts}
        if stype == "RUNNING" and self.attempts == 1 and name == "Running":
            update["started_at"] = at
        if STATE_TYPES[name].is_terminal:
            update["ended_at"] = at
            update["rows_loaded"] = self.ctx.rows_loaded
        writer = self.store.writer
        writer.state_change({"run_id": self.id, "run_kind": "flow", "from_type": previous,
                             "to_type": stype, "to_name": name, "message": message, "at": at})
        writer.flow_update(update)
        if flush:
            writer.flush()
        if self.ctx.observers and STATE_TYPES[name].is_terminal:
            parent = self.parent
            notify(self.ctx.observers, "flow_ended", flow_run_id=self.id, flow_name=self.flow.name, state=name,
                   message=message, error=self.error, at=at, lineage=self.ctx.lineage, fn=self.flow.fn,
                   scheduled_time=self.ctx.scheduled_time, parent_run_id=parent.flow_run_id if parent else None,
                   parent_flow_name=parent.flow_name if parent else None)

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> None:
        """Record the run as Running (created, or taken over from the scheduler) in one transaction,
        unless its worker recorded that already. The store adds this process's host and pid."""
        self.attempts = 1
        if self.started_at is not None:
            self.state = State("Running", None, self.started_at)
        else:
            self._record_start()
        self.store.writer.active_flow_runs.add(self.id)
        self.store.writer.cancel_events[self.id] = self.ctx.cancel_event
        self.ctx.work_id = work_identity(
            self.store, self.id, retry_of=self.retry_of, deployment_id=self.ctx.deployment_id,
            scheduled_time=self.ctx.scheduled_time, parent=self.parent, flow_name=self.flow.name)
        if self.retry_of:
            self._load_reusable(self.retry_of)
        if self.ctx.observers:
            parent = self.parent
            notify(self.ctx.observers, "flow_started", flow_run_id=self.id, flow_name=self.flow.name,
                   fn=self.flow.fn, at=self.state.timestamp, scheduled_time=self.ctx.scheduled_time,
                   deployment_id=self.ctx.deployment_id, parent_run_id=parent.flow_run_id if parent else None,
                   parent_flow_name=parent.flow_name if parent else None)

    def _record_start(self) -> None:
        at = self.now()
        row = {"id": self.id, "state_type": "RUNNING", "state_name": "Running", "state_message": None,
               "parameters": to_json(protect_parameters(self.parameters, self.flow.secret_params)),
               "run_count": 1, "started_at": at,
               "tags": to_json(list(self.flow.tags)) if self.flow.tags else None, "heartbeat_at": at}
        if not self.adopt:
            row.update({"flow_name": self.flow.name, "name": f"{self.flow.name}-{self.id[:8]}",
                        "entrypoint": self.flow.entrypoint, "created_at": at,
                        "parent_run_id": self.parent.flow_run_id if self.parent else None,
                        "retry_of": self.retry_of, "deployment_id": self.ctx.deployment_id,
                        "expected_start": self.ctx.scheduled_time, "cancel_requested": False})
        change = {"run_id": self.id, "run_kind": "flow", "message": None, "at": at}
        changes = [{**change, "from_type": None, "to_type": "PENDING", "to_name": "Pending"},
                   {**change, "from_type": "PENDING", "to_type": "RUNNING", "to_name": "Running"}]
        if not self.store.start_flow_run(row, changes, adopt=self.adopt):
            existing = self.store.get_flow_run(self.id)
            raise FlowError(f"flow run {self.id} is {existing['state_name']}; only a Scheduled or "
                            "Pending run can be started")
        self.state = State("Running", None, at)

    def _load_reusable(self, run_id: str) -> None:
        for tr in self.store.list_task_runs(run_id):
            if tr["state_type"] == "COMPLETED" and tr["result"] and tr["task_key"] not in self.rerun_tasks:
                self.ctx.reusable[tr["task_key"]] = (tr["result"], run_id)

    def run(self) -> State:
        self.start()
        token = flow_run_var.set(self.ctx)
        try:
            value = self._attempts()
        except Cancelled as exc:
            self.error = FlowRunError(f"flow run {self.id[:8]} was cancelled: {exc}")
            self.set_state("Cancelled", str(exc))
            value = None
        except BaseException as exc:  # KeyboardInterrupt, SystemExit: the process is going away
            self.error = exc
            self.set_state("Crashed", first_line(exc) or type(exc).__name__)
            self._end()
            raise
        finally:
            flow_run_var.reset(token)
        self._end()
        final = State(self.state.name, self.state.message, self.state.timestamp, error=self.error,
                      run_id=self.id)
        if final.is_completed():
            final.data = value
        self._hooks(final)
        return final

    def _attempts(self) -> Any:
        flow = self.flow
        for attempt in range(1, flow.retries + 2):
            self.attempts = attempt
            self.ctx.futures = []
            self.ctx.key_counts = {}  # the same call gets the same key in every attempt
            if attempt > 1:  # the first attempt's Running state was written by start()
                self.set_state("Retrying", f"attempt {attempt} of {flow.retries + 1}", flush=True)
            try:
                value = self._body()
                self._check_futures(value)
            except (Cancelled, KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:
                self.error = exc
                timed_out = isinstance(exc, _FlowTimedOut)
                if timed_out:
                    self._abandon_attempt(str(exc))
                if attempt <= flow.retries:
                    self._wait_retry(attempt, exc)
                    continue
                self._fail("TimedOut" if timed_out else "Failed", exc)
                return None
            self.error = None
            ref = results.persist(_plain(value), inline_only=True)
            self.store.writer.flow_update({"id": self.id, "result": ref})
            self.set_state("Completed")  # written by _end, with what ends the run
            return value
        raise AssertionError("unreachable")  # pragma: no cover

    def _abandon_attempt(self, why: str) -> None:
        """After a timeout: end the attempt's unfinished task runs, and give the next attempt its
        own context, so the abandoned body stops at its next task while a retry really runs."""
        close_unfinished(self.id, "Cancelled", why)
        old = self.ctx
        self.ctx = dataclasses.replace(old, cancel_event=threading.Event(), futures=[], key_counts={},
                                       lock=threading.Lock())
        flow_run_var.set(self.ctx)
        self.store.writer.cancel_events[self.id] = self.ctx.cancel_event

    def _body(self) -> Any:
        if not self.flow.log_prints:
            return self._call_body()
        import contextlib

        with contextlib.redirect_stdout(_PrintsToLog()):
            return self._call_body()

    def _call_body(self) -> Any:
        flow = self.flow
        if flow.timeout_seconds is None:
            return _resolve_returned(run_sync(flow.fn, (), _kwargs(flow, self.parameters)))
        box: dict[str, Any] = {}
        ctx = copy_context()

        def target() -> None:
            try:
                box["value"] = ctx.run(
                    lambda: _resolve_returned(run_sync(flow.fn, (), _kwargs(flow, self.parameters))))
            except BaseException as exc:
                box["error"] = exc

        thread = threading.Thread(target=target, daemon=True, name="headrace-flow")
        thread.start()
        thread.join(flow.timeout_seconds)
        if thread.is_alive():
            self.ctx.cancel_event.set()  # running tasks stop at their next boundary
            self.ctx.task_runner.shutdown(cancel=True)
            raise _FlowTimedOut(f"flow {flow.name!r} ran past its timeout of {flow.timeout_seconds:g} s")
        if "error" in box:
            raise box["error"]
        return box.get("value")

    def _check_futures(self, value: Any) -> None:
        """Wait for every submitted task; a flow that returned nothing fails if one of them failed."""
        failed = []
        for future in list(self.ctx.futures):
            state = future.wait()
            if state is not None and not state.is_completed():
                failed.append((future, state))
        if failed and value is None:
            future, state = failed[0]
            raise FlowRunError(f"{len(failed)} task run(s) failed; first: {future.task_name} ended "
                               f"{state.name}: {state.message or ''}".rstrip(": "))

    def _wait_retry(self, attempt: int, exc: BaseException) -> None:
        delay = with_jitter(self.flow.delays[attempt - 1], None)
        msg = f"attempt {attempt} failed ({redact(first_line(exc))}); retrying in {delay:g} s"
        log.warning("flow run %s: %s", self.id[:8], msg)
        self.set_state("Retrying", msg, flush=True)
        if delay > 0 and self.ctx.cancel_event.wait(delay):
            raise Cancelled("the flow run was cancelled")
        if self.id in self.store.writer.cancelled:
            raise Cancelled("the flow run was cancelled")

    def _fail(self, name: str, exc: BaseException) -> None:
        detail = redact("".join(traceback.format_exception(exc))[-8000:])
        log.error("flow run %s ended %s: %s", self.id[:8], name, redact(first_line(exc)))
        self.store.writer.flow_update({"id": self.id, "result": to_json({"error": detail})})
        self.set_state(name, redact(first_line(exc)))

    def _end(self) -> None:
        self.ctx.task_runner.shutdown(cancel=not self.state.is_completed())
        self.store.writer.active_flow_runs.discard(self.id)
        self.store.writer.cancel_events.pop(self.id, None)
        self.store.writer.cancelled.discard(self.id)
        self.store.writer.flush()

    def _hooks(self, state: State) -> None:
        hooks = {"COMPLETED": self.flow.on_completion, "FAILED": self.flow.on_failure,
                 "CANCELLED": self.flow.on_cancellation, "CRASHED": self.flow.on_crashed}
        for hook in hooks.get(state.type.value, []):
            try:
                hook(self.flow, self.view(state), state)
            except Exception as exc:  # a hook never changes the run's outcome
                log.warning("hook %s of flow %s raised %s", getattr(hook, "__name__", hook),
                            self.flow.name, redact(first_line(exc)))

    def view(self, state: State) -> RunView:
        return RunView(id=self.id, name=f"{self.flow.name}-{self.id[:8]}", flow_name=self.flow.name,
                       parameters=self.parameters, state=state, rows_loaded=self.ctx.rows_loaded,
                       error=redact(first_line(self.error)) if self.error else None,
                       scheduled_time=self.ctx.scheduled_time, deployment_id=self.ctx.deployment_id,
                       attempts=self.attempts)


class _PrintsToLog:
    """``log_prints=True``: each printed line becomes a log line of the run (and still shows)."""

    def __init__(self) -> None:
        import sys

        self.out = sys.stdout
        self.buf = ""

    def write(self, text: str) -> int:
        self.out.write(text)
        self.buf += text
        while "\n" in self.buf:
            line, self.buf = self.buf.split("\n", 1)
            get_run_logger("prints").info("%s", line)
        return len(text)

    def flush(self) -> None:
        self.out.flush()


def _kwargs(flow: Flow, parameters: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for the flow function; extra parameters go to its ``**kwargs``."""
    params = flow.signature.parameters
    out: dict[str, Any] = {}
    for name, value in parameters.items():
        param = params.get(name)
        if param is not None and param.kind is param.VAR_KEYWORD:
            out.update(value)
        else:
            out[name] = value
    return out


def _resolve_returned(value: Any) -> Any:
    """A flow that returns futures returns their results (and fails if they failed)."""
    if isinstance(value, TaskFuture):
        return value.result()
    if isinstance(value, State):
        return value.result()
    if type(value) in (list, tuple) and value and all(isinstance(v, TaskFuture) for v in value):
        return type(value)(v.result() for v in value)
    return value


def _plain(value: Any) -> Any:
    return value if results.frame_kind(value) is None else None


def run_flow(flow: Flow, parameters: dict[str, Any], *, flow_run_id: str | None = None,
             scheduled_time: datetime | None = None, deployment_id: str | None = None,
             retry_of: str | None = None, now: Callable[[], datetime] | None = None,
             rerun_tasks: Iterable[str] | None = None, started_at: datetime | None = None) -> State:
    """Run ``flow`` with ``parameters`` and return its final state (never raises for a failed run).

    ``flow_run_id`` adopts a Scheduled or Pending run created ahead of time (by the
    scheduler), or with ``started_at`` one its caller already recorded as Running
    (a worker starting runs in batches); ``retry_of`` reuses the persisted results
    of that earlier run's completed tasks, except the task keys in ``rerun_tasks``;
    ``now`` replaces the clock.
    """
    install_capture()
    return FlowRun(flow, parameters, flow_run_id=flow_run_id, scheduled_time=scheduled_time,
                   deployment_id=deployment_id, retry_of=retry_of, now=now,
                   rerun_tasks=frozenset(rerun_tasks or ()), started_at=started_at).run()
