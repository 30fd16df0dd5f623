"""Read-only queries for the web page: flows over time, datasets, quality history, lake jobs.

Like ``views``, every query reads a bounded number of rows through an index.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, tuple_

from headrace.store.base import as_utc
from headrace.store.quality import _profile_row, _result_row
from headrace.store.runs import _row
from headrace.store.schema import dataset_io, datasets, flow_runs, metrics, quality_profiles, quality_results
from headrace.store.views import MAX_PAGE, _runs_query, _summed

__all__ = [
    "dataset", "dataset_io_page", "dataset_links", "datasets_page", "flow_history", "flow_names", "lake_runs",
    "metric_series", "quality_suites", "run_quality", "suite_profiles", "suite_results", "run_metrics",
    "datasets_by_ids",
]

# Distinct values through the index, one index probe per value (a "loose index scan"),
# so listing the flows or suites does not read every run or every result.
_FLOW_NAMES = text("""
WITH RECURSIVE names(name, n) AS (
    SELECT (SELECT min(flow_name) FROM hr_flow_runs), 1
    UNION ALL
    SELECT (SELECT min(flow_name) FROM hr_flow_runs WHERE flow_name > names.name), n + 1
    FROM names WHERE names.name IS NOT NULL AND n < :cap
)
SELECT name FROM names WHERE name IS NOT NULL
""")
_SUITES = text("""
WITH RECURSIVE names(name, n) AS (
    SELECT (SELECT min(suite) FROM hr_quality_results), 1
    UNION ALL
    SELECT (SELECT min(suite) FROM hr_quality_results WHERE suite > names.name), n + 1
    FROM names WHERE names.name IS NOT NULL AND n < :cap
)
SELECT name FROM names WHERE name IS NOT NULL
""")


def flow_names(store: Any, cap: int = 500) -> list[str]:
    with store.read() as conn:
        return [r[0] for r in conn.execute(_FLOW_NAMES, {"cap": cap})]


def flow_history(store: Any, flow_name: str, limit: int = 500) -> list[dict[str, Any]]:
    """The flow's last ``limit`` runs with their summaries, oldest first."""
    query = (_runs_query().where(flow_runs.c.flow_name == flow_name)
             .order_by(flow_runs.c.created_at.desc()).limit(min(limit, 5000)))
    with store.read() as conn:
        rows = [_summed(r) for r in conn.execute(query).mappings()]
    return rows[::-1]


def run_metrics(store: Any, flow_run_id: str, limit: int = 5000) -> list[dict[str, Any]]:
    """A run's metrics in the order they were logged (the last ``limit``)."""
    c = metrics.c
    query = select(metrics).where(c.flow_run_id == flow_run_id).order_by(c.id.desc()).limit(limit)
    with store.read() as conn:
        return [_row(r) for r in conn.execute(query).mappings()][::-1]


# -- datasets ---------------------------------------------------------------------------------------
def _last_io(direction: str) -> Any:
    io = dataset_io.c
    return (select(func.max(io.at)).where(io.dataset_id == datasets.c.id, io.direction == direction)
            .scalar_subquery())


def datasets_page(store: Any, *, after: tuple[str, int] | None = None, limit: int = 50,
                  search: str | None = None) -> tuple[list[dict[str, Any]], tuple[str, int] | None]:
    """Datasets by name, with when each was last written and read."""
    d = datasets.c
    query = select(datasets, _last_io("output").label("last_written"), _last_io("input").label("last_read"))
    if search:
        query = query.where(d.name.icontains(search, autoescape=True) | d.uri.icontains(search, autoescape=True))
    if after is not None:
        query = query.where(tuple_(d.name, d.id) > tuple_(after[0], after[1]))
    query = query.order_by(d.name, d.id).limit(min(limit, MAX_PAGE) + 1)
    with store.read() as conn:
        rows = [_row(r) for r in conn.execute(query).mappings()]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, ((rows[-1]["name"], rows[-1]["id"]) if more and rows else None)


def dataset(store: Any, dataset_id: int) -> dict[str, Any] | None:
    with store.read() as conn:
        row = conn.execute(select(datasets).where(datasets.c.id == dataset_id)).mappings().first()
    return _row(row) if row is not None else None


def dataset_io_page(store: Any, dataset_id: int, *, before: tuple[datetime, int] | None = None,
                    limit: int = 100) -> tuple[list[dict[str, Any]], tuple[datetime, int] | None]:
    """Reads and writes of a dataset, newest first, with the flow run's name and state."""
    io, f = dataset_io.c, flow_runs.c
    query = (select(io.id, io.flow_run_id, io.task_run_id, io.direction, io.rows, io.bytes, io.at,
                    f.name.label("run_name"), f.flow_name, f.state_type, f.state_name)
             .select_from(dataset_io.outerjoin(flow_runs, f.id == io.flow_run_id))
             .where(io.dataset_id == dataset_id))
    if before is not None:
        query = query.where(tuple_(io.at, io.id) < tuple_(before[0], before[1]))
    query = query.order_by(io.at.desc(), io.id.desc()).limit(min(limit, MAX_PAGE) + 1)
    with store.read() as conn:
        rows = [_row(r) for r in conn.execute(query).mappings()]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, ((rows[-1]["at"], rows[-1]["id"]) if more and rows else None)


