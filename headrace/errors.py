"""Every error headrace raises on purpose, in one tree.

    HeadraceError                 base of everything below
    ├── ConfigError               bad setting or environment value
    ├── StoreError                the run store cannot be used
    │   ├── StoreNotWritable      the store path or server refuses writes
    │   ├── StoreUnavailable      locked or connection dropped (retried first)
    │   └── SchemaVersionError    the store was written by a newer headrace
    ├── FlowError                 a flow or task was declared or called wrongly
    │   ├── InvalidDefinition     @flow/@task options that cannot work (also a ValueError)
    │   ├── FlowNotFound          FILE.py:FLOW does not name a flow
    │   ├── ParameterError        a parameter is missing or does not convert (also a TypeError)
    │   └── RunNotFound           no run with that id
    ├── TaskRunError              a task run ended badly
    │   ├── TaskTimeout           a task ran past its timeout_seconds
    │   ├── RemoteTaskError       a task process failed in a way that could not come back as itself
    │   └── UpstreamFailed        a task's input came from a failed task
    ├── FlowRunError              a flow run ended badly (wraps the cause)
    ├── ResultError               a result cannot be persisted or read back
    ├── DataIOError               reading or writing data failed
    │   ├── ConnectionFailed      the database or file system is unreachable
    │   ├── SchemaMismatch        the frame does not fit the target table
    │   └── DataFileError         a file is missing or unreadable
    ├── QualityError              a suite or expectation is malformed
    │   └── QualityGateFailed     a gate with on_failure="halt" stopped the run
    ├── ScheduleError             a schedule, deployment or backfill is invalid
    └── LineageError              a lineage question cannot be answered
        └── DatasetNotFound       no recorded dataset (or several) matches a name (also a LookupError)

Control-flow signals are not errors and live apart: ``Cancelled``.
"""

from __future__ import annotations


class HeadraceError(Exception):
    """Base of every error headrace raises on purpose."""


class ConfigError(HeadraceError):
    """A setting or environment variable has a value headrace cannot use."""


class StoreError(HeadraceError):
    """The run store cannot be opened, read or written."""


class StoreNotWritable(StoreError):
    """The store's location refuses writes."""


class StoreUnavailable(StoreError):
    """The store is locked by another process or its connection dropped; store methods retry it."""


class SchemaVersionError(StoreError):
    """The store's schema is newer than this headrace understands."""


class FlowError(HeadraceError):
    """A flow or task was declared or called in a way that cannot work."""


class InvalidDefinition(FlowError, ValueError):
    """A ``@flow`` or ``@task`` was declared with options that cannot work."""


class FlowNotFound(FlowError):
    """A FILE.py:FLOW reference does not name a flow."""


class ParameterError(FlowError, TypeError):
    """A flow parameter is missing, unknown, or does not convert to its type."""


class RunNotFound(FlowError):
    """No run with the given id exists in the store."""


class TaskRunError(HeadraceError):
    """A task run ended in a failed state."""


class TaskTimeout(TaskRunError):
    """A task ran past its ``timeout_seconds``."""


class RemoteTaskError(TaskRunError):
    """A task body in another process failed and its exception could not be sent back as itself."""


class UpstreamFailed(TaskRunError):
    """A task could not start because a task it depends on failed."""


class FlowRunError(HeadraceError):
    """A flow run ended in a failed state."""


class ResultError(HeadraceError):
    """A task result cannot be persisted or loaded back."""


class DataIOError(HeadraceError):
    """Reading or writing data failed."""


class ConnectionFailed(DataIOError):
    """A database or file system could not be reached."""


class SchemaMismatch(DataIOError):
    """A frame's columns or types do not fit the target table."""


class DataFileError(DataIOError):
    """A data file is missing, unreadable or malformed as a whole."""


class QualityError(HeadraceError):
    """An expectation or suite is malformed."""


class QualityGateFailed(QualityError):
    """A quality gate stopped the run; ``failed_checks`` names the checks."""

    def __init__(self, message: str, failed_checks: list[str] | None = None) -> None:
        super().__init__(message)
        self.failed_checks = list(failed_checks or [])


class ScheduleError(HeadraceError):
    """A schedule, deployment or backfill request is invalid."""


class LineageError(HeadraceError):
    """A lineage question cannot be answered."""


class DatasetNotFound(LineageError, LookupError):
    """No recorded dataset matches the name given, or several do."""


class Cancelled(BaseException):
    """Signal: the run was cancelled; raised at the next task boundary."""
