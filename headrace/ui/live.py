"""Live pages: server-sent events of state changes, resumable, with a polling twin.

Every state change the store records has an increasing id; it is the event id.
A page that reconnects sends ``Last-Event-ID`` (or ``last_event_id=``) and gets
what it missed; a gap too long to replay yields a ``reset`` event and the page
reloads. ``GET /api/changes`` answers the same question once, for pages that
poll instead.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from starlette.concurrency import run_in_threadpool

from headrace.store import views
from headrace.ui.data import gantt_rows
from headrace.ui.render import iso, to_json

BATCH = 500
MAX_REPLAY = 5_000
HEARTBEAT_SECONDS = 15.0


def resume_point(header: str | None, query: str | None) -> int | None:
    for raw in (header, query):
        if raw and raw.strip().isdigit():
            return int(raw.strip())
    return None


def collect(store: Any, after: int, run_id: str | None, flt: views.RunFilter | None) -> dict[str, Any]:
    """Changes after ``after`` that matter to one run's page (``run_id``) or a runs list (``flt``)."""
    changes = views.changes_after(store, after, BATCH)
    last = changes[-1]["id"] if changes else after
    if run_id is not None:
        changes = [c for c in changes if c["flow_run_id"] == run_id]
    run_ids = list(dict.fromkeys(c["flow_run_id"] for c in changes if c["flow_run_id"]))
    runs = views.runs_by_ids(store, run_ids)
    if flt is not None:
        narrowed = replace(flt, ids=tuple(run_ids)) if run_ids else None
        allowed = {r["id"] for r in views.runs_page(store, narrowed, limit=len(run_ids))[0]} if narrowed else set()
        runs = [r for r in runs if r["id"] in allowed]
    tasks: list[dict[str, Any]] = []
    if run_id is not None:
        task_ids = list(dict.fromkeys(c["run_id"] for c in changes if c["run_kind"] == "task"))
        tasks = _tasks(store, run_id, task_ids)
    return {"last_id": last, "more": len(changes) >= BATCH, "runs": [_run_json(r) for r in runs], "tasks": tasks,
            "changes": [{"id": c["id"], "run_id": c["run_id"], "kind": c["run_kind"], "state": c["to_name"],
                         "at": iso(c["at"])} for c in changes]}


def _tasks(store: Any, run_id: str, task_ids: list[str]) -> list[dict[str, Any]]:
    rows = sorted(views.task_runs_by_ids(store, task_ids), key=lambda r: (r["created_at"], r["id"]))
    return gantt_rows(store, [r for r in rows if r["flow_run_id"] == run_id])


def _run_json(run: dict[str, Any]) -> dict[str, Any]:
    keep = ("id", "name", "flow_name", "state_type", "state_name", "state_message", "started_at", "ended_at",
            "created_at", "rows_loaded", "tasks_total", "tasks_completed", "tasks_failed", "tasks_cached",
            "tasks_retried", "rows_in", "rows_out", "rows_quarantined", "checks_failed", "quality_gates")
    return {k: run.get(k) for k in keep}


async def event_stream(request: Any, store: Any, start: int | None, run_id: str | None,
                       flt: views.RunFilter | None, poll: float) -> AsyncIterator[str]:
    """The SSE body: ``change`` events, ``cursor`` events to move the resume point, heartbeats."""
    if start is None:
        start = await run_in_threadpool(views.last_change_id, store)
    elif await run_in_threadpool(_gap, store, start) > MAX_REPLAY:
        yield _event("reset", {"reason": "too many changes were missed; reload"}, None)
        start = await run_in_threadpool(views.last_change_id, store)
    yield f"retry: 3000\nid: {start}\nevent: hello\ndata: {json.dumps({'last_id': start})}\n\n"
    last, beat = start, time.monotonic()
    while not await request.is_disconnected():
        batch = await run_in_threadpool(collect, store, last, run_id, flt)
        if batch["runs"] or batch["tasks"]:
            yield _event("change", batch, batch["last_id"])
            beat = time.monotonic()
        elif batch["last_id"] != last or time.monotonic() - beat > HEARTBEAT_SECONDS:
            yield _event("cursor", {"last_id": batch["last_id"]}, batch["last_id"])
            beat = time.monotonic()
        last = batch["last_id"]
        if not batch["more"]:
            await asyncio.sleep(poll)


def _gap(store: Any, start: int) -> int:
    return views.last_change_id(store) - start


def _event(name: str, data: dict[str, Any], event_id: int | None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {to_json(data)}\n\n"
