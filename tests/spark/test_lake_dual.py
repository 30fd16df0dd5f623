"""One dirty lake through both engines: the same good rows, quarantine rows and reasons, counters.

The lake holds every kind of bad line the issue lists (malformed JSON, single quotes, text
after the object, two objects on a line, a duplicate key, "abc" and 2.5 for an integer, an
unparseable timestamp, invalid UTF-8, a bare array, an integer beyond 64 bits, rule
failures), good rows across many partitions (and a null partition), blank and CRLF lines,
a truncated gzip file, an empty file and a file that is not JSON at all.
"""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headrace.quality import expect
from headrace.spark import QUARANTINE_SCHEMA, LakeJob
from headrace.spark import reasons as R
from headrace.spark.testing import SALES_SCHEMA, sales_rules, write_dirty_lake

COUNTERS = ("files_read", "bytes_read", "rows_read", "good_rows", "bad_rows", "bad_bytes")

EXTRA_BAD = [
    (b'{"order_id": 1, "customer_id": 2, "region": "North", "quantity": 1, "x": "\xff\xfe"}', R.INVALID_UTF8),
    (b'[1, 2, 3]', R.not_object("array")),
    (b'42', R.not_object("integer")),
    (b'{"order_id": 99999999999999999999999, "customer_id": 1, "region": "North"}', R.too_big("order_id")),
    (b'{"order_id": 7, "customer_id": 1, "region": "North", "quantity": true}',
     R.wrong_kind("quantity", "boolean", "int64")),
    (b'{"order_id": 7, "customer_id": 1, "region": "North", "unit_price": 9007199254740993}',
     R.inexact_float("unit_price")),
    (b'{"order_id": 7, "customer_id": 1, "region": "North", "unit_price": 1e999}', R.out_of_range("unit_price")),
    (b'{"order_id": 7, "customer_id": 1, "region": "North", "order_date": "2024-02-30"}', R.bad_date("order_date")),
    (b'{"order_id": 7, "customer_id": 1, "region": "North", "paid": "yes"}', R.wrong_kind("paid", "string", "bool")),
    (b'{"order_id": "5", "customer_id": 1, "region": "North"}', R.wrong_kind("order_id", "string", "int64")),
    (b"{'order_id': 5}", R.INVALID_JSON),
    (b'{"order_id": 5} {"order_id": 6}', R.INVALID_JSON),
    (b'{"order_id": 5, "customer_id": 1, "region": "North", "quantity": -3, "paid": true}',
     R.rule_failed("column_values_to_be_between(quantity)", ["quantity"])),
]
EXTRA_GOOD = [
    # nested duplicate keys are not the top-level object's; a missing order_date is a null partition
    b'{"order_id": 8, "customer_id": 3, "region": "East", "meta": {"a": 1, "a": 2}, "quantity": 0}',
    # CRLF line ending, unicode text, an offset timestamp
    b'{"order_id": 9, "customer_id": 4, "region": "West", "product": "caf\xc3\xa9 \xe2\x98\x95", '
    b'"at": "2024-03-01T10:00:00+02:00", "order_date": "2024-03-01"}\r',
    b'   ',
]


