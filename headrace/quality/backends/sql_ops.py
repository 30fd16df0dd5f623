"""The checks as SQL expressions, for any engine a :class:`Dialect` describes.

Identifiers are quoted here; every value travels as a bound parameter through
:class:`Query`, never inside the SQL text. A new SQL engine (Spark SQL, say) needs a
Dialect subclass for what it spells differently and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from headrace.quality.arguments import IGNORE_RULE
from headrace.quality.backends.sqltext import case_when, quote
from headrace.quality.conditions import Compare, Const, Member
from headrace.quality.parse import BoolOp, Col, IsNull, Not

RN = "__hr_rn"  # row number helper column: row order for order-based checks and samples


class Dialect:
    """What differs between SQL engines; the defaults are DuckDB's."""

    name = "duckdb"
    double = "DOUBLE"
    text = "VARCHAR"

    def param(self, key: str) -> str:
        return "$" + key

    def regex(self, col: str, p: str) -> str:
        return "regexp_matches(" + col + ", " + p + ")"

    def like(self, col: str, p: str) -> str:
        return col + " LIKE " + p

    def median(self, col: str) -> str:
        return "quantile_cont(" + col + ", 0.5)"

    def quantile(self, col: str, p: str) -> str:
        return "quantile_disc(" + col + ", CAST(" + p + " AS DOUBLE))"

    def length(self, col: str) -> str:
        return "length(" + col + ")"

    def approx_distinct(self, col: str) -> str:
        return "approx_count_distinct(" + col + ")"

    def row_number(self) -> str:
        # DuckDB keeps insertion order for scans, so an empty window numbers rows in table order.
        return "row_number() OVER () - 1"

    def number(self, col: str) -> str:
        """A boolean column as 0/1, for sums and means."""
        return "CAST(" + col + " AS INTEGER)"

    def as_double(self, expr: str) -> str:
        return "CAST(" + expr + " AS " + self.double + ")"

    def as_text(self, expr: str) -> str:
        return "CAST(" + expr + " AS " + self.text + ")"

    def quote(self, name: str) -> str:
        """An identifier; double quotes in DuckDB and PostgreSQL (Spark SQL would use backticks)."""
        return quote(name)


class PostgresDialect(Dialect):
    name = "postgresql"
    double = "DOUBLE PRECISION"
    text = "TEXT"

    def param(self, key: str) -> str:
        return ":" + key

    def regex(self, col: str, p: str) -> str:
        return "(" + col + " ~ CAST(" + p + " AS TEXT))"

    def median(self, col: str) -> str:
        return "percentile_cont(0.5) WITHIN GROUP (ORDER BY " + self.as_double(col) + ")"

    def quantile(self, col: str, p: str) -> str:
        return "percentile_disc(" + self.as_double(p) + ") WITHIN GROUP (ORDER BY " + col + ")"

    def length(self, col: str) -> str:
        return "char_length(" + col + ")"

    def approx_distinct(self, col: str) -> str:
        return "COUNT(DISTINCT " + col + ")"  # PostgreSQL has no built-in estimate

    def row_number(self) -> str:
        # Heap order: the order rows were written, for a table that was only appended to.
        return "row_number() OVER (ORDER BY ctid) - 1"


class Query:
    """Collects bound parameters and helper window columns while SQL text is built."""

    def __init__(self, dialect: Dialect) -> None:
        self.d = dialect
        self.params: dict[str, Any] = {}
        self.windows: list[str] = []   # "expr AS name" added to the source relation
        self.needs_rn = False
        self.partition: str | None = None   # split: windows see only rows of the same condition

    def p(self, value: Any) -> str:
        key = "p" + str(len(self.params))
        self.params[key] = value
        return self.d.param(key)

    def plist(self, values: Any) -> str:
        return ", ".join(self.p(v) for v in values) if len(values) else "NULL"

    def window(self, func: str, partition: list[str], order: str | None = None) -> str:
        """A helper column ``func OVER (PARTITION BY ... [ORDER BY ...])``; returns its name."""
        parts = ([self.partition] if self.partition else []) + partition
        spec = "PARTITION BY " + ", ".join(parts) + ("" if order is None else " ORDER BY " + order)
        name = "__hr_w" + str(len(self.windows))
        self.windows.append(func + " OVER (" + spec + ") AS " + name)
        return name


SqlPred = Callable[[Query, str, dict[str, Any]], str]


