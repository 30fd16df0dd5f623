"""HTML pages: login, deployments (run now, pause/resume, backfill) and lake jobs."""

from __future__ import annotations

import asyncio
import hmac
from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from headrace.errors import ParameterError, ScheduleError
from headrace.store import views
from headrace.ui import deploy, history
from headrace.ui.pages_runs import csrf_form
from headrace.ui.security import SESSION_COOKIE, safe_next, session_value
from headrace.ui.web import page, store_of

router = APIRouter(include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:  # noqa: A002 - the query's name
    return page(request, "login.html", next=safe_next(next), failed=False)


@router.post("/login")
async def login(request: Request) -> Response:
    token = request.app.state.settings.token
    form = await request.form()
    given = str(form.get("token") or "")
    target = safe_next(str(form.get("next") or ""))
    if token is None:
        return RedirectResponse(target, status_code=303)
    if not hmac.compare_digest(given.encode(), token.encode()):
        await asyncio.sleep(0.5)  # slows guessing down
        return page(request, "login.html", status=401, next=target, failed=True)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(SESSION_COOKIE, session_value(token), httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", max_age=30 * 86400)
    return response


@router.post("/logout", dependencies=[Depends(csrf_form)])
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/deployments", response_class=HTMLResponse)
def deployments(request: Request) -> Response:
    store, now = store_of(request), datetime.now(UTC)
    rows = []
    for dep in store.list_deployments():
        last, _ = views.runs_page(store, views.RunFilter(deployment_id=dep["id"]), limit=1)
        rows.append({**dep, **deploy.describe(dep, now), "last": last[0] if last else None})
    return page(request, "deployments.html", deployments=rows)


@router.get("/deployments/{name}", response_class=HTMLResponse)
def deployment(request: Request, name: str, start: str | None = None, end: str | None = None) -> Response:
    """A deployment: schedule, next fire times, run-now form, pause/resume, backfill with its preview."""
    store = store_of(request)
    dep = deploy.deployment_or_404(store, name)
    runs, _ = views.runs_page(store, views.RunFilter(deployment_id=dep["id"]), limit=20)
    plan, problem = None, None
    if start or end:
        try:
            plan = deploy.backfill_plan(store, name, start, end)
        except (ParameterError, ScheduleError) as exc:
            problem = str(exc)
    return page(request, "deployment.html", status=400 if problem else 200, dep=dep,
                info=deploy.describe(dep, datetime.now(UTC), fires=5), runs=runs, plan=plan, problem=problem,
                start=start or "", end=end or "", params=deploy.flow_parameters(dep["entrypoint"]))


@router.post("/deployments/{name}/run", dependencies=[Depends(csrf_form)])
async def run_now(request: Request, name: str) -> Response:
    form = await request.form()
    run_id = deploy.run_now(store_of(request), name, str(form.get("parameters") or ""))
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


@router.post("/deployments/{name}/pause", dependencies=[Depends(csrf_form)])
def pause(request: Request, name: str) -> Response:
    dep = deploy.deployment_or_404(store_of(request), name)
    store_of(request).set_deployment_paused(dep["name"], True)
    return RedirectResponse(f"/deployments/{dep['name']}", status_code=303)


@router.post("/deployments/{name}/resume", dependencies=[Depends(csrf_form)])
def resume(request: Request, name: str) -> Response:
    dep = deploy.deployment_or_404(store_of(request), name)
    store_of(request).set_deployment_paused(dep["name"], False)
    return RedirectResponse(f"/deployments/{dep['name']}", status_code=303)


@router.post("/deployments/{name}/backfill", dependencies=[Depends(csrf_form)])
async def backfill(request: Request, name: str) -> Response:
    form = await request.form()
    dep = deploy.deployment_or_404(store_of(request), name)
    deploy.create_backfill(store_of(request), name, str(form.get("start") or ""), str(form.get("end") or ""))
    return RedirectResponse(f"/runs?deployment={dep['name']}", status_code=303)


@router.get("/lake", response_class=HTMLResponse)
def lake(request: Request, run: str | None = None) -> Response:
    return page(request, "lake.html", **history.lake_overview(store_of(request), run))
