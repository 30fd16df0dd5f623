"""``ETLPipeline``: the stage-builder style (extract / transform / load + hooks) on the engine.

    p = ETLPipeline("sales")

    @p.extract
    def orders(start_date): ...

    @p.transform
    def clean(df): ...

    @p.load
    def save(df): return write_table(df, "fact_sales", url)

    run = p.run(start_date="2024-01-01")   # a PipelineRun; re-raises if a stage failed
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from headrace.engine.context import current_flow_run, log_metric
from headrace.engine.flow import Flow
from headrace.engine.flowrun import run_flow
from headrace.engine.states import first_line
from headrace.engine.task import Task
from headrace.store import utcnow

log = logging.getLogger("headrace.engine")


@dataclass
class PipelineRun:
    """The record of one ``ETLPipeline.run``."""

    pipeline_name: str
    run_id: str = ""
    started_at: datetime | None = None
    completed_at: datetime | None = None
    status: str = "running"          # running | success | failed
    rows_extracted: int = 0
    rows_loaded: int = 0
    errors: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None or self.completed_at is None:
            return None
        return (self.completed_at - self.started_at).total_seconds()

    @property
    def succeeded(self) -> bool:
        return self.status == "success"


def count_rows(data: Any) -> int:
    """Rows in a frame, a list, or a dict of those (a dict of scalars is one row)."""
    if data is None:
        return 0
    if isinstance(data, dict):
        values = list(data.values())
        if values and all(_is_collection(v) for v in values):
            return sum(count_rows(v) for v in values)
        return 1
    if hasattr(data, "num_rows"):
        return int(data.num_rows)
    if hasattr(data, "shape") and getattr(data, "shape", None):
        return int(data.shape[0])
    if isinstance(data, (list, tuple)):
        return len(data)
    return 0


def _is_collection(value: Any) -> bool:
    return isinstance(value, (list, tuple, dict)) or hasattr(value, "num_rows") or hasattr(value, "shape")


class ETLPipeline:
    """A pipeline of extract, transform and load stages; each stage is a task run of one flow run."""

    def __init__(self, name: str, *, retries: int = 0, retry_delay_seconds: float = 0,
                 stage_retries: int = 0, stage_retry_delay_seconds: float = 0,
                 persist_result: bool | None = None) -> None:
        self.name = name
        self.retries = retries
        self.retry_delay_seconds = retry_delay_seconds
        self.stage_retries = stage_retries
        self.stage_retry_delay_seconds = stage_retry_delay_seconds
        self.persist_result = persist_result
        self.stages: dict[str, list[Task[Any, Any]]] = {"extract": [], "transform": [], "load": []}
        self.hooks: dict[str, list[Callable[..., Any]]] = {"success": [], "failure": [], "complete": []}
        self.runs: list[PipelineRun] = []
        self._current: PipelineRun | None = None

    # -- declaring stages and hooks ------------------------------------------------------------
    def _stage(self, kind: str, fn: Callable[..., Any] | None, options: dict[str, Any]) -> Any:
        def add(f: Callable[..., Any]) -> Callable[..., Any]:
            opts = {"retries": self.stage_retries, "retry_delay_seconds": self.stage_retry_delay_seconds,
                    "tags": [kind], **options}
            self.stages[kind].append(Task(f, **opts))
            return f
        return add(fn) if fn is not None else add

    def extract(self, fn: Callable[..., Any] | None = None, **options: Any) -> Any:
        return self._stage("extract", fn, options)

    def transform(self, fn: Callable[..., Any] | None = None, **options: Any) -> Any:
        return self._stage("transform", fn, options)

    def load(self, fn: Callable[..., Any] | None = None, **options: Any) -> Any:
        return self._stage("load", fn, options)

    def on_success(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        self.hooks["success"].append(fn)
        return fn

    def on_failure(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        self.hooks["failure"].append(fn)
        return fn

    def on_complete(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        self.hooks["complete"].append(fn)
        return fn

    @property
    def last_run(self) -> PipelineRun | None:
        return self.runs[-1] if self.runs else None

    # -- running ----------------------------------------------------------------------------------
    def run(self, **kwargs: Any) -> PipelineRun:
        """Run every stage once; return the PipelineRun, or re-raise a stage's error after the hooks."""
        if not self.stages["extract"]:
            raise ValueError(f"pipeline {self.name!r} has no @extract stage")
        record = PipelineRun(pipeline_name=self.name, started_at=utcnow())
        self.runs.append(record)
        self._current = record
        flow: Flow[..., Any] = Flow(self._body, name=self.name, retries=self.retries,
                                    retry_delay_seconds=self.retry_delay_seconds,
                                    persist_result=self.persist_result)
        state = run_flow(flow, dict(kwargs))
        record.completed_at = utcnow()
        record.metrics["duration_seconds"] = (record.completed_at - record.started_at).total_seconds()  # type: ignore[operator]
        if state.is_completed():
            record.status = "success"
            self._call_hooks("success", record, None)
            self._call_hooks("complete", record, None)
            return record
        error = state.error or RuntimeError(state.message or state.name)
        record.status = "failed"
        message = first_line(error)
        if message and message not in record.errors:
            record.errors.append(message)
        self._call_hooks("failure", record, error)
        self._call_hooks("complete", record, error)
        try:
            error.pipeline_run = record  # type: ignore[attr-defined]
        except AttributeError:
            pass
        raise error

    def _body(self, **params: Any) -> Any:
        record = self._current
        assert record is not None
        ctx = current_flow_run()
        record.run_id = ctx.flow_run_id if ctx else ""
        record.rows_extracted = record.rows_loaded = 0
        t0 = time.perf_counter()
        data = self._extract(record, params)
        t1 = time.perf_counter()
        for stage in self.stages["transform"]:
            data = stage(data)
        t2 = time.perf_counter()
        for stage in self.stages["load"]:
            loaded = stage(data)
            if isinstance(loaded, (int, float)) and not isinstance(loaded, bool):
                record.rows_loaded += int(loaded)
        t3 = time.perf_counter()
        record.metrics.update({"extract_seconds": t1 - t0, "transform_seconds": t2 - t1,
                               "load_seconds": t3 - t2, "rows_extracted": record.rows_extracted,
                               "rows_loaded": record.rows_loaded,
                               "rows_transformed": count_rows(data)})
        for key, value in record.metrics.items():
            log_metric(key, value)
        if ctx is not None:
            ctx.rows_loaded = record.rows_loaded
        return record.rows_loaded

    def _extract(self, record: PipelineRun, params: dict[str, Any]) -> Any:
        outputs: dict[str, Any] = {}
        for stage in self.stages["extract"]:
            value = stage(**_accepted(stage, params))
            record.rows_extracted += count_rows(value)
            outputs[stage.name] = value
        if len(outputs) == 1:
            return next(iter(outputs.values()))
        return outputs

    def _call_hooks(self, kind: str, record: PipelineRun, error: BaseException | None) -> None:
        for hook in self.hooks[kind]:
            try:
                _call_hook(hook, record, error)
            except Exception as exc:  # a hook never hides the run's own outcome
                msg = f"{kind} hook {getattr(hook, '__name__', hook)} raised {first_line(exc)}"
                log.warning("pipeline %s: %s", self.name, msg)
                record.errors.append(msg)


