"""Where OpenLineage events go, chosen by ``HEADRACE_OPENLINEAGE_URL``.

``file:///path/events.ndjson`` appends one JSON event per line (safe with many writers, threads
or processes: each batch is one locked append); ``http(s)://host:port`` POSTs them to
``/api/v1/lineage``; both from a sender process that builds the events
(``headrace.lineage.transport_sender``, ``transport_http``). ``console`` prints them from a
thread of the pipeline's process. Unset: off.

The engine never waits on a transport: records are queued (a deque append) and a dispatcher
hands them on in batches, on its own thread, and when a top-level flow run ends.

What the transports share (rendering, the file transport, the outbox's folder) is in
``headrace.lineage.render``; this module sits above ``transport_http`` and ``transport_sender``
and imports them, never the other way round.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from headrace.errors import ConfigError
from headrace.lineage.render import BatchingThread, Dispatcher, FileTransport, _file_path, rendered
from headrace.lineage.render import outbox_folder as outbox_folder  # where it has been imported from

log = logging.getLogger("headrace.lineage")

class ConsoleTransport:
    """Prints each event on standard output, one JSON object per line."""

    def send(self, lines: list[str]) -> None:
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()

    def __str__(self) -> str:
        return "the console"


class QueueDispatcher(BatchingThread):
    """Delivers events to a local transport (file, console) in order, on a background thread: every
    ``interval`` seconds, at once on ``flush`` (a top-level flow run's end), and at ``close`` (exit)."""

    def __init__(self, transport: FileTransport | ConsoleTransport, interval: float = 1.0) -> None:
        super().__init__(interval)
        self.transport = transport
        self.where = str(transport)
        self.render: Callable[[Any], str] = str
        self.written = 0

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