def dataset_links(store: Any, dataset_ids: list[int], *, upstream: bool,
                  runs_limit: int = 200) -> list[dict[str, Any]]:
    """Edges one hop from these datasets through the runs that touched them.

    Upstream: runs that wrote one of them, and what those runs read. Downstream:
    runs that read one of them, and what those runs wrote. Only the latest
    ``runs_limit`` such runs are looked at.
    """
    if not dataset_ids:
        return []
    io = dataset_io.c
    near, far = ("output", "input") if upstream else ("input", "output")
    runs_q = (select(io.flow_run_id, io.dataset_id).where(io.dataset_id.in_(dataset_ids[:MAX_PAGE]),
                                                          io.direction == near, io.flow_run_id.is_not(None))
              .order_by(io.at.desc()).limit(runs_limit))
    with store.read() as conn:
        touched: dict[str, set[int]] = {}
        for run_id, ds in conn.execute(runs_q):
            touched.setdefault(run_id, set()).add(int(ds))
        if not touched:
            return []
        other_q = (select(io.flow_run_id, io.dataset_id, func.max(io.at)).where(
            io.flow_run_id.in_(list(touched)), io.direction == far).group_by(io.flow_run_id, io.dataset_id))
        others = conn.execute(other_q).all()
    edges: dict[tuple[int, int], dict[str, Any]] = {}
    for run_id, ds, at in others:
        for mine in touched[run_id]:
            src, dst = (int(ds), mine) if upstream else (mine, int(ds))
            edge = edges.setdefault((src, dst), {"source": src, "target": dst, "runs": 0, "last_run": run_id,
                                                 "last_at": as_utc(at)})
            edge["runs"] += 1
            if as_utc(at) and (edge["last_at"] is None or as_utc(at) > edge["last_at"]):  # type: ignore[operator]
                edge["last_run"], edge["last_at"] = run_id, as_utc(at)
    return list(edges.values())


def datasets_by_ids(store: Any, ids: list[int]) -> list[dict[str, Any]]:
    if not ids:
        return []
    with store.read() as conn:
        return [_row(r) for r in conn.execute(select(datasets).where(datasets.c.id.in_(ids[:MAX_PAGE * 2])))
                .mappings()]


# -- quality ------------------------------------------------------------------------------------------
def quality_suites(store: Any, cap: int = 200) -> list[str]:
    with store.read() as conn:
        return [r[0] for r in conn.execute(_SUITES, {"cap": cap})]


def run_quality(store: Any, flow_run_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A flow run's check results and gate profiles, each through its flow run index."""
    r, p = quality_results.c, quality_profiles.c
    with store.read() as conn:
        results = conn.execute(select(quality_results).where(r.flow_run_id == flow_run_id).order_by(r.id)
                               .limit(5000)).mappings().all()
        profiles = conn.execute(select(quality_profiles).where(p.flow_run_id == flow_run_id).order_by(p.id)
                                .limit(500)).mappings().all() if results else []
    return [_result_row(x) for x in results], [_profile_row(x) for x in profiles]


def suite_results(store: Any, suite: str, limit: int = 2000) -> list[dict[str, Any]]:
    """The suite's last ``limit`` check results, oldest first."""
    c = quality_results.c
    query = select(quality_results).where(c.suite == suite).order_by(c.at.desc(), c.id.desc()).limit(limit)
    with store.read() as conn:
        return [_result_row(r) for r in conn.execute(query).mappings()][::-1]


def suite_profiles(store: Any, suite: str, limit: int = 200) -> list[dict[str, Any]]:
    """The suite's last ``limit`` gate outcomes (rows in, passed, quarantined), oldest first."""
    c = quality_profiles.c
    query = select(quality_profiles).where(c.suite == suite).order_by(c.at.desc(), c.id.desc()).limit(limit)
    with store.read() as conn:
        return [_profile_row(r) for r in conn.execute(query).mappings()][::-1]


# -- lake jobs -----------------------------------------------------------------------------------------
def lake_runs(store: Any, names: tuple[str, ...], limit: int = 50) -> list[dict[str, Any]]:
    """The latest runs that logged any of these metrics, each with the last value of every one."""
    c = metrics.c
    recent = select(c.flow_run_id).where(c.name.in_(names)).order_by(c.at.desc()).limit(limit * 200)
    with store.read() as conn:
        ids: list[str] = []
        for (run_id,) in conn.execute(recent):
            if run_id and run_id not in ids:
                ids.append(run_id)
            if len(ids) >= limit:
                break
        if not ids:
            return []
        last = select(func.max(c.id)).where(c.flow_run_id.in_(ids), c.name.in_(names)).group_by(
            c.flow_run_id, c.name)
        values = conn.execute(select(c.flow_run_id, c.name, c.value).where(c.id.in_(last))).all()
        runs = {r["id"]: r for r in (_summed(x) for x in conn.execute(
            _runs_query().where(flow_runs.c.id.in_(ids))).mappings())}
    for run in runs.values():
        run["lake"] = {}
    for run_id, name, value in values:
        if run_id in runs:
            runs[run_id]["lake"][name] = value
    return [runs[i] for i in ids if i in runs]


def metric_series(store: Any, flow_run_id: str, names: tuple[str, ...], limit: int = 2000) -> list[dict[str, Any]]:
    """The last ``limit`` values of these metrics of one run, oldest first."""
    c = metrics.c
    query = (select(c.name, c.value, c.at).where(c.flow_run_id == flow_run_id, c.name.in_(names))
             .order_by(c.id.desc()).limit(limit))
    with store.read() as conn:
        return [_row(r) for r in conn.execute(query).mappings()][::-1]
