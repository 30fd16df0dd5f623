"""Lineage: dataset identities, run inputs and outputs, the graph, column lineage, OpenLineage.

Reads and writes through ``headrace.io`` are recorded on the running task without extra code;
``record_input``/``record_output`` (or ``@task(inputs=[...], outputs=[...])``) declare other I/O.
The graph API answers what a dataset is made from and what is made from it.
(The names below are imported when first used: the OpenLineage sender process imports modules of
this package without loading the engine and the store.)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from headrace.errors import DatasetNotFound
    from headrace.lineage.capture import record_sql
    from headrace.lineage.graph import (
        DatasetNode,
        Edge,
        LineageGraph,
        column_lineage,
        downstream,
        find_dataset,
        latest_schema,
        lineage_graph,
        list_datasets,
        runs_that_wrote,
        upstream,
    )
    from headrace.lineage.model import ColumnSource, DatasetIO, DatasetRef
    from headrace.lineage.naming import parse_dataset
    from headrace.lineage.record import merged, record_input, record_output

__all__ = [
    "ColumnSource", "DatasetIO", "DatasetNode", "DatasetNotFound", "DatasetRef", "Edge", "LineageGraph",
    "column_lineage", "downstream", "find_dataset", "latest_schema", "lineage_graph", "list_datasets", "merged",
    "parse_dataset", "record_input", "record_sql", "record_output", "runs_that_wrote", "upstream",
]

_WHERE = {
    "headrace.errors": ("DatasetNotFound",),
    "headrace.lineage.capture": ("record_sql",),
    "headrace.lineage.graph": ("DatasetNode", "Edge", "LineageGraph", "column_lineage", "downstream", "find_dataset",
                               "latest_schema", "lineage_graph", "list_datasets", "runs_that_wrote", "upstream"),
    "headrace.lineage.model": ("ColumnSource", "DatasetIO", "DatasetRef"),
    "headrace.lineage.naming": ("parse_dataset",),
    "headrace.lineage.record": ("merged", "record_input", "record_output"),
}
_HOME = {name: module for module, names in _WHERE.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'headrace.lineage' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
