"""Row conditions: which rows a check looks at, the same on every backend.

A condition is parsed once (``parse.py``), then *resolved* against the table's column
types, which settles each comparison before any row is read: a number compared with
text never matches (``==`` is false, ``!=`` true, ``<`` an error, as in pandas), date
text compared with a date column becomes a date. The resolved tree is then evaluated
on Arrow columns, on pandas Series, or written as a SQL ``WHERE`` clause.

Nulls: with the pandas parser a null is unequal to everything (``x != 1`` keeps null
rows, as ``DataFrame.query`` does); with the great_expectations parser a null matches
no comparison at all, as in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from headrace.quality.parse import BoolOp, Cmp, Col, InList, IsNull, Lit, Not, parse_condition
from headrace.quality.types import as_time, kind_of_type

_SWAP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


@dataclass(frozen=True)
class Const:
    value: bool


@dataclass(frozen=True)
class Compare:
    """``column op value`` (value a Python scalar) or ``column op other`` (a Col)."""

    op: str
    column: str
    other: Any
    when_null: bool                  # the outcome for a row whose operand is null


@dataclass(frozen=True)
class Member:
    column: str
    values: tuple[Any, ...]
    with_null: bool                  # None is among the values: null rows are members
    negate: bool
    when_null: bool


class ConditionError(ValueError):
    """A condition that cannot be applied to this table (reported as the check's failure)."""


@dataclass(frozen=True)
class RowCondition:
    text: str
    parser: str                      # "pandas" | "great_expectations"
    node: Any

    @classmethod
    def parse(cls, text: str, parser: str) -> RowCondition:
        return cls(text, parser, parse_condition(text, parser))

    @property
    def columns(self) -> list[str]:
        return columns_of(self.node)

    def resolve(self, schema: dict[str, str]) -> Any:
        """The tree with every comparison settled for these column types; ConditionError if it cannot be."""
        missing = [c for c in self.columns if c not in schema]
        if missing:
            raise ConditionError(f"row_condition {self.text!r} names column "
                                 f"{', '.join(map(repr, missing))}, which the data does not have")
        return _Resolver(schema, self.parser == "pandas", self.text).node(self.node)


class _Resolver:
    def __init__(self, schema: dict[str, str], pandas: bool, text: str) -> None:
        self.schema, self.pandas, self.text = schema, pandas, text

    def fail(self, message: str) -> ConditionError:
        return ConditionError(f"row_condition {self.text!r}: {message}")

    def node(self, n: Any) -> Any:
        if isinstance(n, BoolOp):
            return BoolOp(n.op, tuple(self.node(p) for p in n.parts))
        if isinstance(n, Not):
            return Not(self.node(n.part))
        if isinstance(n, Lit):
            return Const(bool(n.value))
        if isinstance(n, IsNull):
            return IsNull(n.col, n.negate)
        if isinstance(n, Col):
            if self.schema[n.name] != "bool":
                raise self.fail(f"column {n.name!r} is not true/false; compare it with a value")
            return Compare("==", n.name, True, False)
        if isinstance(n, InList):
            return self.member(n)
        assert isinstance(n, Cmp)
        return self.compare(n)

    def when_null(self, op: str) -> bool:
        return self.pandas and op == "!="

    def compare(self, n: Cmp) -> Any:
        left, right, op = n.left, n.right, n.op
        if isinstance(left, Lit):
            left, right, op = right, left, _SWAP[op]
        col_type = self.schema[left.name]
        if isinstance(right, Col):
            other_type = self.schema[right.name]
            loose = {"null", "object"} & {col_type, other_type}
            if _kind(col_type) != _kind(other_type) and not loose:
                return self.mismatch(op, f"column {left.name!r} ({col_type}) with column "
                                         f"{right.name!r} ({other_type})")
            return Compare(op, left.name, right, self.when_null(op))
        if right.value is None:
            raise self.fail(f"compare with None is never true; use {left.name}.isnull() or .notnull()")
        value = self.coerce(col_type, right.value)
        if value is _NO_MATCH:
            return self.mismatch(op, f"column {left.name!r} ({col_type}) with {right.value!r}")
        if col_type == "null":
            return Const(self.when_null(op))
        return Compare(op, left.name, value, self.when_null(op))

    def mismatch(self, op: str, what: str) -> Any:
        if op == "==":
            return Const(False)
        if op == "!=":
            return Const(self.pandas)
        raise self.fail(f"cannot order {what}")

    def coerce(self, col_type: str, value: Any) -> Any:
        kind = _kind(col_type)
        if kind == "number" and isinstance(value, int | float):
            return value
        if kind == "string" and isinstance(value, str):
            return value
        if kind == "date":
            timed = as_time(col_type, value)
            return _NO_MATCH if timed is None else timed
        if col_type in ("null", "object"):   # object: pandas' mixed columns compare value by value
            return value
        return _NO_MATCH

    def member(self, n: InList) -> Any:
        col_type = self.schema[n.col.name]
        values = [self.coerce(col_type, v) for v in n.values if v is not None]
        values = [v for v in values if v is not _NO_MATCH]
        with_null = any(v is None for v in n.values)
        when_null = with_null != n.negate if self.pandas else (with_null and not n.negate)
        return Member(n.col.name, tuple(values), with_null, n.negate, when_null)


_NO_MATCH = object()


def _kind(col_type: str) -> str:
    return "number" if col_type == "bool" else kind_of_type(col_type)


def columns_of(node: Any) -> list[str]:
    """The columns a condition reads, in order of first use."""
    seen: dict[str, None] = {}

    def walk(n: Any) -> None:
        if isinstance(n, Col):
            seen.setdefault(n.name)
        elif isinstance(n, Cmp):
            walk(n.left)
            walk(n.right)
        elif isinstance(n, IsNull | InList):
            walk(n.col)
        elif isinstance(n, BoolOp):
            for part in n.parts:
                walk(part)
        elif isinstance(n, Not):
            walk(n.part)
    walk(node)
    return list(seen)
