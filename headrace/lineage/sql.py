"""What a SQL query reads, and where each of its output columns comes from (with sqlglot).

``analyze(sql, source)`` never raises: SQL that sqlglot cannot parse gives no tables and no
column lineage, and a debug log line; the read is still recorded, named by its source.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from headrace.lineage.model import ColumnSource, DatasetRef
from headrace.lineage.naming import SqlSource

log = logging.getLogger("headrace.lineage")

MAX_COLUMNS = 500        # column lineage is skipped for wider results (cost grows with width)
# `:name` bound parameters (headrace's style) read as sqlglot placeholders in every dialect.
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class _Quiet(logging.Filter, threading.local):
    """Hides sqlglot's own warnings about SQL it cannot parse, while lineage parses (this thread
    only): for lineage that SQL is a debug line, not a warning in the user's log."""

    active = False

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.active


_QUIET = _Quiet()
logging.getLogger("sqlglot").addFilter(_QUIET)


_WARM = threading.Event()


def warm_up(dialect: str | None) -> None:
    """Import sqlglot (a few hundred ms, once per process) on a background thread, so that it
    overlaps the query the caller is about to run instead of following it."""
    if _WARM.is_set():
        return
    _WARM.set()

    def load() -> None:
        try:
            import sqlglot
            from sqlglot.lineage import lineage  # noqa: F401
            from sqlglot.optimizer.qualify import qualify  # noqa: F401

            sqlglot.parse_one("SELECT 1", read=DIALECT_NAMES.get(dialect or "", dialect))
        except Exception as exc:  # the real parse reports what matters
            log.debug("lineage: warming up sqlglot failed: %s", exc)

    threading.Thread(target=load, name="headrace-sqlglot-import", daemon=True).start()


# headrace.io's dialect names -> sqlglot's
DIALECT_NAMES = {"postgresql": "postgres", "duckdb": "duckdb", "sqlite": "sqlite", "mysql": "mysql"}


@dataclass
class SqlLineage:
    """The tables a query reads and, per output column, the input columns it is made from."""

    tables: list[DatasetRef] = field(default_factory=list)
    columns: dict[str, list[ColumnSource]] = field(default_factory=dict)
    parsed: bool = False
    # columns used by joins, filters, grouping and sorting (INDIRECT)
    indirect: list[ColumnSource] = field(default_factory=list)


def analyze(sql: str, source: SqlSource, result_columns: list[str] | None = None) -> SqlLineage:
    """Tables read and column lineage of ``sql`` run on ``source``; empty when it cannot parse.

    ``result_columns`` (the names the query returned) resolves ``SELECT *`` over one table.
    """
    try:
        import sqlglot
        from sqlglot import exp

        _QUIET.active = True
        try:
            tree = sqlglot.parse_one(_PARAM.sub(r"@\1", sql) if source.dialect != "postgres" else sql,
                                     read=source.dialect)
        finally:
            _QUIET.active = False
        if tree is None or tree.find(exp.Command) is not None:   # sqlglot's "cannot parse" fallback
            raise ValueError("unsupported syntax")
    except Exception as exc:  # any parse failure: table-level lineage only
        log.debug("lineage: cannot parse SQL on %s (%s); recording the read without tables: %.200s",
                  source.namespace, type(exc).__name__, " ".join(sql.split()))
        return SqlLineage()
    out = SqlLineage(parsed=True)
    out.tables = _tables(tree, source, exp)
    try:
        out.indirect = indirect_sources(tree, source)
    except Exception as exc:
        log.debug("lineage: no indirect lineage for SQL on %s (%s: %s)", source.namespace, type(exc).__name__, exc)
    try:
        out.columns = {c: v for c, v in _columns(tree, source, out.tables, result_columns or []).items() if v}
    except Exception as exc:  # sqlglot could not follow a column: keep the tables
        log.debug("lineage: no column lineage for SQL on %s (%s: %s)", source.namespace,
                  type(exc).__name__, exc)
    return out


@dataclass
class SqlStatement:
    """A statement that writes a table from a query (``INSERT ... SELECT``, ``CREATE TABLE AS``)."""

    target: DatasetRef | None
    lineage: SqlLineage


