"""The check types, with Great Expectations names and arguments.

``expect.column_values_to_be_between("revenue", min_value=0)`` builds the check
GE calls ``expect_column_values_to_be_between``. Column value checks ignore
nulls (only the null checks look at them) and pass when the share of non-null
values that pass is at least ``mostly``. Bounds are inclusive unless
``strict_min``/``strict_max``; a ``None`` bound or set means "no constraint".

Every check also takes ``result_format``, ``catch_exceptions`` and ``include_config``;
checks that read rows take ``row_condition`` (``"amount > 0 & region == 'EU'"``) with
``condition_parser`` ``"pandas"`` or ``"great_expectations"`` (``col("amount") > 0``):
only the rows matching the condition are checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from headrace.quality import arguments as args
from headrace.quality import expect_history as _history
from headrace.quality import expect_table as _table
from headrace.quality.expectation import expectation

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
    """Each value lies within [min_value, max_value] (numbers, strings, dates or date text)."""
    args.need_bounds(locals(), "any", required=True)


@expectation("map", "in_set")
def column_values_to_be_in_set(column: str, value_set: Sequence[Any] | None,
                               mostly: float = 1.0) -> None:
    """Each value is one of value_set (``None``: any value)."""
    args.need_set("value_set", value_set)


@expectation("map", "not_in_set")
def column_values_to_not_be_in_set(column: str, value_set: Sequence[Any],
                                   mostly: float = 1.0) -> None:
    """No value is one of value_set."""
    args.need_set("value_set", value_set, optional=False)


@expectation("map", "unique")
def column_values_to_be_unique(column: str, mostly: float = 1.0) -> None:
    """No non-null value appears twice (every copy of a repeated value is unexpected)."""


@expectation("map", "regex", needs="string")
def column_values_to_match_regex(column: str, regex: str, mostly: float = 1.0) -> None:
    """Each value contains a match of regex (search, not full match, as in GE)."""
    args.need_regex("regex", regex)


@expectation("map", "not_regex", needs="string")
def column_values_to_not_match_regex(column: str, regex: str, mostly: float = 1.0) -> None:
    """No value contains a match of regex."""
    args.need_regex("regex", regex)


@expectation("map", "regex_list", needs="string")
def column_values_to_match_regex_list(column: str, regex_list: Sequence[str],
                                      match_on: str = "any", mostly: float = 1.0) -> None:
    """Each value matches any (or all) of the regexes."""
    args.need_set("regex_list", regex_list, optional=False)
    for r in regex_list:
        args.need_regex("regex_list item", r)
    if match_on not in ("any", "all"):
        raise ValueError(f"match_on must be 'any' or 'all', not {match_on!r}")


@expectation("map", "not_regex_list", needs="string")
def column_values_to_not_match_regex_list(column: str, regex_list: Sequence[str],
                                          mostly: float = 1.0) -> None:
    """No value matches any of the regexes."""
    args.need_set("regex_list", regex_list, optional=False)
    for r in regex_list:
        args.need_regex("regex_list item", r)


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
    args.need_strftime(strftime_format)


@expectation("map", "dateutil", needs="string")
def column_values_to_be_dateutil_parseable(column: str, mostly: float = 1.0) -> None:
    """Each value parses with ``dateutil.parser.parse``."""


@expectation("map", "lengths_between", needs="string")
def column_value_lengths_to_be_between(column: str, min_value: int | None = None,
                                       max_value: int | None = None, *, strict_min: bool = False,
                                       strict_max: bool = False, mostly: float = 1.0) -> None:
    """Each value's length in characters lies within the bounds (min above max: none can)."""
    args.need_bounds(locals(), "int", required=True, ordered=False)


@expectation("map", "lengths_equal", needs="string")
def column_value_lengths_to_equal(column: str, value: int, mostly: float = 1.0) -> None:
    """Each value has exactly ``value`` characters."""
    args.need_count("value", value)


@expectation("map", "increasing")
def column_values_to_be_increasing(column: str, strictly: bool = False,
                                   mostly: float = 1.0) -> None:
    """Each non-null value is >= (or > if strictly) the previous non-null value, in row order."""


