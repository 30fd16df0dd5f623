"""The FastAPI application: routes, error pages, the store it shows, static files and /docs."""

from __future__ import annotations

import logging
import threading
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from headrace.errors import FlowError, HeadraceError, ParameterError, RunNotFound, ScheduleError, StoreError
from headrace.secrets import redact
from headrace.ui.render import HERE, build_env, to_json
from headrace.ui.security import AccessMiddleware, wants_json
from headrace.ui.settings import UISettings

log = logging.getLogger("headrace.ui")


class NotFound(HeadraceError):
    """A deployment, dataset, suite or page that does not exist."""


class Forbidden(HeadraceError):
    """A state-changing request without the page's CSRF token."""


class StoreHandle:
    """Opens the run store on first use and again after a failure, so the page outlives an outage."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self._store: Any = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        store = self._store
        if store is not None:
            return store
        from headrace.store import get_store

        with self._lock:
            if self._store is None:
                self._store = get_store(self.url)
            return self._store


class RedactedJSON(JSONResponse):
    """JSON answers with every secret redacted."""

    def render(self, content: Any) -> bytes:
        return to_json(content).encode()


def create_app(settings: UISettings | None = None) -> FastAPI:
    """The web app for ``settings`` (default: 127.0.0.1:8428, the process's store, the env token)."""
    from headrace.ui import api, pages, pages_data, pages_runs

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


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a template with what every page needs (the CSRF token, the current path)."""
    env = request.app.state.templates
    html = env.get_template(template).render(request=request, csrf=getattr(request.state, "csrf", ""),
                                             path=request.url.path, **context)
    return HTMLResponse(html, status_code=status)


def store_of(request: Request) -> Any:
    return request.app.state.stores.get()


def _error(request: Request, status: int, title: str, message: str) -> Response:
    message = redact(message)
    if wants_json(request.url.path, {k.lower(): v for k, v in request.headers.items()}):
        return RedactedJSON({"detail": message}, status_code=status)
    return page(request, "error.html", status=status, title=title, message=message)


# The errors a request can meet on purpose, and how each is answered.
_ANSWERS: list[tuple[type[Exception], int, str]] = [
    (RunNotFound, 404, "Run not found"), (NotFound, 404, "Not found"), (Forbidden, 403, "Forbidden"),
    (ParameterError, 400, "Bad request"), (ScheduleError, 400, "Bad request"), (FlowError, 409, "Not possible now"),
]


def _answer(status: int, title: str) -> Any:
    async def handler(request: Request, exc: Exception) -> Response:
        return _error(request, status, title, str(exc))
    return handler


async def _invalid(request: Request, exc: Exception) -> Response:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    reasons = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in errors)
    return _error(request, 400, "Bad request", reasons or "the request is malformed")


async def _store_down(request: Request, exc: Exception) -> Response:
    log.warning("web page: the run store failed: %s", exc)
    return _error(request, 503, "The run store cannot be reached",
                  f"{exc}. The page keeps running; reload it once the store is back.")


async def _http(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    if status == 404:
        return _error(request, 404, "Not found", f"there is no page at {request.url.path}")
    return _error(request, status, "Error", str(getattr(exc, "detail", exc)))


async def _crash(request: Request, exc: Exception) -> Response:
    log.exception("web page: %s %s failed", request.method, request.url.path)
    return _error(request, 500, "Internal error", f"{type(exc).__name__}: {exc}")


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
        return page(request, "docs.html")
