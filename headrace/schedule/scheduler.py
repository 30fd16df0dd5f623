"""The scheduler: creates deployments' runs ahead of time and watches for lateness.

``Scheduler.tick(now)`` does one pass and decides nothing from the wall clock;
``next_wake`` (pure) says when the next pass is needed; ``serve`` is the only
part that sleeps. Any number of schedulers may share a store: each slot's run
has a unique idempotency key, so a slot is created once.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from bisect import bisect_right
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from headrace.schedule.alerts import AlertEvent, first_line
from headrace.schedule.deployment import stored_alerts, stored_schedule
from headrace.schedule.schedules import Schedule, get_zone
from headrace.state_types import StateType
from headrace.store.base import utcnow
from headrace.store.deployments import slot_key

if TYPE_CHECKING:
    from headrace.store import RunStore

log = logging.getLogger("headrace.schedule")

SKIP_MESSAGE = "Skipped: this slot was missed and catchup=False runs only the latest missed slot ({latest})"


@dataclass
class TickResult:
    """What one scheduler pass did, and when the next one is needed."""

    created: int = 0
    skipped: int = 0
    late: int = 0
    next_wake: datetime | None = None
    late_deadlines: list[datetime] = field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    """The runs to create for one deployment, its new cursor, and when to plan again."""

    runs: list[dict[str, Any]]
    cursor: datetime | None
    refill_at: datetime


@lru_cache(maxsize=4096)
def _slot_label(slot: datetime, schedule_json: str | None) -> str:
    """``YYYYmmdd-HHMM`` of the slot on the deployment's wall clock (shared by many runs)."""
    zone = json.loads(schedule_json).get("timezone", "UTC") if schedule_json else "UTC"
    return slot.astimezone(get_zone(zone)).strftime("%Y%m%d-%H%M")


@lru_cache(maxsize=4096)
def _slot_iso(slot: datetime) -> str:
    return slot_key("", slot)[1:]


def new_run_row(dep: dict[str, Any], slot: datetime, now: datetime, *, key: str | None = None) -> dict[str, Any]:
    """A Scheduled flow run of deployment ``dep`` for ``slot`` (named in the deployment's zone)."""
    return {
        "id": os.urandom(16).hex(),
        "flow_name": dep["flow_name"],
        "name": f"{dep['name']}-{_slot_label(slot, dep.get('schedule'))}",
        "state_type": StateType.SCHEDULED.value,
        "state_name": "Scheduled",
        "state_message": None,
        "parameters": dep["parameters"],
        "tags": dep["tags"],
        "entrypoint": dep["entrypoint"],
        "run_count": 0,
        "deployment_id": dep["id"],
        "idempotency_key": key or f"{dep['id']}:{_slot_iso(slot)}",
        "expected_start": slot.astimezone(UTC),
        "created_at": now,
        "cancel_requested": False,
        "ended_at": None,
    }


def plan_slots(
    schedule: Schedule, cursor: datetime, horizon: datetime, limit: int
) -> tuple[list[datetime], datetime | None]:
    """Fire times in ``(cursor, horizon]`` (UTC, oldest first, at most ``limit``) and the
    first fire time after them (``None`` when ``limit`` cut the list short)."""
    out: list[datetime] = []
    for fire in schedule.iter_after(cursor):
        moment = fire.astimezone(UTC)
        if moment > horizon:
            return out, moment
        if len(out) >= limit:
            return out, None
        out.append(moment)
    return out, None  # pragma: no cover - schedules are endless


def next_wake(
    refills: list[datetime],
    deadlines: list[datetime],
    now: datetime,
    max_sleep: timedelta,
    min_sleep: timedelta = timedelta(0),
) -> datetime:
    """When the scheduler must look again: a new slot enters a planning window, or a run may
    turn late; not before ``min_sleep`` (to batch work) nor after ``max_sleep`` (to see new
    deployments)."""
    wake = now + max_sleep
    for moment in refills:
        wake = min(wake, moment)
    for deadline in deadlines:
        if deadline > now:
            wake = min(wake, deadline)
    return max(wake, now + min_sleep)


