"""Great Expectations' own test cases, on every backend headrace checks data on.

The 43 definition files in ``../shared/specs/great_expectations/`` (beside the checkout)
say, case by case, what each expectation answers. Every case GX runs on a backend runs
on the headrace backends that answer to that GX name (``gx_cases.GX_NAMES``) and must give
GX's outcome, except the documented differences (``gx_known.py``). The backends must also
agree with each other on every case they all run: a divergence is a bug.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gx_cases
import pytest
from gx_backends import loaded
from gx_cases import BACKENDS, Case
from gx_check import Outcome, build, mismatch, run
from gx_known import KNOWN, known

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TYPE_CHECKS = ("expect_column_values_to_be_of_type", "expect_column_values_to_be_in_type_list")
REPORT: dict[str, Any] = {}        # read by conftest.py's terminal summary


def _skip_without_specs() -> None:
    if not gx_cases.available():
        REPORT["missing"] = str(gx_cases.SPEC_DIR)
        pytest.skip(f"Great Expectations' test definitions not found at {gx_cases.SPEC_DIR}: "
                    "the GX conformance cases did not run")


def _reads(case: Case) -> set[str]:
    e, _, _ = build(case)
    if e is None:
        return set()
    return set(e.columns) | set(e.condition.columns if e.condition is not None else [])


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Outcome]]:
    """Every case on every backend it runs on: {backend: {case key: outcome}}."""
    _skip_without_specs()
    import os

    cases = gx_cases.load_cases()
    url = os.environ.get("HEADRACE_TEST_PG", PG_URL)
    results: dict[str, dict[str, Outcome]] = {b: {} for b in BACKENDS}
    not_held: dict[str, int] = dict.fromkeys(BACKENDS, 0)
    with loaded(cases, Path(tmp_path_factory.mktemp("gx")), url) as data:
        for case in cases:
            ds = (case.expectation_type, case.dataset)
            for backend in BACKENDS:
                if not case.runs_on(backend):
                    continue
                if backend in ("polars", "arrow") and _reads(case) & data.lossy[ds]:
                    not_held[backend] += 1     # a column of mixed types: only pandas holds it
                    continue
                results[backend][case.key] = run(case, data.data[backend][ds])
    REPORT.update(cases=cases, results=results, not_held=not_held)
    return results


def _expected(case: Case, backend: str) -> dict[str, Any] | None:
    k = known(case.key, backend)
    out = dict(case.test["out"]) if k is None else dict(k.out)
    if backend != "pandas" and case.expectation_type in TYPE_CHECKS:
        # The observed type is named as the column's own engine names it (GX: NumPy's names
        # on pandas, SQL names on databases); what must agree is success and the values.
        out.pop("observed_value", None)
        out.pop("observed_value_list", None)
    return out if k is not None or out != case.test["out"] else None


def failures(backend: str, results: dict[str, dict[str, Outcome]]) -> list[str]:
    by_key = {c.key: c for c in REPORT["cases"]}
    problems = []
    for key, outcome in results[backend].items():
        case = by_key[key]
        problem = mismatch(case, outcome, _expected(case, backend))
        if problem is not None:
            problems.append(f"{key}: {problem}")
    REPORT.setdefault("passed", {})[backend] = len(results[backend]) - len(problems)
    return problems


@pytest.mark.parametrize("backend", BACKENDS)
def test_gx_cases_hold(outcomes: dict[str, dict[str, Outcome]], backend: str) -> None:
    assert outcomes[backend], f"no GX case ran on {backend}"
    problems = failures(backend, outcomes)
    assert not problems, f"{len(problems)} GX cases fail on {backend}:\n" + "\n".join(problems)


def test_pandas_runs_every_case_gx_runs_on_pandas(outcomes: dict[str, dict[str, Outcome]]) -> None:
    """GX's own rule (test_expectations_v3_api.py) decides the pandas cases; none is left out."""
    gx_pandas = [c for c in REPORT["cases"] if c.runs_on("pandas")]
    assert len(gx_pandas) == len(outcomes["pandas"])
    readme = gx_cases.SPEC_DIR / "README.txt"
    if readme.exists() and "ce78204d6d659caf676ccdcaec0a3184bb95445f" in readme.read_text():
        assert len(gx_pandas) == 366      # GX 1.2.0's files: the count GX's own rule gives
    defects = {k for k, v in KNOWN.items() if "pandas" in v.backends and v.gx_defect}
    assert all(k in outcomes["pandas"] for k in defects)


def _agree_view(case: Case, outcome: Outcome) -> str:
    view = outcome.summary()
    if case.expectation_type in TYPE_CHECKS:
        view.pop("observed_value", None)      # each engine's own type name (see _expected)
    tolerance = case.test.get("tolerance")
    return json.dumps(_same_number(view, 6 if tolerance else 9), sort_keys=True, default=str)


def _same_number(value: Any, digits: int) -> Any:
    """Numbers as every engine can agree on: 2.0 is 2 (a float column in pandas is an integer
    one in SQL), and floats to ``digits`` significant digits."""
    if isinstance(value, float):
        value = float(f"{value:.{digits}g}")
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {k: _same_number(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [_same_number(v, digits) for v in value]
    return value


def test_backends_agree(outcomes: dict[str, dict[str, Outcome]]) -> None:
    """Every backend that runs a case gives the same outcome: the same success, counts,
    unexpected values and row positions, observed value and details."""
    by_key = {c.key: c for c in REPORT["cases"]}
    diverging, compared = [], 0
    for key in set().union(*outcomes.values()):
        views = {b: _agree_view(by_key[key], outcomes[b][key]) for b in BACKENDS
                 if key in outcomes[b] and not known(key, b)}
        compared += len(views) > 1
        if len(set(views.values())) > 1:
            diverging.append(f"{key}: " + "; ".join(f"{b}={v}" for b, v in views.items()))
    assert compared > 350
    assert not diverging, "backends disagree:\n" + "\n".join(diverging)
