"""The check types, with Great Expectations names and arguments.

``expect.column_values_to_be_between("revenue", min_value=0)`` builds the check
GE calls ``expect_column_values_to_be_between``. Column value checks ignore
nulls (only the null checks look at them) and pass when the share of non-null
values that pass is at least ``mostly``. Bounds are inclusive unless
``strict_min``/``strict_max``; a ``None`` bound is open.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from headrace.quality import expect_history as _history
from headrace.quality.expectation import expectation, judge_between
from headrace.quality.types import type_matches

Num = float | int | None


def _need_set(value_set: Any) -> None:
    if isinstance(value_set, str | bytes) or not isinstance(value_set, Sequence | set | frozenset):
        raise ValueError(f"value_set must be a list of values, not {value_set!r}")


def _need_regex(regex: Any) -> None:
    if not isinstance(regex, str):
        raise ValueError(f"regex must be a string, not {regex!r}")
    try:
        re.compile(regex)
    except re.error as exc:
        raise ValueError(f"regex {regex!r} does not compile: {exc}") from None
    # Arrow and DuckDB use RE2; refusing Python-only syntax keeps every backend's answer the same.
    if re.search(r"\(\?<?[=!]|\\[1-9]", regex):
        raise ValueError(f"regex {regex!r} uses look-around or a back-reference, which the "
                         "SQL and Arrow engines (RE2) do not support")


def _need_columns(column_list: Any, least: int = 1) -> None:
    if isinstance(column_list, str) or not isinstance(column_list, Sequence) \
            or len(column_list) < least or not all(isinstance(c, str) for c in column_list):
        raise ValueError(f"column_list must be a list of at least {least} column names, "
                         f"not {column_list!r}")


# -- row checks on one column ------------------------------------------------------------

@expectation("map", "not_null")
def column_values_to_not_be_null(column: str, mostly: float = 1.0) -> None:
    """Every value is present (not null, not NaN)."""


@expectation("map", "null")
def column_values_to_be_null(column: str, mostly: float = 1.0) -> None:
    """Every value is null."""


@expectation("map", "between")
def column_values_to_be_between(column: str, min_value: Any = None, max_value: Any = None, *,
                                strict_min: bool = False, strict_max: bool = False,
                                mostly: float = 1.0) -> None:
    """Each value lies within [min_value, max_value]."""
    if min_value is None and max_value is None:
        raise ValueError("give min_value, max_value or both")


@expectation("map", "in_set")
def column_values_to_be_in_set(column: str, value_set: Sequence[Any], mostly: float = 1.0) -> None:
    """Each value is one of value_set."""
    _need_set(value_set)


@expectation("map", "not_in_set")
def column_values_to_not_be_in_set(column: str, value_set: Sequence[Any],
                                   mostly: float = 1.0) -> None:
    """No value is one of value_set."""
    _need_set(value_set)


@expectation("map", "unique")
def column_values_to_be_unique(column: str, mostly: float = 1.0) -> None:
    """No non-null value appears twice (every copy of a repeated value is unexpected)."""


@expectation("map", "regex", needs="string")
def column_values_to_match_regex(column: str, regex: str, mostly: float = 1.0) -> None:
    """Each value contains a match of regex (search, not full match, as in GE)."""
    _need_regex(regex)


@expectation("map", "not_regex", needs="string")
def column_values_to_not_match_regex(column: str, regex: str, mostly: float = 1.0) -> None:
    """No value contains a match of regex."""
    _need_regex(regex)


@expectation("map", "regex_list", needs="string")
def column_values_to_match_regex_list(column: str, regex_list: Sequence[str],
                                      match_on: str = "any", mostly: float = 1.0) -> None:
    """Each value matches any (or all) of the regexes."""
    _need_set(regex_list)
    for r in regex_list:
        _need_regex(r)
    if match_on not in ("any", "all"):
        raise ValueError(f"match_on must be 'any' or 'all', not {match_on!r}")


@expectation("map", "not_regex_list", needs="string")
def column_values_to_not_match_regex_list(column: str, regex_list: Sequence[str],
                                          mostly: float = 1.0) -> None:
    """No value matches any of the regexes."""
    _need_set(regex_list)
    for r in regex_list:
        _need_regex(r)


@expectation("map", "like", needs="string")
def column_values_to_match_like_pattern(column: str, like_pattern: str,
                                        mostly: float = 1.0) -> None:
    """Each value matches the SQL LIKE pattern (``%`` any run, ``_`` one character)."""
    if not isinstance(like_pattern, str):
        raise ValueError(f"like_pattern must be a string, not {like_pattern!r}")


@expectation("map", "not_like", needs="string")
def column_values_to_not_match_like_pattern(column: str, like_pattern: str,
                                            mostly: float = 1.0) -> None:
    """No value matches the SQL LIKE pattern."""
    if not isinstance(like_pattern, str):
        raise ValueError(f"like_pattern must be a string, not {like_pattern!r}")


@expectation("map", "strftime", needs="string")
def column_values_to_match_strftime_format(column: str, strftime_format: str,
                                           mostly: float = 1.0) -> None:
    """Each value parses with ``datetime.strptime(value, strftime_format)``."""
    if not isinstance(strftime_format, str) or "%" not in strftime_format:
        raise ValueError(f"strftime_format must contain % directives, not {strftime_format!r}")


@expectation("map", "dateutil", needs="string")
def column_values_to_be_dateutil_parseable(column: str, mostly: float = 1.0) -> None:
    """Each value parses with ``dateutil.parser.parse``."""


@expectation("map", "lengths_between", needs="string")
def column_value_lengths_to_be_between(column: str, min_value: int | None = None,
                                       max_value: int | None = None, *, strict_min: bool = False,
                                       strict_max: bool = False, mostly: float = 1.0) -> None:
    """Each value's length in characters lies within the bounds."""
    if min_value is None and max_value is None:
        raise ValueError("give min_value, max_value or both")


