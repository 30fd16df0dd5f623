"""The JSON API under /api/ (described at /docs and /openapi.json); the pages use it too."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from headrace.store import views, views_data
from headrace.ui import actions, deploy, filters, history, live
from headrace.ui.data import gantt_rows, get_run, quality_of, run_detail
from headrace.ui.lineage import dataset_graph
from headrace.ui.security import csrf_ok
from headrace.ui.web import Forbidden, NotFound, store_of

router = APIRouter(prefix="/api", tags=["api"])


def csrf_header(request: Request, x_csrf_token: str | None = Header(None)) -> None:
    """POSTs from a browser echo the page's CSRF cookie in ``X-CSRF-Token``; bearer clients need not."""
    if not csrf_ok(request.state, x_csrf_token):
        raise Forbidden("missing or wrong CSRF token: send the X-CSRF-Token header from the page "
                        "(or authenticate with Authorization: Bearer)")


class RerunBody(BaseModel):
    mode: str = Field("failure", description="failure, from (a task and everything after it) or subset")
    tasks: list[str] = Field(default_factory=list, description="task keys for mode from/subset")


class RunNowBody(BaseModel):
    parameters: dict[str, Any] = Field(default_factory=dict, description="override the deployment's parameters")


class BulkBody(BaseModel):
    action: str = Field(description="retry or cancel")
    dry_run: bool = Field(True, description="list what would happen, change nothing")
    filter: dict[str, str] = Field(default_factory=dict, description="flow, state, tag, since, until, q")


class BackfillBody(BaseModel):
    start: str
    end: str


# -- runs -------------------------------------------------------------------------------------------
@router.get("/health")
def health(request: Request) -> dict[str, Any]:
    """The page is up and its store answers."""
    store = store_of(request)
    return {"ok": True, "store": store.safe_url, "last_change": views.last_change_id(store)}


@router.get("/runs")
def list_runs(request: Request, cursor: str | None = None, limit: str | None = None,
              flow: list[str] = Query(default_factory=list, description="flow name(s)"),
              state: list[str] = Query(default_factory=list, description="state types or names, e.g. FAILED"),
              tag: str | None = None, deployment: str | None = Query(None, description="deployment name or id"),
              since: str | None = Query(None, description="ISO time or a span back from now: 24h, 7d"),
              until: str | None = None, q: str | None = Query(None, description="part of the run's name"),
              ) -> dict[str, Any]:
    """Flow runs, newest first, filtered by ``flow``, ``state``, ``tag``, ``since``, ``until``, ``q``.

    Keyset-paginated: pass ``next_cursor`` back as ``cursor``. ``count`` stops at 10,000.
    """
    store = store_of(request)
    flt = filters.run_filter(request.query_params, store)
    rows, nxt = views.runs_page(store, flt, after=filters.time_cursor(cursor), limit=filters.parse_limit(limit))
    total, capped = views.count_runs(store, flt)
    return {"runs": rows, "next_cursor": filters.encode_cursor(nxt), "count": total, "count_capped": capped}


@router.get("/runs/{run_id}")
def get_run_detail(request: Request, run_id: str) -> dict[str, Any]:
    """One flow run with its task runs (first 500; ``next_tasks`` pages on), errors, metrics, quality, datasets."""
    detail = run_detail(store_of(request), run_id)
    detail["task_runs"] = detail.pop("tasks")
    detail["next_tasks"] = filters.encode_cursor(detail["next_tasks"])
    return detail


@router.get("/runs/{run_id}/tasks")
def run_tasks(request: Request, run_id: str, cursor: str | None = None, limit: str | None = None) -> dict[str, Any]:
    """A page of the run's task runs with their Gantt segments (attempts, retries, cache hits)."""
    store = store_of(request)
    run = get_run(store, run_id)
    rows, nxt = views.task_runs_page(store, run["id"], after=filters.time_cursor(cursor),
                                     limit=filters.parse_limit(limit, 500, 2000))
    return {"task_runs": rows, "gantt": gantt_rows(store, rows), "next_cursor": filters.encode_cursor(nxt)}


