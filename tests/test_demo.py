"""The demo's sales ETL on a small generated source: what lands in the warehouse, run after run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import pytest

from headrace.cli import main
from headrace.store import get_store

DEMO_FILE = Path(__file__).resolve().parents[1] / "demo" / "sales_etl.py"
ROWS = 20_000
FEB = {"start_date": "2024-02-01", "end_date": "2024-02-29"}


@pytest.fixture(scope="module")
def demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("headrace_demo_sales_etl", DEMO_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def paths(tmp_path: Path, demo: ModuleType) -> dict[str, str]:
    source = tmp_path / "source.duckdb"
    assert demo.generate_source(source, ROWS) is True
    return {"source": str(source), "warehouse": str(tmp_path / "warehouse.duckdb")}


def _run(demo: ModuleType, paths: dict[str, str], start: str, end: str) -> Any:
    from datetime import date

    return demo.sales_etl(start_date=date.fromisoformat(start), end_date=date.fromisoformat(end),
                          source_rows=ROWS, return_state=True, **paths)


def _source_counts(source: str, start: str, end: str) -> dict[str, int]:
    """Counted straight from the source, independently of the demo's pandas code."""
    with duckdb.connect(source, read_only=True) as con:
        row = con.execute("""
            SELECT count(*),
                   count(DISTINCT order_id) FILTER (WHERE customer_id IS NOT NULL
                                                   AND quantity * unit_price > 0
                                                   AND region IN ('North', 'South', 'East',
                                                                  'West', 'Central')),
                   count(*) FILTER (WHERE customer_id IS NULL),
                   count(*) FILTER (WHERE quantity <= 0 OR unit_price <= 0),
                   count(*) - count(DISTINCT order_id),
                   count(*) FILTER (WHERE region NOT IN ('North', 'South', 'East', 'West', 'Central'))
            FROM sales WHERE order_date BETWEEN $s AND $e""", {"s": start, "e": end}).fetchone()
    assert row is not None
    keys = ("in_range", "clean", "no_customer", "not_positive", "duplicates", "unknown_region")
    return dict(zip(keys, map(int, row), strict=True))


def _warehouse(warehouse: str, sql: str) -> Any:
    with duckdb.connect(warehouse, read_only=True) as con:
        return con.execute(sql).fetchall()


def test_source_is_a_dirty_sales_history(demo: ModuleType, paths: dict[str, str]) -> None:
    counts = _source_counts(paths["source"], "2024-01-01", "2024-06-30")
    assert counts["in_range"] == ROWS + ROWS // 1000  # every order, plus the duplicated ones
    assert all(counts[k] > 0 for k in ("no_customer", "not_positive", "duplicates", "unknown_region"))
    assert demo.generate_source(paths["source"], ROWS) is False  # cached
    Path(paths["source"]).unlink()
    assert demo.generate_source(paths["source"], ROWS) is True  # regenerated when missing


def test_loads_the_clean_rows_of_the_range_once_however_often_it_runs(
        demo: ModuleType, paths: dict[str, str]) -> None:
    expected = _source_counts(paths["source"], FEB["start_date"], FEB["end_date"])
    first = _run(demo, paths, FEB["start_date"], FEB["end_date"])
    second = _run(demo, paths, FEB["start_date"], FEB["end_date"])
    assert first.is_completed() and second.is_completed()
    assert first.result() == second.result() == expected["clean"]
    rows, distinct, start, end = _warehouse(
        paths["warehouse"], "SELECT count(*), count(DISTINCT order_id), min(order_date), "
                            "max(order_date) FROM fact_sales")[0]
    assert rows == distinct == expected["clean"]
    assert "2024-02-01" <= str(start) <= str(end) <= "2024-02-29"

    runs = get_store().list_flow_runs(flow="Sales ETL Pipeline")
    assert [r["rows_loaded"] for r in runs] == [expected["clean"]] * 2
    tasks = {t["task_name"]: t["state_name"] for t in get_store().list_task_runs(runs[0]["id"])}
    assert tasks == {"prepare_source": "Completed", "extract_sales": "Cached",
                     "transform": "Completed", "quality-gate:sales": "Completed",
                     "load": "Completed"}
    metrics = {m["name"]: m["value"] for m in get_store().get_metrics(runs[0]["id"])}
    assert metrics["rows_extracted"] == expected["in_range"]
    # Unknown regions pass the transform and are quarantined by the quality gate.
    quarantined = metrics["quality.sales.rows_quarantined"]
    assert quarantined > 0
    assert metrics["rows_extracted"] - metrics["rows_dropped"] - quarantined == metrics["rows_loaded"]


