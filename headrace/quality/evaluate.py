"""Backend-neutral parts of a validation: schema checks before, judging after.

A backend only measures (counts, metrics, unexpected samples); turning a
measurement into a GE-style result is done here once, so every backend gives
the same answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from headrace.quality.arguments import bound_kind
from headrace.quality.expectation import Expectation
from headrace.quality.results import PARTIAL_LIMIT, ExpectationResult, ResultFormat, plain
from headrace.quality.types import (
    as_time,
    is_numeric,
    is_string,
    is_temporal,
    kind_of_type,
    type_matches,
    wanted_types,
)


@dataclass
class Measure:
    """What a backend observed for one check."""

    element_count: int = 0
    missing_count: int = 0
    unexpected_count: int = 0
    observed: Any = None
    partial: list[Any] = field(default_factory=list)
    partial_counts: list[dict[str, Any]] | None = None
    unexpected_list: list[Any] | None = None
    index_list: list[Any] | None = None
    error: str | None = None       # the engine refused this check (reported, not raised)
    rows: bool = False             # counts and samples are of rows (row checks, some type checks)
    column_type: str | None = None  # type checks: the column's canonical type


def _needs_problem(e: Expectation, col: str, t: str) -> str | None:
    needs = e.spec.needs
    if t == "null":
        return None                # an all-null column has no value of the wrong type
    if needs == "numeric" and not is_numeric(t):
        return f"column {col!r} has type {t}; {e.expectation_type} needs a numeric column"
    if needs == "mean" and not (is_numeric(t) or t == "bool"):
        return f"column {col!r} has type {t}; {e.expectation_type} needs a numeric column"
    if needs == "string" and not is_string(t):
        return f"column {col!r} has type {t}; {e.expectation_type} needs a string column"
    return None


def schema_problem(e: Expectation, schema: dict[str, str]) -> str | None:
    """Why this check cannot run on a table with this schema, or None."""
    if e.kind == "table" and e.spec.op != "row_count":
        return None
    missing = [c for c in e.columns if c not in schema]
    if missing:
        have = ", ".join(schema) or "(none)"
        return f"column {', '.join(repr(c) for c in missing)} not found; the columns are: {have}"
    for col in e.columns:
        problem = _needs_problem(e, col, schema[col])
        if problem:
            return problem
    return None


def value_problem(e: Expectation, schema: dict[str, str]) -> str | None:
    """Why a row check's arguments cannot be compared with the column's values, or None.

    Only a column that holds values makes this an error: on an empty or all-null column
    the check passes, as there is nothing to compare (see run.py).
    """
    if e.spec.op in ("between", "min", "max"):
        return _bounds_problem(e, schema[e.columns[0]])
    if e.spec.op in ("in_set", "not_in_set"):
        return _set_problem(e, schema[e.columns[0]])
    return None


def _set_problem(e: Expectation, col_type: str) -> str | None:
    """A number in a set of strings (or the reverse) can never match: say so instead."""
    if col_type == "null":
        return None
    for value in e.kwargs["value_set"] or []:
        if value is None:
            continue
        if isinstance(value, str) != is_string(col_type) and not (is_temporal(col_type) and isinstance(value, str)):
            return (f"column {e.columns[0]!r} has type {col_type}; value_set member {value!r} "
                    "cannot be compared with it")
    return None


def _bounds_problem(e: Expectation, col_type: str) -> str | None:
    # Engines differ on implicit casts (DuckDB casts '5' to 5, Arrow refuses), so a bound
    # of another kind than the column is an error everywhere; date text is read as a date.
    if col_type == "null":
        return None
    for key in ("min_value", "max_value"):
        bound = e.kwargs.get(key)
        if bound is None:
            continue
        want = kind_of_type(col_type)
        if want == "date" and isinstance(bound, str):
            if as_time(col_type, bound) is None:
                return f"column {e.columns[0]!r} has type {col_type}; {key} {bound!r} is not a date or time"
            continue
        if bound_kind(bound) != want:
            return (f"column {e.columns[0]!r} has type {col_type}; {key} {bound!r} "
                    "cannot be compared with it (column values, min_value and max_value must "
                    "be of the same type)")
    return None


def prepare(e: Expectation, schema: dict[str, str]) -> Expectation:
    """The check with bounds for a date or timestamp column turned into that column's values."""
    if e.spec.op not in ("between", "min", "max") or not e.columns or e.columns[0] not in schema:
        return e
    col_type = schema[e.columns[0]]
    if not is_temporal(col_type):
        return e
    kw = dict(e.kwargs)
    for key in ("min_value", "max_value"):
        timed = as_time(col_type, kw[key]) if kw.get(key) is not None else None
        if timed is not None:      # text that is no date stays, for schema checks to name
            kw[key] = timed
    return e.with_kwargs(kw)


def table_observation(e: Expectation, schema: dict[str, str]) -> Any:
    """Observed value of the checks answered from the schema alone."""
    op = e.spec.op
    if op == "columns":
        return list(schema)
    if op == "column_count":
        return len(schema)
    raise ValueError(op)


