"""What every route uses: the store handle, page rendering, redacted JSON and the error answer."""

from __future__ import annotations

import threading
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from headrace.errors import HeadraceError
from headrace.secrets import redact
from headrace.ui.render import to_json
from headrace.ui.security import wants_json


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


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a template with what every page needs (the CSRF token, the current path)."""
    env = request.app.state.templates
    html = env.get_template(template).render(request=request, csrf=getattr(request.state, "csrf", ""),
                                             path=request.url.path, **context)
    return HTMLResponse(html, status_code=status)


def store_of(request: Request) -> Any:
    return request.app.state.stores.get()


def error_answer(request: Request, status: int, title: str, message: str) -> Response:
    message = redact(message)
    if wants_json(request.url.path, {k.lower(): v for k, v in request.headers.items()}):
        return RedactedJSON({"detail": message}, status_code=status)
    return page(request, "error.html", status=status, title=title, message=message)
