"""The one writer of run states.

Every change of a flow run's or task run's state, whoever makes it (the engine,
a worker's claim, a cancel, the scheduler skipping a slot, crash marking), goes
through :func:`record_transitions`: it sets the run's state columns and records
the change (from, to, time, message) in ``hr_state_changes``, in the caller's
transaction. No other code writes ``state_type``, ``state_name`` or
``state_message``. It also keeps the task counts of the per-run summaries
(``headrace.store.summaries``): task runs inserted, and changes into a final state.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.engine import Connection

from headrace.state_types import TERMINAL_TYPES
from headrace.store.schema import flow_runs, state_changes, task_runs
from headrace.store.summaries import add_task_summaries

TABLES: dict[str, Table] = {"flow": flow_runs, "task": task_runs}
STATE_COLUMNS = ("state_type", "state_name", "state_message")
_INSERT_CHANGE = insert(state_changes)
_TERMINAL = frozenset(TERMINAL_TYPES)


def change(run_id: str, to_type: str, to_name: str, at: Any, message: str | None = None,
           from_type: str | None = None) -> dict[str, Any]:
    """One state change as :func:`record_transitions` takes it (types as StateType or their values)."""
    return {"run_id": run_id, "from_type": str(from_type) if from_type else None, "to_type": str(to_type),
            "to_name": to_name,
            "message": message, "at": at}


def record_transitions(conn: Connection, kind: str, changes: Sequence[Mapping[str, Any]], *,
                       rows: Sequence[Mapping[str, Any]] = (), new: Any = None,
                       only_from: Iterable[str] | None = None, values: Mapping[str, Any] | None = None,
                       lock: bool = False, described: Sequence[Mapping[str, Any]] = (),
                       tally: dict[str, dict[str, int]] | None = None) -> list[str]:
    """Move ``kind`` ("flow" or "task") runs through ``changes`` and record each change.

    ``rows``: run rows written along with their state: inserted when ``new`` is
    ``True`` (or an insert statement, e.g. one that ignores existing slots),
    otherwise columns updated by ``id``. ``only_from``: move only runs whose
    stored type is one of these, recording the stored type as ``from``.
    ``values``: extra columns set on every moved run. ``lock``: take row locks
    first (PostgreSQL). ``described``: task rows (``flow_run_id``, ``attempts``) of runs
    updated here, which spares the summaries a read. ``tally``: gather the summaries' task counts
    there instead of writing them (the caller writes once per batch). Returns the ids of the runs moved.
    """
    table = TABLES[kind]
    if only_from is not None:
        changes = _guard(conn, table, changes, tuple(only_from), lock)
        moved = {c["run_id"] for c in changes}
        rows = [r for r in rows if r["id"] in moved]
    last = {c["run_id"]: c for c in changes}
    written: set[str] = set()
    inserted: list[Mapping[str, Any]] = []
    if rows:
        stated = [_with_state(r, last.get(r["id"])) for r in rows]
        if new is not None and new is not False:
            created = _insert(conn, table, stated, new)
            changes = [c for c in changes if c["run_id"] in created]
            last = {k: v for k, v in last.items() if k in created}
            inserted = [r for r in stated if r["id"] in created]
        else:
            _update_rows(conn, table, stated)
        written = {r["id"] for r in rows}
    _update_states(conn, table, [c for rid, c in last.items() if rid not in written], values)
    if changes:
        conn.execute(_INSERT_CHANGE, [_change_row(kind, c) for c in changes])
    if kind == "task":
        _summarise(conn, changes, inserted, described, tally)
    return list(last)


def _summarise(conn: Connection, changes: Sequence[Mapping[str, Any]], inserted: Sequence[Mapping[str, Any]],
               described: Sequence[Mapping[str, Any]], tally: dict[str, dict[str, int]] | None) -> None:
    """Count task runs inserted and each change of a task run into a final state, once."""
    ends = [c for c in changes if c["to_type"] in _TERMINAL and c.get("from_type") not in _TERMINAL]
    if not ends and not inserted:
        return
    known = {r["id"]: r for r in (*described, *inserted) if r.get("flow_run_id")}
    missing = list({c["run_id"] for c in ends if c["run_id"] not in known})
    if missing:  # crash marking, cancels: read what the summaries need (after the update above)
        query = select(task_runs.c.id, task_runs.c.flow_run_id, task_runs.c.attempts).where(
            task_runs.c.id.in_(missing))
        known.update({r.id: r._asdict() for r in conn.execute(query)})
    add_task_summaries(conn, inserted, [(c, known[c["run_id"]]) for c in ends if c["run_id"] in known], tally)


def _guard(conn: Connection, table: Table, changes: Sequence[Mapping[str, Any]], only_from: tuple[str, ...],
           lock: bool) -> list[dict[str, Any]]:
    ids = list({c["run_id"] for c in changes})
    if not ids:
        return []
    allowed = [str(t) for t in only_from]
    query = select(table.c.id, table.c.state_type).where(table.c.id.in_(ids), table.c.state_type.in_(allowed))
    if lock:
        query = query.with_for_update()
    stored = {r[0]: r[1] for r in conn.execute(query)}
    out, seen = [], set()
    for c in changes:
        rid = c["run_id"]
        if rid in stored:
            # The first change of a run starts from what is stored; later ones chain on.
            out.append({**c, "from_type": stored[rid] if rid not in seen else c.get("from_type")})
            seen.add(rid)
    return out


def _with_state(row: Mapping[str, Any], last: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if last is None:
        return row
    ended = last["to_type"] in _TERMINAL and row.get("ended_at") is None
    if not ended and (row.get("state_type"), row.get("state_name"), row.get("state_message")) == (
            last["to_type"], last["to_name"], last["message"]):
        return row  # the engine's rows carry their state already: no copy on the hot path
    out = dict(row)
    out["state_type"], out["state_name"], out["state_message"] = last["to_type"], last["to_name"], last["message"]
    if ended:
        out["ended_at"] = last["at"]
    return out


def _insert(conn: Connection, table: Table, rows: list[Mapping[str, Any]], new: Any) -> set[str]:
    if new is True:
        conn.execute(insert(table), rows)
        return {r["id"] for r in rows}
    return {r[0] for r in conn.execute(new.returning(table.c.id), rows).all()}


@functools.lru_cache(maxsize=128)
def _update_stmt(table: Table, columns: tuple[str, ...]) -> Any:
    return update(table).where(table.c.id == bindparam("b_id")).values({c: bindparam(c) for c in columns})


def _update_rows(conn: Connection, table: Table, rows: list[Mapping[str, Any]]) -> None:
    """Rows with the same columns go in one executemany, in their original order otherwise."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        cols = tuple(sorted(k for k in row if k != "id"))
        params = {"b_id": row["id"], **{k: row[k] for k in cols}}
        if groups and cols not in groups:
            _flush_groups(conn, table, groups)
        groups.setdefault(cols, []).append(params)
    _flush_groups(conn, table, groups)


