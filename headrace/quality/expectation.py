"""An expectation is a named, validated set of arguments for one registered check type.

Each check type is declared once in ``expect.py``/``expect_table.py`` with a Python
signature; the ``@expectation`` decorator registers a :class:`Spec` that says what the
backends must compute (a row predicate, a column metric or table metadata) and how
the observed value is judged. Backends implement the predicates and metrics, never
whole expectations, so each new check costs a few lines.

Every check also takes GX's common keywords: ``result_format``, ``catch_exceptions``,
``include_config`` and, where rows are read, ``row_condition`` with ``condition_parser``.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from headrace.errors import QualityError
from headrace.quality import arguments as args

log = logging.getLogger("headrace.quality")

# map: one column, row by row; multi: several columns, row by row; agg: a metric of one
# column; type: a column's type; table: row count or schema; history: metric vs past runs.
Kind = Literal["map", "multi", "agg", "type", "table", "history"]
Judge = Callable[[dict[str, Any], Any], bool]
# (kwargs, what the backend measured) -> (observed_value, details or None)
Present = Callable[[dict[str, Any], Any], tuple[Any, dict[str, Any] | None]]
ROW_KINDS = ("map", "multi")
CONDITIONAL_KINDS = ("map", "multi", "agg")
# Keywords every check takes; the conditional ones only where a check reads rows.
OPTIONS = ("result_format", "catch_exceptions", "include_config")
CONDITION = ("row_condition", "condition_parser")


@dataclass(frozen=True)
class Spec:
    """What a check type needs from a backend and how its observation is judged."""

    type: str
    kind: Kind
    signature: inspect.Signature
    op: str                         # row op (map/multi) or metric name (agg/table/history)
    judge: Judge | None = None
    needs: str | None = None        # "numeric" | "string" | "mean": column type required
    doc: str = ""
    present: Present | None = None

    @property
    def conditional(self) -> bool:
        return self.kind in CONDITIONAL_KINDS or self.op == "row_count" and self.kind == "table"


REGISTRY: dict[str, Spec] = {}


@dataclass(frozen=True, eq=False)
class Expectation:
    """One check in a suite: its GE type, its arguments and a unique display name."""

    expectation_type: str
    kwargs: dict[str, Any]
    name: str
    meta: dict[str, Any] = field(default_factory=dict)
    probe: str | None = None        # a row op measured instead of the check's own (see run.py)

    @property
    def spec(self) -> Spec:
        return REGISTRY[self.expectation_type]

    @property
    def op(self) -> str:
        """The row op or metric a backend computes for this check."""
        return self.probe or self.spec.op

    @property
    def kind(self) -> Kind:
        return self.spec.kind

    @property
    def row_level(self) -> bool:
        return self.spec.kind in ROW_KINDS

    @property
    def columns(self) -> list[str]:
        """Columns this check reads, in argument order."""
        kw = self.kwargs
        cols = [kw[k] for k in ("column", "column_A", "column_B") if kw.get(k) is not None]
        return cols + list(kw.get("column_list") or [])

    @functools.cached_property
    def condition(self) -> Any:
        """The parsed ``row_condition`` (a :class:`~headrace.quality.conditions.RowCondition`) or None."""
        text = self.kwargs.get("row_condition")
        if text is None:
            return None
        from headrace.quality.conditions import RowCondition

        return RowCondition.parse(text, args.parser_of(text, self.kwargs.get("condition_parser")))

    def with_name(self, name: str) -> Expectation:
        return Expectation(self.expectation_type, self.kwargs, name, self.meta)

    def with_kwargs(self, kwargs: dict[str, Any]) -> Expectation:
        return Expectation(self.expectation_type, kwargs, self.name, self.meta, self.probe)

    def probing(self, op: str) -> Expectation:
        return Expectation(self.expectation_type, self.kwargs, self.name, self.meta, op)

    def to_config(self) -> dict[str, Any]:
        """The YAML/JSON form: GE's ``expectation_type`` + ``kwargs``."""
        defaults = {k: p.default for k, p in self.spec.signature.parameters.items()}
        kw = {k: _listed(v) for k, v in self.kwargs.items() if defaults.get(k, object()) != v}
        out: dict[str, Any] = {"expectation_type": self.expectation_type, "kwargs": kw}
        if self.name != default_name(self.expectation_type, self.kwargs):
            out["name"] = self.name
        if self.meta:
            out["meta"] = self.meta
        return out

    def __repr__(self) -> str:
        return f"<Expectation {self.name}>"


