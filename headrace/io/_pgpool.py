"""Idle PostgreSQL connections kept per URL, so many small loads do not each pay a login.

A connection goes back to the pool only when the caller's block ended without an error (its
transaction committed or rolled back, its staging tables dropped); otherwise it is closed.
A forked child starts with an empty pool (the sockets belong to its parent), and a
connection that died while idle is noticed by a ping before it is reused. A connection idle
for ``IDLE_SECONDS`` is closed by a timer, so a process between its loads (a worker waiting
for tonight's runs) holds no connection of the database server's.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger("headrace.io")

MAX_IDLE = 4
MAX_IDLE_TOTAL = 8  # across every URL: a process that talks to many databases holds few
IDLE_SECONDS = 60.0
_idle: dict[str, list[Any]] = {}
_since: dict[int, float] = {}  # id(connection) -> when it went idle
_lock = threading.Lock()
_owner = os.getpid()
_reaper: threading.Timer | None = None


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
    global _owner, _reaper
    with _lock:
        if _owner != os.getpid():
            _idle.clear()  # inherited from the parent process: not ours to use or close
            _since.clear()
            _owner, _reaper = os.getpid(), None  # the parent's timer thread did not come along
        idle = _idle.get(url)
        conn = idle.pop() if idle else None
        if conn is not None:
            _since.pop(id(conn), None)
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
                _since.pop(id(evicted), None)
                if not _idle[oldest]:
                    del _idle[oldest]
            _idle.setdefault(url, []).append(conn)
            _since[id(conn)] = time.monotonic()
            conn = None
            _arm()
    for extra in (evicted, conn):
        if extra is not None:
            close(extra)


def _arm() -> None:
    """Start the timer that closes long-idle connections (under ``_lock``)."""
    global _reaper
    if _reaper is None and _idle:
        _reaper = threading.Timer(IDLE_SECONDS, _reap)
        _reaper.daemon = True
        _reaper.start()


def _reap() -> None:
    """Close the connections idle for ``IDLE_SECONDS``; run again while others remain."""
    global _reaper
    cutoff = time.monotonic() - IDLE_SECONDS + 0.05
    expired: list[Any] = []
    with _lock:
        _reaper = None
        for url in list(_idle):
            keep: list[Any] = []
            for conn in _idle[url]:
                (expired if _since.get(id(conn), 0.0) <= cutoff else keep).append(conn)
            if keep:
                _idle[url] = keep
            else:
                del _idle[url]
        for conn in expired:
            _since.pop(id(conn), None)
        if _idle and _owner == os.getpid():
            _arm()
    for conn in expired:
        close(conn)


@atexit.register
def close_all() -> None:
    """Close every idle connection (at exit, before the interpreter tears modules down)."""
    global _reaper
    with _lock:
        conns = [c for idle in _idle.values() for c in idle] if _owner == os.getpid() else []
        _idle.clear()
        _since.clear()
        if _reaper is not None:
            _reaper.cancel()
            _reaper = None
    for conn in conns:
        close(conn)


def close(conn: Any) -> None:
    try:
        conn.close()  # an open transaction is rolled back by the server when we hang up
    except Exception:  # the connection may already be gone; nothing was committed
        log.debug("closing a broken PostgreSQL connection failed", exc_info=True)
