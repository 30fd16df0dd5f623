"""What every backend provides: the :class:`Source` a suite runs on, and the :class:`Backend`
that recognises user data and opens a Source over it.

A new engine plugs in by implementing these two Protocols and calling
``headrace.quality.register_backend``. Engines that speak SQL need much less: a
:class:`~headrace.quality.backends.sources.SqlRelation` (run a query, list the columns)
and a :class:`~headrace.quality.backends.sql_ops.Dialect` (the SQL spellings that differ);
the generic :class:`~headrace.quality.backends.sql.SqlSource` does the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from headrace.quality.evaluate import Measure
    from headrace.quality.expectation import Expectation
    from headrace.quality.results import ResultFormat

FAILED_CHECKS_COLUMN = "_failed_checks"
SEPARATOR = "; "


@runtime_checkable
class Source(Protocol):
    """Data a suite can be run on."""

    kind: str

    def schema(self) -> dict[str, str]:
        """Column name -> canonical type (see ``headrace.quality.types``), in table order."""
        ...

    def measure(self, checks: list[Expectation], fmt: ResultFormat) -> dict[str, Measure]:
        """Measure every check (row-level, aggregate and type) in as few passes as possible.

        A check with a ``row_condition`` sees only the rows inside it; a condition the
        data cannot answer (unknown column, text ordered against numbers) is the check's
        ``Measure.error``, never an exception.
        """
        ...

    def split(self, checks: list[Expectation]) -> tuple[Any, Any]:
        """(good, bad) rows for the row-level checks; bad gets FAILED_CHECKS_COLUMN.

        A row outside a check's ``row_condition`` is never blamed on that check.
        """
        ...

    def profile(self, exact_distinct: Iterable[str] = ()) -> dict[str, Any]:
        """Row count and per-column statistics, for history checks (see SqlSource.profile)."""
        ...


class Backend(Protocol):
    name: str

    def open(self, data: Any) -> Source | None:
        """A Source over ``data``, or None when this backend does not handle it."""
        ...
