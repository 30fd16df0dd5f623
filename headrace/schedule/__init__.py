"""Deployments, schedules, the scheduler, workers, backfills and alerts.

Public names load lazily so ``import headrace.schedule`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from headrace.schedule.alerts import Alert, Email, SlackWebhook, Webhook
    from headrace.schedule.backfill import Backfill
    from headrace.schedule.deployment import Deployment
    from headrace.schedule.scheduler import Scheduler
    from headrace.schedule.schedules import CronSchedule, IntervalSchedule, RRuleSchedule, Schedule
    from headrace.schedule.worker import Worker

__all__ = [
    "Alert",
    "Backfill",
    "CronSchedule",
    "Deployment",
    "Email",
    "IntervalSchedule",
    "RRuleSchedule",
    "Schedule",
    "Scheduler",
    "SlackWebhook",
    "Webhook",
    "Worker",
]

_WHERE = {
    "Alert": "alerts",
    "Email": "alerts",
    "SlackWebhook": "alerts",
    "Webhook": "alerts",
    "Backfill": "backfill",
    "Deployment": "deployment",
    "Scheduler": "scheduler",
    "CronSchedule": "schedules",
    "IntervalSchedule": "schedules",
    "RRuleSchedule": "schedules",
    "Schedule": "schedules",
    "Worker": "worker",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'headrace.schedule' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"headrace.schedule.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
