"""/docs: the API described from the app's own OpenAPI document, as one server-rendered page.

Every operation (method, path, summary, parameters, request body, responses) and every schema
they name, each with an anchor; schema names link to their definitions. No script, nothing
loaded from elsewhere: ``/openapi.json`` stays the machine-readable form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

METHODS = ("get", "post", "put", "patch", "delete")
# A type as text pieces; a piece with an anchor links to that schema's definition.
Piece = tuple[str, str | None]


@dataclass
class Field:
    """A parameter or a schema property."""

    name: str
    type: list[Piece]
    required: bool
    where: str = ""
    description: str = ""
    default: str = ""


@dataclass
class Body:
    """A request body or a response: its status (responses), description and schema per media type."""

    status: str
    description: str
    content: list[tuple[str, list[Piece]]] = field(default_factory=list)


@dataclass
class Operation:
    """One method on one path."""

    anchor: str
    method: str
    path: str
    summary: str
    description: str
    parameters: list[Field]
    request: Body | None
    responses: list[Body]


@dataclass
class Schema:
    """A named schema of ``components.schemas``."""

    name: str
    anchor: str
    description: str
    type: list[Piece]
    properties: list[Field]


@dataclass
class ApiDocs:
    """What the page shows: title, version, description, operations by tag, schemas."""

    title: str
    version: str
    description: str
    groups: list[tuple[str, list[Operation]]]
    schemas: list[Schema]


def describe(spec: dict[str, Any]) -> ApiDocs:
    """The page's content for an OpenAPI 3 document ``spec``."""
    info = spec.get("info", {})
    groups: dict[str, list[Operation]] = {}
    for path, item in spec.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                op = item[method]
                tag = (op.get("tags") or ["api"])[0]
                groups.setdefault(tag, []).append(_operation(path, method, op, item.get("parameters", [])))
    schemas = [_schema(name, s) for name, s in sorted(spec.get("components", {}).get("schemas", {}).items())]
    return ApiDocs(str(info.get("title", "API")), str(info.get("version", "")), str(info.get("description", "")),
                   sorted(groups.items()), schemas)


def _operation(path: str, method: str, op: dict[str, Any], shared: list[dict[str, Any]]) -> Operation:
    anchor = "op-" + _slug(op.get("operationId") or f"{method}-{path}")
    params = [_parameter(p) for p in [*shared, *op.get("parameters", [])]]
    body = op.get("requestBody")
    request = Body("", str(body.get("description", "required" if body.get("required") else "optional")),
                   _content(body.get("content", {}))) if body else None
    responses = [Body(str(code), str(r.get("description", "")), _content(r.get("content", {})))
                 for code, r in sorted(op.get("responses", {}).items())]
    return Operation(anchor, method.upper(), path, str(op.get("summary", "")), str(op.get("description", "")),
                     params, request, responses)


def _parameter(p: dict[str, Any]) -> Field:
    schema = p.get("schema", {})
    default = schema.get("default")
    return Field(str(p.get("name", "")), type_pieces(schema), bool(p.get("required")), str(p.get("in", "")),
                 str(p.get("description", schema.get("description", ""))),
                 "" if default is None else repr(default))


def _content(content: dict[str, Any]) -> list[tuple[str, list[Piece]]]:
    return [(media, type_pieces(c.get("schema", {}))) for media, c in content.items()]


def _schema(name: str, s: dict[str, Any]) -> Schema:
    required = set(s.get("required", []))
    props = [Field(p, type_pieces(ps), p in required, description=str(ps.get("description", "")),
                   default="" if ps.get("default") is None else repr(ps.get("default")))
             for p, ps in s.get("properties", {}).items()]
    return Schema(name, schema_anchor(name), str(s.get("description", "")),
                  [] if props else type_pieces(s), props)


def schema_anchor(name: str) -> str:
    return "schema-" + _slug(name)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")


def type_pieces(s: dict[str, Any]) -> list[Piece]:
    """A schema as short text, e.g. ``array of RunRow`` or ``string (date-time) | null``."""
    if "$ref" in s:
        name = str(s["$ref"]).rsplit("/", 1)[-1]
        return [(name, schema_anchor(name))]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in s:
            return _joined([type_pieces(x) for x in s[key]], " & " if key == "allOf" else " | ")
    if "enum" in s:
        return [("one of " + ", ".join(repr(v) for v in s["enum"]), None)]
    kind = s.get("type")
    if kind == "array":
        return [("array of ", None), *type_pieces(s.get("items", {}))]
    if kind == "object" or "properties" in s or "additionalProperties" in s:
        return _object(s)
    if isinstance(kind, list):
        return _joined([[(str(k), None)] for k in kind], " | ")
    if kind is None:
        return [("any", None)]
    return [(f"{kind} ({s['format']})" if "format" in s else str(kind), None)]


def _object(s: dict[str, Any]) -> list[Piece]:
    props = s.get("properties")
    if props:
        inner = _joined([[(f"{name}: ", None), *type_pieces(p)] for name, p in props.items()], ", ")
        return [("{", None), *inner, ("}", None)]
    extra = s.get("additionalProperties")
    if isinstance(extra, dict) and extra:
        return [("object of ", None), *type_pieces(extra)]
    return [("object", None)]


def _joined(parts: list[list[Piece]], sep: str) -> list[Piece]:
    out: list[Piece] = []
    for i, part in enumerate(parts):
        if i:
            out.append((sep, None))
        out.extend(part)
    return out
