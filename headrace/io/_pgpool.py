"""Idle PostgreSQL connections kept per URL, so many small loads do not each pay a login.

A connection goes back to the pool only when the caller's block ended without an error (its
transaction committed or rolled back, its staging tables dropped); otherwise it is closed.
A forked child starts with an empty pool (the sockets belong to its parent), and a
connection that died while idle is noticed by a ping before it is reused.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger("headrace.io")

MAX_IDLE = 4
MAX_IDLE_TOTAL = 8  # across every URL: a process that talks to many databases holds few
_idle: dict[str, list[Any]] = {}
_lock = threading.Lock()
_owner = os.getpid()


@contextmanager
def session(url: str, connect: Callable[[], Any]) -> Iterator[Any]:
    """A connection for ``url`` for the duration of the block (autocommit off)."""
    conn = _take(url) or _fresh(connect)
    try:
        yield conn
    except BaseException:
        close(conn)
        raise
    _give(url, conn)


def _fresh(connect: Callable[[], Any]) -> Any:
    conn = connect()
    cur = conn.cursor()
    try:
        # Staging tables live in local buffers (8MB by default): give a big frame room. This
        # must come before the session's first temporary table, so once per connection.
        cur.execute("SET temp_buffers = '512MB'")
    finally:
        cur.close()
    conn.commit()
    return conn


def _take(url: str) -> Any:
    global _owner
    with _lock:
        if _owner != os.getpid():
            _idle.clear()  # inherited from the parent process: not ours to use or close
            _owner = os.getpid()
        idle = _idle.get(url)
        conn = idle.pop() if idle else None
    if conn is None:
        return None
    try:
        cur = conn.cursor()
        try:
            cur.execute("SELECT 1")
            cur.fetchall()
        finally:
            cur.close()
        conn.rollback()
        return conn
    except Exception:  # the server hung up while the connection sat idle
        close(conn)
        return None


def _give(url: str, conn: Any) -> None:
    evicted = None
    with _lock:
        idle = _idle.setdefault(url, [])
        if _owner == os.getpid() and len(idle) < MAX_IDLE:
            if sum(len(v) for v in _idle.values()) >= MAX_IDLE_TOTAL:
                oldest = next(u for u, v in _idle.items() if v)  # the URL pooled longest ago
                evicted = _idle[oldest].pop(0)
                if not _idle[oldest]:
                    del _idle[oldest]
            _idle.setdefault(url, []).append(conn)
            conn = None
    for extra in (evicted, conn):
        if extra is not None:
            close(extra)


@atexit.register
def close_all() -> None:
    """Close every idle connection (at exit, before the interpreter tears modules down)."""
    with _lock:
        conns = [c for idle in _idle.values() for c in idle] if _owner == os.getpid() else []
        _idle.clear()
    for conn in conns:
        close(conn)


def close(conn: Any) -> None:
    try:
        conn.close()  # an open transaction is rolled back by the server when we hang up
    except Exception:  # the connection may already be gone; nothing was committed
        log.debug("closing a broken PostgreSQL connection failed", exc_info=True)
