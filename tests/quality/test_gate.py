"""Gates in flows: halt, warn and quarantine, results in the run store, history checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from headrace.engine import current_flow_run, flow, task
from headrace.errors import QualityGateFailed
from headrace.quality import Suite, expect

REGIONS = ["North", "South", "East", "West", "Central"]


def sales(n: int = 100, bad: int = 0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "order_id": np.arange(n),
        "customer_id": rng.integers(1, 500, n).astype(float),
        "revenue": rng.uniform(900, 1500, n).round(2),
        "region": rng.choice(REGIONS, n),
    })
    for i in range(bad):  # alternate the kinds of damage
        row = i * 3
        if i % 2:
            df.loc[row, "revenue"] = -10.0
        else:
            df.loc[row, "customer_id"] = np.nan
    return df


def seed_suite(policy: str, **extra: Any) -> Suite:
    return Suite("sales", [
        expect.column_values_to_not_be_null("customer_id"),
        expect.column_values_to_be_between("revenue", min_value=0),
        expect.column_values_to_be_in_set("region", REGIONS),
        expect.column_mean_to_be_between("revenue", min_value=800, max_value=2500),
        expect.table_row_count_to_be_between(min_value=10, max_value=50000),
        *extra.get("more", []),
    ], on_failure=policy)  # type: ignore[arg-type]


def pipeline(suite: Suite, df: pd.DataFrame, loaded: list[int]) -> Any:
    @task
    def load(frame: pd.DataFrame) -> int:
        loaded.append(len(frame))
        return len(frame)

    @flow(name="sales-etl")
    def etl() -> tuple[str, int]:
        ctx = current_flow_run()
        assert ctx is not None
        return ctx.flow_run_id, load(suite.gate(df))

    return etl


def test_halt_stops_before_the_load_and_names_the_failed_checks(store: Any) -> None:
    loaded: list[int] = []
    with pytest.raises(QualityGateFailed) as info:
        pipeline(seed_suite("halt"), sales(bad=4), loaded)()
    assert loaded == []
    assert info.value.failed_checks == ["column_values_to_not_be_null(customer_id)",
                                        "column_values_to_be_between(revenue)"]
    run = store.list_flow_runs(limit=1)[0]
    assert run["state_type"] == "FAILED"
    rows = store.get_quality_results(run["id"])
    assert [r["success"] for r in rows] == [False, False, True, True, True]
    assert rows[0]["unexpected_count"] == 2
    tasks = store.list_task_runs(run["id"])
    assert any(t["task_name"] == "quality-gate:sales" and t["state_type"] == "FAILED" for t in tasks)


def test_warn_records_and_goes_on(store: Any) -> None:
    loaded: list[int] = []
    run_id, n = pipeline(seed_suite("warn"), sales(bad=4), loaded)()
    assert n == 100 and loaded == [100]
    assert sum(not r["success"] for r in store.get_quality_results(run_id)) == 2


def test_quarantine_splits_rows_and_counts_add_up(store: Any, headrace_home: Path) -> None:
    loaded: list[int] = []
    suite = seed_suite("quarantine")
    run_id, n = pipeline(suite, sales(bad=6), loaded)()
    assert n == 94 and loaded == [94]
    outcome = suite.last_outcome
    assert (outcome.rows_in, outcome.rows_passed, outcome.rows_quarantined) == (100, 94, 6)
    path = headrace_home / "quarantine" / "sales" / f"{run_id}.parquet"
    bad = pq.read_table(path)
    assert bad.num_rows == 6
    assert set(bad.column("_run_id").to_pylist()) == {run_id}
    assert bad.column("_failed_checks").to_pylist()[:2] == [
        "column_values_to_not_be_null(customer_id)", "column_values_to_be_between(revenue)"]
    profile = store.get_quality_profiles(run_id)[0]["profile"]
    assert profile["gate"]["rows_quarantined"] == 6 and profile["row_count"] == 100


def test_quarantine_still_halts_on_aggregate_failures(store: Any) -> None:
    df = sales()
    df["revenue"] = 10.0  # every row is fine, the mean is not
    loaded: list[int] = []
    with pytest.raises(QualityGateFailed, match="column_mean_to_be_between"):
        pipeline(seed_suite("quarantine"), df, loaded)()
    assert loaded == []


def test_gate_outside_a_flow_is_a_recorded_task_run(store: Any) -> None:
    suite = seed_suite("quarantine")
    good = suite.gate(sales(bad=2))
    assert len(good) == 98
    task_run_id = suite.last_outcome.task_run_id
    store.writer.flush()
    assert store.get_task_run(task_run_id)["state_type"] == "COMPLETED"
    rows = store.get_quality_results(task_run_id)
    assert len(rows) == 5 and rows[0]["unexpected_count"] == 1


def _run_history(store: Any, sizes: list[int]) -> list[Any]:
    suite = seed_suite("halt", more=[
        expect.table_row_count_to_be_within_history(window=30, sigma=3),
        expect.column_mean_to_be_within_history("revenue", window=30, sigma=3),
    ])
    outcomes = []
    for i, n in enumerate(sizes):
        try:
            pipeline(suite, sales(n, seed=i), [])()
        except QualityGateFailed:
            pass
        outcomes.append(suite.last_outcome.result)
    return outcomes


def test_history_checks_pass_with_a_note_then_learn(store: Any) -> None:
    results = _run_history(store, [100, 104, 98, 101, 5000])
    first = results[0]["table_row_count_to_be_within_history"]
    assert first.success and "too little history" in first.note
    fourth = results[3]["table_row_count_to_be_within_history"]
    assert fourth.success and fourth.result["history"] == [100.0, 104.0, 98.0]
    last = results[4]["table_row_count_to_be_within_history"]
    assert not last.success and last.observed_value == 5000
    assert results[4]["column_mean_to_be_within_history(revenue)"].success


def test_quarantine_also_goes_to_a_target_table(store: Any, pg_url: str) -> None:
    from sqlalchemy import create_engine, text

    from headrace.quality import PostgresTable

    seen: list[int] = []
    suite = seed_suite("quarantine")
    good = suite.gate(sales(bad=3), quarantine_to=lambda bad: seen.append(len(bad)))
    assert (len(good), seen) == (97, [3])
    suite.gate(sales(bad=5), quarantine_to=PostgresTable("sales_quarantine", pg_url))
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        rows = conn.execute(text('SELECT "_failed_checks", "_run_id" FROM sales_quarantine')).all()
    engine.dispose()
    assert len(rows) == 5 and rows[0][1] == suite.last_outcome.task_run_id


def test_a_check_the_engine_cannot_run_fails_alone() -> None:
    df = sales(20)
    result = Suite("s", [
        expect.column_values_to_be_in_set("region", [1, 2]),
        expect.column_values_to_not_be_null("customer_id"),
    ]).validate(df)
    assert not result[0].success and "cannot be compared" in result[0].exception_info
    assert result[1].success
    with pytest.raises(Exception, match="look-around"):
        expect.column_values_to_match_regex("region", "(?=N)")


def test_quarantine_takes_out_rows_that_mostly_tolerates(store: Any) -> None:
    suite = Suite("tolerant", [expect.column_values_to_be_between("revenue", min_value=0, mostly=0.9)],
                  on_failure="quarantine")
    good = suite.gate(sales(bad=4))                  # 2 negative revenues: the check passes
    assert suite.last_outcome.result.success
    assert (len(good), suite.last_outcome.rows_quarantined) == (98, 2)
    clean = sales()
    assert suite.gate(clean) is clean                # nothing to take out: the input goes on


def test_two_gates_of_one_suite_in_a_flow_keep_both_quarantines(store: Any, headrace_home: Path) -> None:
    suite = seed_suite("quarantine")

    @flow
    def two_batches() -> str:
        suite.gate(sales(bad=2))
        suite.gate(sales(bad=4, seed=1))
        ctx = current_flow_run()
        assert ctx is not None
        return ctx.flow_run_id

    run_id = two_batches()
    folder = headrace_home / "quarantine" / "sales"
    assert pq.read_table(folder / f"{run_id}.parquet").num_rows == 2
    assert pq.read_table(folder / f"{run_id}-1.parquet").num_rows == 4
