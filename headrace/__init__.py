"""headrace: monitored, scheduled, self-healing data pipelines in one pip install.

The names users import live here; each is loaded on first use so that
``import headrace`` stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # engine
    "flow": "headrace.engine", "task": "headrace.engine", "Flow": "headrace.engine",
    "Task": "headrace.engine", "task_input_hash": "headrace.engine",
    "exponential_backoff": "headrace.engine", "get_run_logger": "headrace.engine",
    "ETLPipeline": "headrace.engine", "PipelineRun": "headrace.engine", "State": "headrace.engine",
    "StateType": "headrace.engine", "unmapped": "headrace.engine", "run_flow": "headrace.engine",
    "load_flow": "headrace.engine", "log_metric": "headrace.engine",
    "ThreadPoolTaskRunner": "headrace.engine", "ConcurrentTaskRunner": "headrace.engine",
    "ProcessPoolTaskRunner": "headrace.engine", "SequentialTaskRunner": "headrace.engine",
    "TaskFuture": "headrace.engine", "wait": "headrace.engine", "as_completed": "headrace.engine",
    # spark (the Dask runner; dask itself is imported only when a runner is made)
    "DaskTaskRunner": "headrace.spark.dask_runner",
    # schedule
    "Deployment": "headrace.schedule", "CronSchedule": "headrace.schedule",
    "IntervalSchedule": "headrace.schedule", "RRuleSchedule": "headrace.schedule",
    "SlackWebhook": "headrace.schedule", "Webhook": "headrace.schedule", "Email": "headrace.schedule",
    # quality (interactive style)
    "PandasDataset": "headrace.quality",
}
_MODULES = {"runtime": "headrace.runtime", "errors": "headrace.errors"}

__all__ = sorted([*_EXPORTS, *_MODULES, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
    elif name in _MODULES:
        value = import_module(_MODULES[name])
    else:
        raise AttributeError(f"module 'headrace' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


def _openlineage_observer() -> Any:
    """The OpenLineage emitter while ``HEADRACE_OPENLINEAGE_URL`` is set; otherwise nothing is imported."""
    from os import environ

    if not environ.get("HEADRACE_OPENLINEAGE_URL"):
        return None
    from headrace.lineage.openlineage import emitter_from_env

    return emitter_from_env()


def _observe_runs() -> None:
    # The top floor wires the lineage part to the engine's run starts and ends (the engine knows no lineage).
    from headrace.run_observers import add_observer_factory

    add_observer_factory(_openlineage_observer)


_observe_runs()


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from headrace import errors, runtime
    from headrace.engine import (
        ConcurrentTaskRunner,
        ETLPipeline,
        Flow,
        PipelineRun,
        ProcessPoolTaskRunner,
        SequentialTaskRunner,
        State,
        StateType,
        Task,
        TaskFuture,
        ThreadPoolTaskRunner,
        as_completed,
        exponential_backoff,
        flow,
        get_run_logger,
        load_flow,
        log_metric,
        run_flow,
        task,
        task_input_hash,
        unmapped,
        wait,
    )
    from headrace.spark.dask_runner import DaskTaskRunner
