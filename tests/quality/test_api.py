"""YAML suites, the interactive style, the public surface, the CLI and the HTML report."""

from __future__ import annotations

import importlib
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_gate import pipeline, sales, seed_suite

from headrace.cli import main
from headrace.errors import QualityError, QualityGateFailed
from headrace.quality import REGISTRY, PandasDataset, Suite, expect
from headrace.quality.report import history_chart

SUITE_YAML = textwrap.dedent("""\
    suite: sales
    on_failure: quarantine
    expectations:
      - expectation_type: expect_column_values_to_not_be_null
        kwargs: {column: customer_id}
      - expect_column_values_to_be_between: {column: revenue, min_value: 0}
      - expectation_type: expect_column_pair_values_A_to_be_greater_than_B
        kwargs: {column_A: a, column_B: b}
    """)


def test_at_least_35_ge_named_expectations() -> None:
    assert len(REGISTRY) >= 35
    for name in REGISTRY:
        assert name.startswith("expect_")
        assert callable(getattr(expect, name.removeprefix("expect_")))


def test_public_names_import_and_nothing_private_leaks() -> None:
    module = importlib.import_module("headrace.quality")
    for name in module.__all__:
        assert not name.startswith("_") and hasattr(module, name), name


def test_yaml_round_trip(tmp_path: Path) -> None:
    suite = Suite.from_yaml(SUITE_YAML)
    assert suite.name == "sales" and suite.on_failure == "quarantine"
    assert [e.expectation_type for e in suite.expectations][-1] == \
        "expect_column_pair_values_a_to_be_greater_than_b"
    path = tmp_path / "suite.yaml"
    seed_suite("warn").to_yaml(path)
    again = Suite.from_yaml(path)
    assert again.to_dict() == seed_suite("warn").to_dict()


@pytest.mark.parametrize("bad, line, message", [
    ("  - expect_column_values_to_be_betwen: {column: revenue}\n", 9, "did you mean"),
    ("  - expect_column_values_to_be_between: {column: revenue, min_value: 5, max_value: 1}\n",
     9, "greater than max_value"),
    ("  - expectation_type: expect_column_values_to_be_in_set\n"
     "    kwargs: {column: r, value_set: [a], colour: red}\n", 9, "unexpected keyword argument 'colour'"),
])
def test_yaml_errors_name_the_line(bad: str, line: int, message: str) -> None:
    with pytest.raises(QualityError, match=message) as info:
        Suite.from_yaml(SUITE_YAML + bad)
    assert f"<yaml>:{line}:" in str(info.value)


def test_interactive_style() -> None:
    df = pd.DataFrame({"customer_id": [1, None, 3], "revenue": [5.0, 6.0, -1.0]})
    ds = PandasDataset(df)
    assert not ds.expect_column_values_to_not_be_null("customer_id").success
    r = ds.expect_column_values_to_be_between("revenue", min_value=0, result_format="COMPLETE")
    assert r.unexpected_index_list == [2]
    assert ds.expect_column_max_to_be_between("revenue", max_value=10).success
    assert len(ds.get_expectation_suite()) == 3
    with pytest.raises(AttributeError):
        ds.expect_nothing_real  # noqa: B018


def test_pandas_index_labels_in_complete_results() -> None:
    df = pd.DataFrame({"v": [1, -1, 2, -2]}, index=["a", "b", "c", "d"])
    r = Suite("s", [expect.column_values_to_be_between("v", min_value=0)]).validate(df, "COMPLETE")
    assert r[0].unexpected_index_list == ["b", "d"]


def test_csv_file_is_checked_by_duckdb(tmp_path: Path) -> None:
    path = tmp_path / "sales.csv"
    sales(50, bad=2).to_csv(path, index=False)
    result = seed_suite("halt").validate(str(path))
    assert [r.success for r in result] == [False, False, True, True, True]


def test_cli_show_and_self_contained_report(store: Any, tmp_path: Path, capsys: Any) -> None:
    suite = seed_suite("halt", more=[expect.table_row_count_to_be_within_history(min_history=2)])
    for i in range(3):
        pipeline(suite, sales(100 + i, seed=i), [])()
    with pytest.raises(QualityGateFailed):
        pipeline(suite, sales(100, bad=3), [])()
    run_id = store.list_flow_runs(limit=1)[0]["id"]
    assert main(["quality", "show", run_id[:8]]) == 0
    out = capsys.readouterr().out
    assert "Quality checks: 4/6 passed" in out and "FAIL" in out
    assert "gate sales (halt): 100 rows in, halted" in out
    report = tmp_path / "report.html"
    assert main(["quality", "report", run_id, "-o", str(report)]) == 0
    page = report.read_text()
    assert "<svg" in page and "column_values_to_be_between(revenue)" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<script" not in page
    assert main(["quality", "show", "ffffffff"]) == 1