@router.get("/runs/{run_id}/logs")
def run_logs(request: Request, run_id: str, task: str | None = None, q: str | None = None,
             after: str | None = None, before: str | None = None, level: str | None = None,
             limit: str | None = None) -> dict[str, Any]:
    """Log lines, oldest first: the last page, or ``after``/``before`` a line id; ``q`` searches."""
    store = store_of(request)
    run = get_run(store, run_id)
    return views.logs_page(store, run["id"], task_run_id=task or None, search=q or None,
                           after_id=filters.int_param("after", after), before_id=filters.int_param("before", before),
                           min_level=filters.int_param("level", level, 0, 100) or 0,
                           limit=filters.parse_limit(limit, 200, 1000))


@router.get("/runs/{run_id}/quality")
def run_quality(request: Request, run_id: str) -> dict[str, Any]:
    store = store_of(request)
    return quality_of(store, get_run(store, run_id)["id"])


@router.get("/runs/{run_id}/rerun-preview")
def rerun_preview(request: Request, run_id: str, mode: str = "failure",
                  task: list[str] = Query(default_factory=list)) -> dict[str, Any]:
    """What a re-run would do per task: reuse the earlier result, likely hit the cache, or run."""
    return actions.rerun_preview(store_of(request), run_id, mode, task)


@router.post("/runs/{run_id}/rerun", dependencies=[Depends(csrf_header)])
def rerun(request: Request, run_id: str,
          body: RerunBody = Body(default_factory=lambda: RerunBody(mode="failure"))) -> dict[str, Any]:
    """Create a re-run (due now; a worker runs it)."""
    new_id = actions.create_rerun(store_of(request), run_id, body.mode, body.tasks)
    return {"run_id": new_id, "url": f"/runs/{new_id}"}


@router.post("/runs/{run_id}/cancel", dependencies=[Depends(csrf_header)])
def cancel(request: Request, run_id: str) -> dict[str, Any]:
    return {"run_id": run_id, "result": actions.cancel_run(store_of(request), run_id)}


@router.post("/runs/bulk", dependencies=[Depends(csrf_header)])
def bulk(request: Request, body: BulkBody) -> dict[str, Any]:
    """Retry or cancel the runs a filter matches (at most 500); ``dry_run`` only lists them."""
    flt = filters.run_filter(body.filter, store_of(request))
    return actions.bulk_action(store_of(request), flt, body.action, body.dry_run)


# -- flows and deployments ---------------------------------------------------------------------------
@router.get("/flows")
def flows(request: Request) -> dict[str, Any]:
    return {"flows": views_data.flow_names(store_of(request))}


@router.get("/flows/{flow_name}")
def flow(request: Request, flow_name: str, limit: str | None = None) -> dict[str, Any]:
    """Duration, rows and state of the flow's last runs, and its daily success rate."""
    return history.flow_stats(store_of(request), flow_name, filters.parse_limit(limit, 500, 5000))


def _deployment_json(store: Any, dep: dict[str, Any], now: datetime) -> dict[str, Any]:
    info = deploy.describe(dep, now)
    keep = ("id", "name", "flow_name", "entrypoint", "parameters", "tags", "paused", "concurrency_limit",
            "catchup", "created_at", "updated_at")
    return {**{k: dep.get(k) for k in keep}, "schedule": info["schedule"], "timezone": info["zone"],
            "next_runs": [t.isoformat() for t in info["next"]]}


@router.get("/deployments")
def deployments(request: Request) -> dict[str, Any]:
    store, now = store_of(request), datetime.now(UTC)
    return {"deployments": [_deployment_json(store, d, now) for d in store.list_deployments()]}


@router.get("/deployments/{name}")
def deployment(request: Request, name: str) -> dict[str, Any]:
    store = store_of(request)
    dep = deploy.deployment_or_404(store, name)
    runs, _ = views.runs_page(store, views.RunFilter(deployment_id=dep["id"]), limit=20)
    return {**_deployment_json(store, dep, datetime.now(UTC)), "runs": runs,
            "flow_parameters": deploy.flow_parameters(dep["entrypoint"])}


@router.post("/deployments/{name}/run", dependencies=[Depends(csrf_header)])
def run_deployment(request: Request, name: str,
                   body: RunNowBody = Body(default_factory=lambda: RunNowBody())) -> dict[str, Any]:
    """Start a run now with these parameters (a worker picks it up)."""
    import json

    run_id = deploy.run_now(store_of(request), name, json.dumps(body.parameters))
    return {"run_id": run_id, "url": f"/runs/{run_id}"}


@router.post("/deployments/{name}/pause", dependencies=[Depends(csrf_header)])
def pause(request: Request, name: str) -> dict[str, Any]:
    dep = deploy.deployment_or_404(store_of(request), name)
    return {"name": dep["name"], "paused": store_of(request).set_deployment_paused(dep["name"], True)["paused"]}


