"""Lineage: dataset identities, run inputs and outputs, the graph, column lineage, OpenLineage.

Reads and writes through ``headrace.io`` are recorded on the running task without extra code;
``record_input``/``record_output`` (or ``@task(inputs=[...], outputs=[...])``) declare other I/O.
"""

from headrace.lineage.model import ColumnSource, DatasetIO, DatasetRef
from headrace.lineage.naming import parse_dataset
from headrace.lineage.record import merged, record_input, record_output

__all__ = ["ColumnSource", "DatasetIO", "DatasetRef", "merged", "parse_dataset", "record_input", "record_output"]
