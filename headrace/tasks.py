"""Task helpers under the module path the older peer used (``prefect.tasks``)."""

from headrace.engine import Task, exponential_backoff, task, task_input_hash

__all__ = ["Task", "exponential_backoff", "task", "task_input_hash"]
