"""Schedules: when a deployment fires next, as pure functions of a moment.

Every schedule answers ``next_after(moment)``: the first fire time strictly
after an aware datetime, as an aware datetime in the schedule's zone. Wall
times are resolved against the zone with the daylight-saving rules documented
in the README ("Schedules and daylight saving time"):

- a wall time skipped by a spring-forward fires once, at the first valid
  instant after it (02:30 on a 02:00 -> 03:00 night fires at 03:00);
- a wall time repeated by a fall-back fires once, at its first occurrence.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from headrace.errors import ScheduleError

# A fixed default anchor keeps interval and rrule schedules pure (no "now").
DEFAULT_ANCHOR = datetime(2020, 1, 1)
_MAX_CANDIDATES = 100_000


def get_zone(name: str) -> ZoneInfo:
    """The zoneinfo zone called ``name``; ``ScheduleError`` naming it if unknown."""
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ScheduleError(
            f"unknown time zone {name!r}; use an IANA name such as 'UTC', 'Europe/Paris' or 'Africa/Accra'"
        ) from exc


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ScheduleError(
            f"next_after needs an aware datetime, got the naive {moment.isoformat()}; pass e.g. datetime.now(UTC)"
        )


def resolve_wall_time(naive: datetime, zone: ZoneInfo) -> datetime:
    """The instant a wall time fires at in ``zone``, by the DST rules above."""
    first = naive.replace(tzinfo=zone, fold=0)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive:
        return first  # exists; fold=0 is the first of two occurrences at a fall-back
    # In a spring-forward gap: find the transition instant by bisection (second resolution).
    lo = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)  # before the transition
    hi = first.astimezone(UTC)  # after the transition
    before = lo.astimezone(zone).utcoffset()
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(zone).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return hi.replace(microsecond=0).astimezone(zone)


def _first_after(candidates: Iterator[datetime], zone: ZoneInfo, moment: datetime, what: str) -> datetime:
    """The first resolved wall time from ``candidates`` strictly after ``moment``."""
    after = moment.astimezone(UTC)  # aware datetimes in one zone compare by wall time: use UTC
    for _, naive in zip(range(_MAX_CANDIDATES), candidates, strict=False):
        fire = resolve_wall_time(naive, zone)
        if fire.astimezone(UTC) > after:
            return fire
    raise ScheduleError(f"{what} has no fire time after {moment.isoformat()}")


class Schedule(ABC):
    """Base of the schedules: ``next_after`` plus a JSON form for the store."""

    timezone: str

    @property
    def zone(self) -> ZoneInfo:
        return get_zone(self.timezone)

    @abstractmethod
    def next_after(self, moment: datetime) -> datetime:
        """The first fire time strictly after the aware datetime ``moment``."""

    def fire_times(self, start: datetime, end: datetime, *, inclusive: bool = True) -> Iterator[datetime]:
        """Fire times in ``[start, end]`` (``(start, end]`` if not ``inclusive``), in order."""
        moment = start - timedelta(microseconds=1) if inclusive else start
        last = end.astimezone(UTC)
        for fire in self.iter_after(moment):
            if fire.astimezone(UTC) > last:
                return
            yield fire

    def iter_after(self, moment: datetime) -> Iterator[datetime]:
        """Every fire time strictly after ``moment``, in order (``next_after`` repeated)."""
        while True:
            moment = self.next_after(moment)
            yield moment

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """The JSON form the store keeps (``schedule_from_dict`` reads it back)."""

    @abstractmethod
    def describe(self) -> str:
        """One line for people: ``cron 0 6 * * * (Africa/Accra)``."""

    def check_fires(self, now: datetime | None = None) -> None:
        """Refuse a schedule that can never fire (``ScheduleError``)."""
        moment = now or datetime.now(UTC)
        try:
            self.next_after(moment)
        except ScheduleError:
            raise
        except Exception as exc:
            raise ScheduleError(f"{self.describe()} never fires after {moment:%Y-%m-%d}: {exc}") from None


@dataclass(frozen=True)
class CronSchedule(Schedule):
    """Fires on a cron expression's wall times in ``timezone``.

    >>> CronSchedule("0 6 * * *", timezone="Africa/Accra").next_after(
    ...     datetime(2024, 1, 1, 7, tzinfo=UTC)).isoformat()
    '2024-01-02T06:00:00+00:00'
    """

    cron: str
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        from croniter import croniter

        fields = self.cron.split() if isinstance(self.cron, str) else []
        alias = len(fields) == 1 and fields[0].startswith("@")
        if len(fields) == 6:
            raise ScheduleError(
                f"cron expression {self.cron!r} has six fields; headrace cron has five "
                "'minute hour day-of-month month day-of-week' and no seconds field: for runs more often "
                "than once a minute use IntervalSchedule(timedelta(seconds=N))"
            )
        if not (alias or len(fields) == 5) or not croniter.is_valid(self.cron):
            raise ScheduleError(
                f"invalid cron expression {self.cron!r}; expected five fields "
                "'minute hour day-of-month month day-of-week', e.g. '0 6 * * *'"
            )
        get_zone(self.timezone)
        self._check_possible()

    def _check_possible(self) -> None:
        """Refuse a day that never exists (``0 6 31 2 *``): croniter finds no date in years of search."""
        from croniter import CroniterBadDateError, croniter

        try:
            croniter(self.cron, DEFAULT_ANCHOR).get_next(datetime)
        except CroniterBadDateError:
            raise ScheduleError(
                f"cron expression {self.cron!r} can never fire (no such date, e.g. February 31st); "
                "check its day-of-month and month fields"
            ) from None

    def next_after(self, moment: datetime) -> datetime:
        from croniter import croniter

        _require_aware(moment)
        zone = self.zone
        start = moment.astimezone(zone).replace(tzinfo=None, microsecond=0)
        # croniter on naive wall times; its get_next is strictly after `start`.
        it = croniter(self.cron, start)
        candidates = (_cron_next(it, self.cron) for _ in iter(int, 1))
        # The wall time equal to `start` may still be after `moment` (second occurrence of a fold).
        return _first_after(candidates, zone, moment, f"cron {self.cron!r}")

    def iter_after(self, moment: datetime) -> Iterator[datetime]:
        """As ``next_after`` repeated, from one croniter (much faster over many slots)."""
        from croniter import croniter

        _require_aware(moment)
        zone, last = self.zone, moment.astimezone(UTC)
        it = croniter(self.cron, moment.astimezone(zone).replace(tzinfo=None, microsecond=0))
        while True:
            fire = resolve_wall_time(_cron_next(it, self.cron), zone)
            if fire.astimezone(UTC) > last:  # skipped wall times collapse; folds fire once
                last = fire.astimezone(UTC)
                yield fire

    def to_dict(self) -> dict[str, Any]:
        return {"type": "cron", "cron": self.cron, "timezone": self.timezone}

    def describe(self) -> str:
        return f"cron {self.cron} ({self.timezone})"


def _cron_next(it: Any, cron: str) -> datetime:
    from croniter import CroniterBadDateError

    try:
        return it.get_next(datetime)  # type: ignore[no-any-return]
    except CroniterBadDateError:
        raise ScheduleError(f"cron {cron!r} has no next fire time") from None


@dataclass(frozen=True)
class IntervalSchedule(Schedule):
    """Fires every ``interval`` from ``anchor_date`` (default 2020-01-01 00:00 in ``timezone``).

    An interval of whole days keeps the anchor's wall time across DST changes
    (daily at 06:00 stays at 06:00); any other interval is exact elapsed time.
    No fire time comes before the anchor.
    """

    interval: timedelta
    anchor_date: datetime | None = None
    timezone: str = "UTC"
    _anchor: datetime = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        interval = self.interval
        if isinstance(interval, (int, float)) and not isinstance(interval, bool):
            interval = timedelta(seconds=interval)
            object.__setattr__(self, "interval", interval)
        if not isinstance(interval, timedelta) or interval <= timedelta(0):
            raise ScheduleError(f"invalid interval {self.interval}; give a positive timedelta")
        zone = get_zone(self.timezone)
        anchor = self.anchor_date or DEFAULT_ANCHOR
        if anchor.tzinfo is None:
            anchor = resolve_wall_time(anchor, zone)
        object.__setattr__(self, "_anchor", anchor.astimezone(zone))

    @property
    def _whole_days(self) -> bool:
        return self.interval % timedelta(days=1) == timedelta(0)

    def next_after(self, moment: datetime) -> datetime:
        _require_aware(moment)
        zone, anchor = self.zone, self._anchor
        if moment.astimezone(UTC) < anchor.astimezone(UTC):
            return anchor
        if not self._whole_days:
            # Exact elapsed time: aware arithmetic in one zone would be wall-clock, so use UTC.
            base = anchor.astimezone(UTC)
            steps = (moment.astimezone(UTC) - base) // self.interval + 1
            return (base + steps * self.interval).astimezone(zone)
        wall_anchor = anchor.replace(tzinfo=None)
        wall_now = moment.astimezone(zone).replace(tzinfo=None)
        steps = max(0, (wall_now - wall_anchor) // self.interval - 1)
        candidates = (wall_anchor + (steps + k) * self.interval for k in range(_MAX_CANDIDATES))
        return _first_after(candidates, zone, moment, f"interval {self.interval}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "interval",
            "interval_seconds": self.interval.total_seconds(),
            "anchor_date": self._anchor.isoformat(),
            "timezone": self.timezone,
        }

    def describe(self) -> str:
        return f"every {self.interval} from {self._anchor.isoformat()} ({self.timezone})"


@dataclass(frozen=True)
class RRuleSchedule(Schedule):
    """Fires on an iCalendar RRULE's wall times in ``timezone`` (dateutil.rrule).

    ``rrule`` is a string such as ``"FREQ=WEEKLY;BYDAY=MO,FR;BYHOUR=6;BYMINUTE=0"``,
    optionally with a ``DTSTART:`` line (default 2020-01-01 00:00, wall time).
    Rules firing more often than hourly are faster with a recent DTSTART.
    """

    rrule: str
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        get_zone(self.timezone)
        self._rule()

    def _rule(self) -> Any:
        from dateutil.rrule import rrulestr

        text = str(self.rrule).strip()
        try:
            rule = rrulestr(text, dtstart=DEFAULT_ANCHOR, ignoretz=True, forceset=True)
        except (ValueError, TypeError, AttributeError) as exc:
            raise ScheduleError(
                f"invalid rrule {self.rrule!r}: {exc}; expected e.g. 'FREQ=DAILY;BYHOUR=6;BYMINUTE=0'"
            ) from exc
        return rule

    def next_after(self, moment: datetime) -> datetime:
        _require_aware(moment)
        zone, rule = self.zone, self._rule()
        wall = moment.astimezone(zone).replace(tzinfo=None)
        # Start one hour early: a wall time before `wall` can still be after `moment` in a fold.
        start = rule.after(wall - timedelta(hours=1), inc=False)

        def candidates() -> Iterator[datetime]:
            current = start
            while current is not None:
                yield current
                current = rule.after(current, inc=False)

        return _first_after(candidates(), zone, moment, f"rrule {self.rrule!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"type": "rrule", "rrule": self.rrule, "timezone": self.timezone}

    def describe(self) -> str:
        return f"rrule {self.rrule} ({self.timezone})"


def schedule_from_dict(data: dict[str, Any] | None) -> Schedule | None:
    """Rebuild a schedule from its stored JSON form (``to_dict``)."""
    if not data:
        return None
    kind = data.get("type")
    if kind == "cron":
        return CronSchedule(data["cron"], timezone=data.get("timezone", "UTC"))
    if kind == "interval":
        return IntervalSchedule(
            timedelta(seconds=float(data["interval_seconds"])),
            anchor_date=datetime.fromisoformat(data["anchor_date"]),
            timezone=data.get("timezone", "UTC"),
        )
    if kind == "rrule":
        return RRuleSchedule(data["rrule"], timezone=data.get("timezone", "UTC"))
    raise ScheduleError(f"unknown schedule type {kind!r} in the run store")
