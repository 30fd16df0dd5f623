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
DATE_RE = r"\d{4}-\d{2}-\d{2}"
TIMESTAMP_RE = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?"
MASK_BITS = 62
_INTS = "('UBIGINT', 'BIGINT')"


def _json_path(name: str) -> str:
    return '$."' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _kind(t: str, e: str) -> str:
    """The contract's kind of a JSON value from DuckDB's json_type ``t`` and its text ``e``."""
    return (f"CASE {t} WHEN 'UBIGINT' THEN 'integer' WHEN 'BIGINT' THEN 'integer' "
            f"WHEN 'DOUBLE' THEN CASE WHEN {_int_text(e)} THEN 'integer' ELSE 'float' END "
            f"WHEN 'VARCHAR' THEN 'string' WHEN 'BOOLEAN' THEN 'boolean' WHEN 'OBJECT' THEN 'object' "
            f"WHEN 'ARRAY' THEN 'array' ELSE 'null' END")


def _int_text(e: str) -> str:
    # DuckDB keeps an integer beyond 64 bits as its digits (typed DOUBLE); a float has '.' or 'e'.
    return f"NOT (contains({e}, '.') OR contains(lower({e}), 'e'))"


class _Builder:
    def __init__(self, types: dict[str, str], checks: Sequence[Any]) -> None:
        self.types = types
        self.checks = list(checks)
        self.q = Query(Dialect())

    def p(self, value: Any) -> str:
        return self.q.p(value)

    def value(self, k: int, name: str, typ: str) -> str:
        t, e, s = f"__hr_t[{k}]", f"__hr_v[{k}]", f"__hr_s{k}"
        if typ == "int64":
            return f"CASE WHEN {t} IN {_INTS} THEN TRY_CAST({e} AS BIGINT) END"
        if typ == "float64":
            return f"CASE WHEN {t} IN ('UBIGINT', 'BIGINT', 'DOUBLE') THEN TRY_CAST({e} AS DOUBLE) END"
        if typ == "string":
            return s
        if typ == "bool":
            return f"CASE WHEN {t} = 'BOOLEAN' THEN {e} = 'true' END"
        pattern, sql_type = (DATE_RE, "DATE") if typ == "date" else (TIMESTAMP_RE, "TIMESTAMPTZ")
        return f"TRY_CAST(CASE WHEN regexp_full_match({s}, {self.p(pattern)}) THEN {s} END AS {sql_type})"

    def problem(self, k: int, name: str, typ: str) -> str:
        """The field's reason, or NULL when its value fits (absent and null always fit)."""
        t, e = f"__hr_t[{k}]", f"__hr_v[{k}]"
        kind_msg = (f"{self.p(R.wrong_kind(name, '@', typ).split('@')[0])} || {_kind(t, e)} || "
                    f"{self.p(R.wrong_kind(name, '@', typ).split('@')[1])}")
        head = f"CASE WHEN {t} IS NULL OR {t} = 'NULL' THEN NULL "
        if typ == "int64":
            return (head + f"WHEN {t} IN {_INTS} THEN CASE WHEN TRY_CAST({e} AS BIGINT) IS NULL THEN "
                    f"{self.p(R.too_big(name))} END WHEN {t} = 'DOUBLE' AND {_int_text(e)} THEN "
                    f"{self.p(R.too_big(name))} ELSE {kind_msg} END")
        if typ == "float64":
            return (head + f"WHEN {t} IN {_INTS} THEN CASE WHEN abs(TRY_CAST({e} AS HUGEINT)) > "
                    f"{2 ** 53} THEN {self.p(R.inexact_float(name))} END "
                    f"WHEN {t} = 'DOUBLE' AND {_int_text(e)} THEN {self.p(R.inexact_float(name))} "
                    f"WHEN {t} = 'DOUBLE' THEN CASE WHEN NOT isfinite(TRY_CAST({e} AS DOUBLE)) THEN "
                    f"{self.p(R.out_of_range(name))} END ELSE {kind_msg} END")
        if typ in ("string", "bool"):
            want = "VARCHAR" if typ == "string" else "BOOLEAN"
            return head + f"WHEN {t} = '{want}' THEN NULL ELSE {kind_msg} END"
        bad = R.bad_date(name) if typ == "date" else R.bad_timestamp(name)
        return (head + f"WHEN {t} <> 'VARCHAR' THEN {kind_msg} WHEN {quote(name)} IS NULL THEN "
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


def typed_select(types: dict[str, str], checks: Sequence[Any], lines: str) -> tuple[str, dict[str, Any]]:
    """``SELECT <typed fields>, __hr_reason, __hr_raw, __hr_miss<i> FROM (lines)``, and its params.

    ``lines`` is SQL of a relation with one VARCHAR column ``__hr_line`` (it may use ``$path``).
    """
    b = _Builder(types, checks)
    names = list(types)
    paths = b.p([_json_path(n) for n in names])
    obj = "__hr_jt = 'OBJECT'"
    strings = [f"CASE WHEN __hr_t[{k + 1}] = 'VARCHAR' THEN __hr_v[{k + 1}] ->> '$' END AS __hr_s{k + 1}"
               for k, n in enumerate(names) if types[n] in ("string", "date", "timestamp")]
    typed = [b.value(k + 1, n, types[n]) + " AS " + quote(n) for k, n in enumerate(names)]
    problems = [b.problem(k + 1, n, types[n]) for k, n in enumerate(names)]
    dup = ("list_filter(__hr_keys, lambda x, i: list_position(__hr_keys, x) < i)[1]")
    contract = (f"CASE WHEN NOT __hr_ok THEN {b.p(R.INVALID_JSON)} "
                f"WHEN NOT {obj} THEN {b.p(R.not_object('@').split('@')[0])} || {_kind('__hr_jt', '__hr_line')} "
                f"WHEN len(__hr_keys) <> len(list_distinct(__hr_keys)) THEN "
                f"{b.p(R.duplicate_key('@').split('@')[0])} || {dup} || {b.p(R.duplicate_key('@').split('@')[1])} "
                f"ELSE coalesce({', '.join(problems)}) END")
    rules = [f"CASE WHEN {b.rule(e)} THEN {b.p(R.rule_failed(e.name, e.columns))} END" for e in checks]
    rule_sql = (f"NULLIF(concat_ws({b.p(R.RULES_SEPARATOR)}, {', '.join(rules)}), '')" if rules else "NULL")
    masks = []
    for start in range(0, len(names), MASK_BITS):
        bits = [f"(CASE WHEN __hr_t[{k + 1}] IS NULL THEN {1 << (k - start)} ELSE 0 END)"
                for k in range(start, min(start + MASK_BITS, len(names)))]
        masks.append(f"CASE WHEN {obj} THEN CAST({' + '.join(bits)} AS BIGINT) ELSE 0 END "
                     f"AS __hr_miss{start // MASK_BITS}")
    mask_names = [f"__hr_miss{i}" for i in range(len(masks))]
    cols = ", ".join(quote(n) for n in names)
    sql = f"""
WITH l AS (SELECT __hr_line FROM ({lines}) WHERE __hr_line IS NOT NULL AND trim(__hr_line, ' \t\r') <> ''),
j AS (SELECT __hr_line, json_valid(__hr_line) AS __hr_ok FROM l),
k AS (SELECT *, CASE WHEN __hr_ok THEN json_type(__hr_line) END AS __hr_jt FROM j),
v AS (SELECT *, CASE WHEN {obj} THEN json_keys(__hr_line) END AS __hr_keys,
             CASE WHEN {obj} THEN json_extract(__hr_line, {paths}) END AS __hr_v,
             CASE WHEN {obj} THEN json_type(__hr_line, {paths}) END AS __hr_t FROM k),
s AS (SELECT *{''.join(', ' + x for x in strings)} FROM v),
f AS (SELECT __hr_line, __hr_ok, __hr_jt, __hr_keys, __hr_v, __hr_t, {', '.join(typed)},
             {', '.join(masks)} FROM s),
c AS (SELECT __hr_line, {cols}, {', '.join(mask_names)}, {contract} AS __hr_why FROM f),
r AS (SELECT *, coalesce(__hr_why, {rule_sql}) AS __hr_reason FROM c)
SELECT {cols}, __hr_reason, CASE WHEN __hr_reason IS NOT NULL THEN __hr_line END AS __hr_raw,
       {', '.join(mask_names)} FROM r"""
    return sql, b.q.params