def _accepted(stage: Task[Any, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The run's keyword arguments this stage's function declares (all of them if it takes **kwargs)."""
    sig = stage.signature.parameters
    if any(p.kind is p.VAR_KEYWORD for p in sig.values()):
        return dict(params)
    return {k: v for k, v in params.items() if k in sig}


_RUN_NAMES = ("run", "pipeline_run", "record", "result")
_ERROR_NAMES = ("error", "exc", "exception", "err")


def _call_hook(hook: Callable[..., Any], record: PipelineRun, error: BaseException | None) -> Any:
    """Call a hook as ``hook(run)``, ``hook(run, error)`` or with keywords, whichever it declares."""
    params = list(inspect.signature(hook).parameters.values())
    if any(p.kind is p.VAR_KEYWORD for p in params) and not any(
            p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params):
        return hook(run=record, error=error)
    kwargs: dict[str, Any] = {}
    positional: list[Any] = []
    for p in params:
        if p.kind is p.KEYWORD_ONLY:
            if p.name in _RUN_NAMES:
                kwargs[p.name] = record
            elif p.name in _ERROR_NAMES:
                kwargs[p.name] = error
        elif p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty:
            positional.append(error if p.name in _ERROR_NAMES or len(positional) == 1 else record)
        elif p.kind is p.VAR_KEYWORD:
            kwargs.setdefault("error", error) if "error" not in kwargs else None
    return hook(*positional, **kwargs)
