"""Checks on in-memory frames (pandas, Polars, Arrow): vectorised, one pass per column.

Each row-level check yields a NumPy mask of unexpected rows; the masks are kept
so that a gate's split after its validation costs only the filtering.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa

from headrace.quality.backends import FAILED_CHECKS_COLUMN, SEPARATOR
from headrace.quality.backends.arrow_ops import METRICS, MULTI_OPS, ROW_OPS, null_mask
from headrace.quality.backends.frames import Frame, frame_for
from headrace.quality.evaluate import Measure, value_counts
from headrace.quality.expectation import Expectation
from headrace.quality.results import PARTIAL_LIMIT, ResultFormat
from headrace.quality.types import arrow_type_name

log = logging.getLogger("headrace.quality")


class MemoryBackend:
    name = "memory"

    def open(self, data: Any) -> MemorySource | None:
        frame = frame_for(data)
        return MemorySource(frame) if frame is not None else None


class MemorySource:
    """A pandas, Polars or Arrow frame."""

    def __init__(self, frame: Frame) -> None:
        self.frame = frame
        self.kind = frame.kind
        self._masks: dict[str, np.ndarray] = {}
        self._schema: dict[str, str] | None = None

    def schema(self) -> dict[str, str]:
        if self._schema is None:
            self._schema = {n: arrow_type_name(t) for n, t in self.frame.types().items()}
        return self._schema

    def measure(self, checks: list[Expectation], fmt: ResultFormat) -> dict[str, Measure]:
        out = {}
        for e in checks:
            try:
                out[e.name] = self._measure_one(e, fmt)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError,
                    TypeError) as exc:
                # One check the data cannot answer (mixed types, say) fails alone.
                log.debug("check %s failed to run: %s", e.name, exc)
                out[e.name] = Measure(self.frame.num_rows, error=f"cannot run on this data: {exc}")
        return out

    def _measure_one(self, e: Expectation, fmt: ResultFormat) -> Measure:
        n = self.frame.num_rows
        if e.kind in ("agg", "history") and e.columns:
            col = self.frame.column(e.columns[0])
            return Measure(n, col.null_count, observed=METRICS[e.spec.op](col, e.kwargs))
        if e.kind in ("table", "history"):
            return Measure(n, observed=n)  # row_count: schema checks never reach a backend
        bad, missing = self.row_mask(e)
        return self._row_measure(e, bad, missing, fmt)

    def row_mask(self, e: Expectation) -> tuple[np.ndarray, int]:
        """(unexpected rows, rows not looked at) for a row-level check; cached by name."""
        if e.kind == "multi":
            cols = [self.frame.column(c) for c in e.columns]
            bad, ignored = MULTI_OPS[e.spec.op](cols, e.kwargs)
            missing = int(np.count_nonzero(ignored))
        else:
            col = self.frame.column(e.columns[0])
            op = e.spec.op
            if op in ("not_null", "null"):
                nulls = null_mask(col)
                bad, missing = (nulls if op == "not_null" else ~nulls), 0
            else:
                bad = ROW_OPS[op](col, e.kwargs)
                missing = col.null_count
                if missing:
                    bad &= ~null_mask(col)
        self._masks[e.name] = bad
        return bad, missing

    def _row_measure(self, e: Expectation, bad: np.ndarray, missing: int,
                     fmt: ResultFormat) -> Measure:
        m = Measure(self.frame.num_rows, missing, int(np.count_nonzero(bad)))
        if not m.unexpected_count or fmt is ResultFormat.BOOLEAN_ONLY:
            return m
        full = fmt in (ResultFormat.SUMMARY, ResultFormat.COMPLETE)
        where = np.flatnonzero(bad) if full else _first_true(bad, PARTIAL_LIMIT)
        col = e.columns[0] if e.kind == "map" else None
        values = self._values(e, col, where)
        m.partial = values[:PARTIAL_LIMIT]
        if full:
            m.unexpected_list = values
            m.partial_counts = value_counts(values)
            m.index_list = self.frame.index_labels(where)
        return m

    def _values(self, e: Expectation, col: str | None, where: np.ndarray) -> list[Any]:
        if col is not None:
            return list(self.frame.column(col).take(where).to_pylist())
        # Several columns: each unexpected value is the row's values, by column name.
        cols = {c: self.frame.column(c).take(where).to_pylist() for c in e.columns}
        return [dict(zip(cols, vals, strict=True)) for vals in zip(*cols.values(), strict=True)]

    def split(self, checks: list[Expectation]) -> tuple[Any, Any]:
        rows = [e for e in checks if e.row_level]
        masks = [self._masks[e.name] if e.name in self._masks else self.row_mask(e)[0] for e in rows]
        n = self.frame.num_rows
        any_bad = np.logical_or.reduce(masks) if masks else np.zeros(n, dtype=bool)
        good = self.frame.take(~any_bad)
        bad = self.frame.take(any_bad)
        names = failed_names([e.name for e in rows], [m[any_bad] for m in masks])
        return good, self.frame.with_failed(bad, FAILED_CHECKS_COLUMN, names)

    def profile(self, exact_distinct: Iterable[str] = ()) -> dict[str, Any]:
        """The profile computed by DuckDB over the frame's Arrow columns (shared, not copied).

        DuckDB runs every column's statistics in one multi-threaded pass and has a
        HyperLogLog distinct count; Arrow's exact count_distinct takes seconds on 5M keys.
        """
        import duckdb

        from headrace.quality.backends.sources import DuckDBRelation
        from headrace.quality.backends.sql import SqlSource

        table = pa.table({n: self.frame.column(n) for n in self.frame.names})
        con = duckdb.connect()
        con.register("__hr_frame", table)
        try:
            profile = SqlSource(DuckDBRelation(con, '"__hr_frame"', self.kind)).profile(exact_distinct)
        finally:
            con.close()
        for name, type_ in self.schema().items():  # the frame's own type names, not DuckDB's
            profile["columns"][name]["type"] = type_
        return profile


def _first_true(mask: np.ndarray, k: int) -> np.ndarray:
    """Positions of the first k True values without scanning past them when they come early."""
    step = 1 << 16
    found: list[np.ndarray] = []
    got = 0
    for start in range(0, len(mask), step):
        hits = np.flatnonzero(mask[start:start + step])
        if len(hits):
            found.append(hits[: k - got] + start)
            got += len(found[-1])
            if got >= k:
                break
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def failed_names(names: list[str], masks: list[np.ndarray]) -> np.ndarray:
    """Per bad row, the names of the checks it failed, joined by '; '.

    Rows are grouped by their combination of failures (a bit pattern), so the
    strings are built once per combination rather than once per row.
    """
    if not masks or not len(masks[0]):
        return np.array([], dtype=object)
    codes = np.zeros(len(masks[0]), dtype=np.int64)
    for i, m in enumerate(masks[:62]):
        codes |= m.astype(np.int64) << i
    uniq, inverse = np.unique(codes, return_inverse=True)
    labels = np.array([SEPARATOR.join(n for i, n in enumerate(names[:62]) if c >> i & 1)
                       for c in uniq], dtype=object)
    return labels[inverse]

