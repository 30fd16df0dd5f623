"""The graph API, the `headrace lineage` command and the dataset page, over real runs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from headrace import flow, task
from headrace.cli import main
from headrace.errors import DatasetNotFound
from headrace.io import read_sql, write_parquet, write_table
from headrace.lineage import column_lineage, downstream, find_dataset, lineage_graph, runs_that_wrote, upstream


@dataclass
class Chain:
    stage_runs: list[str]
    mart_run: str
    report: Path


def build_chain(source: Path, tmp_path: Path, stage_runs: int = 2) -> Chain:
    """orders + customers -(stage flow)-> stage -(mart flow)-> mart -(a task alone)-> report.parquet"""
    src, wh = f"duckdb:///{source}", f"duckdb:///{tmp_path / 'wh.duckdb'}"

    @task
    def stage() -> int:
        df = read_sql("SELECT o.order_id, o.amount, c.region FROM orders o JOIN customers c "
                      "ON c.id = o.customer_id", src)
        return write_table(df, "stage", wh, mode="replace")

    @flow(name="build-stage")
    def stage_flow() -> int:
        return stage()

    @task
    def mart() -> int:
        df = read_sql("SELECT region AS area, SUM(amount) AS revenue FROM stage GROUP BY region", wh)
        return write_table(df, "mart", wh, mode="replace")

    @flow(name="build-mart")
    def mart_flow() -> int:
        return mart()

    @task
    def report() -> int:
        return write_parquet(read_sql("SELECT * FROM mart", wh), str(tmp_path / "report.parquet"))

    ids = [str(stage_flow(return_state=True).run_id) for _ in range(stage_runs)]
    mart_run = str(mart_flow(return_state=True).run_id)
    report()  # a task called outside any flow is a run of its own
    from headrace.store import get_store

    get_store().writer.flush()
    return Chain(ids, mart_run, tmp_path / "report.parquet")


@pytest.fixture
def chain(store: Any, source_db: Path, tmp_path: Path) -> Chain:
    """On each store backend (the `store` fixture points HEADRACE_STORE at it)."""
    return build_chain(source_db, tmp_path)


def test_upstream_and_downstream_with_depth(chain: Chain) -> None:
    report = str(chain.report)
    one = upstream(report, depth=1)
    assert [n.ref.name for n in one.upstream_of(one.focus.id)] == ["wh.main.mart"]
    three = upstream(report, depth=3)
    levels = {n.ref.name: n.level for n in three.nodes.values()}
    assert levels == {report: 0, "wh.main.mart": -1, "wh.main.stage": -2, "src.main.orders": -3,
                      "src.main.customers": -3}
    stage_to_mart = three.edge(find_dataset("stage").id, find_dataset("mart").id)
    assert stage_to_mart is not None and stage_to_mart.jobs == ["build-mart"] and stage_to_mart.runs == 1
    down = downstream("src.main.orders", depth=2)
    assert {n.ref.name for n in down.nodes.values()} == {"src.main.orders", "wh.main.stage", "wh.main.mart"}
    both = lineage_graph("mart", depth=1)
    assert {n.ref.name: n.level for n in both.nodes.values()} == {"wh.main.mart": 0, "wh.main.stage": -1,
                                                                  report: 1}


def test_runs_that_wrote_and_column_lineage(chain: Chain) -> None:
    runs = runs_that_wrote("stage")
    assert [r["flow_run_id"] for r in runs] == chain.stage_runs[::-1]  # newest first
    assert {(r["flow_name"], r["task_key"], r["rows"]) for r in runs} == {("build-stage", "stage-0", 40)}
    cols = column_lineage("mart")
    assert {c: [(s.dataset.name, s.column, s.subtype) for s in v] for c, v in cols.items()} == {
        "area": [("wh.main.stage", "region", "IDENTITY")], "revenue": [("wh.main.stage", "amount", "AGGREGATION")]}


def test_names_that_match_nothing_or_several_are_clear_errors(chain: Chain, source_db: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFound, match="no recorded dataset matches nope; list them with"):
        find_dataset("nope")
    other = tmp_path / "other"
    other.mkdir()
    import shutil

    shutil.copy(source_db, other / "src.duckdb")
    build_chain(other / "src.duckdb", other, stage_runs=1)
    with pytest.raises(DatasetNotFound, match="stage matches 2 datasets"):
        find_dataset("stage")
    assert find_dataset(f"duckdb://{other / 'wh.duckdb'}/wh.main.stage").ref.namespace == f"duckdb://{other}/wh.duckdb"


def test_the_lineage_command(chain: Chain, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lineage", "show", "mart", "--upstream", "--depth", "2"]) == 0
    out = capsys.readouterr().out
    assert "upstream" in out and "downstream" not in out
    assert out.index("wh.main.mart") < out.index("wh.main.stage") < out.index("src.main.orders")
    assert "via build-mart (1 run)" in out and "revenue <- wh.main.stage.amount (aggregation)" in out
    assert main(["lineage", "show", "stage", "--downstream", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "wh.main.mart" in out and "report.parquet" not in out and "src.main.orders" not in out
    assert main(["lineage", "runs", "stage"]) == 0
    out = capsys.readouterr().out
    assert all(run[:8] in out for run in chain.stage_runs) and "build-stage" in out
    assert main(["lineage", "datasets", "--search", "wh.main"]) == 0
    out = capsys.readouterr().out
    assert "wh.main.stage" in out and "wh.main.mart" in out and "src.main" not in out and "2 datasets" in out
    assert main(["lineage", "show", "nope"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no recorded dataset matches nope" in err


@pytest.fixture
def page(chain: Chain) -> Iterator[httpx.Client]:
    from headrace.store import get_store
    from headrace.ui import UIServer, UISettings

    srv = UIServer(UISettings(port=0, store_url=get_store().url)).start()
    try:
        with httpx.Client(base_url=srv.url, timeout=20) as client:
            yield client
    finally:
        srv.stop()


def test_the_dataset_page_draws_the_graph_and_column_lineage(chain: Chain, page: httpx.Client) -> None:
    mart = find_dataset("mart").id
    body: dict[str, Any] = page.get(f"/api/datasets/{mart}", params={"depth": 2}).json()
    graph = body["graph"]
    assert {n["name"] for n in graph["nodes"]} == {"wh.main.mart", "wh.main.stage", "src.main.orders",
                                                    "src.main.customers", str(chain.report)}
    wh = next(n["uri"] for n in graph["nodes"] if n["name"] == "wh.main.mart")
    assert graph["column_lineage"]["revenue"] == [{"namespace": wh, "name": "wh.main.stage",
                                                   "field": "amount", "type": "DIRECT", "subtype": "AGGREGATION"}]
    assert [c for c, _ in graph["schema"]] == ["area", "revenue"]
    html = page.get(f"/datasets/{mart}").text
    assert "<h2>Columns</h2>" in html and "wh.main.stage.amount" in html and "aggregation" in html
