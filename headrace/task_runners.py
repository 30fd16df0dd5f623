"""Task runners under the module path the older peer used (``prefect.task_runners``)."""

from headrace.engine import (
    ConcurrentTaskRunner,
    ProcessPoolTaskRunner,
    SequentialTaskRunner,
    TaskRunner,
    ThreadPoolTaskRunner,
)

__all__ = ["ConcurrentTaskRunner", "ProcessPoolTaskRunner", "SequentialTaskRunner", "TaskRunner",
           "ThreadPoolTaskRunner"]
