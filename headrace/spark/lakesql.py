"""The lake's typed read as one DuckDB query: raw lines in, typed columns and a reason out.

``typed_select`` turns a relation of raw lines (column ``__hr_line``) into the schema's typed
columns plus ``__hr_reason`` (NULL for a good row, else the first reason of
``headrace.spark.reasons``) and ``__hr_miss<i>`` bitmasks of the schema fields a record lacks.
Each line is parsed by DuckDB's JSON functions; reasons, paths and rule values are bound
parameters, identifiers are quoted: no value is ever part of the SQL text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from headrace.quality.backends.sql_ops import MULTI_PREDICATES, ROW_PREDICATES, Dialect, Query
from headrace.quality.backends.sqltext import quote
from headrace.spark import reasons as R

SQL_TYPES = {"int64": "BIGINT", "float64": "DOUBLE", "string": "VARCHAR", "bool": "BOOLEAN",
             "date": "DATE", "timestamp": "TIMESTAMPTZ"}
DATE_RE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
TIMESTAMP_RE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:?[0-9]{2})?"
MASK_BITS = 62
# DuckDB's JSON parser takes NaN and Infinity (any case) as numbers; JSON has neither. A valid
# line where one may stand as a value is "suspect": its verdict is checked in Python.
SUSPECT_RE = r"(?i)[:\[,][ \t\r\n]*-?(nan|inf)"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _json_path(name: str) -> str:
    return '$."' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


# A value's JSON kind from its text as json_extract gives it back (DuckDB writes a number as
# digits, with '.' or 'e' only when it is a float; an integer beyond 64 bits keeps its digits):
# its first character says the rest, no second parse.
def _is_int(e: str) -> str:
    return f"(NOT (contains({e}, '.') OR contains({e}, 'e') OR contains({e}, 'E')))"


# The first character of a value's JSON text as a code point (ord() is measured far cheaper than
# taking a one-character string): '"' 34, 't' 116, 'f' 102, 'n' 110, '{' 123, '[' 91.
QUOTE, TRUE_OR_FALSE, NULL_N, OBJECT, ARRAY = "34", "(116, 102)", "110", "123", "91"


def _kind(c: str, e: str) -> str:
    """The contract's kind name of JSON text ``e`` whose first character's code is ``c``."""
    return (f"CASE WHEN {c} = {QUOTE} THEN 'string' WHEN {c} IN {TRUE_OR_FALSE} THEN 'boolean' WHEN {c} = "
            f"{NULL_N} THEN 'null' WHEN {c} = {OBJECT} THEN 'object' WHEN {c} = {ARRAY} THEN 'array' "
            f"WHEN {_is_int(e)} THEN 'integer' ELSE 'float' END")


_NUMBER = "NOT ({c} IN (34, 116, 102, 110, 123, 91))"


class _Builder:
    def __init__(self, types: dict[str, str], checks: Sequence[Any]) -> None:
        self.types = types
        self.checks = list(checks)
        self.q = Query(Dialect())

    def p(self, value: Any) -> str:
        return self.q.p(value)

    def value(self, k: int, name: str, typ: str) -> str:
        c, e, s = f"__hr_c{k}", f"__hr_v{k}", f"__hr_s{k}"
        number = _NUMBER.format(c=c)
        if typ == "int64":
            return f"CASE WHEN {number} AND {_is_int(e)} THEN TRY_CAST({e} AS BIGINT) END"
        if typ == "float64":
            return f"CASE WHEN {number} THEN TRY_CAST({e} AS DOUBLE) END"
        if typ == "string":
            return s
        if typ == "bool":
            return f"CASE WHEN {c} IN {TRUE_OR_FALSE} THEN {e} = 'true' END"
        pattern, sql_type = (DATE_RE, "DATE") if typ == "date" else (TIMESTAMP_RE, "TIMESTAMPTZ")
        return f"TRY_CAST(CASE WHEN regexp_full_match({s}, {self.p(pattern)}) THEN {s} END AS {sql_type})"

    def fits(self, k: int, name: str, typ: str) -> str:
        """A cheap test that the field's value fits (most rows): ``problem`` runs only where it fails."""
        e, col = f"__hr_v{k}", quote(name)
        if typ == "float64":
            return (f"({e} IS NULL OR ({col} IS NOT NULL AND isfinite({col}) AND (NOT {_is_int(e)} OR "
                    f"coalesce(abs(TRY_CAST({e} AS HUGEINT)) <= {2 ** 53}, false))) OR {e} = 'null')")
        return f"({e} IS NULL OR {col} IS NOT NULL OR {e} = 'null')"

    def problem(self, k: int, name: str, typ: str) -> str:
        """The field's reason, or NULL when its value fits (absent and null always fit)."""
        c, e = f"__hr_c{k}", f"__hr_v{k}"
        before, after = R.wrong_kind(name, "@", typ).split("@")
        kind_msg = f"{self.p(before)} || {_kind(c, e)} || {self.p(after)}"
        number = _NUMBER.format(c=c)
        head = f"CASE WHEN {c} IS NULL OR {e} = 'null' THEN NULL "
        col = quote(name)
        if typ == "int64":
            return (head + f"WHEN {number} AND {_is_int(e)} THEN CASE WHEN {col} IS NULL THEN "
                    f"{self.p(R.too_big(name))} END ELSE {kind_msg} END")
        if typ == "float64":
            return (head + f"WHEN {number} AND {_is_int(e)} THEN CASE WHEN coalesce(abs(TRY_CAST({e} AS HUGEINT)) > "
                    f"{2 ** 53}, true) THEN {self.p(R.inexact_float(name))} END "
                    f"WHEN {number} THEN CASE WHEN NOT isfinite({col}) THEN "
                    f"{self.p(R.out_of_range(name))} END ELSE {kind_msg} END")
        if typ in ("string", "bool"):
            ok = f"{c} = {QUOTE}" if typ == "string" else f"{c} IN {TRUE_OR_FALSE}"
            return head + f"WHEN {ok} THEN NULL ELSE {kind_msg} END"
        bad = R.bad_date(name) if typ == "date" else R.bad_timestamp(name)
        return (head + f"WHEN {c} <> {QUOTE} THEN {kind_msg} WHEN {col} IS NULL THEN "
                f"{self.p(bad)} END")

    def rule(self, e: Any) -> str:
        """SQL true when the typed row fails expectation ``e`` (see quality's SqlSource)."""
        cols = [quote(c) for c in e.columns]
        if e.kind == "multi":
            bad, ignored = MULTI_PREDICATES[e.op](self.q, cols, e.kwargs)
            return "(NOT " + ignored + " AND (" + bad + "))"
        col = cols[0]
        if e.op == "not_null":
            return "(" + col + " IS NULL)"
        if e.op == "null":
            return "(" + col + " IS NOT NULL)"
        return "(" + col + " IS NOT NULL AND (" + ROW_PREDICATES[e.op](self.q, col, e.kwargs) + "))"


