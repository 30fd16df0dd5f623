"""The checks as SQL text for DuckDB and PostgreSQL.

Identifiers are quoted here; every value travels as a bound parameter through
:class:`Query`, never inside the SQL text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

RN = "__hr_rn"  # row number helper column: row order for order-based checks and samples


class Dialect:
    """What differs between DuckDB and PostgreSQL."""

    name = "duckdb"
    double = "DOUBLE"
    text = "VARCHAR"

    def param(self, key: str) -> str:
        return f"${key}"

    def regex(self, col: str, p: str) -> str:
        return f"regexp_matches({col}, {p})"

    def median(self, col: str) -> str:
        return f"quantile_cont({col}, 0.5)"

    def quantile(self, col: str, p: str) -> str:
        return f"quantile_disc({col}, CAST({p} AS DOUBLE))"

    def length(self, col: str) -> str:
        return f"length({col})"

    def approx_distinct(self, col: str) -> str:
        return f"approx_count_distinct({col})"

    def row_number(self) -> str:
        # DuckDB keeps insertion order for scans, so an empty window numbers rows in table order.
        return "row_number() OVER () - 1"


class PostgresDialect(Dialect):
    name = "postgresql"
    double = "DOUBLE PRECISION"
    text = "TEXT"

    def param(self, key: str) -> str:
        return f":{key}"

    def regex(self, col: str, p: str) -> str:
        return f"({col} ~ CAST({p} AS TEXT))"

    def median(self, col: str) -> str:
        return f"percentile_cont(0.5) WITHIN GROUP (ORDER BY CAST({col} AS DOUBLE PRECISION))"

    def quantile(self, col: str, p: str) -> str:
        return f"percentile_disc(CAST({p} AS DOUBLE PRECISION)) WITHIN GROUP (ORDER BY {col})"

    def length(self, col: str) -> str:
        return f"char_length({col})"

    def approx_distinct(self, col: str) -> str:
        return f"COUNT(DISTINCT {col})"  # PostgreSQL has no built-in estimate

    def row_number(self) -> str:
        # Heap order: the order rows were written, for a table that was only appended to.
        return "row_number() OVER (ORDER BY ctid) - 1"


def quote(name: str) -> str:
    """A double-quoted SQL identifier (the same rule in DuckDB and PostgreSQL)."""
    return '"' + str(name).replace('"', '""') + '"'


class Query:
    """Collects bound parameters and helper window columns while SQL text is built."""

    def __init__(self, dialect: Dialect) -> None:
        self.d = dialect
        self.params: dict[str, Any] = {}
        self.windows: list[str] = []   # "expr AS name" added to the source CTE
        self.needs_rn = False

    def p(self, value: Any) -> str:
        key = f"p{len(self.params)}"
        self.params[key] = value
        return self.d.param(key)

    def plist(self, values: Any) -> str:
        return ", ".join(self.p(v) for v in values) if len(values) else "NULL"

    def window(self, expr: str) -> str:
        name = f"__hr_w{len(self.windows)}"
        self.windows.append(f"{expr} AS {name}")
        return name


SqlPred = Callable[[Query, str, dict[str, Any]], str]


def _between(q: Query, col: str, kw: dict[str, Any]) -> str:
    parts = []
    if kw.get("min_value") is not None:
        parts.append(f"{col} {'<=' if kw.get('strict_min') else '<'} {q.p(kw['min_value'])}")
    if kw.get("max_value") is not None:
        parts.append(f"{col} {'>=' if kw.get('strict_max') else '>'} {q.p(kw['max_value'])}")
    return " OR ".join(parts) or "FALSE"


def _in_set(q: Query, col: str, kw: dict[str, Any]) -> str:
    values = list(kw["value_set"])
    return f"NOT ({col} IN ({q.plist(values)}))" if values else "TRUE"


def _not_in_set(q: Query, col: str, kw: dict[str, Any]) -> str:
    values = list(kw["value_set"])
    return f"{col} IN ({q.plist(values)})" if values else "FALSE"


def _unique(q: Query, col: str, kw: dict[str, Any]) -> str:
    return f"{q.window(f'COUNT(*) OVER (PARTITION BY {col})')} > 1"


def _regex_any(q: Query, col: str, patterns: list[str], joiner: str) -> str:
    return "(" + f" {joiner} ".join(q.d.regex(col, q.p(r)) for r in patterns) + ")"


def _monotonic(decreasing: bool) -> SqlPred:
    def pred(q: Query, col: str, kw: dict[str, Any]) -> str:
        q.needs_rn = True
        # Partitioning by null-ness makes LAG see the previous non-null value.
        prev = q.window(f"LAG({col}) OVER (PARTITION BY ({col} IS NULL) ORDER BY {RN})")
        strict = bool(kw.get("strictly"))
        op = (">=" if strict else ">") if decreasing else ("<=" if strict else "<")
        return f"({prev} IS NOT NULL AND {col} {op} {prev})"
    return pred


def _lengths_between(q: Query, col: str, kw: dict[str, Any]) -> str:
    return _between(q, q.d.length(col), kw)


ROW_PREDICATES: dict[str, SqlPred] = {
    "between": _between, "in_set": _in_set, "not_in_set": _not_in_set, "unique": _unique,
    "regex": lambda q, c, kw: f"NOT {q.d.regex(c, q.p(kw['regex']))}",
    "not_regex": lambda q, c, kw: q.d.regex(c, q.p(kw["regex"])),
    "regex_list": lambda q, c, kw: "NOT " + _regex_any(
        q, c, list(kw["regex_list"]), "OR" if kw.get("match_on", "any") == "any" else "AND"),
    "not_regex_list": lambda q, c, kw: _regex_any(q, c, list(kw["regex_list"]), "OR"),
    "like": lambda q, c, kw: f"NOT ({c} LIKE {q.p(kw['like_pattern'])})",
    "not_like": lambda q, c, kw: f"{c} LIKE {q.p(kw['like_pattern'])}",
    "lengths_between": _lengths_between,
    "lengths_equal": lambda q, c, kw: f"{q.d.length(c)} <> {q.p(kw['value'])}",
    "increasing": _monotonic(False), "decreasing": _monotonic(True),
}


# -- several columns: (unexpected, ignored) predicates ------------------------------------------

def _ignored(cols: list[str], rule: str) -> str:
    if rule == "neither":
        return "FALSE"
    joiner = " OR " if rule == "either_value_is_missing" else " AND "
    return "(" + joiner.join(f"{c} IS NULL" for c in cols) + ")"


def _compound_unique(q: Query, cols: list[str], kw: dict[str, Any]) -> tuple[str, str]:
    ignored = _ignored(cols, "both_values_are_missing")
    # PARTITION BY puts nulls together, as pandas' duplicated() does.
    count = q.window(f"COUNT(*) OVER (PARTITION BY {', '.join(cols)})")
    return f"{count} > 1", ignored


def _pair(op: str) -> Callable[[Query, list[str], dict[str, Any]], tuple[str, str]]:
    def pred(q: Query, cols: list[str], kw: dict[str, Any]) -> tuple[str, str]:
        a, b = cols
        real = ">=" if op == ">" and kw.get("or_equal") else op
        ignored = _ignored(cols, kw.get("ignore_row_if", "both_values_are_missing"))
        return f"NOT COALESCE({a} {real} {b}, FALSE)", ignored
    return pred


def _multicolumn_sum(q: Query, cols: list[str], kw: dict[str, Any]) -> tuple[str, str]:
    total = " + ".join(f"COALESCE(CAST({c} AS {q.d.double}), 0)" for c in cols)
    return f"({total}) <> CAST({q.p(kw['sum_total'])} AS {q.d.double})", _ignored(cols, "both")


MULTI_PREDICATES: dict[str, Callable[[Query, list[str], dict[str, Any]], tuple[str, str]]] = {
    "compound_unique": _compound_unique, "pair_greater": _pair(">"), "pair_equal": _pair("="),
    "multicolumn_sum": _multicolumn_sum,
}


# -- column metrics: SQL aggregates ------------------------------------------------------------

def metric_sql(q: Query, op: str, col: str, kw: dict[str, Any]) -> list[str]:
    """Aggregate expressions for a metric; the caller reads them back with :func:`metric_value`."""
    d = q.d
    if op == "mean":
        return [f"AVG(CAST({col} AS {d.double}))"]
    if op == "median":
        return [d.median(col)]
    if op in ("min", "max", "sum"):
        return [f"{op.upper()}({col})"]
    if op == "stdev":
        return [f"STDDEV_SAMP(CAST({col} AS {d.double}))"]
    if op == "quantiles":
        return [d.quantile(col, q.p(float(x))) for x in kw["quantile_ranges"]["quantiles"]]
    if op in ("distinct_count", "distinct_share"):
        return [f"COUNT(DISTINCT {col})"]
    if op in ("null_share", "distinct_values"):
        return []  # from the COUNT(column) every metric gets, or a query of its own
    raise ValueError(f"no SQL for metric {op}")


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
