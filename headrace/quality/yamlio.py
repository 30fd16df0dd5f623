"""Suites as YAML, in GE's shape; load errors name the file and line.

    suite: sales
    on_failure: quarantine
    expectations:
      - expectation_type: expect_column_values_to_be_between
        kwargs: {column: revenue, min_value: 0}
      - expect_column_values_to_not_be_null: {column: customer_id}   # short form
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from headrace.errors import QualityError
from headrace.quality.expectation import Expectation, make

LINE = "__line__"


class _LineLoader(yaml.SafeLoader):
    """A safe loader that remembers the line of every mapping."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping: dict[str, Any] = dict(loader.construct_mapping(node, deep=True))  # type: ignore[arg-type]
    mapping[LINE] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != LINE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def load_suite(source: str | Path) -> tuple[str, list[Expectation], Any, str]:
    """(name, checks, on_failure, where) of a suite in a YAML file or YAML text."""
    where, text = _read(source)
    try:
        doc = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise QualityError(f"{where}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("expectations", []), list):
        raise QualityError(f"{where}: a suite is a mapping with 'suite' and an 'expectations' list")
    name = doc.get("suite") or doc.get("name") or doc.get("expectation_suite_name")
    checks = [_expectation(item, where, doc.get(LINE, 1)) for item in doc.get("expectations") or []]
    return str(name), checks, doc.get("on_failure", "halt"), f"{where}:{doc.get(LINE, 1)}"


def _read(source: str | Path) -> tuple[str, str]:
    if isinstance(source, Path) or ("\n" not in str(source) and str(source).endswith((".yml", ".yaml"))):
        path = Path(source)
        try:
            return str(path), path.read_text(encoding="utf-8")
        except OSError as exc:
            raise QualityError(f"cannot read suite file {path}: {exc.strerror or exc}") from None
    return "<yaml>", str(source)


def _expectation(item: Any, where: str, parent_line: int) -> Any:
    line = item.get(LINE, parent_line) if isinstance(item, dict) else parent_line
    try:
        if not isinstance(item, dict):
            raise QualityError(f"each expectation is a mapping, not {item!r}")
        body = _strip(item)
        if "expectation_type" in body:
            type_, kwargs = body["expectation_type"], body.get("kwargs") or {}
        elif len([k for k in body if k not in ("name", "meta")]) == 1:
            type_ = next(k for k in body if k not in ("name", "meta"))
            kwargs = body[type_] or {}
        else:
            raise QualityError("give expectation_type and kwargs, or one expect_...: {args} pair")
        if not isinstance(kwargs, dict):
            raise QualityError(f"the arguments of {type_} must be a mapping, not {kwargs!r}")
        return make(str(type_), name=body.get("name"), meta=body.get("meta"), **kwargs)
    except QualityError as exc:
        raise QualityError(f"{where}:{line}: {exc}") from None


def dump_suite(suite: dict[str, Any], path: str | Path | None = None) -> str:
    """A suite's ``to_dict()`` as YAML text; also written to ``path`` when given."""
    text = yaml.safe_dump(suite, sort_keys=False, default_flow_style=None)
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text
