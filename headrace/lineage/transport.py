"""Where OpenLineage events go, chosen by ``HEADRACE_OPENLINEAGE_URL``.

``file:///path/events.ndjson`` appends one JSON event per line (safe with many writers, threads
or processes: each batch is one locked append); ``http(s)://host:port`` POSTs them to
``/api/v1/lineage``; both from a sender process that builds the events
(``headrace.lineage.transport_sender``, ``transport_http``). ``console`` prints them from a
thread of the pipeline's process. Unset: off.

The engine never waits on a transport: records are queued (a deque append) and a dispatcher
hands them on in batches, on its own thread, and when a top-level flow run ends.
"""

from __future__ import annotations

import collections
import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from headrace.errors import ConfigError

log = logging.getLogger("headrace.lineage")

# Events waiting past this many are delivered at once, not at the next tick.
BATCH = 2_000


class Dispatcher(Protocol):
    """Takes events from the engine (lines, or records that ``render`` turns into lines) and delivers them."""

    where: str
    render: Callable[[Any], str]

    def put(self, item: Any) -> None: ...

    def flush(self) -> None: ...

    def drain(self, timeout: float = 30.0) -> bool: ...

    def close(self, timeout: float | None = None) -> None: ...


class FileTransport:
    """Appends events to one NDJSON file; each batch is a single write under an exclusive lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def send(self, lines: list[str]) -> None:
        import fcntl

        data = ("\n".join(lines) + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            # O_APPEND puts each write at the end; the lock keeps a large batch (several writes
            # for the kernel) from interleaving with another process's batch.
            fcntl.flock(fd, fcntl.LOCK_EX)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)  # releases the lock

    def __str__(self) -> str:
        return str(self.path)


class ConsoleTransport:
    """Prints each event on standard output, one JSON object per line."""

    def send(self, lines: list[str]) -> None:
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()

    def __str__(self) -> str:
        return "the console"


class QueueDispatcher:
    """Delivers events to a local transport (file, console) in order, on a background thread: every
    ``interval`` seconds, at once on ``flush`` (a top-level flow run's end), and at ``close`` (exit)."""

    def __init__(self, transport: FileTransport | ConsoleTransport, interval: float = 1.0) -> None:
        self.transport = transport
        self.where = str(transport)
        self.interval = interval
        self._queue: collections.deque[Any] = collections.deque()
        self.render: Callable[[Any], str] = str
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.written = 0

    def put(self, item: Any) -> None:
        self._queue.append(item)
        if self._thread is None:
            self._start()
        elif len(self._queue) >= BATCH:
            self._wake.set()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True, name="headrace-openlineage")
                self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            self.deliver()

    def flush(self) -> None:
        """Have the thread deliver what is queued now (the caller does not wait: writing runs beside
        the next run, outside the interpreter lock)."""
        self._wake.set()

    def drain(self, timeout: float = 30.0) -> bool:
        """Deliver what is queued now, in this thread; True (a local write does not wait on anyone)."""
        self.deliver()
        return True

    def deliver(self) -> None:
        """Deliver every queued event now, in this thread."""
        with self._lock:
            queue = self._queue
            lines = rendered([queue.popleft() for _ in range(len(queue))], self.render)
            if not lines:
                return
            try:
                self.transport.send(lines)
                self.written += len(lines)
            except OSError as exc:
                log.warning("OpenLineage: %d event(s) could not be written to %s: %s", len(lines), self.where, exc)

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is queued, in this thread, and stop the background thread."""
        self._stop.set()
        self._wake.set()
        self.deliver()


def rendered(items: list[Any], render: Callable[[Any], str]) -> list[str]:
    """Each queued item as its JSON line; an item that cannot be rendered is logged and left out."""
    lines = []
    for item in items:
        if isinstance(item, str):
            lines.append(item)
            continue
        try:
            lines.append(render(item))
        except Exception as exc:  # a broken event never stops the others
            from headrace.secrets import redact

            log.warning("OpenLineage: an event could not be built: %s: %s", type(exc).__name__, redact(str(exc)))
    return lines


def _file_path(url: str) -> Path:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ConfigError(f"HEADRACE_OPENLINEAGE_URL {url!r}: a file URL names a local path "
                          "(file:///path/events.ndjson)")
    if not parts.path:
        raise ConfigError(f"HEADRACE_OPENLINEAGE_URL {url!r}: give the file's path, e.g. file:///tmp/events.ndjson")
    return Path(unquote(parts.path))


def dispatcher_for(url: str, *, home: Path, api_key: str | None = None, timeout: float = 5.0,
                   namespace: str = "headrace", **options: Any) -> Dispatcher:
    """The dispatcher for ``url`` (``file://``, ``console``, ``http(s)://``); ``home``: the
    headrace home, where unsent HTTP events are kept (``openlineage/outbox``); ``timeout``: of one
    HTTP request; ``options``: of ``HttpDispatcher``."""
    url = url.strip()
    scheme = urlsplit(url).scheme.lower()
    if url.lower() == "console":
        return QueueDispatcher(ConsoleTransport())
    if scheme == "file":
        from headrace.lineage.transport_sender import SenderProcessDispatcher

        _file_path(url)  # a malformed URL is refused now, in the pipeline, not in the sender
        return SenderProcessDispatcher(url, home, namespace=namespace, **options)
    if scheme in ("http", "https"):
        from headrace.lineage.transport_http import HttpTransport
        from headrace.lineage.transport_sender import SenderProcessDispatcher

        HttpTransport(url)  # a malformed URL is refused now, in the pipeline, not in the sender
        return SenderProcessDispatcher(url, home, api_key=api_key, timeout=timeout, namespace=namespace, **options)
    from headrace.secrets import redact

    raise ConfigError(f"HEADRACE_OPENLINEAGE_URL {redact(url)!r} is not a transport headrace knows: use "
                      "file:///path/events.ndjson, console, or http(s)://host:port")


def outbox_folder(home: Path) -> Path:
    """Where events an HTTP endpoint did not take are kept until they are sent."""
    return home / "openlineage" / "outbox"
