"""Backfills: one run per slot of a deployment's schedule over a past range.

Resumable: a slot that already has a completed run of the deployment is
skipped, and a slot whose run is still waiting or running is waited for, not
duplicated. Runs are ordinary flow runs of the deployment (``runs list``
shows them), claimed like any scheduled run so a ``serve`` process sharing
the store never runs the same one twice.
"""

from __future__ import annotations

import logging
import time as clock
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Any

from headrace.errors import ScheduleError
from headrace.schedule.deployment import stored_schedule
from headrace.schedule.scheduler import new_run_row
from headrace.schedule.worker import Worker
from headrace.store.base import utcnow
from headrace.store.deployments import BACKFILL_MARK, NOT_FINISHED, slot_key

if TYPE_CHECKING:
    from headrace.store import RunStore

log = logging.getLogger("headrace.schedule")

MAX_SLOTS = 10_000
Progress = Callable[[datetime, str], None]


@dataclass
class Backfill:
    """The slots of ``deployment`` in ``[start, end]``; ``run`` executes those not yet completed."""

    store: RunStore
    deployment: dict[str, Any]
    start: datetime
    end: datetime
    max_active: int = 4
    slots: list[datetime] = field(default_factory=list)
    completed: set[datetime] = field(default_factory=set)

    @classmethod
    def plan(
        cls,
        store: RunStore,
        deployment: str,
        start: date | datetime,
        end: date | datetime,
        *,
        max_active: int = 4,
        yes: bool = False,
        max_slots: int = MAX_SLOTS,
    ) -> Backfill:
        """Check the range and list its slots; ``ScheduleError`` on a bad range.

        Naive times are in the deployment's zone; a bare ``date`` as ``end`` includes that day.
        """
        dep = store.get_deployment(deployment)
        schedule = stored_schedule(dep)
        if schedule is None:
            raise ScheduleError(
                f"deployment {dep['name']!r} has no schedule, so it has no slots to "
                "backfill; give it a schedule or start runs with `headrace run`"
            )
        start, end = _in_zone(start, schedule.zone), _in_zone(end, schedule.zone, end_of_day=True)
        if end < start:
            raise ScheduleError(
                f"backfill range ends ({end.isoformat()}) before it starts "
                f"({start.isoformat()}); swap --start and --end"
            )
        if max_active < 1:
            raise ScheduleError(f"--max-active must be at least 1, not {max_active}")
        slots = []
        for slot in schedule.fire_times(start, end):
            slots.append(slot.astimezone(UTC))
            if len(slots) > max_slots and not yes:
                raise ScheduleError(
                    f"backfill of {dep['name']!r} from {start.isoformat()} to {end.isoformat()} "
                    f"covers more than {max_slots:,} slots of {schedule.describe()}; "
                    "pass --yes to run them all"
                )
        completed = store.completed_slots(dep["id"], slots)
        return cls(store, dep, start, end, max_active, slots, completed)

    @property
    def pending(self) -> list[datetime]:
        return [s for s in self.slots if s not in self.completed]

    def run(self, progress: Progress | None = None) -> dict[str, int]:
        """Run every pending slot, ``max_active`` at a time, oldest first; count the outcomes."""
        counts: dict[str, int] = {"Skipped (already completed)": len(self.slots) - len(self.pending)}
        worker = Worker(self.store, name=f"backfill-{self.deployment['name']}", concurrency=self.max_active)
        with ThreadPoolExecutor(self.max_active, thread_name_prefix="headrace-backfill") as pool:
            futures = {pool.submit(self._run_slot, worker, slot): slot for slot in self.pending}
            for future in as_completed(futures):
                state = future.result()
                counts[state] = counts.get(state, 0) + 1
                if progress is not None:
                    progress(futures[future], state)
        return counts

    def _run_slot(self, worker: Worker, slot: datetime) -> str:
        try:
            return self._claim_and_run(worker, self._slot_run(slot)["id"], slot)
        except Exception as exc:  # noqa: BLE001 - one slot's trouble must not stop the rest
            log.error("backfill of %s at %s: %s", self.deployment["name"], slot.isoformat(), exc)
            return "Failed"

    def _claim_and_run(self, worker: Worker, run_id: str, slot: datetime, poll: float = 0.1) -> str:
        """Run it here once the deployment's limit allows, unless another worker took it."""
        while True:
            claimed = worker.claim(max(utcnow(), slot), 1, run_ids=[run_id])
            if claimed:
                return worker.execute(claimed[0])
            run = self.store.get_flow_run(run_id)
            if run["state_type"] not in NOT_FINISHED:
                return str(run["state_name"])
            clock.sleep(poll)  # held back by a concurrency limit or running elsewhere

    def _slot_run(self, slot: datetime) -> dict[str, Any]:
        """The unfinished run for this slot, or a new one (its key makes a race harmless)."""
        runs = self.store.slot_runs(self.deployment["id"], slot, slot)
        for run in runs:
            if run["state_type"] in NOT_FINISHED:
                return run
        key = f"{slot_key(self.deployment['id'], slot)}{BACKFILL_MARK}{len(runs)}"
        row = new_run_row(self.deployment, slot, utcnow(), key=key)
        row["name"] += "-backfill"
        self.store.create_scheduled_runs([row])
        return next(r for r in self.store.slot_runs(self.deployment["id"], slot, slot) if r["idempotency_key"] == key)


def _in_zone(moment: date | datetime, zone: Any, *, end_of_day: bool = False) -> datetime:
    """A moment in the deployment's zone; a bare date is its whole day (start or end)."""
    if not isinstance(moment, datetime):
        moment = datetime.combine(moment, time.max if end_of_day else time.min)
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment.astimezone(zone)