def _listed(value: Any) -> Any:
    """Tuples and sets as lists, so YAML and JSON can hold them."""
    if isinstance(value, tuple | set | frozenset):
        return [_listed(v) for v in (sorted(value, key=str) if isinstance(value, set | frozenset) else value)]
    if isinstance(value, list):
        return [_listed(v) for v in value]
    if isinstance(value, dict):
        return {k: _listed(v) for k, v in value.items()}
    return value


def default_name(type_: str, kwargs: dict[str, Any]) -> str:
    """``column_values_to_be_between(revenue)``: the type without ``expect_`` and its columns."""
    cols = [kwargs[k] for k in ("column", "column_A", "column_B") if kwargs.get(k) is not None]
    cols += list(kwargs.get("column_list") or [])
    base = type_.removeprefix("expect_")
    name = f"{base}({', '.join(map(str, cols))})" if cols else base
    return name + (f" if {kwargs['row_condition']}" if kwargs.get("row_condition") else "")


def canonical_type(type_: str) -> str:
    """Accept GE names with or without ``expect_`` and the GE ``A``/``B`` capitals."""
    t = type_.strip()
    if not t.startswith("expect_"):
        t = "expect_" + t
    return t.replace("_A_", "_a_").replace("_B", "_b")


def make(expectation_type: str, /, *posargs: Any, name: str | None = None,
         meta: dict[str, Any] | None = None, **kwargs: Any) -> Expectation:
    """Build a validated expectation; bad arguments raise :class:`QualityError` naming them."""
    t = canonical_type(str(expectation_type))
    spec = REGISTRY.get(t)
    if spec is None:
        raise QualityError(f"unknown expectation {expectation_type!r}{_did_you_mean(t)}")
    if meta is not None and not isinstance(meta, dict):
        raise QualityError(f"{t}: meta must be a mapping, not {meta!r}")
    try:
        bound = spec.signature.bind(*posargs, **kwargs)
    except TypeError as exc:
        _check_given(t, kwargs)      # a bad value is a better message than a missing argument
        _check_partial(t, spec, kwargs)
        raise QualityError(f"{t}: {exc}; signature is {t.removeprefix('expect_')}{spec.signature}") from None
    bound.apply_defaults()
    kw = dict(bound.arguments)
    _check_given(t, kw)
    try:
        _VALIDATORS[t](**{k: v for k, v in kw.items() if k not in OPTIONS + CONDITION})
    except (ValueError, TypeError) as exc:
        raise QualityError(f"{t}: {exc}") from None
    return Expectation(t, kw, name or default_name(t, kw), dict(meta or {}))


def _check_given(t: str, kw: dict[str, Any]) -> None:
    """The checks every expectation shares, on the arguments given (parameters aside)."""
    try:
        for key, value in kw.items():
            if args.is_parameter(value):
                _check_parameter(key, value)
            elif key == "mostly":
                args.need_mostly(value)
            elif key in ("column", "column_A", "column_B"):
                args.need_column(key, value)
            elif key in ("strict_min", "strict_max", "strictly", "or_equal", "exact_match"):
                args.need_bool(key, value)
            elif key in ("catch_exceptions", "include_config") and value is not None:
                args.need_bool(key, value)
            elif key == "result_format" and value is not None:
                args.need_result_format(value)
        args.need_condition(kw.get("row_condition"), kw.get("condition_parser"))
    except ValueError as exc:
        raise QualityError(f"{t}: {exc}") from None


