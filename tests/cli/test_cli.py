"""The headrace command: run, runs list/show/logs, retry, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import insert

from headrace.cli import main
from headrace.store import get_store, utcnow
from headrace.store.schema import migrations_table

FLOW_FILE = textwrap.dedent("""
    import os
    from datetime import date
    from headrace import flow, task, get_run_logger

    COUNTS = os.environ.get("COUNTS_FILE")

    def _count(name):
        if COUNTS:
            with open(COUNTS, "a") as fh:
                fh.write(name + "\\n")

    @task
    def extract(day: date, limit: int) -> list:
        _count("extract")
        get_run_logger().info("extracting %s", day.isoformat())
        return list(range(limit))

    @task
    def load(rows: list, dry: bool) -> int:
        _count("load")
        if os.path.exists(os.environ.get("FAIL_MARKER", "/nonexistent")):
            raise RuntimeError("warehouse unavailable")
        return 0 if dry else len(rows)

    @flow(name="Nightly")
    def nightly(day: date, limit: int = 3, dry: bool = False) -> int:
        return load(extract(day, limit), dry)
""")


@pytest.fixture
def flow_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "nightly.py"
    path.write_text(FLOW_FILE)
    monkeypatch.setenv("COUNTS_FILE", str(tmp_path / "counts.txt"))
    monkeypatch.setenv("FAIL_MARKER", str(tmp_path / "fail"))
    return path


def test_run_converts_parameters_by_annotation(flow_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", f"{flow_file}:nightly", "-p", "day=2024-03-01", "-p", "limit=5",
                 "--param", "dry=false"]) == 0
    run = get_store().list_flow_runs(limit=1)[0]
    assert run["state_name"] == "Completed"
    assert json.loads(run["parameters"]) == {"day": "2024-03-01", "limit": 5, "dry": False}
    assert "Completed" in capsys.readouterr().out


def test_flow_can_be_named_by_its_display_name(flow_file: Path) -> None:
    assert main(["run", f"{flow_file}:Nightly", "-p", "day=2024-03-01"]) == 0


@pytest.mark.parametrize(("args", "message"), [
    (["-p", "day=yesterday"], "parameter 'day' of flow 'Nightly' expects date"),
    (["-p", "day=2024-01-01", "-p", "limit=many"], "parameter 'limit' of flow 'Nightly' expects int"),
    (["-p", "day=2024-01-01", "-p", "colour=red"], "has no parameter 'colour'"),
    (["-p", "day"], "is not KEY=VALUE"),
    ([], "missing a required argument: 'day'"),
])
def test_bad_parameters_are_one_line_errors(flow_file: Path, capsys: pytest.CaptureFixture[str],
                                            args: list[str], message: str) -> None:
    assert main(["run", f"{flow_file}:nightly", *args]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_missing_file_and_missing_flow(flow_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "nowhere.py:nightly"]) == 1
    assert "flow file nowhere.py does not exist" in capsys.readouterr().err
    assert main(["run", f"{flow_file}:daily"]) == 1
    assert "no flow named 'daily' (flows there: nightly)" in capsys.readouterr().err


def test_failed_run_exits_non_zero_and_retry_reuses_completed_tasks(
        flow_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "fail").touch()
    assert main(["run", f"{flow_file}:nightly", "-p", "day=2024-03-01"]) == 1
    failed = get_store().list_flow_runs(limit=1)[0]
    assert failed["state_name"] == "Failed"
    (tmp_path / "fail").unlink()
    assert main(["retry", failed["id"][:8]]) == 0
    retried = get_store().list_flow_runs(limit=1)[0]
    assert retried["state_name"] == "Completed" and retried["retry_of"] == failed["id"]
    assert (tmp_path / "counts.txt").read_text().split() == ["extract", "load", "load"]
    tasks = {t["task_name"]: t for t in get_store().list_task_runs(retried["id"])}
    assert "reused" in tasks["extract"]["state_message"]
    assert main(["retry", retried["id"]]) == 1
    assert "only a failed" in capsys.readouterr().err


def test_runs_list_show_and_logs(flow_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["run", f"{flow_file}:nightly", "-p", "day=2024-03-01"])
    (tmp_path / "fail").touch()
    main(["run", f"{flow_file}:nightly", "-p", "day=2024-03-02"])
    capsys.readouterr()
    assert main(["runs", "list", "--state", "Failed"]) == 0
    out = capsys.readouterr().out
    assert out.count("Nightly") == 1 and "Failed" in out
    failed = get_store().list_flow_runs(state="failed")[0]
    assert main(["runs", "show", failed["id"]]) == 0
    out = capsys.readouterr().out
    assert "extract-0" in out and "load-0" in out and "warehouse unavailable" in out
    assert "extracting 2024-03-02" in out
    assert main(["runs", "logs", failed["id"]]) == 0
    assert "extracting 2024-03-02" in capsys.readouterr().out
    assert main(["runs", "list", "--flow", "Nightly", "--limit", "1"]) == 0
    assert capsys.readouterr().out.count("Nightly") == 1
    assert main(["runs", "show", "ffffffff"]) == 1
    assert "no flow run with id 'ffffffff'" in capsys.readouterr().err


def test_store_with_a_newer_schema_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    store = get_store()
    with store.transaction() as conn:
        conn.execute(insert(migrations_table).values(id="9000_future", applied_at=utcnow()))
    from headrace import store as store_mod

    store_mod._STORES.clear()
    assert main(["runs", "list"]) == 1
    err = capsys.readouterr().err
    assert "newer than this headrace knows" in err and "upgrade headrace" in err


def test_unwritable_home_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HEADRACE_HOME", "/proc/no-such-place/headrace")
    assert main(["runs", "list"]) == 1
    err = capsys.readouterr().err.strip()
    assert "cannot write the run store" in err and "HEADRACE_HOME" in err and len(err.splitlines()) == 1


def test_a_killed_process_leaves_its_run_crashed_not_running(tmp_path: Path, headrace_home: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "dies.py"
    script.write_text(textwrap.dedent("""
        import os, signal
        from headrace import flow, task

        @task
        def ok() -> int:
            return 1

        @task
        def dies() -> None:
            os.kill(os.getpid(), signal.SIGKILL)

        @flow
        def doomed() -> None:
            ok()
            dies()

        doomed()
    """))
    env = {**os.environ, "HEADRACE_HOME": str(headrace_home)}
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True)
    assert proc.returncode == -9
    assert main(["runs", "list"]) == 0
    assert "Crashed" in capsys.readouterr().out
    run = get_store().list_flow_runs(limit=1)[0]
    assert run["state_name"] == "Crashed"
    assert all(t["state_type"] != "RUNNING" for t in get_store().list_task_runs(run["id"]))


def test_console_script_exit_codes(flow_file: Path, headrace_home: Path) -> None:
    exe = Path(sys.executable).with_name("headrace")
    env = {**os.environ, "HEADRACE_HOME": str(headrace_home)}
    ok = subprocess.run([str(exe), "run", f"{flow_file}:nightly", "-p", "day=2024-01-01"], env=env,
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([str(exe), "run", f"{flow_file}:nightly", "-p", "day=x"], env=env,
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "expects date" in bad.stderr


def test_runs_show_lists_the_datasets_a_run_read_and_wrote(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from headrace import flow, task
    from headrace.engine import record_dataset

    @task
    def copy() -> None:
        record_dataset("input", "duckdb", "duckdb:///src.db", "raw_sales", rows=10)
        record_dataset("output", "duckdb", "duckdb:///dwh.db", "fact_sales", rows=8, bytes_=1024)

    @flow
    def mover() -> None:
        copy()

    state = mover(return_state=True)
    assert get_store().get_flow_run(str(state.run_id))["rows_loaded"] == 8
    assert main(["runs", "show", str(state.run_id)]) == 0
    out = capsys.readouterr().out
    assert "raw_sales" in out and "fact_sales" in out and "1,024" in out and "written" in out
