"""Helpers for the schedule tests: flow files, a fake clock's start, real alert servers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

T0 = datetime(2024, 1, 1, 6, 0, tzinfo=UTC)
NO_SPREAD = timedelta(0)  # every deployment plans exactly `lookahead` ahead: exact counts

FLOWS = """
from pathlib import Path
from headrace import flow, runtime

LOG = Path(__file__).with_suffix(".log")

@flow(name="ticker")
def ticker(label: str = "x"):
    slot = runtime.scheduled_time
    with LOG.open("a") as fh:
        fh.write(f"{label} {slot.isoformat() if slot else None}\\n")
    return label

@flow(name="boom")
def boom():
    raise ValueError("the warehouse said no\\nsecond line")
"""


@dataclass
class FlowFile:
    path: Path

    def entry(self, name: str = "ticker") -> str:
        return f"{self.path}:{name}"

    def lines(self) -> list[str]:
        log = self.path.with_suffix(".log")
        return log.read_text().splitlines() if log.exists() else []

    def load(self, name: str = "ticker") -> Any:
        from headrace.engine import load_flow

        return load_flow(self.entry(name))


@pytest.fixture
def flow_file(tmp_path: Path) -> FlowFile:
    path = tmp_path / f"flows_{tmp_path.name[-12:].replace('-', '_')}.py"
    path.write_text(FLOWS)
    return FlowFile(path)


@dataclass
class Recorder:
    """A real HTTP server on 127.0.0.1 that records posted JSON bodies."""

    status: int = 200
    delay: float = 0.0
    bodies: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    url: str = ""


@pytest.fixture
def http_server() -> Iterator[Recorder]:
    rec = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            rec.attempts += 1
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if rec.delay:
                time.sleep(rec.delay)  # a server that hangs past the client's timeout
                return  # the client gave up: nothing was delivered
            if rec.status == 200:
                rec.bodies.append({"json": json.loads(body), "headers": dict(self.headers)})
            try:
                self.send_response(rec.status)
                self.end_headers()
            except OSError:
                pass

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield rec
    server.shutdown()
    server.server_close()
