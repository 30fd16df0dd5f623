"""SQL statements composed from parts: quoted identifiers, expressions built by ``sql_ops``
and placeholders for bound values. No value ever becomes SQL text; the statement
keywords live here, in constant strings, and parts are joined, not formatted in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def quote(name: str) -> str:
    """A double-quoted SQL identifier (the same rule in DuckDB, PostgreSQL and Spark SQL)."""
    return '"' + str(name).replace('"', '""') + '"'


def qualified(*names: str | None) -> str:
    """``"schema"."table"`` from the parts that are given."""
    return ".".join(quote(n) for n in names if n is not None)


def select(items: Iterable[str], source: str, *, where: str | None = None, group_by: str | None = None,
           order_by: str | None = None, limit: str | None = None, distinct: bool = False,
           with_: Sequence[tuple[str, str]] = ()) -> str:
    """``[WITH name AS (body), ...] SELECT [DISTINCT] items FROM source [WHERE] [GROUP BY] [ORDER BY] [LIMIT]``.

    ``limit`` is a placeholder (or a constant the caller owns), never a user value.
    """
    parts: list[str] = []
    if with_:
        parts += ["WITH", ", ".join(" ".join([name, "AS (", body, ")"]) for name, body in with_)]
    parts += ["SELECT DISTINCT" if distinct else "SELECT", ", ".join(items), "FROM", source]
    for keyword, value in (("WHERE", where), ("GROUP BY", group_by), ("ORDER BY", order_by),
                           ("LIMIT", limit)):
        if value:
            parts += [keyword, value]
    return " ".join(parts)


def describe(source: str) -> str:
    """DuckDB's column listing of a relation."""
    return " ".join(["DESCRIBE", select(["*"], source)])


def alias(expr: str, name: str) -> str:
    return " ".join([expr, "AS", name])


def count_if(cond: str) -> str:
    return "".join(["SUM(CASE WHEN ", cond, " THEN 1 ELSE 0 END)"])


def case_when(cond: str, then: str, otherwise: str | None = None) -> str:
    tail = [] if otherwise is None else ["ELSE", otherwise]
    return " ".join(["CASE WHEN", cond, "THEN", then, *tail, "END"])


def both(*conds: str) -> str:
    """Conditions joined by AND, each in parentheses; TRUE for none."""
    real = [c for c in conds if c and c != "TRUE"]
    return " AND ".join("(" + c + ")" for c in real) if real else "TRUE"
