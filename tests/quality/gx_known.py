"""Where headrace answers differently from a GX case, on purpose, each with its reason.

``docs/quality-gx-differences.md`` explains the same cases for users. Each entry names
the backends it concerns and what headrace answers instead (``out``, judged the way
GX's ``out`` is), so the difference itself stays tested.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ALL = ("pandas", "polars", "arrow", "duckdb", "parquet", "postgresql")
SQL = ("duckdb", "parquet", "postgresql")


@dataclass(frozen=True)
class Known:
    backends: tuple[str, ...]
    why: str
    out: dict[str, Any]
    gx_defect: bool = True        # GX's own defect (listed in the docs) or a backend's data


_PAIRS = [{"a": 1.0, "b": 1.0}, {"a": 1.0, "b": 2.0}, {"a": 1.0, "b": 1.0}, {"a": 1.0, "b": 2.0},
          {"a": 1.0, "b": 1.0}, {"a": 2.0, "b": 2.0}, {"a": 2.0, "b": 1.0}, {"a": 2.0, "b": 2.0},
          {"a": 2.0, "b": 1.0}]

KNOWN: dict[str, Known] = {
    "expect_compound_columns_to_be_unique:unexpected_values_exact_match_out_without_unexpected_index_list#1": Known(
        ALL,
        "GX cannot count rows given as dicts (they are not hashable) and reports "
        "details.partial_unexpected_counts_error instead of partial_unexpected_counts; headrace "
        "counts them.",
        {"success": False, "result": {
            "missing_count": 1, "missing_percent": 10.0, "unexpected_count": 9, "unexpected_percent": 100.0,
            "unexpected_percent_total": 90.0, "unexpected_percent_nonmissing": 100.0,
            "partial_unexpected_list": _PAIRS, "unexpected_list": _PAIRS,
            "partial_unexpected_counts": [{"value": {"a": 1.0, "b": 1.0}, "count": 3},
                                          {"value": {"a": 1.0, "b": 2.0}, "count": 2},
                                          {"value": {"a": 2.0, "b": 1.0}, "count": 2},
                                          {"value": {"a": 2.0, "b": 2.0}, "count": 2}]}}),
    "expect_column_values_to_be_between:error_on_string-to-int_comparisons#0": Known(
        SQL,
        "GX's own SQL schema for this dataset makes column 'numeric' INTEGER, so on a database "
        "the integer bounds compare fine; the error is pandas' (the column is text there).",
        {"success": True, "unexpected_list": []}, gx_defect=False),
    "expect_column_stdev_to_be_between:positive_test__exact_min_and_max_sqlalchemy#0": Known(
        ("duckdb", "parquet"),
        "Exact bounds on a float: GX's value is PostgreSQL's rounding of the sample standard "
        "deviation (last digit 5); DuckDB, like pandas, gives 1.1547005383792517, which the "
        "case's equal min_value and max_value exclude by one unit in the last place.",
        {"success": False, "observed_value": 1.1547005383792517}, gx_defect=False),
}


def known(key: str, backend: str) -> Known | None:
    k = KNOWN.get(key)
    return k if k is not None and backend in k.backends else None
