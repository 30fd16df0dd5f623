"""OpenLineage events built and delivered in a sender process, so their CPU time is not the pipeline's.

An event costs tens of microseconds of Python to build and write (and a POST more:
bench/lineage.py); two per task would add a fifth to a small task's cost if that ran beside the
engine under one interpreter lock. So the pipeline's process only keeps a compact record of each
start and end (a tuple: run id, job, time, the function's source location...) and, every
``interval`` seconds, at a top-level flow run's end or every ``BATCH`` records, writes the
records it holds to a pipe as one pickled frame. A sender process (``python -m
headrace.lineage.transport_sender``, started with the first event) builds the events and
delivers them: to the events file (each frame one locked append, ``FileTransport``) or to an
HTTP endpoint with ``HttpDispatcher`` (retries, backoff, the outbox). Events with datasets or an
error (a few per flow, their objects are the pipeline's) are built in the pipeline's process and
travel as JSON lines in the same frames, so each run's START still comes before its end.

The sender reports how many records it dealt with on its stdout; the pipeline keeps every record
not yet reported. If the sender is killed or crashes, the pipeline builds those events itself
and writes them to the file, or keeps them in the outbox (HTTP): nothing is lost (an event
written but not yet reported may be written twice). When the pipeline's process ends, the pipe
closes: an HTTP sender keeps trying for at most ``EXIT_BUDGET`` seconds, keeps the rest in the
outbox and exits, the pipeline not waiting; for a file, closing waits at most ``exit_wait``
seconds for the sender to write what it was handed, then stops it and writes the rest itself.
The sender logs to ``HEADRACE_HOME/openlineage/sender.log``. The settings travel in the
sender's environment, never on its command line (where ``ps`` would show them).
"""

from __future__ import annotations

import collections
import json
import logging
import os
import pickle
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from headrace.lineage.render import (
    BatchingThread,
    EventRenderer,
    FileTransport,
    _facets,
    _file_path,
    outbox_folder,
    rendered,
)

log = logging.getLogger("headrace.lineage")

EXIT_BUDGET = 5.0  # seconds an HTTP sender keeps trying after the pipeline's process is gone
_ENV = "HEADRACE_OPENLINEAGE_SENDER"
_FRAME = struct.Struct(">I")


def portable(record: Any, render: Callable[[Any], str], locations: dict[Any, Any]) -> Any:
    """What travels to the sender for one queued item: a line as is; a record without datasets nor
    error as a tuple of plain values (the function replaced by its source location); any other
    record as its JSON line, built here (its datasets and error are this process's objects)."""
    if isinstance(record, str):
        return record
    if record[10] or record[1] == "FAIL":
        return render(record)
    fn = record[5]
    if fn is not None and not isinstance(fn, tuple):
        try:
            where = locations[fn]
        except KeyError:
            where = locations[fn] = _facets().source_location(fn)
        except TypeError:  # an unhashable callable
            where = _facets().source_location(fn)
        return (*record[:5], where, *record[6:])
    return record