@expectation("map", "lengths_equal", needs="string")
def column_value_lengths_to_equal(column: str, value: int, mostly: float = 1.0) -> None:
    """Each value has exactly ``value`` characters."""
    if not isinstance(value, int) or value < 0:
        raise ValueError(f"value must be a non-negative int, not {value!r}")


@expectation("map", "increasing")
def column_values_to_be_increasing(column: str, strictly: bool = False,
                                   mostly: float = 1.0) -> None:
    """Each non-null value is >= (or > if strictly) the previous non-null value, in row order."""


@expectation("map", "decreasing")
def column_values_to_be_decreasing(column: str, strictly: bool = False,
                                   mostly: float = 1.0) -> None:
    """Each non-null value is <= (or < if strictly) the previous non-null value, in row order."""


# -- row checks on several columns ----------------------------------------------------------

@expectation("multi", "compound_unique")
def compound_columns_to_be_unique(column_list: Sequence[str], mostly: float = 1.0) -> None:
    """No combination of the columns' values appears twice (rows all null are skipped)."""
    _need_columns(column_list, 1)


@expectation("multi", "pair_greater")
def column_pair_values_a_to_be_greater_than_b(column_A: str, column_B: str,
                                              or_equal: bool = False,
                                              ignore_row_if: str = "both_values_are_missing",
                                              mostly: float = 1.0) -> None:
    """column_A > column_B (>= with or_equal) on each row; a row with one null fails."""
    _need_ignore(ignore_row_if)


# GE spells it with capitals; both spellings work here.
column_pair_values_A_to_be_greater_than_B = column_pair_values_a_to_be_greater_than_b


@expectation("multi", "pair_equal")
def column_pair_values_to_be_equal(column_A: str, column_B: str,
                                   ignore_row_if: str = "both_values_are_missing",
                                   mostly: float = 1.0) -> None:
    """column_A == column_B on each row; a row with one null fails."""
    _need_ignore(ignore_row_if)


@expectation("multi", "multicolumn_sum")
def multicolumn_sum_to_equal(column_list: Sequence[str], sum_total: float,
                             mostly: float = 1.0) -> None:
    """The row sum of the columns (nulls count as 0) equals sum_total; all-null rows skipped."""
    _need_columns(column_list, 1)
    if isinstance(sum_total, bool) or not isinstance(sum_total, int | float):
        raise ValueError(f"sum_total must be a number, not {sum_total!r}")


def _need_ignore(value: str) -> None:
    if value not in ("both_values_are_missing", "either_value_is_missing", "neither"):
        raise ValueError("ignore_row_if must be both_values_are_missing, "
                         f"either_value_is_missing or neither, not {value!r}")


# -- column aggregates ---------------------------------------------------------------------

def _register_agg(name: str, metric: str, doc: str, needs: str | None = "numeric") -> Any:
    # The eight "<metric> to be between" checks share one signature.
    def stub(column: str, min_value: Num = None, max_value: Num = None, *,
             strict_min: bool = False, strict_max: bool = False) -> None:
        pass
    stub.__doc__ = doc
    stub.__name__ = stub.__qualname__ = name
    return expectation("agg", metric, judge=judge_between, needs=needs)(stub)


column_mean_to_be_between = _register_agg(
    "column_mean_to_be_between", "mean", "The mean of the non-null values lies within the bounds.")
column_median_to_be_between = _register_agg(
    "column_median_to_be_between", "median", "The median (linear interpolation) lies within the bounds.")
column_min_to_be_between = _register_agg(
    "column_min_to_be_between", "min", "The smallest value lies within the bounds.", None)
column_max_to_be_between = _register_agg(
    "column_max_to_be_between", "max", "The largest value lies within the bounds.", None)
column_sum_to_be_between = _register_agg(
    "column_sum_to_be_between", "sum", "The sum of the non-null values lies within the bounds.")