def _between(q: Query, col: str, kw: dict[str, Any]) -> str:
    parts = []
    if kw.get("min_value") is not None:
        parts.append(col + (" <= " if kw.get("strict_min") else " < ") + q.p(kw["min_value"]))
    if kw.get("max_value") is not None:
        parts.append(col + (" >= " if kw.get("strict_max") else " > ") + q.p(kw["max_value"]))
    return " OR ".join(parts) or "FALSE"


def _set(kw: dict[str, Any]) -> list[Any]:
    return [v for v in kw["value_set"] if v is not None]


def _in_set(q: Query, col: str, kw: dict[str, Any]) -> str:
    if kw["value_set"] is None:
        return "FALSE"
    values = _set(kw)
    return "NOT (" + col + " IN (" + q.plist(values) + "))" if values else "TRUE"


def _not_in_set(q: Query, col: str, kw: dict[str, Any]) -> str:
    values = _set(kw)
    return col + " IN (" + q.plist(values) + ")" if values else "FALSE"


def _unique(q: Query, col: str, kw: dict[str, Any]) -> str:
    return q.window("COUNT(*)", [col]) + " > 1"


def _regex_any(q: Query, col: str, patterns: list[str], joiner: str) -> str:
    return "(" + (" " + joiner + " ").join(q.d.regex(col, q.p(r)) for r in patterns) + ")"


def _monotonic(decreasing: bool) -> SqlPred:
    def pred(q: Query, col: str, kw: dict[str, Any]) -> str:
        q.needs_rn = True
        # Partitioning by null-ness makes LAG see the previous non-null value.
        prev = q.window("LAG(" + col + ")", ["(" + col + " IS NULL)"], order=RN)
        strict = bool(kw.get("strictly"))
        op = (" >= " if strict else " > ") if decreasing else (" <= " if strict else " < ")
        return "(" + prev + " IS NOT NULL AND " + col + op + prev + ")"
    return pred


def _lengths_between(q: Query, col: str, kw: dict[str, Any]) -> str:
    lo, hi = kw.get("min_value"), kw.get("max_value")
    if lo is not None and hi is not None and lo > hi:
        return "TRUE"     # no length can lie between them
    return _between(q, q.d.length(col), kw)


ROW_PREDICATES: dict[str, SqlPred] = {
    "mismatch": lambda q, c, kw: "TRUE",     # every value: see run.py
    "between": _between, "in_set": _in_set, "not_in_set": _not_in_set, "unique": _unique,
    "regex": lambda q, c, kw: "NOT " + q.d.regex(c, q.p(kw["regex"])),
    "not_regex": lambda q, c, kw: q.d.regex(c, q.p(kw["regex"])),
    "regex_list": lambda q, c, kw: "NOT " + _regex_any(
        q, c, list(kw["regex_list"]), "OR" if kw.get("match_on", "any") == "any" else "AND"),
    "not_regex_list": lambda q, c, kw: _regex_any(q, c, list(kw["regex_list"]), "OR"),
    "like": lambda q, c, kw: "NOT (" + q.d.like(c, q.p(kw["like_pattern"])) + ")",
    "not_like": lambda q, c, kw: q.d.like(c, q.p(kw["like_pattern"])),
    "lengths_between": _lengths_between,
    "lengths_equal": lambda q, c, kw: q.d.length(c) + " <> " + q.p(kw["value"]),
    "increasing": _monotonic(False), "decreasing": _monotonic(True),
}


# -- several columns: (unexpected, ignored) predicates ------------------------------------------

def ignored(cols: list[str], rule: str) -> str:
    kind = IGNORE_RULE[rule]
    if kind == "never":
        return "FALSE"
    joiner = " OR " if kind == "any" else " AND "
    return "(" + joiner.join(c + " IS NULL" for c in cols) + ")"


def _compound_unique(q: Query, cols: list[str], kw: dict[str, Any]) -> tuple[str, str]:
    # PARTITION BY puts nulls together, as pandas' duplicated() does.
    count = q.window("COUNT(*)", cols)
    return count + " > 1", ignored(cols, kw.get("ignore_row_if", "all_values_are_missing"))


def _pair(op: str) -> Callable[[Query, list[str], dict[str, Any]], tuple[str, str]]:
    def pred(q: Query, cols: list[str], kw: dict[str, Any]) -> tuple[str, str]:
        a, b = cols
        real = ">=" if op == ">" and kw.get("or_equal") else op
        rule = ignored(cols, kw.get("ignore_row_if", "both_values_are_missing"))
        return "NOT COALESCE(" + a + " " + real + " " + b + ", FALSE)", rule
    return pred


