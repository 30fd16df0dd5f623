"""The run state types shared by every part (engine, store, schedule, CLI, web page).

This module is the ground floor: it imports nothing of headrace. A run's state
has a *type* (what code decides on) and a *name* (what people read):
``Retrying`` is a running attempt after a failed one, ``Cached`` a completion
that reused a stored result, ``TimedOut`` a failure, ``Late`` a scheduled run
past its time.
"""

from __future__ import annotations

from enum import Enum


class StateType(str, Enum):
    """The seven state types; ``is_terminal`` says whether a run in it is over."""

    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CRASHED = "CRASHED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def is_active(self) -> bool:
        """Claimed or running: a process is (or should be) working on it."""
        return self is StateType.PENDING or self is StateType.RUNNING

    def __str__(self) -> str:
        return self.value


_TERMINAL = frozenset({StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED})

# Tuples of the stored values, for SQL ``IN (...)`` filters.
TERMINAL_TYPES: tuple[str, ...] = tuple(t.value for t in StateType if t.is_terminal)
ACTIVE_TYPES: tuple[str, ...] = (StateType.PENDING.value, StateType.RUNNING.value)
NOT_STARTED_TYPES: tuple[str, ...] = (StateType.SCHEDULED.value, StateType.PENDING.value)
UNFINISHED_TYPES: tuple[str, ...] = (StateType.SCHEDULED.value, *ACTIVE_TYPES)

# Every named state and its type.
STATE_TYPES: dict[str, StateType] = {
    "Scheduled": StateType.SCHEDULED,
    "Late": StateType.SCHEDULED,
    "Pending": StateType.PENDING,
    "Running": StateType.RUNNING,
    "Retrying": StateType.RUNNING,
    "Completed": StateType.COMPLETED,
    "Cached": StateType.COMPLETED,
    "Failed": StateType.FAILED,
    "TimedOut": StateType.FAILED,
    "Crashed": StateType.CRASHED,
    "Cancelled": StateType.CANCELLED,
}

# The plain name of each type, used when a state is set by type alone.
DEFAULT_NAMES: dict[StateType, str] = {t: t.value.capitalize() for t in StateType}


def state_type(name_or_type: str) -> StateType:
    """The type of a state name (``"Retrying"``) or type value (``"RUNNING"``)."""
    found = STATE_TYPES.get(name_or_type)
    if found is not None:
        return found
    return StateType(name_or_type.upper())
