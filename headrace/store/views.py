"""Read-only queries for the web page: runs, task runs, logs and the change feed.

Every list is bounded and keyset-paginated (the cursor is the last row's sort
key, never an offset), and counts stop at a cap, so a page costs the same on a
store with a hundred runs or a hundred million.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, tuple_

from headrace.store.base import as_utc
from headrace.store.runs import _row
from headrace.store.schema import flow_runs, logs, run_summaries, state_changes, task_runs
from headrace.store.summaries import COUNTERS

MAX_PAGE = 500
COUNT_CAP = 10_000
SEARCH_SCAN = 20_000          # log lines one search request looks through at most
STATE_TYPES = ("SCHEDULED", "PENDING", "RUNNING", "COMPLETED", "FAILED", "CRASHED", "CANCELLED")
STATE_NAMES = ("Scheduled", "Late", "Pending", "Running", "Retrying", "Completed", "Cached", "Failed",
               "TimedOut", "Crashed", "Cancelled")

Keyset = tuple[datetime, str]

__all__ = [
    "COUNT_CAP", "MAX_PAGE", "STATE_NAMES", "STATE_TYPES", "Keyset", "RunFilter", "changes_after", "count_runs",
    "flow_run", "last_change_id", "logs_page", "runs_by_ids", "runs_page", "task_changes", "task_runs_page",
    "task_run_keys", "task_runs_by_ids",
]


@dataclass(frozen=True)
class RunFilter:
    """Which flow runs a list shows; empty fields do not filter.

    ``states`` holds state types (``FAILED``) or state names (``TimedOut``).
    ``since``/``until`` bound the creation time (UTC).
    """

    flows: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    tag: str | None = None
    deployment_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    name: str | None = None
    ids: tuple[str, ...] = ()

    def conditions(self) -> list[Any]:
        c = flow_runs.c
        out: list[Any] = []
        if self.flows:
            out.append(c.flow_name.in_(self.flows))
        if self.states:
            types = [s for s in self.states if s in STATE_TYPES]
            names = [s for s in self.states if s not in STATE_TYPES]
            by_type, by_name = c.state_type.in_(types), c.state_name.in_(names)
            # One condition alone, so the (state_type, created_at) index serves the common case.
            out.append(or_(by_type, by_name) if types and names else by_type if types else by_name)
        if self.tag:
            out.append(c.tags.contains(f'"{self.tag}"', autoescape=True))
        if self.deployment_id:
            out.append(c.deployment_id == self.deployment_id)
        if self.since:
            out.append(c.created_at >= self.since)
        if self.until:
            out.append(c.created_at < self.until)
        if self.name:
            out.append(c.name.contains(self.name, autoescape=True))
        if self.ids:
            out.append(c.id.in_(self.ids))
        return out


_RUN_COLUMNS = [flow_runs.c[k] for k in (
    "id", "flow_name", "name", "state_type", "state_name", "state_message", "parameters", "tags", "entrypoint",
    "run_count", "parent_run_id", "retry_of", "deployment_id", "expected_start", "created_at", "started_at",
    "ended_at", "heartbeat_at", "hostname", "worker", "rows_loaded", "cancel_requested")]
_SUMMARY_COLUMNS = [run_summaries.c[k] for k in COUNTERS]


def _runs_query() -> Any:
    return select(*_RUN_COLUMNS, *_SUMMARY_COLUMNS).select_from(
        flow_runs.outerjoin(run_summaries, run_summaries.c.flow_run_id == flow_runs.c.id))


def _summed(row: Any) -> dict[str, Any]:
    out = _row(row)
    for key in COUNTERS:
        out[key] = int(out[key] or 0)
    return out


def runs_page(store: Any, flt: RunFilter, *, after: Keyset | None = None,
              limit: int = 50) -> tuple[list[dict[str, Any]], Keyset | None]:
    """Newest first; ``after`` is the cursor returned with the previous page."""
    c = flow_runs.c
    query = _runs_query().where(*flt.conditions())
    if after is not None:
        query = query.where(tuple_(c.created_at, c.id) < tuple_(after[0], after[1]))
    query = query.order_by(c.created_at.desc(), c.id.desc()).limit(min(limit, MAX_PAGE) + 1)
    with store.read() as conn:
        rows = [_summed(r) for r in conn.execute(query).mappings()]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, ((rows[-1]["created_at"], rows[-1]["id"]) if more and rows else None)


def count_runs(store: Any, flt: RunFilter, cap: int = COUNT_CAP) -> tuple[int, bool]:
    """How many runs match, counting no further than ``cap``; the flag says the cap was hit."""
    inner = select(flow_runs.c.id).where(*flt.conditions()).limit(cap + 1).subquery()
    with store.read() as conn:
        n = int(conn.execute(select(func.count()).select_from(inner)).scalar() or 0)
    return min(n, cap), n > cap


def runs_by_ids(store: Any, ids: list[str]) -> list[dict[str, Any]]:
    if not ids:
        return []
    with store.read() as conn:
        return [_summed(r) for r in conn.execute(_runs_query().where(flow_runs.c.id.in_(ids[:MAX_PAGE]))).mappings()]


def flow_run(store: Any, run_id: str) -> dict[str, Any] | None:
    """One flow run with its summary (full id, or a unique prefix of at least 4 characters)."""
    with store.read() as conn:
        row = conn.execute(_runs_query().where(flow_runs.c.id == run_id)).mappings().first()
        if row is None and 4 <= len(run_id) < 32:
            rows = conn.execute(_runs_query().where(flow_runs.c.id.startswith(run_id, autoescape=True))
                                .limit(2)).mappings().all()
            row = rows[0] if len(rows) == 1 else None
    return _summed(row) if row is not None else None


# -- task runs -------------------------------------------------------------------------------------
def task_runs_page(store: Any, flow_run_id: str, *, after: Keyset | None = None,
                   limit: int = 200) -> tuple[list[dict[str, Any]], Keyset | None]:
    """A flow run's task runs in the order they were created."""
    c = task_runs.c
    query = select(task_runs).where(c.flow_run_id == flow_run_id)
    if after is not None:
        query = query.where(tuple_(c.created_at, c.id) > tuple_(after[0], after[1]))
    query = query.order_by(c.created_at, c.id).limit(min(limit, MAX_PAGE * 4) + 1)
    with store.read() as conn:
        rows = [_row(r) for r in conn.execute(query).mappings()]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, ((rows[-1]["created_at"], rows[-1]["id"]) if more and rows else None)


