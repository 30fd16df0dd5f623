"""Quality gates on lineage: each check as an assertion, the gate's profile as metrics.

The checked dataset is the one the frame was read from (or the table a SQL source names): the
gate's task records it as an input with ``assertions`` and ``metrics``. The rows the gate lets
through carry them on, so the table they are loaded into gets them too.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from headrace.lineage.frames import derive, origin_of
from headrace.lineage.model import DatasetIO, DatasetRef
from headrace.lineage.naming import duckdb_connection_source, duckdb_source, sql_source
from headrace.lineage.record import record

log = logging.getLogger("headrace.lineage")


def assertions_of(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One ``{"assertion", "success"[, "column"]}`` per check (dataQualityAssertions' shape)."""
    out = []
    for r in results:
        item: dict[str, Any] = {"assertion": str(r.get("expectation_type") or r.get("name")),
                                "success": bool(r.get("success"))}
        column = (r.get("kwargs") or {}).get("column")
        if column is not None:
            item["column"] = str(column)
        out.append(item)
    return out


def metrics_of(profile: dict[str, Any] | None) -> dict[str, Any] | None:
    """dataQualityMetrics from a gate's profile: rowCount and per column null and distinct counts,
    min and max."""
    if not profile or profile.get("row_count") is None:
        return None
    n = int(profile["row_count"])
    columns: dict[str, Any] = {}
    for name, stats in (profile.get("columns") or {}).items():
        m: dict[str, Any] = {}
        if stats.get("null_share") is not None:
            m["nullCount"] = round(float(stats["null_share"]) * n)
            m["count"] = n - m["nullCount"]
        if stats.get("distinct_count") is not None:
            m["distinctCount"] = int(stats["distinct_count"])
        for key in ("min", "max"):
            if stats.get(key) is not None:
                m[key] = float(stats[key])
        columns[str(name)] = m
    return {"rowCount": n, "columnMetrics": columns}


def checked_dataset(data: Any) -> DatasetRef | None:
    """The dataset a gate checked: where the frame was read from (one dataset), or the SQL table."""
    origin = origin_of(data)
    if origin is not None and len(origin.datasets) == 1:
        return origin.datasets[0]
    table = getattr(data, "table", None)
    if not isinstance(table, str):
        return None
    if hasattr(data, "url"):
        return sql_source(str(data.url)).table(table, getattr(data, "schema", None))
    database = getattr(data, "database", None)
    if database is None or isinstance(database, str | Path):
        return duckdb_source(str(database or ":memory:")).table(table, getattr(data, "schema", None))
    return duckdb_connection_source(database).table(table, getattr(data, "schema", None))


def gate_checked(data: Any, passed: Any, results: list[dict[str, Any]], profile: dict[str, Any] | None,
                 suite: str) -> None:
    """Attach a gate's checks to the dataset it checked, and to the rows it passed on."""
    try:
        assertions, metrics = assertions_of(results), metrics_of(profile)
        ref = checked_dataset(data)
        if ref is not None:
            record(DatasetIO(ref, "input", assertions=assertions, metrics=metrics,
                             extra={"quality_suite": suite}))
        if passed is not None:
            derive(passed, data, assertions=assertions, metrics=metrics)
    except Exception as exc:  # lineage never fails a gate
        log.debug("lineage: could not attach quality gate %s: %s", suite, exc)
