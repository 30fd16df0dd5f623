"""Access control: the token (cookie or bearer header), the Host check, and CSRF tokens.

With ``HEADRACE_UI_TOKEN`` set, every request but the login page needs either
``Authorization: Bearer TOKEN`` or the session cookie the login page sets.
Without a token the page only answers requests addressed to a loopback name,
so a web site cannot reach it through DNS rebinding. Every state-changing
request is a POST carrying the page's CSRF token (a form field or the
``X-CSRF-Token`` header), which another site cannot read; a POST whose
``Origin`` is another site is refused too. Requests authenticated by a bearer
header need no CSRF token, since a browser never adds that header on its own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote

from headrace.ui.settings import LOOPBACK_NAMES, UISettings

SESSION_COOKIE = "headrace_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
OPEN_PATHS = frozenset({"/login"})

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[..., Awaitable[Any]], Callable[..., Awaitable[Any]]], Awaitable[None]]


def session_value(token: str) -> str:
    """The cookie that proves a login: derived from the token, never the token itself."""
    return hmac.new(token.encode(), b"headrace-ui-session", hashlib.sha256).hexdigest()


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _cookies(headers: dict[str, str]) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # a malformed cookie header is treated as no cookie
        return {}
    return {k: m.value for k, m in jar.items()}


def bearer_ok(headers: dict[str, str], token: str) -> bool:
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())


def wants_json(path: str, headers: dict[str, str]) -> bool:
    return path.startswith("/api/") or path == "/openapi.json" or "application/json" in headers.get("accept", "")


class AccessMiddleware:
    """Checks Host and token before any route runs, and hands each page its CSRF token."""

    def __init__(self, app: ASGIApp, settings: UISettings) -> None:
        self.app = app
        self.settings = settings
        # Derived from the token when there is one, so pages stay valid across restarts.
        key = settings.token.encode() if settings.token else secrets.token_bytes(32)
        self.csrf = hmac.new(key, b"headrace-ui-csrf", hashlib.sha256).hexdigest()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        cookies = _cookies(headers)
        path = scope.get("path", "")
        token = self.settings.token
        if token is None and not _host_ok(headers.get("host", "")):
            await _plain(send, 400, "this page answers only requests addressed to localhost or 127.0.0.1")
            return
        via_bearer = token is not None and bearer_ok(headers, token)
        session = cookies.get(SESSION_COOKIE, "")
        logged_in = token is None or via_bearer or hmac.compare_digest(session.encode(), session_value(token).encode())
        if not logged_in and path not in OPEN_PATHS:
            await _refuse(scope, send, path, headers)
            return
        state = scope.setdefault("state", {})
        state.update(csrf=self.csrf, via_bearer=via_bearer, cross_site=_cross_site(headers))
        await self.app(scope, receive, _with_headers(send))


def _host_ok(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    return name.lower() in LOOPBACK_NAMES or name.startswith("127.")


# Scripts, styles, images and connections from this server only: nothing loads from elsewhere.
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                                 b"script-src 'self'; worker-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
                                 b"form-action 'self'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


def _with_headers(send: Any) -> Any:
    async def wrapped(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
        await send(message)
    return wrapped


def _cross_site(headers: dict[str, str]) -> bool:
    """True when the browser says the request comes from a page of another origin."""
    origin = headers.get("origin")
    if not origin or origin == "null":
        return origin == "null"
    return origin.split("://", 1)[-1].rstrip("/").lower() != headers.get("host", "").lower()


async def _refuse(scope: Scope, send: Any, path: str, headers: dict[str, str]) -> None:
    if wants_json(path, headers) or scope.get("method") != "GET":
        body = b'{"detail":"authentication required: send Authorization: Bearer $HEADRACE_UI_TOKEN"}'
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]})
        await send({"type": "http.response.body", "body": body})
        return
    query = scope.get("query_string", b"").decode("latin-1")
    target = quote(path + (f"?{query}" if query else ""), safe="")
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", f"/login?next={target}".encode())]})
    await send({"type": "http.response.body", "body": b""})


async def _plain(send: Any, status: int, text: str) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": text.encode()})


def csrf_ok(state: Any, submitted: str | None) -> bool:
    """A POST passes when it came with a bearer header, or from this site with the page's CSRF token."""
    if getattr(state, "via_bearer", False):
        return True
    expected = getattr(state, "csrf", "")
    if getattr(state, "cross_site", True) or not (expected and submitted):
        return False
    return hmac.compare_digest(expected.encode(), str(submitted).encode())


def safe_next(target: str | None) -> str:
    """Only same-site paths after login (never ``//evil.example`` or a full URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/runs"
    return target
