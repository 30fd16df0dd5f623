"""Observers of run starts and ends: how a part above the engine (OpenLineage) hears of runs.

A part registers a factory with ``add_observer_factory``. At each flow run's start (and each
task run outside a flow) the engine calls ``active_observers()``: every factory returns an
observer, or ``None`` when its setting is off. With no observer the engine calls nothing.

An observer has four keyword-only methods, each taking ``**kwargs`` for the future:
``flow_started``, ``flow_ended``, ``task_started`` and ``task_ended``; ``notify`` calls one
on each observer and logs (never raises) what an observer raised: an observer never changes
a run's outcome. This module is the ground floor (it uses only ``headrace.secrets``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("headrace.engine")

_factories: list[Callable[[], Any]] = []


def add_observer_factory(factory: Callable[[], Any]) -> None:
    """Call ``factory`` at each run's start; what it returns (if not ``None``) observes the run."""
    if factory not in _factories:
        _factories.append(factory)


def active_observers() -> tuple[Any, ...]:
    """The observers of a run starting now (empty when every setting is off)."""
    if not _factories:
        return ()
    found = []
    for factory in _factories:
        try:
            observer = factory()
        except Exception as exc:  # a broken setting is logged, the run goes on unobserved
            from headrace.secrets import redact

            log.warning("run observer %s could not start: %s", getattr(factory, "__name__", factory),
                        redact(str(exc)))
            continue
        if observer is not None:
            found.append(observer)
    return tuple(found)


def notify(observers: tuple[Any, ...], method: str, **kwargs: Any) -> None:
    """Call ``method`` on each observer with ``kwargs``; what an observer raises is logged."""
    for observer in observers:
        try:
            getattr(observer, method)(**kwargs)
        except Exception as exc:
            from headrace.secrets import redact

            log.warning("run observer %s.%s raised %s: %s", type(observer).__name__, method,
                        type(exc).__name__, redact(str(exc)))
