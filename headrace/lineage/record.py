"""Recording reads and writes on the running task (or flow): the run's ``lineage`` list and the store.

Every recorder ends in :func:`record`, which appends the ``DatasetIO`` to the innermost run
context's ``lineage`` list (read by the OpenLineage emitter at the run's end) and stores it,
with its details as JSON, in ``hr_dataset_io``. Outside a run nothing is recorded.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from headrace.engine.context import get_run_context, record_dataset
from headrace.lineage.model import ColumnSource, DatasetIO, DatasetRef, schema_of
from headrace.lineage.naming import parse_dataset
from headrace.secrets import redact

log = logging.getLogger("headrace.lineage")

MAX_SQL = 20_000   # characters of SQL kept with a record


_KINDS = {"postgres": "postgresql", "gs": "gcs"}


def kind_of(ref: DatasetRef) -> str:
    """The store's kind of a dataset (part of its identity there): its namespace's scheme."""
    scheme = ref.namespace.split("://", 1)[0] if "://" in ref.namespace else ref.namespace
    return _KINDS.get(scheme, scheme)


def record(io: DatasetIO, kind: str | None = None) -> DatasetIO | None:
    """Append ``io`` to the current run's lineage and store it; ``None`` outside a run.

    ``kind`` defaults to the namespace's scheme; the same dataset must always get the same kind.
    """
    ctx = get_run_context()
    if ctx is None:
        return None
    attempt = getattr(ctx, "attempt", None)
    if attempt is not None:
        io.extra.setdefault("attempt", attempt)
    if io.sql is not None:
        io.sql = redact(io.sql)[:MAX_SQL]
    record_dataset(io.direction, kind or kind_of(io.dataset), io.dataset.namespace, io.dataset.name, rows=io.rows,
                   bytes_=io.bytes, details=details_json(io), lineage=io)
    return io


def record_input(dataset: Any, *, rows: int | None = None, bytes: int | None = None,
                 schema: Any = None, sql: str | None = None) -> DatasetIO | None:
    """Declare that the running task read ``dataset`` (for I/O that does not go through
    ``headrace.io``)::

        record_input("postgres://db:5432/crm.public.customers", rows=len(df))
        record_input("s3://raw/events", schema=df)          # a frame gives its schema
    """
    return record(DatasetIO(parse_dataset(dataset), "input", rows=rows, bytes=bytes,
                            schema=schema_of(schema), sql=sql))


def record_output(dataset: Any, *, rows: int | None = None, bytes: int | None = None,
                  schema: Any = None, sql: str | None = None,
                  column_lineage: dict[str, Iterable[Any]] | None = None) -> DatasetIO | None:
    """Declare that the running task wrote ``dataset``; ``column_lineage`` maps an output column
    to its input columns, each a ``ColumnSource`` or ``(dataset, column)``."""
    columns = None
    if column_lineage:
        columns = {str(k): [_column_source(s) for s in v] for k, v in column_lineage.items()}
    return record(DatasetIO(parse_dataset(dataset), "output", rows=rows, bytes=bytes,
                            schema=schema_of(schema), sql=sql, column_lineage=columns))


def record_declared(values: Iterable[Any], direction: str) -> None:
    """``@task(inputs=[...], outputs=[...])``: record each declared dataset on the running task."""
    for value in values:
        record(DatasetIO(parse_dataset(value), "input" if direction == "input" else "output"))


def record_transform(task_name: str, parameters: dict[str, Any], value: Any) -> None:
    """A task returned a frame: it inherits where its same-named columns came from in the frames
    it was given (typed TRANSFORMATION: the task may have changed them), and the schemas in and
    out, which the record of the table it is loaded into keeps."""
    from headrace.lineage.frames import transformed

    try:
        frames = [v for v in parameters.values() if type(v).__module__.startswith(("pandas", "polars", "pyarrow"))]
        if frames and value is not None and all(f is not value for f in frames):
            transformed(task_name, frames, value)
    except Exception as exc:  # lineage never fails a task
        log.debug("lineage: could not follow the frames of task %s: %s", task_name, exc)


def replay_inputs(earlier_flow_run_id: str | None, task_key: str, cache_key: str | None = None,
                  value: Any = None) -> list[DatasetIO]:
    """Record again, on the running task, what the run that made its result read: the task run
    ``task_key`` of an earlier flow run (``headrace retry`` reuses it), or the run that filled the
    cache entry ``cache_key``. Rows are left out (nothing was read now); a frame ``value`` gets
    back the column lineage its read gave it."""
    from headrace.lineage.frames import Origin, remember
    from headrace.store import views_lineage

    ctx = get_run_context()
    if ctx is None:
        return []
    if cache_key is not None:
        rows = views_lineage.cache_reads(ctx.store, cache_key)
    else:
        rows = views_lineage.task_reads(ctx.store, str(earlier_flow_run_id), task_key)
    out: list[DatasetIO] = []
    columns: dict[str, list[ColumnSource]] = {}
    for row in rows:
        io = from_details(DatasetRef(row["uri"], row["name"]), "input", None, None, row["details"])
        columns.update(column_sources(io.extra.get("frame_lineage") or {}))
        io.extra = {("cached_from" if cache_key else "reused_from"): row["task_run_id"]}
        kept = record(io, row["kind"])
        if kept is not None:
            out.append(kept)
    if out and value is not None and type(value).__module__.startswith(("pandas", "polars", "pyarrow")):
        names = [str(c) for c in (getattr(value, "column_names", None) or list(getattr(value, "columns", [])))]
        same = set(names) == set(columns)
        kept_columns = {c: v if same else [replace(s, subtype="TRANSFORMATION") for s in v]
                        for c, v in columns.items() if c in names}
        remember(value, Origin([io.dataset for io in out], kept_columns, out[0].sql))
    return out


def _column_source(value: Any) -> ColumnSource:
    if isinstance(value, ColumnSource):
        return value
    dataset, column = value
    return ColumnSource(parse_dataset(dataset), str(column), "DIRECT", "TRANSFORMATION")


# -- the stored form -------------------------------------------------------------------------------
def _source_dict(s: ColumnSource) -> dict[str, str]:
    return {"namespace": s.dataset.namespace, "name": s.dataset.name, "field": s.column,
            "type": s.type, "subtype": s.subtype}


def source_dicts(columns: dict[str, list[ColumnSource]]) -> dict[str, list[dict[str, str]]]:
    """Column lineage as JSON-ready dicts (OpenLineage inputFields plus type and subtype)."""
    return {k: [_source_dict(s) for s in v] for k, v in columns.items()}


def column_sources(columns: dict[str, list[dict[str, str]]]) -> dict[str, list[ColumnSource]]:
    """The reverse of :func:`source_dicts`."""
    return {k: [ColumnSource(DatasetRef(s["namespace"], s["name"]), s["field"], s.get("type", "DIRECT"),
                             s.get("subtype", "IDENTITY")) for s in v] for k, v in columns.items()}


def details_json(io: DatasetIO) -> str | None:
    """What the store keeps beyond counts (omitting what is unknown)."""
    out: dict[str, Any] = {}
    if io.schema:
        out["schema"] = [[n, t] for n, t in io.schema]
    if io.column_lineage:
        out["column_lineage"] = source_dicts(io.column_lineage)
    if io.indirect:
        out["indirect"] = [_source_dict(s) for s in io.indirect]
    for key in ("sql", "assertions", "metrics"):
        value = getattr(io, key)
        if value:
            out[key] = value
    if io.extra:
        out["extra"] = io.extra
    return redact(json.dumps(out, default=str, sort_keys=True)) if out else None


def from_details(dataset: DatasetRef, direction: str, rows: int | None, bytes_: int | None,
                 details: str | None) -> DatasetIO:
    """A stored record back as a ``DatasetIO``."""
    d: dict[str, Any] = json.loads(details) if details else {}
    columns = column_sources(d["column_lineage"]) if d.get("column_lineage") else None
    return DatasetIO(dataset, "input" if direction == "input" else "output", rows=rows, bytes=bytes_,
                     schema=[(n, t) for n, t in d["schema"]] if d.get("schema") else None,
                     column_lineage=columns, sql=d.get("sql"), assertions=d.get("assertions"),
                     metrics=d.get("metrics"), extra=d.get("extra") or {},
                     indirect=column_sources({"_": d["indirect"]})["_"] if d.get("indirect") else None)


def merged(lineage: Iterable[DatasetIO]) -> list[DatasetIO]:
    """One ``DatasetIO`` per dataset and direction, from the latest attempt that recorded any:
    rows and bytes added up, schema, SQL and column lineage of the last record, checks of all."""
    items = list(lineage)
    attempts = [int(io.extra["attempt"]) for io in items if io.extra.get("attempt") is not None]
    last = max(attempts) if attempts else None
    out: dict[tuple[DatasetRef, str], DatasetIO] = {}
    for io in items:
        if last is not None and io.extra.get("attempt", last) != last:
            continue
        key = (io.dataset, io.direction)
        seen = out.get(key)
        if seen is None:
            out[key] = DatasetIO(io.dataset, io.direction, io.rows, io.bytes, io.schema, io.column_lineage,
                                 io.sql, io.assertions, io.metrics, dict(io.extra), io.indirect)
            continue
        seen.rows = _add(seen.rows, io.rows)
        seen.bytes = _add(seen.bytes, io.bytes)
        seen.schema = io.schema or seen.schema
        seen.column_lineage = io.column_lineage or seen.column_lineage
        seen.indirect = io.indirect or seen.indirect
        seen.sql = io.sql or seen.sql
        if io.assertions:
            seen.assertions = (seen.assertions or []) + io.assertions
        seen.metrics = io.metrics or seen.metrics
    return list(out.values())


def _add(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else a + b
