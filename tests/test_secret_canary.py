"""The secret canary (issue 9): one secret planted everywhere a run touches, found nowhere afterwards.

The secret goes into a connection URL, a ``Secret[str]`` parameter, a secret-named
parameter, a webhook header and URL, an exception message, a retry message and a
log line; flows fail and succeed, alerts go to a failing real HTTP server. Then
every place a string can leave a run is searched: the store, files, OpenLineage
events, CLI output, logs, the quality report, and every page and API answer of the web page (which
also gets the secret through its own run-now form). To add a place (a lineage
event, ...), append a function to ``PLACES``: it gets the ``Canary`` and returns
the text to search.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import MetaData, select

SECRET = "CaNaRy-7f3e/b9:x@q2"  # has "/", ":" and "@" on purpose

FLOWS = '''
import logging
from headrace import flow, task, get_run_logger
from headrace.secrets import Secret
from headrace.quality import Suite, expect

SUITE = Suite("canary", [expect.column_values_to_not_be_null("a")], on_failure="warn")

@task(retries=1, retry_delay_seconds=0)
def connect(password: str) -> int:
    get_run_logger().info("connecting with %s", password)
    url = f"postgresql://etl:{password}@127.0.0.1:1/dwh"
    raise ConnectionError(f"could not reach {url} (password {password})")

@task
def fine(password: str) -> int:
    get_run_logger().info("using password=%s", password)
    return 1

@flow(name="canary-fail")
def fails(password: Secret[str], api_token: str = "none", options: dict | None = None) -> int:
    return connect(password)

@flow(name="canary-ok")
def succeeds(password: Secret[str], api_token: str = "none") -> int:
    import pandas as pd
    SUITE.gate(pd.DataFrame({"a": [1, None]}))
    return fine(password)
'''


@dataclass
class Canary:
    home: Path
    store: Any
    flow_file: Path
    cli_outputs: list[str] = field(default_factory=list)
    log_text: str = ""
    report: str = ""
    web_text: str = ""


def _store_text(c: Canary) -> str:
    """Every row of every table of the store."""
    meta = MetaData()
    meta.reflect(c.store.engine)
    parts = []
    with c.store.engine.connect() as conn:
        for table in meta.sorted_tables:
            parts.extend(repr(tuple(row)) for row in conn.execute(select(table)))
    assert len(parts) > 20, "the store holds the runs searched"
    return "\n".join(parts)


def _files_text(c: Canary) -> str:
    """Every file headrace wrote under its home (results, keys aside: they hold no secret text)."""
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in c.home.rglob("*")
                     if p.is_file() and p.suffix in (".json", ".log", ".txt", ".html"))


def _openlineage_text(c: Canary) -> str:
    """Every OpenLineage event the runs emitted (this process's and the fresh CLI process's)."""
    from headrace.lineage.openlineage import close_emitters

    close_emitters()
    text = (c.home / "openlineage.ndjson").read_text()
    assert text.count('"eventType":"FAIL"') >= 4 and "***" in text, "the failures' events are there, redacted"
    return text


PLACES: list[Callable[[Canary], str]] = [
    _store_text,
    _files_text,
    _openlineage_text,
    lambda c: "\n".join(c.cli_outputs),
    lambda c: c.log_text,
    lambda c: c.report,
    lambda c: c.web_text,
]


def _web(c: Canary) -> str:
    """Plant the secret through the web page's run-now form, then read every page and API answer."""
    import re

    import httpx

    from headrace.ui import UIServer, UISettings

    srv = UIServer(UISettings(port=0, store_url=c.store.url)).start()
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as client:
            token = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', client.get("/runs").text)
            assert token is not None
            params = {"password": SECRET, "api_token": "***",  # *** keeps the deployment's real value
                      "options": {"dsn": f"mysql://a:{SECRET}@b/c", "client_secret": SECRET}}
            made = client.post("/api/deployments/canary/run", json={"parameters": params},
                               headers={"X-CSRF-Token": token.group(1)})
            assert made.status_code in (200, 201), made.text
            return "\n".join(_web_answers(c, client))
    finally:
        srv.stop()


