"""Checks pushed down as SQL to DuckDB (tables, Parquet and CSV files) and PostgreSQL.

All counts and metrics of a suite come from one ``SELECT`` over the data per row
condition (the condition is the query's ``WHERE``); only failing checks cost a second,
small query for their sample of unexpected values. No data rows travel to Python
except in ``split``, whose job they are.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import pyarrow.compute as pc

from headrace.quality.backends.arrow_ops import dateutil_fails, strftime_fails
from headrace.quality.backends.base import FAILED_CHECKS_COLUMN, SEPARATOR
from headrace.quality.backends.sources import SqlRelation, relation_for
from headrace.quality.backends.sql_ops import (
    MULTI_PREDICATES,
    RN,
    ROW_PREDICATES,
    Query,
    condition_sql,
    metric_sql,
    metric_value,
    normalize,
)
from headrace.quality.backends.sqltext import alias, both, case_when, count_if, select
from headrace.quality.conditions import ConditionError
from headrace.quality.evaluate import Measure, text_admitted, type_rows_needed, value_counts, wanted_of
from headrace.quality.expectation import Expectation
from headrace.quality.results import PARTIAL_LIMIT, ResultFormat
from headrace.quality.types import is_numeric, kind_of_type, sql_type_name

log = logging.getLogger("headrace.quality")

PER_VALUE = {"strftime": strftime_fails, "dateutil": dateutil_fails}


class SqlBackend:
    name = "sql"

    def open(self, data: Any) -> SqlSource | None:
        rel = relation_for(data)
        return SqlSource(rel) if rel is not None else None


class SqlSource:
    """A table or file the checks reach through SQL."""

    def __init__(self, rel: SqlRelation) -> None:
        self.rel = rel
        self.kind = rel.kind
        self.d = rel.dialect
        self._schema: dict[str, str] | None = None
        self._native: dict[str, str] = {}

    def schema(self) -> dict[str, str]:
        if self._schema is None:
            cols = self.rel.columns()
            self._native = {name: _native_name(t) for name, t in cols}
            self._schema = {name: sql_type_name(t) for name, t in cols}
        return self._schema

    # -- building SQL ------------------------------------------------------------------------
    def _with(self, q: Query, where: str | None = None, rn: bool = False) -> list[tuple[str, str]]:
        """``__hr_src``: the rows inside the condition plus the helper columns the checks asked for."""
        if not (rn or q.needs_rn or q.windows):
            return [("__hr_src", select(["*"], self.rel.sql, where=where))]
        base = select(["*", alias(self.d.row_number(), RN)], self.rel.sql)
        return [("__hr_base", base), ("__hr_src", select(["*", *q.windows], "__hr_base", where=where))]

    def _predicate(self, q: Query, e: Expectation) -> tuple[str, str]:
        """(unexpected, not looked at) as SQL conditions for a row-level check."""
        cols = [self.d.quote(c) for c in e.columns]
        op = e.op
        if e.kind == "multi":
            bad, ignored = MULTI_PREDICATES[op](q, cols, e.kwargs)
            return "NOT " + ignored + " AND (" + bad + ")", ignored
        col = cols[0]
        if op == "not_null":
            return col + " IS NULL", "FALSE"
        if op == "null":
            return col + " IS NOT NULL", "FALSE"
        if self.schema()[e.columns[0]] == "null":
            return "FALSE", col + " IS NULL"    # nothing to look at, whatever the type
        if op == "type":
            admitted = text_admitted(wanted_of(e), self._native[e.columns[0]])
            return col + " IS NOT NULL AND " + ("FALSE" if admitted else "TRUE"), col + " IS NULL"
        if op in PER_VALUE:
            rejected = self._rejected_values(e)
            pred = col + " IN (" + q.plist(rejected) + ")" if rejected else "FALSE"
        else:
            pred = ROW_PREDICATES[op](q, col, e.kwargs)
        return col + " IS NOT NULL AND (" + pred + ")", col + " IS NULL"

    def _rejected_values(self, e: Expectation) -> list[Any]:
        # Parsing rules (strptime, dateutil) exist only in Python: judge each distinct value once.
        col = self.d.quote(e.columns[0])
        rows = self.rel.fetch(select([col], self.rel.sql, where=col + " IS NOT NULL", distinct=True), {})
        return [r[0] for r in rows if PER_VALUE[e.spec.op](r[0], e.kwargs)]

    def _where(self, q: Query, e: Expectation) -> str | None:
        cond = e.condition
        return None if cond is None else condition_sql(q, cond.resolve(self.schema()), self.schema())

    def _problem(self, e: Expectation) -> str | None:
        """Why the engine cannot run this check (a Measure error, so the others still run)."""
        if e.spec.op.startswith("pair_"):
            a, b = (self.schema()[c] for c in e.columns)
            if "null" not in (a, b) and _kind(a) != _kind(b):
                return (f"column {e.columns[0]!r} ({a}) and column {e.columns[1]!r} ({b}) "
                        "hold different kinds of values and cannot be compared")
        return None

    # -- measuring ---------------------------------------------------------------------------
    def measure(self, checks: list[Expectation], fmt: ResultFormat) -> dict[str, Measure]:
        groups: dict[str | None, list[Expectation]] = {}
        out: dict[str, Measure] = {}
        for e in checks:
            problem = self._problem(e)
            if problem is not None:
                out[e.name] = Measure(error=problem)
            else:
                groups.setdefault(None if e.condition is None else e.condition.text, []).append(e)
        for group in groups.values():
            try:
                out.update(self._measure_group(group, fmt))
            except ConditionError as exc:
                out.update({e.name: Measure(error=str(exc)) for e in group})
        return out

    def _measure_group(self, checks: list[Expectation], fmt: ResultFormat) -> dict[str, Measure]:
        """All checks sharing one row condition, in one query with that condition as WHERE."""
        q = Query(self.d)
        where = self._where(q, checks[0])
        exprs = ["COUNT(*)"]
        readers: list[tuple[Expectation, int, int, str]] = []
        for e in checks:
            start = len(exprs)
            pred = ""
            if e.row_level or self._type_rows(e):
                pred, ignored = self._predicate(q, e)
                exprs += [count_if(ignored), count_if(pred)]
            elif e.kind in ("agg", "history") and e.columns:
                col = self.d.quote(e.columns[0])
                is_bool = self.schema()[e.columns[0]] == "bool"
                exprs += ["COUNT(" + col + ")"] + metric_sql(q, e.spec.op, col, e.kwargs, is_bool)
            readers.append((e, start, len(exprs), pred))
        row = self.rel.fetch(select(exprs, "__hr_src", with_=self._with(q, where)), q.params)[0]
        n = int(row[0])
        return {e.name: self._read(e, list(row[start:end]), n, pred, q, where, fmt)
                for e, start, end, pred in readers}

    def _type_rows(self, e: Expectation) -> bool:
        if e.kind != "type":
            return False
        return type_rows_needed(wanted_of(e), self.schema()[e.columns[0]])

    def _read(self, e: Expectation, vals: list[Any], n: int, pred: str, q: Query, where: str | None,
              fmt: ResultFormat) -> Measure:
        if e.row_level or pred:
            m = Measure(n, int(vals[0] or 0), int(vals[1] or 0), rows=True)
            if m.unexpected_count and fmt is not ResultFormat.BOOLEAN_ONLY:
                self._samples(e, m, pred, q, where, fmt)
            if e.kind == "type":
                m.observed, m.column_type = self._native[e.columns[0]], self.schema()[e.columns[0]]
            return m
        if e.kind == "type":
            col = e.columns[0]
            return Measure(n, observed=self._native[col], column_type=self.schema()[col])
        if not e.columns:
            return Measure(n, observed=n)
        nonnull = int(vals[0] or 0)
        if e.spec.op == "value_counts":
            observed: Any = self._value_counts(e.columns[0], q, where)
        else:
            observed = metric_value(e.spec.op, vals[1:], n, nonnull, e.kwargs)
        return Measure(n, n - nonnull, observed=observed)

    def _value_counts(self, column: str, q: Query, where: str | None) -> list[tuple[Any, int]]:
        col = self.d.quote(column)
        sql = select([col, "COUNT(*)"], "__hr_src", where=col + " IS NOT NULL", group_by=col,
                      order_by=col, with_=self._with(q, where))
        return [(normalize(r[0]), int(r[1])) for r in self.rel.fetch(sql, q.params)]

    def _samples(self, e: Expectation, m: Measure, pred: str, q: Query, where: str | None,
                 fmt: ResultFormat) -> None:
        full = fmt in (ResultFormat.SUMMARY, ResultFormat.COMPLETE)
        cols = [self.d.quote(c) for c in e.columns]
        if full or q.needs_rn or where is not None:
            sql = select([RN, *cols], "__hr_src", where=pred, order_by=RN, with_=self._with(q, where, rn=True))
        else:
            # Numbering rows costs a full pass; a plain scan returns them in table order
            # too (DuckDB preserves insertion order, PostgreSQL scans the heap) and the
            # LIMIT lets it stop at the 20th hit.
            sql = select(["NULL", *cols], "__hr_src", where=pred, limit=str(PARTIAL_LIMIT),
                         with_=self._with(q))
        rows = self.rel.fetch(sql, q.params)
        values = _sample_values(e, rows)
        m.partial = values[:PARTIAL_LIMIT]
        if full:
            m.unexpected_list = values
            m.partial_counts = value_counts(values)
            m.index_list = [int(r[0]) for r in rows]

    # -- splitting and profiling ---------------------------------------------------------------
    def split(self, checks: list[Expectation]) -> tuple[Any, Any]:
        """(good, bad) as Arrow tables, in table order; the flagging runs in the database.

        Each check's windows (uniqueness, order) are partitioned by its row condition, so
        rows outside the condition neither fail it nor count for it.
        """
        q = Query(self.d)
        cases = []
        for e in checks:
            try:
                where = self._where(q, e)
            except ConditionError:
                continue
            q.partition = where
            pred, _ = self._predicate(q, e)
            q.partition = None
            cases.append(case_when(both(where or "TRUE", pred), self.d.as_text(q.p(e.name))))
        flags = "CONCAT_WS(" + ", ".join([q.p(SEPARATOR), *cases]) + ")" if cases else "''"
        cols = [self.d.quote(c) for c in self.schema()]
        sql = select([*cols, alias(flags, self.d.quote(FAILED_CHECKS_COLUMN))], "__hr_src", order_by=RN,
                     with_=self._with(q, rn=True))
        table = self.rel.fetch_arrow(sql, q.params)
        failed = pc.not_equal(table.column(FAILED_CHECKS_COLUMN), "")
        good = table.filter(pc.invert(failed)).drop_columns([FAILED_CHECKS_COLUMN])
        return good, table.filter(failed)

    def profile(self, exact_distinct: Iterable[str] = ()) -> dict[str, Any]:
        """One pass: row count, per column null share and distinct count, number statistics.

        Distinct counts are HyperLogLog estimates where the engine has them (DuckDB),
        except for ``exact_distinct`` columns, which a history check compares exactly.
        """
        exact = set(exact_distinct)
        exprs, spans = ["COUNT(*)"], []
        for name, t in self.schema().items():
            col = self.d.quote(name)
            start = len(exprs)
            distinct = "COUNT(DISTINCT " + col + ")" if name in exact else self.d.approx_distinct(col)
            exprs += ["COUNT(" + col + ")", distinct]
            if is_numeric(t):
                cast = self.d.as_double(col)
                exprs += ["MIN(" + cast + ")", "MAX(" + cast + ")", "AVG(" + cast + ")",
                          "STDDEV_SAMP(" + cast + ")"]
            spans.append((name, t, start, len(exprs)))
        row = self.rel.fetch(select(exprs, self.rel.sql), {})[0]
        n = int(row[0])
        return {"row_count": n, "columns": {name: _column_stats(t, [normalize(x) for x in row[a:b]], n)
                                            for name, t, a, b in spans}}


def _sample_values(e: Expectation, rows: list[tuple[Any, ...]]) -> list[Any]:
    if e.kind in ("map", "type"):
        return [normalize(r[1]) for r in rows]
    if e.spec.op.startswith("pair_"):       # GX lists a pair's values as [A, B]
        return [[normalize(v) for v in r[1:]] for r in rows]
    return [{c: normalize(v) for c, v in zip(e.columns, r[1:], strict=True)} for r in rows]


def _kind(col_type: str) -> str:
    return "number" if col_type == "bool" else kind_of_type(col_type)


def _native_name(sql_type: str) -> str:
    """The engine's type name as GX shows SQL types: INTEGER, TEXT, DOUBLE_PRECISION, TIMESTAMP."""
    t = sql_type.upper().split("(")[0].strip()
    return {"TIMESTAMP WITHOUT TIME ZONE": "TIMESTAMP", "CHARACTER VARYING": "VARCHAR",
            "DOUBLE PRECISION": "DOUBLE_PRECISION", "TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ"}.get(t, t)


def _column_stats(type_: str, v: list[Any], n: int) -> dict[str, Any]:
    stats: dict[str, Any] = {"type": type_, "null_share": (n - v[0]) / n if n else None,
                             "distinct_count": v[1]}
    if len(v) > 2:
        stats.update(zip(("min", "max", "mean", "stdev"), map(_float, v[2:]), strict=True))
    return stats


def _float(v: Any) -> float | None:
    return None if v is None else float(v)

