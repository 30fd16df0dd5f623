"""``{"$PARAMETER": ...}`` arguments: values known only when a suite runs.

GX calls them suite (or evaluation) parameters. The text is a parameter name given to
``validate(parameters={...})`` or an expression over such names and the clock, like
``now() - timedelta(weeks=52)`` (grammar in ``parse.py``); it is parsed, never run as Python.
"""

from __future__ import annotations

import datetime as dt
import operator
from typing import Any

from headrace.errors import QualityError
from headrace.quality.arguments import is_parameter
from headrace.quality.expectation import Expectation, revalidate
from headrace.quality.param_parse import parse_parameter
from headrace.quality.parse import Arith, Call, Lit, Name

_ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
_DELTA_UNITS = ("weeks", "days", "hours", "minutes", "seconds", "milliseconds", "microseconds")


def resolve(e: Expectation, parameters: dict[str, Any] | None, now: dt.datetime | None = None) -> Expectation:
    """The check with every ``$PARAMETER`` replaced by its value (QualityError naming it if it cannot be)."""
    keys = [k for k, v in e.kwargs.items() if is_parameter(v)]
    if not keys:
        return e
    clock = now or dt.datetime.now()
    kw = dict(e.kwargs)
    for key in keys:
        expr = kw[key]["$PARAMETER"]
        try:
            kw[key] = _value(parse_parameter(expr), parameters or {}, clock)
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise QualityError(f"{e.expectation_type}: {key}: $PARAMETER {expr!r}: {exc}") from None
    resolved = e.with_kwargs(kw)
    revalidate(resolved)
    return resolved


def _value(node: Any, params: dict[str, Any], now: dt.datetime) -> Any:
    if isinstance(node, Lit):
        return node.value
    if isinstance(node, Name):
        if node.name not in params:
            given = ", ".join(sorted(params)) or "none"
            raise ValueError(f"parameter {node.name!r} was not given (given: {given}); "
                             "pass validate(..., parameters={...})")
        return params[node.name]
    if isinstance(node, Arith):
        return _ARITH[node.op](_value(node.left, params, now), _value(node.right, params, now))
    assert isinstance(node, Call)
    return _call(node, [_value(a, params, now) for a in node.args],
                 {k: _value(v, params, now) for k, v in node.kwargs}, now)


def _call(node: Call, args: list[Any], kwargs: dict[str, Any], now: dt.datetime) -> Any:
    name = node.name
    if name in ("now", "today") and not args and not kwargs:
        return now if name == "now" else now.date()
    if name == "timedelta" and not args and set(kwargs) <= set(_DELTA_UNITS):
        return dt.timedelta(**kwargs)
    if name in ("date", "datetime") and len(args) == 1 and isinstance(args[0], str) and not kwargs:
        value = dt.datetime.fromisoformat(args[0])
        return value.date() if name == "date" else value
    raise ValueError(f"{name}() is not available here; use now(), today(), date(text), "
                     f"datetime(text) or timedelta({'=, '.join(_DELTA_UNITS)}=)")
