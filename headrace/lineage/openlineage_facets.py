"""OpenLineage RunEvents of headrace runs, built with the field's client library (``openlineage-python``).

``build_event`` turns what the engine reported about a run (its job, times, state, error and
the ``DatasetIO`` it recorded) into a ``RunEvent`` with its facets; ``serialize`` turns that
into one JSON line with every string redacted. Importing the client costs about half a
second, so this module is imported off the engine's hot path (see ``headrace.lineage.openlineage``).
"""

from __future__ import annotations

import json
import os
import traceback
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from headrace.lineage._client import load_client
from headrace.lineage.model import DatasetIO
from headrace.secrets import redact

_client = load_client()
InputDataset, Job, OutputDataset = _client.InputDataset, _client.Job, _client.OutputDataset
Run, RunEvent, RunState, Serde = _client.Run, _client.RunEvent, _client.RunState, _client.Serde
column_lineage_dataset = _client.column_lineage_dataset
data_quality_assertions_dataset = _client.data_quality_assertions_dataset
data_quality_metrics_dataset = _client.data_quality_metrics_dataset
data_quality_metrics_input_dataset = _client.data_quality_metrics_input_dataset
datasource_dataset, error_message_run = _client.datasource_dataset, _client.error_message_run
job_type_job, nominal_time_run = _client.job_type_job, _client.nominal_time_run
output_statistics_output_dataset = _client.output_statistics_output_dataset
parent_run, schema_dataset, sql_job = _client.parent_run, _client.schema_dataset, _client.sql_job
source_code_location_job = _client.source_code_location_job

PRODUCER = "https://pypi.org/project/headrace/"
_HEX = frozenset("0123456789abcdef")
_METRIC_KEYS = ("nullCount", "distinctCount", "sum", "count", "min", "max", "quantiles")


def run_uuid(run_id: str) -> str:
    """A headrace run id as the UUID OpenLineage wants (the same run gets the same UUID)."""
    if len(run_id) == 32 and _HEX.issuperset(run_id):  # headrace's own ids (uuid4 hex): the fast way
        return f"{run_id[:8]}-{run_id[8:12]}-{run_id[12:16]}-{run_id[16:20]}-{run_id[20:]}"
    try:
        return str(uuid.UUID(run_id))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"headrace:{run_id}"))


def iso(at: datetime) -> str:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).isoformat()


def build_event(*, event_type: str, kind: str, namespace: str, job_name: str, run_id: str, at: datetime | str,
                fn: Any = None, parent: tuple[str, str] | None = None, scheduled_time: datetime | None = None,
                message: str | None = None, error: BaseException | None = None,
                datasets: Iterable[DatasetIO] = ()) -> Any:
    """One RunEvent. ``parent``: (run id, job name) of the run this one ran in; ``kind``: "flow" or "task"."""
    ios = merge(datasets)
    run_facets: dict[str, Any] = {}
    if parent is not None:
        run_facets["parent"] = parent_run.ParentRunFacet(
            run=parent_run.Run(runId=run_uuid(parent[0])), job=parent_run.Job(namespace=namespace, name=parent[1]))
    if scheduled_time is not None:
        run_facets["nominalTime"] = nominal_time_run.NominalTimeRunFacet(nominalStartTime=iso(scheduled_time))
    if event_type == "FAIL":
        run_facets["errorMessage"] = _error_facet(message, error)
    return RunEvent(
        eventType=RunState[event_type], eventTime=at if isinstance(at, str) else iso(at),
        run=Run(runId=run_uuid(run_id) if run_id != PLACEHOLDER_RUN else run_id, facets=run_facets),
        job=Job(namespace=namespace, name=job_name, facets=_job_facets(kind, fn, ios)),
        inputs=[_input(io) for io in ios if io.direction == "input"],
        outputs=[_output(io) for io in ios if io.direction == "output"], producer=PRODUCER)


# A template is an event serialised once with these in place of its run id and time.
PLACEHOLDER_RUN = "0e1d2c3b-4a59-4687-a5b4-c3d2e1f00a1b"
PLACEHOLDER_TIME = "1999-12-31T23:59:59.999999+00:00"


def serialize(event: Any) -> str:
    """The event as one JSON line, every string in it redacted."""
    return json.dumps(_redacted(Serde.to_dict(event)), sort_keys=True, separators=(",", ":"))


