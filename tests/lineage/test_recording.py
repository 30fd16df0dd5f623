"""headrace.io records what it reads and writes: datasets by name, schema, SQL, column lineage,
on the run's lineage list (what the OpenLineage events are built from) and in the store."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from lineage_helpers import io_rows

from headrace import flow, task
from headrace.engine import current_task_run
from headrace.io import read_files, read_sql, write_parquet, write_table
from headrace.lineage import DatasetIO, DatasetRef

REVENUE_SQL = ("SELECT c.region, SUM(o.amount) AS revenue, c.name AS customer "
               "FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.order_id < :n "
               "GROUP BY c.region, c.name")


def _etl(source: Path, warehouse: Path, seen: dict[str, list[DatasetIO]]) -> Any:
    @task
    def extract(n: int) -> Any:
        df = read_sql(REVENUE_SQL, f"duckdb:///{source}", {"n": n})
        seen["extract"] = list(current_task_run().lineage)  # type: ignore[union-attr]
        return df

    @task
    def load(df: Any) -> int:
        rows = write_table(df, "revenue", f"duckdb:///{warehouse}", mode="replace")
        seen["load"] = list(current_task_run().lineage)  # type: ignore[union-attr]
        return rows

    @flow
    def etl(n: int = 30) -> int:
        return load(extract(n))

    return etl


def test_read_sql_names_the_tables_it_reads_and_write_table_gets_column_lineage(
        source_db: Path, tmp_path: Path, store: Any) -> None:
    seen: dict[str, list[DatasetIO]] = {}
    state = _etl(source_db, tmp_path / "wh.duckdb", seen)(return_state=True)
    assert state.is_completed(), state.message
    src_ns, wh_ns = f"duckdb://{source_db}", f"duckdb://{tmp_path / 'wh.duckdb'}"
    orders, customers = DatasetRef(src_ns, "src.main.orders"), DatasetRef(src_ns, "src.main.customers")
    revenue = DatasetRef(wh_ns, "wh.main.revenue")

    inputs = seen["extract"]
    assert [(i.dataset, i.direction) for i in inputs] == [(orders, "input"), (customers, "input")]
    assert inputs[0].rows == 5 and inputs[1].rows is None  # a query's rows are counted once
    assert inputs[0].sql == REVENUE_SQL

    (out,) = seen["load"]
    assert (out.dataset, out.direction, out.rows) == (revenue, "output", 5)
    assert [c for c, _ in out.schema or []] == ["region", "revenue", "customer"]
    cols = {c: {(s.dataset, s.column, s.subtype) for s in src} for c, src in (out.column_lineage or {}).items()}
    assert cols == {"region": {(customers, "region", "IDENTITY")},
                    "revenue": {(orders, "amount", "AGGREGATION")},
                    "customer": {(customers, "name", "IDENTITY")}}

    assert {(s.dataset, s.column, s.subtype) for s in out.indirect or []} == {
        (customers, "id", "JOIN"), (orders, "customer_id", "JOIN"), (orders, "order_id", "FILTER"),
        (customers, "region", "GROUP_BY"), (customers, "name", "GROUP_BY")}

    stored = io_rows(store, state.run_id)
    assert [(r["uri"], r["name"], r["direction"]) for r in stored] == [
        (src_ns, "src.main.orders", "input"), (src_ns, "src.main.customers", "input"),
        (wh_ns, "wh.main.revenue", "output")]
    written = stored[-1]["details"]
    assert written["column_lineage"]["revenue"] == [{"namespace": src_ns, "name": "src.main.orders", "field": "amount",
                                                     "type": "DIRECT", "subtype": "AGGREGATION"}]
    assert written["schema"][1][0] == "revenue" and written["extra"]["attempt"] == 1
    assert {"namespace": src_ns, "name": "src.main.customers", "field": "id", "type": "INDIRECT",
            "subtype": "JOIN"} in written["indirect"]


def test_files_are_named_by_path_and_folder(tmp_path: Path, store: Any) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    for day in (1, 2):
        body = "order_id,amount\n1,2.5\n2,4.0\n" if day == 2 else "order_id,amount\n3,1.0\n"
        (raw / f"orders-{day}.csv").write_text(body)
    seen: dict[str, Any] = {}

    @task
    def convert() -> int:
        res = read_files(f"{raw}/orders-*.csv")
        n = write_parquet(res.data, str(tmp_path / "out" / "orders.parquet"))
        seen["lineage"] = list(current_task_run().lineage)  # type: ignore[union-attr]
        return n

    @flow
    def files() -> int:
        return convert()

    state = files(return_state=True)
    assert state.is_completed(), state.message
    read, written = seen["lineage"][0], seen["lineage"][-1]
    assert read.dataset == DatasetRef("file", str(raw)) and read.rows == 3
    assert written.dataset == DatasetRef("file", str(tmp_path / "out" / "orders.parquet"))
    assert dict(written.schema or [])["order_id"] == "int64"
    assert {c: [s.dataset for s in v] for c, v in (written.column_lineage or {}).items()} == {
        "order_id": [read.dataset], "amount": [read.dataset]}
    assert pq.read_table(tmp_path / "out" / "orders.parquet").num_rows == written.rows
    names = {(r["uri"], r["name"], r["direction"]) for r in io_rows(store, state.run_id)}
    assert ("file", str(raw), "input") in names
    assert ("file", str(tmp_path / "out" / "orders.parquet"), "output") in names


def test_sql_sqlglot_cannot_parse_still_records_its_tables_and_never_fails(
        source_db: Path, tmp_path: Path, store: Any, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    import sqlglot

    def refuse(*_a: Any, **_k: Any) -> Any:
        raise sqlglot.errors.ParseError("injected: sqlglot cannot read this dialect")

    monkeypatch.setattr(sqlglot, "parse_one", refuse)
    seen: dict[str, list[DatasetIO]] = {}
    with caplog.at_level(logging.DEBUG, logger="headrace.lineage"):
        state = _etl(source_db, tmp_path / "wh.duckdb", seen)(return_state=True)
    assert state.is_completed(), state.message
    assert [i.dataset.name for i in seen["extract"]] == ["src.main.orders", "src.main.customers"]
    assert seen["load"][0].column_lineage is None and seen["load"][0].rows == 5
    assert any("cannot parse SQL" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)


def test_outside_a_run_nothing_is_recorded(source_db: Path, store: Any) -> None:
    df = read_sql("SELECT * FROM orders", f"duckdb:///{source_db}")
    assert len(df) == 40
    store.writer.flush()
    with store.read() as conn:
        from sqlalchemy import func, select

        from headrace.store.schema import dataset_io
        assert conn.execute(select(func.count()).select_from(dataset_io)).scalar() == 0


@pytest.mark.postgres
def test_postgres_datasets_never_hold_the_password(pg_libpq_url: str, pg_schema: str,
                                                   headrace_home: Path) -> None:
    from headrace.store import get_store

    store = get_store()  # the embedded store: its file is searched for the password below
    secret = "Hunter2-lineage-s3cret"
    url = pg_libpq_url.replace("postgres@", f"postgres:{secret}@")
    seen: dict[str, list[DatasetIO]] = {}

    @task
    def roundtrip() -> int:
        import pandas as pd

        write_table(pd.DataFrame({"id": [1, 2, 3], "v": [1.0, 2.0, 3.0]}), "facts", url)
        df = read_sql(f"SELECT id, v * 2 AS doubled FROM {pg_schema}.facts WHERE id < :n", url, {"n": 3})
        write_table(df, "doubled", url, mode="replace")
        seen["all"] = list(current_task_run().lineage)  # type: ignore[union-attr]
        return len(df)

    @flow
    def pg_flow() -> int:
        return roundtrip()

    state = pg_flow(return_state=True)
    assert state.is_completed(), state.message
    ns = "postgres://127.0.0.1:5432"
    assert [(i.dataset, i.direction) for i in seen["all"]] == [
        (DatasetRef(ns, f"test.{pg_schema}.facts"), "output"), (DatasetRef(ns, f"test.{pg_schema}.facts"), "input"),
        (DatasetRef(ns, f"test.{pg_schema}.doubled"), "output")]
    assert {s.column: (s.subtype) for s in (seen["all"][2].column_lineage or {})["doubled"]} == {"v": "TRANSFORMATION"}
    store.writer.flush()
    # The planted password is nowhere: not in the run's lineage, not anywhere in the store's file.
    assert secret not in repr(seen["all"])
    for path in headrace_home.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("target", ["headrace.lineage.capture.analyze", "headrace.lineage.frames.inherited",
                                    "headrace.lineage.capture.schema_of"])
def test_a_failure_inside_lineage_never_fails_the_run(target: str, source_db: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("injected lineage failure")

    monkeypatch.setattr(target, broken)

    @task
    def extract() -> Any:
        return read_sql("SELECT * FROM orders", f"duckdb:///{source_db}")

    @task
    def transform(df: Any) -> Any:
        return df[["order_id"]]

    @task
    def load(df: Any) -> int:
        return write_table(df, "ids", f"duckdb:///{tmp_path / 'wh.duckdb'}")

    @flow
    def fragile() -> int:
        return load(transform(extract()))

    state = fragile(return_state=True)
    assert state.is_completed(), state.message and state.result() == 40


def test_sql_transforms_record_their_tables_and_column_lineage(source_db: Path, store: Any) -> None:
    import duckdb

    from headrace.lineage import column_lineage, record_sql, upstream

    create = ("CREATE OR REPLACE TABLE daily AS SELECT o.order_date AS day, c.region, SUM(o.amount) AS total "
              "FROM orders o JOIN customers c ON c.id = o.customer_id GROUP BY 1, 2")
    insert = "INSERT INTO report (area, revenue) SELECT region, SUM(total) FROM daily GROUP BY region"

    @task
    def transform() -> int:
        with duckdb.connect(str(source_db)) as con:
            con.execute(create)
            record_sql(create, con)
            con.execute("CREATE TABLE report (area VARCHAR, revenue DOUBLE)")
            n = con.execute(insert).fetchone()[0]  # type: ignore[index]
            record_sql(insert, con, rows=n)
            return int(n)

    @flow
    def in_sql() -> int:
        return transform()

    state = in_sql(return_state=True)
    assert state.is_completed(), state.message
    rows = io_rows(store, state.run_id)
    assert [(r["name"], r["direction"]) for r in rows] == [
        ("src.main.orders", "input"), ("src.main.customers", "input"), ("src.main.daily", "output"),
        ("src.main.daily", "input"), ("src.main.report", "output")]
    assert rows[-1]["rows"] == 2
    daily = {c: [(s.dataset.name, s.column, s.subtype) for s in v] for c, v in column_lineage("daily").items()}
    assert daily == {"day": [("src.main.orders", "order_date", "IDENTITY")],
                     "region": [("src.main.customers", "region", "IDENTITY")],
                     "total": [("src.main.orders", "amount", "AGGREGATION")]}
    report = {c: [(s.dataset.name, s.column, s.subtype) for s in v] for c, v in column_lineage("report").items()}
    assert report == {"area": [("src.main.daily", "region", "IDENTITY")],
                      "revenue": [("src.main.daily", "total", "AGGREGATION")]}
    graph = upstream("report", depth=2)
    assert {n.ref.name for n in graph.nodes.values()} == {"src.main.report", "src.main.daily", "src.main.orders",
                                                         "src.main.customers"}


def test_a_duckdb_connection_is_named_by_its_file(source_db: Path, store: Any) -> None:
    import duckdb

    seen: list[DatasetIO] = []

    @task
    def with_connection() -> int:
        with duckdb.connect(str(source_db)) as con:
            df = read_sql("SELECT name FROM customers", con)
        seen.extend(current_task_run().lineage)  # type: ignore[union-attr]
        return len(df)

    @flow
    def connected() -> int:
        return with_connection()

    state = connected(return_state=True)
    assert state.is_completed(), state.message and state.result() == 5
    assert [str(io.dataset) for io in seen] == [f"duckdb://{source_db}/src.main.customers"]


def test_reads_and_writes_in_the_flow_body_are_the_flow_runs(source_db: Path, tmp_path: Path, store: Any) -> None:
    from headrace.engine import current_flow_run

    seen: list[DatasetIO] = []

    @flow
    def inline() -> int:
        n = write_table(read_sql("SELECT * FROM customers", f"duckdb:///{source_db}"), "c",
                        f"duckdb:///{tmp_path / 'wh.duckdb'}")
        seen.extend(current_flow_run().lineage)  # type: ignore[union-attr]
        return n

    state = inline(return_state=True)
    assert state.is_completed(), state.message
    assert [(io.dataset.name, io.direction) for io in seen] == [("src.main.customers", "input"),
                                                                ("wh.main.c", "output")]
    rows = io_rows(store, state.run_id)
    assert [(r["name"], r["task_run_id"]) for r in rows] == [("src.main.customers", None), ("wh.main.c", None)]
    assert {s.column for s in (seen[1].column_lineage or {})["region"]} == {"region"}