class Scheduler:
    """Creates scheduled runs ``lookahead`` ahead and skips or alerts as deployments ask."""

    def __init__(
        self,
        store: RunStore | None = None,
        *,
        lookahead: timedelta = timedelta(minutes=10),
        max_slots: int = 1000,
        max_sleep: timedelta = timedelta(seconds=5),
        min_sleep: timedelta = timedelta(seconds=2),
        spread: timedelta | None = None,
        on_created: Callable[[], None] | None = None,
        alert_threads: int = 2,
    ) -> None:
        from headrace.store import get_store

        self.store = store or get_store()
        self.lookahead = lookahead
        self.max_slots = max_slots
        self.max_sleep = max_sleep
        self.min_sleep = min_sleep
        # Each deployment plans a slot between `lookahead` and `lookahead - spread` ahead, at a
        # fixed point given by its id, so deployments sharing a cron do not all land in one tick.
        self.spread = lookahead / 2 if spread is None else spread
        self.on_created = on_created
        self._refill: dict[str, datetime] = {}
        self._schedules: dict[tuple[str, str], Schedule | None] = {}
        self._alerts = ThreadPoolExecutor(alert_threads, thread_name_prefix="headrace-alert")
        self._pending_alerts: list[Any] = []
        self._cache: list[dict[str, Any]] = []
        self._signature: tuple[int, datetime | None] | None = None

    # -- one pass ---------------------------------------------------------------------------
    def tick(self, now: datetime) -> TickResult:
        """Create due and upcoming runs, skip missed ones, alert late ones. Never sleeps."""
        now = now.astimezone(UTC)
        result = TickResult()
        deployments = [d for d in self._deployments() if not d["paused"]]
        scheduled = [(d, s) for d in deployments if (s := self._schedule(d)) is not None]
        runs: list[dict[str, Any]] = []
        cursors: dict[str, datetime] = {}
        memo: dict[Any, tuple[list[datetime], datetime | None]] = {}
        for dep, schedule in scheduled:
            if self._refill.get(dep["id"], now) > now:
                continue  # nothing new enters this deployment's window yet
            try:
                plan = self._plan(dep, schedule, now, memo)
            except Exception as exc:  # noqa: BLE001 - one bad deployment never stops the others
                self._mark_error(dep, f"planning its runs failed: {first_line(exc)}")
                self._refill[dep["id"]] = now + self.max_sleep
                continue
            self._mark_error(dep, None)
            runs.extend(plan.runs)
            self._refill[dep["id"]] = plan.refill_at
            if plan.cursor is not None:
                cursors[dep["id"]] = dep["scheduled_until"] = plan.cursor
        refills = [self._refill[d["id"]] for d, _ in scheduled]
        result.created = self.store.create_scheduled_runs(runs, cursors)
        result.skipped = sum(1 for r in runs if r["state_type"] == StateType.CANCELLED)
        result.skipped += self._skip_overdue([d for d, _ in scheduled if not d["catchup"]], now)
        result.late, result.late_deadlines = self._check_late(deployments, now)
        if result.created and self.on_created is not None:
            self.on_created()
        result.next_wake = next_wake(refills, result.late_deadlines, now, self.max_sleep, self.min_sleep)
        # Creating runs ahead is routine; skipping missed slots and lateness are news.
        level = logging.INFO if result.skipped or result.late else logging.DEBUG
        log.log(level, "scheduler: %s run(s) created, %s skipped, %s late", result.created, result.skipped, result.late)
        return result

    def _deployments(self) -> list[dict[str, Any]]:
        """The deployments, re-read only when one changed (cursors are kept up to date here;
        a cursor behind another scheduler's only re-creates slots that exist, a no-op)."""
        signature = self.store.deployments_signature()
        if signature != self._signature:
            self._cache = self.store.list_deployments()
            self._signature = signature
            self._refill.clear()
        return self._cache

    def _schedule(self, dep: dict[str, Any]) -> Schedule | None:
        key = (dep["id"], dep.get("schedule") or "")
        if key not in self._schedules:
            try:
                self._schedules[key] = stored_schedule(dep)
            except Exception as exc:  # noqa: BLE001 - one bad row must not stop the others
                self._mark_error(dep, f"its schedule cannot be used: {first_line(exc)}")
                self._schedules[key] = None
        return self._schedules[key]

    def _mark_error(self, dep: dict[str, Any], error: str | None) -> None:
        """Record (or clear) why a deployment gets no runs; shown by ``headrace deployments list``."""
        if dep.get("error") == error:
            return
        if error is not None:
            log.error("deployment %s: %s", dep["name"], error)
        try:
            self.store.set_deployment_error(dep["id"], error)
            dep["error"] = error
        except Exception as exc:  # noqa: BLE001 - marking is best effort; planning goes on
            log.warning("deployment %s: cannot record its error: %s", dep["name"], first_line(exc))

    def _offset(self, dep: dict[str, Any]) -> timedelta:
        return self.spread * (int(dep["id"][:8], 16) / 0x100000000)

    def _plan(self, dep: dict[str, Any], schedule: Schedule, now: datetime, memo: dict[Any, Any]) -> Plan:
        """Slots from the deployment's cursor to its horizon; missed ones skipped unless
        ``catchup``. Deployments sharing a schedule and cursor share the work."""
        cursor = dep["scheduled_until"] or dep["created_at"]
        key = (schedule, cursor)
        if key not in memo:  # planned to the widest horizon; each deployment takes its part
            memo[key] = plan_slots(schedule, cursor, now + self.lookahead, self.max_slots)
        slots, following = memo[key]
        ahead = self.lookahead - self._offset(dep)
        cut = bisect_right(slots, now + ahead)
        if cut < len(slots):
            slots, following = slots[:cut], slots[cut]
        refill_at = now if following is None else following - ahead
        if not slots:
            return Plan([], None, refill_at)
        missed = [s for s in slots if s <= now]
        skip = set(missed[:-1]) if not dep["catchup"] else set()
        if skip:
            log.warning(
                "deployment %s: %s missed slot(s) from %s to %s skipped (catchup=False); running the latest, %s",
                dep["name"],
                len(skip),
                missed[0].isoformat(),
                missed[-2].isoformat(),
                missed[-1].isoformat(),
            )
        latest = missed[-1] if missed else None
        runs = [self._run_row(dep, s, now, latest if s in skip else None) for s in slots]
        return Plan(runs, slots[-1], refill_at)

    def _run_row(
        self, dep: dict[str, Any], slot: datetime, now: datetime, skipped_for: datetime | None
    ) -> dict[str, Any]:
        row = new_run_row(dep, slot, now)
        if skipped_for is not None:
            row.update(
                state_type=StateType.CANCELLED.value,
                state_name="Cancelled",
                ended_at=now,
                state_message=SKIP_MESSAGE.format(latest=skipped_for.isoformat()),
            )
        return row

    def _skip_overdue(self, deployments: list[dict[str, Any]], now: datetime) -> int:
        """catchup=False: of the due runs nobody started, only the latest may still run."""
        overdue = self.store.overdue_scheduled(now, [d["id"] for d in deployments])
        latest: dict[str, datetime] = {}
        for run in overdue:  # oldest first, so the last one seen is the latest
            latest[run["deployment_id"]] = run["expected_start"]
        by_message: dict[str, list[str]] = {}
        for run in overdue:
            if run["expected_start"] < latest[run["deployment_id"]]:
                msg = SKIP_MESSAGE.format(latest=latest[run["deployment_id"]].isoformat())
                by_message.setdefault(msg, []).append(run["id"])
        return sum(
            len(self.store.transition_runs(ids, StateType.CANCELLED, "Cancelled", msg, now))
            for msg, ids in by_message.items()
        )

    # -- lateness ---------------------------------------------------------------------------
    def _check_late(self, deployments: list[dict[str, Any]], now: datetime) -> tuple[int, list[datetime]]:
        watched = {d["id"]: d for d in deployments if d.get("late_after_seconds")}
        if not watched:
            return 0, []
        late, deadlines = 0, []
        for run in self.store.unfinished_due_runs(list(watched), now):
            dep = watched[run["deployment_id"]]
            deadline = run["expected_start"] + timedelta(seconds=float(dep["late_after_seconds"]))
            if deadline > now:
                deadlines.append(deadline)
            elif self.store.mark_alerted(run["id"], "late", now):
                late += 1
                self._send_late(dep, run, now)
        return late, deadlines

    def _send_late(self, dep: dict[str, Any], run: dict[str, Any], now: datetime) -> None:
        overdue = now - run["expected_start"]
        event = AlertEvent(
            kind="late",
            flow_name=run["flow_name"],
            run_id=run["id"],
            run_name=run["name"],
            state=run["state_name"],
            rows_loaded=run.get("rows_loaded"),
            scheduled_time=run["expected_start"],
            deployment=dep["name"],
            detail=f"not finished {_human(overdue)} after its scheduled time "
            f"(late_after={_human(timedelta(seconds=dep['late_after_seconds']))})",
        )
        log.warning("run %s of deployment %s is late: %s", run["name"], dep["name"], event.detail)
        for alert in stored_alerts(dep, "late"):
            self._pending_alerts.append(self._alerts.submit(alert.notify, event))

    def drain_alerts(self, timeout: float | None = None) -> None:
        """Wait for the alerts sent so far (tests and shutdown)."""
        pending, self._pending_alerts = self._pending_alerts, []
        for future in pending:
            future.result(timeout=timeout)

    # -- the loop ---------------------------------------------------------------------------
    def serve(self, stop: threading.Event, clock: Callable[[], datetime] = utcnow) -> None:
        """Tick until ``stop`` is set, sleeping until the next pass is needed."""
        log.info("scheduler started on %s", self.store.safe_url)
        while not stop.is_set():
            now = clock()
            try:
                wake = self.tick(now).next_wake or now + self.max_sleep
            except Exception:  # noqa: BLE001 - keep scheduling; the store may come back
                log.exception("scheduler tick failed; retrying in %s", self.max_sleep)
                wake = now + self.max_sleep
            stop.wait(max(0.0, (wake - clock()).total_seconds()))
        self._alerts.shutdown(wait=False)
        log.info("scheduler stopped")


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 3600 == 0 and seconds >= 3600:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0 and seconds >= 60:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def parameters_of(run: dict[str, Any]) -> dict[str, Any]:
    """A stored run's parameters as a dict, encrypted secrets decrypted."""
    from headrace.secrets import reveal_parameters

    return reveal_parameters(json.loads(run["parameters"]) if run.get("parameters") else {})
