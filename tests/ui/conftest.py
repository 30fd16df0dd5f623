"""Fixtures for the web page: a store holding real runs, and the page served on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from flows_src import FLOWS


@dataclass
class Seeded:
    """Runs the tests look at: one completed, one failed, one with quality checks, a lake job."""

    store: Any
    flow_file: Path
    good: str
    bad: str
    checked: str
    lake: str

    def entry(self, name: str) -> str:
        return f"{self.flow_file}:{name}"


def seed(store: Any, folder: Path) -> Seeded:
    from headrace.engine import load_flow, run_flow
    from headrace.schedule import CronSchedule, Deployment

    flow_file = folder / f"uiflows_{folder.name[-10:].replace('-', '_')}.py"
    flow_file.write_text(FLOWS)
    ids = {}
    for name, params in (("good", {"n": 5}), ("bad", {"n": 3}), ("checked", {}), ("lake", {"steps": 3})):
        ids[name] = str(run_flow(load_flow(f"{flow_file}:{name}"), params).run_id)
    store.writer.flush()
    Deployment(load_flow(f"{flow_file}:good"), "nightly-orders", parameters={"n": 4},
               schedule=CronSchedule("0 6 * * *", timezone="Africa/Accra")).apply(store=store)
    Deployment(load_flow(f"{flow_file}:good"), "on-demand", parameters={"n": 2}).apply(store=store)
    return Seeded(store, flow_file, **ids)


@pytest.fixture
def sqlite_store(headrace_home: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from headrace.store import get_store

    url = f"sqlite:///{headrace_home / 'headrace.db'}"
    monkeypatch.setenv("HEADRACE_STORE", url)
    return get_store(url)


@pytest.fixture
def seeded(sqlite_store: Any, tmp_path: Path) -> Seeded:
    return seed(sqlite_store, tmp_path)


@pytest.fixture
def server(sqlite_store: Any) -> Iterator[Any]:
    from headrace.ui import UIServer, UISettings

    srv = UIServer(UISettings(port=0, store_url=sqlite_store.url)).start()
    yield srv
    srv.stop()


@pytest.fixture
def client(server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=20) as c:
        yield c


def csrf(client: httpx.Client) -> str:
    """The CSRF token a page hands the browser (in its forms and a meta tag)."""
    import re

    found = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', client.get("/deployments").text)
    assert found is not None
    return found.group(1)


def post(client: httpx.Client, path: str, **kwargs: Any) -> httpx.Response:
    """A POST as the page's script sends it: with the CSRF header."""
    return client.post(path, headers={"X-CSRF-Token": csrf(client)}, **kwargs)
