"""The schedule part's public names import, and importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import headrace
import headrace.schedule as schedule


def test_public_names_import_and_nothing_private_leaks() -> None:
    for name in schedule.__all__:
        assert getattr(schedule, name) is not None
        assert not name.startswith("_")
    for name in ("Deployment", "CronSchedule", "IntervalSchedule", "RRuleSchedule", "SlackWebhook", "Webhook", "Email"):
        assert getattr(headrace, name) is getattr(schedule, name)
    assert sorted(dir(schedule)) == sorted(schedule.__all__)


def test_importing_the_schedule_part_loads_no_heavy_module() -> None:
    code = (
        "import sys, headrace.schedule; "
        "print(','.join(m for m in ('httpx', 'sqlalchemy', 'croniter', 'headrace.engine') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
