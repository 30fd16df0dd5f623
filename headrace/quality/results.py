"""What a check and a suite report: plain value objects, JSON-ready."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

PARTIAL_LIMIT = 20  # GE's partial_unexpected_list length


class ResultFormat(str, Enum):
    """How much detail a result carries (the Great Expectations levels)."""

    BOOLEAN_ONLY = "BOOLEAN_ONLY"
    BASIC = "BASIC"
    SUMMARY = "SUMMARY"
    COMPLETE = "COMPLETE"

    @classmethod
    def parse(cls, value: str | ResultFormat | dict[str, Any]) -> ResultFormat:
        """A level from its name (any case) or GX's ``{"result_format": "COMPLETE"}``."""
        if isinstance(value, dict):
            value = value.get("result_format", "BASIC")
        try:
            return cls(str(value.value if isinstance(value, ResultFormat) else value).upper())
        except ValueError:
            names = ", ".join(m.value for m in cls)
            raise ValueError(f"result_format must be one of {names}, not {value!r}") from None


@dataclass
class ExpectationResult:
    """The outcome of one check: ``success`` plus GE-style counts in ``result``."""

    name: str
    expectation_type: str
    kwargs: dict[str, Any]
    success: bool
    result: dict[str, Any] = field(default_factory=dict)
    # Why a check could not run (missing column, wrong type) or a note (too little history).
    exception_info: str | None = None
    note: str | None = None
    row_level: bool = False

    def __bool__(self) -> bool:
        return self.success

    def __getattr__(self, key: str) -> Any:
        # result.unexpected_count reads like the GE dict access result["unexpected_count"].
        result = self.__dict__.get("result", {})
        if key in result:
            return result[key]
        raise AttributeError(key)

    @property
    def observed_value(self) -> Any:
        return self.result.get("observed_value")

    def __getitem__(self, key: str) -> Any:
        """GX's dict access: ``r["success"]``, ``r["result"]["unexpected_list"]``."""
        if key in ("success", "result", "exception_info", "expectation_type", "kwargs", "name"):
            return getattr(self, key)
        raise KeyError(f"{key!r}; a result has success, result, exception_info, expectation_type, kwargs")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "expectation_type": self.expectation_type,
                "kwargs": _plain(self.kwargs), "success": self.success,
                "result": _plain(self.result), "exception_info": self.exception_info,
                "note": self.note, "row_level": self.row_level}

    to_json_dict = to_dict

    def summary(self) -> str:
        mark = "PASS" if self.success else "FAIL"
        detail = self.exception_info or self.note or ""
        if "unexpected_count" in self.result:
            detail = f"{self.result['unexpected_count']} unexpected " + detail
        elif "observed_value" in self.result:
            detail = f"observed {self.result['observed_value']!r} " + detail
        return f"{mark} {self.name}: {detail.strip()}"


@dataclass
class SuiteResult:
    """All checks of one suite run on one dataset."""

    suite: str
    results: list[ExpectationResult]
    statistics: dict[str, Any] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return all(r.success for r in self.results)

    def __bool__(self) -> bool:
        return self.success

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, name: str | int) -> ExpectationResult:
        if isinstance(name, int):
            return self.results[name]
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(f"no check named {name!r}; checks: {', '.join(r.name for r in self.results)}")

    @property
    def failed(self) -> list[ExpectationResult]:
        return [r for r in self.results if not r.success]

    @property
    def passed_count(self) -> int:
        return sum(1 for r in self.results if r.success)

    def to_dict(self) -> dict[str, Any]:
        return {"suite": self.suite, "success": self.success, "statistics": _plain(self.statistics),
                "results": [r.to_dict() for r in self.results]}

    def summary(self) -> str:
        lines = [f"suite {self.suite}: {self.passed_count}/{len(self.results)} passed"]
        lines += ["  " + r.summary() for r in self.results]
        return "\n".join(lines)


def _plain(value: Any) -> Any:
    """JSON-safe copy: NumPy scalars to Python, NaN to None, dates to ISO text."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        try:
            value = value.item()
        except (ValueError, TypeError):
            return str(value)
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


plain = _plain