def test_revenue_and_iso_week_match_the_source(demo: ModuleType, paths: dict[str, str]) -> None:
    assert _run(demo, paths, FEB["start_date"], FEB["end_date"]).is_completed()
    bad = _warehouse(paths["warehouse"], f"""
        ATTACH '{paths["source"]}' AS src (READ_ONLY);
        SELECT count(*) FROM fact_sales f
        JOIN (SELECT DISTINCT * FROM src.sales) s USING (order_id)
        WHERE abs(f.revenue - CAST(s.quantity * s.unit_price AS DOUBLE)) > 0.005
           OR f.revenue <= 0 OR f.iso_week <> week(s.order_date)
           OR f.iso_year <> isoyear(s.order_date) OR f.customer_id <> s.customer_id""")
    assert bad == [(0,)]
    total = _warehouse(paths["warehouse"], "SELECT count(*) FROM fact_sales")[0][0]
    assert total == _source_counts(paths["source"], "2024-02-01", "2024-02-29")["clean"]


def test_another_range_leaves_the_first_in_place(demo: ModuleType, paths: dict[str, str],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    feb = _source_counts(paths["source"], "2024-02-01", "2024-02-29")["clean"]
    mar = _source_counts(paths["source"], "2024-03-01", "2024-03-31")["clean"]
    assert _run(demo, paths, "2024-02-01", "2024-02-29").is_completed()
    assert _run(demo, paths, "2024-03-01", "2024-03-31").is_completed()
    assert _warehouse(paths["warehouse"], "SELECT count(*) FROM fact_sales") == [(feb + mar,)]
    out = capsys.readouterr().out
    assert f"rows loaded      {mar:,}" in out and f"fact_sales holds {feb + mar:,} rows" in out


def test_runs_from_the_cli(paths: dict[str, str]) -> None:
    args = [f"{k}={v}" for k, v in {**FEB, **paths, "source_rows": ROWS}.items()]
    assert main(["run", f"{DEMO_FILE}:sales_etl", *(a for arg in args for a in ("-p", arg))]) == 0
    run = get_store().list_flow_runs(limit=1)[0]
    assert run["state_name"] == "Completed" and run["rows_loaded"] > 0


def test_a_backwards_range_fails_with_a_clear_message(demo: ModuleType,
                                                      paths: dict[str, str]) -> None:
    state = demo.sales_etl.with_options(retries=0)(
        start_date="2024-03-01", end_date="2024-02-01", source_rows=ROWS, return_state=True,
        **paths)
    assert state.is_failed()
    assert "end_date 2024-02-01 is before start_date 2024-03-01" in state.message


def test_prints_the_lineage_of_the_warehouse_table(demo: ModuleType, paths: dict[str, str],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(demo, paths, FEB["start_date"], FEB["end_date"]).is_completed()
    capsys.readouterr()
    demo.print_lineage(paths["warehouse"])
    out = capsys.readouterr().out
    assert "headrace lineage show duckdb://" in out and "warehouse.main.fact_sales" in out
    assert "source.main.sales" in out and "via Sales ETL Pipeline" in out
    # column lineage through the pandas transform and the gate, by column name
    assert "customer_id <- source.main.sales.customer_id" in out
