"""Run observers told of final states the store sets outside the engine.

Crash marking (a run whose process is gone becomes Crashed) and cancelling a Scheduled run move
runs no engine is running, so no engine tells the observers (OpenLineage) that they ended. The
store does it, from the process that records the change, once the transaction has committed:
``describe`` reads what an observer needs inside the transaction, ``announce`` tells them after.
With every observer off (``active_observers()`` empty) neither reads nor calls anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from headrace.run_observers import active_observers, notify
from headrace.store.base import as_utc
from headrace.store.schema import flow_runs, task_runs


def describe(conn: Connection, kind: str, run_ids: Sequence[str], *, started: bool | dict[str, bool],
             ) -> tuple[tuple[Any, ...], list[dict[str, Any]]]:
    """(the observers of this process, what each needs of ``run_ids``); ``started``: whether the
    runs had started (a START was emitted for them), for all or per run id."""
    observers = active_observers() if run_ids else ()
    if not observers:
        return (), []
    ids = list(run_ids)
    if kind == "flow":
        rows = conn.execute(select(flow_runs.c.id, flow_runs.c.flow_name, flow_runs.c.parent_run_id,
                                   flow_runs.c.expected_start).where(flow_runs.c.id.in_(ids))).all()
        parents = {r.parent_run_id for r in rows if r.parent_run_id}
        names = dict(conn.execute(select(flow_runs.c.id, flow_runs.c.flow_name)
                                  .where(flow_runs.c.id.in_(parents))).all()) if parents else {}
        runs = [{"flow_run_id": r.id, "flow_name": r.flow_name, "parent_run_id": r.parent_run_id,
                 "parent_flow_name": names.get(r.parent_run_id), "scheduled_time": as_utc(r.expected_start),
                 "started": _started(started, r.id)} for r in rows]
    else:
        rows = conn.execute(select(task_runs.c.id, task_runs.c.task_name, task_runs.c.flow_run_id,
                                   flow_runs.c.flow_name)
                            .join(flow_runs, flow_runs.c.id == task_runs.c.flow_run_id, isouter=True)
                            .where(task_runs.c.id.in_(ids))).all()
        runs = [{"task_run_id": r.id, "task_name": r.task_name, "flow_run_id": r.flow_run_id,
                 "flow_name": r.flow_name, "started": _started(started, r.id)} for r in rows]
    return observers, runs


def _started(started: bool | dict[str, bool], run_id: str) -> bool:
    return started if isinstance(started, bool) else started.get(run_id, True)


def announce(observers: tuple[Any, ...], kind: str, runs: list[dict[str, Any]], *, state: str, at: datetime,
             message: str | None) -> None:
    """Tell ``observers`` each of ``runs`` ended in ``state`` (after the transaction committed)."""
    for run in runs:
        if kind == "flow":
            notify(observers, "flow_ended", state=state, at=at, message=message, **run)
        else:
            notify(observers, "task_ended", state=state, at=at, message=message, **run)
