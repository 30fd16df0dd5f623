"""The schedule commands, through the real ``headrace`` entry point."""

from __future__ import annotations

from pathlib import Path

import pytest

from headrace.cli import main
from headrace.store import get_store

from .conftest import FLOWS

DEPLOY_FILE = (
    FLOWS
    + """
from headrace import Deployment, CronSchedule

Deployment.build_from_flow(flow=ticker, name="morning", parameters={"label": "m"},
    schedule=CronSchedule("0 6 * * *", timezone="Africa/Accra"), tags=["sales"]).apply()
evening = Deployment(ticker, "evening", schedule=CronSchedule("0 18 * * *", timezone="America/New_York"),
                     concurrency_limit=2)
"""
)


@pytest.fixture
def deploy_file(tmp_path: Path) -> Path:
    path = tmp_path / "deploy_here.py"
    path.write_text(DEPLOY_FILE)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


def test_deploy_then_list_pause_resume(deploy_file: Path, capsys) -> None:
    code, out = run(capsys, "deploy", str(deploy_file))
    assert code == 0 and "morning" in out and "evening" in out
    code, out = run(capsys, "deployments", "list")
    assert code == 0 and "morning" in out and "GMT" in out and ("EST" in out or "EDT" in out)
    assert run(capsys, "deployments", "pause", "evening")[0] == 0
    assert get_store().get_deployment("evening")["paused"] is True
    assert "paused" in run(capsys, "deployments", "list")[1]
    assert run(capsys, "deployments", "resume", "evening")[0] == 0
    assert get_store().get_deployment("evening")["paused"] is False
    code, out = run(capsys, "deployments", "pause", "nope")
    assert code == 1 and "no deployment named 'nope'" in out


def test_deploy_a_file_without_deployments_fails(tmp_path: Path, capsys) -> None:
    path = tmp_path / "plain_flows.py"
    path.write_text(FLOWS)
    code, out = run(capsys, "deploy", str(path))
    assert code == 1 and "declares no deployment" in out


def test_backfill_command_runs_resumes_and_refuses_bad_ranges(deploy_file: Path, capsys) -> None:
    run(capsys, "deploy", str(deploy_file))
    code, out = run(capsys, "backfill", "morning", "--start", "2024-01-01", "--end", "2024-01-03", "--max-active", "2")
    assert code == 0 and "3 Completed" in out
    code, out = run(capsys, "backfill", "morning", "--start", "2024-01-01", "--end", "2024-01-04")
    assert code == 0 and "3 already completed" in out and "1 Completed" in out
    code, out = run(capsys, "runs", "list")
    assert out.count("ticker") >= 4
    code, out = run(capsys, "backfill", "morning", "--start", "2024-02-01", "--end", "2024-01-01")
    assert code == 1 and "before it starts" in out
    code, out = run(capsys, "backfill", "morning", "--start", "1980-01-01", "--end", "2024-01-01")
    assert code == 1 and "--yes" in out
    code, out = run(capsys, "backfill", "morning", "--start", "someday", "--end", "2024-01-01")
    assert code == 1 and "someday" in out


def test_concurrency_limits_commands(capsys) -> None:
    assert run(capsys, "concurrency", "set", "warehouse", "3")[0] == 0
    code, out = run(capsys, "concurrency", "list")
    assert "warehouse" in out and "3" in out
    assert get_store().concurrency_limits() == {"warehouse": 3}
    assert run(capsys, "concurrency", "delete", "warehouse")[0] == 0
    assert get_store().concurrency_limits() == {}


def test_serve_once_runs_what_is_due(deploy_file: Path, capsys) -> None:
    from datetime import timedelta

    from headrace.schedule import CronSchedule, Deployment
    from headrace.store import utcnow

    run(capsys, "deploy", str(deploy_file))
    from headrace.engine import load_flow

    flow = load_flow(f"{deploy_file}:ticker")
    Deployment(flow, "now-ish", schedule=CronSchedule("* * * * *")).apply(now=utcnow() - timedelta(minutes=3))
    code, out = run(capsys, "serve", "--once")
    assert code == 0 and "Ran 1 due run(s)" in out  # catchup=False: only the latest slot
    assert run(capsys, "worker", "--once")[1].startswith("Ran 0")
