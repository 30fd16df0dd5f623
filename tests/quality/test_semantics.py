"""GE semantics, case by case, on every backend (pandas, Polars, Arrow, DuckDB, Parquet, PostgreSQL)."""

from __future__ import annotations

import json
import statistics
from typing import Any

import pyarrow as pa
import pytest
from qdata import sample_table

from headrace.errors import QualityError
from headrace.quality import Suite, expect

AMOUNTS = [10.0, 20.0, 40.0, -5.0, 60.0, 70.0, 90.0, 1000.0]
REGIONS = ["North", "South", "East", "West", "Central"]


def check(data: Any, e: Any, fmt: str = "BASIC") -> Any:
    return Suite("t", [e]).validate(data, fmt).results[0]


def test_not_null_counts_nulls_and_be_null_the_rest(data: Any) -> None:
    r = check(data, expect.column_values_to_not_be_null("region"))
    assert not r.success
    assert (r.element_count, r.unexpected_count, r.unexpected_percent) == (10, 2, 20.0)
    assert r.partial_unexpected_list == [None, None]
    r = check(data, expect.column_values_to_be_null("region", mostly=0.3))
    assert r.unexpected_count == 8 and not r.success
    assert check(data, expect.column_values_to_not_be_null("id")).success


def test_value_checks_ignore_nulls(data: Any) -> None:
    r = check(data, expect.column_values_to_be_between("amount", min_value=0))
    assert (r.element_count, r.missing_count, r.unexpected_count) == (10, 2, 1)
    assert r.unexpected_percent == pytest.approx(12.5)        # of the 8 non-null values
    assert r.partial_unexpected_list == [-5.0]


@pytest.mark.parametrize("kwargs, unexpected", [
    ({"min_value": 0, "max_value": 100}, [-5.0, 1000.0]),
    ({"min_value": 10}, [-5.0]),                                # inclusive by default
    ({"min_value": 10, "strict_min": True}, [10.0, -5.0]),
    ({"max_value": 90, "strict_max": True}, [90.0, 1000.0]),
    ({"min_value": None, "max_value": 1000}, []),               # None bound is open
])
def test_between_bounds(data: Any, kwargs: dict[str, Any], unexpected: list[float]) -> None:
    r = check(data, expect.column_values_to_be_between("amount", **kwargs))
    assert r.partial_unexpected_list == unexpected
    assert r.success is (not unexpected)


@pytest.mark.parametrize("mostly, success", [(0.875, True), (0.9, False), (0.0, True)])
def test_mostly_is_the_share_of_non_null_values(data: Any, mostly: float, success: bool) -> None:
    r = check(data, expect.column_values_to_be_between("amount", min_value=0, mostly=mostly))
    assert r.success is success


def test_sets_and_uniqueness(data: Any) -> None:
    r = check(data, expect.column_values_to_be_in_set("region", REGIONS))
    assert (r.unexpected_count, r.partial_unexpected_list) == (2, ["Mars", "south"])
    assert r.unexpected_percent == 25.0
    assert check(data, expect.column_values_to_not_be_in_set("region", ["Mars"])).unexpected_count == 1
    r = check(data, expect.column_values_to_be_unique("region"))
    assert r.partial_unexpected_list == ["North", "North"]
    assert check(data, expect.column_values_to_be_unique("id")).success


def test_string_patterns(data: Any) -> None:
    def bad(e: Any) -> list[Any]:
        return list(check(data, e).partial_unexpected_list)

    assert bad(expect.column_values_to_match_regex("code", r"^[A-Z]-\d$")) == ["x", "D-44"]
    assert bad(expect.column_values_to_not_match_regex("code", r"\d\d")) == ["D-44"]
    assert bad(expect.column_values_to_match_regex_list("code", [r"^[A-Z]-\d$", "^x$"])) == ["D-44"]
    assert bad(expect.column_values_to_match_regex_list("code", ["^[A-Z]", r"\d$"], match_on="all")) == ["x"]
    assert bad(expect.column_values_to_not_match_regex_list("code", ["x", "44"])) == ["x", "D-44"]
    assert bad(expect.column_values_to_match_like_pattern("code", "_-_")) == ["x", "D-44"]
    assert bad(expect.column_values_to_not_match_like_pattern("code", "%-44")) == ["D-44"]
    assert bad(expect.column_value_lengths_to_be_between("region", 4, 5)) == ["Central"]
    assert bad(expect.column_value_lengths_to_equal("region", 5)) == ["East", "Mars", "West", "Central"]


