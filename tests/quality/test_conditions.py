"""row_condition: the same rows on every backend, parsed safely, and never blamed in a gate."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from gx_backends import in_databases
from gx_cases import BACKENDS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headrace.errors import QualityError
from headrace.quality import DuckDBTable, PandasDataset, Suite, expect
from headrace.quality.backends.sources import DuckDBRelation
from headrace.quality.backends.sql import SqlSource

TABLE = pa.table({
    "id": pa.array(range(8), pa.int64()),
    "x": pa.array([1, 2, None, 4, 5, 6, None, 8], pa.int64()),
    "f": pa.array([0.5, None, 2.5, 3.5, 4.5, None, 6.5, 7.5]),
    "s": pa.array(["a", "b", None, "a", "c", "b", "a", None]),
    "ok": pa.array([True, False, True, None, False, True, True, False]),
    "day": pa.array([dt.date(2024, 1, d) for d in range(1, 9)], pa.date32()),
})


def rows_inside(data: Any, condition: str, parser: str = "pandas") -> list[int]:
    """The row positions a condition selects, through the public API on any backend."""
    e = expect.column_values_to_be_null("id", row_condition=condition, condition_parser=parser)
    r = Suite("c", [e]).validate(data, "COMPLETE").results[0]
    assert r.exception_info is None, r.exception_info
    return sorted(r.unexpected_index_list)


PG_URL = os.environ.get("HEADRACE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CONDITIONS = [
    ("x > 4", "pandas", [4, 5, 7]),
    ("x != 4", "pandas", [0, 1, 2, 4, 5, 6, 7]),             # nulls are unequal to everything
    ("s == 'a' & f < 4", "pandas", [0, 3]),
    ("s == 'a' and f < 4 or x == 8", "pandas", [0, 3, 7]),
    ("~(s == 'a') | x.isnull()", "pandas", [1, 2, 4, 5, 6, 7]),
    ("s in ['b', 'c']", "pandas", [1, 4, 5]),
    ("s not in ['b', 'c']", "pandas", [0, 2, 3, 6, 7]),
    ("x == [1, 2]", "pandas", [0, 1]),
    ("ok", "pandas", [0, 2, 5, 6]),
    ("1 < x <= 5", "pandas", [1, 3, 4]),
    ("x > f", "pandas", [0, 3, 4, 7]),
    ("day >= '2024-01-07'", "pandas", [6, 7]),
    ("`s`.notnull() & x == 1.0", "pandas", [0]),
    ("x == '1'", "pandas", []),                               # a number never equals text
    ('col("x") > 4', "great_expectations", [4, 5, 7]),
    ('col("x") != 4', "great_expectations", [0, 1, 4, 5, 7]),  # GX parser: nulls match nothing
    ('col("s") == "a" AND col("f") < 4', "great_expectations", [0, 3]),
    ('col("s").notnull() and not col("s") == "a"', "great_expectations", [1, 4, 5]),
    ('col("day") < date("2024-01-03")', "great_expectations", [0, 1]),
]


@pytest.fixture(scope="module")
def everywhere(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """TABLE on every backend, loaded once for the module."""
    import polars as pl

    with in_databases({"t": TABLE}, tmp_path_factory.mktemp("cond"), PG_URL) as sql_data:
        yield {"pandas": TABLE.to_pandas(), "polars": pl.from_arrow(TABLE), "arrow": TABLE,
               **{b: d["t"] for b, d in sql_data.items()}}


@pytest.mark.parametrize("backend", BACKENDS)
def test_conditions_select_the_same_rows_everywhere(everywhere: dict[str, Any], backend: str) -> None:
    checks = [expect.column_values_to_be_null("id", row_condition=c, condition_parser=p, name=f"{p}: {c}")
              for c, p, _ in CONDITIONS]
    result = Suite("c", checks).validate(everywhere[backend], "COMPLETE")
    got = {r.name: (r.exception_info or sorted(r.unexpected_index_list)) for r in result}
    assert got == {f"{p}: {c}": rows for c, p, rows in CONDITIONS}


def test_condition_parser_is_guessed_from_col_calls() -> None:
    e = expect.column_values_to_be_null("id", row_condition='col("x") > 4')
    assert Suite("c", [e]).validate(TABLE, "COMPLETE")[0].unexpected_index_list == [4, 5, 7]


@pytest.mark.parametrize("condition, parser, message", [
    ("x >", "pandas", "position 3"),
    ("x > 1 &", "pandas", "position 7"),
    ("x.startswith('a')", "pandas", "unknown method 'startswith'"),
    ("x + 1 > 2", "pandas", "arithmetic ('+' at position 2)"),
    ("@limit > x", "pandas", "unexpected character '@'"),
    ("__import__('os').system('touch /tmp/hr_pwned')", "pandas", "row_condition"),
    ("x > 1; import os", "pandas", "unexpected character ';'"),
    ("lambda: x", "pandas", "row_condition"),
    ("x == None", "pandas", None),
    ("x > 4", "great_expectations", 'expected col("name")'),
    ('col(x) > 4', "great_expectations", "column name in quotes"),
    ("x > 4", "sql", "condition_parser must be one of"),
])
def test_bad_conditions_are_errors_naming_the_argument(condition: str, parser: str,
                                                      message: str | None) -> None:
    if message is None:     # parses; the comparison with None is refused when it runs
        r = Suite("c", [expect.column_values_to_be_null("id", row_condition=condition,
                                                        condition_parser=parser)]).validate(TABLE)
        assert "use x.isnull()" in r[0].exception_info
        return
    with pytest.raises(QualityError, match="row_condition|condition_parser") as err:
        expect.column_values_to_be_null("id", row_condition=condition, condition_parser=parser)
    assert message in str(err.value)
    assert not __import__("os").path.exists("/tmp/hr_pwned")


@pytest.mark.parametrize("backend", BACKENDS)
def test_conditions_the_data_cannot_answer_fail_their_check_alone(everywhere: dict[str, Any],
                                                                 backend: str) -> None:
    result = Suite("c", [expect.column_values_to_not_be_null("x", row_condition="nope > 1"),
                         expect.column_values_to_not_be_null("x", row_condition="s > 3"),
                         expect.column_values_to_not_be_null("x", row_condition="s == 'a'")],
                   ).validate(everywhere[backend])
    assert "'nope'" in result[0].exception_info and "cannot order" in result[1].exception_info
    assert result[2].exception_info is None and result[2].unexpected_count == 1


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("xs()[]'\"`&|~!=<>.,0123456789 aindotrueFalsTcol_")), max_size=30))
def test_any_text_is_parsed_or_refused_never_run(text: str) -> None:
    for parser in ("pandas", "great_expectations"):
        try:
            e = expect.column_values_to_be_null("id", row_condition=text, condition_parser=parser)
        except QualityError:
            continue
        r = Suite("c", [e]).validate(TABLE)       # a parsed condition runs or fails with a reason
        assert r[0].success or r[0].exception_info


# -- the same rows as pandas' own DataFrame.query, on every in-process backend -----------------

_COLS = {"x": "int", "f": "float", "s": "str"}
_LITERALS = {"int": st.integers(-2, 9), "float": st.sampled_from([0.5, 2.5, 4.0, 7.5]),
             "str": st.sampled_from(["'a'", "'b'", "'zz'"])}


@st.composite
def conditions(draw: Any, depth: int = 2) -> str:
    if depth and draw(st.booleans()):
        left, right = draw(conditions(depth - 1)), draw(conditions(depth - 1))
        shape = draw(st.sampled_from(["({}) & ({})", "({}) | ({})", "~({})"]))
        return shape.format(left, right)
    col = draw(st.sampled_from(sorted(_COLS)))
    kind = draw(st.sampled_from([_COLS[col], _COLS[col], "int", "str"]))   # mostly matching kinds
    op = draw(st.sampled_from(["==", "!=", "<", ">=", "in"]))
    if op == "in":
        values = draw(st.lists(_LITERALS[kind], min_size=1, max_size=3))
        return f"{col} in [{', '.join(map(str, values))}]"
    return f"{col} {op} {draw(_LITERALS[kind])}"


def _pandas_query(df: pd.DataFrame, condition: str) -> list[int] | None:
    try:
        return sorted(int(i) for i in df.query(condition, engine="python").index)
    except TypeError:
        return None            # pandas refuses to order text against numbers


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(condition=conditions())
def test_every_backend_selects_what_pandas_query_selects(condition: str) -> None:
    table = TABLE.select(["id", "x", "f", "s"])
    df = table.to_pandas()
    want = _pandas_query(df, condition)
    con = duckdb.connect()
    con.from_arrow(table).create("t")
    for data in (df, table, pl_frame(table), DuckDBTable("t", con)):
        e = expect.column_values_to_be_null("id", row_condition=condition, condition_parser="pandas")
        r = Suite("c", [e]).validate(data, "COMPLETE")[0]
        if want is None:
            assert r.exception_info and "cannot" in r.exception_info, (condition, type(data))
        else:
            assert r.exception_info is None and sorted(r.unexpected_index_list) == want, (condition, type(data))


def pl_frame(table: pa.Table) -> Any:
    import polars as pl

    return pl.from_arrow(table)


# -- gates: a row outside a check's condition is never quarantined by it ------------------------

rows = st.lists(st.tuples(st.one_of(st.none(), st.integers(-3, 3)), st.sampled_from(["eu", "us", None])),
                min_size=1, max_size=40)


@settings(max_examples=25, deadline=None)
@given(rows=rows)
def test_split_never_blames_a_row_outside_the_condition(rows: list[tuple[Any, Any]]) -> None:
    table = pa.table({"amount": pa.array([r[0] for r in rows], pa.int64()),
                      "region": pa.array([r[1] for r in rows], pa.string())})
    suite = Suite("s", [
        expect.column_values_to_be_between("amount", min_value=0, row_condition="region == 'eu'",
                                           name="eu amounts"),
        expect.column_values_to_not_be_null("amount", row_condition='col("region") == "us"', name="us amounts"),
        expect.column_values_to_be_unique("amount", row_condition="region == 'us'", name="us unique"),
    ], on_failure="quarantine")
    con = duckdb.connect()
    con.from_arrow(table).create("t")
    for data in (table, table.to_pandas(), DuckDBTable("t", con)):
        good, bad = suite.split(data)
        good, bad = _arrow(good), _arrow(bad)
        assert good.num_rows + bad.num_rows == len(rows)
        for region, failed in zip(bad.column("region").to_pylist(), bad.column("_failed_checks").to_pylist(),
                                  strict=True):
            assert region == "eu" or "eu amounts" not in failed
            assert region == "us" or ("us amounts" not in failed and "us unique" not in failed)
        expected_bad = _reference_bad(rows)
        assert bad.num_rows == expected_bad, (rows, type(data))


def _reference_bad(rows: list[tuple[Any, Any]]) -> int:
    us_values = [a for a, r in rows if r == "us" and a is not None]
    bad = 0
    for amount, region in rows:
        eu_bad = region == "eu" and amount is not None and amount < 0
        us_bad = region == "us" and (amount is None or us_values.count(amount) > 1)
        bad += eu_bad or us_bad
    return bad


def _arrow(frame: Any) -> pa.Table:
    if isinstance(frame, pa.Table):
        return frame
    if hasattr(frame, "to_arrow"):          # Polars
        return frame.to_arrow()
    return pa.Table.from_pandas(frame, preserve_index=False)


def test_a_gate_quarantines_only_rows_inside_the_condition() -> None:
    from headrace import flow

    df = pd.DataFrame({"amount": [-1, -2, 5, -3], "region": ["eu", "us", "eu", "eu"]})
    suite = Suite("cond", [expect.column_values_to_be_between("amount", min_value=0,
                                                                 row_condition="region == 'eu'")],
                  on_failure="quarantine")

    @flow(name="cond-gate")
    def run() -> Any:
        return suite.gate(df)

    passed = run()
    assert passed["amount"].tolist() == [-2, 5]          # the US row is outside the condition
    outcome = suite.last_outcome
    assert (outcome.rows_in, outcome.rows_passed, outcome.rows_quarantined) == (4, 2, 2)


# -- pushed down: the database filters, Python gets counts --------------------------------------

class Recording(DuckDBRelation):
    """A real DuckDB relation that keeps the SQL it ran."""

    def __init__(self, con: Any, sql: str) -> None:
        super().__init__(con, sql, "duckdb")
        self.queries: list[str] = []

    def fetch(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        self.queries.append(sql)
        return super().fetch(sql, params)


def test_sql_backends_push_the_condition_down_as_where() -> None:
    con = duckdb.connect()
    con.from_arrow(TABLE).create("t")
    rel = Recording(con, '"t"')
    suite = Suite("c", [expect.column_values_to_be_between("x", min_value=5, row_condition="s == 'a'"),
                        expect.column_mean_to_be_between("f", 0, 10, row_condition="s == 'a'"),
                        expect.table_row_count_to_equal(8)])
    result = suite.validate(SqlSource(rel), "BASIC")
    assert [r.success for r in result] == [False, True, True]
    assert result[0].unexpected_count == 2 and result[0].element_count == 3
    assert result[1].observed_value == pytest.approx((0.5 + 3.5 + 6.5) / 3)
    measuring = [q for q in rel.queries if "COUNT(*)" in q]
    assert len(measuring) == 2                            # one query per distinct condition
    assert any("WHERE COALESCE(\"s\" = $p" in q for q in measuring)
    assert all("'a'" not in q for q in rel.queries)      # the value is bound, never SQL text


def test_same_condition_arguments_in_expect_dataset_and_yaml() -> None:
    kwargs = {"column": "x", "min_value": 5, "row_condition": "s == 'a'", "condition_parser": "pandas"}
    via_expect = Suite("a", [expect.column_values_to_be_between(**kwargs)]).validate(TABLE)[0]
    via_dataset = PandasDataset(TABLE.to_pandas()).expect_column_values_to_be_between(**kwargs)
    yaml = ("suite: y\nexpectations:\n  - expect_column_values_to_be_between: "
            "{column: x, min_value: 5, row_condition: \"s == 'a'\", condition_parser: pandas}\n")
    via_yaml = Suite.from_yaml(yaml).validate(TABLE)[0]
    assert via_expect.unexpected_count == via_dataset.unexpected_count == via_yaml.unexpected_count == 2
    assert Suite.from_yaml(Suite("a", [expect.column_values_to_be_between(**kwargs)]).to_yaml()) \
        .expectations[0].kwargs["row_condition"] == "s == 'a'"


def test_condition_masks_are_numpy_bools() -> None:
    # a guard for the pandas path: masks must be writable copies (nulls are set in place)
    df = TABLE.to_pandas()
    assert rows_inside(df, "s in ['a']") == [0, 3, 6]
    assert np.asarray(rows_inside(df, "x != 1")).dtype.kind == "i"


@pytest.mark.parametrize("backend", BACKENDS)
def test_split_with_conditions_is_the_same_everywhere(everywhere: dict[str, Any], backend: str) -> None:
    suite = Suite("s", [
        expect.column_values_to_be_between("x", max_value=4, row_condition="s == 'a'", name="small a"),
        expect.column_values_to_be_unique("s", row_condition='col("x") > 1', name="unique s"),
        expect.column_values_to_be_decreasing("f", row_condition="ok", name="falling f"),
    ])
    good, bad = suite.split(everywhere[backend])
    good, bad = _arrow(good), _arrow(bad)
    assert sorted(good.column("id").to_pylist() + bad.column("id").to_pylist()) == list(range(8))
    flagged = dict(zip(bad.column("id").to_pylist(), bad.column("_failed_checks").to_pylist(), strict=True))
    assert flagged == {1: "unique s", 2: "falling f", 5: "unique s", 6: "falling f"}
