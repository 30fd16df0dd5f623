"""Who may use the page: loopback only without a token, the token everywhere with one, CSRF on every POST."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from conftest import Seeded, csrf, post

TOKEN = "s3cret-token-for-the-tests-0123456789"


@pytest.fixture
def guarded(seeded: Seeded) -> Iterator[str]:
    from headrace.ui import UIServer, UISettings

    srv = UIServer(UISettings(port=0, store_url=seeded.store.url, token=TOKEN)).start()
    yield srv.url
    srv.stop()


def test_any_other_address_needs_a_token() -> None:
    from headrace.errors import ConfigError
    from headrace.ui import UISettings

    for host in ("0.0.0.0", "192.0.2.10", "::", "example.internal"):
        with pytest.raises(ConfigError, match="HEADRACE_UI_TOKEN"):
            UISettings(host=host).check()
    with pytest.raises(ConfigError, match="at least 16"):
        UISettings(host="0.0.0.0", token="short").check()
    for host in ("127.0.0.1", "127.0.0.2", "localhost", "::1"):
        UISettings(host=host).check()
    UISettings(host="0.0.0.0", token=TOKEN).check()


def test_the_command_refuses_to_bind_elsewhere_without_a_token(monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from headrace.cli import main

    monkeypatch.delenv("HEADRACE_UI_TOKEN", raising=False)
    assert main(["ui", "--host", "0.0.0.0", "--port", "0"]) == 1
    assert "refusing to serve the web page on 0.0.0.0" in capsys.readouterr().err


def test_with_a_token_every_request_needs_it(guarded: str) -> None:
    with httpx.Client(base_url=guarded) as anon:
        r = anon.get("/api/runs")
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        page = anon.get("/runs/abc?x=1")
        assert page.status_code == 303 and page.headers["location"] == "/login?next=%2Fruns%2Fabc%3Fx%3D1"
        for path in ("/static/app.css", "/docs", "/openapi.json", "/api/events"):
            assert anon.get(path).status_code in (303, 401), path
        assert anon.get("/api/runs", headers={"Authorization": "Bearer wrong-token-000000000"}).status_code == 401
        assert anon.get("/login").status_code == 200
    with httpx.Client(base_url=guarded, headers={"Authorization": f"Bearer {TOKEN}"}) as api:
        assert api.get("/api/runs").json()["count"] == 4
        assert api.post("/api/deployments/on-demand/run", json={}).status_code == 200  # bearer: no CSRF needed


def test_login_page_sets_a_cookie_that_is_not_the_token(guarded: str) -> None:
    with httpx.Client(base_url=guarded) as browser:
        wrong = browser.post("/login", data={"token": "nope", "next": "/runs"})
        assert wrong.status_code == 401 and "not the one" in wrong.text
        ok = browser.post("/login", data={"token": TOKEN, "next": "/deployments"})
        assert ok.status_code == 303 and ok.headers["location"] == "/deployments"
        cookie = browser.cookies["headrace_session"]
        assert TOKEN not in cookie and "httponly" in ok.headers["set-cookie"].lower()
        assert browser.get("/runs").status_code == 200
        evil = browser.post("/login", data={"token": TOKEN, "next": "//evil.example/x"})
        assert evil.headers["location"] == "/runs"
        out = browser.post("/logout", data={"csrf_token": csrf(browser)})
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert browser.get("/runs").status_code == 303  # signed out: back to the login page


def test_state_changing_requests_need_the_csrf_token(seeded: Seeded, client: httpx.Client) -> None:
    r = client.post("/api/deployments/on-demand/run", json={})
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    assert client.post("/api/deployments/on-demand/run", json={}, headers={"X-CSRF-Token": "forged"}).status_code == 403
    form = client.post("/deployments/on-demand/pause", data={"csrf_token": "forged"})
    assert form.status_code == 403
    assert client.get("/api/deployments/on-demand").json()["paused"] is False
    token = csrf(client)
    evil = {"Origin": "http://evil.example", "X-CSRF-Token": token}
    assert client.post("/api/deployments/on-demand/pause", headers=evil).status_code == 403  # another site's page
    assert client.post("/deployments/on-demand/pause", data={"csrf_token": ""}).status_code == 403
    assert post(client, "/api/deployments/on-demand/pause").json()["paused"] is True
    assert client.get("/deployments/on-demand/pause").status_code in (404, 405)  # never by GET


def test_a_page_answers_only_loopback_host_names(client: httpx.Client) -> None:
    r = client.get("/api/health", headers={"Host": "attacker.example:8428"})
    assert r.status_code == 400 and "localhost" in r.text
    assert client.get("/api/health", headers={"Host": "localhost:8428"}).status_code == 200


def test_pages_load_nothing_from_elsewhere(seeded: Seeded, client: httpx.Client) -> None:
    import re
    from pathlib import Path

    csp = client.get("/runs").headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    for path in ("/runs", f"/runs/{seeded.bad}", "/docs", "/flows/orders-good", "/datasets/1", "/lake",
                 "/quality/orders-suite"):
        html = client.get(path).text
        for url in re.findall(r'(?:src|href)="([^"]+)"', html):
            assert not re.match(r"^(https?:)?//", url), (path, url)
            if url.startswith("/static/"):
                assert client.get(url).status_code == 200, url
    static = Path(__file__).resolve().parents[2] / "headrace" / "ui" / "static"
    for vendored in ("uplot", "dagre"):
        assert (static / "vendor" / vendored / "LICENSE").exists()


def test_a_value_shown_before_it_was_known_as_a_password_is_hidden_once_known(client: httpx.Client) -> None:
    from headrace import flow, get_run_logger

    password = "Zq81-learned-later"

    @flow
    def plain() -> None:
        get_run_logger().info("retrying with %s", password)  # nothing marks it as a secret yet

    @flow
    def with_url() -> None:
        get_run_logger().info("connecting to postgresql://etl:%s@db/dwh", password)

    first = str(plain(return_state=True).run_id)
    assert password in client.get(f"/runs/{first}/logs").text  # (stored and shown as it was)
    with_url()  # its URL makes the password known to this process
    again = client.get(f"/runs/{first}/logs").text
    assert password not in again and "retrying with ***" in again


def test_a_port_in_use_is_a_clear_error(server: object) -> None:
    from headrace.errors import ConfigError
    from headrace.ui import UIServer, UISettings

    with pytest.raises(ConfigError, match="cannot listen on 127.0.0.1"):
        UIServer(UISettings(port=server.port))  # type: ignore[attr-defined]