def test_dates_parse(data: Any) -> None:
    r = check(data, expect.column_values_to_match_strftime_format("day", "%Y-%m-%d"))
    assert r.partial_unexpected_list == ["2024-13-01", "someday"]
    r = check(data, expect.column_values_to_be_dateutil_parseable("day"))
    assert r.partial_unexpected_list == ["2024-13-01", "someday"]


def test_order_checks_skip_nulls(data: Any) -> None:
    r = check(data, expect.column_values_to_be_increasing("seq"), "COMPLETE")
    assert (r.unexpected_list, r.unexpected_index_list) == ([1.0], [5])
    r = check(data, expect.column_values_to_be_increasing("seq", strictly=True), "COMPLETE")
    assert r.unexpected_index_list == [3, 5]
    assert check(data, expect.column_values_to_be_decreasing("seq")).unexpected_count == 5
    assert check(data, expect.column_values_to_be_increasing("id", strictly=True)).success


def test_aggregates(data: Any) -> None:
    def observed(e: Any) -> Any:
        return check(data, e).observed_value

    assert observed(expect.column_mean_to_be_between("amount", 0, 200)) == pytest.approx(1285 / 8)
    assert observed(expect.column_median_to_be_between("amount", 0, 200)) == pytest.approx(50.0)
    assert observed(expect.column_min_to_be_between("amount", -10, 0)) == -5.0
    assert observed(expect.column_max_to_be_between("amount", 0, 2000)) == 1000.0
    assert observed(expect.column_sum_to_be_between("amount", 0, 2000)) == pytest.approx(1285.0)
    assert observed(expect.column_stdev_to_be_between("amount", 0, 1000)) == \
        pytest.approx(statistics.stdev(AMOUNTS))
    q = observed(expect.column_quantile_values_to_be_between(
        "amount", {"quantiles": [0.25, 0.5, 0.9], "value_ranges": [[0, 20], [0, 50], [0, 2000]]}))
    assert q == {"quantiles": [0.25, 0.5, 0.9], "values": [10.0, 40.0, 1000.0]}
    assert observed(expect.column_unique_value_count_to_be_between("region", 7, 7)) == 7
    assert observed(expect.column_proportion_of_unique_values_to_be_between("region", 0, 1)) == 7 / 8
    assert not check(data, expect.column_mean_to_be_between("amount", min_value=800)).success
    assert check(data, expect.column_mean_to_be_between("amount", max_value=160.625)).success
    assert not check(data, expect.column_mean_to_be_between("amount", max_value=160.625,
                                                             strict_max=True)).success


def test_distinct_sets(data: Any) -> None:
    seen = REGIONS + ["Mars", "south"]
    assert check(data, expect.column_distinct_values_to_be_in_set("region", seen)).success
    assert not check(data, expect.column_distinct_values_to_be_in_set("region", REGIONS)).success
    assert check(data, expect.column_distinct_values_to_contain_set("region", ["Mars"])).success
    r = check(data, expect.column_distinct_values_to_equal_set("region", seen))
    assert r.success and r.observed_value == sorted(seen)


def test_table_and_schema(data: Any) -> None:
    cols = list(sample_table().schema.names)
    assert check(data, expect.table_row_count_to_equal(10)).success
    assert check(data, expect.table_row_count_to_be_between(min_value=10, max_value=10)).success
    assert not check(data, expect.table_row_count_to_be_between(min_value=11)).success
    assert check(data, expect.table_columns_to_match_ordered_list(cols)).success
    assert not check(data, expect.table_columns_to_match_ordered_list(cols[::-1])).success
    assert check(data, expect.table_columns_to_match_set(cols[::-1])).success
    assert check(data, expect.table_columns_to_match_set(["id"], exact_match=False)).success
    assert check(data, expect.table_column_count_to_equal(len(cols))).success
    assert check(data, expect.table_column_count_to_be_between(1, 20)).success
    assert check(data, expect.column_to_exist("code")).success
    assert not check(data, expect.column_to_exist("nope")).success
    assert check(data, expect.column_values_to_be_of_type("region", "str")).success
    assert check(data, expect.column_values_to_be_of_type("amount", "float64")).success
    assert check(data, expect.column_values_to_be_in_type_list("a", ["int", "float"])).success
    assert not check(data, expect.column_values_to_be_of_type("a", "string")).success


