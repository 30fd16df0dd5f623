"""Shared fixtures: an isolated HEADRACE_HOME per test and real PostgreSQL schemas."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

PG_ADMIN_URL = os.environ.get("HEADRACE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(autouse=True)
def headrace_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own embedded store and result folder."""
    home = tmp_path / "hr_home"
    monkeypatch.setenv("HEADRACE_HOME", str(home))
    monkeypatch.delenv("HEADRACE_STORE", raising=False)
    yield home
    _forget_stores()


@pytest.fixture(autouse=True)
def logging_config_restored() -> Iterator[None]:
    """A test calling the CLI in-process lets it configure logging (a handler, levels) as it does
    for its own process; the next test starts from the configuration it had before."""
    root = logging.getLogger()
    level, handlers = root.level, set(root.handlers)
    yield
    root.setLevel(level)
    for handler in root.handlers[:]:
        if handler not in handlers and type(handler).__module__.startswith("rich."):
            root.removeHandler(handler)


@pytest.fixture(autouse=True)
def secrets_forgotten() -> Iterator[None]:
    """Values a test registers as secrets (``redact`` hides them process-wide from then on) are
    forgotten after it, so a later test's pages and messages are not masked by them."""
    from headrace import secrets

    known, pattern = set(secrets._known), secrets._known_pattern
    yield
    with secrets._lock:
        secrets._known.clear()
        secrets._known.update(known)
        secrets._known_pattern = pattern
        secrets._known_version += 1  # results remembered under the test's secrets are stale


def _forget_stores() -> None:
    from headrace import store as store_mod

    for st in list(store_mod._STORES.values()):
        try:
            st.close()
        except Exception:
            pass
    store_mod._STORES.clear()


def _pg_schema_url(schema: str, driver: str = "postgresql+psycopg") -> str:
    base = PG_ADMIN_URL.split("://", 1)[1].split("?", 1)[0]
    return f"{driver}://{base}?options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema on the local server, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        _forget_stores()  # write buffered records before their schema goes
        _close_pg_pools()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _close_pg_pools() -> None:
    """Connections the package keeps for later (io loads, quality checks) are for this test's
    schema only: close them, so a whole run holds few of the shared server's connections."""
    from headrace.io import _pgpool
    from headrace.quality.backends.sources import close_engines

    _pgpool.close_all()
    close_engines()


@pytest.fixture
def pg_url(pg_schema: str) -> str:
    """A SQLAlchemy URL whose connections see only the test's own schema."""
    return _pg_schema_url(pg_schema)


@pytest.fixture
def pg_libpq_url(pg_schema: str) -> str:
    """The same schema as a plain libpq URL (for ADBC, psql and psycopg)."""
    return _pg_schema_url(pg_schema, driver="postgresql")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, headrace_home: Path) -> str:
    """One store test suite on every backend."""
    if request.param == "sqlite":
        return f"sqlite:///{headrace_home / 'headrace.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(store_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The process store on each backend, with HEADRACE_STORE pointing at it."""
    from headrace.store import get_store

    monkeypatch.setenv("HEADRACE_STORE", store_url)
    return get_store(store_url)


# -- S3 through a real S3-compatible server (moto) on 127.0.0.1, for io and the lake job ----------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto S3 server on a free loopback port, for the whole session."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket; endpoint and credentials reach s3fs only through the usual env vars."""
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    name = f"bucket-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=name)
    return name
