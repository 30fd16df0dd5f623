"""Backfills: one run per slot, resumable, bounded, and refusing bad ranges."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from headrace.errors import ScheduleError
from headrace.schedule import Backfill, CronSchedule, Deployment

from .conftest import FlowFile


def _daily(flow_file: FlowFile, name: str = "daily", flow: str = "ticker") -> Deployment:
    dep = Deployment(
        flow_file.load(flow),
        name,
        parameters={} if flow == "boom" else {"label": name},
        schedule=CronSchedule("0 6 * * *", timezone="Africa/Accra"),
    )
    dep.apply()
    return dep


def _day(d: int) -> date:
    return date(2024, 1, d)


def test_one_run_per_slot_visible_in_runs_and_resumable(store, flow_file) -> None:
    _daily(flow_file)
    seen: list[tuple[datetime, str]] = []
    first = Backfill.plan(store, "daily", _day(1), _day(3), max_active=2)
    assert len(first.slots) == 3
    assert first.run(lambda slot, state: seen.append((slot, state))) == {
        "Completed": 3,
        "Skipped (already completed)": 0,
    }
    assert sorted(s for s, _ in seen) == [datetime(2024, 1, d, 6, tzinfo=UTC) for d in (1, 2, 3)]
    again = Backfill.plan(store, "daily", _day(1), _day(5))
    assert len(again.pending) == 2  # the first three are done
    assert again.run()["Completed"] == 2
    runs = store.list_flow_runs(flow="ticker", limit=50)
    assert len(runs) == 5 and all(r["state_name"] == "Completed" for r in runs)
    assert sorted(ln.split()[1][:10] for ln in flow_file.lines()) == [f"2024-01-0{d}" for d in range(1, 6)]


def test_failed_slots_run_again_on_resume(store, flow_file) -> None:
    _daily(flow_file, "boomer", flow="boom")
    assert Backfill.plan(store, "boomer", _day(1), _day(2)).run()["Failed"] == 2
    assert Backfill.plan(store, "boomer", _day(1), _day(2)).run()["Failed"] == 2
    keys = [r["idempotency_key"] for r in store.list_flow_runs(limit=10)]
    assert len(keys) == 4 and len(set(keys)) == 4


@pytest.mark.parametrize(
    "start, end, match",
    [
        (_day(10), _day(1), "ends .* before it starts"),
        (datetime(1990, 1, 1), datetime(2024, 1, 1), "more than 10,000 slots.*--yes"),
    ],
)
def test_bad_ranges_are_refused(store, flow_file, start: date, end: date, match: str) -> None:
    _daily(flow_file)
    with pytest.raises(ScheduleError, match=match):
        Backfill.plan(store, "daily", start, end)


def test_yes_allows_a_large_backfill_plan(store, flow_file) -> None:
    _daily(flow_file)
    with pytest.raises(ScheduleError, match="more than 100 slots"):
        Backfill.plan(store, "daily", date(2023, 1, 1), date(2023, 12, 31), max_slots=100)
    plan = Backfill.plan(store, "daily", date(2023, 1, 1), date(2023, 12, 31), max_slots=100, yes=True)
    assert len(plan.slots) == 365


def test_no_schedule_no_backfill(store, flow_file) -> None:
    Deployment(flow_file.load(), "adhoc").apply()
    with pytest.raises(ScheduleError, match="has no schedule"):
        Backfill.plan(store, "adhoc", _day(1), _day(2))


def test_backfill_respects_the_deployment_concurrency_limit(store, flow_file) -> None:
    dep = Deployment(flow_file.load(), "limited", schedule=CronSchedule("0 * * * *"), concurrency_limit=1)
    dep.apply()
    plan = Backfill.plan(store, "limited", datetime(2024, 1, 1), datetime(2024, 1, 1, 5), max_active=4)
    counts: dict[str, Any] = plan.run()
    assert counts["Completed"] == 6
