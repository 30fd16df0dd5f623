"""OpenLineage over HTTP: events POSTed to ``/api/v1/lineage`` (as Marquez takes them), with retries.

``HttpDispatcher`` sends queued events on a thread, one POST each over a kept-alive connection,
retrying a refused connection, a timeout or a 5xx/408/425/429 answer with exponential backoff.
Events it cannot send are kept on disk (``Outbox``, under the headrace home) and sent by the
next sender that starts, or by ``headrace lineage send``; an event the endpoint rejects (another
4xx) is set aside in ``rejected.ndjson``, never resent. ``close`` waits at most ``exit_wait``
seconds. It runs in the sender process (``headrace.lineage.transport_sender``), not beside the
pipeline. Delivery is at least once: an event whose answer was lost may be sent twice.
"""

from __future__ import annotations

import collections
import http.client
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from headrace.errors import ConfigError
from headrace.lineage.render import outbox_folder, rendered
from headrace.secrets import redact

log = logging.getLogger("headrace.lineage")

LINEAGE_PATH = "/api/v1/lineage"
RETRYABLE = frozenset({408, 425, 429})
MAX_QUEUED = 50_000  # past this many waiting events, they go to the outbox rather than to memory


class SendError(Exception):
    """An event was not taken; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def lineage_endpoint(url: str) -> str:
    """``http://host:port`` -> ``http://host:port/api/v1/lineage`` (a URL naming a path keeps it)."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if not path.endswith(LINEAGE_PATH):
        path += LINEAGE_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


class HttpTransport:
    """POSTs one event per request over a kept-alive connection; ``api_key`` goes as a Bearer token.

    The standard library's ``http.client``: one POST costs about a sixth of the CPU time an httpx
    request does, which matters at two events per task (``bench/lineage.py``).
    """

    def __init__(self, url: str, *, api_key: str | None = None, connect_timeout: float = 2.0,
                 read_timeout: float = 5.0) -> None:
        self.endpoint = lineage_endpoint(url)
        parts = urlsplit(self.endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"OpenLineage endpoint {redact(url)!r}: give http(s)://host:port")
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self._path = urlunsplit(("", "", parts.path, parts.query, ""))
        self._headers = {"Content-Type": "application/json"}
        if parts.username or parts.password:
            from base64 import b64encode
            from urllib.parse import unquote

            pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
            self._headers["Authorization"] = f"Basic {b64encode(pair.encode()).decode()}"
        if api_key:
            from headrace.secrets import register_secret

            register_secret(api_key)
            self._headers["Authorization"] = f"Bearer {api_key}"
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = kind(self._host, self._port, timeout=self.connect_timeout)
            conn.connect()
            if conn.sock is not None:
                conn.sock.settimeout(self.read_timeout)
            self._conn = conn
        return self._conn

    def post(self, line: str) -> None:
        try:
            conn = self._connection()
            conn.request("POST", self._path, body=line.encode("utf-8"), headers=self._headers)
            answer = conn.getresponse()
            text = answer.read(2000)
        except (OSError, http.client.HTTPException) as exc:  # refused, reset, timed out, garbled
            self.close()
            raise SendError(f"{type(exc).__name__}: {redact(str(exc))}", retryable=True) from None
        if answer.will_close:
            self.close()
        code = answer.status
        if code < 300:
            return
        raise SendError(f"HTTP {code}: {redact(text.decode('utf-8', 'replace')[:200])}",
                        retryable=code >= 500 or code in RETRYABLE)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __str__(self) -> str:
        return redact(self.endpoint)


