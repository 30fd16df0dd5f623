"""Read-only lineage queries: datasets by identity, the runs that read or wrote them, one hop of edges.

A run is a flow run, or a task run called outside any flow. Every query reads a bounded
number of rows through an index (``ix_hr_dataset_io_dataset``, ``ix_hr_dataset_io_flow``,
``ix_hr_dataset_io_task``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, or_, select

from headrace.store.base import as_utc
from headrace.store.runs import _row
from headrace.store.schema import dataset_io, datasets, flow_runs, task_runs

__all__ = ["dataset_runs", "find_datasets", "find_datasets_by_ids", "latest_output_details", "lineage_links",
           "cache_reads", "task_reads"]

MAX_IDS = 500


def find_datasets(store: Any, *, namespace: str | None = None, name: str | None = None,
                  name_suffix: str | None = None, dataset_id: int | None = None,
                  limit: int = 20) -> list[dict[str, Any]]:
    """Datasets matching an exact identity, an id, or a name ending in ``.suffix`` (or equal to it)."""
    d = datasets.c
    query = select(datasets)
    if dataset_id is not None:
        query = query.where(d.id == dataset_id)
    if namespace is not None:
        query = query.where(d.uri == namespace)
    if name is not None:
        query = query.where(d.name == name)
    if name_suffix is not None:
        pattern = "%." + name_suffix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(or_(d.name == name_suffix, d.name.like(pattern, escape="\\"),
                                d.name.like("%/" + name_suffix.replace("%", "\\%").replace("_", "\\_"),
                                            escape="\\")))
    with store.read() as conn:
        return [_row(r) for r in conn.execute(query.order_by(d.name, d.id).limit(limit)).mappings()]


def _run_key(io: Any) -> Any:
    return func.coalesce(io.flow_run_id, io.task_run_id)


def lineage_links(store: Any, dataset_ids: list[int], *, upstream: bool, runs_limit: int = 200) -> list[dict[str, Any]]:
    """Edges one hop from these datasets: upstream, runs that wrote one of them and what those runs
    read; downstream, runs that read one and what they wrote. The latest ``runs_limit`` runs count."""
    if not dataset_ids:
        return []
    io = dataset_io.c
    near, far = ("output", "input") if upstream else ("input", "output")
    runs_q = (select(_run_key(io), io.dataset_id)
              .where(io.dataset_id.in_(dataset_ids[:MAX_IDS]), io.direction == near)
              .order_by(io.at.desc()).limit(runs_limit))
    with store.read() as conn:
        touched: dict[str, set[int]] = {}
        for run_id, ds in conn.execute(runs_q):
            if run_id:
                touched.setdefault(run_id, set()).add(int(ds))
        if not touched:
            return []
        # A `headrace retry` run reuses the tasks its first run completed: what the first run read
        # and what the retry wrote are one piece of work, so a run stands for its retry chain.
        chains = _retry_chains(conn, list(touched))
        for run_id, chain in list(chains.items()):
            for other in chain:
                touched.setdefault(other, set()).update(touched[run_id])
        ids = list(touched)
        other_q = (select(_run_key(io).label("run"), io.dataset_id, func.max(io.at))
                   .where(or_(io.flow_run_id.in_(ids), and_(io.flow_run_id.is_(None), io.task_run_id.in_(ids))),
                          io.direction == far)
                   .group_by(_run_key(io), io.dataset_id))
        others = conn.execute(other_q).all()
        names = dict(conn.execute(select(flow_runs.c.id, flow_runs.c.flow_name).where(flow_runs.c.id.in_(ids))).all())
        names.update(conn.execute(select(task_runs.c.id, task_runs.c.task_name).where(
            task_runs.c.id.in_([i for i in ids if i not in names]))).all())
    edges: dict[tuple[int, int], dict[str, Any]] = {}
    for run_id, ds, at in others:
        for mine in touched[run_id]:
            src, dst = (int(ds), mine) if upstream else (mine, int(ds))
            if src == dst:
                continue
            edge = edges.setdefault((src, dst), {"source": src, "target": dst, "runs": 0, "last_run": run_id,
                                                 "last_at": as_utc(at), "jobs": []})
            edge["runs"] += 1
            job = names.get(run_id)
            if job and job not in edge["jobs"]:
                edge["jobs"].append(job)
            if as_utc(at) and (edge["last_at"] is None or as_utc(at) > edge["last_at"]):  # type: ignore[operator]
                edge["last_run"], edge["last_at"] = run_id, as_utc(at)
    return list(edges.values())


def _retry_chains(conn: Any, run_ids: list[str], max_hops: int = 20) -> dict[str, set[str]]:
    """For each flow run that has them, the other runs of its ``retry_of`` chain (earlier and later)."""
    f = flow_runs.c
    links: dict[str, set[str]] = {}
    visited: set[str] = set()
    frontier = set(run_ids)
    for _ in range(max_hops):
        if not frontier:
            break
        visited |= frontier
        rows = conn.execute(select(f.id, f.retry_of).where(
            f.retry_of.is_not(None), or_(f.id.in_(list(frontier)), f.retry_of.in_(list(frontier))))).all()
        found: set[str] = set()
        for run_id, retry_of in rows:
            links.setdefault(run_id, set()).add(retry_of)
            links.setdefault(retry_of, set()).add(run_id)
            found |= {run_id, retry_of}
        frontier = found - visited
    chains: dict[str, set[str]] = {}
    for run_id in run_ids:
        seen, todo = {run_id}, [run_id]
        while todo:
            for near in links.get(todo.pop(), ()):
                if near not in seen:
                    seen.add(near)
                    todo.append(near)
        if len(seen) > 1:
            chains[run_id] = seen - {run_id}
    return chains


def dataset_runs(store: Any, dataset_id: int, *, direction: str = "output", limit: int = 50) -> list[dict[str, Any]]:
    """The latest reads or writes of a dataset, newest first, with their flow and task runs."""
    io, f, t = dataset_io.c, flow_runs.c, task_runs.c
    query = (select(io.id, io.flow_run_id, io.task_run_id, io.rows, io.bytes, io.at, io.details,
                    f.flow_name, f.name.label("run_name"), f.state_name.label("flow_state"),
                    t.task_name, t.task_key, t.state_name.label("task_state"))
             .select_from(dataset_io.outerjoin(flow_runs, f.id == io.flow_run_id)
                          .outerjoin(task_runs, t.id == io.task_run_id))
             .where(io.dataset_id == dataset_id, io.direction == direction)
             .order_by(io.at.desc(), io.id.desc()).limit(limit))
    with store.read() as conn:
        return [_row(r) for r in conn.execute(query).mappings()]


def task_reads(store: Any, flow_run_id: str, task_key: str) -> list[dict[str, Any]]:
    """What the task run ``task_key`` of a flow run read in its last attempt (kind, uri, name, details)."""
    io, t, d = dataset_io.c, task_runs.c, datasets.c
    query = (select(io.task_run_id, io.details, d.kind, d.uri, d.name)
             .select_from(dataset_io.join(task_runs, t.id == io.task_run_id).join(datasets, d.id == io.dataset_id))
             .where(io.flow_run_id == flow_run_id, t.task_key == task_key, io.direction == "input")
             .order_by(io.id).limit(MAX_IDS))
    with store.read() as conn:
        rows = [_row(r) for r in conn.execute(query).mappings()]
    attempts = [_attempt(r["details"]) for r in rows]
    last = max((a for a in attempts if a is not None), default=None)
    return [r for r, a in zip(rows, attempts, strict=True) if last is None or a in (None, last)]


def cache_reads(store: Any, cache_key: str) -> list[dict[str, Any]]:
    """What the latest task run that computed (not reused) the cache entry ``cache_key`` read."""
    t = task_runs.c
    query = (select(t.flow_run_id, t.task_key).where(t.cache_key == cache_key, t.state_name == "Completed")
             .order_by(t.ended_at.desc()).limit(1))
    with store.read() as conn:
        found = conn.execute(query).first()
    if found is None:
        return []
    flow_run_id, task_key = found
    if flow_run_id is None:
        return []
    return task_reads(store, flow_run_id, task_key)


def _attempt(details: str | None) -> int | None:
    import json

    try:
        value = json.loads(details).get("extra", {}).get("attempt") if details else None
    except ValueError:
        return None
    return int(value) if value is not None else None


def latest_output_details(store: Any, dataset_id: int, scan: int = 50) -> str | None:
    """The details (JSON) of the newest write of a dataset that has column lineage or a schema."""
    io = dataset_io.c
    query = (select(io.details).where(io.dataset_id == dataset_id, io.direction == "output",
                                      io.details.is_not(None))
             .order_by(io.at.desc(), io.id.desc()).limit(scan))
    with store.read() as conn:
        rows = [r[0] for r in conn.execute(query)]
    for details in rows:
        if '"column_lineage"' in details:
            return str(details)
    return str(rows[0]) if rows else None


def find_datasets_by_ids(store: Any, ids: list[int]) -> list[dict[str, Any]]:
    if not ids:
        return []
    with store.read() as conn:
        return [_row(r) for r in conn.execute(select(datasets).where(datasets.c.id.in_(ids[:MAX_IDS * 2])))
                .mappings()]
