"""Where checks run: one Protocol, a registry, one module per kind of data.

A backend turns user data into a :class:`Source` if it recognises it.
``register_backend`` puts a new one (Spark, later) ahead of the built-ins.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from headrace.errors import QualityError
from headrace.quality.evaluate import Measure
from headrace.quality.expectation import Expectation
from headrace.quality.results import ResultFormat

FAILED_CHECKS_COLUMN = "_failed_checks"
SEPARATOR = "; "


class Source(Protocol):
    """Data a suite can be run on."""

    kind: str

    def schema(self) -> dict[str, str]:
        """Column name -> canonical type (see ``headrace.quality.types``), in table order."""
        ...

    def measure(self, checks: list[Expectation], fmt: ResultFormat) -> dict[str, Measure]:
        """Measure every check (row-level and aggregate) in as few passes as possible."""
        ...

    def split(self, checks: list[Expectation]) -> tuple[Any, Any]:
        """(good, bad) rows for the row-level checks; bad gets FAILED_CHECKS_COLUMN."""
        ...

    def profile(self, exact_distinct: Iterable[str] = ()) -> dict[str, Any]:
        """Row count and per-column statistics, for history checks (see SqlSource.profile)."""
        ...


class Backend(Protocol):
    name: str

    def open(self, data: Any) -> Source | None:
        """A Source over ``data``, or None when this backend does not handle it."""
        ...


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
