"""Deployments, their scheduled runs, atomic claims by workers, and sent alerts.

Scheduled runs are flow runs in state SCHEDULED with an ``expected_start`` and
a unique ``idempotency_key`` (deployment id + slot), so any number of
schedulers can create the same slot and only one row exists. Workers claim a
run by moving it to PENDING in one transaction: ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, the single ``BEGIN IMMEDIATE`` writer on SQLite.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from headrace.errors import ScheduleError
from headrace.state_types import UNFINISHED_TYPES
from headrace.store.base import StoreBase, as_utc, utcnow
from headrace.store.final_events import announce, describe
from headrace.store.retry import retried
from headrace.store.runs import HOSTNAME, _row
from headrace.store.schema import deployments, flow_runs, run_alerts
from headrace.store.transitions import change, record_transitions

BACKFILL_MARK = ":backfill:"
NOT_FINISHED = UNFINISHED_TYPES
MUTABLE = (
    "flow_name",
    "entrypoint",
    "parameters",
    "schedule",
    "tags",
    "concurrency_limit",
    "catchup",
    "late_after_seconds",
    "alerts",
)


@functools.lru_cache(maxsize=64)
def _candidates(postgresql: bool, by_ids: bool, limit: int) -> Any:
    """Due scheduled runs, oldest slot first, with their deployment's name, alerts and limit
    (built once per shape: building a statement costs more than running it on SQLite)."""
    query = (
        select(flow_runs, deployments.c.name.label("deployment_name"), deployments.c.alerts,
               deployments.c.concurrency_limit.label("deployment_limit"))
        .outerjoin(deployments, deployments.c.id == flow_runs.c.deployment_id)
        .where(flow_runs.c.state_type == "SCHEDULED", flow_runs.c.expected_start <= bindparam("b_now"))
        .order_by(flow_runs.c.expected_start)
        .limit(limit)
    )
    if by_ids:
        query = query.where(flow_runs.c.id.in_(bindparam("b_ids", expanding=True)))
    if postgresql:
        query = query.with_for_update(skip_locked=True, of=flow_runs)  # other workers take other rows
    return query


def _nothing() -> None:
    pass


def slot_key(deployment_id: str, slot: datetime) -> str:
    """The idempotency key of a deployment's scheduled run for one slot."""
    return f"{deployment_id}:{slot.astimezone(UTC).isoformat()}"


