"""Checks on the arguments of an expectation, run when it is built.

Each check raises ValueError with a message that starts with the argument's name, so
``make`` can report ``expect_x: min_value must be ...``. A value written as
``{"$PARAMETER": "..."}`` is only known when the suite runs: its expression is parsed
here, its value checked once resolved (see ``params.py``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any, Literal

from headrace.quality.parse import parse_condition

BoundKind = Literal["any", "number", "int"]
CONDITION_PARSERS = ("pandas", "great_expectations", "great_expectations__experimental__")
PAIR_IGNORE = ("both_values_are_missing", "either_value_is_missing", "neither")
MULTI_IGNORE = ("all_values_are_missing", "any_value_is_missing", "never")
# GX spells the same three rules two ways, by the number of columns; either works everywhere.
IGNORE_RULE = {"both_values_are_missing": "all", "all_values_are_missing": "all",
               "either_value_is_missing": "any", "any_value_is_missing": "any",
               "neither": "never", "never": "never"}
RESULT_FORMATS = ("BOOLEAN_ONLY", "BASIC", "SUMMARY", "COMPLETE")


def is_parameter(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"$PARAMETER"}


def need_mostly(mostly: Any) -> None:
    if isinstance(mostly, bool) or not isinstance(mostly, int | float) or not 0 <= mostly <= 1:
        raise ValueError(f"mostly must be a number between 0 and 1, not {mostly!r}")


def need_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, not {value!r}")


def need_column(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a column name (str), not {value!r}")


def need_columns(name: str, value: Any, least: int = 1, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, str) or not isinstance(value, Sequence | set | frozenset) \
            or len(value) < least or not all(isinstance(c, str) for c in value):
        raise ValueError(f"{name} must be a list of at least {least} column names, not {value!r}")


def need_set(name: str, value: Any, optional: bool = True) -> None:
    if value is None and optional:
        return
    if isinstance(value, str | bytes | dict) or not isinstance(value, Sequence | set | frozenset):
        raise ValueError(f"{name} must be a list of values, not {value!r}")


def need_count(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, not {value!r}")


def need_number(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, not {value!r}")


def bound_kind(value: Any) -> str:
    """bool, number, string, date or the type's name: what a bound is compared as."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dt.date):
        return "date"
    return type(value).__name__


def need_bounds(kw: dict[str, Any], kind: BoundKind, *, required: bool = False,
                ordered: bool = True) -> None:
    """min_value/max_value: of the right kind, not both None when required, min <= max."""
    lo, hi = kw.get("min_value"), kw.get("max_value")
    for key, value in (("min_value", lo), ("max_value", hi)):
        if value is None or is_parameter(value):
            continue
        got = bound_kind(value)
        if kind == "int" and got != "number" or kind == "int" and not float(value).is_integer():
            raise ValueError(f"{key} must be an integer or None (min_value and max_value must be "
                             f"integers), not {value!r}")
        if kind == "number" and got != "number":
            raise ValueError(f"{key} must be a number or None, not {value!r}")
        if kind == "any" and got not in ("number", "string", "date"):
            raise ValueError(f"{key} must be a number, a string, a date or None, not {value!r}")
    if required and lo is None and hi is None:
        raise ValueError("give min_value, max_value or both (min_value and max_value cannot both be None)")
    if lo is None or hi is None or is_parameter(lo) or is_parameter(hi):
        return
    if bound_kind(lo) != bound_kind(hi) and {bound_kind(lo), bound_kind(hi)} != {"string", "date"}:
        raise ValueError(f"min_value {lo!r} and max_value {hi!r} must be of the same type")
    if ordered and _comparable(lo) > _comparable(hi):
        raise ValueError(f"min_value {lo!r} is greater than max_value {hi!r} "
                         "(min_value cannot be greater than max_value)")


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]|$)")


def _comparable(value: Any) -> Any:
    """Bounds as comparable text: dates and ISO date text alike (a space or a T before the time)."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str) and _ISO_DATE.match(value):
        return value[:10] + "T" + value[11:] if len(value) > 10 else value
    return value


def need_regex(name: str, regex: Any) -> None:
    if not isinstance(regex, str):
        raise ValueError(f"{name} must be a string, not {regex!r}")
    try:
        re.compile(regex)
    except re.error as exc:
        raise ValueError(f"{name} {regex!r} does not compile: {exc}") from None
    # Arrow and DuckDB use RE2; refusing Python-only syntax keeps every backend's answer the same.
    if re.search(r"\(\?<?[=!]|\\[1-9]", regex):
        raise ValueError(f"{name} {regex!r} uses look-around or a back-reference, which the "
                         "SQL and Arrow engines (RE2) do not support")


def need_ignore(value: Any, allowed: tuple[str, ...]) -> None:
    if value not in IGNORE_RULE:
        raise ValueError(f"ignore_row_if must be one of {', '.join(allowed)}, not {value!r}")


def need_strftime(fmt: Any) -> None:
    """A format strptime can read back what strftime wrote with it."""
    if not isinstance(fmt, str) or "%" not in fmt:
        raise ValueError(f"strftime_format must be a string with % directives, not {fmt!r}")
    sample = dt.datetime(2001, 2, 3, 4, 5, 6, 7000)
    try:
        dt.datetime.strptime(sample.strftime(fmt), fmt)
    except ValueError as exc:
        raise ValueError(f"strftime_format {fmt!r} cannot be used to parse values: {exc}") from None


def need_condition(row_condition: Any, condition_parser: Any) -> None:
    if row_condition is None:
        if condition_parser is not None and condition_parser not in CONDITION_PARSERS:
            raise ValueError(f"condition_parser must be one of {', '.join(CONDITION_PARSERS)}, "
                             f"not {condition_parser!r}")
        return
    parser = parser_of(row_condition, condition_parser)
    try:
        parse_condition(row_condition, parser)
    except ValueError as exc:
        raise ValueError(f"row_condition {row_condition!r}: {exc}") from None


def parser_of(row_condition: Any, condition_parser: Any) -> str:
    """The parser a condition is read with: the given one, else guessed from ``col("...")``."""
    if condition_parser is None:
        return "great_expectations" if 'col("' in str(row_condition) or "col('" in str(row_condition) \
            else "pandas"
    if condition_parser not in CONDITION_PARSERS:
        raise ValueError(f"condition_parser must be one of {', '.join(CONDITION_PARSERS)}, "
                         f"not {condition_parser!r}")
    return "pandas" if condition_parser == "pandas" else "great_expectations"


def need_result_format(value: Any) -> None:
    name = value.get("result_format") if isinstance(value, dict) else value
    if str(getattr(name, "value", name)).upper() not in RESULT_FORMATS:
        raise ValueError(f"result_format must be one of {', '.join(RESULT_FORMATS)}, not {value!r}")