def _dirty_lake(root: Path) -> Any:
    lake = write_dirty_lake(str(root), records=1_200, files=3, bad_share=0.05, seed=11)
    with open(root / "extra.ndjson", "wb") as fh:
        fh.write(b"\n".join([b for b, _ in EXTRA_BAD] + EXTRA_GOOD) + b"\n\n")
    good = b'{"order_id": 10, "customer_id": 5, "region": "South", "order_date": "2024-05-05", "quantity": 2}\n'
    whole = gzip.compress(good * 200 + b'{"order_id": 11, "customer_id": 6, "region": "South"}\n')
    (root / "cut.ndjson.gz").write_bytes(whole[: len(whole) * 2 // 3])      # a gzip file cut short
    (root / "empty.ndjson").write_bytes(b"")
    (root / "binary.ndjson").write_bytes(bytes(range(1, 200)) + b"\n\x00\x01\x02\n")   # not JSON at all
    return lake


Outcome = tuple[Any, list[dict[str, Any]], list[tuple[str, str, str]]]


def _run(engine: str, lake: Path, out: Path, schema: dict[str, str] = SALES_SCHEMA, rules: Any = None,
         partition_by: tuple[str, ...] = ("order_date",)) -> Outcome:
    job = LakeJob(str(lake / "*.ndjson*"), schema, sales_rules() if rules is None else rules, str(out / "sales"),
                  partition_by=list(partition_by), quarantine=str(out / "quarantine"), engine=engine,
                  spark_master="local[2]")
    result = job.run()
    rows = ds.dataset(str(out / "sales"), format="parquet", partitioning="hive").to_table().to_pylist()
    bad = pa.concat_tables([pq.read_table(p) for p in sorted((out / "quarantine").glob("*.parquet"))])
    assert bad.schema.equals(QUARANTINE_SCHEMA)
    quarantined = sorted((r["source_file"], r["raw"], r["reason"]) for r in bad.to_pylist())
    return result, sorted(rows, key=lambda r: str(sorted(r.items()))), quarantined


@pytest.fixture(scope="module")
def both(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("lake")
    lake = _dirty_lake(root / "raw")
    return {"lake": lake, "root": root,
            **{engine: _run(engine, root / "raw", root / engine) for engine in ("duckdb", "spark")}}


@pytest.fixture(scope="module")
def contract(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The DuckDB engine's line-by-line contract cases (tests/spark/test_lake_duckdb.py), on both."""
    from test_lake_duckdb import BAD_LINES, SCHEMA

    root = tmp_path_factory.mktemp("contract")
    (root / "raw").mkdir()
    good = ['{"id": 1, "qty": 9223372036854775807, "price": 19.99, "name": "caf\\u00e9 \\"q\\"", "ok": true, '
            '"day": "2024-02-29", "at": "2024-01-05T10:00:00+02:00"}',
            '{"id": 2, "qty": -9223372036854775808, "price": 7, "name": "ünï 中", "ok": false, '
            '"day": "1999-12-31", "at": "2024-01-05 10:00:00.123456"}',
            '{"id": 3, "qty": null, "price": 9007199254740992, "extra": [1, {"x": 1}], "at": "2024-01-05T10:00Z"}',
            '{"id": 4, "price": 5e-324, "name": "", "meta": {"NaN": "Infinity"}}', '  {"id": 5, "price": -0.0}  ']
    lines = [line for line, _ in BAD_LINES] + good + ["", "   "]
    (root / "raw" / "a.ndjson").write_bytes("\n".join(lines).encode() + b"\n")
    rules = [expect.column_values_to_be_between("qty", min_value=-10 ** 19)]
    return {"lines": BAD_LINES, **{engine: _run(engine, root / "raw", root / engine, SCHEMA, rules, ("day",))
                                   for engine in ("duckdb", "spark")}}


def test_every_contract_case_alike(contract: dict[str, Any]) -> None:
    duck, spark = contract["duckdb"], contract["spark"]
    assert spark[1] == duck[1] and [r["id"] for r in sorted(spark[1], key=lambda r: r["id"])] == [1, 2, 3, 4, 5]
    assert spark[2] == duck[2]
    assert {(raw, reason) for _, raw, reason in spark[2]} == set(contract["lines"])
    assert {k: getattr(spark[0], k) for k in COUNTERS} == {k: getattr(duck[0], k) for k in COUNTERS}


def test_same_good_rows(both: dict[str, Any]) -> None:
    duck, spark = both["duckdb"][1], both["spark"][1]
    assert len(duck) > 1_000
    assert spark == duck
    assert {r["order_date"] for r in spark} >= {None} and len({r["order_date"] for r in spark}) > 50


def test_same_quarantine_rows_and_reasons(both: dict[str, Any]) -> None:
    duck, spark = both["duckdb"][2], both["spark"][2]
    assert spark == duck
    reasons = {reason for _, _, reason in spark}
    for _, reason in EXTRA_BAD:
        assert reason in reasons
    assert set(both["lake"].reasons) <= reasons
    assert any(r.startswith("truncated compressed file") or r.startswith("corrupt compressed file") for r in reasons)


def test_same_counters(both: dict[str, Any]) -> None:
    duck, spark = both["duckdb"][0], both["spark"][0]
    assert {k: getattr(spark, k) for k in COUNTERS} == {k: getattr(duck, k) for k in COUNTERS}
    assert spark.missing == duck.missing and spark.missing["product"] > 0
    assert spark.rows_read == spark.good_rows + spark.bad_rows == len(both["spark"][1]) + len(both["spark"][2])
    assert spark.files_read == 7 and spark.bytes_read == sum(f.stat().st_size for f in (both["root"] / "raw").iterdir())
    # Parquet bytes differ by writer (DuckDB's and Spark's encoders); each is what is on disk.
    for engine in ("duckdb", "spark"):
        on_disk = sum(f.stat().st_size for f in (both["root"] / engine / "sales").rglob("*.parquet"))
        assert both[engine][0].bytes_written == on_disk > 0


def test_spark_rerun_replaces_never_duplicates(both: dict[str, Any]) -> None:
    root = both["root"]
    again = _run("spark", root / "raw", root / "spark")
    assert again[1] == both["spark"][1] and again[2] == both["spark"][2]
    assert all(len(list(d.glob("*.parquet"))) == 1 for d in (root / "spark" / "sales").iterdir() if d.is_dir())
    assert not [p for p in (root / "spark" / "sales").iterdir() if p.name.startswith(".headrace-staging")]


def test_spark_splits_big_files_without_losing_a_line(spark: Any, tmp_path: Path, monkeypatch: Any) -> None:
    """A plain file read by several tasks (byte ranges): every line read once, whichever task."""
    from headrace.spark import lake_spark
    from headrace.spark.lakefiles import list_files

    lake = write_dirty_lake(str(tmp_path / "raw"), records=1_000, files=1, bad_share=0.02, seed=3)
    monkeypatch.setattr(lake_spark, "CHUNK_BYTES", 40_009)    # a prime: ranges end mid-line
    assert len(lake_spark.plan(list_files([lake.pattern]))) >= 5
    result, rows, bad = _run("spark", tmp_path / "raw", tmp_path / "out")
    assert (len(rows), len(bad)) == (lake.good, lake.bad) and result.rows_read == lake.rows
    assert len({r["order_id"] for r in rows}) == lake.good


@settings(max_examples=60, deadline=None)
@given(lines=st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")), max_size=40),
       chunk=st.integers(min_value=1, max_value=200), crlf=st.booleans())
def test_byte_ranges_cover_every_line_once(lines: list[bytes], chunk: int, crlf: bool) -> None:
    from headrace.spark.lake_spark import _lines

    data = b"".join(line + (b"\r\n" if crlf else b"\n") for line in lines)
    got = []
    for start in range(0, max(len(data), 1), chunk):
        got += list(_lines(io.BytesIO(data), start, min(start + chunk, len(data))))
    assert got == [line.rstrip(b"\r") for line in lines]     # as the DuckDB engine reads lines


def test_empty_lake_on_spark(spark: Any, tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    job = LakeJob(str(tmp_path / "raw"), SALES_SCHEMA, [], str(tmp_path / "out"), engine="spark",
                  spark_master="local[2]")
    result = job.run()
    assert (result.files_read, result.rows_read, result.bytes_written) == (0, 0, 0)


def test_unwritable_target_on_spark(spark: Any, tmp_path: Path) -> None:
    from headrace.spark import LakeJobError

    lake = write_dirty_lake(str(tmp_path / "raw"), records=10, files=1)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    job = LakeJob(lake.pattern, SALES_SCHEMA, [], str(blocker / "sales"), engine="spark", spark_master="local[2]")
    with pytest.raises(LakeJobError, match="not writable"):
        job.run()
    assert os.path.isfile(blocker)
