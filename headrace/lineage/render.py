"""What the OpenLineage transports, the sender process and the emitter share: turning queued
records into JSON lines (``EventRenderer``, ``rendered``), the ``Dispatcher`` protocol, the NDJSON
file transport, and where unsent HTTP events are kept (``outbox_folder``).

The ground of ``headrace.lineage``'s OpenLineage modules: it imports none of them (only
``openlineage_facets``, when the first event is built), so ``transport_http`` and
``transport_sender`` build on it, ``transport`` (which picks a dispatcher) on those, and
``openlineage`` (the emitter) on ``transport``. It stays light: the sender process imports it first.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
from abc import ABC, abstractmethod
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


class BatchingThread(ABC):
    """Records queued by the pipeline, delivered in order by one background thread: every
    ``interval`` seconds, at once when ``BATCH`` are waiting or on ``flush``. Subclasses say how
    (``deliver``, run in that thread) and name the thread (``thread_name``)."""

    thread_name = "headrace-openlineage"

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._queue: collections.deque[Any] = collections.deque()
        self._lock = threading.Lock()
        self._wake, self._stop = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None

    def put(self, item: Any) -> None:
        self._queue.append(item)
        if self._thread is None:
            self._start()
        elif len(self._queue) >= BATCH:
            self._wake.set()

    def flush(self) -> None:
        """Have the thread deliver what is queued now (the caller does not wait)."""
        self._wake.set()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True, name=self.thread_name)
                self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            self.deliver()

    @abstractmethod
    def deliver(self) -> None:
        """Deliver what is queued (in the thread)."""


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


def outbox_folder(home: Path) -> Path:
    """Where events an HTTP endpoint did not take are kept until they are sent."""
    return home / "openlineage" / "outbox"


class EventRenderer:
    """Turns the emitter's records into JSON lines; events without datasets nor error are filled
    into a per-job template. Runs in the sender process (``transport_sender``), or on a local
    transport's thread."""

    def __init__(self, namespace: str = "headrace") -> None:
        self.namespace = namespace
        self._templates: dict[tuple[Any, ...], tuple[str, str, str]] = {}

    def render(self, record: tuple[Any, ...]) -> str:
        """One queued record as a JSON line (a template filled in when it has no dataset nor error)."""
        kind, etype, run_id, job, at, fn, parent, scheduled, message, error, datasets = record
        ol = _facets()
        if datasets or etype == "FAIL":
            return ol.serialize(ol.build_event(
                event_type=etype, kind=kind, namespace=self.namespace, job_name=job, run_id=run_id, at=at, fn=fn,
                parent=parent, scheduled_time=scheduled, message=message, error=error, datasets=datasets))
        key = (kind, etype, job, parent, scheduled, fn)
        parts = self._templates.get(key)
        if parts is None:
            if len(self._templates) > 10_000:
                self._templates.clear()
            line = ol.serialize(ol.build_event(
                event_type=etype, kind=kind, namespace=self.namespace, job_name=job, run_id=ol.PLACEHOLDER_RUN,
                at=ol.PLACEHOLDER_TIME, fn=fn, parent=parent, scheduled_time=scheduled))
            head, found_time, rest = line.partition(ol.PLACEHOLDER_TIME)  # keys are sorted: eventTime first
            middle, found_run, tail = rest.partition(ol.PLACEHOLDER_RUN)
            if not (found_time and found_run):  # never expected; the event is then built whole
                return ol.serialize(ol.build_event(
                    event_type=etype, kind=kind, namespace=self.namespace, job_name=job, run_id=run_id, at=at,
                    fn=fn, parent=parent, scheduled_time=scheduled))
            parts = self._templates[key] = (head, middle, tail)
        head, middle, tail = parts
        return f"{head}{ol.iso(at)}{middle}{ol.run_uuid(run_id)}{tail}"


_FACETS: list[Any] = []
_IMPORT_LOCK = threading.Lock()


def _facets() -> Any:
    """``headrace.lineage.openlineage_facets``, imported once (it loads the client library)."""
    if not _FACETS:
        with _IMPORT_LOCK:  # the client is loaded by hand (``_client``): one thread at a time
            if not _FACETS:
                from headrace.lineage import openlineage_facets

                _FACETS.append(openlineage_facets)
    return _FACETS[0]
