"""Alerts on failure, success and lateness: Slack, any webhook, and email.

An alert is a callable with the flow-hook signature ``alert(flow, flow_run,
state)``, so ``@flow(on_failure=[SlackWebhook(url)])`` works; deployments
store alerts as JSON and the worker and scheduler send them. Sending retries
with exponential backoff and never raises: a dead alert channel is logged and
the run is unaffected. Passwords are never logged nor written to the store;
a password given as ``"env:NAME"`` is read from the environment when sending.
"""

from __future__ import annotations

import logging
import smtplib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from headrace.config import load_settings
from headrace.secrets import RedactingFilter, is_secret_name, protect, redact, register_secret, reveal

log = logging.getLogger("headrace.schedule")
for _name in ("httpx", "httpcore"):  # they log request URLs; a webhook URL's path is its secret
    logging.getLogger(_name).addFilter(RedactingFilter())


@dataclass
class AlertEvent:
    """What an alert reports: one run's outcome (or its lateness)."""

    kind: str  # "failure" | "success" | "late"
    flow_name: str
    run_id: str
    run_name: str
    state: str
    rows_loaded: int | None = None
    error: str | None = None
    scheduled_time: datetime | None = None
    deployment: str | None = None
    detail: str | None = None

    @property
    def url(self) -> str | None:
        base = load_settings().ui_url
        return f"{base.rstrip('/')}/runs/{self.run_id}" if base else None

    def text(self) -> str:
        """The human message: flow, run, state, rows loaded, first error line, link."""
        head = {"failure": "failed", "success": "succeeded", "late": "is late"}.get(self.kind, self.kind)
        lines = [
            f"headrace: flow '{self.flow_name}' {head} (state {self.state})",
            f"run: {self.run_name} ({self.run_id})",
        ]
        if self.deployment:
            lines.append(f"deployment: {self.deployment}")
        if self.scheduled_time is not None:
            lines.append(f"scheduled: {self.scheduled_time.isoformat()}")
        lines.append(f"rows loaded: {self.rows_loaded if self.rows_loaded is not None else 'n/a'}")
        if self.error:
            lines.append(f"error: {self.error}")
        if self.detail:
            lines.append(self.detail)
        if self.url:
            lines.append(self.url)
        return redact("\n".join(lines))

    def payload(self) -> dict[str, Any]:
        return {
            "event": self.kind,
            "flow": self.flow_name,
            "run_id": self.run_id,
            "run_name": self.run_name,
            "state": self.state,
            "rows_loaded": self.rows_loaded,
            "error": redact(self.error) if self.error else None,
            "scheduled_time": self.scheduled_time.isoformat() if self.scheduled_time else None,
            "deployment": self.deployment,
            "url": self.url,
            "text": self.text(),
        }


def first_line(text: object) -> str | None:
    lines = [ln for ln in str(text or "").strip().splitlines() if ln.strip()]
    return lines[0].strip() if lines else None


def event_from_hook(flow: Any, flow_run: Any, state: Any) -> AlertEvent:
    """Build the event from the engine's hook arguments (duck-typed)."""
    state_name = str(getattr(state, "name", state))
    kind = "success" if getattr(state, "is_completed", lambda: False)() else "failure"
    error = getattr(flow_run, "error", None) or (getattr(state, "message", None) if kind == "failure" else None)
    return AlertEvent(
        kind=kind,
        flow_name=str(getattr(flow, "name", getattr(flow_run, "flow_name", "?"))),
        run_id=str(getattr(flow_run, "id", "?")),
        run_name=str(getattr(flow_run, "name", "?")),
        state=state_name,
        rows_loaded=getattr(flow_run, "rows_loaded", None),
        error=first_line(error),
        scheduled_time=getattr(flow_run, "scheduled_time", None),
    )


