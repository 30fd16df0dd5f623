"""Futures returned by ``task.submit`` and ``task.map``."""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Iterable, Iterator
from typing import Any, Generic, TypeVar

from headrace.engine.states import State

R = TypeVar("R")


class TaskFuture(Generic[R]):
    """A task run in progress: ``result()`` waits and returns (or raises), ``state`` peeks."""

    def __init__(self, future: cf.Future[State], task_name: str, task_run_id: str) -> None:
        self._future = future
        self.task_name = task_name
        self.task_run_id = task_run_id

    def wait(self, timeout: float | None = None) -> State | None:
        """Wait for the run to end; return its final state, or ``None`` on timeout."""
        try:
            return self._future.result(timeout=timeout)
        except cf.TimeoutError:
            return None

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> R:
        state = self._future.result(timeout=timeout)
        value: R = state.result(raise_on_failure=raise_on_failure)
        return value

    @property
    def state(self) -> State:
        if self._future.done():
            return self._future.result()
        return State("Running" if self._future.running() else "Pending")

    def done(self) -> bool:
        return self._future.done()

    def add_done_callback(self, fn: Any) -> None:
        self._future.add_done_callback(lambda _f: fn(self))

    def __repr__(self) -> str:
        return f"<TaskFuture {self.task_name} {self.state.name}>"


class TaskFutureList(list[TaskFuture[R]]):
    """The futures of ``task.map``; ``result()`` returns every result in order."""

    def wait(self, timeout: float | None = None) -> None:
        cf.wait([f._future for f in self], timeout=timeout)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> list[R]:
        return [f.result(timeout=timeout, raise_on_failure=raise_on_failure) for f in self]


def wait(futures: Iterable[TaskFuture[Any]],
         timeout: float | None = None) -> tuple[set[TaskFuture[Any]], set[TaskFuture[Any]]]:
    """Wait for several futures; return ``(done, not_done)``."""
    futures = list(futures)
    by_inner = {f._future: f for f in futures}
    done, not_done = cf.wait(list(by_inner), timeout=timeout)
    return {by_inner[f] for f in done}, {by_inner[f] for f in not_done}


def as_completed(futures: Iterable[TaskFuture[Any]], timeout: float | None = None) -> Iterator[TaskFuture[Any]]:
    by_inner = {f._future: f for f in futures}
    for inner in cf.as_completed(list(by_inner), timeout=timeout):
        yield by_inner[inner]


class unmapped:  # noqa: N801 - the name users know
    """Wrap an argument of ``task.map`` that every mapped run receives whole."""

    def __init__(self, value: Any) -> None:
        self.value = value
