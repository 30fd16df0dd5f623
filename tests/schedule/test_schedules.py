"""The pure "when next" functions, including daylight-saving transitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from headrace.errors import ScheduleError
from headrace.schedule import CronSchedule, IntervalSchedule, RRuleSchedule
from headrace.schedule.schedules import schedule_from_dict

NY = "America/New_York"
PARIS = "Europe/Paris"


def fires(schedule, start: datetime, n: int) -> list[datetime]:
    out, moment = [], start
    for _ in range(n):
        moment = schedule.next_after(moment)
        out.append(moment)
    return out


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_cron_fires_in_its_zone_strictly_after() -> None:
    sched = CronSchedule("0 6 * * *", timezone="Africa/Accra")
    assert sched.next_after(utc(2024, 1, 1, 5, 59)) == utc(2024, 1, 1, 6)
    assert sched.next_after(utc(2024, 1, 1, 6)) == utc(2024, 1, 2, 6)  # strictly after
    paris = CronSchedule("0 6 * * *", timezone=PARIS).next_after(utc(2024, 7, 1))
    assert paris == utc(2024, 7, 1, 4) and paris.tzinfo == ZoneInfo(PARIS)


def test_cron_spring_forward_skipped_wall_time_fires_once_at_first_valid_instant() -> None:
    # 2024-03-10: New York jumps from 02:00 EST to 03:00 EDT; 02:30 does not exist.
    daily = CronSchedule("30 2 * * *", timezone=NY)
    got = fires(daily, utc(2024, 3, 9, 12), 3)
    assert [g.isoformat() for g in got] == [
        "2024-03-10T03:00:00-04:00",
        "2024-03-11T02:30:00-04:00",
        "2024-03-12T02:30:00-04:00",
    ]
    # Every quarter hour: 02:00..02:45 are skipped and fire once, together, at 03:00.
    quarter = fires(CronSchedule("*/15 * * * *", timezone=NY), utc(2024, 3, 10, 6, 40), 4)
    assert [q.strftime("%H:%M%z") for q in quarter] == ["01:45-0500", "03:00-0400", "03:15-0400", "03:30-0400"]


def test_cron_fall_back_repeated_wall_time_fires_once() -> None:
    # 2024-11-03: New York repeats 01:00-01:59 (EDT, then EST).
    got = fires(CronSchedule("30 1 * * *", timezone=NY), utc(2024, 11, 2, 12), 2)
    assert [g.isoformat() for g in got] == ["2024-11-03T01:30:00-04:00", "2024-11-04T01:30:00-05:00"]
    hourly = fires(CronSchedule("0 * * * *", timezone=NY), utc(2024, 11, 3, 4), 3)
    assert [h.astimezone(UTC).hour for h in hourly] == [5, 7, 8]  # 01:00 EDT, 02:00 EST, 03:00 EST
    # Asked from inside the second 01:xx, nothing fires again before 02:00 EST.
    second_one_thirty = datetime(2024, 11, 3, 1, 30, tzinfo=ZoneInfo(NY), fold=1)
    assert CronSchedule("*/10 * * * *", timezone=NY).next_after(second_one_thirty) == utc(2024, 11, 3, 7)


def test_interval_of_days_keeps_wall_time_across_dst() -> None:
    sched = IntervalSchedule(timedelta(days=1), anchor_date=datetime(2024, 3, 1, 2, 30), timezone=NY)
    got = fires(sched, utc(2024, 3, 8, 12), 4)
    assert [g.strftime("%d %H:%M") for g in got] == ["09 02:30", "10 03:00", "11 02:30", "12 02:30"]


def test_interval_under_a_day_is_elapsed_time() -> None:
    sched = IntervalSchedule(timedelta(hours=1), timezone=NY)
    got = fires(sched, utc(2024, 3, 10, 5, 30), 3)
    assert [g.astimezone(UTC) - got[0].astimezone(UTC) for g in got] == [
        timedelta(0),
        timedelta(hours=1),
        timedelta(hours=2),
    ]
    anchored = IntervalSchedule(timedelta(minutes=15), anchor_date=utc(2024, 1, 1, 0, 5))
    assert anchored.next_after(utc(2023, 1, 1)) == utc(2024, 1, 1, 0, 5)  # nothing before the anchor
    assert anchored.next_after(utc(2024, 1, 1, 0, 20)) == utc(2024, 1, 1, 0, 35)


def test_rrule_with_dst() -> None:
    sched = RRuleSchedule("FREQ=DAILY;BYHOUR=2;BYMINUTE=30", timezone=NY)
    got = fires(sched, utc(2024, 3, 9, 12), 2)
    assert [g.isoformat() for g in got] == ["2024-03-10T03:00:00-04:00", "2024-03-11T02:30:00-04:00"]
    weekly = RRuleSchedule("FREQ=WEEKLY;BYDAY=MO;BYHOUR=6;BYMINUTE=0", timezone=PARIS)
    assert weekly.next_after(utc(2024, 7, 3)).isoformat() == "2024-07-08T06:00:00+02:00"


@pytest.mark.parametrize(
    "schedule",
    [
        CronSchedule("15 6 * * 1-5", timezone=PARIS),
        IntervalSchedule(timedelta(hours=6), anchor_date=utc(2024, 1, 1, 3), timezone=NY),
        RRuleSchedule("FREQ=HOURLY;INTERVAL=3", timezone="Asia/Kolkata"),
    ],
)
def test_schedules_round_trip_through_the_store_form(schedule) -> None:
    again = schedule_from_dict(schedule.to_dict())
    start = utc(2024, 5, 1)
    assert fires(again, start, 5) == fires(schedule, start, 5)


@pytest.mark.parametrize(
    "make, text",
    [
        (lambda: CronSchedule("61 * * * *"), "61 * * * *"),
        (lambda: CronSchedule("every day at six"), "every day at six"),
        (lambda: CronSchedule("0 6 * * *", timezone="Mars/Olympus"), "Mars/Olympus"),
        (lambda: IntervalSchedule(timedelta(0)), "0:00:00"),
        (lambda: RRuleSchedule("FREQ=SOMETIMES", timezone="UTC"), "FREQ=SOMETIMES"),
        (lambda: RRuleSchedule("FREQ=DAILY", timezone="Not/AZone"), "Not/AZone"),
    ],
)
def test_bad_schedules_fail_at_construction_naming_the_text(make, text: str) -> None:
    with pytest.raises(ScheduleError, match=text.replace("*", r"\*")):
        make()


def test_naive_moment_is_refused() -> None:
    with pytest.raises(ScheduleError, match="aware"):
        CronSchedule("* * * * *").next_after(datetime(2024, 1, 1))


def test_fire_times_lists_a_range_inclusive() -> None:
    sched = CronSchedule("0 0 * * *")
    got = list(sched.fire_times(utc(2024, 1, 1), utc(2024, 1, 3)))
    assert got == [utc(2024, 1, 1), utc(2024, 1, 2), utc(2024, 1, 3)]
