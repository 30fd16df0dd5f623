"""Run one GX case on one backend and judge it the way GX's runner does.

GX's ``check_json_test_result`` compares ``success``, ``observed_value`` (floats with
np.allclose, rtol 1e-7 and atol 0.05 unless the case gives a ``tolerance``),
``unexpected_list`` and ``partial_unexpected_list`` (order-free), the ``pk_index`` of
``unexpected_index_list`` (here: row positions), ``details``, and for
``exact_match_out`` every key of ``result``. A case whose ``out`` has a
``traceback_substring`` (or whose test has ``error``) must fail with a reason: a
``QualityError`` when the expectation is built, or a result carrying ``exception_info``.
"""

from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from gx_cases import Case

from headrace.errors import QualityError
from headrace.quality import Expectation, make
from headrace.quality.results import ExpectationResult

RTOL, ATOL = 1e-7, 5e-2
RX_FLOAT = re.compile(r".*\d\.\d+.*")


@dataclass
class Outcome:
    """What headrace did with a case on one backend."""

    build_error: str | None = None
    result: ExpectationResult | None = None

    def summary(self) -> dict[str, Any]:
        """The backend-independent part, for comparing backends with each other."""
        if self.build_error is not None:
            return {"build_error": True}
        assert self.result is not None
        r = self.result
        out: dict[str, Any] = {"success": r.success, "error": r.exception_info is not None}
        for key in ("element_count", "missing_count", "unexpected_count", "unexpected_list",
                    "partial_unexpected_list", "unexpected_index_list", "observed_value", "details"):
            if key in r.result:
                out[key] = _rounded(r.result[key])
        return out


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else float(f"{value:.9g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def build(case: Case) -> tuple[Expectation | None, str | None, str]:
    """(expectation, build error, result format) for a case."""
    kwargs = copy.deepcopy(case.test["in"])
    fmt = str(kwargs.pop("result_format", "COMPLETE"))
    try:
        return make(case.expectation_type, **kwargs), None, fmt
    except QualityError as exc:
        return None, str(exc), fmt


def run(case: Case, data: Any) -> Outcome:
    from headrace.quality.backends import open_source
    from headrace.quality.results import ResultFormat
    from headrace.quality.run import run_checks

    e, error, fmt = build(case)
    if e is None:
        return Outcome(build_error=error)
    result = run_checks("gx", [e], open_source(data), ResultFormat.parse(fmt)).results[0]
    return Outcome(result=result)


def mismatch(case: Case, got: Outcome, expected: dict[str, Any] | None = None) -> str | None:
    """Why ``got`` is not what the case expects, or None when it is."""
    test = case.test
    out = test["out"] if expected is None else expected
    wants_error = "traceback_substring" in out or "error" in test and expected is None
    if got.build_error is not None:
        if not wants_error:
            return f"build error: {got.build_error}"
        named = [k for k in test["in"] if k not in ("catch_exceptions", "result_format") and k in got.build_error]
        return None if named else f"the error names no argument of the case: {got.build_error}"
    r = got.result
    assert r is not None
    if wants_error:
        if r.exception_info is None or r.success:
            return f"expected an error, got success={r.success} {json.dumps(r.to_dict()['result'])[:300]}"
        return None
    if r.exception_info is not None:
        return f"unexpected error: {r.exception_info}"
    for key, value in out.items():
        problem = _check_key(case, r, key, value)
        if problem:
            return problem
    return None


def _check_key(case: Case, r: ExpectationResult, key: str, value: Any) -> str | None:
    res = r.to_dict()["result"]
    if key == "success":
        return None if r.success == value else f"success {r.success} != {value}"
    if key == "observed_value":
        return _observed(case, res.get("observed_value", "<missing>"), value)
    if key == "observed_value_list":
        return None if res.get("observed_value") in value else f"observed {res.get('observed_value')!r} not in {value}"
    if key in ("unexpected_list", "partial_unexpected_list"):
        return _same_values(key, res.get(key, "<missing>"), value)
    if key == "unexpected_index_list":
        return _index_list(res, value)
    if key == "details":
        return None if res.get("details") == value else f"details {res.get('details')} != {value}"
    if key == "value_counts":
        counts = (res.get("details") or {}).get("value_counts") or []
        missing = [v for v in value if v not in counts]
        return f"value_counts lack {missing}" if missing else None
    if key == "result":
        return _exact(case, r, res, value)
    if key in ("unexpected_count", "traceback_substring"):
        return None
    return f"unknown key {key} in out"


def _observed(case: Case, got: Any, want: Any) -> str | None:
    tol = case.test.get("tolerance")
    try:
        if tol is not None:
            if isinstance(want, dict):
                ok = set(got) == set(want) and all(np.allclose(got[k], v, rtol=tol) for k, v in want.items())
            else:
                ok = bool(np.allclose(got, want, rtol=tol))
        elif isinstance(want, dict) and "values" in want:
            ok = bool(np.allclose(got["values"], want["values"], rtol=RTOL, atol=ATOL))
        elif RX_FLOAT.match(repr(want)):
            ok = bool(np.allclose(got, want, rtol=RTOL, atol=ATOL))
        else:
            ok = got == want
    except (TypeError, KeyError, ValueError):
        ok = False
    return None if ok else f"observed_value {got!r} != {want!r}"


def _key(value: Any) -> str:
    def norm(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [norm(x) for x in v]
        return v
    return json.dumps(norm(value), sort_keys=True, default=str)


def _same_values(key: str, got: Any, want: list[Any]) -> str | None:
    if not isinstance(got, list):
        return f"{key} missing"
    if sorted(map(_key, got)) != sorted(map(_key, want)):
        return f"{key} {got} != {want}"
    return None


def _index_list(res: dict[str, Any], want: list[Any]) -> str | None:
    got = res.get("unexpected_index_list")
    if not isinstance(got, list):
        return "unexpected_index_list missing"
    positions = sorted(d["pk_index"] for d in want)
    return None if sorted(got) == positions else f"unexpected_index_list {got} != {positions}"


def _exact(case: Case, r: ExpectationResult, res: dict[str, Any], want: dict[str, Any]) -> str | None:
    for k, v in want.items():
        if k not in res:
            return f"result lacks {k}"
        if k in ("unexpected_list", "partial_unexpected_list"):
            problem = _same_values(k, res[k], v)
        elif k == "unexpected_index_list" and v and isinstance(v[0], dict):
            problem = _index_list(res, v)
        elif k == "observed_value":
            problem = _observed(case, res[k], v)
        elif isinstance(v, float):
            problem = None if math.isclose(res[k], v, rel_tol=1e-9) else f"result.{k} {res[k]} != {v}"
        else:
            problem = None if _key(res[k]) == _key(v) else f"result.{k} {res[k]!r} != {v!r}"
        if problem:
            return problem
    return None