@dataclass
class Alert(ABC):
    """Base of the alert channels: retries, backoff and the hook signature."""

    retries: int = field(default=3, kw_only=True)
    timeout: float = field(default=10.0, kw_only=True)
    backoff: float = field(default=1.0, kw_only=True)

    kind = "alert"

    def __call__(self, flow: Any, flow_run: Any, state: Any, **kwargs: Any) -> None:
        """Flow hook: report this run's outcome; never raises."""
        try:
            event = event_from_hook(flow, flow_run, state)
        except Exception:  # noqa: BLE001 - an alert must never fail the run
            log.exception("alert %s: cannot describe the run", self.target())
            return
        self.notify(event)

    def notify(self, event: AlertEvent, sleep: Callable[[float], None] = time.sleep) -> bool:
        """Send ``event`` with retries; True when delivered. Errors are logged, not raised."""
        for attempt in range(1, self.retries + 2):
            try:
                self.send(event)
                log.info("alert %s: sent %s alert for run %s", self.target(), event.kind, event.run_id)
                return True
            except Exception as exc:  # noqa: BLE001 - any failure of the channel is retried
                log.warning(
                    "alert %s: attempt %s of %s failed: %s",
                    self.target(),
                    attempt,
                    self.retries + 1,
                    redact(str(exc)) or type(exc).__name__,
                )
                if attempt <= self.retries:
                    sleep(self.backoff * 2 ** (attempt - 1))
        log.error("alert %s: giving up on the %s alert for run %s", self.target(), event.kind, event.run_id)
        return False

    @abstractmethod
    def send(self, event: AlertEvent) -> None:
        """Deliver ``event`` once; raise on any failure (``notify`` retries)."""

    @abstractmethod
    def target(self) -> str:
        """Where alerts go, for log lines; never a secret."""

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        return {"kind": self.kind, **data}


def _post(url: str, payload: dict[str, Any], headers: dict[str, str], timeout: float) -> None:
    import httpx

    response = httpx.post(url, json=payload, headers=headers, timeout=timeout)
    response.raise_for_status()


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(str(reveal(url)))
    except Exception:  # noqa: BLE001 - a label for log lines only
        return "(url from a secret)"
    return f"{parts.scheme}://{parts.hostname or '?'}" if parts.scheme else "(url from a secret)"


_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


def _credential(header: str) -> bool:
    """Every header value is stored encrypted; a credential's is also hidden wherever it appears
    (hiding "X-Team: data" would turn every "data" into *** in logs and on the web page)."""
    return is_secret_name(header) or header.lower() in _CREDENTIAL_HEADERS


@dataclass
class Webhook(Alert):
    """POST the event as JSON to ``url`` with optional ``headers``.

    The URL and header values may be ``env:NAME`` references; given as plain
    text they are stored encrypted with the store key, and never logged.
    """

    url: str = field(repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)

    kind = "webhook"

    def __post_init__(self) -> None:
        for value in (self.url, *(v for k, v in self.headers.items() if _credential(k))):
            if not value.startswith(("env:", "enc:v1:")):
                register_secret(value)

    def send(self, event: AlertEvent) -> None:
        headers = {k: str(reveal(v, hide=_credential(k))) for k, v in self.headers.items()}
        _post(str(reveal(self.url)), event.payload(), headers, self.timeout)

    def target(self) -> str:
        return f"webhook {_host(self.url)}"  # the path and query may hold a token

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "url": protect(self.url),
                "headers": {k: protect(v, hide=_credential(k)) for k, v in self.headers.items()}}


@dataclass
class SlackWebhook(Alert):
    """Post the message to a Slack incoming-webhook ``url`` (the URL is the secret: stored encrypted)."""

    url: str = field(repr=False)

    kind = "slack"

    def __post_init__(self) -> None:
        if not self.url.startswith(("env:", "enc:v1:")):
            register_secret(self.url)

    def send(self, event: AlertEvent) -> None:
        _post(str(reveal(self.url)), {"text": event.text()}, {}, self.timeout)

    def target(self) -> str:
        return "slack webhook"  # the URL itself is the secret

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "url": protect(self.url)}


@dataclass
class Email(Alert):
    """Send the message by SMTP; ``password="env:NAME"`` reads it from the environment."""

    host: str
    port: int
    sender: str
    to: list[str] | str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False

    kind = "email"

    def _password(self) -> str | None:
        return reveal(self.password) if self.password else None

    def send(self, event: AlertEvent) -> None:
        recipients = [self.to] if isinstance(self.to, str) else list(self.to)
        msg = EmailMessage()
        msg["Subject"] = f"[headrace] {event.flow_name}: {event.state} ({event.run_name})"
        msg["From"] = self.sender
        msg["To"] = ", ".join(recipients)
        msg.set_content(event.text())
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            password = self._password()
            if self.username and password:
                smtp.login(self.username, password)
            smtp.send_message(msg, from_addr=self.sender, to_addrs=recipients)

    def target(self) -> str:
        return f"email {self.host}:{self.port}"

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "password": protect(self.password)}


_KINDS: dict[str, type[Alert]] = {"webhook": Webhook, "slack": SlackWebhook, "email": Email}


def alert_from_dict(data: dict[str, Any]) -> Alert:
    """Rebuild an alert from its stored form."""
    data = dict(data)
    cls = _KINDS[data.pop("kind")]
    return cls(**data)
