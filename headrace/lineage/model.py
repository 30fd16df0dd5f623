"""What lineage knows about one read or write: the shared shape of the lineage part.

The recorders (``headrace.io``, ``record_input``/``record_output``, ``@task(inputs=, outputs=)``,
quality gates) append a ``DatasetIO`` to the running task's (or flow's) ``lineage`` list and
store it; the OpenLineage emitter turns the lists into the run's events at its end. Dataset
identity follows the OpenLineage naming rules: ``namespace`` is the source
(``postgres://host:port``, ``duckdb://path``, ``sqlite://path``, ``file``, ``s3://bucket``) and
``name`` is ``database.schema.table`` or the path. Neither ever holds a secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Direction = Literal["input", "output"]


@dataclass(frozen=True, slots=True)
class DatasetRef:
    """A dataset as OpenLineage names it."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace != "file" else self.name


@dataclass(frozen=True, slots=True)
class ColumnSource:
    """One input column an output column is derived from."""

    dataset: DatasetRef
    column: str
    # OpenLineage transformation: DIRECT (IDENTITY | TRANSFORMATION | AGGREGATION) or INDIRECT (...)
    type: str = "DIRECT"
    subtype: str = "IDENTITY"


@dataclass(slots=True)
class DatasetIO:
    """One read or write of a dataset by a run, with what is known of it."""

    dataset: DatasetRef
    direction: Direction
    rows: int | None = None
    bytes: int | None = None
    # (column name, type name) of what was read or written
    schema: list[tuple[str, str]] | None = None
    # output column -> the input columns it comes from (outputs only)
    column_lineage: dict[str, list[ColumnSource]] | None = None
    # the SQL that read or produced it, when there was one
    sql: str | None = None
    # quality results on this dataset: {"assertion", "column", "success"} per expectation
    assertions: list[dict[str, Any]] | None = None
    # dataQualityMetrics facet content (rowCount, columnMetrics ...) from a profile
    metrics: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # input columns that shape the whole output without flowing into a column (outputs only):
    # INDIRECT sources, subtype JOIN, FILTER, GROUP_BY or SORT (the facet's "dataset" list)
    indirect: list[ColumnSource] | None = None


def schema_of(value: Any) -> list[tuple[str, str]] | None:
    """``(column, type)`` pairs of a pandas/Polars/Arrow frame or schema, or of given pairs."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return [(str(n), str(t)) for n, t in value]
    if isinstance(value, dict):
        return [(str(n), str(t)) for n, t in value.items()]
    arrow_schema = getattr(value, "schema", None)
    if arrow_schema is not None and hasattr(arrow_schema, "names") and hasattr(arrow_schema, "types"):
        return [(n, str(t)) for n, t in zip(arrow_schema.names, arrow_schema.types, strict=True)]
    if hasattr(value, "names") and hasattr(value, "types"):           # a pyarrow.Schema
        return [(n, str(t)) for n, t in zip(value.names, value.types, strict=True)]
    dtypes = getattr(value, "dtypes", None)
    columns = getattr(value, "columns", None)
    if dtypes is not None and columns is not None:                     # pandas, Polars
        return [(str(c), str(t)) for c, t in zip(list(columns), list(dtypes), strict=True)]
    return None
