"""GX's own test cases on Spark DataFrames, reusing the quality tests' case runner.

The cases GX runs on its Spark backend (``only_for`` / ``suppress_test_for`` naming
``spark``) run on a Spark DataFrame built from the same typed table the SQL backends get
(``gx_cases.sql_table``), and are judged as on every other backend (``gx_check.mismatch``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "quality"))

import gx_cases  # noqa: E402
import pyarrow as pa  # noqa: E402
from gx_cases import Case, datasets, sql_table  # noqa: E402
from gx_check import Outcome, mismatch, run  # noqa: E402
from gx_known import KNOWN  # noqa: E402

import headrace.spark.quality  # noqa: E402,F401  (the Spark backend)

gx_cases.GX_NAMES.setdefault("spark", frozenset({"spark"}))

# Where headrace answers a GX case differently on Spark, as on the other SQL backends and for
# the same reasons (tests/quality/gx_known.py, docs/quality-gx-differences.md): GX's own
# defect in counting dict rows, and GX's SQL schema typing 'numeric' as INTEGER.
SPARK_KNOWN = {key: KNOWN[key].out for key in (
    "expect_compound_columns_to_be_unique:unexpected_values_exact_match_out_without_unexpected_index_list#1",
    "expect_column_values_to_be_between:error_on_string-to-int_comparisons#0")}


def spark_cases() -> list[Case]:
    return [c for c in gx_cases.load_cases() if c.runs_on("spark")]


def subset(cases: list[Case], per_type: int) -> list[Case]:
    """The first ``per_type`` cases of each expectation, plus every case GX runs on Spark only."""
    taken: dict[str, int] = {}
    out = []
    for c in cases:
        spark_only = "spark" in (c.test.get("only_for") or []) or "spark" in c.dataset_only_for
        if taken.get(c.expectation_type, 0) < per_type or spark_only or c.key in SPARK_KNOWN:
            taken[c.expectation_type] = taken.get(c.expectation_type, 0) + 1
            out.append(c)
    return out


def frames(spark: Any, cases: list[Case]) -> dict[tuple[str, int], tuple[Any, pa.Table]]:
    """Per dataset: a Spark DataFrame and the Arrow table it was made from (the table DuckDB,
    Parquet and PostgreSQL get). Naive timestamps stay naive (Spark's TIMESTAMP_NTZ)."""
    from pyspark.sql import functions as F

    out = {}
    for etype, ds, case in datasets(cases):
        table = sql_table(case)
        if not table.num_columns:
            out[(etype, ds)] = (spark.range(0).drop("id"), table)
            continue
        df = spark.createDataFrame(table)
        for f in table.schema:
            if pa.types.is_timestamp(f.type) and f.type.tz is None:
                df = df.withColumn(f.name, F.col(f.name).cast("timestamp_ntz"))
        out[(etype, ds)] = (df, table)
    return out


def outcome(case: Case, df: Any) -> tuple[Outcome, str | None]:
    got = run(case, df)
    return got, mismatch(case, got, SPARK_KNOWN.get(case.key))
