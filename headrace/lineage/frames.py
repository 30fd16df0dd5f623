"""Where an in-memory frame came from, so that writing it can name its column lineage.

``read_sql`` remembers, for the frame it returns, which input columns each of its columns
comes from; a quality gate adds its checks. When ``write_table`` or ``write_parquet`` later
writes that same frame (or the gate's output of it), the output's column lineage and quality
facets follow. Frames are held by weak reference: remembering never keeps one alive.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field, replace
from typing import Any

from headrace.lineage.model import ColumnSource, DatasetRef, schema_of


@dataclass
class Origin:
    """What is known of a frame's making."""

    datasets: list[DatasetRef] = field(default_factory=list)
    columns: dict[str, list[ColumnSource]] = field(default_factory=dict)
    sql: str | None = None
    assertions: list[dict[str, Any]] | None = None
    metrics: dict[str, Any] | None = None
    # Python transforms on the way: {"task", "schema_in", "schema_out"} each
    transforms: list[dict[str, Any]] = field(default_factory=list)
    indirect: list[ColumnSource] = field(default_factory=list)


_ORIGINS: dict[int, tuple[weakref.ref[Any], Origin]] = {}
_LOCK = threading.Lock()


def remember(frame: Any, origin: Origin) -> None:
    """Note ``origin`` for ``frame`` (nothing for objects that cannot be weakly referenced)."""
    key = id(frame)

    def gone(_ref: Any) -> None:
        _forget(key)

    try:
        ref = weakref.ref(frame, gone)
    except TypeError:
        return
    with _LOCK:
        _ORIGINS[key] = (ref, origin)


def _forget(key: int) -> None:
    with _LOCK:
        entry = _ORIGINS.get(key)
        if entry is not None and entry[0]() is None:
            del _ORIGINS[key]


def origin_of(frame: Any) -> Origin | None:
    """The origin remembered for this very object, if any."""
    with _LOCK:
        entry = _ORIGINS.get(id(frame))
    if entry is None or entry[0]() is not frame:
        return None
    return entry[1]


def derive(new: Any, old: Any, **changes: Any) -> None:
    """``new`` has the columns of ``old`` (a filtered or checked copy): it inherits its origin."""
    origin = origin_of(old)
    if origin is None and not changes:
        return
    base = origin or Origin()
    remember(new, Origin(list(base.datasets), dict(base.columns), base.sql,
                         changes.get("assertions", base.assertions), changes.get("metrics", base.metrics),
                         list(base.transforms), list(base.indirect)))


def transformed(task_name: str, inputs: list[Any], output: Any) -> None:
    """``output`` was made from the frames ``inputs`` by a task: it inherits their datasets, and
    the sources of each column it shares by name with one of them, as TRANSFORMATION."""

    step = {"task": task_name, "schema_in": [list(p) for f in inputs for p in (schema_of(f) or [])],
            "schema_out": [list(p) for p in schema_of(output) or []]}
    known = origin_of(output)
    if known is not None:   # made by a recorder (a read, a gate): what it knows beats matching names
        known.transforms.append(step)
        return
    result = inherited(inputs, output)
    result.transforms.append(step)
    remember(output, result)


def inherited(inputs: list[Any], output: Any) -> Origin:
    """What ``output``, made from ``inputs`` by code lineage cannot see, inherits from their origins:
    datasets, checks, and the sources of the columns it shares by name (as TRANSFORMATION)."""
    result = Origin()
    for frame in inputs:
        origin = origin_of(frame)
        if origin is None:
            continue
        result.datasets += [d for d in origin.datasets if d not in result.datasets]
        result.transforms += origin.transforms
        result.sql = result.sql or origin.sql
        result.indirect += [s for s in origin.indirect if s not in result.indirect]
        result.assertions = result.assertions or origin.assertions
        result.metrics = result.metrics or origin.metrics
        for column, sources in origin.columns.items():
            result.columns.setdefault(column, [replace(s, subtype="TRANSFORMATION") for s in sources])
    columns = getattr(output, "column_names", None)
    names = {str(c) for c in (columns if columns is not None else getattr(output, "columns", []))}
    result.columns = {c: s for c, s in result.columns.items() if c in names}
    return result
