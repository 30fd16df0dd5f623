"""Property: over generated dirty lakes, every line is a good row with exactly its values, or is
quarantined with the reason the contract gives it; and the counters always add up."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headrace.quality import expect
from headrace.spark import LakeJob
from headrace.spark import reasons as R

SCHEMA = {"id": "int64", "price": "float64", "name": "string", "ok": "bool", "day": "date", "at": "timestamp"}
RULES = [expect.column_values_to_not_be_null("id"), expect.column_values_to_be_between("id", min_value=0)]
ABSENT = object()

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
offsets = st.sampled_from([None, dt.UTC, dt.timezone(dt.timedelta(hours=5, minutes=30)),
                           dt.timezone(dt.timedelta(hours=-8))])
stamps = st.builds(lambda d, tz, sep: (d.replace(tzinfo=tz), sep),
                   st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2100, 1, 1)), offsets,
                   st.sampled_from(["T", " "]))
any_json = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), st.floats(allow_nan=False,
                     allow_infinity=False), text, st.lists(st.integers(), max_size=2),
                     st.dictionaries(st.sampled_from("ab"), st.integers(), max_size=2))
VALUES = {
    "id": st.one_of(st.integers(-5, 2 ** 63 - 1), st.integers(2 ** 63, 2 ** 66), any_json),
    "price": st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-2 ** 60, 2 ** 60), any_json),
    "name": st.one_of(text, any_json),
    "ok": st.one_of(st.booleans(), any_json),
    "day": st.one_of(st.dates(min_value=dt.date(1000, 1, 1)).map(dt.date.isoformat),
                     st.sampled_from(["2024-02-30", "2024-1-05", "2024-01-05 00:00", "x"]), any_json),
    "at": st.one_of(stamps.map(lambda p: p[0].isoformat(sep=p[1])),
                    st.sampled_from(["yesterday", "2024-01-05T24:61:00", "2024-01-05"]), any_json),
}


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    return {float: "float", str: "string", list: "array", dict: "object"}[type(v)]


def field_outcome(name: str, typ: str, v: Any) -> tuple[Any, str | None]:
    """(typed value, reason) of one field under the contract - written from the spec, not the code."""
    if v is ABSENT or v is None:
        return None, None
    k = _kind(v)
    if typ == "int64":
        if k != "integer":
            return None, R.wrong_kind(name, k, typ)
        return (v, None) if -(2 ** 63) <= v < 2 ** 63 else (None, R.too_big(name))
    if typ == "float64":
        if k == "integer":
            return (float(v), None) if abs(v) <= 2 ** 53 else (None, R.inexact_float(name))
        return (v, None) if k == "float" else (None, R.wrong_kind(name, k, typ))
    if typ == "string":
        return (v, None) if k == "string" else (None, R.wrong_kind(name, k, typ))
    if typ == "bool":
        return (v, None) if k == "boolean" else (None, R.wrong_kind(name, k, typ))
    if k != "string":
        return None, R.wrong_kind(name, k, typ)
    if typ == "date":
        import re

        try:
            assert re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", v)
            return dt.date.fromisoformat(v), None
        except (AssertionError, ValueError):
            return None, R.bad_date(name)
    import re

    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
                        r"(Z|[+-][0-9]{2}:?[0-9]{2})?", v):
        return None, R.bad_timestamp(name)
    try:
        t = dt.datetime.fromisoformat(v)
    except ValueError:
        return None, R.bad_timestamp(name)
    return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).astimezone(dt.UTC), None


def record_outcome(rec: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    row = {}
    for name, typ in SCHEMA.items():
        value, reason = field_outcome(name, typ, rec.get(name, ABSENT))
        if reason is not None:
            return None, reason
        row[name] = value
    failed = []
    if row["id"] is None:
        failed.append(R.rule_failed("column_values_to_not_be_null(id)", ["id"]))
    if row["id"] is not None and row["id"] < 0:
        failed.append(R.rule_failed("column_values_to_be_between(id)", ["id"]))
    return (None, R.RULES_SEPARATOR.join(failed)) if failed else (row, None)


records = st.fixed_dictionaries({}, optional={n: s for n, s in VALUES.items()})
BROKEN = {
    "truncate": lambda line: (line[: max(1, len(line) // 2)], R.INVALID_JSON),
    "single quotes": lambda line: ("{'id': 1}", R.INVALID_JSON),
    "trailing": lambda line: (line + " x", R.INVALID_JSON),
    "two objects": lambda line: (line + line, R.INVALID_JSON),
    "nan": lambda line: ('{"id": 1, "price": NaN}', R.INVALID_JSON),
    "infinity": lambda line: ('{"id": 1, "extra": [-Infinity]}', R.INVALID_JSON),
    "array": lambda line: ("[" + line + "]", R.not_object("array")),
    "duplicate": lambda line: ('{"name": "a", "id": 1, "name": "b"}', R.duplicate_key("name")),
}


@st.composite
def lines(draw: Any) -> tuple[str, dict[str, Any] | None, str | None]:
    """(line, good row or None, reason or None); a blank line is ("", None, None)."""
    rec = draw(records)
    separators = draw(st.sampled_from([(",", ":"), (", ", ": ")]))
    line = json.dumps(rec, ensure_ascii=draw(st.booleans()), separators=separators)
    choice = draw(st.sampled_from(["record"] * 6 + ["broken", "blank"]))
    if choice == "blank":
        return draw(st.sampled_from(["", "  ", "\t"])), None, None
    if choice == "broken":
        line, reason = BROKEN[draw(st.sampled_from(sorted(BROKEN)))](line)
        return line, None, reason
    if rec and draw(st.booleans()):
        line = " " + line + " "  # whitespace around the object is fine
    row, reason = record_outcome(rec)
    return line, row, reason


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    for k in SCHEMA:
        x, y = a.get(k), b.get(k)
        if isinstance(x, float) and isinstance(y, float):
            if not (x == y and math.copysign(1, x) == math.copysign(1, y)):
                return False
        elif x != y or type(x) is not type(y):
            return False
    return True


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(st.lists(st.lists(lines(), max_size=25), min_size=1, max_size=3), st.booleans())
def test_every_line_is_good_or_quarantined_with_its_reason(tmp_path_factory: Any, files: list[Any], crlf: bool) -> None:
    tmp = tmp_path_factory.mktemp("lake")
    expected_good: list[dict[str, Any]] = []
    expected_bad: Counter[tuple[str, str]] = Counter()
    for i, content in enumerate(files):
        end = "\r\n" if crlf else "\n"
        (tmp / "lake").mkdir(exist_ok=True)
        (tmp / "lake" / f"f{i}.ndjson").write_text("".join(line + end for line, _, _ in content), encoding="utf-8")
        for line, row, reason in content:
            if row is not None:
                expected_good.append(row)
            elif reason is not None:
                expected_bad[(line, reason)] += 1
    result = LakeJob(str(tmp / "lake"), SCHEMA, RULES, str(tmp / "wh")).run()
    quarantined = Counter((r["raw"], r["reason"]) for f in sorted((tmp / "wh" / "_quarantine").glob("*.parquet"))
                          for r in pq.read_table(f).to_pylist()) if (tmp / "wh" / "_quarantine").exists() else Counter()
    assert quarantined == expected_bad
    got = ds.dataset(str(tmp / "wh" / "part-0.parquet")).to_table().to_pylist() if expected_good else []
    assert len(got) == len(expected_good)
    unmatched = list(got)
    for want in expected_good:
        hit = next((g for g in unmatched if _same(g, want)), None)
        assert hit is not None, f"good row {want} not found exactly; got {unmatched[:3]}"
        unmatched.remove(hit)
    assert result.rows_read == result.good_rows + result.bad_rows == len(expected_good) + sum(expected_bad.values())
    assert result.bad_rows == sum(expected_bad.values())
    assert result.bad_bytes == sum(len(raw.encode()) * n for (raw, _), n in expected_bad.items())
    missing = Counter(k for row_lines in files for line, row, _ in row_lines if row is not None
                      for k in SCHEMA if k not in json.loads(line))
    assert result.missing == dict(missing)


def test_a_lake_of_only_bad_lines_publishes_no_rows(tmp_path: Path) -> None:
    (tmp_path / "lake").mkdir()
    (tmp_path / "lake" / "a.ndjson").write_text('{"id": -1}\n{"id": "x"}\n', encoding="utf-8")
    result = LakeJob(str(tmp_path / "lake"), SCHEMA, RULES, str(tmp_path / "wh")).run()
    assert (result.rows_read, result.good_rows, result.bad_rows, result.bytes_written) == (2, 0, 2, 0)
    assert not (tmp_path / "wh" / "part-0.parquet").exists()
