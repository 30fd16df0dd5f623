"""The FastAPI application: routes, error pages, the store it shows, static files and /docs."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from headrace.errors import FlowError, ParameterError, RunNotFound, ScheduleError, StoreError
from headrace.ui import api, pages, pages_data, pages_runs
from headrace.ui.apidocs import describe
from headrace.ui.render import HERE, build_env
from headrace.ui.security import AccessMiddleware
from headrace.ui.settings import UISettings
from headrace.ui.web import Forbidden, NotFound, RedactedJSON, StoreHandle, error_answer, page

log = logging.getLogger("headrace.ui")


def create_app(settings: UISettings | None = None) -> FastAPI:
    """The web app for ``settings`` (default: 127.0.0.1:8428, the process's store, the env token)."""
    settings = settings or UISettings.from_env()
    settings.check()
    app = FastAPI(title="headrace", version=_version(), docs_url=None, redoc_url=None,
                  openapi_url="/openapi.json", default_response_class=RedactedJSON,
                  description="The run store of headrace as JSON: runs, task runs, logs, deployments, "
                              "datasets, quality and lake jobs. With HEADRACE_UI_TOKEN set, send "
                              "`Authorization: Bearer <token>`.")
    app.state.settings = settings
    app.state.stores = StoreHandle(settings.store_url)
    app.state.templates = build_env()
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for module in (api, pages_runs, pages, pages_data):
        app.include_router(module.router)
    _error_handlers(app)
    app.add_middleware(AccessMiddleware, settings=settings)  # type: ignore[arg-type]
    return app


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("headrace")
    except Exception:  # noqa: BLE001 - running from a source tree
        return "0"


# The errors a request can meet on purpose, and how each is answered.
_ANSWERS: list[tuple[type[Exception], int, str]] = [
    (RunNotFound, 404, "Run not found"), (NotFound, 404, "Not found"), (Forbidden, 403, "Forbidden"),
    (ParameterError, 400, "Bad request"), (ScheduleError, 400, "Bad request"), (FlowError, 409, "Not possible now"),
]


def _answer(status: int, title: str) -> Any:
    async def handler(request: Request, exc: Exception) -> Response:
        return error_answer(request, status, title, str(exc))
    return handler


async def _invalid(request: Request, exc: Exception) -> Response:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    reasons = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in errors)
    return error_answer(request, 400, "Bad request", reasons or "the request is malformed")


async def _store_down(request: Request, exc: Exception) -> Response:
    log.warning("web page: the run store failed: %s", exc)
    return error_answer(request, 503, "The run store cannot be reached",
                  f"{exc}. The page keeps running; reload it once the store is back.")


async def _http(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    if status == 404:
        return error_answer(request, 404, "Not found", f"there is no page at {request.url.path}")
    return error_answer(request, status, "Error", str(getattr(exc, "detail", exc)))


async def _crash(request: Request, exc: Exception) -> Response:
    log.exception("web page: %s %s failed", request.method, request.url.path)
    return error_answer(request, 500, "Internal error", f"{type(exc).__name__}: {exc}")


def _error_handlers(app: FastAPI) -> None:
    for cls, status, title in _ANSWERS:
        app.add_exception_handler(cls, _answer(status, title))
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StoreError, _store_down)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _crash)

    @app.get("/", include_in_schema=False)
    async def _home() -> Response:
        return RedirectResponse("/runs", status_code=307)

    @app.get("/docs", include_in_schema=False)
    async def _docs(request: Request) -> Response:
        return page(request, "docs.html", docs=describe(request.app.openapi()))
