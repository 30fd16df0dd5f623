"""Running checks on a source: schema checks first (no data read), then one measuring pass."""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from headrace.quality.backends import Source
from headrace.quality.conditions import ConditionError
from headrace.quality.evaluate import (
    Measure,
    error_result,
    finish,
    prepare,
    schema_problem,
    table_observation,
    value_problem,
)
from headrace.quality.expectation import Expectation
from headrace.quality.history import judge_history
from headrace.quality.params import resolve
from headrace.quality.results import ExpectationResult, ResultFormat, SuiteResult

log = logging.getLogger("headrace.quality")
_DETAIL = list(ResultFormat)   # BOOLEAN_ONLY < BASIC < SUMMARY < COMPLETE


def own_format(e: Expectation, default: ResultFormat) -> ResultFormat:
    """The check's own ``result_format`` when it has one, else the run's."""
    fmt = e.kwargs.get("result_format")
    if fmt is None:
        return default
    return ResultFormat.parse(fmt["result_format"] if isinstance(fmt, dict) else fmt)


def ready(e: Expectation, schema: dict[str, str], parameters: dict[str, Any] | None = None,
          now: dt.datetime | None = None) -> tuple[Expectation, str | None, str | None]:
    """The check as it runs on this schema (parameters resolved, date bounds typed), why it
    cannot run here, and why its values cannot be compared should the column hold any."""
    e = prepare(resolve(e, parameters, now), schema)
    problem = schema_problem(e, schema)
    if problem is None and e.condition is not None:
        try:
            e.condition.resolve(schema)
        except ConditionError as exc:
            problem = str(exc)
    soft = value_problem(e, schema) if problem is None else None
    return e, problem, soft


def runnable_row_checks(checks: list[Expectation], source: Source,
                        parameters: dict[str, Any] | None = None,
                        now: dt.datetime | None = None) -> list[Expectation]:
    schema = source.schema()
    out = []
    for e in checks:
        if e.row_level:
            e, problem, soft = ready(e, schema, parameters, now)
            if problem is None and soft is None:
                out.append(e)
    return out


def run_checks(suite: str, checks: list[Expectation], source: Source, fmt: ResultFormat,
               history: list[dict[str, Any]] | None = None, parameters: dict[str, Any] | None = None,
               now: dt.datetime | None = None) -> SuiteResult:
    """Schema checks first (no data read), then one measuring pass for the rest."""
    started = time.perf_counter()
    schema = source.schema()
    done: dict[str, ExpectationResult] = {}
    todo: list[Expectation] = []
    soft: dict[str, str] = {}
    for e in checks:
        e, problem, mismatch = ready(e, schema, parameters, now)
        if mismatch is not None:
            # Measured as "every value is unexpected": with no value to look at it passes,
            # with any it is the error that the values cannot be compared.
            soft[e.name] = mismatch
            e = e.probing("mismatch") if e.row_level else e
        if problem is not None:
            done[e.name] = error_result(e, problem)
        elif e.kind == "table" and e.spec.op != "row_count":
            done[e.name] = finish(e, Measure(observed=table_observation(e, schema)), own_format(e, fmt))
        else:
            todo.append(e)
    deepest = max((own_format(e, fmt) for e in todo), key=_DETAIL.index, default=fmt)
    measures = source.measure(todo, deepest) if todo else {}
    for e in todo:
        m, e_fmt = measures[e.name], own_format(e, fmt)
        if e.name in soft and (m.error or m.unexpected_count or m.element_count > m.missing_count):
            done[e.name] = error_result(e, soft[e.name])
        elif e.kind == "history":
            done[e.name] = judge_history(e, m, history, e_fmt)
        else:
            done[e.name] = finish(e, m, e_fmt)
    results = [done[e.name] for e in checks]
    ok = sum(r.success for r in results)
    stats = {"evaluated_expectations": len(results), "successful_expectations": ok,
             "unsuccessful_expectations": len(results) - ok,
             "success_percent": 100.0 * ok / len(results) if results else 100.0,
             "backend": source.kind, "seconds": round(time.perf_counter() - started, 6)}
    log.debug("suite %s on %s: %s/%s passed", suite, source.kind, ok, len(results))
    return SuiteResult(suite, results, stats)