def _web_answers(c: Canary, client: Any) -> list[str]:
    runs = [r["id"] for r in c.store.list_flow_runs(limit=50)]
    paths = ["/runs", "/api/runs", "/runs?state=SCHEDULED", "/api/runs?state=SCHEDULED", "/deployments",
             "/api/deployments", "/deployments/canary", "/api/deployments/canary", "/datasets", "/api/datasets",
             "/quality", "/quality/canary", "/api/quality/canary", "/lake", "/api/lake", "/flows/canary-fail",
             "/api/flows/canary-fail", "/flows/canary-ok", "/openapi.json", "/docs", "/api/changes?after=0",
             "/runs/bulk?action=retry"]
    for rid in runs:
        paths += [f"/runs/{rid}", f"/api/runs/{rid}", f"/api/runs/{rid}/logs", f"/runs/{rid}/logs",
                  f"/runs/{rid}/logs?q=password", f"/runs/{rid}/quality", f"/api/runs/{rid}/tasks",
                  f"/runs/{rid}/rerun", f"/api/runs/{rid}/rerun-preview"]
        paths += [f"/runs/{rid}/logs?task={t['id']}" for t in c.store.list_task_runs(rid)]
    texts = []
    for path in paths:
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
        texts.append(f"{path}\n{answer.text}")
    return texts


@pytest.fixture
def failing_server() -> Any:
    hits: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            hits.append(dict(self.headers))
            self.send_response(500)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/services/T0/B0/{SECRET}", hits
    server.shutdown()
    server.server_close()


def _cli(c: Canary, env: dict[str, str], *args: str, fresh: bool = False) -> None:
    """A CLI command's whole output: in this process, or (``fresh``) in a new one."""
    if fresh:
        code = "import sys; from headrace.cli import main; sys.exit(main())"
        out = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True,
                             timeout=120)
        c.cli_outputs.append(out.stdout + out.stderr)
        return
    import contextlib
    import io

    from headrace.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        main(list(args))
    c.cli_outputs.append(buf.getvalue())


def _plant(c: Canary, url: str, caplog: pytest.LogCaptureFixture) -> None:
    from headrace.engine import load_flow, run_flow
    from headrace.schedule import Deployment, Webhook, Worker
    from headrace.schedule.scheduler import Scheduler
    from headrace.store import utcnow

    caplog.set_level(logging.DEBUG)
    fails, ok = load_flow(f"{c.flow_file}:fails"), load_flow(f"{c.flow_file}:succeeds")
    assert run_flow(ok, ok.bind((SECRET,), {"api_token": SECRET})).is_completed()
    assert run_flow(fails, fails.bind((SECRET,), {})).is_failed()
    alert = Webhook(url, headers={"Authorization": f"Bearer {SECRET}", "X-Api-Key": SECRET}, retries=1, backoff=0)
    Deployment(fails, "canary", parameters={"password": SECRET, "api_token": SECRET},
               on_failure=[alert]).apply(store=c.store)
    dep = c.store.get_deployment("canary")
    from headrace.schedule.scheduler import new_run_row

    c.store.create_scheduled_runs([new_run_row(dep, utcnow(), utcnow())])
    Scheduler(c.store)
    assert Worker(c.store).run_due(utcnow()) == ["Failed"]
    c.store.writer.flush()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_planted_secret_is_found_nowhere(backend: str, headrace_home: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch, failing_server: Any,
                                           caplog: pytest.LogCaptureFixture,
                                           request: pytest.FixtureRequest) -> None:
    from headrace.store import get_store

    url = f"sqlite:///{headrace_home / 'headrace.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    monkeypatch.setenv("HEADRACE_STORE", url)
    monkeypatch.setenv("HEADRACE_OPENLINEAGE_URL", (headrace_home / "openlineage.ndjson").as_uri())
    flow_file = tmp_path / f"canary_flows_{backend}.py"
    flow_file.write_text(FLOWS)
    c = Canary(headrace_home, get_store(url), flow_file)
    hook_url, hits = failing_server
    _plant(c, hook_url, caplog)
    assert hits and any(SECRET in h.get("Authorization", "") for h in hits), "the alert really went out"
    env = {**__import__("os").environ, "HEADRACE_STORE": url, "HEADRACE_HOME": str(headrace_home), "COLUMNS": "300"}
    runs = c.store.list_flow_runs(limit=10)
    _cli(c, env, "runs", "list")
    _cli(c, env, "deployments", "list")
    for run in runs:
        for command in (("runs", "show", run["id"]), ("runs", "logs", run["id"]), ("quality", "show", run["id"])):
            _cli(c, env, *command)
    assert any("connecting with ***" in out for out in c.cli_outputs)
    failed = next(r for r in runs if r["flow_name"] == "canary-fail" and not r["deployment_id"])
    _cli(c, env, "retry", failed["id"])  # fails again, with the real secret passed and nothing shown
    _cli(c, env, "run", f"{flow_file}:succeeds", "-p", f"password={SECRET}", "-p", f"api_token={SECRET}",
         fresh=True)
    report = tmp_path / "report.html"
    ok_run = next(r for r in runs if r["flow_name"] == "canary-ok")
    _cli(c, env, "quality", "report", ok_run["id"], "-o", str(report))
    c.report = report.read_text()
    c.web_text = _web(c)
    stored = _store_text(c)
    assert stored.count("enc:v1:") >= 4, "secret parameters are stored encrypted"
    # Neither the secret nor its ciphertext (Fernet tokens start with gAAAAA) is shown.
    assert "enc:v1" not in c.web_text and "gAAAAA" not in c.web_text
    assert '"password":"***"' in c.web_text.replace(" ", "")
    c.log_text = caplog.text
    assert "connecting with ***" in c.log_text or "connecting with ***" in _store_text(c)
    for place in PLACES:
        text = place(c)
        for piece in (SECRET, SECRET.split("/")[0], "b9:x@q2"):
            at = text.find(piece)
            assert at < 0, f"{piece!r} leaked through {place}: ...{text[max(0, at - 200):at + 50]}..."
    assert pd.notna(ok_run["id"])