class _Sender:
    """One sender process, and the events written to it that it has not yet said it dealt with."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.unacked: collections.deque[Any] = collections.deque()
        self.reader: threading.Thread | None = None


class SenderProcessDispatcher(BatchingThread):
    """Hands records to a sender process through a pipe; see the module's docstring. ``url``: an
    ``http(s)://`` endpoint or a ``file://`` path; ``exit_wait``: for a file, the most ``close``
    waits for the sender (default 5 s)."""

    thread_name = "headrace-openlineage-pipe"

    def __init__(self, url: str, home: Path, *, api_key: str | None = None, timeout: float = 5.0,
                 interval: float = 0.2, namespace: str = "headrace", exit_wait: float = 5.0,
                 **options: Any) -> None:
        from headrace.secrets import redact

        self.file: FileTransport | None = None
        if url.lower().startswith("file:"):
            self.file = FileTransport(_file_path(url))
            self.where = str(self.file)
        else:
            from headrace.lineage.transport_http import lineage_endpoint

            self.where = redact(lineage_endpoint(url))
        self.render: Callable[[Any], str] = str
        self._config: dict[str, Any] = {"url": url, "home": str(home), "api_key": api_key, "timeout": timeout,
                                        "namespace": namespace, "options": options,
                                        "file": str(self.file.path) if self.file else None}
        super().__init__(interval)
        self.exit_wait = exit_wait
        self._locations: dict[Any, Any] = {}
        self._acked = threading.Condition()
        self._written = self._handled = 0
        self._current: _Sender | None = None

    def deliver(self) -> None:
        """Write what is queued to the sender, as one frame (in this thread)."""
        with self._lock:
            queue = self._queue
            items = []
            for _ in range(len(queue)):
                record = queue.popleft()
                try:
                    items.append(portable(record, self.render, self._locations))
                except Exception as exc:  # a broken event never stops the others
                    from headrace.secrets import redact

                    log.warning("OpenLineage: an event could not be built: %s: %s", type(exc).__name__,
                                redact(str(exc)))
            if not items:
                return
            body = pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL)
            try:
                sender = self._sender()
            except OSError as exc:  # no process could be started: this process delivers them
                self._keep(items, f"no sender process ({exc})")
                return
            with self._acked:  # before the write: the sender may answer at once
                sender.unacked.extend(items)
                self._written += len(items)
            try:
                assert sender.proc.stdin is not None
                sender.proc.stdin.write(_FRAME.pack(len(body)) + body)
                sender.proc.stdin.flush()
            except OSError as exc:  # the sender died: what it had not dealt with is delivered here
                self._keep_unacked(sender, f"the sender process stopped ({exc})")
                self._current = None

    def warm(self) -> None:
        """Start the sender process now (it would start with the first batch)."""
        with self._lock:
            try:
                self._sender()
            except OSError as exc:
                log.warning("OpenLineage: no sender process could be started (%s); events will be kept", exc)

    @property
    def sender_pid(self) -> int | None:
        """The process id of the current sender (``None`` before the first event)."""
        return self._current.proc.pid if self._current is not None else None

    def _sender(self) -> _Sender:
        current = self._current
        if current is None or current.proc.poll() is not None:
            proc = subprocess.Popen(
                [sys.executable, "-m", "headrace.lineage.transport_sender"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**os.environ, _ENV: json.dumps(self._config)},
                start_new_session=True)  # a Ctrl-C meant for the pipeline does not kill its events
            current = self._current = _Sender(proc)
            current.reader = threading.Thread(target=self._read_acks, args=(current,), daemon=True,
                                              name="headrace-openlineage-acks")
            current.reader.start()
        return current

    def _read_acks(self, sender: _Sender) -> None:
        """Count what the sender dealt with; when it ends, deliver here what it had not (killed, crashed)."""
        assert sender.proc.stdout is not None
        for line in sender.proc.stdout:
            with self._acked:
                for _ in range(min(int(line), len(sender.unacked))):
                    sender.unacked.popleft()
                self._handled += int(line)
                self._acked.notify_all()
        self._keep_unacked(sender, f"the sender process ended with exit code {sender.proc.wait()}")

    def _keep_unacked(self, sender: _Sender, why: str) -> None:
        with self._acked:
            left = list(sender.unacked)
            sender.unacked.clear()
        if left:
            self._keep(left, why)
        with self._acked:
            self._handled += len(left)
            self._acked.notify_all()

    def _keep(self, items: list[Any], why: str) -> None:
        """Deliver ``items`` from this process: append them to the file, or keep them in the outbox."""
        lines = rendered(items, self.render)
        if not lines:
            return
        if self.file is not None:
            try:
                self.file.send(lines)
            except OSError as exc:
                log.warning("OpenLineage: %d event(s) could not be written to %s: %s", len(lines), self.where, exc)
            else:
                log.warning("OpenLineage: %s; %d event(s) it had not written were written by the pipeline",
                            why, len(lines))
            return
        from headrace.lineage.transport_http import Outbox

        Outbox(outbox_folder(Path(self._config["home"]))).keep(lines)
        log.warning("OpenLineage: %s; %d event(s) it had not sent are kept in the outbox", why, len(lines))

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait up to ``timeout`` s until the sender has delivered (or kept) every event emitted so far."""
        self.deliver()
        with self._acked:
            return self._acked.wait_for(lambda: self._handled >= self._written, timeout)

    def close(self, timeout: float | None = None) -> None:
        """Hand the sender what is left and close its pipe. HTTP: wait up to ``timeout`` s (default: not
        at all) for it to finish sending or keeping the rest on disk. File: wait up to ``timeout``
        (default ``exit_wait``) s for it to write everything, then stop it and write the rest here."""
        self._stop.set()
        self._wake.set()
        self.deliver()
        sender = self._current
        proc = sender.proc if sender is not None else None
        if sender is None or proc is None or proc.stdin is None:
            return
        try:
            proc.stdin.close()
        except OSError:
            pass
        if self.file is None:
            if timeout:
                self.wait(timeout)
            return
        if not self.wait(self.exit_wait if timeout is None else timeout):
            proc.kill()
            proc.wait()
        if sender.reader is not None:
            sender.reader.join(2.0)  # its last acknowledgements read, it delivers what is left
        self._keep_unacked(sender, "the sender process did not finish in time")

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the sender process to end (after ``close``); True if it did."""
        if self._current is None:
            return True
        proc = self._current.proc
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True


def _frames(stream: Any) -> Any:
    """The lists of items the pipeline wrote, frame by frame, until the pipe closes."""
    while True:
        head = stream.read(_FRAME.size)
        if len(head) < _FRAME.size:
            return
        (size,) = _FRAME.unpack(head)
        body = stream.read(size)
        if len(body) < size:  # the pipeline died while writing: it had not counted on this frame
            return
        yield pickle.loads(body)


def main() -> int:
    """The sender process: frames of records from stdin, events to the file or endpoint; how many
    records were dealt with, to stdout."""
    config = json.loads(os.environ.pop(_ENV))
    folder = outbox_folder(Path(config["home"]))
    folder.mkdir(parents=True, exist_ok=True)
    # Its pipeline's terminal may be gone: what it has to say goes to a file beside the outbox.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(process)d %(message)s",
                        filename=folder.parent / "sender.log")
    render = EventRenderer(config["namespace"]).render
    report_lock = threading.Lock()

    def report(n: int) -> None:
        with report_lock:
            try:
                sys.stdout.write(f"{n}\n")
                sys.stdout.flush()
            except (OSError, ValueError):  # the pipeline's process is gone: nobody waits for the count
                pass

    if config["file"]:
        transport = FileTransport(config["file"])
        for items in _frames(sys.stdin.buffer):
            lines = rendered(items, render)
            try:
                if lines:
                    transport.send(lines)
            except OSError as exc:
                log.warning("OpenLineage: %d event(s) could not be written to %s: %s", len(lines), transport, exc)
            report(len(items))
        return 0
    from headrace.lineage.transport_http import HttpDispatcher, HttpTransport, Outbox

    http = HttpTransport(config["url"], api_key=config["api_key"], connect_timeout=min(2.0, config["timeout"]),
                         read_timeout=config["timeout"])
    dispatcher = HttpDispatcher(http, Outbox(folder), **config["options"])
    dispatcher.on_handled = report
    for items in _frames(sys.stdin.buffer):
        lines = [line.replace("\n", " ") for line in rendered(items, render)]
        if len(lines) < len(items):  # not built (logged): dealt with
            report(len(items) - len(lines))
        for line in lines:
            dispatcher.put(line)
    dispatcher.close(EXIT_BUDGET)
    return 0


if __name__ == "__main__":
    sys.exit(main())
