"""The grammar of ``$PARAMETER`` expressions (see ``params.py``), on the tokens of ``parse.py``."""

from __future__ import annotations

from typing import Any

from headrace.quality.parse import Arith, Call, Lit, Name, Parser, number, unquote

CALLS = ("now", "today", "date", "datetime", "timedelta")


class _ParameterParser(Parser):
    """``expr := term (("+" | "-") term)*``, ``term := unary (("*" | "/") unary)*``,
    ``unary := "-" unary | "(" expr ")" | number | string | name | name "(" args ")"``."""

    def arith(self) -> Any:
        node = self.term()
        while (op := self.op("+", "-")) is not None:
            node = Arith(op, node, self.term())
        return node

    def term(self) -> Any:
        node = self.unary()
        while (op := self.op("*", "/")) is not None:
            node = Arith(op, node, self.unary())
        return node

    def unary(self) -> Any:
        if self.op("-"):
            return Arith("-", Lit(0), self.unary())
        if self.op("("):
            inner = self.arith()
            self.expect(")")
            return inner
        t = self.take()
        if t.kind == "number":
            return Lit(number(t.text))
        if t.kind == "string":
            return Lit(unquote(t.text))
        if t.kind == "name":
            return self._call(t.text) if self.op("(") else Name(t.text)
        self.i -= 1
        self.fail("expected a number, a parameter name or a call like now()")
        return None

    def _call(self, name: str) -> Call:
        if name not in CALLS:
            raise ValueError(f"{name}() is not available; use {', '.join(c + '()' for c in CALLS)}")
        args: list[Any] = []
        kwargs: list[tuple[str, Any]] = []
        while self.op(")") is None:
            if args or kwargs:
                self.expect(",")
            t = self.tok
            nxt = self.tokens[self.i + 1]
            if t.kind == "name" and nxt.kind == "op" and nxt.text == "=":
                self.i += 2
                kwargs.append((t.text, self.arith()))
            else:
                args.append(self.arith())
        return Call(name, tuple(args), tuple(kwargs))




def parse_parameter(text: str) -> Any:
    """The node tree of a ``$PARAMETER`` expression."""
    p = _ParameterParser(text, "parameter")
    return p.done(p.arith())
