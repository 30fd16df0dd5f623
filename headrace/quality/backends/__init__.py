"""Where checks run: one Protocol, a registry, one module per kind of data.

A backend turns user data into a :class:`Source` if it recognises it.
``register_backend`` puts a new one (Spark, later) ahead of the built-ins.
"""

from __future__ import annotations

from typing import Any

from headrace.errors import QualityError
from headrace.quality.backends.base import FAILED_CHECKS_COLUMN, SEPARATOR, Backend, Source

__all__ = ["FAILED_CHECKS_COLUMN", "SEPARATOR", "Backend", "Source", "open_source", "register_backend"]

_BACKENDS: list[Backend] = []


def register_backend(backend: Backend, *, first: bool = True) -> None:
    """Add a backend; ``first`` lets it claim data before the built-in ones."""
    if first:
        _BACKENDS.insert(0, backend)
    else:
        _BACKENDS.append(backend)


def open_source(data: Any) -> Source:
    """The Source for ``data``; a clear error when no backend knows it."""
    _load_builtins()
    if _is_source(data):
        return data  # type: ignore[no-any-return]
    for backend in _BACKENDS:
        source = backend.open(data)
        if source is not None:
            return source
    if type(data).__module__.startswith("pyspark.") and _load_spark():
        return open_source(data)
    raise QualityError(
        f"cannot run checks on {type(data).__module__}.{type(data).__name__}; give a pandas, "
        "Polars or Arrow frame, a .parquet/.csv path, DuckDBTable(...) or PostgresTable(...)")


def _is_source(data: Any) -> bool:
    return all(hasattr(data, a) for a in ("schema", "measure", "split", "profile", "kind"))


_loaded = False


def _load_builtins() -> None:
    global _loaded
    if _loaded:
        return
    from headrace.quality.backends.memory import MemoryBackend
    from headrace.quality.backends.sql import SqlBackend

    register_backend(MemoryBackend(), first=False)
    register_backend(SqlBackend(), first=False)
    _loaded = True


def _load_spark() -> bool:
    """A Spark DataFrame given before ``headrace.spark`` was imported: its backend registers itself
    when loaded (by name: the spark part builds on quality, not the other way round)."""
    import importlib

    before = len(_BACKENDS)
    importlib.import_module("headrace.spark.quality")
    return len(_BACKENDS) > before
