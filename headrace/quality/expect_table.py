"""Aggregate, type, table and schema checks (named in ``expect``, where users find them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from headrace.quality import arguments as args
from headrace.quality.expectation import expectation, judge_between

Num = float | int | None

# -- column aggregates ---------------------------------------------------------------------


def _register_agg(name: str, metric: str, doc: str, needs: str | None, kind: args.BoundKind,
                  required: bool) -> Any:
    # The eight "<metric> to be between" checks share one signature.
    def stub(column: str, min_value: Any = None, max_value: Any = None, *,
             strict_min: bool = False, strict_max: bool = False) -> None:
        args.need_bounds({"min_value": min_value, "max_value": max_value}, kind, required=required)
    stub.__doc__ = doc
    stub.__name__ = stub.__qualname__ = name
    return expectation("agg", metric, judge=judge_between, needs=needs)(stub)


column_mean_to_be_between = _register_agg(
    "column_mean_to_be_between", "mean",
    "The mean of the non-null values (True counts 1) lies within the bounds.", "mean", "number", False)
column_median_to_be_between = _register_agg(
    "column_median_to_be_between", "median", "The median (linear interpolation) lies within the bounds.",
    "mean", "number", False)
column_min_to_be_between = _register_agg(
    "column_min_to_be_between", "min", "The smallest value lies within the bounds.", None, "any", True)
column_max_to_be_between = _register_agg(
    "column_max_to_be_between", "max", "The largest value lies within the bounds.", None, "any", True)
column_sum_to_be_between = _register_agg(
    "column_sum_to_be_between", "sum", "The sum of the non-null values lies within the bounds.",
    "mean", "number", True)
column_stdev_to_be_between = _register_agg(
    "column_stdev_to_be_between", "stdev", "The sample standard deviation lies within the bounds.",
    "mean", "number", False)
column_unique_value_count_to_be_between = _register_agg(
    "column_unique_value_count_to_be_between", "distinct_count",
    "The number of distinct non-null values lies within the bounds.", None, "number", False)
column_proportion_of_unique_values_to_be_between = _register_agg(
    "column_proportion_of_unique_values_to_be_between", "distinct_share",
    "Distinct non-null values / non-null values lies within the bounds.", None, "number", False)


def _judge_quantiles(kw: dict[str, Any], observed: Any) -> bool:
    ranges = kw["quantile_ranges"]["value_ranges"]
    values = (observed or {}).get("values") or []
    if len(values) != len(ranges):
        return False
    return all(v is not None and (lo is None or v >= lo) and (hi is None or v <= hi)
               for v, (lo, hi) in zip(values, ranges, strict=True))


@expectation("agg", "quantiles", judge=_judge_quantiles, needs="numeric")
def column_quantile_values_to_be_between(column: str, quantile_ranges: dict[str, Any]) -> None:
    """Each quantile (discrete: an actual value of the column) lies in its range.

    ``quantile_ranges={"quantiles": [0.25, 0.5], "value_ranges": [[1, 3], [2, 5]]}``
    """
    q = quantile_ranges.get("quantiles") if isinstance(quantile_ranges, dict) else None
    r = quantile_ranges.get("value_ranges") if isinstance(quantile_ranges, dict) else None
    if not isinstance(q, list) or not isinstance(r, list) or len(q) != len(r) or not q:
        raise ValueError("quantile_ranges needs 'quantiles' and 'value_ranges' lists of one length")
    if not all(isinstance(x, int | float) and not isinstance(x, bool) and 0 <= x <= 1 for x in q):
        raise ValueError(f"quantile_ranges: quantiles must be numbers between 0 and 1, not {q!r}")
    for pair in r:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ValueError(f"quantile_ranges: each value range is [min, max], not {pair!r}")
        for bound in pair:
            if bound is not None:
                args.need_number("quantile_ranges bound", bound)
        if pair[0] is not None and pair[1] is not None and pair[0] > pair[1]:
            raise ValueError(f"quantile_ranges must consist of ordered pairs [min, max]; "
                             f"{list(pair)!r} has min greater than max")


def _present_counts(kw: dict[str, Any], counts: Any) -> tuple[Any, dict[str, Any] | None]:
    pairs = counts or []
    return [v for v, _ in pairs], {"value_counts": [{"value": v, "count": c} for v, c in pairs]}


def _judge_subset(kw: dict[str, Any], observed: Any) -> bool:
    return kw["value_set"] is None or {v for v, _ in observed or []} <= set(kw["value_set"])


def _judge_superset(kw: dict[str, Any], observed: Any) -> bool:
    return kw["value_set"] is None or {v for v, _ in observed or []} >= set(kw["value_set"])


def _judge_equal_set(kw: dict[str, Any], observed: Any) -> bool:
    return kw["value_set"] is None or {v for v, _ in observed or []} == set(kw["value_set"])


@expectation("agg", "value_counts", judge=_judge_subset, present=_present_counts)
def column_distinct_values_to_be_in_set(column: str, value_set: Sequence[Any] | None) -> None:
    """Every distinct non-null value is in value_set (``None``: any)."""
    args.need_set("value_set", value_set)


@expectation("agg", "value_counts", judge=_judge_superset, present=_present_counts)
def column_distinct_values_to_contain_set(column: str, value_set: Sequence[Any] | None) -> None:
    """Every value of value_set occurs in the column."""
    args.need_set("value_set", value_set)


@expectation("agg", "value_counts", judge=_judge_equal_set, present=_present_counts)
def column_distinct_values_to_equal_set(column: str, value_set: Sequence[Any] | None) -> None:
    """The distinct non-null values are exactly value_set."""
    args.need_set("value_set", value_set)


# -- table and schema ------------------------------------------------------------------------

def _judge_exists(kw: dict[str, Any], cols: Any) -> bool:
    cols = list(cols or [])
    if kw["column"] not in cols:
        return False
    index = kw.get("column_index")
    return index is None or (index < len(cols) and cols[index] == kw["column"])


@expectation("table", "columns", judge=_judge_exists)
def column_to_exist(column: str, column_index: int | None = None) -> None:
    """The column exists (at position ``column_index``, counting from 0, when given)."""
    if column_index is not None:
        args.need_count("column_index", column_index)


def _mismatch(kw: dict[str, Any], cols: Any) -> tuple[Any, dict[str, Any] | None]:
    have, want = list(cols or []), list(kw.get("column_set") or [])
    mismatched: dict[str, list[str]] = {}
    unexpected = [c for c in have if c not in want]
    missing = [c for c in want if c not in have]
    if unexpected:
        mismatched["unexpected"] = unexpected
    if missing:
        mismatched["missing"] = missing
    return have, {"mismatched": mismatched}


def _judge_match_set(kw: dict[str, Any], cols: Any) -> bool:
    have, want = set(cols or []), set(kw["column_set"] or [])
    return have == want if kw["exact_match"] else want <= have


@expectation("table", "columns", judge=_judge_match_set, present=_mismatch)
def table_columns_to_match_set(column_set: Sequence[str] | None, exact_match: bool = True) -> None:
    """The table has exactly these columns (or at least them, with exact_match=False).

    ``column_set=None`` is the empty set: no column is required, none is allowed when exact.
    """
    args.need_columns("column_set", column_set, 0, optional=True)


def _judge_ordered(kw: dict[str, Any], cols: Any) -> bool:
    return kw["column_list"] is None or list(cols or []) == list(kw["column_list"])


@expectation("table", "columns", judge=_judge_ordered)
def table_columns_to_match_ordered_list(column_list: Sequence[str] | None) -> None:
    """The table's columns are exactly these, in this order (``None``: any)."""
    args.need_columns("column_list", column_list, 0, optional=True)


