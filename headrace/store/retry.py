"""Transient store failures (a lock held too long, a dropped connection) and their retry.

A store method runs its transaction as a whole; when the database is locked or
the connection drops, :func:`retried` runs the method again from the start
(its transaction was rolled back), with backoff, for up to ``RETRY_FOR``
seconds. Anything else becomes a one-line :class:`StoreError` naming the store
and what to do.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from headrace.errors import StoreError, StoreNotWritable, StoreUnavailable
from headrace.secrets import redact

log = logging.getLogger("headrace.store")

F = TypeVar("F", bound=Callable[..., Any])

SQLITE_BUSY_MS = 5000     # how long SQLite itself waits for a lock before saying "locked"
RETRY_FOR = 60.0          # seconds a store method keeps retrying a transient failure
_FIRST_DELAY, _MAX_DELAY = 0.05, 2.0

_DROPPED = ("terminating connection", "server closed the connection", "connection is closed",
            "connection already closed", "could not connect", "connection refused", "connection reset",
            "ssl syscall", "consuming input failed", "the database system is shutting down",
            "the database system is starting up", "connection timed out", "broken pipe")
_LOCKED = ("database is locked", "database table is locked", "database is busy")
_READ_ONLY = ("readonly database", "read-only", "permission denied", "unable to open database file")
_CORRUPT = ("file is not a database", "database disk image is malformed", "file is encrypted")


def sqlite_busy_ms() -> int:
    return int(SQLITE_BUSY_MS)


def store_error(exc: BaseException, safe_url: str, dialect: str, path: Path | None) -> StoreError:
    """The one-line error for a failed store operation, transient or not."""
    raw = str(getattr(exc, "orig", None) or exc).strip()
    low = raw.lower()  # classify on the raw text; show it redacted
    msg = redact(raw.splitlines()[0]) if raw else ""
    where = str(path) if path is not None else safe_url
    if getattr(exc, "connection_invalidated", False) or any(s in low for s in _DROPPED):
        return StoreUnavailable(f"the run store {where} dropped the connection ({msg}); "
                                "check that the database server is up")
    if dialect == "sqlite" and any(s in low for s in _LOCKED):
        return StoreUnavailable(f"the run store {where} is locked by another process ({msg}); "
                                "it is retried; if it lasts, look for a process holding the file open")
    if dialect == "sqlite" and any(s in low for s in _CORRUPT):
        return StoreError(f"the run store {where} is not a readable SQLite database ({msg}); "
                          "move the file aside (headrace then starts a new store) or restore it from a backup")
    if any(s in low for s in _READ_ONLY):
        return StoreNotWritable(f"cannot write the run store {where} ({msg}); make it writable "
                                "or set HEADRACE_HOME to a writable folder")
    return StoreError(f"the run store {where} failed: {msg}")


def retried(fn: F) -> F:
    """Run the store method ``fn`` again when it fails with StoreUnavailable."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + RETRY_FOR
        delay = _FIRST_DELAY
        while True:
            try:
                return fn(*args, **kwargs)
            except StoreUnavailable as exc:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("%s; retrying in %.2f s", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, _MAX_DELAY)

    return wrapper  # type: ignore[return-value]
