"""Finding a flow from ``path/to/file.py:flow_name`` or ``package.module:flow_name``."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from headrace.engine.flow import Flow
from headrace.errors import FlowNotFound


def load_module(path_or_module: str) -> Any:
    """Import a Python file (its folder goes on ``sys.path``, so process workers can import it too)."""
    if path_or_module.endswith(".py") or "/" in path_or_module:
        path = Path(path_or_module).expanduser().resolve()
        if not path.is_file():
            raise FlowNotFound(f"flow file {path_or_module} does not exist")
        folder = str(path.parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        name = path.stem
        existing = sys.modules.get(name)
        if existing is not None and getattr(existing, "__file__", None) == str(path):
            return existing
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise FlowNotFound(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(name, None)
            raise FlowNotFound(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
        return module
    try:
        return importlib.import_module(path_or_module)
    except ImportError as exc:
        raise FlowNotFound(f"cannot import module {path_or_module!r}: {exc}") from exc


def load_flow(entrypoint: str) -> Flow[Any, Any]:
    """The flow named by ``FILE.py:FLOW`` (or ``module:FLOW``); a clear error if there is none.

    ``FLOW`` may be the flow's variable name or its ``name=``.
    """
    if ":" not in entrypoint:
        raise FlowNotFound(f"{entrypoint!r} does not name a flow; write FILE.py:FLOW_NAME")
    where, _, attr = entrypoint.rpartition(":")
    module = load_module(where)
    obj = getattr(module, attr, None)
    if isinstance(obj, Flow):
        return obj
    flows = {name: value for name, value in vars(module).items() if isinstance(value, Flow)}
    for value in flows.values():
        if value.name == attr:
            return value
    known = ", ".join(sorted(flows)) or "none"
    raise FlowNotFound(f"{where} has no flow named {attr!r} (flows there: {known})")