def wanted_of(e: Expectation) -> list[str] | None:
    return [e.kwargs["type_"]] if "type_" in e.kwargs else e.kwargs.get("type_list")


def type_rows_needed(wanted: list[str] | None, col_type: str) -> bool:
    """Type checks judge each value of a text column (GX, pandas object columns), unless
    any object will do (``object``, ``O``: the column's type is judged)."""
    return wanted is not None and col_type == "string" and "*" not in wanted_types(wanted)


def text_admitted(wanted: list[str] | None, native: str) -> bool:
    """Whether the wanted types admit text values (by alias or the engine's own type name)."""
    if wanted is None:
        return True
    return type_matches("string", wanted) or native.lower() in {str(w).lower() for w in wanted}


def error_result(e: Expectation, message: str) -> ExpectationResult:
    return ExpectationResult(e.name, e.expectation_type, e.kwargs, False, {},
                             exception_info=message, row_level=e.row_level)


def finish(e: Expectation, m: Measure, fmt: ResultFormat) -> ExpectationResult:
    """Judge a measurement and shape the result at the requested detail."""
    if m.error is not None:
        return error_result(e, m.error)
    if e.row_level or m.rows:
        r = _finish_rows(e, m, fmt)
        if e.kind == "type" and fmt is not ResultFormat.BOOLEAN_ONLY:
            r.result["observed_value"] = m.observed
        return r
    if e.kind == "type":
        wanted = wanted_of(e)
        success = wanted is None or type_matches(m.column_type, wanted) or \
            str(m.observed).lower() in {str(w).lower() for w in wanted}
        shown = {} if fmt is ResultFormat.BOOLEAN_ONLY else {"observed_value": m.observed}
        return ExpectationResult(e.name, e.expectation_type, e.kwargs, success, shown)
    judge = e.spec.judge
    assert judge is not None, e.expectation_type
    success = bool(judge(e.kwargs, m.observed))
    if fmt is ResultFormat.BOOLEAN_ONLY:
        return ExpectationResult(e.name, e.expectation_type, e.kwargs, success, {})
    observed, details = (e.spec.present(e.kwargs, m.observed) if e.spec.present else (m.observed, None))
    result: dict[str, Any] = {"observed_value": plain(observed)}
    if e.kind == "agg":
        result.update(element_count=m.element_count, missing_count=m.missing_count,
                      missing_percent=_pct(m.missing_count, m.element_count))
    if details is not None:
        result["details"] = plain(details)
    return ExpectationResult(e.name, e.expectation_type, e.kwargs, success, result)


def row_success(e: Expectation, m: Measure) -> bool:
    nonmissing = m.element_count - m.missing_count
    if nonmissing <= 0:
        return True  # GE: nothing to check is not a failure
    return (nonmissing - m.unexpected_count) / nonmissing >= float(e.kwargs.get("mostly", 1.0))


def _finish_rows(e: Expectation, m: Measure, fmt: ResultFormat) -> ExpectationResult:
    success = row_success(e, m)
    if fmt is ResultFormat.BOOLEAN_ONLY:
        return ExpectationResult(e.name, e.expectation_type, e.kwargs, success, {}, row_level=e.row_level)
    n, miss, bad = m.element_count, m.missing_count, m.unexpected_count
    nonmissing = n - miss
    result: dict[str, Any] = {
        "element_count": n, "missing_count": miss,
        "missing_percent": _pct(miss, n),
        "unexpected_count": bad,
        "unexpected_percent": _pct(bad, nonmissing),
        "unexpected_percent_total": _pct(bad, n),
        "unexpected_percent_nonmissing": _pct(bad, nonmissing),
        "partial_unexpected_list": plain(m.partial[:PARTIAL_LIMIT]),
    }
    if fmt in (ResultFormat.SUMMARY, ResultFormat.COMPLETE):
        result["partial_unexpected_counts"] = plain(m.partial_counts or [])
        result["partial_unexpected_index_list"] = plain((m.index_list or [])[:PARTIAL_LIMIT])
    if fmt is ResultFormat.COMPLETE:
        result["unexpected_list"] = plain(m.unexpected_list or [])
        result["unexpected_index_list"] = plain(m.index_list or [])
    return ExpectationResult(e.name, e.expectation_type, e.kwargs, success, result, row_level=e.row_level)


def _pct(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def value_counts(values: list[Any]) -> list[dict[str, Any]]:
    """GE's partial_unexpected_counts: most frequent first, ties by value text."""
    counts: dict[Any, int] = {}
    first: dict[Any, Any] = {}
    for v in values:
        key = _hashable(v)
        counts[key] = counts.get(key, 0) + 1
        first.setdefault(key, v)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
    return [{"value": first[k], "count": c} for k, c in ranked[:PARTIAL_LIMIT]]


def _hashable(v: Any) -> Any:
    if isinstance(v, dict):
        return tuple((k, _hashable(x)) for k, x in v.items())   # rows of multi-column checks
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)                   # [A, B] of pair checks
    return v