@router.post("/deployments/{name}/resume", dependencies=[Depends(csrf_header)])
def resume(request: Request, name: str) -> dict[str, Any]:
    dep = deploy.deployment_or_404(store_of(request), name)
    return {"name": dep["name"], "paused": store_of(request).set_deployment_paused(dep["name"], False)["paused"]}


@router.get("/deployments/{name}/backfill")
def backfill_preview(request: Request, name: str, start: str, end: str) -> dict[str, Any]:
    """The runs a backfill would create (first 200 slots listed) and the slots it would skip."""
    plan = deploy.backfill_plan(store_of(request), name, start, end)
    return {"deployment": plan["deployment"]["name"], "start": plan["start"], "end": plan["end"],
            "counts": plan["counts"], "slots": [{**s, "local": s["local"].isoformat()} for s in plan["shown"]]}


@router.post("/deployments/{name}/backfill", dependencies=[Depends(csrf_header)])
def backfill(request: Request, name: str, body: BackfillBody) -> dict[str, Any]:
    return {"created": deploy.create_backfill(store_of(request), name, body.start, body.end)}


# -- datasets, quality, lake jobs ----------------------------------------------------------------------
@router.get("/datasets")
def datasets(request: Request, q: str | None = None, cursor: str | None = None,
             limit: str | None = None) -> dict[str, Any]:
    rows, nxt = views_data.datasets_page(store_of(request), after=filters.name_cursor(cursor), search=q or None,
                                         limit=filters.parse_limit(limit))
    return {"datasets": rows, "next_cursor": filters.encode_cursor(nxt)}


@router.get("/datasets/{dataset_id}")
def dataset(request: Request, dataset_id: int, depth: int = Query(1, ge=1, le=5),
            cursor: str | None = None) -> dict[str, Any]:
    """A dataset, the runs that read and wrote it (newest first), and its lineage graph."""
    store = store_of(request)
    row = views_data.dataset(store, dataset_id)
    if row is None:
        raise NotFound(f"no dataset with id {dataset_id}; the datasets page lists them")
    io, nxt = views_data.dataset_io_page(store, dataset_id, before=filters.time_cursor(cursor))
    return {"dataset": row, "io": io, "next_cursor": filters.encode_cursor(nxt),
            "graph": dataset_graph(store, dataset_id, depth)}


@router.get("/quality")
def quality(request: Request) -> dict[str, Any]:
    return {"suites": history.suites_overview(store_of(request))}


@router.get("/quality/{suite}")
def suite(request: Request, suite: str) -> dict[str, Any]:
    """Each check's history, the latest failing samples and the gates' quarantine counts."""
    data = history.suite_history(store_of(request), suite)
    if not data["checks"] and not data["gates"]:
        raise NotFound(f"no quality results for suite {suite!r}; the quality page lists the suites")
    return data


@router.get("/lake")
def lake(request: Request, run: str | None = None) -> dict[str, Any]:
    """Lake jobs' latest counters (read volume, backlog, rows and bytes filtered out and written)."""
    return history.lake_overview(store_of(request), run)


# -- live ------------------------------------------------------------------------------------------------
@router.get("/events")
async def events(request: Request, run: str | None = None, last_event_id: str | None = None,
                 last_event_header: str | None = Header(None, alias="Last-Event-ID")) -> StreamingResponse:
    """Server-sent events of state changes (one run's with ``run``, else the filtered runs list)."""
    store = store_of(request)
    run_id = get_run(store, run)["id"] if run else None
    flt = None if run_id else filters.run_filter(request.query_params, store)
    start = live.resume_point(last_event_header, last_event_id)
    body = live.event_stream(request, store, start, run_id, flt, request.app.state.settings.poll_seconds)
    return StreamingResponse(body, media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/changes")
def changes(request: Request, after: str | None = None, run: str | None = None) -> dict[str, Any]:
    """The polling twin of /api/events: what changed after ``after`` (a change id)."""
    store = store_of(request)
    run_id = get_run(store, run)["id"] if run else None
    start = filters.int_param("after", after)
    if start is None:
        return {"last_id": views.last_change_id(store), "runs": [], "tasks": [], "changes": [], "more": False}
    return live.collect(store, start, run_id, None if run_id else filters.run_filter(request.query_params, store))