def analyze_statement(sql: str, source: SqlSource) -> SqlStatement:
    """The table ``sql`` writes (if any), the tables it reads and its column lineage; a statement
    sqlglot cannot parse gives nothing (and a debug line)."""
    try:
        import sqlglot
        from sqlglot import exp

        _QUIET.active = True
        try:
            tree = sqlglot.parse_one(sql, read=source.dialect)
        finally:
            _QUIET.active = False
        if tree is None or tree.find(exp.Command) is not None:
            raise ValueError("unsupported syntax")
    except Exception as exc:
        log.debug("lineage: cannot parse SQL on %s (%s): %.200s", source.namespace, type(exc).__name__,
                  " ".join(sql.split()))
        return SqlStatement(None, SqlLineage())
    if not isinstance(tree, exp.Insert | exp.Create) or not isinstance(tree.expression, exp.Query):
        found = SqlLineage(tables=_tables(tree, source, exp), parsed=True)
        return SqlStatement(None, found)
    into = tree.this
    names = [c.name for c in into.expressions] if isinstance(into, exp.Schema) else []
    table = into.this if isinstance(into, exp.Schema) else into
    target = _ref(table, source) if isinstance(table, exp.Table) else None
    query = tree.expression
    found = SqlLineage(tables=[t for t in _tables(query, source, exp) if t != target], parsed=True)
    try:
        found.indirect = indirect_sources(query, source)
    except Exception as exc:
        log.debug("lineage: no indirect lineage for SQL on %s (%s: %s)", source.namespace, type(exc).__name__, exc)
    try:
        columns = _columns(query, source, found.tables, [])
        if names:   # INSERT INTO t (a, b) SELECT x, y: a <- x, b <- y
            columns = dict(zip(names, columns.values(), strict=False))
        found.columns = {c: v for c, v in columns.items() if v}
    except Exception as exc:
        log.debug("lineage: no column lineage for SQL on %s (%s: %s)", source.namespace, type(exc).__name__, exc)
    return SqlStatement(target, found)


def _ref(table: Any, source: SqlSource) -> DatasetRef:
    def ident(part: str) -> str | None:
        node = table.args.get(part)
        if node is None:
            return None
        name = str(node.name)
        # PostgreSQL folds unquoted names to lower case; a table is what the database calls it.
        if source.scheme == "postgres" and not getattr(node, "quoted", False):
            name = name.lower()
        return name

    return source.table(ident("this") or table.name, ident("db"), ident("catalog"))


def _tables(tree: Any, source: SqlSource, exp: Any) -> list[DatasetRef]:
    """Real tables, not CTE names nor table functions, in the order they first appear."""
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    seen: dict[DatasetRef, None] = {}
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue   # read_parquet('...') and other table functions
        if not table.args.get("db") and table.name in ctes:
            continue
        seen.setdefault(_ref(table, source), None)
    return list(seen)


def _columns(tree: Any, source: SqlSource, tables: list[DatasetRef],
             result_columns: list[str]) -> dict[str, list[ColumnSource]]:
    from sqlglot import exp
    from sqlglot.lineage import lineage
    from sqlglot.optimizer.qualify import qualify
    from sqlglot.optimizer.scope import build_scope

    select = tree if isinstance(tree, exp.Query) else tree.find(exp.Query)
    if select is None:
        return {}
    names = list(select.named_selects)
    if "*" in names:
        # Without the tables' schemas a star is only resolvable over a single table.
        if len(tables) != 1 or not result_columns:
            return {}
        return {c: [ColumnSource(tables[0], c, "DIRECT", "IDENTITY")] for c in result_columns[:MAX_COLUMNS]}
    # Qualified and scoped once for all columns (sqlglot would redo both per column). Every
    # output column is a key, in order (an unnamed one by sqlglot's name for it, _col_N); one
    # made of no column (a constant, COUNT(*)) has no sources.
    qualified = qualify(select, dialect=source.dialect, schema=None, validate_qualify_columns=False,
                        identify=False)
    scope = build_scope(qualified)
    columns: dict[str, list[ColumnSource]] = {}
    for name in list(qualified.named_selects)[:MAX_COLUMNS]:
        node = lineage(name, qualified, schema={}, dialect=source.dialect, scope=scope, copy=False,
                       trim_selects=False)
        columns[name] = _leaves(node, source, exp)
    return columns


