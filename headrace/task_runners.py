"""Task runners under the module path the older peer used (``prefect.task_runners``)."""

from headrace.engine import (
    ConcurrentTaskRunner,
    ProcessPoolTaskRunner,
    SequentialTaskRunner,
    TaskRunner,
    ThreadPoolTaskRunner,
)
from headrace.spark.dask_runner import DaskTaskRunner

__all__ = ["ConcurrentTaskRunner", "DaskTaskRunner", "ProcessPoolTaskRunner", "SequentialTaskRunner", "TaskRunner",
           "ThreadPoolTaskRunner"]
