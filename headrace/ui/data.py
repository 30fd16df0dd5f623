"""What the run pages show, assembled once for the HTML pages and the JSON API alike."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from headrace.errors import RunNotFound
from headrace.store import views, views_data
from headrace.store.views_data import run_metrics

TERMINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
TASK_PAGE = 500


def _ms(value: datetime | None) -> int | None:
    return int(value.timestamp() * 1000) if value is not None else None


def get_run(store: Any, run_id: str) -> dict[str, Any]:
    run = views.flow_run(store, run_id)
    if run is None:
        raise RunNotFound(f"no flow run with id {run_id!r}; the runs page lists the runs that exist")
    return run


def segments(task: dict[str, Any], changes: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """The task's time line: waiting, each attempt (failed ones marked) and retry delays, in ms."""
    out: list[dict[str, Any]] = []
    attempt = 0
    for i, change in enumerate(changes):
        if change["to_type"] in TERMINAL:
            if change["to_name"] == "Cached":
                out.append({"kind": "cached", "start": _ms(change["at"]), "end": _ms(change["at"])})
            continue
        nxt = changes[i + 1]["at"] if i + 1 < len(changes) else (task.get("ended_at") or now)
        message = change.get("message") or ""
        if change["to_name"] == "Retrying" and "failed" in message:
            kind = "wait"
            if out and out[-1]["kind"] == "run":
                out[-1]["kind"] = "failed"
        elif change["to_type"] == "RUNNING":
            attempt += 1
            kind = "run"
        else:
            kind = "pending"
        out.append({"kind": kind, "start": _ms(change["at"]), "end": _ms(nxt), "attempt": attempt or None,
                    "note": message})
    if task.get("state_type") in ("FAILED", "CRASHED"):
        runs = [seg for seg in out if seg["kind"] == "run"]
        if runs:
            runs[-1]["kind"] = "failed"
    if not out and task.get("started_at"):
        out.append({"kind": "run", "start": _ms(task["started_at"]), "end": _ms(task.get("ended_at") or now),
                    "attempt": 1, "note": ""})
    return out


def gantt_rows(store: Any, tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One Gantt row per task run: its state, attempts and time segments."""
    now = datetime.now(UTC)
    changes = views.task_changes(store, [t["id"] for t in tasks])
    rows = []
    for t in tasks:
        rows.append({"id": t["id"], "key": t["task_key"], "state": t["state_name"], "type": t["state_type"],
                     "attempts": t["attempts"], "start": _ms(t["started_at"] or t["created_at"]),
                     "end": _ms(t["ended_at"]), "segments": segments(t, changes.get(t["id"], []), now),
                     "message": t.get("state_message") or ""})
    return rows


def flow_error(run: dict[str, Any], store: Any) -> str | None:
    """The traceback the engine kept for a failed flow run."""
    if run["state_type"] not in ("FAILED", "CRASHED"):
        return None
    raw = store.get_flow_run(run["id"]).get("result")
    try:
        detail = json.loads(raw) if raw else None
    except ValueError:
        return None
    return str(detail["error"]) if isinstance(detail, dict) and detail.get("error") else None


def run_detail(store: Any, run_id: str, task_after: views.Keyset | None = None) -> dict[str, Any]:
    """Everything the run page shows except logs (which page separately)."""
    run = get_run(store, run_id)
    tasks, next_tasks = views.task_runs_page(store, run["id"], after=task_after, limit=TASK_PAGE)
    metrics = run_metrics(store, run["id"])
    return {
        "run": run,
        "tasks": tasks,
        "next_tasks": next_tasks,
        "gantt": gantt_rows(store, tasks),
        "error": flow_error(run, store),
        "failed_tasks": [t for t in tasks if t["state_type"] in ("FAILED", "CRASHED")],
        "metrics": metrics,
        "quality": quality_of(store, run["id"]),
        "datasets": store.get_dataset_io(run["id"]),
    }


def quality_of(store: Any, run_id: str) -> dict[str, Any]:
    """The run's quality report: each gate's outcome and every check with its samples."""
    results, profiles = views_data.run_quality(store, run_id)
    gates = [p["profile"].get("gate") or {} for p in profiles]
    suites: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        suites.setdefault(r["suite"], []).append(r)
    return {"results": results, "gates": gates, "suites": suites,
            "passed": sum(1 for r in results if r["success"]),
            "quarantined": sum(int(g.get("rows_quarantined") or 0) for g in gates)}


def check_view(r: dict[str, Any]) -> dict[str, Any]:
    """One check as the page shows it: counts, observed value, samples and a history chart."""
    from headrace.quality.report import history_chart

    d = r.get("details") or {}
    res = d.get("result") or {}
    chart = ""
    if "history" in res:
        chart = history_chart(res["history"], res.get("observed_value"), res.get("min_value"),
                              res.get("max_value"), r["success"])
    return {"name": r["check_name"], "type": r["expectation_type"], "success": r["success"],
            "unexpected": res.get("unexpected_count"), "elements": res.get("element_count"),
            "percent": res.get("unexpected_percent"), "observed": res.get("observed_value"),
            "samples": (res.get("partial_unexpected_list") or [])[:20],
            "note": d.get("exception_info") or d.get("note") or "", "chart": chart, "at": r["at"]}
