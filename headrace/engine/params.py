"""Turning parameter values (``--param k=v`` text, JSON from the store) into the annotated types."""

from __future__ import annotations

import enum
import inspect
import json
import types
import typing
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from headrace.errors import ParameterError
from headrace.secrets import Secret

Flow = Any  # headrace.engine.flow.Flow (which imports this module): name, fn and signature are read

_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


def _convert(raw: Any, annotation: Any) -> Any:
    if annotation in (Any, str, typing.Any) or annotation is inspect.Parameter.empty:
        return raw
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Secret:  # Secret[int]: converted as an int (the flow passes the real value on)
        return _convert(raw, args[0] if args else Any)
    if origin in (typing.Union, types.UnionType):
        if isinstance(raw, str) and raw.lower() in ("none", "null") and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(raw, arg)
            except (ValueError, TypeError) as exc:
                errors.append(str(exc))
        raise ValueError("; ".join(errors))
    if origin is typing.Literal:
        for option in args:
            if str(option) == str(raw):
                return option
        raise ValueError(f"expected one of {', '.join(map(repr, args))}")
    if origin in (list, tuple, set, dict) or annotation in (list, tuple, set, dict):
        value = json.loads(raw) if isinstance(raw, str) else raw
        target = origin or annotation
        if target is dict:
            if not isinstance(value, dict):
                raise ValueError("expected a JSON object")
            return value
        if not isinstance(value, list):
            raise ValueError("expected a JSON list")
        if args and target is not tuple:
            value = [_convert(v, args[0]) for v in value]
        return target(value)
    return _scalar(raw, annotation)


def _scalar(raw: Any, annotation: Any) -> Any:
    if not isinstance(raw, str):
        is_enum = isinstance(annotation, type) and issubclass(annotation, enum.Enum)
        if annotation in (date, datetime, Decimal, Path) or is_enum:
            raw = str(raw)
        else:
            return raw
    if annotation is bool:
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError("expected true or false")
    if annotation is int:
        return int(raw)
    if annotation is float:
        return float(raw)
    if annotation is datetime:
        return datetime.fromisoformat(raw)
    if annotation is date:
        return date.fromisoformat(raw)
    if annotation is time:
        return time.fromisoformat(raw)
    if annotation is Decimal:
        try:
            return Decimal(raw)
        except InvalidOperation:
            raise ValueError("expected a decimal number") from None
    if annotation is Path:
        return Path(raw)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        for member in annotation:
            if raw in (member.name, str(member.value)):
                return member
        raise ValueError(f"expected one of {', '.join(m.name for m in annotation)}")
    return raw


_BY_NAME: dict[str, Any] = {"int": int, "float": float, "bool": bool, "str": str, "date": date,
                            "datetime": datetime, "time": time, "Decimal": Decimal, "Path": Path,
                            "dict": dict, "list": list}


def convert_parameters(flow: Flow, raw: dict[str, Any]) -> dict[str, Any]:
    """Convert each raw value by the flow's annotation; name the parameter when one fails."""
    try:
        hints = typing.get_type_hints(flow.fn)
    except Exception:
        hints = {}
    params = flow.signature.parameters
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in params and not takes_kwargs:
            known = ", ".join(params) or "none"
            raise ParameterError(f"flow {flow.name!r} has no parameter {name!r} (parameters: {known})")
        annotation = hints.get(name, params[name].annotation if name in params else Any)
        if isinstance(annotation, str):  # an annotation get_type_hints could not resolve
            annotation = _BY_NAME.get(annotation.split("|")[0].strip(), Any)
        try:
            out[name] = _convert(value, annotation)
        except (ValueError, TypeError) as exc:
            type_name = getattr(annotation, "__name__", str(annotation))
            raise ParameterError(f"parameter {name!r} of flow {flow.name!r} expects {type_name}, "
                                 f"got {value!r}: {exc}") from None
    return out


def coerce_parameters(flow: Flow, parameters: dict[str, Any]) -> dict[str, Any]:
    """Convert text values to the annotated types (``"2024-01-31"`` to a date), as peers validate.

    Values that already are not text are left alone; text that does not convert is
    a ParameterError naming the parameter.
    """
    needs = {k: v for k, v in parameters.items() if isinstance(v, str) and _wants_conversion(flow, k)}
    if not needs:
        return parameters
    return {**parameters, **convert_parameters(flow, needs)}


def _wants_conversion(flow: Flow, name: str) -> bool:
    param = flow.signature.parameters.get(name)
    if param is None or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
        return False
    annotation = param.annotation
    return annotation not in (str, Any, inspect.Parameter.empty, "str", "Any")


def parse_pairs(pairs: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ParameterError(f"--param {pair!r} is not KEY=VALUE")
        key, _, value = pair.partition("=")
        out[key.strip()] = value
    return out