def _multicolumn_sum(q: Query, cols: list[str], kw: dict[str, Any]) -> tuple[str, str]:
    total = " + ".join(q.d.as_double(c) for c in cols)
    same = "(" + total + ") = " + q.d.as_double(q.p(kw["sum_total"]))
    # A null among the columns leaves the sum unknown: unexpected unless ignored (GX).
    return "NOT COALESCE(" + same + ", FALSE)", ignored(cols, kw.get("ignore_row_if", "all_values_are_missing"))


MULTI_PREDICATES: dict[str, Callable[[Query, list[str], dict[str, Any]], tuple[str, str]]] = {
    "compound_unique": _compound_unique, "pair_greater": _pair(">"), "pair_equal": _pair("="),
    "multicolumn_sum": _multicolumn_sum,
}


# -- row conditions: a resolved condition (conditions.py) as a two-valued SQL expression ---------

_SQL_OPS = {"==": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def condition_sql(q: Query, node: Any, types: dict[str, str]) -> str:
    """A resolved row condition as SQL; nulls are settled inside, so it is never NULL."""
    if isinstance(node, Const):
        return "TRUE" if node.value else "FALSE"
    if isinstance(node, BoolOp):
        return "(" + (" AND " if node.op == "and" else " OR ").join(
            condition_sql(q, p, types) for p in node.parts) + ")"
    if isinstance(node, Not):
        return "(NOT " + condition_sql(q, node.part, types) + ")"
    if isinstance(node, IsNull):
        return "(" + q.d.quote(node.col.name) + (" IS NOT NULL)" if node.negate else " IS NULL)")
    fallback = "TRUE" if node.when_null else "FALSE"
    col = q.d.quote(node.column)
    if isinstance(node, Member):
        inside = "FALSE" if not node.values else col + " IN (" + q.plist(node.values) + ")"
        inside = "NOT (" + inside + ")" if node.negate else inside
        return "(" + case_when(col + " IS NULL", fallback, inside) + ")"
    assert isinstance(node, Compare)
    left_bool = types.get(node.column) == "bool"
    if isinstance(node.other, Col):
        other = q.d.quote(node.other.name)
        if left_bool != (types.get(node.other.name) == "bool"):     # True == 1, as in pandas
            col, other = _number(q, col, left_bool), _number(q, other, not left_bool)
    elif left_bool and not isinstance(node.other, bool):
        col, other = q.d.number(col), q.p(node.other)
    else:
        other = q.p(int(node.other) if isinstance(node.other, bool) and not left_bool else node.other)
    return "COALESCE(" + col + " " + _SQL_OPS[node.op] + " " + other + ", " + fallback + ")"


def _number(q: Query, col: str, is_bool: bool) -> str:
    return q.d.number(col) if is_bool else col


# -- column metrics: SQL aggregates ------------------------------------------------------------

def metric_sql(q: Query, op: str, col: str, kw: dict[str, Any], is_bool: bool = False) -> list[str]:
    """Aggregate expressions for a metric; the caller reads them back with :func:`metric_value`."""
    d = q.d
    num = d.number(col) if is_bool else col
    if op == "mean":
        return ["AVG(" + d.as_double(num) + ")"]
    if op == "median":
        return [d.median(num)]
    if op in ("min", "max"):
        return [op.upper() + "(" + col + ")"]
    if op == "sum":
        return ["SUM(" + num + ")"]
    if op == "stdev":
        return ["STDDEV_SAMP(" + d.as_double(num) + ")"]
    if op == "quantiles":
        return [d.quantile(col, q.p(float(x))) for x in kw["quantile_ranges"]["quantiles"]]
    if op in ("distinct_count", "distinct_share"):
        return ["COUNT(DISTINCT " + col + ")"]
    if op in ("null_share", "value_counts"):
        return []  # from the COUNT(column) every metric gets, or a query of its own
    raise ValueError("no SQL for metric " + op)


def metric_value(op: str, values: list[Any], n: int, nonnull: int, kw: dict[str, Any]) -> Any:
    if op == "quantiles":
        qs = list(kw["quantile_ranges"]["quantiles"])
        return {"quantiles": qs, "values": [normalize(v) for v in values]}
    if op == "distinct_share":
        return normalize(values[0]) / nonnull if nonnull else None
    if op == "null_share":
        return (n - nonnull) / n if n else None
    return normalize(values[0])


def normalize(value: Any) -> Any:
    """Database scalars as the Python values Arrow would give (Decimal -> int or float)."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value

