"""States under the module path the older peer used (``prefect.states``)."""

from headrace.engine import State, StateType

__all__ = ["State", "StateType"]
