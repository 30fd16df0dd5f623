"""The corners GX users rely on: argument handling, types, nulls, dates, pairs, parameters."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from headrace.errors import QualityError
from headrace.quality import PandasDataset, Suite, expect


def check(data: Any, e: Any, fmt: str = "COMPLETE") -> Any:
    return Suite("t", [e]).validate(data, fmt).results[0]


def test_type_by_keyword_in_expect_dataset_and_yaml() -> None:
    df = pd.DataFrame({"x": [1, 2, 4], "z": ["a", "b", None]}).astype({"z": object})
    assert check(df, expect.column_values_to_be_of_type(column="x", type_="int")).success
    assert PandasDataset(df).expect_column_values_to_be_of_type(column="x", type_="int64").success
    suite = Suite.from_yaml("suite: t\nexpectations:\n"
                            "  - expect_column_values_to_be_of_type: {column: z, type_: O}\n")
    r = suite.validate(df)[0]
    assert r.success and r.observed_value == "object_"          # NumPy's name, as GX shows it


@pytest.mark.parametrize("type_, success", [
    ("object", True), ("object_", True), ("O", True), ("str", True), ("int", False)])
def test_pandas_object_columns_take_pandas_type_names(type_: str, success: bool) -> None:
    df = pd.DataFrame({"z": ["hello", "jello", "mello"]}).astype({"z": np.dtype("O")})
    assert check(df, expect.column_values_to_be_of_type("z", type_)).success is success


def test_object_columns_are_judged_value_by_value() -> None:
    df = pd.DataFrame({"s": ["a", 1, None, 2.5]}, dtype=object)
    r = check(df, expect.column_values_to_be_in_type_list("s", ["int", "float"]))
    assert (r.success, r.unexpected_list, r.unexpected_index_list) == (False, ["a"], [0])
    assert check(df, expect.column_values_to_be_in_type_list("s", None)).success    # no constraint


def test_time_zones_in_type_checks() -> None:
    ts = pd.to_datetime(pd.Series(["2024-01-01T10:00:00Z", None]), utc=True)
    df = pd.DataFrame({"aware": ts, "naive": ts.dt.tz_localize(None)})
    assert check(df, expect.column_values_to_be_of_type("aware", "Timestamp")).success
    assert check(df, expect.column_values_to_be_of_type("aware", "datetime64[ns, UTC]")).success
    assert not check(df, expect.column_values_to_be_of_type("aware", "datetime64")).success
    assert check(df, expect.column_values_to_be_of_type("naive", "datetime64")).success
    assert check(pa.Table.from_pandas(df), expect.column_values_to_be_of_type("aware", "timestamp")).success


def test_all_null_and_empty_columns_pass_value_checks(to_data: Any) -> None:
    table = pa.table({"n": pa.array([None, None], pa.string()), "k": pa.array([None, None], pa.int64())})
    data = to_data(table)
    for e in (expect.column_values_to_match_regex("n", "^a"), expect.column_values_to_be_in_set("k", ["x"]),
              expect.column_values_to_be_between("n", min_value=0), expect.column_value_lengths_to_equal("n", 3),
              expect.column_values_to_be_unique("n"), expect.column_values_to_be_increasing("k")):
        r = check(data, e)
        assert r.success and r.exception_info is None and r.missing_count == 2, e
    empty = pd.DataFrame({"empty": []})
    assert check(empty, expect.column_values_to_be_in_set("empty", ["cat"])).success
    r = check(empty, expect.column_max_to_be_between("empty", 0, 0))
    assert not r.success and r.observed_value is None


def test_booleans_count_as_one_in_mean_and_sum(to_data: Any) -> None:
    data = to_data(pa.table({"b": pa.array([True, False, None, True])}))
    assert check(data, expect.column_mean_to_be_between("b", 0.6, 0.7)).observed_value == pytest.approx(2 / 3)
    assert check(data, expect.column_sum_to_be_between("b", 2, 2)).success


def test_datetime_columns_take_date_text_bounds(to_data: Any) -> None:
    ts = pa.array([dt.datetime(2000, 1, 1, 12), dt.datetime(2001, 1, 1, 12, 0, 1), None], pa.timestamp("us"))
    data = to_data(pa.table({"ts": ts}))
    r = check(data, expect.column_max_to_be_between("ts", min_value="2001-01-01T12:00:01",
                                                     max_value="2001-01-01 12:00:01"))
    assert r.success and r.observed_value == "2001-01-01T12:00:01"
    r = check(data, expect.column_values_to_be_between("ts", min_value="Jan 01 2001"))
    assert r.unexpected_list == ["2000-01-01T12:00:00"]
    r = check(data, expect.column_min_to_be_between("ts", max_value="quack"))
    assert "max_value 'quack' is not a date" in r.exception_info


def test_pairs_with_a_mixed_pandas_column_list_the_unequal_pairs() -> None:
    df = pd.DataFrame({"x": list(range(1, 11)), "y": [*range(1, 10), "abc"]})
    r = check(df, expect.column_pair_values_to_be_equal("x", "y"))
    assert (r.success, r.unexpected_list, r.unexpected_index_list) == (False, [[10, "abc"]], [9])


def test_pairs_of_different_kinds_on_typed_data_fail_with_the_reason(to_data: Any) -> None:
    data = to_data(pa.table({"x": pa.array([1, 2], pa.int64()), "y": pa.array(["1", "2"])}))
    r = check(data, expect.column_pair_values_to_be_equal("x", "y"))
    assert not r.success and r.exception_info


def test_ignore_row_if_on_compound_and_multicolumn_checks(to_data: Any) -> None:
    data = to_data(pa.table({"a": pa.array([1, 1, None, None], pa.int64()),
                             "b": pa.array([2, 2, 3, 3], pa.int64())}))
    rules = {"all_values_are_missing": (4, 4), "any_value_is_missing": (2, 2), "never": (4, 4)}
    for rule, (bad, nonmissing) in rules.items():
        r = check(data, expect.compound_columns_to_be_unique(["a", "b"], ignore_row_if=rule))
        assert (r.unexpected_count, r.element_count - r.missing_count) == (bad, nonmissing), rule
    r = check(data, expect.multicolumn_sum_to_equal(["a", "b"], 3, ignore_row_if="either_value_is_missing"))
    assert r.success and r.missing_count == 2
    with pytest.raises(QualityError, match="ignore_row_if must be one of"):
        expect.compound_columns_to_be_unique(["a"], ignore_row_if="sometimes")


def test_column_index_on_column_to_exist(to_data: Any) -> None:
    data = to_data(pa.table({"c1": [1], "c2": ["a"]}))
    assert check(data, expect.column_to_exist("c2", column_index=1)).success
    assert not check(data, expect.column_to_exist("c2", column_index=0)).success
    with pytest.raises(QualityError, match="column_index must be a non-negative integer"):
        expect.column_to_exist("c2", column_index=-1)


@pytest.mark.parametrize("build, argument", [
    (lambda: expect.column_min_to_be_between("y"), "min_value and max_value cannot both be None"),
    (lambda: expect.column_max_to_be_between("y", min_value=None, max_value=None), "cannot both be None"),
    (lambda: expect.table_row_count_to_be_between(max_value="quack"), "max_value must be an integer"),
    (lambda: expect.table_column_count_to_equal(value="hello"), "value must be a non-negative integer"),
    (lambda: expect.column_values_to_match_strftime_format("d", "%D"), "strftime_format '%D'"),
    (lambda: expect.column_mean_to_be_between("x", min_value="s"), "min_value must be a number"),
    (lambda: expect.column_values_to_not_be_in_set("x", None), "value_set must be a list"),
    (lambda: expect.multicolumn_sum_to_equal(["a"], 4, mostly="One"), "mostly must be a number"),
    (lambda: expect.column_value_lengths_to_be_between(min_value="quack"), "min_value must be an integer"),
    (lambda: expect.column_values_to_be_between("x", 10, 0), "min_value 10 is greater than max_value 0"),
    (lambda: expect.column_values_to_be_between("x", 1, result_format="EVERYTHING"), "result_format"),
])
def test_bad_configuration_names_the_argument_when_built(build: Any, argument: str) -> None:
    with pytest.raises(QualityError, match="^expect_") as err:
        build()
    assert argument in str(err.value)


def test_none_means_no_constraint(to_data: Any) -> None:
    data = to_data(pa.table({"c1": [1, 5], "c2": ["a", "b"]}))
    for e in (expect.column_values_to_be_in_set("c2", None), expect.column_distinct_values_to_be_in_set("c2", None),
              expect.table_columns_to_match_ordered_list(None), expect.column_mean_to_be_between("c1"),
              expect.table_row_count_to_be_between(), expect.column_values_to_be_between("c1", None, 5),
              expect.table_columns_to_match_set(None, exact_match=False)):
        assert check(data, e).success, e
    r = check(data, expect.table_columns_to_match_set(None))       # exact: no column is allowed
    assert not r.success and r.result["details"] == {"mismatched": {"unexpected": ["c1", "c2"]}}


def test_parameters_resolve_when_the_suite_runs() -> None:
    df = pd.DataFrame({"ts": pd.to_datetime(["2024-06-01", "2024-06-30"])})
    fresh = expect.column_max_to_be_between("ts", min_value={"$PARAMETER": "now() - timedelta(days=7)"})
    assert Suite("p", [fresh]).validate(df, now=dt.datetime(2024, 7, 2))[0].success
    assert not Suite("p", [fresh]).validate(df, now=dt.datetime(2024, 8, 1))[0].success
    low = expect.column_values_to_be_between("ts", min_value={"$PARAMETER": "start"})
    assert Suite("p", [low]).validate(df, parameters={"start": "2024-06-15"})[0].unexpected_count == 1
    with pytest.raises(QualityError, match="parameter 'start' was not given"):
        Suite("p", [low]).validate(df)
    with pytest.raises(QualityError, match=r"min_value: \$PARAMETER"):
        expect.column_max_to_be_between("ts", min_value={"$PARAMETER": "__import__('os')"})


def test_per_check_result_format_and_gx_options_are_accepted() -> None:
    df = pd.DataFrame({"x": [1, 20]})
    e = expect.column_values_to_be_between("x", 0, 10, result_format="COMPLETE", catch_exceptions=True,
                                           include_config=True, meta={"owner": "ops"})
    r = Suite("t", [e]).validate(df, "BOOLEAN_ONLY")[0]
    assert r.unexpected_list == [20] and e.meta == {"owner": "ops"}
    r = PandasDataset(df).expect_column_values_to_be_between("x", 0, 10, result_format={"result_format": "SUMMARY"})
    assert r.partial_unexpected_counts == [{"value": 20, "count": 1}]


def test_results_read_like_gx_results() -> None:
    r = PandasDataset(pd.DataFrame({"x": [1, 5]})).expect_column_values_to_be_in_set(
        "x", [1], result_format="COMPLETE")
    assert r["success"] is False and r["result"]["unexpected_list"] == [5]
    assert r.to_json_dict()["result"]["unexpected_index_list"] == [1]
    with pytest.raises(KeyError, match="a result has success"):
        r["nope"]
