"""An expectation is a named, validated set of arguments for one registered check type.

Each check type is declared once in ``expect.py`` with a Python signature; the
``@expectation`` decorator registers a :class:`Spec` that says what the
backends must compute (a row predicate, a column metric or table metadata)
and how the observed value is judged. Backends implement the predicates and
metrics, never whole expectations, so each new check costs a few lines.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from headrace.errors import QualityError

log = logging.getLogger("headrace.quality")

# map: one column, row by row; multi: several columns, row by row;
# agg: a metric of one column; table: row count or schema; history: metric vs past runs.
Kind = Literal["map", "multi", "agg", "table", "history"]
Judge = Callable[[dict[str, Any], Any], bool]


@dataclass(frozen=True)
class Spec:
    """What a check type needs from a backend and how its observation is judged."""

    type: str
    kind: Kind
    signature: inspect.Signature
    op: str                         # row op (map/multi) or metric name (agg/table/history)
    judge: Judge | None = None
    needs: str | None = None        # "numeric" | "string": column type the check requires
    doc: str = ""


REGISTRY: dict[str, Spec] = {}
ROW_KINDS = ("map", "multi")


@dataclass(frozen=True, eq=False)
class Expectation:
    """One check in a suite: its GE type, its arguments and a unique display name."""

    expectation_type: str
    kwargs: dict[str, Any]
    name: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> Spec:
        return REGISTRY[self.expectation_type]

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

    def with_name(self, name: str) -> Expectation:
        return Expectation(self.expectation_type, self.kwargs, name, self.meta)

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
    return f"{base}({', '.join(map(str, cols))})" if cols else base


def canonical_type(type_: str) -> str:
    """Accept GE names with or without ``expect_`` and the GE ``A``/``B`` capitals."""
    t = type_.strip()
    if not t.startswith("expect_"):
        t = "expect_" + t
    return t.replace("_A_", "_a_").replace("_B", "_b")


def make(type_: str, *args: Any, name: str | None = None,
         meta: dict[str, Any] | None = None, **kwargs: Any) -> Expectation:
    """Build a validated expectation; bad arguments raise :class:`QualityError`."""
    t = canonical_type(type_)
    spec = REGISTRY.get(t)
    if spec is None:
        raise QualityError(f"unknown expectation {type_!r}{_did_you_mean(t)}")
    try:
        bound = spec.signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise QualityError(f"{t}: {exc}; signature is {t.removeprefix('expect_')}{spec.signature}") from None
    bound.apply_defaults()
    kw = dict(bound.arguments)
    try:
        _check_common(kw)
        _VALIDATORS[t](**kw)
    except (ValueError, TypeError) as exc:
        raise QualityError(f"{t}: {exc}") from None
    return Expectation(t, kw, name or default_name(t, kw), dict(meta or {}))


def _did_you_mean(type_: str) -> str:
    import difflib

    close = difflib.get_close_matches(type_, list(REGISTRY), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(close)}?" if close else "; see headrace.quality.expect for the list"


def _check_common(kw: dict[str, Any]) -> None:
    lo, hi = kw.get("min_value"), kw.get("max_value")
    if lo is not None and hi is not None:
        try:
            bad = lo > hi
        except TypeError:
            raise ValueError(f"min_value {lo!r} and max_value {hi!r} cannot be compared") from None
        if bad:
            raise ValueError(f"min_value {lo!r} is greater than max_value {hi!r}")
    mostly = kw.get("mostly", 1.0)
    if isinstance(mostly, bool) or not isinstance(mostly, int | float) or not 0 <= mostly <= 1:
        raise ValueError(f"mostly must be a number between 0 and 1, not {mostly!r}")
    for key in ("column", "column_A", "column_B"):
        if key in kw and not isinstance(kw[key], str):
            raise ValueError(f"{key} must be a column name (str), not {kw[key]!r}")


_VALIDATORS: dict[str, Callable[..., None]] = {}


def expectation(kind: Kind, op: str, *, judge: Judge | None = None,
                needs: str | None = None) -> Callable[[Callable[..., None]], Callable[..., Expectation]]:
    """Register the decorated signature stub as check type ``expect_<function name>``.

    The stub's body validates its arguments (raising ValueError); the returned
    function builds an :class:`Expectation`.
    """
    def deco(stub: Callable[..., None]) -> Callable[..., Expectation]:
        type_ = "expect_" + stub.__name__
        sig = inspect.signature(stub)
        REGISTRY[type_] = Spec(type_, kind, sig, op, judge, needs, inspect.getdoc(stub) or "")
        _VALIDATORS[type_] = stub

        @functools.wraps(stub)
        def build(*args: Any, name: str | None = None, meta: dict[str, Any] | None = None,
                  **kwargs: Any) -> Expectation:
            return make(type_, *args, name=name, meta=meta, **kwargs)

        build.__annotations__ = {**stub.__annotations__, "return": Expectation}
        return build
    return deco


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
