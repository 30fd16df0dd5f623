"""A file with malformed lines takes the aligned fast path (``_aligned``): a value past DuckDB's
type-detection sample must still be kept exactly or quarantined, just as the contract says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from headrace.io import contract, read_files

# More clean lines than DuckDB's type-detection sample, one malformed line among them.
PREFIX = [json.dumps({"id": i, "price": i + 0.5, "name": f"n{i}", "ok": i % 2 == 0})
          for i in range(25_000)]
PREFIX[100] = '{"id": 100, "price": '


@pytest.mark.parametrize("late", [
    '{"id": "42", "price": 1.5, "name": "x", "ok": true}',
    '{"id": 1.5, "price": 1.5, "name": "x", "ok": true}',
    '{"id": true, "price": 1.5, "name": "x", "ok": true}',
    '{"id": 1, "price": "1.5", "name": "x", "ok": true}',
    '{"id": 1, "price": 1.5, "name": 42, "ok": true}',
    '{"id": 1, "price": 1.5, "name": "x", "ok": 1}',
    '{"id": 1, "price": NaN, "name": "x", "ok": true}',
    '{"id": 1, "price": -Infinity, "name": "x", "ok": true}',
    '{"id": 1, "price": 9007199254740993, "name": "x", "ok": true}',
    '{"id": 1e5, "price": 1.5, "name": "x", "ok": true}',
    '{"ID": 1, "price": 1.5, "name": "x", "ok": true}',
    '{"id": 1, "id": 2, "price": 1.5, "name": "x", "ok": true}',
    '{"id": 1, "price": 1.5, "name": "x", "ok": true, "extra": 1}',
    '{"id": 1, "price": 1.5, "name": "x"}',
    '{"id": 1, "price": 7, "name": "x", "ok": false}',
])
def test_a_late_value_in_a_file_with_bad_lines_is_read_as_the_contract_says(
        tmp_path: Path, late: str) -> None:
    lines = [*PREFIX, late]
    path = tmp_path / "in.ndjson"
    path.write_text("\n".join(lines) + "\n")
    res = read_files(str(path), as_="arrow", quarantine_path=str(tmp_path / "q.parquet"))
    want, bad = contract.split((i + 1, line) for i, line in enumerate(lines))
    assert res.rows_read == len(lines) == res.rows_returned + res.rows_quarantined
    assert res.data.equals(want)
    got = [(b["line"], b["raw"], b["reason"]) for b in res.quarantine.to_pylist()]
    assert [(n, raw, _gist(r)) for n, raw, r in got] == [(n, raw, _gist(r)) for n, raw, r in bad]
    assert (101, PREFIX[100]) in [(b[0], b[1]) for b in bad]


def _gist(reason: str) -> str:
    """The reason, but for invalid JSON only that (the fast path does not say which character)."""
    return "invalid JSON" if reason.startswith("invalid JSON") else reason
