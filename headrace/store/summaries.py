"""Per flow run summaries, kept up to date as records are written, and re-run plans.

Task counts come from the one writer of run states
(``headrace.store.transitions.record_transitions`` calls ``add_task_summaries``):
a task run counts once when inserted and once more on its change into a final
state, whoever records it (the engine's batches, crash marking, a flow run's end
closing its unfinished tasks, cancels). Rows and quality counters come from each
written batch (``update_run_summaries``). So the counts are exact without reading
the task runs back; the web page reads the summaries and nothing recounts per page.
"""

from __future__ import annotations

import fnmatch
import functools
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from headrace.store.schema import (
    CHECKS_FAILED_METRIC,
    QUARANTINED_METRIC,
    rebuild_run_summaries,
    rerun_plans,
    run_summaries,
)

COUNTERS = ("tasks_total", "tasks_completed", "tasks_cached", "tasks_failed", "tasks_cancelled", "tasks_retried",
            "rows_in", "rows_out", "rows_quarantined", "quality_gates", "checks_failed")
_QUARANTINED = QUARANTINED_METRIC.replace("%", "*")
_CHECKS_FAILED = CHECKS_FAILED_METRIC.replace("%", "*")

__all__ = ["COUNTERS", "update_run_summaries", "add_task_summaries", "rebuild_run_summaries", "save_rerun_plan",
           "rerun_plan"]


def _task_end_counts(to_type: str, to_name: str, attempts: int | None) -> dict[str, int]:
    """What a task run's change into the final ``to_type`` adds (the same buckets as the recount)."""
    if to_type == "COMPLETED":
        out = {"tasks_completed": 1, **({"tasks_cached": 1} if to_name == "Cached" else {})}
    elif to_type == "CANCELLED":
        out = {"tasks_cancelled": 1}
    else:
        out = {"tasks_failed": 1}
    if (attempts or 0) > 1:
        out["tasks_retried"] = 1
    return out


def task_summary_deltas(inserted: Iterable[Mapping[str, Any]],
                        ended: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> dict[str, dict[str, int]]:
    """Counters per flow run for task runs ``inserted`` and ``ended`` (a final change with its run's row)."""
    parts = [(r, {"tasks_total": 1}) for r in inserted]
    parts += [(r, _task_end_counts(c["to_type"], c["to_name"], r.get("attempts"))) for c, r in ended]
    return _add_up(parts)


def _metric_counts(row: dict[str, Any]) -> dict[str, int]:
    name = str(row.get("name") or "")
    if fnmatch.fnmatchcase(name, _QUARANTINED):
        return {"rows_quarantined": int(row["value"])}
    if fnmatch.fnmatchcase(name, _CHECKS_FAILED):
        return {"quality_gates": 1, "checks_failed": int(row["value"])}
    return {}


def _io_counts(row: dict[str, Any]) -> dict[str, int]:
    rows = row.get("rows")
    if not rows:
        return {}
    return {"rows_in" if row.get("direction") == "input" else "rows_out": int(rows)}


def summary_deltas(*, io_rows: Iterable[dict[str, Any]] = (),
                   metric_rows: Iterable[dict[str, Any]] = ()) -> dict[str, dict[str, int]]:
    """What one batch's records add to each flow run's counters (flow run id -> counter -> amount)."""
    parts = [(r, _io_counts(r)) for r in io_rows]
    parts += [(r, _metric_counts(r)) for r in metric_rows]
    return _add_up(parts)


def _add_up(parts: Iterable[tuple[Mapping[str, Any], dict[str, int]]]) -> dict[str, dict[str, int]]:
    deltas: dict[str, dict[str, int]] = {}
    for row, counts in parts:
        run_id = row.get("flow_run_id")
        if run_id and counts:
            _merged(deltas, {run_id: counts})
    return deltas


def update_run_summaries(conn: Connection, dialect: str, now: datetime, *,
                         tally: dict[str, dict[str, int]] | None = None, **batch: Iterable[dict[str, Any]]) -> None:
    """Add one written batch's records (dataset I/O, metrics), and the task counts its state changes
    gathered in ``tally`` (see ``add_task_summaries``), to its runs' summaries in one statement.

    Called once per batch, inside the batch's transaction, so a summary never
    disagrees with the records it sums.
    """
    add_summaries(conn, dialect, now, _merged(tally or {}, summary_deltas(**batch)))


def add_task_summaries(conn: Connection, inserted: Iterable[Mapping[str, Any]],
                       ended: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]],
                       tally: dict[str, dict[str, int]] | None = None) -> None:
    """Count task runs ``inserted`` and ``ended`` (see ``task_summary_deltas``), in the caller's
    transaction; with ``tally``, only gather them there for the caller to write."""
    deltas = task_summary_deltas(inserted, ended)
    if tally is not None:
        _merged(tally, deltas)
    else:
        add_summaries(conn, conn.dialect.name, datetime.now(UTC), deltas)


def _merged(into: dict[str, dict[str, int]], more: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    for run_id, counts in more.items():
        mine = into.setdefault(run_id, {})
        for key, value in counts.items():
            mine[key] = mine.get(key, 0) + value
    return into


def add_summaries(conn: Connection, dialect: str, now: datetime, deltas: dict[str, dict[str, int]]) -> None:
    """Add ``deltas`` (flow run id -> counter -> amount) to the summaries."""
    if not deltas:
        return
    stmt = _upsert(dialect)
    conn.execute(stmt, [{"flow_run_id": run_id, "updated_at": now, **{c: d.get(c, 0) for c in COUNTERS}}
                        for run_id, d in deltas.items()])


@functools.lru_cache(maxsize=4)
def _upsert(dialect: str) -> Any:
    from sqlalchemy.dialects import postgresql, sqlite

    stmt: Any = (postgresql if dialect == "postgresql" else sqlite).insert(run_summaries)
    added = {c: run_summaries.c[c] + stmt.excluded[c] for c in COUNTERS}
    return stmt.on_conflict_do_update(index_elements=[run_summaries.c.flow_run_id],
                                      set_={**added, "updated_at": stmt.excluded.updated_at})


def save_rerun_plan(conn: Connection, flow_run_id: str, rerun_tasks: Iterable[str], now: datetime) -> None:
    """Record which of the earlier run's task keys the re-run ``flow_run_id`` runs again."""
    conn.execute(insert(rerun_plans).values(flow_run_id=flow_run_id, created_at=now,
                                            rerun_tasks=json.dumps(sorted(set(rerun_tasks)))))


def rerun_plan(store: Any, flow_run_id: str) -> frozenset[str]:
    """The task keys a re-run must run again although the earlier run completed them."""
    with store.read() as conn:
        raw = conn.execute(select(rerun_plans.c.rerun_tasks)
                           .where(rerun_plans.c.flow_run_id == flow_run_id)).scalar()
    return frozenset(json.loads(raw)) if raw else frozenset()
