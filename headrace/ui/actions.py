"""What the page's buttons do: re-runs with a cache preview, bulk retry and cancel, cancel.

Runs the page asks for are created as Scheduled runs due now; a worker (``headrace
serve`` or ``headrace worker``) claims and runs them like any scheduled run. A
re-run keeps ``retry_of`` and a plan of the task keys to run again; the worker
reuses the persisted results of the earlier run's other completed tasks.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from headrace.errors import FlowError, ParameterError
from headrace.store import views
from headrace.store.deployments import BACKFILL_MARK, slot_key
from headrace.store.summaries import save_rerun_plan
from headrace.ui.data import TERMINAL, get_run

RERUN_MODES = ("failure", "from", "subset")
BULK_LIMIT = 500
WAITING = ("SCHEDULED", "PENDING")


def _now() -> datetime:
    return datetime.now(UTC)


def run_key(deployment_id: str | None, run_id: str, kind: str, now: datetime) -> str:
    """The idempotency key of a run the page created. For a deployment it carries the
    backfill mark: such a run is no schedule slot, so skipping missed slots and
    pausing the deployment leave it alone."""
    if deployment_id:
        return f"{slot_key(deployment_id, now)}{BACKFILL_MARK}{kind}-{run_id}"
    return f"{kind}:{run_id}"


def rerun_selection(tasks: list[dict[str, Any]], mode: str, chosen: list[str]) -> set[str]:
    """The task keys to run again although they completed.

    ``failure``: none (every completed task with a stored result is reused).
    ``from``: the chosen task and every task created after it (a task can only use
    results of tasks called before it, so this covers everything downstream).
    ``subset``: exactly the chosen tasks.
    """
    if mode not in RERUN_MODES:
        raise ParameterError(f"mode={mode!r} is not a re-run mode; use one of {', '.join(RERUN_MODES)}")
    keys = [t["task_key"] for t in tasks]
    unknown = [k for k in chosen if k not in keys]
    if unknown:
        raise ParameterError(f"the run has no task {unknown[0]!r}; its tasks are {', '.join(keys[:20]) or 'none'}")
    if mode == "failure":
        return set()
    if not chosen:
        raise ParameterError(f"re-run mode {mode!r} needs a task; pick one (task=KEY)")
    if mode == "from":
        if len(chosen) != 1:
            raise ParameterError("re-run from a task takes exactly one task")
        return set(keys[keys.index(chosen[0]):])
    return set(chosen)


def _check_rerunnable(run: dict[str, Any]) -> None:
    if run["state_type"] not in TERMINAL:
        raise FlowError(f"flow run {run['id'][:8]} is {run['state_name']}; wait for it to end or cancel it first")
    if not run.get("entrypoint"):
        raise FlowError(f"flow run {run['id'][:8]} has no recorded entrypoint, so no worker can load its flow; "
                        "run the flow again instead")


def rerun_preview(store: Any, run_id: str, mode: str, chosen: list[str]) -> dict[str, Any]:
    """Per task of the earlier run: reused, likely served by the cache, or run again."""
    run = get_run(store, run_id)
    tasks = views.task_run_keys(store, run["id"])
    again = rerun_selection(tasks, mode, chosen)
    now = _now()
    plan = []
    for t in tasks:
        if t["task_key"] in again:
            outcome, why = "run", "chosen to run again"
        elif t["state_type"] == "COMPLETED" and t["result"]:
            outcome, why = "reuse", f"reuses its result from run {run['id'][:8]}"
        elif t["cache_key"] and store.get_cached(t["cache_key"], now) is not None:
            outcome, why = "cache", "likely skipped: the cache holds a result for the same inputs"
        elif t["state_type"] == "COMPLETED":
            outcome, why = "run", "runs again: its result was not persisted"
        else:
            outcome, why = "run", f"runs again: it ended {t['state_name']}"
        plan.append({"task_key": t["task_key"], "state": t["state_name"], "outcome": outcome, "why": why})
    counts = {k: sum(1 for p in plan if p["outcome"] == k) for k in ("reuse", "cache", "run")}
    return {"run": run, "mode": mode, "chosen": chosen, "tasks": plan, "counts": counts,
            "rerun_tasks": sorted(again), "allowed": _allowed(run)}


def _allowed(run: dict[str, Any]) -> str | None:
    try:
        _check_rerunnable(run)
    except FlowError as exc:
        return str(exc)
    return None


def create_rerun(store: Any, run_id: str, mode: str, chosen: list[str]) -> str:
    """Create the re-run (Scheduled, due now) and its plan; return its id."""
    run = get_run(store, run_id)
    _check_rerunnable(run)
    again = rerun_selection(views.task_run_keys(store, run["id"]), mode, chosen)
    now, new_id = _now(), os.urandom(16).hex()
    with store.transaction() as conn:  # the plan first: a worker may claim the run at once
        save_rerun_plan(conn, new_id, again, now)
    what = {"failure": "from its failure", "from": f"from task {chosen[0] if chosen else ''}",
            "subset": f"of {len(again)} chosen task(s)"}[mode]
    store.create_scheduled_runs([{
        "id": new_id, "flow_name": run["flow_name"], "name": f"{run['name'][:180]}-rerun",
        "state_type": "SCHEDULED", "state_name": "Scheduled",
        "state_message": f"re-run of {run['id'][:8]} {what}, asked for on the web page",
        "parameters": run["parameters"], "tags": run["tags"], "entrypoint": run["entrypoint"], "run_count": 0,
        "deployment_id": run["deployment_id"], "retry_of": run["id"],
        "idempotency_key": run_key(run["deployment_id"], new_id, "rerun", now), "expected_start": now,
        "created_at": now, "cancel_requested": False, "ended_at": None}])
    return new_id


def cancel_run(store: Any, run_id: str) -> str:
    """Cancel a run: a waiting one never starts, a running one stops at its next task boundary."""
    run = get_run(store, run_id)
    if run["state_type"] in TERMINAL:
        raise FlowError(f"flow run {run['id'][:8]} already ended {run['state_name']}")
    if run["state_type"] in WAITING and store.cancel_scheduled(run["id"], "cancelled on the web page", _now()):
        return "cancelled"
    store.request_cancel(run["id"])
    return "cancel requested"


def bulk_action(store: Any, flt: views.RunFilter, action: str, dry_run: bool,
                limit: int = BULK_LIMIT) -> dict[str, Any]:
    """Retry (from failure) or cancel the runs a filter matches, at most ``limit`` of them.

    A dry run lists what would happen and changes nothing.
    """
    if action not in ("retry", "cancel"):
        raise ParameterError(f"action={action!r} is not a bulk action; use retry or cancel")
    runs, _ = views.runs_page(store, flt, limit=limit)
    total, capped = views.count_runs(store, flt)
    eligible: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for run in runs:
        reason = _bulk_skip(run, action)
        (skipped if reason else eligible).append({"id": run["id"], "name": run["name"], "state": run["state_name"],
                                                  **({"reason": reason} if reason else {})})
    done = []
    if not dry_run:
        for item in eligible:
            try:
                done.append(create_rerun(store, item["id"], "failure", []) if action == "retry"
                            else cancel_run(store, item["id"]))
            except FlowError as exc:  # it changed state since it was listed
                item["error"] = str(exc)
    return {"action": action, "dry_run": dry_run, "matched": total, "matched_capped": capped,
            "considered": len(runs), "limit": limit, "eligible": eligible, "skipped": skipped, "done": done}


def _bulk_skip(run: dict[str, Any], action: str) -> str | None:
    if action == "cancel":
        return None if run["state_type"] not in TERMINAL else f"already ended {run['state_name']}"
    if run["state_type"] not in ("FAILED", "CRASHED", "CANCELLED"):
        return f"is {run['state_name']}; only failed, crashed or cancelled runs are retried"
    return None if run.get("entrypoint") else "has no recorded entrypoint"
