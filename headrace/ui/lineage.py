"""The lineage graph around a dataset, from the lineage part's graph API.

``dataset_graph`` is the one place the page asks for lineage: an edge A -> B means a run
read A and wrote B; ``column_lineage`` maps each column of the dataset's latest write to the
input columns it comes from, and ``schema`` lists its columns.
"""

from __future__ import annotations

from typing import Any

from headrace.errors import DatasetNotFound
from headrace.lineage import column_lineage, latest_schema, lineage_graph

MAX_DEPTH = 5
MAX_NODES = 300


def dataset_graph(store: Any, dataset_id: int, depth: int = 1, max_nodes: int = MAX_NODES) -> dict[str, Any]:
    """Nodes and edges up to ``depth`` hops up and down from the dataset; ``truncated`` when capped."""
    depth = max(1, min(depth, MAX_DEPTH))
    try:
        graph = lineage_graph(dataset_id, depth=depth, store=store, max_nodes=max_nodes)
    except DatasetNotFound:
        return {"nodes": [], "edges": [], "depth": depth, "truncated": False, "column_lineage": None, "schema": []}
    nodes = [{"id": n.id, "name": n.ref.name, "kind": n.kind, "uri": n.ref.namespace, "level": n.level,
              "focus": n.id == dataset_id} for n in graph.nodes.values()]
    edges = [{"source": e.source, "target": e.target, "runs": e.runs, "last_run": e.last_run,
              "last_at": e.last_at, "jobs": e.jobs} for e in graph.edges]
    columns = column_lineage(dataset_id, store=store)
    return {"nodes": nodes, "edges": edges, "depth": depth, "truncated": graph.truncated,
            "column_lineage": {col: [{"namespace": s.dataset.namespace, "name": s.dataset.name, "field": s.column,
                                      "type": s.type, "subtype": s.subtype} for s in sources]
                               for col, sources in columns.items()} or None,
            "schema": [list(p) for p in latest_schema(dataset_id, store=store)]}
