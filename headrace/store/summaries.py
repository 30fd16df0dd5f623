"""Per flow run summaries, kept up to date as records are written, and re-run plans.

``update_run_summaries`` adds one written batch to its flow runs' summaries: a
task run counts once when first written and once more when it reaches a final
state (the writer never writes a task run again after that), so the counts are
exact without reading the task runs back. The web page reads the summaries;
nothing recounts task runs per page.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from headrace.store.schema import (
    CHECKS_FAILED_METRIC,
    QUARANTINED_METRIC,
    TERMINAL,
    rebuild_run_summaries,
    rerun_plans,
    run_summaries,
)

COUNTERS = ("tasks_total", "tasks_completed", "tasks_cached", "tasks_failed", "tasks_cancelled", "tasks_retried",
            "rows_in", "rows_out", "rows_quarantined", "quality_gates", "checks_failed")
_QUARANTINED = QUARANTINED_METRIC.replace("%", "*")
_CHECKS_FAILED = CHECKS_FAILED_METRIC.replace("%", "*")

__all__ = ["COUNTERS", "update_run_summaries", "rebuild_run_summaries", "save_rerun_plan", "rerun_plan"]


def _task_counts(row: dict[str, Any], first_write: bool) -> dict[str, int]:
    out = {"tasks_total": 1} if first_write else {}
    state = row.get("state_type")
    if state not in TERMINAL:
        return out
    if state == "COMPLETED":
        out["tasks_completed"] = 1
        if row.get("state_name") == "Cached":
            out["tasks_cached"] = 1
    elif state == "CANCELLED":
        out["tasks_cancelled"] = 1
    else:
        out["tasks_failed"] = 1
    if (row.get("attempts") or 0) > 1:
        out["tasks_retried"] = 1
    return out


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


def summary_deltas(*, task_inserts: Iterable[dict[str, Any]] = (), task_updates: Iterable[dict[str, Any]] = (),
                   io_rows: Iterable[dict[str, Any]] = (),
                   metric_rows: Iterable[dict[str, Any]] = ()) -> dict[str, dict[str, int]]:
    """What one batch adds to each flow run's counters (flow run id -> counter -> amount)."""
    deltas: dict[str, dict[str, int]] = {}
    parts = [(r, _task_counts(r, True)) for r in task_inserts]
    parts += [(r, _task_counts(r, False)) for r in task_updates]
    parts += [(r, _io_counts(r)) for r in io_rows]
    parts += [(r, _metric_counts(r)) for r in metric_rows]
    for row, counts in parts:
        run_id = row.get("flow_run_id")
        if not run_id or not counts:
            continue
        into = deltas.setdefault(run_id, {})
        for key, value in counts.items():
            into[key] = into.get(key, 0) + value
    return deltas


def update_run_summaries(conn: Connection, dialect: str, now: datetime, **batch: Iterable[dict[str, Any]]) -> None:
    """Add one written batch (task inserts and updates, dataset I/O, metrics) to its runs' summaries.

    Called once per batch, inside the batch's transaction, so a summary never
    disagrees with the records it sums.
    """
    deltas = summary_deltas(**batch)
    if not deltas:
        return
    stmt = _upsert(dialect)
    conn.execute(stmt, [{"flow_run_id": run_id, "updated_at": now, **{c: d.get(c, 0) for c in COUNTERS}}
                        for run_id, d in deltas.items()])


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