def test_cli_lists_the_expectations(capsys: Any) -> None:
    assert main(["quality", "list"]) == 0
    assert "47 expectation types" in capsys.readouterr().out


def test_cli_validate_a_yaml_suite_on_a_file(tmp_path: Path) -> None:
    suite_file = tmp_path / "s.yaml"
    seed_suite("halt").to_yaml(suite_file)
    data = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pandas(sales(50), preserve_index=False), data)
    assert main(["quality", "validate", str(suite_file), str(data)]) == 0


def test_cli_validate_takes_parameters_and_conditions(tmp_path: Path, capsys: Any) -> None:
    suite_file = tmp_path / "p.yaml"
    suite_file.write_text(textwrap.dedent("""\
        suite: params
        expectations:
          - expect_column_values_to_be_between:
              column: revenue
              min_value: {$PARAMETER: floor}
              row_condition: "region == 'North'"
        """))
    data = tmp_path / "d.parquet"
    pq.write_table(pa.table({"revenue": [5.0, -1.0, 7.0], "region": ["North", "South", "North"]}), data)
    assert main(["quality", "validate", str(suite_file), str(data), "--param", "floor=0"]) == 0
    assert main(["quality", "validate", str(suite_file), str(data), "--param", "floor=6",
                 "--result-format", "COMPLETE"]) == 1
    out = capsys.readouterr().out
    assert '"unexpected_list": [\n' in out and "5.0" in out and "-1.0" not in out


def test_history_chart_marks_today() -> None:
    svg = history_chart([1.0, 2.0, 3.0], 10.0, 0.0, 4.0, ok=False)
    assert svg.startswith("<svg") and "#c0262d" in svg and "polyline" in svg


def test_pandas_categoricals_and_mixed_objects() -> None:
    df = pd.DataFrame({"region": pd.Categorical(["North", "Mars", None]),
                       "mixed": pd.Series([1, "two", None], dtype=object)})
    result = Suite("s", [
        expect.column_values_to_be_in_set("region", ["North"]),
        expect.column_values_to_match_regex("region", "^N"),
        expect.column_values_to_be_in_set("mixed", ["1", "two"]),
    ]).validate(df)
    assert [r.unexpected_count for r in result] == [1, 1, 0]


def test_yaml_keeps_tuples_sets_and_dates(tmp_path: Path) -> None:
    import datetime as dt

    suite = Suite("s", [
        expect.column_values_to_be_in_set("region", ("North", "South")),
        expect.column_values_to_be_between("day", min_value=dt.date(2024, 1, 1)),
    ])
    again = Suite.from_yaml(suite.to_yaml())
    assert again.expectations[0].kwargs["value_set"] == ["North", "South"]
    assert again.expectations[1].kwargs["min_value"] == dt.date(2024, 1, 1)


def test_a_new_backend_plugs_in_through_the_registry() -> None:
    """The seam Spark will use: a Backend turns its own data type into a Source."""
    from headrace.quality import open_source, register_backend
    from headrace.quality.backends import _BACKENDS
    from headrace.quality.backends.frames import ArrowFrame
    from headrace.quality.backends.memory import MemorySource

    class Columns(dict):  # type: ignore[type-arg]
        pass

    class ColumnsBackend:
        name = "columns"

        def open(self, data: Any) -> Any:
            return MemorySource(ArrowFrame(pa.table(dict(data)))) if isinstance(data, Columns) else None

    backend = ColumnsBackend()
    register_backend(backend)
    try:
        data = Columns(v=[1, 2, -3])
        assert open_source(data).kind == "arrow"
        r = Suite("s", [expect.column_values_to_be_between("v", min_value=0)]).validate(data)
        assert r[0].unexpected_count == 1
    finally:
        _BACKENDS.remove(backend)


def test_ge_spellings_and_non_text_column_labels() -> None:
    df = pd.DataFrame({0: [3, 1], 1: [2, 2]})
    ds = PandasDataset(df)
    r = ds.expect_column_pair_values_A_to_be_greater_than_B("0", "1")
    assert r.unexpected_count == 1
    e = expect.column_pair_values_A_to_be_greater_than_B("a", "b")
    assert e.expectation_type == "expect_column_pair_values_a_to_be_greater_than_b"