def supported_op(e: Any) -> bool:
    return e.op in ("not_null", "null") or (e.op in MULTI_PREDICATES if e.kind == "multi"
                                            else e.op in ROW_PREDICATES and e.op != "mismatch")


def _line_kind(jt: str, line: str) -> str:
    """The kind of a whole line that is valid JSON but no object (from DuckDB's json_type)."""
    return (f"CASE {jt} WHEN 'ARRAY' THEN 'array' WHEN 'VARCHAR' THEN 'string' WHEN 'BOOLEAN' THEN 'boolean' "
            f"WHEN 'NULL' THEN 'null' WHEN 'UBIGINT' THEN 'integer' WHEN 'BIGINT' THEN 'integer' "
            f"ELSE CASE WHEN {_is_int(line)} THEN 'integer' ELSE 'float' END END")


def typed_select(types: dict[str, str], checks: Sequence[Any], lines: str) -> tuple[str, dict[str, Any]]:
    """``SELECT <typed fields>, __hr_reason, __hr_raw, __hr_miss<i>, __hr_suspect, __hr_file FROM (lines)``.


    ``lines`` is SQL of a relation with a VARCHAR column ``__hr_line`` and an INTEGER ``__hr_file``
    (the number of the file the line comes from), passed through.
    ``__hr_suspect`` marks the rows ``settle_suspects`` must look at (their raw line is kept).
    """
    b = _Builder(types, checks)
    names = list(types)
    ks = range(1, len(names) + 1)
    obj = "__hr_jt = 'OBJECT'"
    # One parse for every field: json_extract with a literal list of paths (a bound parameter, or
    # one call per field, measured slower). The paths are the field names, escaped.
    paths = "[" + ", ".join(_literal(_json_path(n)) for n in names) + "]"
    values = [f"__hr_vs[{k}] AS __hr_v{k}" for k in ks]
    firsts = [f"ord(__hr_v{k}) AS __hr_c{k}" for k in ks]
    # A JSON string without escapes is its text between the quotes; the others are decoded.
    strings = [f"CASE WHEN __hr_c{k} = {QUOTE} THEN CASE WHEN contains(__hr_v{k}, '\\') THEN __hr_v{k} ->> '$' "
               f"ELSE __hr_v{k}[2:-2] END END AS __hr_s{k}"
               for k, n in zip(ks, names, strict=True) if types[n] in ("string", "date", "timestamp")]
    typed = [b.value(k, n, types[n]) + " AS " + quote(n) for k, n in zip(ks, names, strict=True)]
    problems = [b.problem(k, n, types[n]) for k, n in zip(ks, names, strict=True)]
    fits = [b.fits(k, n, types[n]) for k, n in zip(ks, names, strict=True)]
    # A record with as many keys as schema fields found has each key once: only the others are
    # checked for a duplicate (the distinct count is the costly part).
    present = "(" + " + ".join(f"(__hr_c{k} IS NOT NULL)::INTEGER" for k in ks) + ")"
    dup = "list_filter(__hr_keys, lambda x, i: list_position(__hr_keys, x) < i)[1]"
    dup_before, dup_after = R.duplicate_key("@").split("@")
    contract = (f"CASE WHEN NOT __hr_ok THEN {b.p(R.INVALID_JSON)} "
                f"WHEN NOT {obj} THEN {b.p(R.not_object(''))} || {_line_kind('__hr_jt', '__hr_line')} "
                f"WHEN CASE WHEN len(__hr_keys) > {present} THEN len(__hr_keys) <> len(list_distinct(__hr_keys)) "
                f"ELSE false END THEN "
                f"{b.p(dup_before)} || {dup} || {b.p(dup_after)} "
                f"WHEN {' AND '.join(fits)} THEN NULL "
                f"ELSE coalesce({', '.join(problems)}) END")
    preds = [b.rule(e) for e in checks]
    reasons = [f"CASE WHEN {pred} THEN {b.p(R.rule_failed(e.name, e.columns))} END"
               for pred, e in zip(preds, checks, strict=True)]
    # The reasons are only put together for the rows that fail a rule.
    rule_sql = (f"CASE WHEN {' OR '.join(preds)} THEN concat_ws({b.p(R.RULES_SEPARATOR)}, {', '.join(reasons)}) END"
                if checks else "NULL")
    masks = []
    for start in range(0, len(names), MASK_BITS):
        bits = [f"(CASE WHEN __hr_c{k + 1} IS NULL THEN {1 << (k - start)} ELSE 0 END)"
                for k in range(start, min(start + MASK_BITS, len(names)))]
        masks.append(f"CASE WHEN {obj} THEN CAST({' + '.join(bits)} AS BIGINT) ELSE 0 END "
                     f"AS __hr_miss{start // MASK_BITS}")
    mask_names = [f"__hr_miss{i}" for i in range(len(masks))]
    cols = ", ".join(quote(n) for n in names)
    sql = f"""
WITH j AS (SELECT __hr_line, __hr_file, json_valid(__hr_line) AS __hr_ok FROM ({lines})
           WHERE __hr_line IS NOT NULL),
k AS (SELECT *, CASE WHEN __hr_ok THEN json_keys(__hr_line) END AS __hr_keys, CASE WHEN NOT __hr_ok THEN NULL
                WHEN left(__hr_line, 1) = '{{' THEN 'OBJECT' ELSE json_type(__hr_line) END AS __hr_jt FROM j),
v0 AS (SELECT *, CASE WHEN {obj} THEN json_extract(__hr_line, {paths}) END AS __hr_vs FROM k),
v AS (SELECT *, {', '.join(values)} FROM v0),
c1 AS (SELECT *, {', '.join(firsts)} FROM v),
s AS (SELECT *{''.join(', ' + x for x in strings)} FROM c1),
f AS (SELECT *, {', '.join(typed)}, {', '.join(masks)} FROM s),
c AS (SELECT __hr_line, __hr_file, __hr_ok, {cols}, {', '.join(mask_names)}, {contract} AS __hr_why FROM f),
r AS (SELECT *, coalesce(__hr_why, {rule_sql}) AS __hr_reason,
             CASE WHEN __hr_ok AND (contains(lower(__hr_line), 'nan') OR contains(lower(__hr_line), 'inf'))
                  THEN regexp_matches(__hr_line, {b.p(SUSPECT_RE)}) ELSE false END AS __hr_suspect FROM c)
SELECT {cols}, __hr_reason, CASE WHEN __hr_reason IS NOT NULL OR __hr_suspect THEN __hr_line END AS __hr_raw,
       {', '.join(mask_names)}, __hr_suspect, __hr_file FROM r
WHERE __hr_ok OR trim(__hr_line, ' \t\r') <> ''"""
    return sql, b.q.params


def is_strict_json(line: str) -> bool:
    """Python's verdict on a suspect line: False when it holds NaN, Infinity or another non-JSON token."""
    import json

    def refuse(name: str) -> Any:
        raise ValueError(name)

    try:
        json.loads(line, parse_constant=refuse)
    except ValueError:
        return False
    return True