class Outbox:
    """A folder of NDJSON files of events still to send; each file is claimed by one sender at a time."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def keep(self, lines: list[str]) -> None:
        """Write ``lines`` to a new file, atomically (a reader never sees half of it)."""
        if not lines:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp = self.folder / f".{name}.tmp"
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(tmp, self.folder / f"{name}.ndjson")

    def reject(self, line: str, why: str) -> None:
        log.warning("OpenLineage: the endpoint rejected an event (%s); kept in %s", why,
                    self.folder / "rejected.ndjson")
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / "rejected.ndjson", "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def pending(self) -> list[Path]:
        """Files waiting to be sent, oldest first: new ones, and ones whose sender died."""
        if not self.folder.is_dir():
            return []
        found = []
        for path in self.folder.iterdir():
            if path.suffix == ".ndjson" and path.name != "rejected.ndjson":
                found.append(path)
            elif ".sending-" in path.name and not _alive(int(path.name.rsplit("-", 1)[1])):
                found.append(path)
        return sorted(found, key=lambda p: p.name)

    def count(self) -> int:
        """How many events wait in the outbox."""
        total = 0
        for path in self.pending():
            try:
                total += sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
            except FileNotFoundError:
                continue
        return total

    def send(self, post: Callable[[str], None], stop: Callable[[], bool] = lambda: False) -> tuple[int, int]:
        """Send the kept events with ``post``, stopping at the first that fails for now (it and the rest
        stay kept). Returns (sent, still kept)."""
        sent = 0
        for path in self.pending():
            claimed = path.with_name(f"{path.name.split('.sending-')[0]}.sending-{os.getpid()}")
            try:
                os.replace(path, claimed)
            except FileNotFoundError:  # another sender took it
                continue
            lines = [line for line in claimed.read_text(encoding="utf-8").splitlines() if line.strip()]
            for i, line in enumerate(lines):
                if stop():
                    self._put_back(claimed, lines[i:])
                    return sent, self.count()
                try:
                    post(line)
                    sent += 1
                except SendError as exc:
                    if exc.retryable:
                        self._put_back(claimed, lines[i:])
                        return sent, self.count()
                    self.reject(line, str(exc))
            claimed.unlink()
        return sent, self.count()

    def _put_back(self, claimed: Path, lines: list[str]) -> None:
        original = claimed.name.split(".sending-")[0]
        tmp = claimed.with_name(f".{original}.tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(tmp, claimed.with_name(original if original.endswith(".ndjson") else original + ".ndjson"))
        claimed.unlink()


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class HttpDispatcher:
    """Sends queued events on a background thread, with retries, backoff and the outbox.

    ``retries``: tries after the first for one event; ``backoff``: the first wait (doubled each
    time, at most ``max_backoff``); after giving up, events go straight to the outbox for
    ``cooldown`` seconds before the endpoint is tried again. ``exit_wait``: the most ``close``
    waits for the queue to drain before keeping the rest on disk.
    """

    def __init__(self, transport: HttpTransport, outbox: Outbox, *, retries: int = 4, backoff: float = 0.5,
                 max_backoff: float = 8.0, cooldown: float = 30.0, exit_wait: float = 2.0,
                 interval: float = 0.2, clock: Callable[[], float] = time.monotonic) -> None:
        self.transport, self.outbox = transport, outbox
        self.where = str(transport)
        self.retries, self.backoff, self.max_backoff = retries, backoff, max_backoff
        self.cooldown, self.exit_wait, self.interval, self.clock = cooldown, exit_wait, interval, clock
        self._queue: collections.deque[Any] = collections.deque()
        self.render: Callable[[Any], str] = str
        self._inflight: list[str] = []
        self._handoff = threading.Lock()
        self._wake, self._stop, self._idle = threading.Event(), threading.Event(), threading.Event()
        self._down_until = 0.0
        self._kept = True  # the outbox may hold events (of earlier runs, or kept since)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.sent = 0
        # called with how many events were just dealt with (sent, set aside or kept on disk)
        self.on_handled: Callable[[int], None] = lambda n: None

    # -- the engine's side ------------------------------------------------------------------------
    def put(self, item: Any) -> None:
        self._queue.append(item)
        self._idle.clear()
        if self._thread is None:
            self.start()
        if len(self._queue) > MAX_QUEUED:
            self._spill()
        self._wake.set()

    def flush(self) -> None:
        """Ask the thread to send now; never waits."""
        self._wake.set()

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait up to ``timeout`` s until every queued event is sent or kept; True if so."""
        self._wake.set()
        return self._idle.wait(timeout) if (self._queue or self._inflight) else True

    def start(self) -> None:
        """Start the sender (it first sends what earlier runs kept in the outbox)."""
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True, name="headrace-openlineage-http")
                self._thread.start()

    def close(self, timeout: float | None = None) -> None:
        """Wait up to ``timeout`` (default ``exit_wait``) s for the queue to drain; keep the rest on disk."""
        wait = self.exit_wait if timeout is None else timeout
        if self._queue or self._inflight:
            self._idle.wait(wait)
        with self._handoff:
            self._stop.set()
            left = self._inflight + self._take(len(self._queue))
            self._inflight = []
            self.outbox.keep(left)
        self._wake.set()
        if left:
            self.on_handled(len(left))
        if left:
            log.warning("OpenLineage: %d event(s) not yet sent to %s are kept in %s; `headrace lineage send` "
                        "or the next run sends them", len(left), self.where, self.outbox.folder)

    def _spill(self) -> None:
        with self._handoff:
            self.outbox.keep(self._take(len(self._queue)))
            self._kept = True

    def _take(self, n: int) -> list[str]:
        return rendered([self._queue.popleft() for _ in range(min(n, len(self._queue)))], self.render)

    # -- the sender thread ------------------------------------------------------------------------------
    def _loop(self) -> None:
        self._resend_outbox()
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            while self._queue and not self._stop.is_set():
                self._send_batch()
            if self._kept and not self._stop.is_set() and self.clock() >= self._down_until and not self._queue:
                self._resend_outbox()
            if not self._queue:
                self._idle.set()

    def _send_batch(self) -> None:
        with self._handoff:
            if self._stop.is_set():
                return
            batch = self._inflight = self._take(500)
        tried = self.clock() >= self._down_until  # else the endpoint failed lately: keep without trying
        left = self._send(batch) if tried else batch
        with self._handoff:
            if not self._stop.is_set():  # after close, close kept the batch itself
                self._inflight = []
                if left:
                    self.outbox.keep(left)
                    self._kept = True
                    if tried:
                        log.warning("OpenLineage: %s does not take events now; %d kept in %s and sent later",
                                    self.where, len(left), self.outbox.folder)
                self.on_handled(len(batch))

    def _send(self, batch: list[str]) -> list[str]:
        """Send each event; returns the events not sent (from the first one that could not be)."""
        for i, line in enumerate(batch):
            if not self._post(line):
                self._down_until = self.clock() + self.cooldown
                return batch[i:]
            self.sent += 1
        return []

    def _post(self, line: str) -> bool:
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                self.transport.post(line)
                return True
            except SendError as exc:
                if not exc.retryable:
                    self.outbox.reject(line, str(exc))
                    return True  # set aside: not worth retrying, not worth holding the others
                log.debug("OpenLineage: sending to %s failed (%s), attempt %d", self.where, exc, attempt + 1)
            if attempt < self.retries and self._stop.wait(delay):
                return False
            delay = min(delay * 2, self.max_backoff)
        return False

    def _resend_outbox(self) -> None:
        try:
            sent, left = self.outbox.send(self.transport.post, stop=self._stop.is_set)
        except OSError as exc:
            log.warning("OpenLineage: the outbox %s could not be read: %s", self.outbox.folder, exc)
            return
        self.sent += sent
        self._kept = bool(left)
        if left:
            self._down_until = self.clock() + self.cooldown


def send_outbox(url: str, home: Path, *, api_key: str | None = None) -> tuple[int, int, Path]:
    """Send the events kept under ``home`` to ``url`` now. Returns (sent, still kept, outbox folder)."""
    outbox = Outbox(outbox_folder(home))
    transport = HttpTransport(url, api_key=api_key)
    try:
        sent, left = outbox.send(transport.post)
    finally:
        transport.close()
    return sent, left, outbox.folder
