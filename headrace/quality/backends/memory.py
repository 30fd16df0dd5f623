"""Checks on in-memory frames (pandas, Polars, Arrow): vectorised, one pass per column.

Each row-level check yields a NumPy mask of unexpected rows; the masks are kept (in the
frame's own row positions) so that a gate's split after its validation costs only the
filtering. A check with a ``row_condition`` runs on the subset of rows inside it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa

from headrace.quality.backends.arrow_ops import METRICS, MULTI_OPS, ROW_OPS, null_mask
from headrace.quality.backends.base import FAILED_CHECKS_COLUMN, SEPARATOR
from headrace.quality.backends.frames import Frame, canonical_schema, frame_for
from headrace.quality.conditions import ConditionError
from headrace.quality.evaluate import Measure, text_admitted, type_rows_needed, value_counts
from headrace.quality.expectation import Expectation
from headrace.quality.results import PARTIAL_LIMIT, ResultFormat
from headrace.quality.types import type_matches, value_type

log = logging.getLogger("headrace.quality")
ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, TypeError)


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
        self._masks: dict[str, Any] = {}        # unexpected rows per check (see as_numpy)
        self._inside: dict[str, np.ndarray] = {}       # rows inside each row condition
        self._schema: dict[str, str] | None = None

    def schema(self) -> dict[str, str]:
        if self._schema is None:
            self._schema = canonical_schema(self.frame)
        return self._schema

    def measure(self, checks: list[Expectation], fmt: ResultFormat) -> dict[str, Measure]:
        out = {}
        for e in checks:
            try:
                out[e.name] = self._measure_in(e, fmt)
            except ConditionError as exc:
                out[e.name] = Measure(self.frame.num_rows, error=str(exc))
            except ARROW_ERRORS as exc:
                # One check the data cannot answer (mixed types, say) fails alone.
                log.debug("check %s failed to run: %s", e.name, exc)
                out[e.name] = Measure(self.frame.num_rows, error=f"cannot run on this data: {exc}")
        return out

    def _view(self, e: Expectation) -> tuple[MemorySource, np.ndarray | None]:
        """The source holding only the rows inside the check's condition, and those rows."""
        cond = e.condition
        if cond is None:
            return self, None
        inside = self._inside.get(cond.text)
        if inside is None:
            inside = self.frame.condition_mask(cond, self.schema())
            self._inside[cond.text] = inside
        sub = MemorySource(self.frame.subset(inside))
        sub._schema = self.schema()
        return sub, inside

    def _measure_in(self, e: Expectation, fmt: ResultFormat) -> Measure:
        view, inside = self._view(e)
        m = view._measure_one(e, fmt)
        if inside is not None and e.name in view._masks:
            full = np.zeros(self.frame.num_rows, dtype=bool)
            full[inside] = as_numpy(view._masks[e.name])
            self._masks[e.name] = full
        return m

    def _measure_one(self, e: Expectation, fmt: ResultFormat) -> Measure:
        n = self.frame.num_rows
        if e.kind in ("agg", "history") and e.columns:
            col = self.frame.column(e.columns[0])
            if pa.types.is_null(col.type):
                return Measure(n, n, observed=METRICS[e.spec.op](pa.array([], pa.float64()), e.kwargs))
            return Measure(n, col.null_count, observed=METRICS[e.spec.op](col, e.kwargs))
        if e.kind in ("table", "history"):
            return Measure(n, observed=n)  # row_count: schema checks never reach a backend
        if e.kind == "type":
            return self._measure_type(e, fmt)
        bad, missing = self.row_mask(e)
        return self._row_measure(e, bad, missing, fmt)

    def row_mask(self, e: Expectation) -> tuple[Any, int]:
        """(unexpected rows, rows not looked at) for a row-level check of this view."""
        if e.kind == "multi":
            cols = [self.frame.column(c) for c in e.columns]
            bad, ignored = MULTI_OPS[e.spec.op](cols, e.kwargs, self._raw(e.columns))
            missing = int(np.count_nonzero(ignored))
        else:
            bad, missing = self._map_mask(e)
        self._masks[e.name] = bad
        return bad, missing

    def _map_mask(self, e: Expectation) -> tuple[Any, int]:
        name, op, n = e.columns[0], e.op, self.frame.num_rows
        if op in ("not_null", "null"):
            nulls = null_mask(self.frame.column(name))
            return (nulls if op == "not_null" else ~nulls), 0
        missing = self.frame.null_count(name)
        if missing == n:
            return np.zeros(n, dtype=bool), missing    # nothing to look at, whatever the type
        native = self.frame.native_op(op, name, e.kwargs)
        if native is not None:
            return native, missing
        col = self.frame.column(name)
        bad = ROW_OPS[op](col, e.kwargs)
        if missing:
            bad &= ~null_mask(col)
        return bad, missing

    def _raw(self, columns: list[str]) -> list[list[Any] | None]:
        return [self.frame.raw_values(c) for c in columns]

    def _measure_type(self, e: Expectation, fmt: ResultFormat) -> Measure:
        name = e.columns[0]
        wanted = [e.kwargs["type_"]] if "type_" in e.kwargs else e.kwargs.get("type_list")
        native = self.frame.native_type(name)
        ctype = self.schema()[name]
        if not type_rows_needed(wanted, ctype):
            return Measure(self.frame.num_rows, observed=native, column_type=ctype)
        col = self.frame.column(name)
        nulls = null_mask(col)
        raw = self.frame.raw_values(name)
        if raw is None:
            bad = np.zeros(len(col), dtype=bool) if text_admitted(wanted, native) else ~nulls
        else:   # pandas object column: each value by its own Python type
            bad = np.array([not (v is None or v != v) and not type_matches(value_type(v), wanted or [])
                            for v in raw], dtype=bool)
        m = self._row_measure(e, bad, int(np.count_nonzero(nulls)), fmt)
        m.observed, m.column_type, m.rows = native, ctype, True
        return m

    def _row_measure(self, e: Expectation, bad: Any, missing: int,
                     fmt: ResultFormat) -> Measure:
        m = Measure(self.frame.num_rows, missing, _count(bad), rows=True)
        if not m.unexpected_count or fmt is ResultFormat.BOOLEAN_ONLY:
            return m
        full = fmt in (ResultFormat.SUMMARY, ResultFormat.COMPLETE)
        where = _positions(bad, None if full else PARTIAL_LIMIT)
        values = self._values(e, where)
        m.partial = values[:PARTIAL_LIMIT]
        if full:
            m.unexpected_list = values
            m.partial_counts = value_counts(values)
            m.index_list = self.frame.index_labels(where)
        return m

    def _values(self, e: Expectation, where: np.ndarray) -> list[Any]:
        if e.kind in ("map", "type"):
            raw = self.frame.raw_values(e.columns[0]) if e.kind == "type" else None
            if raw is not None:
                return [raw[i] for i in where]
            return self.frame.values_at(e.columns[0], where)
        cols = [self._column_values(c, where) for c in e.columns]
        if e.spec.op.startswith("pair_"):    # GX lists a pair's values as [A, B]
            return [list(vals) for vals in zip(*cols, strict=True)]
        return [dict(zip(e.columns, vals, strict=True)) for vals in zip(*cols, strict=True)]

    def _column_values(self, name: str, where: np.ndarray) -> list[Any]:
        raw = self.frame.raw_values(name)
        if raw is not None and name in getattr(self.frame, "_mixed", ()):
            return [raw[i] for i in where]
        return self.frame.values_at(name, where)

    def split(self, checks: list[Expectation]) -> tuple[Any, Any]:
        rows = [e for e in checks if e.row_level]
        masks = []
        for e in rows:
            if e.name not in self._masks:
                try:
                    self._measure_in(e, ResultFormat.BOOLEAN_ONLY)
                except (ConditionError, *ARROW_ERRORS):
                    self._masks[e.name] = np.zeros(self.frame.num_rows, dtype=bool)
            masks.append(as_numpy(self._masks[e.name]))
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


def as_numpy(mask: Any) -> np.ndarray:
    """A mask as NumPy: frame libraries may give their own (Polars keeps bits packed)."""
    return mask if isinstance(mask, np.ndarray) else np.asarray(mask.to_numpy(), dtype=bool)


def _count(mask: Any) -> int:
    return int(np.count_nonzero(mask)) if isinstance(mask, np.ndarray) else int(mask.sum())


def _positions(mask: Any, k: int | None) -> np.ndarray:
    if not isinstance(mask, np.ndarray):
        hits = mask.arg_true()
        return (hits if k is None else hits.head(k)).to_numpy()
    return np.flatnonzero(mask) if k is None else _first_true(mask, k)


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
