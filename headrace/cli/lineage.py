"""``headrace lineage show|runs|datasets``: the lineage graph in the terminal."""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from headrace.cli.output import console, fmt_time


@click.group("lineage")
def lineage() -> None:
    """Where datasets come from and what is made from them."""


def _label(node: Any, focus: bool = False) -> str:
    """The dataset's name first (what people look for), its namespace after it, dimmed."""
    name = escape(node.ref.name)
    if focus:
        name = f"[bold]{name}[/bold]"
    return name if node.ref.namespace == "file" else f"{name} [dim]{escape(node.ref.namespace)}[/dim]"


def render_tree(graph: Any, *, up: bool, columns: dict[str, list[Any]] | None = None) -> Tree:
    """The graph around its focus as a tree: each level lists the datasets one hop further and
    the jobs (flows) that linked them; a dataset already shown is marked instead of repeated."""
    root = Tree(_label(graph.focus, focus=True))
    shown = {graph.focus.id}

    def grow(branch: Tree, node_id: int, hops: int) -> None:
        if hops > graph.depth:
            return
        nexts = graph.upstream_of(node_id) if up else graph.downstream_of(node_id)
        for other in sorted(nexts, key=lambda n: str(n.ref)):
            edge = graph.edge(other.id, node_id) if up else graph.edge(node_id, other.id)
            via = f" [dim]via {escape(', '.join(edge.jobs))} ({edge.runs} run{'s' if edge.runs != 1 else ''})[/dim]" \
                if edge is not None and edge.jobs else ""
            if other.id in shown:
                branch.add(f"{_label(other)}{via} [dim](shown above)[/dim]")
                continue
            shown.add(other.id)
            grow(branch.add(f"{_label(other)}{via}"), other.id, hops + 1)

    grow(root, graph.focus.id, 1)
    if columns:
        cols = root.add("[italic]columns[/italic]")
        for column, sources in columns.items():
            parts = ", ".join(f"{escape(s.dataset.name)}.{escape(s.column)} ({s.subtype.lower()})" for s in sources)
            cols.add(f"{escape(column)} <- {parts}")
    return root


@lineage.command("show")
@click.argument("dataset")
@click.option("--upstream", "up", is_flag=True, help="Only what DATASET is made from.")
@click.option("--downstream", "down", is_flag=True, help="Only what is made from DATASET.")
@click.option("--depth", default=3, show_default=True, type=click.IntRange(1, 10), help="Hops to follow.")
@click.option("--columns/--no-columns", default=True, show_default=True, help="Show column lineage.")
def show_cmd(dataset: str, up: bool, down: bool, depth: int, columns: bool) -> None:
    """Print the lineage of DATASET (a name such as fact_sales, namespace/name, or an id) as a tree."""
    from headrace.lineage import column_lineage, lineage_graph

    both = up == down
    graph = lineage_graph(dataset, upstream=up or both, downstream=down or both, depth=depth)
    if up or both:
        console.print("[bold]upstream[/bold] (what it is made from)")
        console.print(render_tree(graph, up=True, columns=column_lineage(graph.focus.id) if columns else None))
    if down or both:
        console.print("[bold]downstream[/bold] (what is made from it)")
        console.print(render_tree(graph, up=False))
    if graph.truncated:
        console.print(f"[yellow]the graph was cut at {len(graph.nodes)} datasets[/yellow]")


@lineage.command("runs")
@click.argument("dataset")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
def runs_cmd(dataset: str, limit: int) -> None:
    """List the runs that wrote DATASET, newest first."""
    from headrace.lineage import find_dataset, runs_that_wrote

    node = find_dataset(dataset)
    rows = runs_that_wrote(node.id, limit=limit)
    table = Table("written at", "flow", "flow run", "task", "state", "rows", "bytes",
                  title=f"Runs that wrote {escape(str(node.ref))}")
    for r in rows:
        table.add_row(fmt_time(r["at"]), escape(r["flow_name"] or "-"), r["flow_run_id"] or "-",
                      escape(r["task_key"] or r["task_name"] or "-"), escape(r["task_state"] or r["flow_state"] or "-"),
                      "-" if r["rows"] is None else f"{r['rows']:,}", "-" if r["bytes"] is None else f"{r['bytes']:,}")
    console.print(table)
    if not rows:
        console.print("no run wrote it (it was only read)")


@lineage.command("datasets")
@click.option("--search", default=None, help="Only datasets whose name or namespace contains this.")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 5000))
def datasets_cmd(search: str | None, limit: int) -> None:
    """List the datasets runs have read and written."""
    from headrace.lineage import list_datasets

    rows = list_datasets(search=search, limit=limit)
    table = Table("id", "namespace", "name", "kind", "last written", "last read")
    for r in rows:
        table.add_row(str(r["id"]), escape(r["uri"]), escape(r["name"]), r["kind"],
                      fmt_time(r.get("last_written")), fmt_time(r.get("last_read")))
    console.print(table)
    console.print(f"{len(rows)} dataset{'s' if len(rows) != 1 else ''}")


def register(cli: click.Group) -> None:
    cli.add_command(lineage)