@expectation("table", "column_count", judge=judge_between)
def table_column_count_to_be_between(min_value: int | None = None, max_value: int | None = None, *,
                                     strict_min: bool = False, strict_max: bool = False) -> None:
    """The number of columns lies within the bounds."""
    args.need_bounds(locals(), "int")


@expectation("table", "column_count", judge=lambda kw, n: n == kw["value"])
def table_column_count_to_equal(value: int) -> None:
    """The table has exactly ``value`` columns."""
    args.need_count("value", value)


@expectation("table", "row_count", judge=judge_between)
def table_row_count_to_be_between(min_value: int | None = None, max_value: int | None = None, *,
                                  strict_min: bool = False, strict_max: bool = False) -> None:
    """The number of rows lies within the bounds."""
    args.need_bounds(locals(), "int")


@expectation("table", "row_count", judge=lambda kw, n: n == kw["value"])
def table_row_count_to_equal(value: int) -> None:
    """The table has exactly ``value`` rows."""
    args.need_count("value", value)


# -- types -----------------------------------------------------------------------------------
# The column's type is judged; on a text column (and pandas' object columns) each value is
# judged by its own type, as GX does for pandas object columns, and the values of another
# type are listed. The observed_value is the type as the column's own engine names it.

@expectation("type", "type")
def column_values_to_be_of_type(column: str, type_: str, mostly: float = 1.0) -> None:
    """The column's type is type_: ``int``, ``float``, ``str``, ``object``/``O``, ``int64``,
    ``datetime64``, ``Timestamp`` (time-zone aware), ``INTEGER``, ``TEXT``, ``StringType``..."""
    if not isinstance(type_, str) or not type_.strip():
        raise ValueError(f"type_ must be a type name, not {type_!r}")


@expectation("type", "type")
def column_values_to_be_in_type_list(column: str, type_list: Sequence[str] | None,
                                     mostly: float = 1.0) -> None:
    """The column's type is one of type_list (``None``: any)."""
    args.need_set("type_list", type_list)
    for name in type_list or []:
        if not isinstance(name, str):
            raise ValueError(f"type_list must hold type names, not {name!r}")
