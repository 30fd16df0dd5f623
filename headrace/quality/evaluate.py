"""Backend-neutral parts of a validation: schema checks before, judging after.

A backend only measures (counts, metrics, unexpected samples); turning a
measurement into a GE-style result is done here once, so every backend gives
the same answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from headrace.quality.expectation import Expectation
from headrace.quality.results import PARTIAL_LIMIT, ExpectationResult, ResultFormat, plain
from headrace.quality.types import is_numeric, is_string


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


def schema_problem(e: Expectation, schema: dict[str, str]) -> str | None:
    """Why this check cannot run on a table with this schema, or None."""
    if e.kind == "table" and e.spec.op != "type":
        return None
    missing = [c for c in e.columns if c not in schema]
    if missing:
        have = ", ".join(schema) or "(none)"
        return f"column {', '.join(repr(c) for c in missing)} not found; the columns are: {have}"
    needs = e.spec.needs
    for col in e.columns:
        t = schema[col]
        if needs == "numeric" and not is_numeric(t):
            return f"column {col!r} has type {t}; {e.expectation_type} needs a numeric column"
        if needs == "string" and not is_string(t):
            return f"column {col!r} has type {t}; {e.expectation_type} needs a string column"
    if e.spec.op == "between":
        return _bounds_problem(e, schema[e.columns[0]])
    if e.spec.op in ("in_set", "not_in_set"):
        return _set_problem(e, schema[e.columns[0]])
    return None


def _set_problem(e: Expectation, col_type: str) -> str | None:
    """A number in a set of strings (or the reverse) can never match: say so instead."""
    for value in e.kwargs["value_set"]:
        if value is None:
            continue
        if isinstance(value, str) != is_string(col_type):
            return (f"column {e.columns[0]!r} has type {col_type}; value_set member {value!r} "
                    "cannot be compared with it")
    return None


def _kind_of_value(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "date" if hasattr(value, "isoformat") else type(value).__name__


def _kind_of_type(col_type: str) -> str:
    if is_numeric(col_type):
        return "number"
    if col_type in ("date", "timestamp"):
        return "date"
    return col_type


def _bounds_problem(e: Expectation, col_type: str) -> str | None:
    # Engines differ on implicit casts (DuckDB casts '5' to 5, Arrow refuses), so a bound
    # of another kind than the column is an error everywhere.
    for key in ("min_value", "max_value"):
        bound = e.kwargs.get(key)
        if bound is not None and _kind_of_value(bound) != _kind_of_type(col_type):
            return (f"column {e.columns[0]!r} has type {col_type}; {key} {bound!r} "
                    "cannot be compared with it")
    return None


def table_observation(e: Expectation, schema: dict[str, str]) -> Any:
    """Observed value of the checks answered from the schema alone."""
    op = e.spec.op
    if op == "columns":
        return list(schema)
    if op == "column_count":
        return len(schema)
    if op == "type":
        return schema.get(e.columns[0])
    raise ValueError(op)


def error_result(e: Expectation, message: str) -> ExpectationResult:
    return ExpectationResult(e.name, e.expectation_type, e.kwargs, False, {},
                             exception_info=message, row_level=e.row_level)


def finish(e: Expectation, m: Measure, fmt: ResultFormat) -> ExpectationResult:
    """Judge a measurement and shape the result at the requested detail."""
    if m.error is not None:
        return error_result(e, m.error)
    if e.row_level:
        return _finish_rows(e, m, fmt)
    judge = e.spec.judge
    assert judge is not None, e.expectation_type
    success = bool(judge(e.kwargs, m.observed))
    result = {} if fmt is ResultFormat.BOOLEAN_ONLY else {"observed_value": plain(m.observed)}
    if e.kind == "agg" and fmt is not ResultFormat.BOOLEAN_ONLY:
        result.update(element_count=m.element_count, missing_count=m.missing_count)
    return ExpectationResult(e.name, e.expectation_type, e.kwargs, success, result)


def row_success(e: Expectation, m: Measure) -> bool:
    nonmissing = m.element_count - m.missing_count
    if nonmissing <= 0:
        return True  # GE: nothing to check is not a failure
    return (nonmissing - m.unexpected_count) / nonmissing >= float(e.kwargs.get("mostly", 1.0))


def _finish_rows(e: Expectation, m: Measure, fmt: ResultFormat) -> ExpectationResult:
    success = row_success(e, m)
    if fmt is ResultFormat.BOOLEAN_ONLY:
        return ExpectationResult(e.name, e.expectation_type, e.kwargs, success, {}, row_level=True)
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
    return ExpectationResult(e.name, e.expectation_type, e.kwargs, success, result, row_level=True)


def _pct(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def value_counts(values: list[Any]) -> list[dict[str, Any]]:
    """GE's partial_unexpected_counts: most frequent first, ties by value text."""
    counts: dict[Any, int] = {}
    first: dict[Any, Any] = {}
    for v in values:
        key = tuple(v.items()) if isinstance(v, dict) else v  # rows of multi-column checks
        counts[key] = counts.get(key, 0) + 1
        first.setdefault(key, v)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
    return [{"value": first[k], "count": c} for k, c in ranked[:PARTIAL_LIMIT]]
