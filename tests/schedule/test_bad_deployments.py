"""Issue 9: a schedule that can never fire is refused; one bad deployment never stops the others."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import update

from headrace.cli import main
from headrace.errors import ScheduleError
from headrace.schedule import CronSchedule, Deployment, Scheduler
from headrace.store.schema import deployments

from .conftest import NO_SPREAD, T0

MIN = timedelta(minutes=1)


def test_a_cron_that_never_fires_is_refused_when_built() -> None:
    with pytest.raises(ScheduleError, match="can never fire.*February 31st"):
        CronSchedule("0 6 31 2 *")
    CronSchedule("0 6 29 2 *")  # leap days exist


def test_a_six_field_cron_is_refused_with_the_reason() -> None:
    with pytest.raises(ScheduleError, match="six fields.*no seconds field.*IntervalSchedule"):
        CronSchedule("*/5 * * * * *")


def test_a_deployment_whose_planning_fails_is_marked_and_the_others_keep_their_slots(
        store, flow_file, capsys) -> None:  # type: ignore[no-untyped-def]
    good = Deployment(flow_file.load(), "good", schedule=CronSchedule("*/10 * * * *"))
    bad = Deployment(flow_file.load(), "bad", schedule=CronSchedule("*/10 * * * *"))
    good.apply(now=T0 - MIN)
    bad.apply(now=T0 - MIN)
    # As an older headrace stored it: a schedule that can never fire.
    with store.transaction() as conn:
        conn.execute(update(deployments).where(deployments.c.id == bad.id).values(
            schedule=json.dumps({"type": "cron", "cron": "0 6 31 2 *", "timezone": "UTC"})))
    scheduler = Scheduler(store, spread=NO_SPREAD)
    assert scheduler.tick(T0).created == 2  # good's 06:00 and 06:10
    assert scheduler.tick(T0 + 30 * MIN).created == 3
    assert len(store.list_flow_runs(deployment_id=good.id, limit=100)) == 5
    assert store.list_flow_runs(deployment_id=bad.id, limit=100) == []
    assert "never fire" in store.get_deployment("bad")["error"]
    assert store.get_deployment("good")["error"] is None
    assert main(["deployments", "list"]) == 0
    out = capsys.readouterr().out
    assert "good" in out and "bad" in out and "never" in out  # the list shows both and why one is stuck
    # Fixing the schedule clears the mark.
    Deployment(flow_file.load(), "bad", schedule=CronSchedule("0 6 * * *")).apply(now=T0 + 30 * MIN)
    assert store.get_deployment("bad")["error"] is None