def _redacted(value: Any) -> Any:
    """Every string redacted; each facet's ``_producer`` is headrace (the client's classes name themselves)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: PRODUCER if k == "_producer" else _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def _error_facet(message: str | None, error: BaseException | None) -> Any:
    stack = "".join(traceback.format_exception(error))[-8000:] if error is not None else None
    text = message or (f"{type(error).__name__}: {error}" if error is not None else "the run failed")
    return error_message_run.ErrorMessageRunFacet(message=redact(text), programmingLanguage="python",
                                                   stackTrace=redact(stack) if stack else None)


def _job_facets(kind: str, fn: Any, ios: list[DatasetIO]) -> dict[str, Any]:
    facets: dict[str, Any] = {}
    if kind == "flow":  # tasks are known as such by their parent facet; events stay small
        facets["jobType"] = job_type_job.JobTypeJobFacet(processingType="BATCH", integration="HEADRACE",
                                                         jobType="FLOW")
    where = source_location(fn)
    if where is not None:
        path, line = where
        facets["sourceCodeLocation"] = source_code_location_job.SourceCodeLocationJobFacet(
            type="file", url=f"{Path(path).as_uri()}#L{line}", path=path)
    if kind == "task":
        queries = list(dict.fromkeys(io.sql.strip() for io in ios if io.sql and io.sql.strip()))
        if queries:
            facets["sql"] = sql_job.SQLJobFacet(query=";\n".join(queries))
    return facets


def source_location(fn: Any) -> tuple[str, int] | None:
    """(absolute file path, first line) of a flow's or task's function, if it has one (``fn`` may
    already be that pair: records travel to the sender process with it, not the function)."""
    if isinstance(fn, tuple):
        return fn  # type: ignore[return-value]
    fn = getattr(fn, "__wrapped__", fn)
    code = getattr(fn, "__code__", None)
    if code is None or code.co_filename.startswith("<"):
        return None
    return os.path.abspath(code.co_filename), int(code.co_firstlineno)


def merge(datasets: Iterable[DatasetIO]) -> list[DatasetIO]:
    """One entry per dataset and direction: rows and bytes add up, the last schema and facets win."""
    merged: dict[tuple[str, str, str], DatasetIO] = {}
    for io in datasets:
        key = (io.dataset.namespace, io.dataset.name, io.direction)
        seen = merged.get(key)
        if seen is None:
            merged[key] = DatasetIO(io.dataset, io.direction, io.rows, io.bytes, io.schema, io.column_lineage,
                                    io.sql, io.assertions, io.metrics, dict(io.extra))
            continue
        seen.rows = _add(seen.rows, io.rows)
        seen.bytes = _add(seen.bytes, io.bytes)
        for name in ("schema", "column_lineage", "sql", "metrics"):
            if getattr(io, name) is not None:
                setattr(seen, name, getattr(io, name))
        if io.assertions:
            seen.assertions = [*(seen.assertions or []), *io.assertions]
    return list(merged.values())


def _add(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else a + b


def _dataset_facets(io: DatasetIO) -> dict[str, Any]:
    ns = io.dataset.namespace
    facets: dict[str, Any] = {"dataSource": datasource_dataset.DatasourceDatasetFacet(
        name=ns, uri=ns if "://" in ns else f"{ns}:///")}
    if io.schema:
        facets["schema"] = schema_dataset.SchemaDatasetFacet(
            fields=[schema_dataset.SchemaDatasetFacetFields(name=str(n), type=str(t)) for n, t in io.schema])
    return facets


def _assertions(io: DatasetIO) -> Any:
    return data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(assertions=[
        data_quality_assertions_dataset.Assertion(assertion=str(a["assertion"]), success=bool(a["success"]),
                                                  column=str(a["column"]) if a.get("column") else None)
        for a in io.assertions or ()])


def _column_metrics(module: Any, metrics: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for column, values in (metrics.get("columnMetrics") or {}).items():
        kept = {k: v for k, v in values.items() if k in _METRIC_KEYS and v is not None}
        out[str(column)] = module.ColumnMetrics(**kept)
    return out


def _input(io: DatasetIO) -> Any:
    input_facets: dict[str, Any] = {}
    if io.assertions:
        input_facets["dataQualityAssertions"] = _assertions(io)
    if io.metrics:
        m = data_quality_metrics_input_dataset
        input_facets["dataQualityMetrics"] = m.DataQualityMetricsInputDatasetFacet(
            columnMetrics=_column_metrics(m, io.metrics), rowCount=io.metrics.get("rowCount"),
            bytes=io.metrics.get("bytes"))
    return InputDataset(namespace=io.dataset.namespace, name=io.dataset.name, facets=_dataset_facets(io),
                        inputFacets=input_facets)


def _output(io: DatasetIO) -> Any:
    facets = _dataset_facets(io)
    if io.column_lineage:
        lin = column_lineage_dataset
        facets["columnLineage"] = lin.ColumnLineageDatasetFacet(fields={
            column: lin.Fields(inputFields=[
                lin.InputField(namespace=s.dataset.namespace, name=s.dataset.name, field=s.column,
                               transformations=[lin.Transformation(type=s.type, subtype=s.subtype)])
                for s in sources])
            for column, sources in io.column_lineage.items()})
    if io.assertions:
        facets["dataQualityAssertions"] = _assertions(io)
    if io.metrics:
        m = data_quality_metrics_dataset
        facets["dataQualityMetrics"] = m.DataQualityMetricsDatasetFacet(
            columnMetrics=_column_metrics(m, io.metrics), rowCount=io.metrics.get("rowCount"),
            bytes=io.metrics.get("bytes"))
    output_facets: dict[str, Any] = {}
    if io.rows is not None or io.bytes is not None:
        output_facets["outputStatistics"] = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
            rowCount=io.rows, size=io.bytes)
    return OutputDataset(namespace=io.dataset.namespace, name=io.dataset.name, facets=facets,
                         outputFacets=output_facets)
