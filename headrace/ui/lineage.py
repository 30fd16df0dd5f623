"""The lineage graph around a dataset, from the runs that read and wrote datasets.

``dataset_graph`` is the one place the page asks for lineage: an edge A -> B
means a flow run read A and wrote B. When the lineage part's graph API lands it
replaces the body of this function; the pages keep calling it.
"""

from __future__ import annotations

from typing import Any

from headrace.store.views_data import dataset_links, datasets_by_ids

MAX_DEPTH = 5
MAX_NODES = 300


def dataset_graph(store: Any, dataset_id: int, depth: int = 1, max_nodes: int = MAX_NODES) -> dict[str, Any]:
    """Nodes and edges up to ``depth`` hops up and down from the dataset; ``truncated`` when capped."""
    depth = max(1, min(depth, MAX_DEPTH))
    levels: dict[int, int] = {dataset_id: 0}
    edges: dict[tuple[int, int], dict[str, Any]] = {}
    truncated = False
    for upstream in (True, False):
        frontier = [dataset_id]
        for hop in range(1, depth + 1):
            found = dataset_links(store, frontier, upstream=upstream)
            frontier = []
            for edge in found:
                other = edge["source"] if upstream else edge["target"]
                if other not in levels:
                    if len(levels) >= max_nodes:
                        truncated = True
                        continue
                    levels[other] = -hop if upstream else hop
                    frontier.append(other)
                edges.setdefault((edge["source"], edge["target"]), edge)
            if not frontier:
                break
    nodes = []
    for row in datasets_by_ids(store, list(levels)):
        nodes.append({"id": row["id"], "name": row["name"], "kind": row["kind"], "uri": row["uri"],
                      "level": levels[row["id"]], "focus": row["id"] == dataset_id})
    return {"nodes": nodes, "edges": [e for (s, t), e in edges.items() if s in levels and t in levels],
            "depth": depth, "truncated": truncated, "column_lineage": None}
