"""Checks pushed down as SQL to DuckDB (tables, Parquet and CSV files) and PostgreSQL.

All counts and metrics of a suite come from one ``SELECT`` over the data; only
failing checks cost a second, small query for their sample of unexpected
values. No data rows travel to Python except in ``split``, whose job they are.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import pyarrow.compute as pc

from headrace.quality.backends import FAILED_CHECKS_COLUMN, SEPARATOR
from headrace.quality.backends.arrow_ops import dateutil_fails, strftime_fails
from headrace.quality.backends.sources import SqlRelation, relation_for
from headrace.quality.backends.sql_ops import (
    MULTI_PREDICATES,
    RN,
    ROW_PREDICATES,
    Query,
    metric_sql,
    metric_value,
    normalize,
    quote,
)
from headrace.quality.evaluate import Measure, value_counts
from headrace.quality.expectation import Expectation
from headrace.quality.results import PARTIAL_LIMIT, ResultFormat
from headrace.quality.types import is_numeric, sql_type_name

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

    def schema(self) -> dict[str, str]:
        if self._schema is None:
            self._schema = {name: sql_type_name(t) for name, t in self.rel.columns()}
        return self._schema

    # -- building SQL ------------------------------------------------------------------------
    def _with(self, q: Query, rn: bool = False) -> str:
        """``WITH __hr_src AS (...)``: the data plus the helper columns the checks asked for."""
        if not (rn or q.needs_rn or q.windows):
            return f"WITH __hr_src AS (SELECT * FROM {self.rel.sql})"
        base = f"__hr_base AS (SELECT *, {self.d.row_number()} AS {RN} FROM {self.rel.sql})"
        extra = "".join(", " + w for w in q.windows)
        return f"WITH {base}, __hr_src AS (SELECT *{extra} FROM __hr_base)"

    def _predicate(self, q: Query, e: Expectation) -> tuple[str, str]:
        """(unexpected, not looked at) as SQL conditions for a row-level check."""
        cols = [quote(c) for c in e.columns]
        op = e.spec.op
        if e.kind == "multi":
            bad, ignored = MULTI_PREDICATES[op](q, cols, e.kwargs)
            return f"NOT {ignored} AND ({bad})", ignored
        col = cols[0]
        if op == "not_null":
            return f"{col} IS NULL", "FALSE"
        if op == "null":
            return f"{col} IS NOT NULL", "FALSE"
        if op in PER_VALUE:
            rejected = self._rejected_values(e)
            pred = f"{col} IN ({q.plist(rejected)})" if rejected else "FALSE"
        else:
            pred = ROW_PREDICATES[op](q, col, e.kwargs)
        return f"{col} IS NOT NULL AND ({pred})", f"{col} IS NULL"

    def _rejected_values(self, e: Expectation) -> list[Any]:
        # Parsing rules (strptime, dateutil) exist only in Python: judge each distinct value once.
        col = quote(e.columns[0])
        rows = self.rel.fetch(f"SELECT DISTINCT {col} FROM {self.rel.sql} WHERE {col} IS NOT NULL", {})
        return [r[0] for r in rows if PER_VALUE[e.spec.op](r[0], e.kwargs)]

    # -- measuring ---------------------------------------------------------------------------
    def measure(self, checks: list[Expectation], fmt: ResultFormat) -> dict[str, Measure]:
        q = Query(self.d)
        exprs = ["COUNT(*)"]
        readers: list[tuple[Expectation, int, int, str]] = []
        for e in checks:
            start = len(exprs)
            pred = ""
            if e.row_level:
                pred, ignored = self._predicate(q, e)
                exprs += [_count(ignored), _count(pred)]
            elif e.columns:
                col = quote(e.columns[0])
                exprs += [f"COUNT({col})"] + metric_sql(q, e.spec.op, col, e.kwargs)
            readers.append((e, start, len(exprs), pred))
        row = self.rel.fetch(f"{self._with(q)} SELECT {', '.join(exprs)} FROM __hr_src", q.params)[0]
        n = int(row[0])
        out = {}
        for e, start, end, pred in readers:
            out[e.name] = self._read(e, list(row[start:end]), n, pred, q, fmt)
        return out

    def _read(self, e: Expectation, vals: list[Any], n: int, pred: str, q: Query,
              fmt: ResultFormat) -> Measure:
        if e.row_level:
            m = Measure(n, int(vals[0] or 0), int(vals[1] or 0))
            if m.unexpected_count and fmt is not ResultFormat.BOOLEAN_ONLY:
                self._samples(e, m, pred, q, fmt)
            return m
        if not e.columns:
            return Measure(n, observed=n)
        nonnull = int(vals[0] or 0)
        if e.spec.op == "distinct_values":
            observed: Any = self._distinct(e.columns[0])
        else:
            observed = metric_value(e.spec.op, vals[1:], n, nonnull, e.kwargs)
        return Measure(n, n - nonnull, observed=observed)

    def _distinct(self, column: str) -> list[Any]:
        col = quote(column)
        sql = f"SELECT DISTINCT {col} FROM {self.rel.sql} WHERE {col} IS NOT NULL ORDER BY 1"
        return [normalize(r[0]) for r in self.rel.fetch(sql, {})]

    def _samples(self, e: Expectation, m: Measure, pred: str, q: Query, fmt: ResultFormat) -> None:
        full = fmt in (ResultFormat.SUMMARY, ResultFormat.COMPLETE)
        cols = ", ".join(quote(c) for c in e.columns)
        if full or q.needs_rn:
            sql = f"{self._with(q, rn=True)} SELECT {RN}, {cols} FROM __hr_src WHERE {pred} ORDER BY {RN}"
        else:
            # Numbering rows costs a full pass; a plain scan returns them in table order
            # too (DuckDB preserves insertion order, PostgreSQL scans the heap) and the
            # LIMIT lets it stop at the 20th hit.
            sql = f"{self._with(q)} SELECT NULL, {cols} FROM __hr_src WHERE {pred} LIMIT {PARTIAL_LIMIT}"
        rows = self.rel.fetch(sql, q.params)
        if e.kind == "map":
            values = [normalize(r[1]) for r in rows]
        else:
            values = [{c: normalize(v) for c, v in zip(e.columns, r[1:], strict=True)} for r in rows]
        m.partial = values[:PARTIAL_LIMIT]
        if full:
            m.unexpected_list = values
            m.partial_counts = value_counts(values)
            m.index_list = [int(r[0]) for r in rows]

    # -- splitting and profiling ---------------------------------------------------------------
    def split(self, checks: list[Expectation]) -> tuple[Any, Any]:
        """(good, bad) as Arrow tables, in table order; the flagging runs in the database."""
        q = Query(self.d)
        cases = []
        for e in checks:
            pred, _ = self._predicate(q, e)
            cases.append(f"CASE WHEN {pred} THEN CAST({q.p(e.name)} AS {self.d.text}) END")
        flags = f"CONCAT_WS({q.p(SEPARATOR)}, {', '.join(cases)})" if cases else "''"
        cols = ", ".join(quote(c) for c in self.schema())
        sql = (f"{self._with(q, rn=True)} SELECT {cols}, {flags} AS {quote(FAILED_CHECKS_COLUMN)} "
               f"FROM __hr_src ORDER BY {RN}")
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
            col = quote(name)
            start = len(exprs)
            distinct = f"COUNT(DISTINCT {col})" if name in exact else self.d.approx_distinct(col)
            exprs += [f"COUNT({col})", distinct]
            if is_numeric(t):
                cast = f"CAST({col} AS {self.d.double})"
                exprs += [f"MIN({cast})", f"MAX({cast})", f"AVG({cast})", f"STDDEV_SAMP({cast})"]
            spans.append((name, t, start, len(exprs)))
        row = self.rel.fetch(f"SELECT {', '.join(exprs)} FROM {self.rel.sql}", {})[0]
        n = int(row[0])
        return {"row_count": n, "columns": {name: _column_stats(t, [normalize(x) for x in row[a:b]], n)
                                            for name, t, a, b in spans}}


def _column_stats(type_: str, v: list[Any], n: int) -> dict[str, Any]:
    stats: dict[str, Any] = {"type": type_, "null_share": (n - v[0]) / n if n else None,
                             "distinct_count": v[1]}
    if len(v) > 2:
        stats.update(zip(("min", "max", "mean", "stdev"), map(_float, v[2:]), strict=True))
    return stats


def _count(cond: str) -> str:
    return f"SUM(CASE WHEN {cond} THEN 1 ELSE 0 END)"


def _float(v: Any) -> float | None:
    return None if v is None else float(v)

