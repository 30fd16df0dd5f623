"""OpenLineage over HTTP from a sender process, so the POSTs' CPU time is not the pipeline's.

Marquez takes one event per POST, and a POST costs tens of microseconds of Python (bench/lineage.py):
two per task would double a small task's cost if they ran beside the engine under one
interpreter lock. So the pipeline's process only renders each event and writes it to a pipe;
a sender process (``python -m headrace.lineage.transport_sender``, started with the first event)
POSTs them with ``HttpDispatcher``: retries, backoff, the outbox. It reports how many events it
dealt with on its stdout (``drain`` waits on that). When the pipeline's process ends, the pipe
closes; the sender keeps trying for at most ``EXIT_BUDGET`` seconds, keeps the rest in the
outbox and exits, so the pipeline itself never waits at exit. The sender logs to
``HEADRACE_HOME/openlineage/sender.log``. The settings travel in the
sender's environment, never on its command line (where ``ps`` would show them).
"""

from __future__ import annotations

import collections
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from headrace.lineage.transport import BATCH, outbox_folder, rendered

log = logging.getLogger("headrace.lineage")

EXIT_BUDGET = 5.0  # seconds the sender keeps trying after the pipeline's process is gone
_ENV = "HEADRACE_OPENLINEAGE_SENDER"


class _Sender:
    """One sender process, and the events written to it that it has not yet said it dealt with."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.unacked: collections.deque[str] = collections.deque()


class SenderProcessDispatcher:
    """Hands events to a sender process through a pipe; see the module's docstring."""

    def __init__(self, url: str, home: Path, *, api_key: str | None = None, timeout: float = 5.0,
                 interval: float = 0.2, **options: Any) -> None:
        from headrace.lineage.transport_http import lineage_endpoint
        from headrace.secrets import redact

        self.where = redact(lineage_endpoint(url))
        self.render: Callable[[Any], str] = str
        self._config: dict[str, Any] = {"url": url, "home": str(home), "api_key": api_key, "timeout": timeout,
                                        "options": options}
        self.interval = interval
        self._queue: collections.deque[Any] = collections.deque()
        self._lock = threading.Lock()
        self._acked = threading.Condition()
        self._written = self._handled = 0
        self._wake, self._stop = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        self._current: _Sender | None = None

    def put(self, item: Any) -> None:
        self._queue.append(item)
        if self._thread is None:
            self._start()
        elif len(self._queue) >= BATCH:
            self._wake.set()

    def flush(self) -> None:
        self._wake.set()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True, name="headrace-openlineage-pipe")
                self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            self.deliver()

    def deliver(self) -> None:
        """Render what is queued and write it to the sender (in this thread)."""
        with self._lock:
            lines = rendered([self._queue.popleft() for _ in range(len(self._queue))], self.render)
            if not lines:
                return
            data = ("\n".join(line.replace("\n", " ") for line in lines) + "\n").encode("utf-8")
            try:
                sender = self._sender()
            except OSError as exc:  # no process could be started: keep the events on disk
                from headrace.lineage.transport_http import Outbox

                Outbox(outbox_folder(Path(self._config["home"]))).keep(lines)
                log.warning("OpenLineage: no sender process (%s); %d event(s) kept in the outbox", exc, len(lines))
                return
            with self._acked:  # before the write: the sender may answer at once
                sender.unacked.extend(lines)
                self._written += len(lines)
            try:
                assert sender.proc.stdin is not None
                sender.proc.stdin.write(data)
                sender.proc.stdin.flush()
            except OSError as exc:  # the sender died: what it had not dealt with is kept on disk
                self._keep_unacked(sender, f"the sender process stopped ({exc})")
                self._current = None

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
            threading.Thread(target=self._read_acks, args=(current,), daemon=True,
                             name="headrace-openlineage-acks").start()
        return current

    def _read_acks(self, sender: _Sender) -> None:
        """Count what the sender dealt with; when it ends, keep on disk what it had not (killed, crashed)."""
        assert sender.proc.stdout is not None
        for line in sender.proc.stdout:
            with self._acked:
                for _ in range(min(int(line), len(sender.unacked))):
                    sender.unacked.popleft()
                self._handled += int(line)
                self._acked.notify_all()
        self._keep_unacked(sender, f"the sender process ended with exit code {sender.proc.wait()}")

    def _keep_unacked(self, sender: _Sender, why: str) -> None:
        from headrace.lineage.transport_http import Outbox

        with self._acked:
            left = list(sender.unacked)
            sender.unacked.clear()
            self._handled += len(left)
            self._acked.notify_all()
        if left:
            Outbox(outbox_folder(Path(self._config["home"]))).keep(left)
            log.warning("OpenLineage: %s; %d event(s) it had not sent are kept in the outbox", why, len(left))

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait up to ``timeout`` s until the sender has sent (or kept) every event emitted so far."""
        self.deliver()
        with self._acked:
            return self._acked.wait_for(lambda: self._handled >= self._written, timeout)

    def close(self, timeout: float | None = None) -> None:
        """Hand the sender what is left and close its pipe; wait up to ``timeout`` s (default: not at
        all) for it to finish sending, or keeping the rest on disk."""
        self._stop.set()
        self._wake.set()
        self.deliver()
        sender = self._current
        proc = sender.proc if sender is not None else None
        if proc is None or proc.stdin is None:
            return
        try:
            proc.stdin.close()
        except OSError:
            pass
        if timeout:
            self.wait(timeout)

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


def main() -> int:
    """The sender process: lines from stdin to the endpoint; how many were dealt with, to stdout."""
    from headrace.lineage.transport_http import HttpDispatcher, HttpTransport, Outbox

    config = json.loads(os.environ.pop(_ENV))
    folder = outbox_folder(Path(config["home"]))
    folder.mkdir(parents=True, exist_ok=True)
    # Its pipeline's terminal may be gone: what it has to say goes to a file beside the outbox.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(process)d %(message)s",
                        filename=folder.parent / "sender.log")
    transport = HttpTransport(config["url"], api_key=config["api_key"], connect_timeout=min(2.0, config["timeout"]),
                              read_timeout=config["timeout"])
    dispatcher = HttpDispatcher(transport, Outbox(folder), **config["options"])
    report_lock = threading.Lock()

    def report(n: int) -> None:
        with report_lock:
            try:
                sys.stdout.write(f"{n}\n")
                sys.stdout.flush()
            except (OSError, ValueError):  # the pipeline's process is gone: nobody waits for the count
                pass

    dispatcher.on_handled = report
    for raw in sys.stdin.buffer:
        line = raw.decode("utf-8").rstrip("\n")
        if line:
            dispatcher.put(line)
    dispatcher.close(EXIT_BUDGET)
    return 0


if __name__ == "__main__":
    sys.exit(main())
