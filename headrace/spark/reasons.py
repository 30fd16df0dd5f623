"""Why a lake row is quarantined: one wording, shared by the DuckDB and the Spark engines.

Every bad row gets exactly one reason, decided in this order (the first that applies wins):

1. ``invalid UTF-8`` - the line is not valid UTF-8;
2. ``invalid JSON: not one complete JSON value`` - malformed JSON, single quotes, text after
   the object, two objects on one line, an unterminated string...;
3. ``not a JSON object but <kind>`` - a bare array, string, number, boolean or null
   (``<kind>``: array, string, integer, float, boolean, null);
4. ``duplicate key '<key>'`` - a key appears twice in the top-level object;
5. the first schema field, in schema order, whose value does not fit its type:
   ``field '<f>' is <got>, expected <want>`` (``<got>``: integer, float, string, boolean,
   object, array; ``<want>``: integer, float, string, boolean, date, timestamp), or
   ``field '<f>': integer does not fit in 64 bits``,
   ``field '<f>': integer cannot widen to float exactly (beyond 2**53)``,
   ``field '<f>': number is out of float64 range``,
   ``field '<f>' is not a date (YYYY-MM-DD)``,
   ``field '<f>' is not an ISO 8601 timestamp``;
6. the row-level rules that fail, in rule order, joined by ``"; "``, each
   ``rule <expectation name> failed on column '<c>'`` (``on columns 'a', 'b'`` for several);
7. a gzip file cut short or corrupt: its readable lines are kept and one more bad row (the
   partial last line) carries ``headrace.io._compressed``'s reason, which names the file and
   the offset (``truncated compressed file <file>: ...`` / ``corrupt compressed file ...``).

These are the record contract of ``headrace.io.contract`` (its wording, without the values:
the raw line is stored next to the reason).
"""

from __future__ import annotations

from collections.abc import Sequence

INVALID_UTF8 = "invalid UTF-8"
INVALID_JSON = "invalid JSON: not one complete JSON value"
JSON_KINDS = ("integer", "float", "string", "boolean", "object", "array", "null")
# schema type name -> the JSON kind the contract expects (date and timestamp are JSON strings)
WANT = {"int64": "integer", "float64": "float", "string": "string", "bool": "boolean",
        "date": "date", "timestamp": "timestamp"}


def not_object(kind: str) -> str:
    return f"not a JSON object but {kind}"


def duplicate_key(key: str) -> str:
    return f"duplicate key '{key}'"


def wrong_kind(field: str, got: str, want_type: str) -> str:
    """``want_type`` is a schema type name (``int64``...), shown as the contract's kind."""
    return f"field '{field}' is {got}, expected {WANT[want_type]}"


def too_big(field: str) -> str:
    return f"field '{field}': integer does not fit in 64 bits"


def inexact_float(field: str) -> str:
    return f"field '{field}': integer cannot widen to float exactly (beyond 2**53)"


def out_of_range(field: str) -> str:
    return f"field '{field}': number is out of float64 range"


def bad_date(field: str) -> str:
    return f"field '{field}' is not a date (YYYY-MM-DD)"


def bad_timestamp(field: str) -> str:
    return f"field '{field}' is not an ISO 8601 timestamp"


def rule_failed(name: str, columns: Sequence[str]) -> str:
    """One failed row-level rule; ``name`` is the expectation's name (``Expectation.name``)."""
    cols = ", ".join(f"'{c}'" for c in columns)
    return f"rule {name} failed on column{'s' if len(columns) > 1 else ''} {cols}"


RULES_SEPARATOR = "; "
