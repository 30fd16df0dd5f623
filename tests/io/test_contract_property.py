"""Property: whatever the file or frame, every value read is the value written, or its row is in
quarantine with a reason; and rows read = rows returned + rows quarantined."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headrace.io import read_files, read_sql, write_table

SETTINGS = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

values = st.one_of(
    st.none(), st.booleans(), st.text(max_size=12),
    st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
    st.integers(min_value=-1000, max_value=1000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -0.0, 0.1]))
records = st.dictionaries(st.sampled_from(["a", "b", "c", "ü ñ"]), values, max_size=4)
broken = st.sampled_from([b"{", b"{'a': 1}", b'{"a": 1} x', b"[1, 2]", b'{"a": 1, "a": 2}',
                          b'{"a": "caf\xe9"}', b'{"a": 1}{"b": 2}', b"null", b'"text"'])
lines = st.lists(st.one_of(records.map(lambda r: ("record", r)), broken.map(lambda b: ("raw", b))),
                 min_size=1, max_size=40)


def encode(item: tuple[str, Any], ascii_only: bool) -> bytes:
    kind, value = item
    if kind == "raw":
        return bytes(value)
    return json.dumps(value, ensure_ascii=ascii_only).encode()


def same(read: Any, written: Any) -> bool:
    if isinstance(written, bool) or isinstance(read, bool):
        return type(read) is type(written) and read == written
    if isinstance(written, int) and isinstance(read, float):
        return float(written) == read and int(read) == written  # widened exactly
    if isinstance(written, float):
        return isinstance(read, float) and (read == written or (math.isnan(read) and
                                                                 math.isnan(written)))
    return type(read) is type(written) and read == written


@SETTINGS
@given(lines=lines, ascii_only=st.booleans(), padding=st.integers(0, 1))
def test_ndjson_values_come_back_exactly_or_are_quarantined(
        lines: list[tuple[str, Any]], ascii_only: bool, padding: int) -> None:
    body = b"\n".join(encode(item, ascii_only) for item in lines) + b"\n" * padding
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.ndjson"
        path.write_bytes(body)
        res = read_files(str(path), as_="arrow", quarantine_path=f"{tmp}/q.parquet")
    assert res.rows_read == res.rows_returned + res.rows_quarantined == len(lines)
    bad = {b["line"]: b["reason"] for b in res.quarantine.to_pylist()}
    assert all(reason for reason in bad.values())
    returned = res.data.to_pylist()
    kept = [item for n, item in enumerate(lines, start=1) if n not in bad]
    assert len(kept) == len(returned)
    for (kind, written), row in zip(kept, returned, strict=True):
        assert kind == "record"
        for key in set(written) | set(row):
            assert same(row.get(key), written.get(key)), (key, row, written)


columns = st.sampled_from(["int", "float", "str", "bool"])


@st.composite
def frames(draw: Any) -> pa.Table:
    n = draw(st.integers(1, 12))
    kinds = draw(st.lists(columns, min_size=1, max_size=4))
    data = {}
    for i, kind in enumerate(kinds):
        element = {"int": st.integers(-(2 ** 63), 2 ** 63 - 1),
                   "float": st.floats(allow_nan=False, allow_infinity=False),
                   "str": st.text(max_size=10), "bool": st.booleans()}[kind]
        typ = {"int": pa.int64(), "float": pa.float64(), "str": pa.string(), "bool": pa.bool_()}[kind]
        data[f"c{i} é"] = pa.array(draw(st.lists(st.one_of(st.none(), element), min_size=n,
                                                 max_size=n)), typ)
    return pa.table(data)


@SETTINGS
@given(table=frames())
def test_frames_written_to_duckdb_and_sqlite_read_back_unchanged(table: pa.Table) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for url in (f"duckdb:///{tmp}/w.duckdb", f"sqlite:///{tmp}/w.sqlite"):
            assert write_table(table, "t", url) == table.num_rows
            back = read_sql("SELECT * FROM t", url, as_="arrow")
            for name in table.column_names:
                got, want = back.column(name).to_pylist(), table.column(name).to_pylist()
                if pa.types.is_boolean(table.schema.field(name).type) and "sqlite" in url:
                    got = [None if v is None else bool(v) for v in got]  # SQLite keeps 0/1
                assert all(same(g, w) if w is not None else g is None
                           for g, w in zip(got, want, strict=True)), (url, name, got, want)