def _check_partial(t: str, spec: Spec, kwargs: dict[str, Any]) -> None:
    """With a required argument missing, still name a given argument whose value is wrong."""
    own = {k: v for k, v in kwargs.items() if k in spec.signature.parameters and k not in OPTIONS + CONDITION}
    filled = {k: p.default if p.default is not inspect.Parameter.empty else None
              for k, p in spec.signature.parameters.items() if k not in OPTIONS + CONDITION}
    try:
        _VALIDATORS[t](**{**filled, **own})
    except (ValueError, TypeError) as exc:
        if any(str(exc).startswith(k) for k in own):
            raise QualityError(f"{t}: {exc}") from None


def _check_parameter(key: str, value: dict[str, Any]) -> None:
    from headrace.quality.param_parse import parse_parameter

    expr = value["$PARAMETER"]
    if not isinstance(expr, str):
        raise ValueError(f"{key}: $PARAMETER must be a parameter name or expression, not {expr!r}")
    try:
        parse_parameter(expr)
    except ValueError as exc:
        raise ValueError(f"{key}: $PARAMETER {expr!r}: {exc}") from None


def _did_you_mean(type_: str) -> str:
    import difflib

    close = difflib.get_close_matches(type_, list(REGISTRY), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(close)}?" if close else "; see headrace.quality.expect for the list"


def revalidate(e: Expectation) -> None:
    """Run a check's own validator again (after its parameters were resolved)."""
    try:
        _check_given(e.expectation_type, e.kwargs)
        _VALIDATORS[e.expectation_type](**{k: v for k, v in e.kwargs.items()
                                           if k not in OPTIONS + CONDITION})
    except (ValueError, TypeError) as exc:
        raise QualityError(f"{e.expectation_type}: {exc}") from None


_VALIDATORS: dict[str, Callable[..., None]] = {}


def _with_options(sig: inspect.Signature, conditional: bool) -> inspect.Signature:
    names = OPTIONS + (CONDITION if conditional else ())
    extra = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=None, annotation="Any")
             for n in names if n not in sig.parameters]
    return sig.replace(parameters=[*sig.parameters.values(), *extra])


def expectation(kind: Kind, op: str, *, judge: Judge | None = None, needs: str | None = None,
                present: Present | None = None) -> Callable[[Callable[..., None]], Callable[..., Expectation]]:
    """Register the decorated signature stub as check type ``expect_<function name>``.

    The stub's body validates its arguments (raising ValueError, the message starting
    with the argument's name); the returned function builds an :class:`Expectation`.
    """
    def deco(stub: Callable[..., None]) -> Callable[..., Expectation]:
        type_ = "expect_" + stub.__name__
        conditional = kind in CONDITIONAL_KINDS or (kind == "table" and op == "row_count")
        sig = _with_options(inspect.signature(stub), conditional)
        REGISTRY[type_] = Spec(type_, kind, sig, op, judge, needs, inspect.getdoc(stub) or "", present)
        _VALIDATORS[type_] = _skip_parameters(stub)

        @functools.wraps(stub)
        def build(*posargs: Any, name: str | None = None, meta: dict[str, Any] | None = None,
                  **kwargs: Any) -> Expectation:
            return make(type_, *posargs, name=name, meta=meta, **kwargs)

        build.__annotations__ = {**stub.__annotations__, "return": Expectation}
        build.__signature__ = sig.replace(return_annotation=Expectation)  # type: ignore[attr-defined]
        return build
    return deco


def _skip_parameters(stub: Callable[..., None]) -> Callable[..., None]:
    """The stub, run once no argument is a ``$PARAMETER`` any more (see ``revalidate``)."""
    def validate(**kw: Any) -> None:
        if not any(args.is_parameter(v) for v in kw.values()):
            stub(**kw)
    return validate


def between(value: Any, lo: Any, hi: Any, strict_min: bool = False, strict_max: bool = False) -> bool:
    """GE bounds: inclusive unless strict; a ``None`` bound is open; ``None`` value fails."""
    if value is None:
        return False
    try:
        if lo is not None and (value <= lo if strict_min else value < lo):
            return False
        if hi is not None and (value >= hi if strict_max else value > hi):
            return False
    except TypeError:
        return False
    return True


def judge_between(kw: dict[str, Any], observed: Any) -> bool:
    return between(observed, kw.get("min_value"), kw.get("max_value"),
                   bool(kw.get("strict_min")), bool(kw.get("strict_max")))