def _flush_groups(conn: Connection, table: Table, groups: dict[tuple[str, ...], list[dict[str, Any]]]) -> None:
    for cols, params in groups.items():
        conn.execute(_update_stmt(table, cols), params)
    groups.clear()


def _update_states(conn: Connection, table: Table, last: list[Mapping[str, Any]],
                   values: Mapping[str, Any] | None) -> None:
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for c in last:
        params = {"b_id": c["run_id"], "state_type": c["to_type"], "state_name": c["to_name"],
                  "state_message": c["message"], **(values or {})}
        if c["to_type"] in _TERMINAL:
            params.setdefault("ended_at", c["at"])
        groups.setdefault(tuple(sorted(k for k in params if k != "b_id")), []).append(params)
    _flush_groups(conn, table, groups)


_CHANGE_KEYS = frozenset(("run_id", "run_kind", "from_type", "to_type", "to_name", "message", "at"))


def _change_row(kind: str, c: Mapping[str, Any]) -> Mapping[str, Any]:
    if c.get("run_kind") == kind and c.keys() == _CHANGE_KEYS:
        return c  # already in the table's shape (the engine's batches): no copy
    return {"run_id": c["run_id"], "run_kind": kind, "from_type": c.get("from_type"), "to_type": c["to_type"],
            "to_name": c["to_name"], "message": c.get("message"), "at": c["at"]}
