"""Quality suites on Spark DataFrames: GX's own cases, and the same answers as on other backends."""

from __future__ import annotations

import os
from typing import Any

import gx_spark  # noqa: I001 (puts tests/quality on the path)
import pandas as pd
import pyarrow as pa
import pytest
from gx_check import run

from headrace.errors import QualityError
from headrace.quality import DuckDBTable, Suite, expect

# HEADRACE_GX_SPARK=all runs every case GX runs on Spark (335, a few minutes on 2 cores); by
# default a representative subset keeps the suite fast: the first case of each expectation,
# every case GX runs on Spark only, and the documented differences.
PER_TYPE = 10_000 if os.environ.get("HEADRACE_GX_SPARK") == "all" else 1


@pytest.fixture(scope="module")
def gx(spark: Any) -> dict[str, Any]:
    """The chosen cases, their data, and each case's outcome on Spark (run once)."""
    if not gx_spark.gx_cases.available():
        pytest.skip(f"Great Expectations' test definitions not found at {gx_spark.gx_cases.SPEC_DIR}: "
                    "the GX conformance cases did not run on Spark")
    cases = gx_spark.subset(gx_spark.spark_cases(), PER_TYPE)
    frames = gx_spark.frames(spark, cases)
    outcomes = {c.key: gx_spark.outcome(c, frames[(c.expectation_type, c.dataset)][0]) for c in cases}
    return {"cases": cases, "frames": frames, "outcomes": outcomes}


def test_gx_cases_hold_on_spark(gx: dict[str, Any]) -> None:
    cases = gx["cases"]
    every_type = {c.expectation_type for c in gx_spark.spark_cases()}
    assert len(cases) >= 50 and {c.expectation_type for c in cases} == every_type
    problems = [f"{key}: {problem}" for key, (_, problem) in gx["outcomes"].items() if problem is not None]
    assert not problems, f"{len(problems)} of {len(cases)} GX cases fail on Spark:\n" + "\n".join(problems)


def test_spark_agrees_with_duckdb_on_the_same_table(gx: dict[str, Any]) -> None:
    """The same table in Spark and in DuckDB gives the same success, counts, values, row
    positions and observed values (DuckDB agrees with pandas in the quality tests)."""
    import duckdb

    con = duckdb.connect()
    diverging, compared = [], 0
    for i, case in enumerate(gx["cases"]):
        table = gx["frames"][(case.expectation_type, case.dataset)][1]
        if not table.num_columns or case.expectation_type in ("expect_column_values_to_be_of_type",
                                                              "expect_column_values_to_be_in_type_list"):
            continue      # each engine names its own types (GX does the same)
        con.from_arrow(table).create(f"t{i}")
        on_duck, on_spark = run(case, DuckDBTable(f"t{i}", con)).summary(), gx["outcomes"][case.key][0].summary()
        compared += 1
        if on_duck != on_spark:
            diverging.append(f"{case.key}: duckdb={on_duck} spark={on_spark}")
    assert compared > 40
    assert not diverging, "Spark and DuckDB disagree:\n" + "\n".join(diverging)


def test_suite_on_spark_matches_pandas(spark: Any) -> None:
    frame = pd.DataFrame({"customer_id": [1, 2, None, 4, 5, 6],
                          "region": ["North", "South", "Mars", None, "East", "East"],
                          "revenue": [100.0, -5.0, 30.0, 40.0, 2500.5, 12.25]})
    table = pa.Table.from_pandas(frame, preserve_index=False)
    suite = Suite("sales", [
        expect.column_values_to_not_be_null("customer_id"),
        expect.column_values_to_be_between("revenue", min_value=0),
        expect.column_values_to_be_in_set("region", ["North", "South", "East", "West"]),
        expect.column_values_to_match_regex("region", "^[A-Z][a-z]+$"),
        expect.column_mean_to_be_between("revenue", min_value=100, max_value=2500),
        expect.column_median_to_be_between("revenue", min_value=30, max_value=40),
        expect.column_values_to_be_unique("region", row_condition='customer_id > 1', condition_parser="pandas"),
        expect.table_row_count_to_be_between(min_value=1, max_value=10),
    ])
    on_spark = suite.validate(spark.createDataFrame(table), "COMPLETE")
    on_pandas = suite.validate(frame, "COMPLETE")
    assert [r.success for r in on_spark.results] == [r.success for r in on_pandas.results]
    assert [r.to_dict()["result"] for r in on_spark.results] == [r.to_dict()["result"] for r in on_pandas.results]
    assert not on_spark.success
    good, bad = suite.split(spark.createDataFrame(table))
    pd_good, pd_bad = suite.split(frame)
    assert good.num_rows == len(pd_good) and good.num_rows + bad.num_rows == 6
    assert bad.column("_failed_checks").to_pylist() == list(pd_bad["_failed_checks"])
    assert "column_values_to_not_be_null(customer_id)" in bad.column("_failed_checks").to_pylist()[1]


def test_values_are_bound_not_spliced(spark: Any) -> None:
    """A value that would be SQL if spliced into the text is only ever a value."""
    hostile = "x') OR TRUE OR ('"
    df = spark.createDataFrame(pa.table({"name": ["a", hostile, "b`c"]}))
    result = Suite("s", [expect.column_values_to_be_in_set("name", [hostile, "b`c"])]).validate(df, "COMPLETE")
    assert result.results[0].result["unexpected_list"] == ["a"]


def test_a_check_spark_cannot_run_is_a_clear_error(spark: Any) -> None:
    df = spark.createDataFrame(pa.table({"__hr_order": [1]}))
    with pytest.raises(QualityError, match="__hr_order"):
        Suite("s", [expect.column_values_to_not_be_null("__hr_order")]).validate(df)


def test_a_spark_frame_is_checked_without_importing_headrace_spark() -> None:
    """A user's own SparkSession and a suite from headrace.quality alone: the Spark backend loads itself."""
    import subprocess
    import sys

    code = (
        "from pyspark.sql import SparkSession\n"
        "spark = SparkSession.builder.master('local[1]').config('spark.ui.enabled', 'false').getOrCreate()\n"
        "df = spark.createDataFrame([(1,), (None,), (3,)], 'x long')\n"
        "import sys\n"
        "from headrace.quality import Suite, expect\n"
        "assert 'headrace.spark' not in sys.modules\n"
        "result = Suite('s', [expect.column_values_to_not_be_null('x')]).validate(df)\n"
        "print('RESULT', result.success, result.results[0].unexpected_count)\n"
        "spark.stop()\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "RESULT False 1" in out.stdout
