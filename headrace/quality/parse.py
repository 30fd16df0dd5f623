"""A small parser for the expressions users write as text: row conditions and parameters.

Nothing is ever evaluated as Python. The text is split into tokens and parsed by
hand into the nodes below; anything outside the documented grammar is a
:class:`ValueError` that says where and what was expected.

Row conditions, ``condition_parser="pandas"`` (the ``DataFrame.query`` subset)::

    cond    := or
    or      := and  (("|" | "or")  and)*
    and     := not  (("&" | "and") not)*
    not     := ("~" | "not") not | compare
    compare := operand (("==" | "!=" | "<" | "<=" | ">" | ">=") operand)*
             | operand ["not"] "in" list
    operand := column ["." ("isnull" | "notnull" | "isna" | "notna") "()"]
             | number | string | True | False | list | "(" cond ")"
    column  := name | `any text in backticks`

``condition_parser="great_expectations"``: the same, but a column is written
``col("name")`` and ``date("2024-01-01")`` is a date; ``AND``, ``OR`` and ``NOT``
may be written in any case.

The arithmetic of ``$PARAMETER`` expressions is parsed in ``params.py`` with the same tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# -- nodes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Col:
    name: str


@dataclass(frozen=True)
class Lit:
    value: Any                      # int, float, str, bool, None, datetime.date, or a tuple of those


@dataclass(frozen=True)
class Cmp:
    op: str                         # == != < <= > >=
    left: Any
    right: Any


@dataclass(frozen=True)
class IsNull:
    col: Col
    negate: bool


@dataclass(frozen=True)
class InList:
    col: Col
    values: tuple[Any, ...]
    negate: bool


@dataclass(frozen=True)
class BoolOp:
    op: str                         # and | or
    parts: tuple[Any, ...]


@dataclass(frozen=True)
class Not:
    part: Any


@dataclass(frozen=True)
class Name:
    name: str


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Arith:
    op: str                         # + - * /
    left: Any
    right: Any


# -- tokens -----------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<backtick>`[^`]*`)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|<|>|&|\||~|\(|\)|\[|\]|,|\.|=|\+|-|\*|/)
""", re.VERBOSE)
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"'}
CMP_OPS = ("==", "!=", "<", "<=", ">", ">=")


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int


def tokenize(text: str) -> list[Token]:
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ValueError(f"unexpected character {text[pos]!r} at position {pos}")
        if m.lastgroup != "ws":
            tokens.append(Token(str(m.lastgroup), m.group(), pos))
        pos = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


def unquote(text: str) -> str:
    body, out, i = text[1:-1], [], 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            out.append(_ESCAPES.get(body[i + 1], "\\" + body[i + 1]))
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


def number(text: str) -> int | float:
    return float(text) if any(c in text for c in ".eE") else int(text)


# -- the parser -------------------------------------------------------------------------------

