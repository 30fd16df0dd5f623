"""Running one task call: states, retries, timeouts, caching and records.

``TaskRun.execute`` decides everything about a task run; every state change
goes through ``TaskRun.set_state``, which records it.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
import uuid
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from headrace.engine import results
from headrace.engine.context import (
    AttemptFence,
    FlowRunContext,
    TaskRunContext,
    flow_run_var,
    record_declared,
    replay_lineage,
    task_run_var,
)
from headrace.engine.futures import TaskFuture, unmapped
from headrace.engine.retries import with_jitter
from headrace.engine.runners import TaskRunner, _Terminated
from headrace.engine.states import STATE_TYPES, RunView, State, first_line
from headrace.errors import Cancelled, ResultError, TaskTimeout, UpstreamFailed
from headrace.run_observers import active_observers, notify
from headrace.secrets import redact
from headrace.store import RunStore, get_store, utcnow

log = logging.getLogger("headrace.engine")

STANDALONE_RUNNER = TaskRunner()
_STANDALONE_RUNNER = STANDALONE_RUNNER
TaskLike = Any  # a headrace.engine.task.Task; typed loosely so this module needs not import it

# flow run id -> its task runs not yet in a final state (closed when the flow run ends or times out).
# Single dict and set operations are atomic, so the hot path takes no lock for this.
_LIVE: dict[str, set[TaskRun]] = {}
_VALUES = {name: t.value for name, t in STATE_TYPES.items()}  # state name -> type value
_TERMINAL_NAMES = frozenset(name for name, t in STATE_TYPES.items() if t.is_terminal)


def close_unfinished(flow_run_id: str, name: str, message: str) -> int:
    """Move every unfinished task run of a flow run to ``name`` (Cancelled or Crashed) and fence it:
    whatever its body does later is not recorded. Returns how many were closed."""
    runs = list(_LIVE.pop(flow_run_id, ()))
    for run in runs:
        run.close(name, message)
    return len(runs)


class TaskRun:
    """One call of a task, from creation to its final state."""

    __slots__ = ("task", "flow", "store", "id", "key", "args", "kwargs", "wait_for", "row", "state",
                 "parameters", "now", "closed", "lock", "ctx", "observers", "nested", "__weakref__")

    def __init__(self, task: TaskLike, args: tuple[Any, ...], kwargs: dict[str, Any],
                 wait_for: Iterable[Any] | None = None) -> None:
        self.task = task
        self.flow: FlowRunContext | None = flow_run_var.get()
        self.store: RunStore = self.flow.store if self.flow else get_store()
        self.now = self.flow.now if self.flow else utcnow
        self.id = uuid.uuid4().hex
        # A task called by a task's body is keyed by its caller's attempt, and runs again in each
        # attempt of its caller (as in a child process): never reused from an earlier attempt or run.
        parent = task_run_var.get()
        self.nested = parent is not None
        self.key = (parent.child_key(task.name) if parent is not None
                    else self.flow.next_task_key(task.name) if self.flow else task.name)
        self.args, self.kwargs, self.wait_for = args, kwargs, wait_for
        self.parameters: dict[str, Any] = {}
        self.state = State("Pending")
        self.row: dict[str, Any] = {
            "id": self.id, "flow_run_id": self.flow.flow_run_id if self.flow else None,
            "task_name": task.name, "task_key": self.key, "state_type": "PENDING",
            "state_name": "Pending", "state_message": None, "attempts": 0,
            "tags": ",".join(task.tags) or None, "cache_key": None, "inputs_hash": None,
            "error": None, "result": None, "created_at": self.now(), "started_at": None,
            "ended_at": None}
        self.closed = False
        self.lock = threading.Lock()
        self.ctx: TaskRunContext | None = None
        self.observers = self.flow.observers if self.flow else active_observers()
        if self.flow is not None:
            _LIVE.setdefault(self.flow.flow_run_id, set()).add(self)
        self._record("Pending", None, None)

    # -- the one function that changes state -------------------------------------------
    def set_state(self, name: str, message: str | None = None, *, data: Any = results.NotJSONable,
                  error: BaseException | None = None) -> State:
        """Record a new state (its message redacted); a closed run keeps the state it was closed in."""
        message = redact(message) if message else message
        state = State(name, message, self.now(), error=error, run_id=self.id)
        if data is not results.NotJSONable:
            state.data = data
        with self.lock:
            if self.closed:
                return state
            self.state = state
            self._record(name, message, self.row["state_type"], error)
        return state

    def close(self, name: str, message: str) -> None:
        """End this run as ``name`` unless it ended already; nothing it does later is recorded."""
        with self.lock:
            if not self.closed and self.row["state_name"] not in _TERMINAL_NAMES:
                self.state = State(name, message, self.now(), run_id=self.id)
                self._record(name, message, self.row["state_type"])
            self.closed = True

    def _record(self, name: str, message: str | None, previous: str | None,
                error: BaseException | None = None) -> None:
        at = self.now()
        row = self.row
        stype = _VALUES[name]
        row["state_type"], row["state_name"], row["state_message"] = stype, name, message
        started = stype == "RUNNING" and row["started_at"] is None
        if started:
            row["started_at"] = at
        ended = name in _TERMINAL_NAMES
        if ended:
            row["ended_at"] = at
            live = _LIVE.get(self.flow.flow_run_id) if self.flow is not None else None
            if live is not None:
                live.discard(self)
        writer = self.store.writer
        writer.state_change({"run_id": self.id, "run_kind": "task", "from_type": previous,
                             "to_type": stype, "to_name": name, "message": message, "at": at})
        writer.task_run(dict(row))
        if self.observers and (started or ended):
            self._observe(name, message, error, at, ended)

    def _observe(self, name: str, message: str | None, error: BaseException | None, at: Any,
                 ended: bool) -> None:
        """Tell the run observers (headrace.run_observers) that this run started or ended."""
        flow, task = self.flow, self.task
        flow_run_id, flow_name = (flow.flow_run_id, flow.flow_name) if flow else (None, None)
        if not ended:
            notify(self.observers, "task_started", task_run_id=self.id, task_name=task.name, fn=task.fn,
                   flow_run_id=flow_run_id, flow_name=flow_name, at=at)
            return
        notify(self.observers, "task_ended", task_run_id=self.id, task_name=task.name, fn=task.fn,
               flow_run_id=flow_run_id, flow_name=flow_name, at=at, state=name, message=message, error=error,
               lineage=self.ctx.lineage if self.ctx is not None else [])

    # -- execution -----------------------------------------------------------------------
    def execute(self) -> State:
        task = self.task
        try:
            self.parameters = self._resolve_inputs()
        except UpstreamFailed as exc:
            return self._finish_failed("Failed", exc, hooks=False)
        ctx = TaskRunContext(self.id, task.name, self.key, self.row["flow_run_id"], self.parameters,
                             self.store, tags=task.tags, task=task,
                             work_id=self.flow.work_id if self.flow else None)
        earlier = self.flow.reusable.get(self.key) if self.flow and self.key not in self.flow.completed else None
        self.ctx = ctx  # its lineage list is shared by the attempts (dataclasses.replace keeps it)
        reused = self._reuse()
        if reused is not None:
            if earlier is not None:   # `headrace retry`: the reads were done by the earlier run
                replay_lineage(ctx, earlier[1], value=self.flow.completed.get(self.key) if self.flow else None)
            return reused
        cache_key = self._cache_key(ctx)
        if cache_key is not None:
            hit = self._cache_hit(cache_key)
            if hit is not None:
                replay_lineage(ctx, None, cache_key=cache_key, value=hit.data)
                return hit
        held = self._acquire_slots()
        try:
            return self._attempts(ctx, cache_key)
        finally:
            if held:
                self.store.release_slots(self.id)

    def _attempts(self, ctx: TaskRunContext, cache_key: str | None) -> State:
        task = self.task
        runner = self.flow.task_runner if self.flow else STANDALONE_RUNNER
        cancel = self.flow.cancel_event if self.flow else None
        for attempt in range(1, task.retries + 2):
            self._check_cancel()
            self.row["attempts"] = attempt
            self.set_state("Running" if attempt == 1 else "Retrying",
                           None if attempt == 1 else f"attempt {attempt} of {task.retries + 1}")
            # Each attempt its own context: a late thread of an abandoned attempt keeps its own.
            token = task_run_var.set(replace(ctx, attempt=attempt, fence=AttemptFence(), child_counts={}))
            try:
                record_declared(task, "input")
                value = self._call(runner, cancel)
                record_declared(task, "output", self.parameters, value)
            except _Terminated:
                self._cancelled("cancelled while running")
            except Exception as exc:  # the task's own failure: retry or fail
                timed_out = isinstance(exc, TaskTimeout)
                if attempt <= task.retries and self._should_retry(exc):
                    self._wait_retry(attempt, exc)
                    continue
                return self._finish_failed("TimedOut" if timed_out else "Failed", exc)
            finally:
                task_run_var.reset(token)
            return self._finish_completed(value, cache_key)
        raise AssertionError("unreachable")  # pragma: no cover

    def _call(self, runner: TaskRunner, cancel: Any) -> Any:
        task = self.task
        args, kwargs = self._call_args()
        if task.log_prints:
            return _call_logging_prints(runner, task, args, kwargs, cancel)
        return runner.call(task.fn, args, kwargs, task.timeout_seconds, cancel or threading.Event())

    def _call_args(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for name, param in self.task.signature.parameters.items():
            if name not in self.parameters:
                continue
            value = self.parameters[name]
            if param.kind is param.VAR_POSITIONAL:
                args.extend(value)
            elif param.kind is param.VAR_KEYWORD:
                kwargs.update(value)
            elif param.kind is param.POSITIONAL_ONLY:
                args.append(value)
            else:
                kwargs[name] = value
        return tuple(args), kwargs

    def _should_retry(self, exc: BaseException) -> bool:
        cond = self.task.retry_condition_fn
        if cond is None:
            return True
        try:
            return bool(cond(self.task, self.view(), State("Failed", first_line(exc), error=exc)))
        except Exception as hook_exc:
            log.warning("retry_condition_fn of task %s raised %s; not retrying", self.task.name, hook_exc)
            return False

    def _wait_retry(self, attempt: int, exc: BaseException) -> None:
        delay = with_jitter(self.task.delays[attempt - 1], self.task.retry_jitter_factor)
        msg = redact(f"attempt {attempt} failed ({first_line(exc)}); retrying in {delay:g} s")
        log.info("task %s: %s", self.key, msg)
        self.set_state("Retrying", msg, error=exc)
        if delay > 0:
            if self.flow is not None and self.flow.cancel_event.wait(delay):
                self._check_cancel()
            elif self.flow is None:
                time.sleep(delay)

    def _check_cancel(self) -> None:
        flow = self.flow
        if flow is None:
            return
        if flow.flow_run_id in self.store.writer.cancelled:
            flow.cancel_event.set()
        if flow.cancel_event.is_set():
            self._cancelled("the flow run was cancelled")

    def _cancelled(self, message: str) -> None:
        self.set_state("Cancelled", message)
        raise Cancelled(message)

    # -- inputs --------------------------------------------------------------------------------
    def _resolve_inputs(self) -> dict[str, Any]:
        for dep in self.wait_for or ():
            if isinstance(dep, TaskFuture):
                self._upstream_value(dep)
        args = tuple(_resolve(a, self) for a in self.args)
        kwargs = {k: _resolve(v, self) for k, v in self.kwargs.items()}
        return self.task.bind(args, kwargs)

    def _upstream_value(self, future: TaskFuture[Any]) -> Any:
        state = future.wait()
        assert state is not None
        if not state.is_completed():
            raise UpstreamFailed(f"upstream task {future.task_name!r} ended {state.name}: "
                                 f"{state.message or ''}".rstrip(": "))
        return state.result()

    # -- reuse and cache --------------------------------------------------------------------
    def _reuse(self) -> State | None:
        flow = self.flow
        if flow is None or self.nested:
            return None
        if self.key in flow.completed:
            value = flow.completed[self.key]
            return self.set_state("Completed", "reused from an earlier attempt of this flow run", data=value)
        found = flow.reusable.get(self.key)
        if found is None:
            return None
        ref, run_id = found
        try:
            value = results.load(ref)
        except Exception as exc:
            log.info("task %s: result of run %s not reusable (%s); running again", self.key, run_id, exc)
            return None
        self.row["result"] = ref
        flow.completed[self.key] = value
        return self.set_state("Completed", f"reused the result of flow run {run_id[:8]}", data=value)

    def _cache_key(self, ctx: TaskRunContext) -> str | None:
        fn = self.task.cache_key_fn
        if fn is None:
            return None
        try:
            key = fn(ctx, self.parameters)
        except Exception as exc:
            log.warning("cache_key_fn of task %s raised %s; not caching", self.task.name, first_line(exc))
            return None
        if key is not None:
            self.row["cache_key"] = str(key)[:200]
        return self.row["cache_key"]

    def _cache_hit(self, cache_key: str) -> State | None:
        if self.task.refresh_cache:
            return None
        ref = self.store.get_cached(cache_key, self.now())
        if ref is None:
            return None
        try:
            value = results.load(ref)
        except Exception as exc:
            log.info("task %s: cached result unreadable (%s); running again", self.key, exc)
            return None
        self.row["result"] = ref
        state = self.set_state("Cached", f"cache hit for key {cache_key[:12]}", data=value)
        self._remember(value)
        return state

    def _acquire_slots(self) -> bool:
        tags = [t for t in self.task.tags if self.flow is None or t in self.flow.limited_tags]
        if not tags or (self.flow is None and not set(tags) & set(self.store.concurrency_limits())):
            return False
        delay = 0.05
        while not self.store.try_acquire_slots(tags, self.id, self.row["flow_run_id"], self.now()):
            if self.row["state_message"] is None:
                self.set_state("Pending", f"waiting for a concurrency slot on {', '.join(tags)}")
            self._check_cancel()
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
        return True

    # -- endings --------------------------------------------------------------------------------
    def _finish_completed(self, value: Any, cache_key: str | None) -> State:
        try:
            ref = self._persist(value, cache_key)
        except ResultError as exc:
            return self._finish_failed("Failed", exc)
        self.row["result"] = ref
        if cache_key is not None and ref is not None and not self.closed:
            exp = self.task.cache_expiration
            self.store.put_cached(cache_key, self.task.name, ref, self.now() + exp if exp else None, self.now())
        state = self.set_state("Completed", data=value)
        self._remember(value)
        self._hooks(self.task.on_completion, state)
        return state

    def _remember(self, value: Any) -> None:
        if self.flow is not None and not self.nested:
            self.flow.completed[self.key] = value

    def _persist(self, value: Any, cache_key: str | None) -> str | None:
        mode = self.task.persist_result
        if mode is None and self.flow is not None:
            mode = self.flow.persist_result
        label = f"the result of task {self.task.name!r}"
        if mode is True or cache_key is not None:
            return results.persist(value, serializer=self.task.result_serializer, label=label)
        if mode is False:
            return None
        return results.persist(value, inline_only=True)

    def _finish_failed(self, name: str, exc: BaseException, hooks: bool = True) -> State:
        self.row["error"] = redact("".join(traceback.format_exception(exc))[-8000:])
        state = self.set_state(name, first_line(exc), error=exc)
        log.error("task %s ended %s: %s", self.key, name, state.message)
        self.store.writer.flush()  # a failure is a state boundary that must survive a crash
        if hooks:
            self._hooks(self.task.on_failure, state)
        return state

    def _hooks(self, hooks: list[Any], state: State) -> None:
        for hook in hooks:
            try:
                hook(self.task, self.view(), state)
            except Exception as exc:  # a hook never changes the run's outcome
                log.warning("hook %s of task %s raised %s", getattr(hook, "__name__", hook),
                            self.task.name, redact(first_line(exc)))

    def view(self) -> RunView:
        return RunView(id=self.id, name=self.key, task_name=self.task.name, task_key=self.key,
                       flow_run_id=self.row["flow_run_id"], parameters=self.parameters,
                       attempts=self.row["attempts"], state=self.state, error=self.row["error"],
                       started_at=self.row["started_at"], ended_at=self.row["ended_at"])


def _resolve(value: Any, run: TaskRun) -> Any:
    """Replace futures (also inside lists, tuples, sets and dicts) by their results."""
    if isinstance(value, TaskFuture):
        return run._upstream_value(value)
    if isinstance(value, unmapped):
        return _resolve(value.value, run)
    if type(value) in (list, tuple, set) and any(isinstance(v, TaskFuture) for v in value):
        return type(value)(_resolve(v, run) for v in value)
    if type(value) is dict and any(isinstance(v, TaskFuture) for v in value.values()):
        return {k: _resolve(v, run) for k, v in value.items()}
    return value


def _call_logging_prints(runner: TaskRunner, task: TaskLike, args: tuple[Any, ...],
                         kwargs: dict[str, Any], cancel: Any) -> Any:
    import contextlib
    import io

    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            return runner.call(task.fn, args, kwargs, task.timeout_seconds, cancel or threading.Event())
    finally:
        from headrace.engine.logs import get_run_logger

        prints = get_run_logger("prints")
        for line in buf.getvalue().splitlines():
            prints.info("%s", line)
