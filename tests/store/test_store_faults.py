"""Issue 9: a locked or dropped store is retried; a corrupt or read-only one is a one-line error."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, text

from headrace.errors import StoreError, StoreNotWritable
from headrace.store import RunStore, utcnow
from headrace.store import retry as store_retry

PG_ADMIN_URL = os.environ.get("HEADRACE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _row() -> dict[str, object]:
    rid = uuid.uuid4().hex
    return {"id": rid, "flow_name": "f", "name": f"f-{rid[:8]}", "state_type": "RUNNING",
            "state_name": "Running", "run_count": 1, "created_at": utcnow(), "cancel_requested": False}


def test_a_sqlite_lock_held_by_another_connection_is_waited_out(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_retry, "SQLITE_BUSY_MS", 100)  # SQLite gives up fast; the store retries
    path = tmp_path / "locked.db"
    store = RunStore(f"sqlite:///{path}")
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # a real write lock, held by another connection
    released = threading.Timer(1.0, lambda: other.execute("COMMIT"))
    released.start()
    started = time.monotonic()
    row = _row()
    store.insert_flow_run(row)  # locked for ~1 s: several attempts fail with "database is locked"
    waited = time.monotonic() - started
    released.join()
    other.close()
    assert waited >= 0.8
    assert store.get_flow_run(str(row["id"]))["state_name"] == "Running"
    store.close()


@pytest.mark.postgres
def test_a_dropped_postgresql_connection_is_retried(pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    store = RunStore(pg_url)
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    killed: list[int] = []

    @event.listens_for(store.engine, "begin")
    def kill_once(conn) -> None:  # type: ignore[no-untyped-def]
        if killed:
            return
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with admin.connect() as a:
            killed.append(int(a.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar() or 0))

    row = _row()
    store.insert_flow_run(row)  # the first attempt's connection is terminated mid-transaction
    assert killed == [1]
    assert "dropped the connection" in caplog.text and "retrying" in caplog.text
    assert store.get_flow_run(str(row["id"]))["name"] == row["name"]
    store.close()
    admin.dispose()


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HEADRACE_HOME": str(home)}
    env.pop("HEADRACE_STORE", None)
    code = "import sys; from headrace.cli import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=60)


def test_a_corrupt_store_file_is_a_one_line_error(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "headrace.db").write_bytes(b"this is not a database at all\n" * 200)
    with pytest.raises(StoreError, match="not a readable SQLite database.*move the file aside") as info:
        RunStore(f"sqlite:///{home / 'headrace.db'}")
    assert str(home / "headrace.db") in str(info.value)
    out = _cli(home, "runs", "list")
    assert out.returncode == 1
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "headrace.db" in lines[0] and "move the file aside" in lines[0], out.stderr


def test_a_read_only_store_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    RunStore(f"sqlite:///{path}").close()
    store = RunStore(f"sqlite:///file:{path}?mode=ro&uri=true", migrate=False)  # read-only even for root
    with pytest.raises(StoreNotWritable, match=r"ro\.db.*make it writable or set HEADRACE_HOME") as info:
        store.insert_flow_run(_row())
    assert "\n" not in str(info.value)
    store.close()
