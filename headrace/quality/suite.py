"""A suite: named checks, a failure policy, and the three things you do with it."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from headrace.errors import QualityError
from headrace.quality.backends import open_source
from headrace.quality.expectation import Expectation
from headrace.quality.gate import run_gate
from headrace.quality.results import ResultFormat, SuiteResult
from headrace.quality.run import run_checks, runnable_row_checks
from headrace.quality.yamlio import dump_suite, load_suite

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
                 history: list[dict[str, Any]] | None = None, parameters: dict[str, Any] | None = None,
                 now: dt.datetime | None = None) -> SuiteResult:
        """Run every check on ``data``.

        ``history`` is past profiles for the history checks; ``parameters`` are the values
        of ``{"$PARAMETER": ...}`` arguments; ``now`` is the clock their ``now()`` reads.
        """
        return run_checks(self.name, self.expectations, open_source(data),
                          ResultFormat.parse(result_format), history, parameters, now)

    def split(self, data: Any, *, parameters: dict[str, Any] | None = None,
              now: dt.datetime | None = None) -> tuple[Any, Any]:
        """``(good, bad)`` rows under the row-level checks, as frames of the input's kind.

        ``bad`` has a ``_failed_checks`` column naming the checks each row failed,
        joined by ``"; "``. Aggregate and table checks do not take part; a row outside
        a check's ``row_condition`` is never blamed on it.
        """
        source = open_source(data)
        return source.split(runnable_row_checks(self.expectations, source, parameters, now))

    def gate(self, data: Any, *, quarantine_to: Any = None) -> Any:
        """Apply the suite's policy inside a flow (recorded as a task run); returns the rows to load."""
        return run_gate(self, data, quarantine_to=quarantine_to)

    # -- saving ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"suite": self.name, "on_failure": self.on_failure,
                "expectations": [e.to_config() for e in self.expectations]}

    def to_yaml(self, path: str | Path | None = None) -> str:
        return dump_suite(self.to_dict(), path)

    save = to_yaml

    @classmethod
    def from_yaml(cls, source: str | Path) -> Suite:
        """Load a suite from a YAML file path or YAML text; errors name the line."""
        name, checks, on_failure, where = load_suite(source)
        try:
            return cls(name, checks, on_failure=on_failure)
        except QualityError as exc:
            raise QualityError(f"{where}: {exc}") from None

    load = from_yaml
