"""Files: NDJSON, CSV, JSON, Parquet on local paths and file:// URLs; quarantine and atomicity."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from headrace.errors import DataFileError
from headrace.io import ReadResult, read_files, write_parquet


def ndjson(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def good(i: int) -> str:
    return json.dumps({"order_id": i, "amount": i * 1.5, "region": "North"})


def test_clean_ndjson_reads_everything(tmp_path: Path) -> None:
    res = read_files(str(ndjson(tmp_path / "a.ndjson", [good(i) for i in range(5)])),
                     format="ndjson")
    assert isinstance(res, ReadResult)
    assert (res.rows_read, res.rows_returned, res.rows_quarantined) == (5, 5, 0)
    assert res.data["order_id"].tolist() == [0, 1, 2, 3, 4]
    assert res.quarantine_path is None


def test_malformed_ndjson_lines_go_to_quarantine_and_counts_add_up(tmp_path: Path) -> None:
    lines = [good(1), '{"order_id": 2, "amount": ', good(3), "", "[1, 2]", good(4),
             "not json at all"]
    path = ndjson(tmp_path / "orders.ndjson", lines)
    qpath = tmp_path / "q" / "bad.parquet"
    res = read_files(f"file://{path}", as_="arrow", quarantine_path=str(qpath))
    assert res.data["order_id"].to_pylist() == [1, 3, 4]
    assert (res.rows_read, res.rows_returned, res.rows_quarantined) == (6, 3, 3)
    bad = res.quarantine.to_pylist()
    assert [b["line"] for b in bad] == [2, 5, 7]
    assert bad[0]["raw"] == '{"order_id": 2, "amount": '
    assert bad[0]["file"].endswith("orders.ndjson") and "invalid JSON" in bad[0]["reason"]
    assert "not a JSON object" in bad[1]["reason"]
    assert pq.read_table(qpath).num_rows == 3  # the quarantine dataset is kept


def test_quarantine_defaults_under_headrace_home(tmp_path: Path, headrace_home: Path) -> None:
    res = read_files(str(ndjson(tmp_path / "a.ndjson", [good(1), "{oops"])))
    assert res.quarantine_path is not None
    assert Path(res.quarantine_path).is_relative_to(headrace_home / "quarantine")


def test_values_of_the_wrong_type_are_quarantined_not_lost(tmp_path: Path) -> None:
    lines = [good(1), good(2), json.dumps({"order_id": "three", "amount": 1.0}), good(4), "{x"]
    res = read_files(str(ndjson(tmp_path / "a.ndjson", lines)), as_="polars")
    assert isinstance(res.data, pl.DataFrame)
    assert res.data["order_id"].to_list() == [1, 2, 4]
    assert [b["line"] for b in res.quarantine.to_pylist()] == [3, 5]
    assert res.rows_read == 5


def test_csv_rows_with_wrong_field_count_are_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "sales.csv"
    path.write_text("order_id,amount\n1,1.5\n2\n3,3.5\n4,4.5,extra\n")
    res = read_files(str(path), format="csv")
    assert res.data["order_id"].tolist() == [1, 3]
    assert [(b["line"], b["raw"]) for b in res.quarantine.to_pylist()] == [(3, "2"),
                                                                          (5, "4,4.5,extra")]
    assert res.rows_read == res.rows_returned + res.rows_quarantined == 4


def test_csv_with_mixed_column_keeps_every_value_as_text(tmp_path: Path) -> None:
    path = tmp_path / "sales.csv"
    path.write_text("order_id,amount\n1,1.5\n2,lots\n")
    res = read_files(str(path))
    assert res.data["amount"].tolist() == ["1.5", "lots"]


def test_glob_over_several_files_and_json_arrays(tmp_path: Path) -> None:
    for i in range(3):
        (tmp_path / f"part{i}.json").write_text(json.dumps([{"a": i}, {"a": i + 10}]))
    res = read_files(str(tmp_path / "part*.json"), as_="arrow")
    assert sorted(res.data["a"].to_pylist()) == [0, 1, 2, 10, 11, 12]
    assert len(res.files) == 3


def test_parquet_round_trip_is_atomic(tmp_path: Path) -> None:
    df = pd.DataFrame({"order_id": [1, 2], "region": ["N", "S"]})
    target = tmp_path / "out" / "sales.parquet"
    assert write_parquet(df, str(target)) == 2
    assert write_parquet(df.head(1), f"file://{target}") == 1  # replaced whole
    assert read_files(str(target)).data["order_id"].tolist() == [1]
    assert [p.name for p in target.parent.iterdir()] == ["sales.parquet"]  # no temp left


def test_partitioned_write_replaces_only_the_frames_partitions(tmp_path: Path) -> None:
    root = tmp_path / "lake" / "sales"
    df = pa.table({"order_id": [1, 2, 3], "day": ["2024-01-01", "2024-01-01", "2024-01-02"]})
    write_parquet(df, str(root), partition_by=["day"])
    write_parquet(pa.table({"order_id": [9], "day": ["2024-01-01"]}), str(root),
                  partition_by="day")
    got = read_files(str(root), format="parquet", as_="arrow").data
    assert sorted(zip(got["order_id"].to_pylist(), map(str, got["day"].to_pylist()),
                      strict=True)) == [(3, "2024-01-02"), (9, "2024-01-01")]
    assert sorted(p.name for p in root.iterdir()) == ["day=2024-01-01", "day=2024-01-02"]


def test_missing_and_unreadable_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="nope.ndjson"):
        read_files(str(tmp_path / "nope.ndjson"))
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataFileError, match="broken.parquet"):
        read_files(str(broken))
    with pytest.raises(DataFileError, match=r"no data files match .*\*\.csv"):
        read_files(str(tmp_path / "*.csv"))


def test_bad_lines_that_look_like_parts_of_good_lines_are_placed_right(tmp_path: Path) -> None:
    prefix = good(1)[:12]  # also the start of the good line that follows it
    lines = [prefix, good(1), prefix, good(2), "", "{oops"]
    path = tmp_path / "a.ndjson"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    res = read_files(str(path), as_="arrow")
    assert res.data["order_id"].to_pylist() == [1, 2]
    assert [b["line"] for b in res.quarantine.to_pylist()] == [1, 3, 6]
    assert res.rows_read == 5


def test_a_writer_killed_mid_write_leaves_the_old_file(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    target = tmp_path / "big.parquet"
    write_parquet(pa.table({"x": [1, 2, 3]}), str(target))
    code = ("import sys, numpy as np, pyarrow as pa; from headrace.io import write_parquet; "
            "write_parquet(pa.table({'x': np.arange(30_000_000)}), sys.argv[1])")
    proc = subprocess.Popen([sys.executable, "-c", code, str(target)])
    deadline = time.monotonic() + 30
    while not any(p.name.startswith(".big.parquet.tmp-") for p in tmp_path.iterdir()):
        assert time.monotonic() < deadline and proc.poll() is None, "never started writing"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert pq.read_table(target)["x"].to_pylist() == [1, 2, 3]  # whole and unchanged
    res = read_files(str(tmp_path / "*.parquet"))
    assert res.rows_read == 3  # the dead writer's hidden temp file is not data


def test_odd_lines_past_the_type_sample_are_kept_or_quarantined(tmp_path: Path) -> None:
    # DuckDB infers types from the first ~20k lines; later surprises must not vanish.
    lines = [good(i) for i in range(30_000)]
    lines[100] = "{broken"
    lines[25_000] = json.dumps({"order_id": 25_000, "amount": 1.0, "region": "N", "extra": 7})
    lines[26_000] = json.dumps({"order_id": "zz", "amount": 1.0, "region": "N"})
    res = read_files(str(ndjson(tmp_path / "a.ndjson", lines)), as_="arrow")
    assert res.rows_read == 30_000
    assert [b["line"] for b in res.quarantine.to_pylist()] == [101, 26_001]
    assert res.data["extra"].drop_null().to_pylist() == [7]
    assert res.data["order_id"].null_count == 0
