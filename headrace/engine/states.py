"""Run states: a string enum of types and the named states users see."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from headrace.errors import FlowRunError, TaskRunError
from headrace.state_types import STATE_TYPES, StateType

__all__ = ["STATE_TYPES", "RunView", "State", "StateType", "first_line"]


_MISSING = object()


@dataclass
class State:
    """A run's state: ``type`` for logic, ``name`` for people, and the result or error."""

    name: str
    message: str | None = None
    timestamp: datetime | None = None
    data: Any = field(default=_MISSING, repr=False)
    error: BaseException | None = field(default=None, repr=False)
    run_id: str | None = field(default=None, repr=False)   # the flow or task run it belongs to

    @property
    def type(self) -> StateType:
        return STATE_TYPES[self.name]

    def is_scheduled(self) -> bool:
        return self.type is StateType.SCHEDULED

    def is_pending(self) -> bool:
        return self.type is StateType.PENDING

    def is_running(self) -> bool:
        return self.type is StateType.RUNNING

    def is_completed(self) -> bool:
        return self.type is StateType.COMPLETED

    def is_failed(self) -> bool:
        return self.type is StateType.FAILED

    def is_crashed(self) -> bool:
        return self.type is StateType.CRASHED

    def is_cancelled(self) -> bool:
        return self.type is StateType.CANCELLED

    def is_final(self) -> bool:
        return self.type.is_terminal

    def result(self, raise_on_failure: bool = True) -> Any:
        """The run's return value; for a failed run, raise its error (or return it)."""
        if self.is_completed():
            return None if self.data is _MISSING else self.data
        error = self.error or _error_for(self)
        if raise_on_failure:
            raise error
        return error


def _error_for(state: State) -> Exception:
    if not state.type.is_terminal:
        return TaskRunError(f"the run is {state.name}, it has no result yet")
    return FlowRunError(f"the run ended {state.name}: {state.message or 'no message'}")


def first_line(error: BaseException | str | None) -> str:
    """``TypeName: first line of the message`` for one-line displays."""
    if error is None:
        return ""
    if isinstance(error, str):
        return error.strip().splitlines()[0] if error.strip() else ""
    text = str(error).strip()
    line = text.splitlines()[0] if text else ""
    return f"{type(error).__name__}: {line}" if line else type(error).__name__


class RunView:
    """What hooks and alerts see of a run: ``id``, ``name``, ``parameters``, ``error`` and more."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)

    def __repr__(self) -> str:
        return f"<Run {self.__dict__.get('name')} {self.__dict__.get('id')}>"