class DeploymentsMixin(StoreBase):
    # -- deployments ------------------------------------------------------------------
    @retried
    def upsert_deployment(self, values: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
        """Create or update the deployment named ``values["name"]``; return its row.

        A changed schedule restarts planning at ``now``: future scheduled runs of the
        old schedule are cancelled so they never fire.
        """
        now = (now or utcnow()).astimezone(UTC)
        told: Callable[[], None] = _nothing
        with self.transaction() as conn:
            old = self._deployment_row(conn, values["name"], lock=True)
            if old is None:
                row = {
                    "id": uuid.uuid4().hex,
                    "created_at": now,
                    "updated_at": now,
                    "paused": False,
                    "scheduled_until": now,
                    **{k: values.get(k) for k in ("name", *MUTABLE)},
                }
                row["catchup"] = bool(row["catchup"])
                conn.execute(insert(deployments).values(**row))
                return row
            changes = {k: values.get(k) for k in MUTABLE if values.get(k) != old[k]}
            if "catchup" in changes:
                changes["catchup"] = bool(changes["catchup"])
            if "schedule" in changes:
                changes["scheduled_until"] = now
                changes["error"] = None
                told = self._cancel_future(conn, old["id"], now, "the deployment's schedule changed", now)
            if changes:
                changes["updated_at"] = now
                conn.execute(update(deployments).where(deployments.c.id == old["id"]).values(**changes))
        told()
        return {**old, **changes}

    def _deployment_row(self, conn: Connection, name_or_id: str, *, lock: bool = False) -> dict[str, Any] | None:
        query = select(deployments).where((deployments.c.name == name_or_id) | (deployments.c.id == name_or_id))
        if lock and self.dialect == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).mappings().first()
        return _row(row) if row is not None else None

    @retried
    def get_deployment(self, name_or_id: str) -> dict[str, Any]:
        with self.read() as conn:
            row = self._deployment_row(conn, name_or_id)
        if row is None:
            raise ScheduleError(f"no deployment named {name_or_id!r}; `headrace deployments list` shows them")
        return row

    @retried
    def set_deployment_error(self, deployment_id: str, error: str | None) -> None:
        """Mark a deployment whose planning failed (``None`` clears it); not a change of the deployment."""
        with self.transaction() as conn:
            conn.execute(update(deployments).where(deployments.c.id == deployment_id).values(error=error))

    @retried
    def list_deployments(self) -> list[dict[str, Any]]:
        with self.read() as conn:
            return [_row(r) for r in conn.execute(select(deployments).order_by(deployments.c.name)).mappings()]

    @retried
    def set_deployment_paused(self, name_or_id: str, paused: bool, now: datetime | None = None) -> dict[str, Any]:
        """Pause (cancelling its not-yet-started scheduled runs) or resume from ``now``."""
        now = (now or utcnow()).astimezone(UTC)
        told: Callable[[], None] = _nothing
        with self.transaction() as conn:
            row = self._deployment_row(conn, name_or_id, lock=True)
            if row is None:
                raise ScheduleError(f"no deployment named {name_or_id!r}; `headrace deployments list` shows them")
            values: dict[str, Any] = {"paused": paused, "updated_at": now}
            if paused:
                told = self._cancel_future(conn, row["id"], None, "the deployment was paused", now)
            else:
                values["scheduled_until"] = now  # a pause is not caught up on resume
            conn.execute(update(deployments).where(deployments.c.id == row["id"]).values(**values))
        told()
        return {**row, **values}

    def _cancel_future(
        self, conn: Connection, deployment_id: str, after: datetime | None, message: str, now: datetime
    ) -> Callable[[], None]:
        """Cancel the deployment's Scheduled runs (after ``after``); returns what tells the run observers,
        to call once the transaction has committed."""
        cond = [
            flow_runs.c.deployment_id == deployment_id,
            flow_runs.c.state_type == "SCHEDULED",
            ~flow_runs.c.idempotency_key.contains(BACKFILL_MARK),
        ]
        if after is not None:
            cond.append(flow_runs.c.expected_start > after)
        ids = [r[0] for r in conn.execute(select(flow_runs.c.id).where(*cond))]
        moved = record_transitions(conn, "flow", [change(i, "CANCELLED", "Cancelled", now, message) for i in ids],
                                   only_from=("SCHEDULED",), lock=self.dialect == "postgresql")
        observers, ended = describe(conn, "flow", moved, started=False)
        return lambda: announce(observers, "flow", ended, state="Cancelled", at=now, message=message)

    # -- scheduled runs ----------------------------------------------------------------
    @retried
    def create_scheduled_runs(self, runs: list[dict[str, Any]], cursors: dict[str, datetime] | None = None) -> int:
        """Insert scheduled runs, ignoring slots that exist; advance deployment cursors.

        Returns the number of rows actually created.
        """
        if not runs and not cursors:
            return 0
        ins = pg_insert if self.dialect == "postgresql" else sqlite_insert
        created = 0
        with self.transaction() as conn:
            if runs:
                stmt = ins(flow_runs).on_conflict_do_nothing(index_elements=[flow_runs.c.idempotency_key])
                changes = [change(r["id"], r["state_type"], r["state_name"], r["created_at"], r["state_message"])
                           for r in runs]
                created = len(record_transitions(conn, "flow", changes, rows=runs, new=stmt))
            if cursors:
                stmt2 = (
                    update(deployments)
                    .where(deployments.c.id == bindparam("b_id"))
                    .values(scheduled_until=bindparam("b_until"))
                )
                conn.execute(stmt2, [{"b_id": k, "b_until": v} for k, v in cursors.items()])
        return created

    @retried
    def overdue_scheduled(self, now: datetime, deployment_ids: Iterable[str]) -> list[dict[str, Any]]:
        """Scheduled (not backfill) runs due at or before ``now``, oldest first, of those of
        these deployments that have more than one such run (the others need no skipping)."""
        ids, now = list(deployment_ids), now.astimezone(UTC)
        if not ids:
            return []
        due = (
            flow_runs.c.state_type == "SCHEDULED",
            flow_runs.c.expected_start <= now,
            ~flow_runs.c.idempotency_key.contains(BACKFILL_MARK),
        )
        crowded = (
            select(flow_runs.c.deployment_id).where(*due).group_by(flow_runs.c.deployment_id).having(func.count() > 1)
        )
        query = (
            select(flow_runs.c.id, flow_runs.c.deployment_id, flow_runs.c.expected_start)
            .where(*due, flow_runs.c.deployment_id.in_(crowded))
            .order_by(flow_runs.c.expected_start)
        )
        wanted = set(ids)
        with self.read() as conn:
            rows = [_row(r) for r in conn.execute(query).mappings()]
        return [r for r in rows if r["deployment_id"] in wanted]

    @retried
    def deployments_signature(self) -> tuple[int, datetime | None]:
        """Changes whenever a deployment is added, changed, paused or resumed."""
        query = select(func.count(), func.max(deployments.c.updated_at))
        with self.read() as conn:
            count, latest = conn.execute(query).one()
        return int(count), as_utc(latest)

    @retried
    def next_scheduled_start(self) -> datetime | None:
        """The earliest ``expected_start`` of a run waiting to be claimed."""
        query = select(func.min(flow_runs.c.expected_start)).where(flow_runs.c.state_type == "SCHEDULED")
        with self.read() as conn:
            return as_utc(conn.execute(query).scalar())

    @retried
    def slot_runs(self, deployment_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Every run of a deployment scheduled within ``[start, end]``, oldest slot first."""
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        query = (
            select(flow_runs)
            .where(
                flow_runs.c.deployment_id == deployment_id,
                flow_runs.c.expected_start >= start,
                flow_runs.c.expected_start <= end,
            )
            .order_by(flow_runs.c.expected_start, flow_runs.c.created_at)
        )
        with self.read() as conn:
            return [_row(r) for r in conn.execute(query).mappings()]

    # -- claims -------------------------------------------------------------------------
    @retried
    def claim_runs(
        self, now: datetime, worker: str, limit: int = 1, run_ids: list[str] | None = None, *, start: bool = False
    ) -> list[dict[str, Any]]:
        """Atomically move up to ``limit`` due scheduled runs to PENDING for ``worker``, in one transaction.

        Oldest slot first; a deployment's ``concurrency_limit`` counts its pending and
        running runs. With ``run_ids`` only those runs are considered. ``start``: the
        worker runs them right away, so they go on to RUNNING (started at ``now``) in
        the same transaction. Each run comes back with its deployment's name and alerts.
        """
        if limit <= 0:
            return []
        now = now.astimezone(UTC)
        query = _candidates(self.dialect == "postgresql", run_ids is not None, max(limit * 4, 16))
        params: dict[str, Any] = {"b_now": now}
        if run_ids is not None:
            params["b_ids"] = list(run_ids)
        with self.transaction() as conn:
            candidates = conn.execute(query, params).mappings().all()
            chosen = [_row(r) for r in self._within_limits(conn, candidates, limit)]
            if chosen:
                self._mark_claimed(conn, chosen, worker, now, start)
        for run in chosen:
            del run["deployment_limit"]
        return chosen

    def _mark_claimed(self, conn: Connection, chosen: list[dict[str, Any]], worker: str, now: datetime,
                      start: bool) -> None:
        claimed = {"worker": worker, "hostname": HOSTNAME, "pid": os.getpid()}
        changes = []
        for run in chosen:
            changes.append(change(run["id"], "PENDING", "Pending", now, f"claimed by {worker}", "SCHEDULED"))
            if start:
                changes.append(change(run["id"], "RUNNING", "Running", now, None, "PENDING"))
        if start:
            claimed.update(started_at=now, heartbeat_at=now, run_count=1)
        record_transitions(conn, "flow", changes, values=claimed)
        last = changes[-1]
        for run in chosen:
            run.update(claimed, state_type=last["to_type"], state_name=last["to_name"], state_message=last["message"])

    def _within_limits(self, conn: Connection, candidates: Sequence[Any], limit: int) -> list[Any]:
        limits = {r["deployment_id"]: int(r["deployment_limit"]) for r in candidates
                  if r["deployment_limit"] is not None}
        active: dict[str, int] = {}
        if limits:
            if self.dialect == "postgresql":  # serialize the count per limited deployment
                conn.execute(select(deployments.c.id).where(deployments.c.id.in_(sorted(limits))).with_for_update())
            counted = (select(flow_runs.c.deployment_id, func.count())
                       .where(flow_runs.c.deployment_id.in_(list(limits)),
                              flow_runs.c.state_type.in_(("PENDING", "RUNNING")))
                       .group_by(flow_runs.c.deployment_id))
            active = {r[0]: int(r[1]) for r in conn.execute(counted)}
        chosen: list[Any] = []
        for run in candidates:
            if len(chosen) >= limit:
                break
            dep = run["deployment_id"]
            if dep in limits:
                if active.get(dep, 0) >= limits[dep]:
                    continue
                active[dep] = active.get(dep, 0) + 1
            chosen.append(run)
        return chosen

    # -- lateness and alerts --------------------------------------------------------------
    @retried
    def unfinished_due_runs(
        self, deployment_ids: Iterable[str], now: datetime, kind: str = "late"
    ) -> list[dict[str, Any]]:
        """Due runs of these deployments not finished yet and not yet alerted as ``kind``."""
        ids, now = list(deployment_ids), now.astimezone(UTC)
        if not ids:
            return []
        alerted = select(run_alerts.c.flow_run_id).where(run_alerts.c.kind == kind)
        query = (
            select(
                flow_runs.c.id,
                flow_runs.c.name,
                flow_runs.c.flow_name,
                flow_runs.c.deployment_id,
                flow_runs.c.expected_start,
                flow_runs.c.state_name,
                flow_runs.c.rows_loaded,
            )
            .where(
                flow_runs.c.deployment_id.in_(ids),
                flow_runs.c.state_type.in_(NOT_FINISHED),
                flow_runs.c.expected_start <= now,
                flow_runs.c.id.not_in(alerted),
            )
            .order_by(flow_runs.c.expected_start)
        )
        with self.read() as conn:
            return [_row(r) for r in conn.execute(query).mappings()]

    @retried
    def mark_alerted(self, flow_run_id: str, kind: str, now: datetime | None = None) -> bool:
        """Record that ``kind`` was alerted for a run; False if someone already did."""
        ins = pg_insert if self.dialect == "postgresql" else sqlite_insert
        stmt = ins(run_alerts).values(flow_run_id=flow_run_id, kind=kind, sent_at=(now or utcnow()).astimezone(UTC))
        with self.transaction() as conn:
            return bool(conn.execute(stmt.on_conflict_do_nothing()).rowcount)

    @retried
    def completed_slots(self, deployment_id: str, slots: list[datetime]) -> set[datetime]:
        """Which of ``slots`` already have a completed run of the deployment."""
        if not slots:
            return set()
        slots = [s.astimezone(UTC) for s in slots]
        query = select(flow_runs.c.expected_start).where(
            and_(
                flow_runs.c.deployment_id == deployment_id,
                flow_runs.c.state_type == "COMPLETED",
                flow_runs.c.expected_start >= min(slots),
                flow_runs.c.expected_start <= max(slots),
            )
        )
        with self.read() as conn:
            return {as_utc(r[0]) for r in conn.execute(query)}  # type: ignore[misc]