@expectation("map", "decreasing")
def column_values_to_be_decreasing(column: str, strictly: bool = False,
                                   mostly: float = 1.0) -> None:
    """Each non-null value is <= (or < if strictly) the previous non-null value, in row order."""


# -- row checks on several columns ----------------------------------------------------------
# ignore_row_if: GX's words for pairs (both_values_are_missing, either_value_is_missing,
# neither) and for column lists (all_values_are_missing, any_value_is_missing, never) both
# work for either; an ignored row counts as missing.

@expectation("multi", "compound_unique")
def compound_columns_to_be_unique(column_list: Sequence[str], mostly: float = 1.0,
                                  ignore_row_if: str = "all_values_are_missing") -> None:
    """No combination of the columns' values appears twice."""
    args.need_columns("column_list", column_list, 1)
    args.need_ignore(ignore_row_if, args.MULTI_IGNORE)


@expectation("multi", "pair_greater")
def column_pair_values_a_to_be_greater_than_b(column_A: str, column_B: str,
                                              or_equal: bool = False,
                                              ignore_row_if: str = "both_values_are_missing",
                                              mostly: float = 1.0) -> None:
    """column_A > column_B (>= with or_equal) on each row; a row with one null fails."""
    args.need_ignore(ignore_row_if, args.PAIR_IGNORE)


# GE spells it with capitals; both spellings work here.
column_pair_values_A_to_be_greater_than_B = column_pair_values_a_to_be_greater_than_b


@expectation("multi", "pair_equal")
def column_pair_values_to_be_equal(column_A: str, column_B: str,
                                   ignore_row_if: str = "both_values_are_missing",
                                   mostly: float = 1.0) -> None:
    """column_A == column_B on each row; a row with one null fails."""
    args.need_ignore(ignore_row_if, args.PAIR_IGNORE)


@expectation("multi", "multicolumn_sum")
def multicolumn_sum_to_equal(column_list: Sequence[str], sum_total: float,
                             ignore_row_if: str = "all_values_are_missing",
                             mostly: float = 1.0) -> None:
    """The row sum of the columns equals sum_total; a row with a null among them fails."""
    args.need_columns("column_list", column_list, 1)
    args.need_number("sum_total", sum_total)
    args.need_ignore(ignore_row_if, args.MULTI_IGNORE)


# -- aggregates, types, table and schema (declared in expect_table.py) -----------------------

column_mean_to_be_between = _table.column_mean_to_be_between
column_median_to_be_between = _table.column_median_to_be_between
column_min_to_be_between = _table.column_min_to_be_between
column_max_to_be_between = _table.column_max_to_be_between
column_sum_to_be_between = _table.column_sum_to_be_between
column_stdev_to_be_between = _table.column_stdev_to_be_between
column_unique_value_count_to_be_between = _table.column_unique_value_count_to_be_between
column_proportion_of_unique_values_to_be_between = _table.column_proportion_of_unique_values_to_be_between
column_quantile_values_to_be_between = _table.column_quantile_values_to_be_between
column_distinct_values_to_be_in_set = _table.column_distinct_values_to_be_in_set
column_distinct_values_to_contain_set = _table.column_distinct_values_to_contain_set
column_distinct_values_to_equal_set = _table.column_distinct_values_to_equal_set
column_to_exist = _table.column_to_exist
table_columns_to_match_set = _table.table_columns_to_match_set
table_columns_to_match_ordered_list = _table.table_columns_to_match_ordered_list
table_column_count_to_be_between = _table.table_column_count_to_be_between
table_column_count_to_equal = _table.table_column_count_to_equal
table_row_count_to_be_between = _table.table_row_count_to_be_between
table_row_count_to_equal = _table.table_row_count_to_equal
column_values_to_be_of_type = _table.column_values_to_be_of_type
column_values_to_be_in_type_list = _table.column_values_to_be_in_type_list

# -- learned from history (declared in expect_history.py, named here: expect.* is one namespace)

table_row_count_to_be_within_history = _history.table_row_count_to_be_within_history
column_mean_to_be_within_history = _history.column_mean_to_be_within_history
column_null_share_to_be_within_history = _history.column_null_share_to_be_within_history
column_distinct_count_to_be_within_history = _history.column_distinct_count_to_be_within_history
