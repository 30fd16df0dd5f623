"""The interactive style: ``PandasDataset(df).expect_column_values_to_not_be_null("id")``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from headrace.quality.backends import open_source
from headrace.quality.expectation import REGISTRY, canonical_type, make
from headrace.quality.results import ExpectationResult, ResultFormat
from headrace.quality.run import run_checks
from headrace.quality.suite import Policy, Suite


class Dataset:
    """Wraps a frame (or any data a suite runs on); each ``expect_*`` call runs one check now.

    The checks run so far are kept, so ``get_expectation_suite()`` turns an
    exploration session into a reusable :class:`Suite`. ``parameters`` are the values
    of ``{"$PARAMETER": ...}`` arguments.
    """

    def __init__(self, data: Any, *, suite_name: str = "interactive",
                 parameters: dict[str, Any] | None = None, now: dt.datetime | None = None) -> None:
        self.data = data
        self.parameters = dict(parameters or {})
        self.now = now
        self._source = open_source(data)
        self._suite = Suite(suite_name)

    def __getattr__(self, attr: str) -> Callable[..., ExpectationResult]:
        if not attr.startswith("expect_") or canonical_type(attr) not in REGISTRY:
            raise AttributeError(f"{type(self).__name__} has no attribute {attr!r}")

        def run(*args: Any, **kwargs: Any) -> ExpectationResult:
            e = make(attr, *args, **kwargs)
            self._suite.add(e)
            e = self._suite.expectations[-1]
            return run_checks(self._suite.name, [e], self._source, ResultFormat.BASIC,
                              parameters=self.parameters, now=self.now).results[0]
        return run

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(REGISTRY))

    def get_expectation_suite(self, on_failure: Policy = "halt") -> Suite:
        return Suite(self._suite.name, self._suite.expectations, on_failure=on_failure)

    def validate(self, result_format: str = "BASIC") -> Any:
        return self._suite.validate(self.data, result_format, parameters=self.parameters, now=self.now)


class PandasDataset(Dataset):
    """GE's name for a pandas frame with ``expect_*`` methods; also takes Polars and Arrow."""


__all__ = ["Dataset", "PandasDataset"]
