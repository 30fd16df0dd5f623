"""A suite: named checks, a failure policy, and the three things you do with it."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from headrace.errors import QualityError
from headrace.quality.backends import Source, open_source
from headrace.quality.evaluate import (
    Measure,
    error_result,
    finish,
    schema_problem,
    table_observation,
)
from headrace.quality.expectation import Expectation
from headrace.quality.history import judge_history
from headrace.quality.results import ExpectationResult, ResultFormat, SuiteResult

log = logging.getLogger("headrace.quality")

Policy = Literal["halt", "warn", "quarantine"]
POLICIES = ("halt", "warn", "quarantine")


class Suite:
    """``Suite("sales", [expect.column_values_to_not_be_null("id"), ...], on_failure="halt")``."""

    def __init__(self, name: str, expectations: Iterable[Expectation] = (), *,
                 on_failure: Policy = "halt") -> None:
        if not isinstance(name, str) or not name.strip():
            raise QualityError(f"a suite needs a non-empty name, not {name!r}")
        if on_failure not in POLICIES:
            raise QualityError(f"suite {name!r}: on_failure must be one of {', '.join(POLICIES)}, "
                               f"not {on_failure!r}")
        self.name = name
        self.on_failure: Policy = on_failure
        self.expectations: list[Expectation] = []
        self.last_outcome: Any = None  # the GateOutcome of the latest gate() call
        for e in expectations:
            self.add(e)

    def add(self, expectation: Expectation) -> Suite:
        """Append a check; a repeated display name gets a ``#2`` suffix so results stay addressable."""
        if not isinstance(expectation, Expectation):
            raise QualityError(f"suite {self.name!r}: expected an expect.* check, "
                               f"not {type(expectation).__name__}")
        taken = {e.name for e in self.expectations}
        name, n = expectation.name, 1
        while name in taken:
            n += 1
            name = f"{expectation.name}#{n}"
        self.expectations.append(expectation if name == expectation.name else expectation.with_name(name))
        return self

    def __len__(self) -> int:
        return len(self.expectations)

    def __repr__(self) -> str:
        return f"<Suite {self.name!r}: {len(self)} checks, on_failure={self.on_failure!r}>"

    @property
    def row_checks(self) -> list[Expectation]:
        return [e for e in self.expectations if e.row_level]

    # -- running -----------------------------------------------------------------------------
    def validate(self, data: Any, result_format: str | ResultFormat = ResultFormat.BASIC, *,
                 history: list[dict[str, Any]] | None = None) -> SuiteResult:
        """Run every check on ``data``; ``history`` is past profiles for the history checks."""
        return run_checks(self.name, self.expectations, open_source(data),
                          ResultFormat.parse(result_format), history)

    def split(self, data: Any) -> tuple[Any, Any]:
        """``(good, bad)`` rows under the row-level checks, as frames of the input's kind.

        ``bad`` has a ``_failed_checks`` column naming the checks each row failed,
        joined by ``"; "``. Aggregate and table checks do not take part.
        """
        source = open_source(data)
        return source.split(runnable_row_checks(self.expectations, source))

    def gate(self, data: Any, *, quarantine_to: Any = None) -> Any:
        """Apply the suite's policy inside a flow (recorded as a task run); returns the rows to load."""
        from headrace.quality.gate import run_gate

        return run_gate(self, data, quarantine_to=quarantine_to)

    # -- saving ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"suite": self.name, "on_failure": self.on_failure,
                "expectations": [e.to_config() for e in self.expectations]}

    def to_yaml(self, path: str | Path | None = None) -> str:
        from headrace.quality.yamlio import dump_suite

        return dump_suite(self, path)

    save = to_yaml

    @classmethod
    def from_yaml(cls, source: str | Path) -> Suite:
        """Load a suite from a YAML file path or YAML text; errors name the line."""
        from headrace.quality.yamlio import load_suite

        return load_suite(source)

    load = from_yaml


def runnable_row_checks(checks: list[Expectation], source: Source) -> list[Expectation]:
    schema = source.schema()
    return [e for e in checks if e.row_level and schema_problem(e, schema) is None]


def run_checks(suite: str, checks: list[Expectation], source: Source, fmt: ResultFormat,
               history: list[dict[str, Any]] | None = None) -> SuiteResult:
    """Schema checks first (no data read), then one measuring pass for the rest."""
    started = time.perf_counter()
    schema = source.schema()
    done: dict[str, ExpectationResult] = {}
    todo: list[Expectation] = []
    for e in checks:
        problem = schema_problem(e, schema)
        if problem is not None:
            done[e.name] = error_result(e, problem)
        elif e.kind == "table" and e.spec.op != "row_count":
            done[e.name] = finish(e, Measure(observed=table_observation(e, schema)), fmt)
        else:
            todo.append(e)
    measures = source.measure(todo, fmt) if todo else {}
    for e in todo:
        m = measures[e.name]
        done[e.name] = judge_history(e, m, history, fmt) if e.kind == "history" else finish(e, m, fmt)
    results = [done[e.name] for e in checks]
    ok = sum(r.success for r in results)
    stats = {"evaluated_expectations": len(results), "successful_expectations": ok,
             "unsuccessful_expectations": len(results) - ok,
             "success_percent": 100.0 * ok / len(results) if results else 100.0,
             "backend": source.kind, "seconds": round(time.perf_counter() - started, 6)}
    log.debug("suite %s on %s: %s/%s passed", suite, source.kind, ok, len(results))
    return SuiteResult(suite, results, stats)
