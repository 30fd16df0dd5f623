"""``Deployment``: a flow plus its schedule, parameters, limits and alerts, kept in the store."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from headrace.errors import ScheduleError
from headrace.schedule.alerts import Alert, alert_from_dict
from headrace.schedule.schedules import Schedule, schedule_from_dict
from headrace.secrets import Secret, is_secret_name, protect

if TYPE_CHECKING:
    from headrace.store import RunStore

log = logging.getLogger("headrace.schedule")

# Deployments applied while `headrace deploy FILE.py` imports the file.
_collecting: list[list[Deployment]] = []


@contextmanager
def collect_applied() -> Iterator[list[Deployment]]:
    """Gather every deployment ``apply()``-ed inside the block (used by ``headrace deploy``)."""
    bucket: list[Deployment] = []
    _collecting.append(bucket)
    try:
        yield bucket
    finally:
        _collecting.remove(bucket)


class Deployment:
    """A flow to run on a schedule (or on demand) with fixed parameters.

    >>> Deployment(sales_etl, "daily-sales", schedule=CronSchedule("0 6 * * *"),
    ...            late_after=timedelta(hours=1)).apply()     # doctest: +SKIP
    """

    def __init__(
        self,
        flow: Any,
        name: str,
        parameters: dict[str, Any] | None = None,
        schedule: Schedule | None = None,
        tags: list[str] | None = None,
        concurrency_limit: int | None = None,
        catchup: bool = False,
        on_failure: list[Alert] | None = None,
        on_success: list[Alert] | None = None,
        late_after: timedelta | None = None,
        entrypoint: str | None = None,
    ) -> None:
        if not name or not str(name).strip():
            raise ScheduleError("a deployment needs a non-empty name")
        if schedule is not None and not isinstance(schedule, Schedule):
            raise ScheduleError(
                f"deployment {name!r}: schedule must be a CronSchedule, "
                f"IntervalSchedule or RRuleSchedule, not {type(schedule).__name__}"
            )
        if schedule is not None:
            schedule.check_fires()
        if concurrency_limit is not None and int(concurrency_limit) < 1:
            raise ScheduleError(f"deployment {name!r}: concurrency_limit must be >= 1")
        if late_after is not None and late_after <= timedelta(0):
            raise ScheduleError(f"deployment {name!r}: late_after must be a positive timedelta")
        for hook in [*(on_failure or []), *(on_success or [])]:
            if not isinstance(hook, Alert):
                raise ScheduleError(
                    f"deployment {name!r}: {hook!r} is not an alert; a deployment keeps SlackWebhook, "
                    "Webhook or Email alerts in the store; attach other hooks to the flow (@flow(on_failure=[...]))"
                )
        self.flow = flow
        self.name = str(name)
        self.parameters = dict(parameters or {})
        self.schedule = schedule
        self.tags = list(tags or [])
        self.concurrency_limit = concurrency_limit
        self.catchup = catchup
        self.on_failure = list(on_failure or [])
        self.on_success = list(on_success or [])
        self.late_after = late_after
        self._entrypoint = entrypoint
        self.id: str | None = None

    @classmethod
    def build_from_flow(
        cls,
        flow: Any,
        name: str,
        schedule: Schedule | None = None,
        tags: list[str] | None = None,
        parameters: dict[str, Any] | None = None,
        **options: Any,
    ) -> Deployment:
        """The older constructor, kept so existing deployment files keep working."""
        return cls(flow, name, parameters=parameters, schedule=schedule, tags=tags, **options)

    @property
    def entrypoint(self) -> str:
        entry = self._entrypoint or getattr(self.flow, "entrypoint", None)
        if not entry:
            raise ScheduleError(
                f"deployment {self.name!r}: cannot tell which file defines its flow; "
                "pass entrypoint='path/file.py:flow_fn'"
            )
        return str(entry)

    def to_row(self) -> dict[str, Any]:
        """The deployment as the store keeps it."""
        alerts = [{"on": "failure", **a.to_dict()} for a in self.on_failure] + [
            {"on": "success", **a.to_dict()} for a in self.on_success
        ]
        return {
            "name": self.name,
            "flow_name": getattr(self.flow, "name", str(self.flow)),
            "entrypoint": self.entrypoint,
            "parameters": json.dumps(self._stored_parameters(), sort_keys=True, default=str),
            "schedule": json.dumps(self.schedule.to_dict()) if self.schedule else None,
            "tags": json.dumps(self.tags),
            "concurrency_limit": self.concurrency_limit,
            "catchup": bool(self.catchup),
            "alerts": json.dumps(alerts) if alerts else None,
            "late_after_seconds": self.late_after.total_seconds() if self.late_after else None,
        }

    def _stored_parameters(self) -> dict[str, Any]:
        """Secret parameters (``Secret`` values, ``Secret[...]`` annotations, secret-sounding names) encrypted."""
        marked: frozenset[str] = getattr(self.flow, "secret_params", frozenset())
        out: dict[str, Any] = {}
        for name, value in self.parameters.items():
            real = value.get_secret_value() if isinstance(value, Secret) else value
            secret = isinstance(value, Secret) or name in marked or is_secret_name(name)
            out[name] = protect(str(real)) if secret and real is not None else real
        return out

    def apply(self, *, store: RunStore | None = None, now: datetime | None = None) -> str:
        """Register or update this deployment in the run store; return its id."""
        from headrace.store import get_store

        if self.schedule is not None:  # re-check: a schedule may have been built unchecked
            schedule_from_dict(self.schedule.to_dict())
            self.schedule.check_fires(now)
        row = (store or get_store()).upsert_deployment(self.to_row(), now=now)
        self.id = str(row["id"])
        log.debug("deployment %s applied (%s)", self.name, self.schedule.describe() if self.schedule else "no schedule")
        if _collecting:
            _collecting[-1].append(self)
        return self.id

    def __repr__(self) -> str:
        return f"Deployment({self.name!r}, schedule={self.schedule!r})"


def stored_alerts(row: dict[str, Any], on: str) -> list[Alert]:
    """The alerts a stored deployment sends ``on`` "failure", "success" or "late"."""
    if not row.get("alerts"):
        return []
    out = []
    for data in json.loads(row["alerts"]):
        when = data.pop("on", "failure")
        if when == on or (on == "late" and when == "failure"):
            out.append(alert_from_dict(data))
    return out


def stored_schedule(row: dict[str, Any]) -> Schedule | None:
    return schedule_from_dict(json.loads(row["schedule"])) if row.get("schedule") else None