@pytest.mark.parametrize(("text", "hidden"), [
    ("postgresql://etl:pa/ss@db:5432/dwh", "pa/ss"),
    ("connect password='se cret value' host=db", "se cret value"),
    ('{"password": "hunter22", "user": "x"}', "hunter22"),
    ("Authorization: Bearer abcdef123456", "abcdef123456"),
    ("dsn=host=db password=p4ss;x=1", "p4ss"),
])
def test_redact_hides_every_shape_of_password(text: str, hidden: str) -> None:
    from headrace.secrets import redact

    out = redact(text)
    assert hidden not in out and "***" in out


def test_secret_parameters_reach_the_function_and_show_masked() -> None:
    from headrace import flow
    from headrace.secrets import Secret
    from headrace.store import get_store

    got: list[str] = []

    @flow
    def login(password: Secret[str], db_token: str, user: str = "ann") -> None:
        got.append(password + db_token)

    login(Secret("s3cr3t-value"), "tok-12345")
    assert got == ["s3cr3t-valuetok-12345"]
    stored = get_store().list_flow_runs(limit=1)[0]["parameters"]
    assert "s3cr3t" not in stored and "tok-12345" not in stored and '"user":"ann"' in stored


RETRY_FLOW = '''
import os
from headrace import flow
from headrace.secrets import Secret

@flow(name="login")
def login(password: Secret[str], api_token: str, dsn: str, pin: Secret[int] = 0,
          options: dict | None = None, user: str = "ann") -> None:
    with open(os.environ["SEEN_FILE"], "a") as fh:
        fh.write(repr((password, api_token, dsn, pin, options, user)) + "\\n")
    if os.path.exists(os.environ["FAIL_MARKER"]):
        raise ConnectionError("the warehouse is down")
'''


def test_a_retried_direct_run_gets_the_real_secret_parameters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from headrace.cli import main
    from headrace.engine import load_flow
    from headrace.secrets import Secret
    from headrace.store import get_store

    path, seen, marker = tmp_path / "login_flow.py", tmp_path / "seen.txt", tmp_path / "fail"
    path.write_text(RETRY_FLOW)
    monkeypatch.setenv("SEEN_FILE", str(seen))
    monkeypatch.setenv("FAIL_MARKER", str(marker))
    marker.touch()
    login = load_flow(f"{path}:login")
    dsn = f"postgresql://etl:{SECRET}@db/dwh"
    state = login(Secret(SECRET), f"tok-{SECRET}", dsn, pin=4321, options={"client_secret": f"cs-{SECRET}"},
                  return_state=True)
    assert state.is_failed()
    marker.unlink()
    assert main(["retry", str(state.run_id)]) == 0
    first, second = seen.read_text().splitlines()
    assert first == second == repr((SECRET, f"tok-{SECRET}", dsn, 4321, {"client_secret": f"cs-{SECRET}"}, "ann"))
    runs = get_store().list_flow_runs(limit=5)
    assert [r["state_name"] for r in runs] == ["Completed", "Failed"]
    capsys.readouterr()
    for run in runs:
        assert main(["runs", "show", run["id"]]) == 0
    shown = capsys.readouterr().out
    assert '"password":"***"' in shown and '"user":"ann"' in shown and '"pin":"***"' in shown
    stored = repr([r["parameters"] for r in runs])
    for text in (shown, stored):
        assert "CaNaRy" not in text and "4321" not in text and "b9:x@q2" not in text