_CLAUSES = (("joins", "JOIN"), ("where", "FILTER"), ("group", "GROUP_BY"), ("having", "FILTER"),
            ("order", "SORT"))


def indirect_sources(tree: Any, source: SqlSource) -> list[ColumnSource]:
    """Input columns that decide which rows there are, not what they hold: join keys, filters,
    grouping and sorting, in every part of the query (CTEs and subqueries too)."""
    from sqlglot import exp
    from sqlglot.optimizer.qualify import qualify
    from sqlglot.optimizer.scope import traverse_scope

    query = tree if isinstance(tree, exp.Query) else tree.find(exp.Query)
    if query is None:
        return []
    qualified = qualify(query.copy(), dialect=source.dialect, schema=None, validate_qualify_columns=False,
                        identify=False)
    found: dict[tuple[DatasetRef, str, str], None] = {}
    for scope in traverse_scope(qualified):
        for key, subtype in _CLAUSES:
            parts = scope.expression.args.get(key)
            for part in parts if isinstance(parts, list) else [parts] if parts is not None else []:
                node = part.args.get("on") if key == "joins" else part
                for col in node.find_all(exp.Column) if node is not None else ():
                    for ref, name in _resolve(scope, col.table, col.name, source, exp, 0):
                        found.setdefault((ref, name, subtype), None)
    return [ColumnSource(ref, name, "INDIRECT", subtype) for ref, name, subtype in found]


def _resolve(scope: Any, alias: str, column: str, source: SqlSource, exp: Any,
             depth: int) -> list[tuple[DatasetRef, str]]:
    """The table columns ``alias.column`` stands for in ``scope`` (through CTEs and subqueries)."""
    sources = scope.sources
    target = sources.get(alias) if alias else (next(iter(sources.values())) if len(sources) == 1 else None)
    if target is None or depth > 20:
        return []
    if isinstance(target, exp.Table):
        return [(_ref(target, source), column)] if isinstance(target.this, exp.Identifier) else []
    inner = getattr(target, "expression", None)
    if not isinstance(inner, exp.Select):
        return []
    out: list[tuple[DatasetRef, str]] = []
    for select in inner.selects:
        if select.alias_or_name == column:
            for col in select.find_all(exp.Column):
                out += _resolve(target, col.table, col.name, source, exp, depth + 1)
    return out


def _leaves(node: Any, source: SqlSource, exp: Any) -> list[ColumnSource]:
    """Every input column under ``node``, typed IDENTITY, TRANSFORMATION or AGGREGATION by the
    expressions met on the way down."""
    found: dict[tuple[DatasetRef, str], str] = {}
    rank = {"IDENTITY": 0, "TRANSFORMATION": 1, "AGGREGATION": 2}

    def walk(n: Any, subtype: str) -> None:
        here = _subtype(n.expression, exp)
        subtype = here if rank[here] > rank[subtype] else subtype
        if not n.downstream:
            if isinstance(n.source, exp.Table) and isinstance(n.source.this, exp.Identifier):
                key = (_ref(n.source, source), n.name.rsplit(".", 1)[-1])
                if rank[subtype] > rank.get(found.get(key, "IDENTITY"), 0) or key not in found:
                    found[key] = subtype
            return
        for child in n.downstream:
            walk(child, subtype)

    walk(node, "IDENTITY")
    return [ColumnSource(ref, col, "DIRECT", sub) for (ref, col), sub in found.items()]


def _subtype(expression: Any, exp: Any) -> str:
    inner = expression.this if isinstance(expression, exp.Alias) else expression
    if isinstance(inner, exp.Table | exp.Column):
        return "IDENTITY"
    if inner.find(exp.AggFunc) is not None:
        return "AGGREGATION"
    return "TRANSFORMATION"
