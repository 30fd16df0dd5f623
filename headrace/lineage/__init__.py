"""Lineage: dataset identities, run inputs and outputs, the graph, column lineage, OpenLineage."""

from headrace.lineage.model import ColumnSource, DatasetIO, DatasetRef

__all__ = ["ColumnSource", "DatasetIO", "DatasetRef"]
