"""Flow runs, task runs, state changes, logs and metrics."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.engine import Connection

from headrace.errors import RunNotFound
from headrace.state_types import ACTIVE_TYPES, NOT_STARTED_TYPES, TERMINAL_TYPES, StateType
from headrace.store.base import StoreBase, as_utc, utcnow
from headrace.store.final_events import announce, describe
from headrace.store.retry import retried
from headrace.store.schema import (
    concurrency_slots,
    dataset_io,
    datasets,
    flow_runs,
    logs,
    metrics,
    state_changes,
    task_runs,
)
from headrace.store.summaries import update_run_summaries
from headrace.store.transitions import STATE_COLUMNS, change, record_transitions

# Columns of a task run that change after it is created (its state goes by transitions).
TASK_MUTABLE = ("attempts", "cache_key", "inputs_hash", "error", "result", "started_at", "ended_at")
# A flow run on another host whose heartbeat is this old is taken as crashed.
HEARTBEAT_STALE = timedelta(minutes=3)
HOSTNAME = socket.gethostname()


def _row(mapping: Any) -> dict[str, Any]:
    out = dict(mapping)
    for key, value in out.items():
        if isinstance(value, datetime):
            out[key] = as_utc(value)
    return out


def _merged(updates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per run, later values winning: a run's updates of one batch in one statement."""
    out: dict[str, dict[str, Any]] = {}
    for row in updates:
        out.setdefault(row["id"], {}).update(row)
    return list(out.values())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunsMixin(StoreBase):
    # -- flow runs ---------------------------------------------------------------
    @retried
    def insert_flow_run(self, row: dict[str, Any]) -> None:
        """Create a flow run in the state its row names, recording that first state."""
        row = {"hostname": HOSTNAME, "pid": os.getpid(), "created_at": utcnow(), **row}
        first = change(row["id"], row["state_type"], row["state_name"], row["created_at"], row.get("state_message"))
        with self.transaction() as conn:
            record_transitions(conn, "flow", [first], rows=[row], new=True)

    @retried
    def start_flow_run(self, row: dict[str, Any], changes: list[dict[str, Any]], *, adopt: bool) -> bool:
        """Insert a flow run (or take over a Scheduled/Pending one) and record its first states.

        One transaction, so starting a run costs one round trip. False when ``adopt``
        finds no run that may still start.
        """
        row = {"hostname": HOSTNAME, "pid": os.getpid(), **row}
        with self.transaction() as conn:
            if adopt:
                moved = record_transitions(conn, "flow", changes[-1:], rows=[row], only_from=NOT_STARTED_TYPES,
                                           lock=self.dialect == "postgresql")
                return bool(moved)
            record_transitions(conn, "flow", changes, rows=[{"created_at": utcnow(), **row}], new=True)
        return True

    @retried
    def update_flow_run(self, run_id: str, **values: Any) -> None:
        """Change columns of a flow run other than its state (states change by transitions only)."""
        if set(values) & set(STATE_COLUMNS):
            raise ValueError("a run's state changes only through record_transitions")
        with self.transaction() as conn:
            conn.execute(update(flow_runs).where(flow_runs.c.id == run_id).values(**values))

    @retried
    def get_flow_run(self, run_id: str) -> dict[str, Any]:
        """The flow run with this id, or the only one whose id starts with it."""
        with self.read() as conn:
            row = conn.execute(select(flow_runs).where(flow_runs.c.id == run_id)).mappings().first()
            if row is None and 4 <= len(run_id) < 32:
                rows = conn.execute(select(flow_runs).where(flow_runs.c.id.startswith(run_id))
                                    .limit(2)).mappings().all()
                row = rows[0] if len(rows) == 1 else None
        if row is None:
            raise RunNotFound(f"no flow run with id {run_id!r}; `headrace runs list` shows the ids")
        return _row(row)

    @retried
    def list_flow_runs(self, *, flow: str | None = None, state: str | None = None,
                       limit: int = 20, deployment_id: str | None = None) -> list[dict[str, Any]]:
        query = select(flow_runs).order_by(flow_runs.c.created_at.desc()).limit(limit)
        if flow:
            query = query.where(or_(flow_runs.c.flow_name == flow, flow_runs.c.name == flow))
        if state:
            s = state.strip()
            query = query.where(or_(flow_runs.c.state_type == s.upper(),
                                    flow_runs.c.state_name.ilike(s)))
        if deployment_id:
            query = query.where(flow_runs.c.deployment_id == deployment_id)
        with self.read() as conn:
            return [_row(r) for r in conn.execute(query).mappings()]

    # -- task runs ---------------------------------------------------------------
    @retried
    def list_task_runs(self, flow_run_id: str) -> list[dict[str, Any]]:
        query = (select(task_runs).where(task_runs.c.flow_run_id == flow_run_id)
                 .order_by(task_runs.c.created_at, task_runs.c.id))
        with self.read() as conn:
            return [_row(r) for r in conn.execute(query).mappings()]

    @retried
    def get_task_run(self, task_run_id: str) -> dict[str, Any]:
        with self.read() as conn:
            row = conn.execute(select(task_runs).where(task_runs.c.id == task_run_id)).mappings().first()
        if row is None:
            raise RunNotFound(f"no task run with id {task_run_id!r}")
        return _row(row)

    # -- batches -------------------------------------------------------------------
    @retried
    def write_batch(self, *, task_inserts: list[dict[str, Any]], task_updates: list[dict[str, Any]],
                    changes: list[dict[str, Any]], log_rows: list[dict[str, Any]],
                    metric_rows: list[dict[str, Any]], io_rows: list[dict[str, Any]],
                    flow_updates: list[dict[str, Any]]) -> None:
        """Write everything buffered since the last batch in one transaction."""
        fresh = {r["id"] for r in task_inserts}
        task_new: list[dict[str, Any]] = []
        task_old: list[dict[str, Any]] = []
        flow_changes: list[dict[str, Any]] = []
        for c in changes:
            if c["run_kind"] == "flow":
                flow_changes.append(c)
            else:
                (task_new if c["run_id"] in fresh else task_old).append(c)
        with self.transaction() as conn:
            tally: dict[str, dict[str, int]] = {}  # the summaries' task counts, written once below
            if task_inserts or task_new:
                record_transitions(conn, "task", task_new, rows=task_inserts, new=True, tally=tally)
            if task_updates or task_old:
                mutable = [{"id": u["id"], **{c: u.get(c) for c in TASK_MUTABLE}} for u in task_updates]
                record_transitions(conn, "task", task_old, rows=mutable, described=task_updates, tally=tally)
            if flow_updates or flow_changes:
                record_transitions(conn, "flow", flow_changes, rows=_merged(flow_updates))
            if log_rows:
                conn.execute(insert(logs), log_rows)
            if metric_rows:
                conn.execute(insert(metrics), metric_rows)
            if io_rows:
                self._insert_dataset_io(conn, io_rows)
            update_run_summaries(conn, self.dialect, utcnow(), tally=tally, io_rows=io_rows, metric_rows=metric_rows)

    def _insert_dataset_io(self, conn: Connection, io_rows: list[dict[str, Any]]) -> None:
        ins = self.insert_stmt()
        rows = []
        for item in io_rows:
            ident = {"kind": item["kind"], "uri": item["uri"], "name": item["name"]}
            conn.execute(ins(datasets).values(created_at=utcnow(), **ident).on_conflict_do_nothing())
            ds_id = conn.execute(select(datasets.c.id).where(
                and_(*(datasets.c[k] == v for k, v in ident.items())))).scalar_one()
            rows.append({"flow_run_id": item.get("flow_run_id"), "task_run_id": item.get("task_run_id"),
                         "dataset_id": ds_id, "direction": item["direction"], "rows": item.get("rows"),
                         "bytes": item.get("bytes"), "at": item.get("at") or utcnow(),
                         "details": item.get("details")})
        conn.execute(insert(dataset_io), rows)

    # -- reading records -----------------------------------------------------------
    @retried
    def get_logs(self, flow_run_id: str, *, task_run_id: str | None = None,
                 tail: int | None = None) -> list[dict[str, Any]]:
        query = select(logs).where(logs.c.flow_run_id == flow_run_id)
        if task_run_id:
            query = query.where(logs.c.task_run_id == task_run_id)
        if tail:
            query = query.order_by(logs.c.id.desc()).limit(tail)
        else:
            query = query.order_by(logs.c.id)
        with self.read() as conn:
            rows = [_row(r) for r in conn.execute(query).mappings()]
        return rows[::-1] if tail else rows

    @retried
    def get_state_changes(self, run_id: str) -> list[dict[str, Any]]:
        query = select(state_changes).where(state_changes.c.run_id == run_id).order_by(state_changes.c.id)
        with self.read() as conn:
            return [_row(r) for r in conn.execute(query).mappings()]

    @retried
    def get_metrics(self, flow_run_id: str) -> list[dict[str, Any]]:
        query = select(metrics).where(metrics.c.flow_run_id == flow_run_id).order_by(metrics.c.id)
        with self.read() as conn:
            return [_row(r) for r in conn.execute(query).mappings()]

    @retried
    def get_dataset_io(self, flow_run_id: str) -> list[dict[str, Any]]:
        query = (select(dataset_io, datasets.c.kind, datasets.c.uri, datasets.c.name)
                 .join(datasets, datasets.c.id == dataset_io.c.dataset_id)
                 .where(dataset_io.c.flow_run_id == flow_run_id).order_by(dataset_io.c.id))
        with self.read() as conn:
            return [_row(r) for r in conn.execute(query).mappings()]

    # -- cancellation and crashes ----------------------------------------------------
    def request_cancel(self, flow_run_id: str) -> None:
        self.update_flow_run(flow_run_id, cancel_requested=True)

    @retried
    def cancel_requested(self, flow_run_ids: list[str]) -> set[str]:
        if not flow_run_ids:
            return set()
        query = select(flow_runs.c.id).where(flow_runs.c.id.in_(flow_run_ids),
                                             flow_runs.c.cancel_requested.is_(True))
        with self.read() as conn:
            return {r[0] for r in conn.execute(query)}

    @retried
    def cancel_scheduled(self, flow_run_id: str, message: str, now: datetime | None = None) -> bool:
        """Cancel a run that has not started; False if it started meanwhile."""
        now = now or utcnow()
        with self.transaction() as conn:
            moved = record_transitions(conn, "flow", [change(flow_run_id, "CANCELLED", "Cancelled", now, message)],
                                       only_from=NOT_STARTED_TYPES, values={"cancel_requested": True},
                                       lock=self.dialect == "postgresql")
            observers, ended = describe(conn, "flow", moved, started=False)
        announce(observers, "flow", ended, state="Cancelled", at=now, message=message)
        return bool(moved)

    @retried
    def transition_runs(self, run_ids: list[str], state_type: str, state_name: str, message: str | None,
                        now: datetime | None = None, only_from: tuple[str, ...] = ("SCHEDULED",), *,
                        kind: str = "flow") -> list[str]:
        """Move runs still in ``only_from`` to a state, recording the change; return those moved."""
        at = now or utcnow()
        with self.transaction() as conn:
            moved = record_transitions(conn, kind, [change(r, state_type, state_name, at, message) for r in run_ids],
                                       only_from=only_from, lock=self.dialect == "postgresql")
            # the callers end runs no engine ran (a Scheduled slot skipped, a claimed run whose flow
            # could not load or start): their observers never heard a START
            final = str(state_type) in TERMINAL_TYPES
            observers, ended = describe(conn, kind, moved if final else [], started=False)
        announce(observers, kind, ended, state=state_name, at=at, message=message)
        return moved

    @retried
    def heartbeat(self, flow_run_ids: list[str], now: datetime | None = None) -> None:
        if flow_run_ids:
            with self.transaction() as conn:
                conn.execute(update(flow_runs).where(flow_runs.c.id.in_(flow_run_ids))
                             .values(heartbeat_at=now or utcnow()))

    @retried
    def mark_crashed(self, now: datetime | None = None) -> list[str]:
        """Mark runs whose process is gone as Crashed; return their ids."""
        now = now or utcnow()
        query = select(flow_runs.c.id, flow_runs.c.hostname, flow_runs.c.pid, flow_runs.c.heartbeat_at,
                       flow_runs.c.started_at, flow_runs.c.state_type).where(
            flow_runs.c.state_type.in_(ACTIVE_TYPES), flow_runs.c.pid.is_not(None))
        with self.read() as conn:
            candidates = conn.execute(query).all()
        dead = []
        for run_id, host, pid, beat, started, _ in candidates:
            last = as_utc(beat) or as_utc(started)
            if host == HOSTNAME:
                if not _pid_alive(int(pid)):
                    dead.append(run_id)
            elif last is not None and now - last > HEARTBEAT_STALE:
                dead.append(run_id)
        for run_id in dead:
            self._crash(run_id, now)
        self._crash_orphans(now)
        return dead

    def _crash_orphans(self, now: datetime) -> None:
        """Task runs still active although their flow run ended (an older headrace left them so)."""
        query = (select(task_runs.c.flow_run_id).distinct()
                 .join(flow_runs, flow_runs.c.id == task_runs.c.flow_run_id)
                 .where(task_runs.c.state_type.in_(ACTIVE_TYPES), flow_runs.c.state_type.in_(TERMINAL_TYPES)))
        with self.read() as conn:
            orphaned = [r[0] for r in conn.execute(query)]
        for run_id in orphaned:
            self._crash_tasks(run_id, now, "its flow run ended while this task run was unfinished", flow=False)

    def _crash(self, run_id: str, now: datetime) -> None:
        self._crash_tasks(run_id, now, "the process running this flow run ended without finishing it")

    @retried
    def _crash_tasks(self, run_id: str, now: datetime, msg: str, *, flow: bool = True) -> None:
        """Crash the flow run (if still active) and its active task runs, recording every change."""
        crashed = StateType.CRASHED.value
        with self.transaction() as conn:
            if flow and not record_transitions(conn, "flow", [change(run_id, crashed, "Crashed", now, msg)],
                                               only_from=ACTIVE_TYPES, lock=self.dialect == "postgresql"):
                return
            found = dict(conn.execute(select(task_runs.c.id, task_runs.c.state_type).where(
                task_runs.c.flow_run_id == run_id, task_runs.c.state_type.in_(ACTIVE_TYPES))).all())
            moved = record_transitions(conn, "task", [change(t, crashed, "Crashed", now, msg) for t in found],
                                       only_from=ACTIVE_TYPES)
            conn.execute(concurrency_slots.delete().where(concurrency_slots.c.flow_run_id == run_id))
            # a task run got its START when it began running; a Pending one never did
            observers, tasks = describe(conn, "task", moved,
                                        started={t: found.get(t) == StateType.RUNNING.value for t in moved})
            flows: list[dict[str, Any]] = []
            if flow:
                observers, flows = describe(conn, "flow", [run_id], started=True)
        announce(observers, "task", tasks, state="Crashed", at=now, message=msg)
        announce(observers, "flow", flows, state="Crashed", at=now, message=msg)