def test_multicolumn(data: Any) -> None:
    r = check(data, expect.column_pair_values_a_to_be_greater_than_b("a", "b"))
    assert r.unexpected_count == 3
    assert r.partial_unexpected_list == [[8, 8], [9, 10], [5, 6]]     # GX lists a pair as [A, B]
    assert check(data, expect.column_pair_values_a_to_be_greater_than_b("a", "b", or_equal=True)).unexpected_count == 2
    assert check(data, expect.column_pair_values_to_be_equal("a", "b")).unexpected_count == 9
    assert check(data, expect.compound_columns_to_be_unique(["a", "b"])).success
    r = check(data, expect.compound_columns_to_be_unique(["region"]))
    assert (r.unexpected_count, r.missing_count) == (2, 2)


def test_multicolumn_sum(to_data: Any) -> None:
    data = to_data(pa.table({"x": pa.array([1, 2, None, None], pa.int64()),
                             "y": pa.array([2, 1, 3, None], pa.int64())}))
    r = check(data, expect.multicolumn_sum_to_equal(["x", "y"], 3), "COMPLETE")
    # A row with a null among the columns has no sum (GX): unexpected, unless ignored.
    assert (r.unexpected_list, r.missing_count) == ([{"x": None, "y": 3}], 1)
    r = check(data, expect.multicolumn_sum_to_equal(["x", "y"], 3, ignore_row_if="any_value_is_missing"))
    assert r.success and r.missing_count == 2
    assert check(data, expect.multicolumn_sum_to_equal(["x", "y"], 4)).unexpected_count == 3


def test_missing_column_and_wrong_type_fail_with_reason(data: Any) -> None:
    r = check(data, expect.column_values_to_be_between("revenue", min_value=0))
    assert not r.success
    assert "'revenue' not found" in r.exception_info and "amount" in r.exception_info
    r = check(data, expect.column_values_to_match_regex("amount", "x"))
    assert not r.success and "needs a string column" in r.exception_info
    r = check(data, expect.column_mean_to_be_between("region", 0, 1))
    assert "needs a numeric column" in r.exception_info
    r = check(data, expect.column_values_to_be_between("region", min_value=0))
    assert "cannot be compared" in r.exception_info


def test_empty_input(to_data: Any) -> None:
    data = to_data(sample_table().slice(0, 0))
    result = Suite("t", [
        expect.column_values_to_not_be_null("id"),
        expect.column_values_to_be_between("amount", min_value=0),
        expect.column_mean_to_be_between("amount", 0, 10),
        expect.table_row_count_to_be_between(min_value=1),
        expect.table_row_count_to_equal(0),
    ]).validate(data)
    assert [r.success for r in result] == [True, True, False, False, True]
    assert result[0].element_count == 0 and result[2].observed_value is None


def test_result_formats(data: Any) -> None:
    e = expect.column_values_to_be_in_set("region", REGIONS)
    assert check(data, e, "BOOLEAN_ONLY").result == {}
    summary = check(data, e, "SUMMARY").result
    assert summary["partial_unexpected_counts"] == [{"value": "Mars", "count": 1}, {"value": "south", "count": 1}]
    assert summary["partial_unexpected_index_list"] == [4, 9]
    complete = check(data, e, "COMPLETE").result
    assert complete["unexpected_index_list"] == [4, 9]
    assert complete["unexpected_list"] == ["Mars", "south"]


def test_partial_list_stops_at_twenty(to_data: Any) -> None:
    data = to_data(pa.table({"v": pa.array(list(range(-30, 10)), pa.int64())}))
    r = check(data, expect.column_values_to_be_between("v", min_value=0))
    assert r.unexpected_count == 30 and r.partial_unexpected_list == list(range(-30, -10))


def full_suite() -> Suite:
    return Suite("all", [
        expect.column_values_to_not_be_null("region"),
        expect.column_values_to_be_between("amount", min_value=0, max_value=100, mostly=0.5),
        expect.column_values_to_be_in_set("region", REGIONS),
        expect.column_values_to_be_unique("region"),
        expect.column_values_to_match_regex("code", r"^[A-Z]-\d$"),
        expect.column_values_to_match_strftime_format("day", "%Y-%m-%d"),
        expect.column_values_to_be_increasing("seq"),
        expect.column_mean_to_be_between("amount", 800, 2500),
        expect.column_median_to_be_between("amount", 0, 100),
        expect.column_stdev_to_be_between("amount", 0, 1000),
        expect.column_quantile_values_to_be_between(
            "amount", {"quantiles": [0.1, 0.5], "value_ranges": [[None, 0], [0, 100]]}),
        expect.column_unique_value_count_to_be_between("region", 1, 5),
        expect.column_distinct_values_to_be_in_set("region", REGIONS),
        expect.table_row_count_to_be_between(min_value=1000, max_value=50000),
        expect.table_columns_to_match_set(list(sample_table().schema.names)),
        expect.compound_columns_to_be_unique(["a", "b"]),
        expect.column_pair_values_a_to_be_greater_than_b("a", "b"),
        expect.column_values_to_be_between("nope", min_value=1),
    ])


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items() if k != "statistics"}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def test_every_backend_gives_identical_results(data: Any) -> None:
    reference = full_suite().validate(sample_table(), "COMPLETE").to_dict()
    got = full_suite().validate(data, "COMPLETE").to_dict()
    for ref, res in zip(reference["results"], got["results"], strict=True):
        assert json.dumps(_rounded(res), sort_keys=True) == json.dumps(_rounded(ref), sort_keys=True)
    assert got["success"] is False