def task_runs_by_ids(store: Any, task_ids: list[str]) -> list[dict[str, Any]]:
    if not task_ids:
        return []
    with store.read() as conn:
        return [_row(r) for r in conn.execute(select(task_runs).where(task_runs.c.id.in_(task_ids[:MAX_PAGE * 4])))
                .mappings()]


def task_run_keys(store: Any, flow_run_id: str, limit: int = 10_000) -> list[dict[str, Any]]:
    """Key, name, state, cache key and result reference of a run's task runs, oldest first."""
    c = task_runs.c
    query = (select(c.id, c.task_key, c.task_name, c.state_type, c.state_name, c.cache_key, c.result,
                    c.created_at).where(c.flow_run_id == flow_run_id).order_by(c.created_at, c.id).limit(limit))
    with store.read() as conn:
        return [_row(r) for r in conn.execute(query).mappings()]


def task_changes(store: Any, task_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The state changes of these task runs (attempts, retries, cache hits), oldest first."""
    out: dict[str, list[dict[str, Any]]] = {}
    if not task_ids:
        return out
    c = state_changes.c
    query = (select(c.run_id, c.to_type, c.to_name, c.message, c.at)
             .where(c.run_id.in_(task_ids[:MAX_PAGE * 4])).order_by(c.run_id, c.id))
    with store.read() as conn:
        for r in conn.execute(query).mappings():
            out.setdefault(r["run_id"], []).append(_row(r))
    return out


# -- logs ------------------------------------------------------------------------------------------
def logs_page(store: Any, flow_run_id: str, *, task_run_id: str | None = None, after_id: int | None = None,
              before_id: int | None = None, limit: int = 200, search: str | None = None,
              min_level: int = 0) -> dict[str, Any]:
    """A page of log lines, oldest first.

    ``after_id`` pages forward, ``before_id`` backward (no cursor: the last page).
    A search looks through at most SEARCH_SCAN lines per request; ``next_after``
    then continues it.
    """
    c = logs.c
    where = [c.flow_run_id == flow_run_id]
    if task_run_id:
        where.append(c.task_run_id == task_run_id)
    if min_level:
        where.append(c.level >= min_level)
    limit = min(limit, MAX_PAGE * 2)
    if search:
        return _search(store, where, search, after_id, limit)
    backward = after_id is None
    if after_id is not None:
        where.append(c.id > after_id)
    if before_id is not None:
        where.append(c.id < before_id)
    order = c.id.desc() if backward else c.id
    with store.read() as conn:
        rows = [_row(r) for r in conn.execute(select(logs).where(*where).order_by(order).limit(limit + 1)).mappings()]
    more = len(rows) > limit
    rows = rows[:limit]
    if backward:
        rows.reverse()
    first, last = (rows[0]["id"], rows[-1]["id"]) if rows else (None, None)
    return {"lines": rows, "before": first if (backward and more) or (not backward and rows) else None,
            "after": last if rows else after_id, "more_after": not backward and more, "scanned": len(rows)}


def _search(store: Any, where: list[Any], text: str, after_id: int | None, limit: int) -> dict[str, Any]:
    c = logs.c
    if after_id is not None:
        where = [*where, c.id > after_id]
    window = select(c.id).where(*where).order_by(c.id).limit(SEARCH_SCAN).subquery()
    query = (select(logs).where(c.id.in_(select(window.c.id)), c.message.icontains(text, autoescape=True))
             .order_by(c.id).limit(limit + 1))
    with store.read() as conn:
        rows = [_row(r) for r in conn.execute(query).mappings()]
        scanned, end = conn.execute(select(func.count(), func.max(window.c.id))).one()
    more = len(rows) > limit
    rows = rows[:limit]
    if more:
        resume = rows[-1]["id"]
    else:
        resume = end if scanned >= SEARCH_SCAN else None
    return {"lines": rows, "before": None, "after": resume, "more_after": resume is not None,
            "scanned": int(scanned or 0)}


# -- the change feed (live pages) ------------------------------------------------------------------------
def last_change_id(store: Any) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.max(state_changes.c.id))).scalar() or 0)


def changes_after(store: Any, after_id: int, limit: int = 500) -> list[dict[str, Any]]:
    """State changes recorded after ``after_id``, with the flow run each belongs to."""
    c, t = state_changes.c, task_runs.c
    query = (select(c.id, c.run_id, c.run_kind, c.to_type, c.to_name, c.at, t.flow_run_id, t.task_key)
             .select_from(state_changes.outerjoin(task_runs, and_(c.run_kind == "task", t.id == c.run_id)))
             .where(c.id > after_id).order_by(c.id).limit(limit))
    with store.read() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
    for r in rows:
        r["at"] = as_utc(r["at"])
        if r["run_kind"] == "flow":
            r["flow_run_id"] = r["run_id"]
    return rows
