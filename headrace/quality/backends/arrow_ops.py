"""Row predicates and column metrics on Arrow arrays (pyarrow.compute and NumPy).

A row op returns a NumPy bool mask, True where a non-null value is
unexpected; nulls are masked out by the caller (only the null checks see
them). Metrics return plain Python values.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from headrace.quality.arguments import IGNORE_RULE

Column: TypeAlias = Any  # pa.Array or pa.ChunkedArray: both answer the same calls
RowOp = Callable[[Column, dict[str, Any]], np.ndarray]


def to_mask(arr: Any) -> np.ndarray:
    """An Arrow boolean array as a NumPy bool array, nulls as False."""
    if isinstance(arr, np.ndarray):
        return arr
    if arr.null_count:
        arr = pc.fill_null(arr, False)
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=bool)


def null_mask(col: Column) -> np.ndarray:
    if not col.null_count:
        return np.zeros(len(col), dtype=bool)
    return to_mask(pc.is_null(col))


def _value_set(col: Column, values: Any) -> pa.Array:
    values = [v for v in values if v is not None]   # nulls are never checked
    if not values:
        return pa.array([], type=col.type)
    arr = pa.array(values)
    try:
        return arr.cast(col.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return arr


def _outside(values: Column, kw: dict[str, Any]) -> np.ndarray:
    lo, hi = kw.get("min_value"), kw.get("max_value")
    bad: Any = None
    if lo is not None:
        bad = (pc.less_equal if kw.get("strict_min") else pc.less)(values, lo)
    if hi is not None:
        over = (pc.greater_equal if kw.get("strict_max") else pc.greater)(values, hi)
        bad = over if bad is None else pc.or_(bad, over)
    return to_mask(bad) if bad is not None else np.zeros(len(values), dtype=bool)


def _in_set(col: Column, kw: dict[str, Any]) -> np.ndarray:
    if kw["value_set"] is None:     # no constraint
        return np.zeros(len(col), dtype=bool)
    return ~to_mask(pc.is_in(col, value_set=_value_set(col, kw["value_set"])))


def _not_in_set(col: Column, kw: dict[str, Any]) -> np.ndarray:
    return to_mask(pc.is_in(col, value_set=_value_set(col, kw["value_set"])))


def _unique(col: Column, kw: dict[str, Any]) -> np.ndarray:
    counts = pc.value_counts(col)
    values, n = counts.field("values"), counts.field("counts")
    dups = pc.filter(values, pc.greater(n, 1))
    return to_mask(pc.is_in(col, value_set=dups.drop_null()))


def _regex(col: Column, kw: dict[str, Any]) -> np.ndarray:
    return ~to_mask(pc.match_substring_regex(col, pattern=kw["regex"]))


def _not_regex(col: Column, kw: dict[str, Any]) -> np.ndarray:
    return to_mask(pc.match_substring_regex(col, pattern=kw["regex"]))


def _matches(col: Column, patterns: list[str]) -> list[np.ndarray]:
    return [to_mask(pc.match_substring_regex(col, pattern=p)) for p in patterns]


def _regex_list(col: Column, kw: dict[str, Any]) -> np.ndarray:
    hits = _matches(col, list(kw["regex_list"]))
    combine = np.logical_or if kw.get("match_on", "any") == "any" else np.logical_and
    return ~combine.reduce(hits)


def _not_regex_list(col: Column, kw: dict[str, Any]) -> np.ndarray:
    return np.logical_or.reduce(_matches(col, list(kw["regex_list"])))


def _like(col: Column, kw: dict[str, Any]) -> np.ndarray:
    return ~to_mask(pc.match_like(col, pattern=kw["like_pattern"]))


def _not_like(col: Column, kw: dict[str, Any]) -> np.ndarray:
    return to_mask(pc.match_like(col, pattern=kw["like_pattern"]))


def _per_distinct(bad: Callable[[Any, dict[str, Any]], bool]) -> RowOp:
    # Parsing is per value in Python; doing it once per distinct value keeps it cheap.
    def op(col: Column, kw: dict[str, Any]) -> np.ndarray:
        distinct = pc.unique(col).drop_null().to_pylist()
        rejected = [v for v in distinct if bad(v, kw)]
        if not rejected:
            return np.zeros(len(col), dtype=bool)
        return to_mask(pc.is_in(col, value_set=pa.array(rejected, type=col.type)))
    return op


def strftime_fails(value: Any, kw: dict[str, Any]) -> bool:
    try:
        datetime.strptime(str(value), kw["strftime_format"])
    except ValueError:
        return True
    return False


def dateutil_fails(value: Any, kw: dict[str, Any]) -> bool:
    from dateutil import parser

    try:
        parser.parse(str(value))
    except (ValueError, OverflowError, parser.ParserError):
        return True
    return False


def _lengths_between(col: Column, kw: dict[str, Any]) -> np.ndarray:
    return _outside(pc.utf8_length(col), kw)


def _lengths_equal(col: Column, kw: dict[str, Any]) -> np.ndarray:
    return to_mask(pc.not_equal(pc.utf8_length(col), kw["value"]))


def _monotonic(decreasing: bool) -> RowOp:
    def op(col: Column, kw: dict[str, Any]) -> np.ndarray:
        valid = np.flatnonzero(~null_mask(col))
        values = col.drop_null().to_numpy(zero_copy_only=False)
        out = np.zeros(len(col), dtype=bool)
        if len(values) < 2:
            return out
        prev, cur = values[:-1], values[1:]
        strictly = bool(kw.get("strictly"))
        if decreasing:
            bad = cur >= prev if strictly else cur > prev
        else:
            bad = cur <= prev if strictly else cur < prev
        out[valid[1:]] = bad
        return out
    return op


ROW_OPS: dict[str, RowOp] = {
    "mismatch": lambda col, kw: np.ones(len(col), dtype=bool),   # every value: see run.py
    "between": lambda col, kw: _outside(col, kw),
    "in_set": _in_set, "not_in_set": _not_in_set, "unique": _unique,
    "regex": _regex, "not_regex": _not_regex,
    "regex_list": _regex_list, "not_regex_list": _not_regex_list,
    "like": _like, "not_like": _not_like,
    "strftime": _per_distinct(strftime_fails), "dateutil": _per_distinct(dateutil_fails),
    "lengths_between": _lengths_between, "lengths_equal": _lengths_equal,
    "increasing": _monotonic(False), "decreasing": _monotonic(True),
}


# -- rows over several columns: (unexpected, ignored) ----------------------------------------
# ``raw`` holds the Python values of pandas object columns (None for typed columns): a pair
# with such a column compares value by value, as pandas does.

def ignored_rows(nulls: list[np.ndarray], rule: str) -> np.ndarray:
    """Rows skipped by ignore_row_if: all / any of the columns null, or never."""
    kind = IGNORE_RULE[rule]
    if kind == "never":
        return np.zeros(len(nulls[0]), dtype=bool)
    return (np.logical_or if kind == "any" else np.logical_and).reduce(nulls)


def compound_unique(cols: list[Column], kw: dict[str, Any], raw: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    ignored = ignored_rows([null_mask(c) for c in cols], kw.get("ignore_row_if", "all_values_are_missing"))
    codes = []
    for col in cols:
        enc = pc.dictionary_encode(col).combine_chunks() if isinstance(col, pa.ChunkedArray) \
            else pc.dictionary_encode(col)
        codes.append(pc.fill_null(enc.indices, -1).to_numpy().astype(np.int64) + 1)
    keys = np.stack(codes, axis=1)[~ignored]
    bad = np.zeros(len(ignored), dtype=bool)
    if len(keys):
        _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
        bad[np.flatnonzero(~ignored)] = counts[inverse.ravel()] > 1
    return bad, ignored


_PY_CMP = {"==": lambda a, b: a == b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


def _pair(op: str) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    kernels = {"==": pc.equal, ">": pc.greater, ">=": pc.greater_equal}

    def run(cols: list[Column], kw: dict[str, Any], raw: list[Any]) -> tuple[np.ndarray, np.ndarray]:
        a, b = cols
        real = ">=" if op == ">" and kw.get("or_equal") else op
        nulls = [null_mask(a), null_mask(b)]
        ignored = ignored_rows(nulls, kw.get("ignore_row_if", "both_values_are_missing"))
        if any(r is not None for r in raw) and a.type != b.type:
            ra = raw[0] if raw[0] is not None else a.to_pylist()
            rb = raw[1] if raw[1] is not None else b.to_pylist()
            ok = np.array([_py_compare(real, x, y) for x, y in zip(ra, rb, strict=True)], dtype=bool)
        else:
            ok = to_mask(kernels[real](a, b))
        return ~ok & ~ignored, ignored
    return run


def _py_compare(op: str, x: Any, y: Any) -> bool:
    if x is None or y is None or x != x or y != y:
        return False
    try:
        return bool(_PY_CMP[op](x, y))
    except TypeError:
        return False


def multicolumn_sum(cols: list[Column], kw: dict[str, Any], raw: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    nulls = [null_mask(c) for c in cols]
    ignored = ignored_rows(nulls, kw.get("ignore_row_if", "all_values_are_missing"))
    total = np.zeros(len(ignored), dtype=np.float64)
    for col in cols:
        total += pc.fill_null(col, 0).to_numpy(zero_copy_only=False).astype(np.float64)
    # A null among the columns leaves the row's sum unknown: unexpected, unless ignored (GX).
    unknown = np.logical_or.reduce(nulls)
    return (unknown | (total != float(kw["sum_total"]))) & ~ignored, ignored


MULTI_OPS: dict[str, Callable[[list[Column], dict[str, Any], list[Any]], tuple[np.ndarray, np.ndarray]]] = {
    "compound_unique": compound_unique,
    "pair_greater": _pair(">"),
    "pair_equal": _pair("=="),
    "multicolumn_sum": multicolumn_sum,
}


# -- column metrics --------------------------------------------------------------------------

def _scalar(s: Any) -> Any:
    return s.as_py() if hasattr(s, "as_py") else s


def quantiles(col: Column, qs: list[float]) -> list[Any]:
    """Discrete quantiles (SQL percentile_disc): always a value of the column."""
    values = np.sort(col.drop_null().to_numpy(zero_copy_only=False))
    if not len(values):
        return [None for _ in qs]
    return [np.quantile(values, q, method="inverted_cdf").item() for q in qs]


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _numbers(c: Column) -> Column:
    """Booleans count as 0 and 1, as in pandas."""
    return c.cast(pa.int64()) if pa.types.is_boolean(c.type) else c


def value_counts(c: Column) -> list[tuple[Any, int]]:
    counts = pc.value_counts(c.drop_null())
    pairs = zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True)
    return sorted(pairs, key=lambda p: p[0])


METRICS: dict[str, Callable[[Column, dict[str, Any]], Any]] = {
    "mean": lambda c, kw: _scalar(pc.mean(_numbers(c))),
    "median": lambda c, kw: (pc.quantile(_numbers(c), q=0.5).to_pylist() or [None])[0]
    if len(c) - c.null_count else None,
    "min": lambda c, kw: _scalar(pc.min(c)),
    "max": lambda c, kw: _scalar(pc.max(c)),
    "sum": lambda c, kw: _scalar(pc.sum(_numbers(c))),
    "stdev": lambda c, kw: _scalar(pc.stddev(_numbers(c), ddof=1)),
    "quantiles": lambda c, kw: {"quantiles": list(kw["quantile_ranges"]["quantiles"]),
                                "values": quantiles(c, kw["quantile_ranges"]["quantiles"])},
    "distinct_count": lambda c, kw: _scalar(pc.count_distinct(c, mode="only_valid")),
    "distinct_share": lambda c, kw: _share(_scalar(pc.count_distinct(c, mode="only_valid")),
                                           len(c) - c.null_count),
    "value_counts": lambda c, kw: value_counts(c),
    "null_share": lambda c, kw: _share(c.null_count, len(c)),
}

