"""The lake job on DuckDB: the strict record contract, every bad input, atomic partitions, reruns."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from headrace.errors import ConfigError, DataFileError
from headrace.quality import Suite, expect
from headrace.spark import QUARANTINE_SCHEMA, LakeJob, LakeJobError
from headrace.spark import reasons as R
from headrace.spark.testing import SALES_SCHEMA, sales_rules, write_dirty_lake

SCHEMA = {"id": "int64", "qty": "int64", "price": "float64", "name": "string", "ok": "bool",
          "day": "date", "at": "timestamp"}
UTC = dt.UTC


def write(path: Path, lines: list[str | bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join((ln if isinstance(ln, bytes) else ln.encode()) + b"\n" for ln in lines))
    return path


def good(target: Path) -> list[dict[str, Any]]:
    """Every good row published under ``target`` (partition columns included), sorted by id."""
    files = [p for p in target.rglob("*.parquet") if not any(part.startswith(("_", ".")) for part in
                                                                 p.relative_to(target).parts)]
    if not files:
        return []
    table = ds.dataset([str(f) for f in files], format="parquet", partitioning="hive",
                       partition_base_dir=str(target)).to_table()
    return sorted(table.to_pylist(), key=lambda r: (r.get("id") is None, r.get("id") or 0))


def bad(quarantine: Path) -> list[dict[str, Any]]:
    if not quarantine.exists():
        return []
    rows: list[dict[str, Any]] = []
    for f in sorted(quarantine.glob("*.parquet")):
        t = pq.read_table(f)
        assert t.schema.equals(QUARANTINE_SCHEMA), t.schema
        rows += t.to_pylist()
    return rows


def run(tmp_path: Path, lines: list[str | bytes], schema: dict[str, str] | None = None, rules: Any = (),
        **kw: Any) -> tuple[Any, list[dict[str, Any]], dict[str, str]]:
    src = write(tmp_path / "lake" / "a.ndjson", lines)
    job = LakeJob(str(src), schema or SCHEMA, rules, str(tmp_path / "wh"), **kw)
    result = job.run()
    reasons = {r["raw"]: r["reason"] for r in bad(tmp_path / "wh" / "_quarantine")}
    return result, good(tmp_path / "wh"), reasons


# -- the contract, line by line -------------------------------------------------------------------
BAD_LINES = [
    ('{"id": 1, "qty": "5"}', R.wrong_kind("qty", "string", "int64")),            # no "5" -> 5
    ('{"id": 1, "qty": 2.5}', R.wrong_kind("qty", "float", "int64")),             # no 2.5 -> 3
    ('{"id": 1, "qty": 2.0}', R.wrong_kind("qty", "float", "int64")),
    ('{"id": 1, "qty": true}', R.wrong_kind("qty", "boolean", "int64")),
    ('{"id": 1, "qty": [1]}', R.wrong_kind("qty", "array", "int64")),
    ('{"id": 1, "qty": {"a": 1}}', R.wrong_kind("qty", "object", "int64")),
    ('{"id": 1, "qty": 9223372036854775808}', R.too_big("qty")),
    ('{"id": 1, "qty": 123456789012345678901234567890}', R.too_big("qty")),
    ('{"id": 1, "price": 9007199254740993}', R.inexact_float("price")),
    ('{"id": 1, "price": 1e400}', R.out_of_range("price")),
    ('{"id": 1, "price": "1.5"}', R.wrong_kind("price", "string", "float64")),
    ('{"id": 1, "name": 5}', R.wrong_kind("name", "integer", "string")),
    ('{"id": 1, "ok": "true"}', R.wrong_kind("ok", "string", "bool")),
    ('{"id": 1, "ok": 1}', R.wrong_kind("ok", "integer", "bool")),
    ('{"id": 1, "day": "2024-02-30"}', R.bad_date("day")),
    ('{"id": 1, "day": "2024-1-5"}', R.bad_date("day")),
    ('{"id": 1, "day": "2024-01-05T10:00:00"}', R.bad_date("day")),
    ('{"id": 1, "day": 20240105}', R.wrong_kind("day", "integer", "date")),
    ('{"id": 1, "at": "yesterday"}', R.bad_timestamp("at")),
    ('{"id": 1, "at": "2024-01-05T25:00:00Z"}', R.bad_timestamp("at")),
    ('{"id": 1, "at": "2024-01-05T10:00:00.1234567Z"}', R.bad_timestamp("at")),
    ('{"id": 1, "id": 2}', R.duplicate_key("id")),
    ('{"id": 1, "other": 1, "other": 2}', R.duplicate_key("other")),
    ("{'id': 1}", R.INVALID_JSON),
    ('{"id": 1} trailing', R.INVALID_JSON),
    ('{"id": 1}{"id": 2}', R.INVALID_JSON),
    ('{"id": 1', R.INVALID_JSON),
    ('{"id": NaN}', R.INVALID_JSON),
    ('{"id": "\\ud800"}', R.INVALID_JSON),
    ("plain text", R.INVALID_JSON),
    ("[1, 2]", R.not_object("array")),
    ('"text"', R.not_object("string")),
    ("42", R.not_object("integer")),
    ("4.5", R.not_object("float")),
    ("null", R.not_object("null")),
    ("true", R.not_object("boolean")),
]


def test_every_bad_line_is_quarantined_with_its_reason(tmp_path: Path) -> None:
    lines = [line for line, _ in BAD_LINES] + ['{"id": 100, "qty": 1}']
    result, rows, reasons = run(tmp_path, lines)
    assert reasons == dict(BAD_LINES)
    assert [r["id"] for r in rows] == [100]
    assert (result.rows_read, result.good_rows, result.bad_rows) == (len(lines), 1, len(BAD_LINES))
    assert result.bad_bytes == sum(len(line.encode()) for line, _ in BAD_LINES)
    sources = {r["source_file"] for r in bad(tmp_path / "wh" / "_quarantine")}
    assert sources == {(tmp_path / "lake" / "a.ndjson").as_uri()}


def test_good_values_land_exactly(tmp_path: Path) -> None:
    lines = [
        '{"id": 1, "qty": 9223372036854775807, "price": 19.99, "name": "caf\\u00e9 \\"q\\"", "ok": true, '
        '"day": "2024-02-29", "at": "2024-01-05T10:00:00+02:00"}',
        '{"id": 2, "qty": -9223372036854775808, "price": 7, "name": "ünï 中", "ok": false, '
        '"day": "1999-12-31", "at": "2024-01-05 10:00:00.123456"}',
        '{"id": 3, "qty": null, "price": 9007199254740992, "extra": [1, {"x": 1}], "at": "2024-01-05T10:00Z"}',
        '{"id": 4, "price": 5e-324, "name": ""}',
        '  {"id": 5, "price": -0.0}  ',
        "",
        "   ",
    ]
    result, rows, reasons = run(tmp_path, lines)
    assert reasons == {}
    assert rows == [
        {"id": 1, "qty": 2 ** 63 - 1, "price": 19.99, "name": 'café "q"', "ok": True, "day": dt.date(2024, 2, 29),
         "at": dt.datetime(2024, 1, 5, 8, 0, tzinfo=UTC)},
        {"id": 2, "qty": -(2 ** 63), "price": 7.0, "name": "ünï 中", "ok": False, "day": dt.date(1999, 12, 31),
         "at": dt.datetime(2024, 1, 5, 10, 0, 0, 123456, tzinfo=UTC)},
        {"id": 3, "qty": None, "price": 2.0 ** 53, "name": None, "ok": None, "day": None,
         "at": dt.datetime(2024, 1, 5, 10, 0, tzinfo=UTC)},
        {"id": 4, "qty": None, "price": 5e-324, "name": "", "ok": None, "day": None, "at": None},
        {"id": 5, "qty": None, "price": -0.0, "name": None, "ok": None, "day": None, "at": None},
    ]
    # blank lines are not rows; an absent field is null and counted, an explicit null is not
    assert (result.rows_read, result.good_rows, result.bad_rows) == (5, 5, 0)
    assert result.missing == {"qty": 2, "name": 2, "ok": 3, "day": 3, "at": 2}


def test_rules_quarantine_rows_naming_the_expectation_and_column(tmp_path: Path) -> None:
    suite = Suite("sales", [expect.column_values_to_not_be_null("name"),
                            expect.column_values_to_be_between("qty", min_value=0, max_value=10),
                            expect.column_values_to_match_regex("name", "^[a-z]+$"),
                            expect.column_pair_values_a_to_be_greater_than_b("price", "qty", or_equal=True)])
    lines = ['{"id": 1, "qty": 3, "price": 5.0, "name": "ok"}',
             '{"id": 2, "qty": -1, "price": 5.0, "name": "ok"}',
             '{"id": 3, "qty": 11, "price": 50.0}',
             '{"id": 4, "qty": 3, "price": 1.0, "name": "Upper"}',
             '{"id": 5, "qty": "x", "name": "Upper"}']
    result, rows, reasons = run(tmp_path, lines, rules=suite)
    assert [r["id"] for r in rows] == [1]
    between = R.rule_failed("column_values_to_be_between(qty)", ["qty"])
    assert reasons == {
        lines[1]: between,
        lines[2]: R.RULES_SEPARATOR.join([R.rule_failed("column_values_to_not_be_null(name)", ["name"]), between]),
        lines[3]: R.RULES_SEPARATOR.join([
            R.rule_failed("column_values_to_match_regex(name)", ["name"]),
            R.rule_failed("column_pair_values_a_to_be_greater_than_b(price, qty)", ["price", "qty"])]),
        lines[4]: R.wrong_kind("qty", "string", "int64"),  # the contract first, then the rules
    }
    assert result.bad_rows == 4


def test_the_sales_lake_splits_as_generated(tmp_path: Path) -> None:
    lake = write_dirty_lake(str(tmp_path / "lake"), records=3000, files=3, bad_share=0.05)
    job = LakeJob(lake.pattern, SALES_SCHEMA, sales_rules(), str(tmp_path / "wh"), partition_by=["order_date"])
    r = job.run()
    assert (r.files_read, r.rows_read, r.good_rows, r.bad_rows, r.bad_bytes) == (
        3, lake.rows, lake.good, lake.bad, lake.bad_bytes)
    assert r.bytes_read == sum(os.path.getsize(f) for f in lake.files)
    assert Counter(b["reason"] for b in bad(tmp_path / "wh" / "_quarantine")) == lake.reasons
    assert r.missing == dict(lake.missing)
    published = [p for p in (tmp_path / "wh").rglob("*.parquet") if "_quarantine" not in str(p)]
    assert r.bytes_written == sum(p.stat().st_size for p in published) > 0
    assert all(p.name == "part-0.parquet" for p in published)
    assert len(published) == len(r.partitions) == len({p.parent for p in published})
    assert len(good(tmp_path / "wh")) == lake.good


# -- atomic partitions, reruns ----------------------------------------------------------------------
def test_rerun_replaces_partitions_never_duplicates(tmp_path: Path) -> None:
    src = tmp_path / "lake" / "a.ndjson"
    write(src, ['{"id": 1, "day": "2024-01-01"}', '{"id": 2, "day": "2024-01-02"}', "{bad"])
    make = lambda: LakeJob(str(src), SCHEMA, target=str(tmp_path / "wh"), partition_by=["day"])  # noqa: E731
    first = make().run()
    again = make().run()
    assert (first.good_rows, again.good_rows) == (2, 2)
    assert [r["id"] for r in good(tmp_path / "wh")] == [1, 2]
    assert len(bad(tmp_path / "wh" / "_quarantine")) == 1
    # new input for one day: that partition is replaced whole, the other is left alone
    write(src, ['{"id": 3, "day": "2024-01-02"}', '{"id": 4, "day": "2024-01-02"}'])
    make().run()
    assert [(r["id"], r["day"]) for r in good(tmp_path / "wh")] == [
        (1, "2024-01-01"), (3, "2024-01-02"), (4, "2024-01-02")]
    assert bad(tmp_path / "wh" / "_quarantine") == []  # the repaired file's stale bad rows are gone
    assert not [p for p in (tmp_path / "wh").rglob(".*")]  # no staging or temporary file left


def test_a_failure_while_publishing_leaves_each_partition_whole(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from headrace.spark import publish

    src = write(tmp_path / "lake" / "a.ndjson", [json.dumps({"id": i, "day": f"2024-01-0{1 + i % 3}"})
                                                  for i in range(30)])
    LakeJob(str(src), SCHEMA, target=str(tmp_path / "wh"), partition_by=["day"]).run()
    before = good(tmp_path / "wh")
    write(src, [json.dumps({"id": 100 + i, "day": f"2024-01-0{1 + i % 3}"}) for i in range(30)])
    real, calls = publish._replace_partition, []

    def flaky(*args: Any) -> int:
        calls.append(args[1])
        if len(calls) == 2:
            raise OSError("disk full (injected)")
        return real(*args)

    monkeypatch.setattr(publish, "_replace_partition", flaky)
    with pytest.raises(OSError, match="injected"):
        LakeJob(str(src), SCHEMA, target=str(tmp_path / "wh"), partition_by=["day"]).run()
    rows = good(tmp_path / "wh")
    by_day: dict[str, set[int]] = {}
    for r in rows:
        by_day.setdefault(r["day"], set()).add(r["id"] // 100)
    # every partition holds either all its old rows or all its new rows, never a mix or a part
    assert all(len(gens) == 1 for gens in by_day.values()), by_day
    assert sorted(by_day) == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert sum(1 for r in rows) == len(before) == 30
    assert not [p for p in (tmp_path / "wh").rglob(".*")]


def test_partitions_by_string_bool_int_with_nulls_and_odd_characters(tmp_path: Path) -> None:
    lines = ['{"id": 1, "name": "a/b c", "ok": true}', '{"id": 2, "name": "a/b c", "ok": null}',
             '{"id": 3, "ok": false}', '{"id": 4, "name": "%=é", "ok": true}']
    result, rows, _ = run(tmp_path, lines, partition_by=["name", "ok"])
    folders = sorted(str(Path(p).relative_to((tmp_path / "wh").as_uri()[7:])) for p in
                     [u[7:] for u in result.partitions])
    assert folders == ["name=%25%3D%C3%A9/ok=true", "name=__HIVE_DEFAULT_PARTITION__/ok=false",
                       "name=a%2Fb%20c/ok=__HIVE_DEFAULT_PARTITION__", "name=a%2Fb%20c/ok=true"]
    assert [r["id"] for r in rows] == [1, 2, 3, 4]
    no_partition_columns = pq.read_table(next((tmp_path / "wh").rglob("part-0.parquet")))
    assert "name" not in no_partition_columns.column_names and "ok" not in no_partition_columns.column_names


# -- bad input: files, paths, declarations ----------------------------------------------------------
def test_gzip_input_and_a_truncated_gzip_file(tmp_path: Path) -> None:
    lines = [json.dumps({"id": i, "name": "x" * 50}) for i in range(2000)]
    (tmp_path / "lake").mkdir()
    whole = gzip.compress(("\n".join(lines) + "\n").encode())
    (tmp_path / "lake" / "a.ndjson.gz").write_bytes(whole)
    (tmp_path / "lake" / "b.ndjson.gz").write_bytes(whole[: len(whole) * 2 // 3])
    job = LakeJob(str(tmp_path / "lake"), SCHEMA, target=str(tmp_path / "wh"))
    r = job.run()
    quarantined = bad(tmp_path / "wh" / "_quarantine")
    assert len(quarantined) == 1 and quarantined[0]["reason"].startswith(
        f"truncated compressed file {(tmp_path / 'lake' / 'b.ndjson.gz').as_uri()}")
    kept = r.good_rows - 2000
    assert 0 < kept < 2000  # the readable records of the cut file are kept
    assert [row["id"] for row in good(tmp_path / "wh")] == sorted(list(range(2000)) + list(range(kept)))
    assert r.rows_read == r.good_rows + 1


def test_an_empty_lake_runs_and_counts_nothing(tmp_path: Path) -> None:
    (tmp_path / "lake").mkdir()
    (tmp_path / "lake" / "empty.ndjson").write_bytes(b"")
    (tmp_path / "lake" / "_SUCCESS").write_bytes(b"")
    for source in (str(tmp_path / "lake"), str(tmp_path / "nothing-*.ndjson")):
        r = LakeJob(source, SCHEMA, target=str(tmp_path / "wh")).run()
        assert (r.rows_read, r.good_rows, r.bad_rows, r.bytes_written) == (0, 0, 0, 0)
    assert good(tmp_path / "wh") == []
    with pytest.raises(DataFileError, match="does not exist"):
        LakeJob(str(tmp_path / "no-such-folder"), SCHEMA, target=str(tmp_path / "wh")).run()


def test_a_file_that_is_not_json_at_all(tmp_path: Path) -> None:
    (tmp_path / "lake").mkdir()
    junk = bytes(range(256)) * 20 + b"\n\x1f\x00\xff\xfe garbage\n"
    (tmp_path / "lake" / "image.ndjson").write_bytes(junk)
    write(tmp_path / "lake" / "table.ndjson", ["id,name", "1,a", "2,b\x1fc"])
    write(tmp_path / "lake" / "ok.ndjson", ['{"id": 1}', b'{"id": 2, "name": "\xff"}'])
    r = LakeJob(str(tmp_path / "lake"), SCHEMA, target=str(tmp_path / "wh")).run()
    rows = bad(tmp_path / "wh" / "_quarantine")
    assert r.good_rows == 1 and r.bad_rows == len(rows) == r.rows_read - 1
    reasons = Counter(x["reason"] for x in rows)
    assert set(reasons) == {R.INVALID_JSON, R.INVALID_UTF8}
    assert {x["raw"] for x in rows if x["reason"] == R.INVALID_UTF8} >= {'{"id": 2, "name": "\ufffd"}'}
    assert "2,b\x1fc" in {x["raw"] for x in rows}  # a control character does not cut a line


def test_a_target_that_is_not_writable_is_a_clear_error(tmp_path: Path) -> None:
    src = write(tmp_path / "lake" / "a.ndjson", ['{"id": 1}'])
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(LakeJobError, match=r"target .*a-file/wh is not writable"):
        LakeJob(str(src), SCHEMA, target=str(tmp_path / "a-file" / "wh")).run()
    with pytest.raises(LakeJobError, match=r"quarantine .* is not writable"):
        LakeJob(str(src), SCHEMA, target=str(tmp_path / "wh"), quarantine=str(tmp_path / "a-file" / "q")).run()
    assert not (tmp_path / "wh").exists() or good(tmp_path / "wh") == []


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"schema": {"id": "integer"}}, "unknown type 'integer'"),
    ({"schema": {}}, "non-empty dict"),
    ({"schema": pa.schema([("id", pa.int32())])}, "type int32 is not supported"),
    ({"schema": {"id": "int64", "__hr_x": "int64"}}, "reserved"),
    ({"partition_by": ["nope"]}, "partition_by column 'nope' is not in the schema"),
    ({"partition_by": ["price"]}, "partition by an int64, string, bool or date column"),
    ({"rules": [expect.column_values_to_not_be_null("nope")]}, "column 'nope' is not in the schema"),
    ({"rules": [expect.column_mean_to_be_between("qty", 0, 1)]}, "row-level rules only"),
    ({"rules": [expect.column_values_to_be_unique("id")]}, "cannot run row by row"),
    ({"engine": "pandas"}, "engine must be one of duckdb, spark"),
    ({"target": ""}, "needs a target"),
])
def test_a_job_declared_wrongly_says_what_to_fix(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"source": str(tmp_path), "schema": SCHEMA, "target": str(tmp_path / "wh"), **kwargs}
    with pytest.raises(LakeJobError, match=message):
        LakeJob(**args)


def test_a_pyarrow_schema_is_accepted(tmp_path: Path) -> None:
    schema = pa.schema([("id", pa.int64()), ("name", pa.large_string()), ("day", pa.date32()),
                        ("at", pa.timestamp("ms"))])
    result, rows, _ = run(tmp_path, ['{"id": 1, "name": "x", "day": "2024-01-01"}'], schema=schema)  # type: ignore[arg-type]
    assert rows == [{"id": 1, "name": "x", "day": dt.date(2024, 1, 1), "at": None}]


def test_spark_not_installed_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pyspark", None)  # as if it were not installed
    src = write(tmp_path / "lake" / "a.ndjson", ['{"id": 1}'])
    job = LakeJob(str(src), SCHEMA, target=str(tmp_path / "wh"), engine="spark")
    with pytest.raises(ConfigError, match=r"pip install 'headrace\[spark\]'"):
        job.run()


def test_the_spark_part_imports_without_pyspark() -> None:
    import subprocess
    import sys

    code = ("import json, sys; sys.modules['pyspark'] = None; import headrace.spark as s; "
            "print(json.dumps(sorted(n for n in s.__all__ if hasattr(s, n))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert {"LakeJob", "LakeResult", "LakeJobError", "QUARANTINE_SCHEMA"} <= set(json.loads(out.stdout))


def _gzip_cases() -> dict[str, bytes]:
    import random

    rng = random.Random(3)
    lines = b"".join(b'{"id": %d, "name": "%s"}\n' % (i, b"x" * rng.randint(0, 300)) for i in range(20000))
    whole = gzip.compress(lines)
    corrupt = bytearray(whole)
    corrupt[len(whole) // 2] ^= 0xFF
    cases = {"whole": whole, "two members": whole + gzip.compress(b'{"id": -1}\n'), "padded": whole + b"\0" * 64,
             "empty": b"", "corrupt": bytes(corrupt)}
    cases.update({f"cut at {cut}": whole[:cut] for cut in (10, len(whole) // 3, len(whole) - 3)})
    return cases


@pytest.mark.parametrize("case", sorted(_gzip_cases()))
def test_streamed_gunzip_keeps_and_reports_what_issue_8_does(case: str) -> None:
    """The lake decompresses a chunk at a time; the lines kept and the damage reported are read_files'."""
    import io as _io
    import tempfile

    from headrace.io._compressed import cut_damage, gunzip
    from headrace.spark.lakefiles import gunzip_stream

    raw = _gzip_cases()[case]
    data, damage = cut_damage(*gunzip(raw, "lake/f.gz"))
    with tempfile.TemporaryFile() as dst:
        got = gunzip_stream(_io.BytesIO(raw), dst, "lake/f.gz")
        dst.seek(0)
        assert dst.read() == data
    assert got == (None if damage is None else (damage[1], damage[2]))


def test_a_line_longer_than_duckdbs_line_limit_is_still_read(tmp_path: Path) -> None:
    long_name = "x" * 3_000_000  # DuckDB's CSV line limit is 2 MB: the file is read line by line instead
    result, rows, reasons = run(tmp_path, [json.dumps({"id": 1, "name": long_name}), '{"id": 2}', "{bad"])
    assert [(r["id"], len(r["name"] or "")) for r in rows] == [(1, 3_000_000), (2, 0)]
    assert reasons == {"{bad": R.INVALID_JSON} and result.rows_read == 3
