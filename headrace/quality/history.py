"""Checks that learn their bounds from the profiles of a suite's past successful runs."""

from __future__ import annotations

import statistics
from typing import Any

from headrace.quality.evaluate import Measure
from headrace.quality.expectation import Expectation
from headrace.quality.results import ExpectationResult, ResultFormat, plain


def metric_of(profile: dict[str, Any], e: Expectation) -> float | None:
    """The value a history check watches, read from one stored profile."""
    if e.spec.op == "row_count":
        value = profile.get("row_count")
    else:
        value = (profile.get("columns") or {}).get(e.columns[0], {}).get(e.spec.op)
    return None if value is None else float(value)


def judge_history(e: Expectation, m: Measure, history: list[dict[str, Any]] | None,
                  fmt: ResultFormat) -> ExpectationResult:
    """Pass when today's value is within mean ± sigma·stdev of the last ``window`` runs.

    ``history`` holds past profiles, oldest first. With fewer than
    ``min_history`` usable runs the check passes and says so.
    """
    kw = e.kwargs
    past = [v for v in (metric_of(p, e) for p in (history or [])) if v is not None]
    past = past[-int(kw["window"]):]
    observed = None if m.observed is None else float(m.observed)
    result: dict[str, Any] = {"observed_value": plain(observed), "history": past}
    if len(past) < int(kw["min_history"]):
        note = f"too little history: {len(past)} of {kw['min_history']} past successful runs needed"
        return _result(e, True, result, fmt, note)
    mean = statistics.fmean(past)
    sd = statistics.stdev(past)
    lo, hi = mean - float(kw["sigma"]) * sd, mean + float(kw["sigma"]) * sd
    result.update(mean=mean, stdev=sd, min_value=lo, max_value=hi)
    success = observed is not None and lo <= observed <= hi
    note = f"expected {lo:.6g} .. {hi:.6g} from {len(past)} past runs"
    return _result(e, success, result, fmt, note)


def _result(e: Expectation, success: bool, result: dict[str, Any], fmt: ResultFormat,
            note: str) -> ExpectationResult:
    if fmt is ResultFormat.BOOLEAN_ONLY:
        result = {}
    return ExpectationResult(e.name, e.expectation_type, e.kwargs, success, result, note=note)