def test_bad_arguments_are_rejected_when_the_suite_is_built() -> None:
    with pytest.raises(QualityError, match="greater than max_value"):
        expect.column_values_to_be_between("x", min_value=5, max_value=1)
    with pytest.raises(QualityError, match="mostly"):
        expect.column_values_to_not_be_null("x", mostly=1.5)
    with pytest.raises(QualityError, match="does not compile"):
        expect.column_values_to_match_regex("x", "(")
    with pytest.raises(QualityError, match="unexpected keyword"):
        expect.column_values_to_be_in_set("x", ["a"], colour="red")
    with pytest.raises(QualityError, match="on_failure"):
        Suite("s", [], on_failure="explode")  # type: ignore[arg-type]


def test_split_returns_same_kind_with_failed_check_names(data: Any, backend: str) -> None:
    suite = Suite("s", [
        expect.column_values_to_not_be_null("region"),
        expect.column_values_to_be_between("amount", min_value=0),
        expect.column_values_to_be_in_set("region", REGIONS),
        expect.column_mean_to_be_between("amount", 800, 2500),   # aggregate: not part of split
    ])
    good, bad = suite.split(data)
    if backend in ("pandas", "polars", "arrow"):
        assert type(good) is type(data) and type(bad) is type(data)
    good_t, bad_t = (_arrow(good), _arrow(bad))
    assert good_t.num_rows + bad_t.num_rows == 10
    assert good_t.column("id").to_pylist() == [1, 2, 4, 6, 7, 8]
    assert bad_t.column("id").to_pylist() == [3, 5, 9, 10]
    assert bad_t.column("_failed_checks").to_pylist() == [
        "column_values_to_not_be_null(region)",
        "column_values_to_be_between(amount); column_values_to_be_in_set(region)",
        "column_values_to_not_be_null(region)",
        "column_values_to_be_in_set(region)",
    ]
    assert "_failed_checks" not in good_t.schema.names


def _arrow(frame: Any) -> pa.Table:
    if isinstance(frame, pa.Table):
        return frame
    if hasattr(frame, "to_arrow"):
        return frame.to_arrow()
    return pa.Table.from_pandas(frame, preserve_index=False)


def test_dates_compare_with_date_bounds(to_data: Any) -> None:
    import datetime as dt

    days = pa.array([dt.date(2024, 1, d) for d in (1, 5, 9)] + [None], pa.date32())
    data = to_data(pa.table({"d": days}))
    r = check(data, expect.column_values_to_be_between("d", min_value=dt.date(2024, 1, 2)))
    assert (r.unexpected_count, r.partial_unexpected_list) == (1, ["2024-01-01"])  # JSON-safe
    assert check(data, expect.column_max_to_be_between("d", max_value=dt.date(2024, 1, 9))).success
    r = check(data, expect.column_values_to_be_between("d", min_value="2024-01-02"))   # date text
    assert (r.unexpected_count, r.partial_unexpected_list) == (1, ["2024-01-01"])
    assert not check(data, expect.column_max_to_be_between("d", min_value="2024-01-10")).success
    r = check(data, expect.column_values_to_be_between("d", min_value="quack"))
    assert "min_value 'quack' is not a date" in r.exception_info


def test_odd_names_and_hostile_values_stay_data(to_data: Any) -> None:
    table = pa.table({"Order Total": pa.array([1.0, -2.0, 3.0]),
                      "Region Name": pa.array(["x'; DROP TABLE t; --", "North", "South"])})
    data = to_data(table)
    suite = Suite("s", [
        expect.column_values_to_be_between("Order Total", min_value=0, name='total "positive"'),
        expect.column_values_to_be_in_set("Region Name", ["North", "South", "x'; DROP TABLE t; --"]),
    ])
    result = suite.validate(data)
    assert [r.unexpected_count for r in result] == [1, 0]
    good, bad = suite.split(data)
    assert _arrow(bad).column("_failed_checks").to_pylist() == ['total "positive"']
