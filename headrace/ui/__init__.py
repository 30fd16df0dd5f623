"""The web page: runs, tasks, logs, quality, lineage, deployments and lake jobs, and its JSON API.

``headrace ui`` (or ``headrace serve``) starts it on http://127.0.0.1:8428.
FastAPI and Jinja2 come with the ``web`` extra: ``pip install headrace[web]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from headrace.ui.app import create_app
    from headrace.ui.server import UIServer, serve_component
    from headrace.ui.settings import UISettings

__all__ = ["UIServer", "UISettings", "create_app", "serve_component"]

_WHERE = {"create_app": "app", "UIServer": "server", "serve_component": "server", "UISettings": "settings"}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'headrace.ui' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"headrace.ui.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
