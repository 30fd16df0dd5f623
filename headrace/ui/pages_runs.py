"""HTML pages about runs: the runs list, one run, its logs, re-runs, bulk actions, a flow over time."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from headrace.errors import RunNotFound
from headrace.store import views, views_data
from headrace.ui import actions, filters, history
from headrace.ui.data import get_run, run_detail
from headrace.ui.security import CSRF_FIELD, csrf_ok
from headrace.ui.web import Forbidden, NotFound, page, store_of

router = APIRouter(include_in_schema=False)


async def csrf_form(request: Request) -> None:
    """Forms post the page's CSRF token back; anything else is refused."""
    form = await request.form()
    if not csrf_ok(request.state, str(form.get(CSRF_FIELD) or request.headers.get("x-csrf-token") or "")):
        raise Forbidden("this form is missing the page's CSRF token; reload the page and submit it again")


def _form_list(form: Any, key: str) -> list[str]:
    return [str(v) for v in form.getlist(key) if str(v).strip()]


@router.get("/runs", response_class=HTMLResponse)
def runs(request: Request, cursor: str | None = None, limit: str | None = None) -> Response:
    store = store_of(request)
    params = request.query_params
    flt = filters.run_filter(params, store)
    size = filters.parse_limit(limit)
    rows, nxt = views.runs_page(store, flt, after=filters.time_cursor(cursor), limit=size)
    total, capped = views.count_runs(store, flt)
    next_link = f"/runs?{filters.query_string(params, cursor=filters.encode_cursor(nxt), limit=limit)}" if nxt else None
    return page(request, "runs.html", runs=rows, total=total, capped=capped, next_link=next_link,
                first_page=cursor is None, flows=views_data.flow_names(store), f=params,
                states=views.STATE_TYPES, query=filters.query_string(params))


@router.get("/runs/bulk", response_class=HTMLResponse)
def bulk_preview(request: Request, action: str = "retry") -> Response:
    """The dry run of a bulk action on the runs the filter matches."""
    store = store_of(request)
    flt = filters.run_filter(request.query_params, store)
    result = actions.bulk_action(store, flt, action, dry_run=True)
    return page(request, "bulk.html", result=result, query=filters.query_string(request.query_params))


@router.post("/runs/bulk", response_class=HTMLResponse, dependencies=[Depends(csrf_form)])
async def bulk_apply(request: Request) -> Response:
    form = await request.form()
    flt = filters.run_filter(form, store_of(request))
    result = actions.bulk_action(store_of(request), flt, str(form.get("action") or ""), dry_run=False)
    return page(request, "bulk.html", result=result, query=filters.query_string(form))


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str) -> Response:
    detail = run_detail(store_of(request), run_id)
    if detail["run"]["id"] != run_id:  # a unique prefix: show the canonical address
        return RedirectResponse(f"/runs/{detail['run']['id']}", status_code=307)
    detail["next_tasks"] = filters.encode_cursor(detail["next_tasks"])
    return page(request, "run.html", **detail)


@router.get("/runs/{run_id}/logs", response_class=HTMLResponse)
def logs_page(request: Request, run_id: str, task: str | None = None, q: str | None = None,
              after: str | None = None, before: str | None = None, level: str | None = None) -> Response:
    """Log lines of a run (or one task run), a page at a time, with search."""
    store = store_of(request)
    run = get_run(store, run_id)
    task_row = None
    if task:
        task_row = store.get_task_run(task)
        if task_row["flow_run_id"] != run["id"]:
            raise RunNotFound(f"task run {task!r} does not belong to flow run {run['id']}")
    min_level = filters.int_param("level", level, 0, 100) or 0
    result = views.logs_page(store, run["id"], task_run_id=task or None, search=q or None,
                             after_id=filters.int_param("after", after),
                             before_id=filters.int_param("before", before), min_level=min_level)
    return page(request, "logs.html", run=run, task=task_row, result=result, q=q or "", level=min_level)


@router.get("/runs/{run_id}/rerun", response_class=HTMLResponse)
def rerun_preview(request: Request, run_id: str, mode: str = "failure") -> Response:
    chosen = request.query_params.getlist("task")
    preview = actions.rerun_preview(store_of(request), run_id, mode, chosen)
    return page(request, "rerun.html", **preview)


@router.post("/runs/{run_id}/rerun", dependencies=[Depends(csrf_form)])
async def rerun(request: Request, run_id: str) -> Response:
    form = await request.form()
    new_id = actions.create_rerun(store_of(request), run_id, str(form.get("mode") or "failure"),
                                  _form_list(form, "task"))
    return RedirectResponse(f"/runs/{new_id}", status_code=303)


@router.post("/runs/{run_id}/cancel", dependencies=[Depends(csrf_form)])
def cancel(request: Request, run_id: str) -> Response:
    actions.cancel_run(store_of(request), run_id)
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


@router.get("/flows/{flow_name}", response_class=HTMLResponse)
def flow_page(request: Request, flow_name: str) -> Response:
    store = store_of(request)
    stats = history.flow_stats(store, flow_name)
    if not stats["runs"]:
        raise NotFound(f"no runs of a flow named {flow_name!r}; the runs page lists the flows")
    recent, _ = views.runs_page(store, views.RunFilter(flows=(flow_name,)), limit=20)
    return page(request, "flow.html", stats=stats, recent=recent, flow_name=flow_name)