class Parser:
    def __init__(self, text: str, flavour: str) -> None:
        self.text, self.flavour = text, flavour
        self.tokens = tokenize(text)
        self.i = 0

    # token helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def word(self, *words: str) -> bool:
        t = self.tok
        if t.kind == "name" and (t.text in words or (self.flavour == "great_expectations"
                                                      and t.text.lower() in words)):
            self.i += 1
            return True
        return False

    def op(self, *ops: str) -> str | None:
        if self.tok.kind == "op" and self.tok.text in ops:
            return self.take().text
        return None

    def expect(self, text: str) -> None:
        if self.op(text) is None:
            self.fail(f"expected {text!r}")

    def fail(self, what: str) -> None:
        t = self.tok
        found = "the end" if t.kind == "end" else repr(t.text)
        raise ValueError(f"{what} at position {t.pos}, found {found}")

    def done(self, node: Any) -> Any:
        if self.tok.kind != "end":
            self.fail("expected the end of the expression")
        return node

    # conditions
    def cond(self) -> Any:
        parts = [self.conj()]
        while self.op("|") or self.word("or"):
            parts.append(self.conj())
        return parts[0] if len(parts) == 1 else BoolOp("or", tuple(parts))

    def conj(self) -> Any:
        parts = [self.negation()]
        while self.op("&") or self.word("and"):
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else BoolOp("and", tuple(parts))

    def negation(self) -> Any:
        if self.op("~") or self.word("not"):
            return Not(self.negation())
        return self.compare()

    def compare(self) -> Any:
        left = self.operand()
        if self.tok.kind == "op" and self.tok.text in "+-*/":
            raise ValueError(f"arithmetic ({self.tok.text!r} at position {self.tok.pos}) is not part of "
                             "a row condition; compare a column with a value or another column")
        negate = self.word("not")
        if self.word("in"):
            return self._in(left, self.operand(), negate)
        if negate:
            self.fail("expected 'in' after 'not'")
        pairs = []
        while (op := self.op(*CMP_OPS)) is not None:
            right = self.operand()
            pairs.append(self._compare(op, left, right))
            left = right
        if not pairs:
            return left if not isinstance(left, Lit) else self._bare_literal(left)
        return pairs[0] if len(pairs) == 1 else BoolOp("and", tuple(pairs))

    def _bare_literal(self, lit: Lit) -> Any:
        if isinstance(lit.value, bool):
            return lit
        raise ValueError(f"{lit.value!r} is a value, not a condition; compare a column with it")

    def _compare(self, op: str, left: Any, right: Any) -> Any:
        if isinstance(right, Lit) and isinstance(right.value, tuple) and op in ("==", "!="):
            return self._in(left, right, op == "!=")     # pandas: x == [1, 2] means isin
        for side in (left, right):
            if not isinstance(side, Col | Lit) or isinstance(side, Lit) and isinstance(side.value, tuple):
                raise ValueError(f"{op} compares a column with a value or another column")
        if isinstance(left, Lit) and isinstance(right, Lit):
            raise ValueError(f"{op} between two values; name a column")
        return Cmp(op, left, right)

    def _in(self, left: Any, right: Any, negate: bool) -> InList:
        if not isinstance(left, Col):
            raise ValueError("'in' needs a column on its left")
        if not isinstance(right, Lit) or not isinstance(right.value, tuple):
            raise ValueError("'in' needs a list of values on its right, like [1, 2]")
        return InList(left, right.value, negate)

    def operand(self) -> Any:
        if self.op("("):
            inner = self.cond()
            self.expect(")")
            return inner
        if self.op("["):
            return Lit(self._list())
        col = self._column()
        if col is not None:
            return self._method(col)
        return Lit(self._scalar())

    def _column(self) -> Col | None:
        t = self.tok
        if self.flavour == "pandas":
            if t.kind == "backtick":
                self.i += 1
                return Col(t.text[1:-1])
            if t.kind == "name" and t.text not in ("True", "False", "None", "and", "or", "not", "in"):
                self.i += 1
                return Col(t.text)
            return None
        if t.kind == "name" and t.text == "col":
            self.i += 1
            self.expect("(")
            name = self.take()
            if name.kind != "string":
                self.fail('expected the column name in quotes, like col("price")')
            self.expect(")")
            return Col(unquote(name.text))
        if t.kind == "name" and t.text.lower() not in ("date", "true", "false", "and", "or", "not"):
            self.fail('expected col("name"), a number, a string or date("...")')
        return None

    def _method(self, col: Col) -> Any:
        if not self.op("."):
            return col
        name = self.take()
        methods = {"isnull": False, "isna": False, "notnull": True, "notna": True}
        if name.kind != "name" or name.text.lower() not in methods:
            raise ValueError(f"unknown method {name.text!r} at position {name.pos}; "
                             "use .isnull() or .notnull()")
        self.expect("(")
        self.expect(")")
        return IsNull(col, negate=methods[name.text.lower()])

    def _list(self) -> tuple[Any, ...]:
        values: list[Any] = []
        while self.op("]") is None:
            if values:
                self.expect(",")
                if self.op("]") is not None:
                    break
            values.append(self._scalar())
        return tuple(values)

    def _scalar(self) -> Any:
        sign = -1 if self.op("-") else 1
        t = self.take()
        if t.kind == "number":
            return sign * number(t.text)
        if sign < 0:
            self.i -= 1
            self.fail("expected a number after '-'")
        if t.kind == "string":
            return unquote(t.text)
        if t.kind == "name" and t.text in ("True", "False") or (
                self.flavour == "great_expectations" and t.text.lower() in ("true", "false")):
            return t.text.lower() == "true"
        if t.kind == "name" and t.text == "None":
            return None
        if self.flavour == "great_expectations" and t.kind == "name" and t.text.lower() == "date":
            return _date_call(self)
        self.i -= 1
        self.fail("expected a column, a number, a string or a list")
        return None


def _date_call(p: Parser) -> Any:
    import datetime as dt

    p.expect("(")
    t = p.take()
    if t.kind != "string":
        p.i -= 1
        p.fail('expected a quoted date, like date("2024-01-31")')
    p.expect(")")
    text = unquote(t.text)
    try:
        return dt.date.fromisoformat(text) if len(text) <= 10 else dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"date({text!r}) is not an ISO date or date-time") from None


FLAVOURS = ("pandas", "great_expectations")


def parse_condition(text: str, flavour: str) -> Any:
    """The node tree of a row condition; ValueError says what is wrong and where."""
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown condition flavour {flavour!r}")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("a row condition must be a non-empty string")
    p = Parser(text, flavour)
    node = p.done(p.cond())
    if isinstance(node, Lit):
        raise ValueError("a row condition must name a column")
    return node
