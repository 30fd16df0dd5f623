"""The strict record contract: a value read is the value written, or its record is quarantined.

Shared by every reader of records (``read_files`` on NDJSON and CSV, and the lake jobs on DuckDB
or Spark): the same rules, the same reasons. A reader never rounds, never casts a string or a
boolean to a number, never truncates. Per field, the kinds of the non-null values decide the
column (``settle``):

* integers only: a 64-bit integer column; an integer beyond 64 bits is quarantined;
* integers and floats: the column widens to float64, and an integer that a float64 cannot hold
  exactly (beyond 2**53) is quarantined;
* anything else mixed: the most common kind wins (integers and floats count together as
  numbers; a tie goes to the kind seen first) and records holding another kind are quarantined.

A line is quarantined whole, with one reason, when it is not valid UTF-8, not one JSON object
(single quotes, text after the object, two objects on one line, a bare array...), has a
duplicate key, or a number out of float64 range.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

import pyarrow as pa

INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1
EXACT_FLOAT_INT = 2 ** 53  # every integer up to this magnitude is a float64 exactly


class RecordError(ValueError):
    """A record the contract refuses; ``str()`` is the quarantine reason."""


def kind(value: Any) -> str:
    """The JSON kind of a parsed value: integer, float, string, boolean, object, array, null."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return "object" if isinstance(value, dict) else "array"


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise RecordError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _constant(name: str) -> float:
    raise RecordError(f"invalid JSON: {name} is not a JSON value")


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise RecordError(f"number {text[:40]} is out of float64 range")
    return value


def parse_line(raw: bytes | str) -> dict[str, Any]:
    """One NDJSON line as a record, or ``RecordError`` with the reason."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RecordError(f"invalid UTF-8 at byte {exc.start} of the line") from None
    try:
        value = json.loads(raw, object_pairs_hook=_pairs, parse_constant=_constant,
                           parse_float=_float)
    except RecordError:
        raise
    except ValueError as exc:
        raise RecordError(f"invalid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise RecordError(f"not a JSON object but {kind(value)}")
    return value


def _family(k: str) -> str:
    return "number" if k in ("integer", "float") else k


def settle(records: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Each field's column kind under the contract (``integer``, ``float``, ``string``, ...)."""
    seen: dict[str, dict[str, int]] = {}
    for rec in records:
        for key, value in rec.items():
            k = kind(value)
            if k != "null":
                counts = seen.setdefault(key, {})
                counts[k] = counts.get(k, 0) + 1
            else:
                seen.setdefault(key, {})
    columns = {}
    for key, counts in seen.items():
        families: dict[str, int] = {}
        for k, n in counts.items():  # insertion order: the kind seen first wins a tie
            families[_family(k)] = families.get(_family(k), 0) + n
        best = max(families, key=lambda f: families[f]) if families else "null"
        if best == "number":
            best = "float" if "float" in counts else "integer"
        columns[key] = best
    return columns


def check(rec: dict[str, Any], columns: dict[str, str]) -> str | None:
    """Why ``rec`` does not fit ``columns`` unchanged, or ``None`` when it does."""
    for key, value in rec.items():
        want, got = columns.get(key, "null"), kind(value)
        if got == "null" or got == want:
            if got == "integer" and not INT64_MIN <= value <= INT64_MAX:
                return f"field {key!r}: integer {value} does not fit in 64 bits"
            continue
        if got == "integer" and want == "float":
            if abs(value) > EXACT_FLOAT_INT:
                return (f"field {key!r}: integer {value} cannot widen to float exactly "
                        "(beyond 2**53)")
            continue
        return f"field {key!r} is {got}, expected {want}"
    return None


_ARROW = {"integer": pa.int64(), "float": pa.float64(), "string": pa.string(),
          "boolean": pa.bool_(), "null": pa.null()}


def to_arrow(records: list[dict[str, Any]], columns: dict[str, str]) -> pa.Table:
    """Records that passed ``check`` as an Arrow table, one column per field, in field order."""
    arrays = {}
    for key, col_kind in columns.items():
        values = [rec.get(key) for rec in records]
        if col_kind == "float":
            values = [float(v) if isinstance(v, int) else v for v in values]
        typ = _ARROW.get(col_kind)
        arrays[key] = pa.array(values, typ) if typ is not None else pa.array(values)
    return pa.table(arrays) if arrays else pa.table({}).take([])


def split(lines: Iterable[tuple[int, bytes | str]]
          ) -> tuple[pa.Table, list[tuple[int, str, str]]]:
    """Apply the contract to numbered raw lines: the good records as Arrow, the rest as
    ``(line, raw text, reason)``."""
    parsed: list[tuple[int, str, dict[str, Any]]] = []
    bad: list[tuple[int, str, str]] = []
    for n, raw in lines:
        text = raw if isinstance(raw, str) else raw.decode("utf-8", errors="backslashreplace")
        try:
            parsed.append((n, text, parse_line(raw)))
        except RecordError as exc:
            bad.append((n, text, str(exc)))
    columns = settle(rec for _, _, rec in parsed)
    good = []
    for n, text, rec in parsed:
        # A table needs a column to hold a row: records without any field have none.
        reason = check(rec, columns) if columns else "empty object: no field to make a row of"
        if reason is None:
            good.append(rec)
        else:
            bad.append((n, text, reason))
    bad.sort()
    return to_arrow(good, columns), bad


# -- the same rules as SQL, for DuckDB reading a column as JSON text ----------------------------
# DuckDB writes a JSON number as digits, with '.' or 'e' only when it is a float: first-character
# and substring tests say the kind without a regular expression (they run on every value).
_SQL_KIND_OK = {
    "integer": "(left({v}, 1) IN ('-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9') AND "
               "NOT contains({v}, '.') AND NOT contains(lower({v}), 'e'))",
    "float": "left({v}, 1) IN ('-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9')",
    "string": "starts_with({v}, '\"')",
    "boolean": "{v} IN ('true', 'false')",
}


def sql_violation(value_sql: str, column_kind: str) -> str | None:
    """A DuckDB SQL predicate: the JSON text ``value_sql`` is not of ``column_kind`` (NULL and
    JSON null always fit). ``None`` for kinds checked elsewhere (nested values)."""
    ok = _SQL_KIND_OK.get(column_kind)
    if ok is None:
        return None
    test = ok.format(v=value_sql)
    return f"({value_sql} IS NOT NULL AND {value_sql} <> 'null' AND NOT {test})"