column_stdev_to_be_between = _register_agg(
    "column_stdev_to_be_between", "stdev", "The sample standard deviation lies within the bounds.")
column_unique_value_count_to_be_between = _register_agg(
    "column_unique_value_count_to_be_between", "distinct_count",
    "The number of distinct non-null values lies within the bounds.", None)
column_proportion_of_unique_values_to_be_between = _register_agg(
    "column_proportion_of_unique_values_to_be_between", "distinct_share",
    "Distinct non-null values / non-null values lies within the bounds.", None)


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
    if not all(isinstance(x, int | float) and 0 <= x <= 1 for x in q):
        raise ValueError(f"quantiles must be numbers between 0 and 1, not {q!r}")
    for pair in r:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ValueError(f"each value range is [min, max], not {pair!r}")
        if pair[0] is not None and pair[1] is not None and pair[0] > pair[1]:
            raise ValueError(f"value range {list(pair)!r} has min greater than max")


def _judge_subset(kw: dict[str, Any], observed: Any) -> bool:
    return set(observed or []) <= set(kw["value_set"])


def _judge_superset(kw: dict[str, Any], observed: Any) -> bool:
    return set(observed or []) >= set(kw["value_set"])


def _judge_equal_set(kw: dict[str, Any], observed: Any) -> bool:
    return set(observed or []) == set(kw["value_set"])


@expectation("agg", "distinct_values", judge=_judge_subset)
def column_distinct_values_to_be_in_set(column: str, value_set: Sequence[Any]) -> None:
    """Every distinct non-null value is in value_set."""
    _need_set(value_set)


@expectation("agg", "distinct_values", judge=_judge_superset)
def column_distinct_values_to_contain_set(column: str, value_set: Sequence[Any]) -> None:
    """Every value of value_set occurs in the column."""
    _need_set(value_set)


@expectation("agg", "distinct_values", judge=_judge_equal_set)
def column_distinct_values_to_equal_set(column: str, value_set: Sequence[Any]) -> None:
    """The distinct non-null values are exactly value_set."""
    _need_set(value_set)


# -- table and schema ------------------------------------------------------------------------

@expectation("table", "columns", judge=lambda kw, cols: kw["column"] in (cols or []))
def column_to_exist(column: str) -> None:
    """The column exists."""


def _judge_match_set(kw: dict[str, Any], cols: Any) -> bool:
    have, want = set(cols or []), set(kw["column_set"])
    return have == want if kw["exact_match"] else want <= have


@expectation("table", "columns", judge=_judge_match_set)
def table_columns_to_match_set(column_set: Sequence[str], exact_match: bool = True) -> None:
    """The table has exactly these columns (or at least them, with exact_match=False)."""
    _need_columns(column_set, 0)


@expectation("table", "columns", judge=lambda kw, cols: list(cols or []) == list(kw["column_list"]))
def table_columns_to_match_ordered_list(column_list: Sequence[str]) -> None:
    """The table's columns are exactly these, in this order."""
    _need_columns(column_list, 0)


@expectation("table", "column_count", judge=judge_between)
def table_column_count_to_be_between(min_value: int | None = None, max_value: int | None = None, *,
                                     strict_min: bool = False, strict_max: bool = False) -> None:
    """The number of columns lies within the bounds."""


@expectation("table", "column_count", judge=lambda kw, n: n == kw["value"])
def table_column_count_to_equal(value: int) -> None:
    """The table has exactly ``value`` columns."""


@expectation("table", "row_count", judge=judge_between)
def table_row_count_to_be_between(min_value: int | None = None, max_value: int | None = None, *,
                                  strict_min: bool = False, strict_max: bool = False) -> None:
    """The number of rows lies within the bounds."""


@expectation("table", "row_count", judge=lambda kw, n: n == kw["value"])
def table_row_count_to_equal(value: int) -> None:
    """The table has exactly ``value`` rows."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"value must be a non-negative int, not {value!r}")


@expectation("table", "type", judge=lambda kw, t: type_matches(t, [kw["type_"]]))
def column_values_to_be_of_type(column: str, type_: str) -> None:
    """The column's type is type_ (``int``, ``float``, ``str``, ``int64``, ``double``...)."""
    if not isinstance(type_, str):
        raise ValueError(f"type_ must be a type name, not {type_!r}")


@expectation("table", "type", judge=lambda kw, t: type_matches(t, kw["type_list"]))
def column_values_to_be_in_type_list(column: str, type_list: Sequence[str]) -> None:
    """The column's type is one of type_list."""
    _need_set(type_list)


# -- learned from history (declared in expect_history.py, named here: expect.* is one namespace)

table_row_count_to_be_within_history = _history.table_row_count_to_be_within_history
column_mean_to_be_within_history = _history.column_mean_to_be_within_history
column_null_share_to_be_within_history = _history.column_null_share_to_be_within_history
column_distinct_count_to_be_within_history = _history.column_distinct_count_to_be_within_history
