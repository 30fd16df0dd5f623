"""Stable hashes of task inputs, for cache keys and retry matching."""

from __future__ import annotations

import hashlib
import inspect
import json
import pickle
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import PurePath
from typing import Any
from uuid import UUID


def _feed(h: Any, value: Any) -> None:
    """Feed ``value`` into hash ``h`` by content, recursing into containers."""
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        h.update(repr((type(value).__name__, value)).encode())
    elif isinstance(value, (datetime, date, time, Decimal, UUID, PurePath)):
        h.update(repr((type(value).__name__, str(value))).encode())
    elif isinstance(value, dict):
        h.update(b"{")
        for key in sorted(value, key=repr):
            _feed(h, key)
            _feed(h, value[key])
        h.update(b"}")
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        h.update(type(value).__name__.encode() + b"[")
        for item in items:
            _feed(h, item)
        h.update(b"]")
    else:
        _feed_object(h, value)


def _feed_object(h: Any, value: Any) -> None:
    module = type(value).__module__
    if module.startswith("pandas"):
        import pandas as pd

        if isinstance(value, (pd.DataFrame, pd.Series)):
            h.update(repr(list(getattr(value, "columns", [value.name]))).encode())
            h.update(pd.util.hash_pandas_object(value, index=True).to_numpy().tobytes())
            return
    if module.startswith("pyarrow"):
        h.update(repr(value.schema).encode())
        for col in value.columns:
            for chunk in col.chunks:
                for buf in chunk.buffers():
                    if buf is not None:
                        h.update(memoryview(buf))
        return
    if module.startswith("polars"):
        _feed_object(h, value.to_arrow())
        return
    if module.startswith("numpy"):
        h.update(repr((value.dtype.str, value.shape)).encode() + value.tobytes())
        return
    # Anything else: by its pickled bytes; unpicklable values make the input unhashable.
    h.update(pickle.dumps(value, protocol=5))


def stable_hash(*values: Any) -> str:
    """A hex digest that is the same for equal inputs in any process."""
    h = hashlib.blake2b(digest_size=20)
    for value in values:
        _feed(h, value)
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
        digest = hashlib.blake2b(src.encode(), digest_size=8).hexdigest()
        cached = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')}:{digest}"
        _SOURCE_HASHES[code or fn] = cached
    return cached


def task_input_hash(context: Any, arguments: dict[str, Any]) -> str | None:
    """Cache key from the task's identity and its inputs; ``None`` when inputs can't be hashed.

    Use as ``@task(cache_key_fn=task_input_hash)``.
    """
    task = getattr(context, "task", None)
    fn_key = function_key(task.fn) if task is not None else getattr(context, "task_name", "")
    try:
        return stable_hash(fn_key, arguments)
    except Exception:
        return None


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
