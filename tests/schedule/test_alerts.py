"""Alerts against a real HTTP server and a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from headrace import flow
from headrace.schedule import CronSchedule, Deployment, Email, Scheduler, SlackWebhook, Webhook, Worker
from headrace.schedule.alerts import AlertEvent

from .conftest import NO_SPREAD, T0

HOUR = timedelta(hours=1)
EVENT = AlertEvent(
    kind="failure",
    flow_name="Sales ETL",
    run_id="abc123",
    run_name="sales-1",
    state="Failed",
    rows_loaded=42,
    error="ValueError: bad revenue",
)


def test_slack_message_names_flow_run_state_rows_error_and_link(http_server, monkeypatch) -> None:
    monkeypatch.setenv("HEADRACE_UI_URL", "http://ui.example:8080/")
    assert SlackWebhook(http_server.url).notify(EVENT) is True
    text = http_server.bodies[0]["json"]["text"]
    for part in (
        "Sales ETL",
        "sales-1",
        "abc123",
        "Failed",
        "rows loaded: 42",
        "ValueError: bad revenue",
        "http://ui.example:8080/runs/abc123",
    ):
        assert part in text


def test_webhook_posts_json_with_headers(http_server) -> None:
    from headrace.secrets import redact

    Webhook(http_server.url, headers={"X-Team": "data", "Authorization": "Bearer t0k-9f2e77",
                                      "X-Api-Key": "k3y-55aa01"}).notify(EVENT)
    got = http_server.bodies[0]
    assert got["headers"]["X-Team"] == "data" and got["headers"]["X-Api-Key"] == "k3y-55aa01"
    # credentials are hidden wherever they show up; a plain header's value is not a secret
    shown = redact("datasets: k3y-55aa01, Bearer t0k-9f2e77")
    assert shown.startswith("datasets: ***, ") and "t0k" not in shown
    assert got["json"]["event"] == "failure" and got["json"]["rows_loaded"] == 42
    assert got["json"]["url"] is None  # no HEADRACE_UI_URL configured


def test_a_500_is_retried_with_backoff_then_given_up_and_logged(http_server, caplog) -> None:
    http_server.status = 500
    slept: list[float] = []
    ok = Webhook(http_server.url, retries=2, backoff=0.5).notify(EVENT, sleep=slept.append)
    assert ok is False and http_server.attempts == 3 and slept == [0.5, 1.0]
    assert "giving up" in caplog.text and "500" in caplog.text


def test_a_hanging_webhook_times_out_and_the_run_is_unaffected(http_server) -> None:
    http_server.delay = 1.0
    hook = Webhook(http_server.url, retries=1, timeout=0.2, backoff=0.01)

    @flow(on_failure=[hook])
    def fails() -> None:
        raise RuntimeError("source table is empty")

    @flow(on_completion=[hook])
    def works() -> int:
        return 7

    from headrace.engine import run_flow

    assert run_flow(fails, {}).is_failed()
    assert works() == 7
    assert http_server.attempts >= 2 and http_server.bodies == []


def test_flow_hooks_send_the_first_error_line(http_server) -> None:
    @flow(name="Loader", on_failure=[SlackWebhook(http_server.url)])
    def loader() -> None:
        raise ValueError("duplicate key in fact_sales\nDETAIL: the rest")

    from headrace.engine import run_flow

    state = run_flow(loader, {})
    assert state.is_failed()
    text = http_server.bodies[0]["json"]["text"]
    assert "Loader" in text and "duplicate key in fact_sales" in text and "DETAIL" not in text


# -- email -------------------------------------------------------------------------------------
class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(envelope)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[_Inbox, int, list[tuple[str, str]]]]:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    logins: list[tuple[str, str]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=data.password == b"s3cret-pw")

    inbox, port = _Inbox(), _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=authenticator, auth_require_tls=False)
    controller.start()
    yield inbox, port, logins
    controller.stop()


def test_email_is_delivered_with_login(smtp, monkeypatch, caplog) -> None:
    inbox, port, logins = smtp
    monkeypatch.setenv("SMTP_PW", "s3cret-pw")
    caplog.set_level(logging.DEBUG)
    mail = Email(
        "127.0.0.1", port, "headrace@example.com", ["oncall@example.com"], username="bot", password="env:SMTP_PW"
    )
    assert mail.notify(EVENT) is True
    assert logins == [("bot", "s3cret-pw")]
    body = inbox.messages[0].content.decode()
    assert "Subject: [headrace] Sales ETL: Failed (sales-1)" in body
    assert "ValueError: bad revenue" in body and inbox.messages[0].rcpt_tos == ["oncall@example.com"]
    assert "s3cret-pw" not in caplog.text


def test_a_wrong_password_is_retried_and_never_logged(smtp, caplog) -> None:
    _, port, _ = smtp
    mail = Email(
        "127.0.0.1",
        port,
        "a@example.com",
        "b@example.com",
        username="bot",
        password="wrong-hunter2",
        retries=1,
        backoff=0.01,
        timeout=0.5,
    )
    assert mail.notify(EVENT) is False
    assert "wrong-hunter2" not in caplog.text and "giving up" in caplog.text
    assert "wrong-hunter2" not in repr(mail)


def test_deployment_alerts_on_failure_and_success_from_the_worker(store, flow_file, http_server):
    fail_hook = Webhook(http_server.url, retries=0)
    Deployment(flow_file.load("boom"), "boom", schedule=CronSchedule("0 * * * *"), on_failure=[fail_hook]).apply(now=T0)
    Deployment(
        flow_file.load(),
        "ok",
        schedule=CronSchedule("0 * * * *"),
        on_success=[SlackWebhook(http_server.url, retries=0)],
    ).apply(now=T0)
    Scheduler(store, spread=NO_SPREAD).tick(T0 + HOUR)
    states = sorted(Worker(store).run_due(T0 + HOUR))
    assert states == ["Completed", "Failed"]
    payloads = [b["json"] for b in http_server.bodies]
    failure = next(p for p in payloads if p.get("event") == "failure")
    assert failure["flow"] == "boom" and failure["error"] == "ValueError: the warehouse said no"
    assert failure["deployment"] == "boom"
    assert any("succeeded" in p.get("text", "") and "ticker" in p["text"] for p in payloads)


def test_email_password_is_not_written_to_the_store(store, flow_file) -> None:
    mail = Email("127.0.0.1", 25, "a@example.com", ["b@example.com"], username="u", password="plain-secret")
    Deployment(flow_file.load(), "mailer", on_failure=[mail]).apply()
    assert "plain-secret" not in (store.get_deployment("mailer")["alerts"] or "")
