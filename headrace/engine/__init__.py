"""The engine: ``@task``, ``@flow``, ``ETLPipeline``, states, retries, caching and runners."""

from headrace.engine.context import (
    current_flow_run,
    current_task_run,
    get_run_context,
    log_metric,
    record_dataset,
)
from headrace.engine.flow import Flow, flow
from headrace.engine.flowrun import run_flow
from headrace.engine.futures import TaskFuture, as_completed, wait
from headrace.engine.hashing import task_input_hash
from headrace.engine.loader import load_flow
from headrace.engine.logs import get_run_logger
from headrace.engine.pipeline import ETLPipeline, PipelineRun
from headrace.engine.retries import exponential_backoff
from headrace.engine.runners import (
    ConcurrentTaskRunner,
    ProcessPoolTaskRunner,
    SequentialTaskRunner,
    TaskRunner,
    ThreadPoolTaskRunner,
)
from headrace.engine.states import State, StateType
from headrace.engine.task import Task, task, unmapped

__all__ = [
    "ConcurrentTaskRunner", "ETLPipeline", "Flow", "PipelineRun", "ProcessPoolTaskRunner",
    "SequentialTaskRunner", "State", "StateType", "Task", "TaskFuture", "TaskRunner",
    "ThreadPoolTaskRunner", "as_completed", "current_flow_run", "current_task_run",
    "exponential_backoff", "flow", "get_run_context", "get_run_logger", "load_flow", "log_metric",
    "record_dataset", "run_flow", "task", "task_input_hash", "unmapped", "wait",
]
