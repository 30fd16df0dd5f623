"""Lineage survives the ways a run executes: child processes, task retries, `headrace retry`;
and custom I/O declared with @task(inputs=, outputs=) or record_input/record_output."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
from lineage_helpers import io_rows

from headrace import ProcessPoolTaskRunner, flow, task
from headrace.engine import current_task_run, run_flow
from headrace.engine.context import TaskRunContext, task_run_var
from headrace.engine.snapshot import RunSnapshot, apply_outcome, run_with_snapshot
from headrace.errors import InvalidDefinition
from headrace.io import read_sql, write_table
from headrace.lineage import DatasetIO, DatasetRef, lineage_graph, merged, record_input, record_output

JOIN_SQL = "SELECT o.order_id, c.name AS customer FROM orders o JOIN customers c ON c.id = o.customer_id"


@task
def read_names(source: str) -> Any:
    """Runs in a child process; the frame it returns is pickled back to the flow."""
    return read_sql(JOIN_SQL, f"duckdb:///{source}")


@task
def copy_orders(source: str, warehouse: str) -> int:
    """Runs in a child process under the process runner."""
    return write_table(read_sql(JOIN_SQL, f"duckdb:///{source}"), "order_names", f"duckdb:///{warehouse}",
                       mode="replace")


def test_a_process_runner_task_records_its_lineage_in_the_parent(source_db: Path, tmp_path: Path,
                                                                  sqlite_store: Any) -> None:
    store = sqlite_store
    @flow(task_runner=ProcessPoolTaskRunner(max_workers=1))
    def in_processes() -> int:
        return copy_orders.submit(str(source_db), str(tmp_path / "wh.duckdb")).result()

    state = in_processes(return_state=True)
    assert state.is_completed(), state.message and state.result() == 40
    rows = io_rows(store, state.run_id)
    assert [(r["name"], r["direction"]) for r in rows] == [
        ("src.main.orders", "input"), ("src.main.customers", "input"), ("wh.main.order_names", "output")]
    assert rows[-1]["details"]["column_lineage"]["customer"][0]["name"] == "src.main.customers"


@task
def load_names(df: Any, warehouse: str) -> int:
    """Runs in a child process, given a frame another child process read."""
    return write_table(df, "names", f"duckdb:///{warehouse}", mode="replace")


def test_a_frame_crossing_processes_keeps_its_column_lineage(source_db: Path, tmp_path: Path,
                                                            sqlite_store: Any) -> None:
    store = sqlite_store
    @flow(task_runner=ProcessPoolTaskRunner(max_workers=1))
    def across() -> int:
        return load_names(read_names.submit(str(source_db)).result(), str(tmp_path / "wh.duckdb"))

    state = across(return_state=True)
    assert state.is_completed(), state.message
    written = io_rows(store, state.run_id)[-1]
    assert written["name"] == "wh.main.names"
    assert written["details"]["column_lineage"]["customer"][0]["name"] == "src.main.customers"


def _in_child(source: str) -> int:
    current = current_task_run()
    assert current is not None and current.attempt == 2
    return len(read_sql("SELECT * FROM orders", f"duckdb:///{source}"))


def test_the_process_outcome_carries_the_lineage_list_back(source_db: Path, sqlite_store: Any) -> None:
    store = sqlite_store
    snap = RunSnapshot(task_run_id="t1", task_name="x", task_key="x-0", flow_run_id=None, attempt=2, tags=(),
                       load_prefix="p", parameters={})
    outcome = pickle.loads(pickle.dumps(run_with_snapshot(_in_child, (str(source_db),), {}, snap, None)))
    assert outcome.ok and [io.dataset.name for io in outcome.lineage] == ["src.main.orders"]
    parent = TaskRunContext("t1", "x", "x-0", None, {}, store, attempt=2)
    token = task_run_var.set(parent)
    try:
        assert apply_outcome(outcome) == 40
    finally:
        task_run_var.reset(token)
    assert [(io.dataset.name, io.rows, io.extra["attempt"]) for io in parent.lineage] == [("src.main.orders", 40, 2)]


def test_a_retried_task_reports_the_lineage_of_its_last_attempt(source_db: Path, tmp_path: Path,
                                                                store: Any) -> None:
    flag = tmp_path / "failed-once"
    seen: list[DatasetIO] = []

    @task(retries=1)
    def flaky() -> int:
        df = read_sql("SELECT * FROM orders", f"duckdb:///{source_db}")
        if not flag.exists():
            flag.write_text("x")
            raise RuntimeError("first attempt fails after reading")
        write_table(df, "orders_copy", f"duckdb:///{tmp_path / 'wh.duckdb'}", mode="replace")
        seen.extend(merged(current_task_run().lineage))  # type: ignore[union-attr]
        return len(df)

    @flow
    def retrying() -> int:
        return flaky()

    state = retrying(return_state=True)
    assert state.is_completed(), state.message
    assert [(io.dataset.name, io.direction, io.rows, io.extra["attempt"]) for io in seen] == [
        ("src.main.orders", "input", 40, 2), ("wh.main.orders_copy", "output", 40, 2)]
    stored = io_rows(store, state.run_id)
    assert [r["details"]["extra"]["attempt"] for r in stored] == [1, 2, 2]


def test_headrace_retry_links_what_the_first_run_read_to_what_the_retry_wrote(
        source_db: Path, tmp_path: Path, store: Any) -> None:
    flag = tmp_path / "load-failed"
    src, wh = f"duckdb:///{source_db}", f"duckdb:///{tmp_path / 'wh.duckdb'}"

    @task(persist_result=True, result_serializer="pickle")
    def extract() -> Any:
        return read_sql(JOIN_SQL, src)

    @task
    def load(df: Any) -> int:
        if not flag.exists():
            flag.write_text("x")
            raise RuntimeError("warehouse down")
        return write_table(df, "names", wh, mode="replace")

    @flow
    def etl() -> int:
        return load(extract())

    first = etl(return_state=True)
    assert first.is_failed()
    second = run_flow(etl, {}, retry_of=first.run_id)
    assert second.is_completed(), second.message
    # extract was reused: its reads are recorded again on the retry's task run, without rows
    again = io_rows(store, second.run_id)
    assert [(r["name"], r["direction"], r["rows"]) for r in again] == [
        ("src.main.orders", "input", None), ("src.main.customers", "input", None), ("wh.main.names", "output", 40)]
    first_extract = next(t["id"] for t in store.list_task_runs(first.run_id) if t["task_key"] == "extract-0")
    assert again[0]["details"]["extra"] == {"reused_from": first_extract, "attempt": 1}
    assert again[0]["details"]["sql"] == JOIN_SQL
    assert again[-1]["details"]["column_lineage"]["customer"][0]["name"] == "src.main.customers"
    graph = lineage_graph("names", downstream=False)
    assert {n.ref.name for n in graph.upstream_of(graph.focus.id)} == {"src.main.orders", "src.main.customers"}
    down = lineage_graph("src.main.orders", upstream=False)
    assert [n.ref.name for n in down.downstream_of(down.focus.id)] == ["wh.main.names"]


def test_declared_inputs_and_outputs(tmp_path: Path, store: Any) -> None:
    seen: list[DatasetIO] = []

    @task(inputs=["postgresql://etl:pw@crm.internal:5432/crm.public.customers", DatasetRef("s3://raw", "events")],
          outputs="s3://mart/customers.parquet")
    def sync() -> None:
        record_input(str(tmp_path / "extra.csv"), rows=3, schema=[("id", "int64")])
        record_output("postgres://dwh:5432/dwh.public.customer_events", rows=7,
                      column_lineage={"customer": [("s3://raw/events", "customer_id")]})
        seen.extend(current_task_run().lineage)  # type: ignore[union-attr]

    @flow
    def declared() -> None:
        sync()

    state = declared(return_state=True)
    assert state.is_completed(), state.message
    assert [(str(io.dataset), io.direction) for io in seen] == [
        ("postgres://crm.internal:5432/crm.public.customers", "input"), ("s3://raw/events", "input"),
        (str(tmp_path / "extra.csv"), "input"), ("postgres://dwh:5432/dwh.public.customer_events", "output")]
    stored = io_rows(store, state.run_id)
    assert stored[-1]["name"] == "customers.parquet" and stored[-1]["uri"] == "s3://mart"  # at completion
    assert stored[3]["details"]["column_lineage"]["customer"][0]["field"] == "customer_id"
    assert "pw" not in repr(stored) and "etl" not in repr([r["uri"] for r in stored])
    graph = lineage_graph("customer_events", downstream=False)
    assert {str(n.ref) for n in graph.upstream_of(graph.focus.id)} == {
        "postgres://crm.internal:5432/crm.public.customers", "s3://raw/events", str(tmp_path / "extra.csv")}


def test_a_bad_declared_dataset_is_refused_when_the_task_is_defined() -> None:
    with pytest.raises(InvalidDefinition, match="task 'bad': inputs must be dataset URLs"):
        @task(inputs=[42])
        def bad() -> None: ...


def test_a_cache_hit_records_what_the_run_that_filled_the_cache_read(source_db: Path, tmp_path: Path,
                                                                     store: Any) -> None:
    from headrace import task_input_hash

    @task(cache_key_fn=task_input_hash, persist_result=True, result_serializer="pickle")
    def extract(n: int) -> Any:
        return read_sql(JOIN_SQL + " WHERE o.order_id < :n", f"duckdb:///{source_db}", {"n": n})

    @task
    def load(df: Any) -> int:
        return write_table(df, "names", f"duckdb:///{tmp_path / 'wh.duckdb'}", mode="replace")

    @flow
    def cached(n: int = 10) -> int:
        return load(extract(n))

    first, second = cached(return_state=True), cached(return_state=True)
    assert first.is_completed() and second.is_completed(), second.message
    assert [t["state_name"] for t in store.list_task_runs(second.run_id)][:1] == ["Cached"]
    rows = io_rows(store, second.run_id)
    assert [(r["name"], r["direction"], r["rows"]) for r in rows] == [
        ("src.main.orders", "input", None), ("src.main.customers", "input", None), ("wh.main.names", "output", 10)]
    computed = next(t["id"] for t in store.list_task_runs(first.run_id) if t["task_key"] == "extract-0")
    assert rows[0]["details"]["extra"]["cached_from"] == computed
    # the cached frame got its column lineage back, so the load of the second run has it too
    assert rows[-1]["details"]["column_lineage"]["customer"] == [
        {"namespace": f"duckdb://{source_db}", "name": "src.main.customers", "field": "name", "type": "DIRECT",
         "subtype": "IDENTITY"}]
