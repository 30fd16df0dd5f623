"""The lineage graph: which datasets feed which, through the runs that read and wrote them.

An edge A -> B means a run (a flow run, or a task run outside a flow) read A and wrote B::

    from headrace.lineage import lineage_graph, runs_that_wrote
    g = lineage_graph("dwh.main.fact_sales", downstream=False, depth=3)
    for node in g.upstream_of(g.focus.id): print(node.ref)
    runs_that_wrote("dwh.main.fact_sales")
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from headrace.errors import DatasetNotFound
from headrace.lineage.model import ColumnSource, DatasetRef
from headrace.lineage.naming import parse_dataset
from headrace.store import views_lineage

MAX_DEPTH = 10
MAX_NODES = 300


@dataclass(frozen=True)
class DatasetNode:
    """A dataset in the graph; ``level`` counts hops: negative upstream, positive downstream."""

    id: int
    ref: DatasetRef
    kind: str
    level: int = 0


@dataclass
class Edge:
    """``source`` was read and ``target`` written by ``runs`` runs (the latest ``last_run``)."""

    source: int
    target: int
    runs: int
    last_run: str
    last_at: Any = None
    jobs: list[str] = field(default_factory=list)   # flow names (or task names outside flows)


@dataclass
class LineageGraph:
    """Nodes by id, edges, the dataset asked about, and ``truncated`` when ``max_nodes`` cut it."""

    focus: DatasetNode
    nodes: dict[int, DatasetNode]
    edges: list[Edge]
    depth: int
    truncated: bool = False

    def upstream_of(self, node_id: int) -> list[DatasetNode]:
        """The datasets one hop up (read by runs that wrote ``node_id``)."""
        return [self.nodes[e.source] for e in self.edges if e.target == node_id and e.source in self.nodes]

    def downstream_of(self, node_id: int) -> list[DatasetNode]:
        """The datasets one hop down (written by runs that read ``node_id``)."""
        return [self.nodes[e.target] for e in self.edges if e.source == node_id and e.target in self.nodes]

    def edge(self, source: int, target: int) -> Edge | None:
        return next((e for e in self.edges if e.source == source and e.target == target), None)

    def to_dict(self) -> dict[str, Any]:
        return {"focus": self.focus.id, "depth": self.depth, "truncated": self.truncated,
                "nodes": [{"id": n.id, "namespace": n.ref.namespace, "name": n.ref.name, "kind": n.kind,
                           "level": n.level} for n in self.nodes.values()],
                "edges": [{"source": e.source, "target": e.target, "runs": e.runs, "last_run": e.last_run,
                           "jobs": e.jobs} for e in self.edges]}


def _store(store: Any) -> Any:
    if store is not None:
        return store
    from headrace.store import get_store

    return get_store()


def _node(row: dict[str, Any], level: int = 0) -> DatasetNode:
    return DatasetNode(int(row["id"]), DatasetRef(row["uri"], row["name"]), row["kind"], level)


def find_dataset(dataset: Any, store: Any = None) -> DatasetNode:
    """The recorded dataset named by an id, a ``DatasetRef``, ``namespace/name``, or a name (or its
    last parts: ``fact_sales`` finds ``dwh.main.fact_sales``). Several matches are an error."""
    store = _store(store)
    if isinstance(dataset, DatasetNode):
        return dataset
    rows: list[dict[str, Any]] = []
    if isinstance(dataset, int) or (isinstance(dataset, str) and dataset.isdigit()):
        rows = views_lineage.find_datasets(store, dataset_id=int(dataset))
    elif isinstance(dataset, DatasetRef) or (isinstance(dataset, str) and "://" in dataset):
        ref = parse_dataset(dataset)
        rows = views_lineage.find_datasets(store, namespace=ref.namespace, name=ref.name)
        if not rows and isinstance(dataset, str):
            rows = views_lineage.find_datasets(store, name_suffix=dataset)
    elif isinstance(dataset, str) and dataset.strip():
        text = dataset.strip()
        rows = views_lineage.find_datasets(store, name=text) or views_lineage.find_datasets(store, name_suffix=text)
        if not rows and text.startswith(("/", ".")):
            ref = parse_dataset(text)
            rows = views_lineage.find_datasets(store, namespace=ref.namespace, name=ref.name)
    if not rows:
        raise DatasetNotFound(f"no recorded dataset matches {dataset!s}; list them with "
                              "`headrace lineage datasets`")
    if len(rows) > 1:
        names = ", ".join(f"{r['uri']}/{r['name']}" for r in rows[:5])
        raise DatasetNotFound(f"{dataset!s} matches {len(rows)} datasets ({names}); "
                              "name it as namespace/name")
    return _node(rows[0])


def lineage_graph(dataset: Any, *, upstream: bool = True, downstream: bool = True, depth: int = 3,
                  store: Any = None, max_nodes: int = MAX_NODES) -> LineageGraph:
    """The datasets up to ``depth`` hops above and/or below ``dataset``."""
    store = _store(store)
    focus = find_dataset(dataset, store)
    depth = max(1, min(int(depth), MAX_DEPTH))
    levels: dict[int, int] = {focus.id: 0}
    edges: dict[tuple[int, int], Edge] = {}
    truncated = False
    for up in (True, False):
        if (up and not upstream) or (not up and not downstream):
            continue
        frontier = [focus.id]
        for hop in range(1, depth + 1):
            found = views_lineage.lineage_links(store, frontier, upstream=up)
            frontier = []
            for link in found:
                other = link["source"] if up else link["target"]
                if other not in levels:
                    if len(levels) >= max_nodes:
                        truncated = True
                        continue
                    levels[other] = -hop if up else hop
                    frontier.append(other)
                edges.setdefault((link["source"], link["target"]), Edge(**link))
            if not frontier:
                break
    rows = views_lineage.find_datasets_by_ids(store, list(levels))
    nodes = {int(r["id"]): _node(r, levels[int(r["id"])]) for r in rows}
    kept = [e for (s, t), e in edges.items() if s in nodes and t in nodes]
    return LineageGraph(nodes[focus.id], nodes, kept, depth, truncated)


def upstream(dataset: Any, depth: int = 3, store: Any = None) -> LineageGraph:
    """What ``dataset`` is made from, up to ``depth`` hops."""
    return lineage_graph(dataset, upstream=True, downstream=False, depth=depth, store=store)


def downstream(dataset: Any, depth: int = 3, store: Any = None) -> LineageGraph:
    """What is made from ``dataset``, up to ``depth`` hops."""
    return lineage_graph(dataset, upstream=False, downstream=True, depth=depth, store=store)


def runs_that_wrote(dataset: Any, limit: int = 50, store: Any = None) -> list[dict[str, Any]]:
    """The latest writes of ``dataset``, newest first: flow run, task run, rows, bytes, time."""
    store = _store(store)
    node = find_dataset(dataset, store)
    rows = views_lineage.dataset_runs(store, node.id, direction="output", limit=limit)
    for r in rows:
        r.pop("details", None)
    return rows


def column_lineage(dataset: Any, store: Any = None) -> dict[str, list[ColumnSource]]:
    """Where each column of ``dataset`` comes from, as its latest write with column lineage says."""
    store = _store(store)
    node = find_dataset(dataset, store)
    details = views_lineage.latest_output_details(store, node.id)
    if not details:
        return {}
    lineage = json.loads(details).get("column_lineage") or {}
    return {col: [ColumnSource(DatasetRef(s["namespace"], s["name"]), s["field"], s.get("type", "DIRECT"),
                               s.get("subtype", "IDENTITY")) for s in sources]
            for col, sources in lineage.items()}


def latest_schema(dataset: Any, store: Any = None) -> list[tuple[str, str]]:
    """The columns and types of the latest write of ``dataset`` that recorded them."""
    store = _store(store)
    details = views_lineage.latest_output_details(store, find_dataset(dataset, store).id)
    schema = json.loads(details).get("schema") if details else None
    return [(n, t) for n, t in schema] if schema else []


def list_datasets(search: str | None = None, limit: int = 200, store: Any = None) -> list[dict[str, Any]]:
    """Recorded datasets by name, with when each was last written and read."""
    from headrace.store.views_data import datasets_page

    rows, _ = datasets_page(_store(store), limit=limit, search=search)
    return rows
