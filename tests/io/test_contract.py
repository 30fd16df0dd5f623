"""The strict record contract: values are kept exactly, or their record is quarantined with a reason."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from headrace.errors import ConnectionFailed, SchemaMismatch
from headrace.io import read_files, read_sql, write_parquet, write_table

# Enough clean lines that DuckDB's type detection (a sample of the first lines) never sees
# the odd value at the end.
PREFIX = [json.dumps({"order_id": i, "price": i}) for i in range(25_000)]


def read(tmp_path: Path, lines: list[str] | bytes, name: str = "in.ndjson") -> Any:
    path = tmp_path / name
    if isinstance(lines, bytes):
        path.write_bytes(lines)
    else:
        path.write_text("\n".join(lines) + "\n")
    res = read_files(str(path), as_="arrow", quarantine_path=str(tmp_path / "q.parquet"))
    assert res.rows_read == res.rows_returned + res.rows_quarantined
    return res


def reasons(res: Any) -> list[tuple[int, str]]:
    return [(b["line"], b["reason"]) for b in res.quarantine.to_pylist()]


def test_a_late_float_widens_an_integer_column_instead_of_rounding(tmp_path: Path) -> None:
    res = read(tmp_path, [*PREFIX, json.dumps({"order_id": 25_000, "price": 19.99})])
    assert res.rows_quarantined == 0
    assert res.data.schema.field("price").type == pa.float64()
    assert res.data.column("price")[-1].as_py() == 19.99
    assert res.data.column("price")[-2].as_py() == 24_999.0


@pytest.mark.parametrize(("value", "kind"), [('"42"', "string"), ("true", "boolean")])
def test_a_late_string_or_boolean_is_quarantined_not_cast_to_a_number(
        tmp_path: Path, value: str, kind: str) -> None:
    res = read(tmp_path, [*PREFIX, f'{{"order_id": 25000, "price": {value}}}'])
    assert reasons(res) == [(25_001, f"field 'price' is {kind}, expected integer")]
    assert res.data.schema.field("price").type == pa.int64()
    assert res.rows_returned == 25_000


def test_invalid_utf8_is_quarantined_with_its_reason(tmp_path: Path) -> None:
    res = read(tmp_path, b'{"name": "ok"}\n{"name": "caf\xe9"}\n{"name": "fine"}\n')
    assert res.data.column("name").to_pylist() == ["ok", "fine"]
    (line, raw, reason), = [(b["line"], b["raw"], b["reason"]) for b in res.quarantine.to_pylist()]
    assert line == 2 and "invalid UTF-8" in reason and "caf" in raw


def test_an_integer_beyond_64_bits_is_quarantined_and_the_file_kept(tmp_path: Path) -> None:
    res = read(tmp_path, ['{"id": 1}', '{"id": 123456789012345678901234567890}', '{"id": 3}'])
    assert res.data.column("id").to_pylist() == [1, 3]
    assert reasons(res) == [(2, "field 'id': integer 123456789012345678901234567890 does not "
                                "fit in 64 bits")]


def test_an_integer_a_float_column_cannot_hold_exactly_is_quarantined(tmp_path: Path) -> None:
    res = read(tmp_path, ['{"x": 1.5}', '{"x": 9007199254740993}', '{"x": 4}'])
    assert res.data.column("x").to_pylist() == [1.5, 4.0]
    assert "cannot widen to float exactly" in reasons(res)[0][1]


@pytest.mark.parametrize(("line", "reason"), [
    ("{'id': 2}", "invalid JSON"),
    ('{"id": 2} trailing', "invalid JSON"),
    ('{"id": 2}{"id": 3}', "invalid JSON"),
    ('{"id": 2, "id": 3}', "duplicate key 'id'"),
    ("[2]", "not a JSON object"),
])
def test_malformed_lines_are_all_bad_with_a_reason(tmp_path: Path, line: str, reason: str) -> None:
    res = read(tmp_path, ['{"id": 1}', line, '{"id": 4}'])
    assert res.data.column("id").to_pylist() == [1, 4]
    assert len(reasons(res)) == 1 and reasons(res)[0][0] == 2 and reason in reasons(res)[0][1]


def test_strings_stay_strings(tmp_path: Path) -> None:
    res = read(tmp_path, ['{"day": "2024-01-31", "code": "007"}'])
    assert res.data.to_pylist() == [{"day": "2024-01-31", "code": "007"}]


def test_a_truncated_gzip_keeps_its_readable_records_and_names_the_damage(tmp_path: Path) -> None:
    whole = gzip.compress("".join(json.dumps({"id": i, "pad": "x" * 30}) + "\n"
                                  for i in range(20_000)).encode())
    res = read(tmp_path, whole[: len(whole) // 2], name="orders.ndjson.gz")
    assert res.rows_returned > 1000
    assert res.data.column("id").to_pylist() == list(range(res.rows_returned))
    assert res.rows_quarantined == 1  # one reason for the damage, no junk lines
    (reason,) = [b["reason"] for b in res.quarantine.to_pylist()]
    assert reason.startswith("truncated compressed file") and "orders.ndjson.gz" in reason
    assert "offset" in reason


def test_a_csv_unterminated_quote_does_not_swallow_the_rows_after_it(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text('id,name\n1,"ann"\n2,"bob\n3,carl\n4,"multi\nline"\n5,eve\n')
    res = read_files(str(path), as_="arrow", quarantine_path=str(tmp_path / "q.parquet"))
    assert res.data.to_pylist() == [{"id": 1, "name": "ann"}, {"id": 3, "name": "carl"},
                                    {"id": 4, "name": "multi\nline"}, {"id": 5, "name": "eve"}]
    assert [(b["line"], b["raw"]) for b in res.quarantine.to_pylist()] == [(3, '2,"bob')]
    assert "unterminated quoted field" in res.quarantine.to_pylist()[0]["reason"]
    assert res.rows_read == res.rows_returned + res.rows_quarantined == 5


def test_write_parquet_gives_nan_and_null_their_own_partitions(tmp_path: Path) -> None:
    table = pa.table({"p": [1.0, float("nan"), None, float("nan")], "v": [1, 2, 3, 4]})
    assert write_parquet(table, str(tmp_path / "out"), partition_by="p") == 4
    folders = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert folders == ["p=1.0", "p=NaN", "p=__HIVE_DEFAULT_PARTITION__"]
    back = read_files(str(tmp_path / "out"), format="parquet", as_="arrow")
    assert sorted(back.data.column("v").to_pylist()) == [1, 2, 3, 4]


@pytest.mark.parametrize("backend", ["duckdb", "sqlite", "postgresql"])
def test_integers_beyond_2_53_into_a_double_column_are_refused(
        backend: str, request: Any, tmp_path: Path) -> None:
    url = {"postgresql": lambda: request.getfixturevalue("pg_libpq_url"),
           "duckdb": lambda: f"duckdb:///{tmp_path / 'w.duckdb'}",
           "sqlite": lambda: f"sqlite:///{tmp_path / 'w.sqlite'}"}[backend]()
    write_table(pa.table({"id": [1], "amount": [1.5]}), "sales", url)
    write_table(pa.table({"id": [2], "amount": [2 ** 53]}), "sales", url)  # still exact
    with pytest.raises(SchemaMismatch, match=r"sales.*'amount'") as info:
        write_table(pa.table({"id": [3], "amount": [2 ** 53 + 1]}), "sales", url)
    if backend != "postgresql":
        assert "9007199254740993" in str(info.value)
    assert read_sql("SELECT count(*) AS n FROM sales", url)["n"][0] == 2


def test_read_sql_against_a_silent_server_times_out_naming_the_host(
        monkeypatch: pytest.MonkeyPatch) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])  # accept, then never answer
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    port = server.getsockname()[1]
    url = f"postgresql://etl:s3cret-pw@127.0.0.1:{port}/dwh"
    try:
        started = time.monotonic()
        with pytest.raises(ConnectionFailed, match=rf"127\.0\.0\.1:{port}.*no answer within 2 s"):
            read_sql("SELECT 1", url, connect_timeout=2)
        assert time.monotonic() - started < 15
        monkeypatch.setenv("HEADRACE_CONNECT_TIMEOUT", "2")
        with pytest.raises(ConnectionFailed) as info:
            read_sql("SELECT 1", url)
        assert "s3cret-pw" not in str(info.value) and "***" in str(info.value)
    finally:
        stop.set()
        thread.join(5)
        for sock in accepted:
            sock.close()
        server.close()
