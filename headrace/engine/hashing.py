"""Stable hashes of task inputs by their logical content, for cache keys.

Two inputs with the same content give the same key whatever their memory layout
(Arrow slices and chunkings, pandas block layouts, NumPy strides); inputs that
differ in a value, a type, an index or a name give different keys. An input
that cannot be hashed by content raises :class:`Unhashable`.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import inspect
import json
import logging
import warnings
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import PurePath
from typing import Any
from uuid import UUID

from headrace.engine.framehash import feed_frame

log = logging.getLogger("headrace.engine")

_MAX_DEPTH = 200


class Unhashable(TypeError):
    """An input whose content headrace cannot hash."""


class CacheKeyWarning(UserWarning):
    """A task input could not be hashed: that call is not cached."""


def _tag(h: Any, *parts: object) -> None:
    h.update(repr(parts).encode())


def feed(h: Any, value: Any, depth: int = 0) -> None:
    """Feed ``value`` into hash ``h`` by content, recursing into containers."""
    if depth > _MAX_DEPTH:
        raise Unhashable("nested too deeply (a cycle?)")
    if value is None or isinstance(value, (bool, int, float, str, bytes)) and not isinstance(value, enum.Enum):
        _tag(h, type(value).__name__, value)
    elif isinstance(value, (datetime, date, time)):
        _tag(h, type(value).__name__, value.isoformat(), str(value.tzinfo) if hasattr(value, "tzinfo") else "")
    elif isinstance(value, (timedelta, Decimal, UUID, PurePath, complex)):
        _tag(h, type(value).__name__, str(value))
    elif isinstance(value, enum.Enum):
        _tag(h, "enum", _qualname(type(value)), value.name)
        feed(h, value.value, depth + 1)
    elif isinstance(value, (dict, list, tuple, set, frozenset)):
        _feed_container(h, value, depth)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        _tag(h, "dataclass", _qualname(type(value)))
        for f in dataclasses.fields(value):
            _tag(h, f.name)
            feed(h, getattr(value, f.name), depth + 1)
    elif not feed_frame(h, value, lambda v: feed(h, v, depth + 1)):
        _feed_object(h, value, depth)


def _feed_container(h: Any, value: Any, depth: int) -> None:
    if isinstance(value, dict):
        items = sorted((digest(k), k, v) for k, v in ((k, value[k]) for k in value))
        _tag(h, type(value).__name__, len(items))
        for _, key, item in items:
            feed(h, key, depth + 1)
            feed(h, item, depth + 1)
        return
    if isinstance(value, (set, frozenset)):
        _tag(h, type(value).__name__, sorted(digest(v) for v in value))
        return
    _tag(h, type(value).__name__, len(value))
    for item in value:
        feed(h, item, depth + 1)


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}"


def _feed_object(h: Any, value: Any, depth: int) -> None:
    """Functions and classes by name (functions also by source); other objects by their reduction."""
    if isinstance(value, type):
        _tag(h, "type", _qualname(value))
        return
    if inspect.isfunction(value) or inspect.ismethod(value) or inspect.isbuiltin(value):
        _tag(h, "function", function_key(value))
        return
    try:
        reduced = value.__reduce_ex__(4)
    except Exception as exc:
        raise Unhashable(f"{type(value).__name__} cannot be reduced: {exc}") from None
    if isinstance(reduced, str) or not isinstance(reduced, tuple):
        _tag(h, "global", _qualname(type(value)), str(reduced))
        return
    _tag(h, "object", _qualname(type(value)))
    callable_, args, *rest = reduced
    _tag(h, _qualname(callable_))
    feed(h, args, depth + 1)
    for part in rest:
        if part is not None and not isinstance(part, (dict, tuple, list)) and hasattr(part, "__next__"):
            part = list(part)  # list and dict items of the reduction
        feed(h, part, depth + 1)


def digest(value: Any) -> str:
    h = hashlib.blake2b(digest_size=20)
    feed(h, value)
    return h.hexdigest()


def stable_hash(*values: Any) -> str:
    """A hex digest that is the same for equal inputs in any process."""
    h = hashlib.blake2b(digest_size=20)
    for value in values:
        feed(h, value)
    return h.hexdigest()


_SOURCE_HASHES: dict[Any, str] = {}


def function_key(fn: Callable[..., Any]) -> str:
    """``module.qualname`` plus a hash of the source, so an edited task misses old caches."""
    code = getattr(fn, "__code__", None)
    cached = _SOURCE_HASHES.get(code or fn)
    if cached is None:
        try:
            src = inspect.getsource(fn)
        except (OSError, TypeError):
            src = repr(getattr(code, "co_code", b""))
        source_digest = hashlib.blake2b(src.encode(), digest_size=8).hexdigest()
        cached = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')}:{source_digest}"
        _SOURCE_HASHES[code or fn] = cached
    return cached


def task_input_hash(context: Any, arguments: dict[str, Any]) -> str | None:
    """Cache key from the task's identity and the content of its inputs.

    Use as ``@task(cache_key_fn=task_input_hash)``. An input it cannot hash
    gives a :class:`CacheKeyWarning` naming the task and parameter, and the
    call is not cached (``None``).
    """
    task = getattr(context, "task", None)
    name = getattr(context, "task_name", None) or getattr(task, "name", "?")
    h = hashlib.blake2b(digest_size=20)
    feed(h, function_key(task.fn) if task is not None else name)
    for param in sorted(arguments):
        try:
            feed(h, param)
            feed(h, arguments[param])
        except (Unhashable, RecursionError) as exc:
            msg = (f"task {name!r}: parameter {param!r} ({type(arguments[param]).__name__}) cannot be hashed "
                   f"for the cache key ({exc}); this call is not cached")
            log.warning("%s", msg)
            warnings.warn(msg, CacheKeyWarning, stacklevel=2)
            return None
    return h.hexdigest()


def json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, (Decimal, UUID, PurePath)):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def to_json(value: Any) -> str:
    """JSON for parameters and records; dates as ISO strings, unknown objects as repr."""
    return json.dumps(value, default=lambda v: _safe_default(v), separators=(",", ":"))


def _safe_default(value: Any) -> Any:
    try:
        return json_default(value)
    except TypeError:
        return repr(value)
