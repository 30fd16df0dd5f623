"""Quality gates attach their checks and profile to lineage; existing stores gain the lineage column."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from lineage_helpers import io_rows
from sqlalchemy import create_engine, inspect, text

from headrace import flow, task
from headrace.io import read_sql, write_table
from headrace.quality import Suite, expect


def test_a_gate_attaches_assertions_and_metrics_to_the_checked_and_the_loaded_dataset(
        source_db: Path, tmp_path: Path, store: Any) -> None:
    suite = Suite("orders-ok", [expect.column_values_to_not_be_null("order_id"),
                                expect.column_values_to_be_between("amount", min_value=3)], on_failure="quarantine")

    @task
    def extract() -> Any:
        return read_sql("SELECT order_id, amount FROM orders", f"duckdb:///{source_db}")

    @task
    def load(df: Any) -> int:
        return write_table(df, "clean_orders", f"duckdb:///{tmp_path / 'wh.duckdb'}", mode="replace")

    @flow
    def gated() -> int:
        return load(suite.gate(extract()))

    state = gated(return_state=True)
    assert state.is_completed(), state.message and state.result() == 38  # amounts 0 and 1.5 quarantined
    rows = io_rows(store, state.run_id)
    checked = [r for r in rows if r["details"].get("extra", {}).get("quality_suite") == "orders-ok"]
    assert [(r["name"], r["kind"], r["direction"], r["rows"]) for r in checked] == [
        ("src.main.orders", "duckdb", "input", None)]
    assert len({r["dataset_id"] for r in rows if r["name"] == "src.main.orders"}) == 1  # one dataset
    expected = [{"assertion": "expect_column_values_to_not_be_null", "column": "order_id", "success": True},
                {"assertion": "expect_column_values_to_be_between", "column": "amount", "success": False}]
    assert checked[0]["details"]["assertions"] == expected
    metrics = checked[0]["details"]["metrics"]
    assert metrics["rowCount"] == 40 and metrics["columnMetrics"]["amount"]["min"] == 0.0
    assert metrics["columnMetrics"]["order_id"]["nullCount"] == 0
    loaded = next(r for r in rows if r["name"] == "wh.main.clean_orders")
    assert loaded["details"]["assertions"] == expected and loaded["rows"] == 38
    assert loaded["details"]["column_lineage"]["amount"][0]["name"] == "src.main.orders"
    quarantine = next(r for r in rows if r["details"].get("extra", {}).get("quarantine"))
    assert quarantine["uri"] == "file" and quarantine["kind"] == "file" and quarantine["rows"] == 2
    assert quarantine["name"].endswith(".parquet")


def test_a_pandas_transform_records_its_schema_in_and_out(source_db: Path, tmp_path: Path, store: Any) -> None:
    @task
    def extract() -> Any:
        return read_sql("SELECT order_id, amount FROM orders", f"duckdb:///{source_db}")

    @task
    def transform(df: pd.DataFrame) -> pd.DataFrame:
        return df.assign(amount=df.amount.astype(float) * 2, big=df.amount.astype(float) > 10)

    @task
    def load(df: Any) -> int:
        return write_table(df, "doubled", f"duckdb:///{tmp_path / 'wh.duckdb'}", mode="replace")

    @flow
    def transformed() -> int:
        return load(transform(extract()))

    state = transformed(return_state=True)
    assert state.is_completed(), state.message
    loaded = io_rows(store, state.run_id)[-1]["details"]
    (step,) = loaded["extra"]["transforms"]
    assert step["task"] == "transform"
    assert [c for c, _ in step["schema_in"]] == ["order_id", "amount"]
    assert dict(step["schema_out"]) == {"order_id": "int64", "amount": "float64", "big": "bool"}
    # same-named columns keep their source, marked as possibly transformed; new ones have none
    assert {c: [(s["field"], s["subtype"]) for s in v] for c, v in loaded["column_lineage"].items()} == {
        "order_id": [("order_id", "TRANSFORMATION")], "amount": [("amount", "TRANSFORMATION")]}


def test_a_store_from_before_lineage_gains_the_details_column(tmp_path: Path) -> None:
    from headrace.store import RunStore
    from headrace.store.schema import MIGRATIONS, dataset_io

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = RunStore(url, migrate=False)
    engine = create_engine(url)
    with engine.begin() as conn:  # the store as the releases before lineage made it
        from headrace.store.schema import metadata, migrations_table

        metadata.create_all(conn, tables=[migrations_table])
        for mid, step in MIGRATIONS:
            if mid == "0011_lineage_details":
                continue
            step(conn)
            conn.execute(migrations_table.insert().values(id=mid, applied_at=pd.Timestamp.now(tz="UTC")))
        conn.execute(text("ALTER TABLE hr_dataset_io DROP COLUMN details"))
        conn.execute(text("INSERT INTO hr_datasets (kind, uri, name, created_at) VALUES ('duckdb', 'x', 'y', "
                          "'2024-01-01')"))
        conn.execute(text("INSERT INTO hr_dataset_io (dataset_id, direction, rows, at) VALUES (1, 'input', 5, "
                          "'2024-01-01')"))
    old.close()
    assert "details" not in {c["name"] for c in inspect(engine).get_columns("hr_dataset_io")}
    store = RunStore(url)
    try:
        assert "details" in {c["name"] for c in inspect(engine).get_columns("hr_dataset_io")}
        with store.read() as conn:
            kept = conn.execute(dataset_io.select()).mappings().all()
        assert [(r["rows"], r["details"]) for r in kept] == [(5, None)]  # old records are kept as they were
    finally:
        store.close()
        engine.dispose()
