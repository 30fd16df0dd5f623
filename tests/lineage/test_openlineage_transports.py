"""OpenLineage transports against real endpoints: HTTP servers on 127.0.0.1 that accept, answer 500
then 200, hang, or reject; a port that refuses; a file written by many processes at once.

The promise under test: a pipeline never waits on the endpoint beyond a bounded time, and no
event is lost: what cannot be sent is kept in the outbox under HEADRACE_HOME and sent by the
next run or by ``headrace lineage send``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from openlineage_schemas import validate_event, validate_lines

from headrace import flow, task
from headrace.lineage.openlineage import close_emitters, emitter_from_env
from headrace.lineage.transport import ConsoleTransport, FileTransport, outbox_folder
from headrace.lineage.transport_http import HttpDispatcher, HttpTransport, Outbox


class LineageServer:
    """A real HTTP server taking OpenLineage events; ``mode`` says how it answers."""

    def __init__(self, mode: str = "accept", failures: int = 0) -> None:
        self.mode, self.failures = mode, failures
        self.accepted: list[dict[str, Any]] = []
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.requests.append((self.path, dict(self.headers)))
                code = server.answer()
                if code is None:  # hang: no answer until the test releases it
                    server.release.wait(30)
                    return
                if code == 200:
                    server.accepted.append(json.loads(body))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def answer(self) -> int | None:
        if self.mode == "hang":
            return None
        if self.mode == "reject":
            return 400
        if self.mode == "flaky" and self.failures > 0:
            self.failures -= 1
            return 500
        return 200

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers() -> Iterator[list[LineageServer]]:
    made: list[LineageServer] = []
    yield made
    close_emitters()
    for server in made:
        server.stop()


def serve(servers: list[LineageServer], mode: str = "accept", failures: int = 0) -> LineageServer:
    server = LineageServer(mode, failures)
    servers.append(server)
    return server


def refused_url() -> str:
    """A loopback port nobody listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@task
def step(i: int) -> int:
    return i


@flow(name="shipped")
def shipped(n: int = 3) -> int:
    return sum(step(i) for i in range(n))


def kept(home: Path) -> list[str]:
    outbox = outbox_folder(home)
    files = sorted(outbox.glob("*.ndjson")) if outbox.is_dir() else []
    return [line for f in files if f.name != "rejected.ndjson" for line in f.read_text().splitlines() if line]


# -- HTTP -----------------------------------------------------------------------------------------------------

def test_an_accepting_endpoint_gets_every_event_as_marquez_takes_them(servers: list[LineageServer],
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      headrace_home: Path) -> None:
    server = serve(servers)
    monkeypatch.setenv("HEADRACE_OPENLINEAGE_URL", server.url)
    assert shipped() == 3
    close_emitters(timeout=60)  # wait for delivery however loaded the machine (the exit bound is tested below)
    assert [(e["eventType"], e["job"]["name"]) for e in server.accepted] == [
        ("START", "shipped"), ("START", "shipped.step"), ("COMPLETE", "shipped.step"), ("START", "shipped.step"),
        ("COMPLETE", "shipped.step"), ("START", "shipped.step"), ("COMPLETE", "shipped.step"), ("COMPLETE", "shipped")]
    for event in server.accepted:
        validate_event(event)
    assert {path for path, _ in server.requests} == {"/api/v1/lineage"}
    assert all(h["Content-Type"] == "application/json" for _, h in server.requests)
    assert kept(headrace_home) == []


def test_an_api_key_is_sent_as_a_bearer_token_and_never_logged(servers: list[LineageServer],
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 headrace_home: Path) -> None:
    server = serve(servers, "reject")
    monkeypatch.setenv("HEADRACE_OPENLINEAGE_URL", server.url)
    monkeypatch.setenv("HEADRACE_OPENLINEAGE_API_KEY", "key-Hq7-secret-value")
    shipped(1)
    close_emitters(timeout=60)
    assert {h["Authorization"] for _, h in server.requests} == {"Bearer key-Hq7-secret-value"}
    said = (headrace_home / "openlineage" / "sender.log").read_text()  # the sender process's log
    assert "rejected an event" in said and "key-Hq7" not in said
    assert len((outbox_folder(headrace_home) / "rejected.ndjson").read_text().splitlines()) == 4


def test_500_then_200_is_retried_with_backoff_and_nothing_is_kept(servers: list[LineageServer],
                                                                   tmp_path: Path) -> None:
    server = serve(servers, "flaky", failures=3)
    dispatcher = HttpDispatcher(HttpTransport(server.url), Outbox(tmp_path / "outbox"), backoff=0.01,
                                exit_wait=10)
    for i in range(5):
        dispatcher.put(json.dumps({"n": i}))
    dispatcher.close()
    assert [e["n"] for e in server.accepted] == [0, 1, 2, 3, 4]
    assert len(server.requests) == 8  # three answered 500, each retried
    assert not list((tmp_path / "outbox").glob("*.ndjson"))


def test_a_hanging_endpoint_costs_the_pipeline_a_bounded_time_then_the_cli_sends_what_was_kept(
        servers: list[LineageServer], monkeypatch: pytest.MonkeyPatch, headrace_home: Path) -> None:
    from headrace.cli import main

    hanging = serve(servers, "hang")
    monkeypatch.setenv("HEADRACE_OPENLINEAGE_URL", hanging.url)
    monkeypatch.setenv("HEADRACE_OPENLINEAGE_TIMEOUT", "0.5")
    started = time.perf_counter()
    assert shipped() == 3
    flow_time = time.perf_counter() - started
    emitter = emitter_from_env()
    assert emitter is not None
    started = time.perf_counter()
    close_emitters()  # what a process's exit does: hand the rest to the sender process, not wait for it
    exit_time = time.perf_counter() - started
    # Waiting on the endpoint would cost 8 events x 0.5 s timeout x 5 tries; the flow waits on none of it,
    # nor does closing (margins: a shared, loaded test machine).
    assert flow_time < 2.0, f"the flow waited {flow_time:.2f} s on a hanging endpoint"
    assert exit_time < 1.0, f"closing waited {exit_time:.2f} s"
    assert emitter.dispatcher.wait(30)  # type: ignore[attr-defined]  # the sender gives up within its budget
    assert len(kept(headrace_home)) == 8 and hanging.accepted == []
    good = serve(servers)
    assert main(["lineage", "send", "--url", good.url]) == 0
    assert [e["eventType"] for e in good.accepted] == ["START", *["START", "COMPLETE"] * 3, "COMPLETE"]
    for event in good.accepted:
        validate_event(event)
    assert kept(headrace_home) == []


def test_a_killed_sender_process_loses_no_event(servers: list[LineageServer], monkeypatch: pytest.MonkeyPatch,
                                               headrace_home: Path) -> None:
    import signal

    hanging = serve(servers, "hang")  # the sender holds the events, busy with the first one
    monkeypatch.setenv("HEADRACE_OPENLINEAGE_URL", hanging.url)
    assert shipped() == 3
    emitter = emitter_from_env()
    assert emitter is not None
    dispatcher: Any = emitter.dispatcher
    dispatcher.deliver()
    deadline = time.monotonic() + 30
    while not hanging.requests and time.monotonic() < deadline:  # it is sending the first event now
        time.sleep(0.05)
    os.kill(dispatcher.sender_pid, signal.SIGKILL)
    assert emitter.drain(30)  # every event is accounted for: the dead sender's are kept on disk
    assert len(kept(headrace_home)) == 8
    good = serve(servers)
    monkeypatch.setenv("HEADRACE_OPENLINEAGE_URL", good.url)
    shipped(1)
    close_emitters(timeout=60)
    names = [e["job"]["name"] for e in good.accepted]
    assert names.count("shipped") == 4 and names.count("shipped.step") == 8  # 8 kept + 4 new events
    assert kept(headrace_home) == []


def test_a_rejected_event_is_set_aside_not_resent(servers: list[LineageServer], tmp_path: Path) -> None:
    server = serve(servers, "reject")
    outbox = Outbox(tmp_path / "outbox")
    dispatcher = HttpDispatcher(HttpTransport(server.url), outbox, backoff=0.01)
    dispatcher.put('{"bad": true}')
    dispatcher.close()
    assert len(server.requests) == 1  # a 400 is not retried
    assert (tmp_path / "outbox" / "rejected.ndjson").read_text() == '{"bad": true}\n'
    assert outbox.count() == 0


def test_events_kept_by_a_sender_that_died_are_sent(servers: list[LineageServer], tmp_path: Path) -> None:
    server = serve(servers)
    folder = tmp_path / "outbox"
    folder.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (folder / f"0001-1-abc.ndjson.sending-{int(dead.stdout)}").write_text('{"n": 1}\n{"n": 2}\n')
    (folder / f"0002-1-abc.ndjson.sending-{os.getppid()}").write_text('{"n": 3}\n')  # a live sender's: not taken
    sent, left = Outbox(folder).send(HttpTransport(server.url).post)
    assert (sent, [e["n"] for e in server.accepted]) == (2, [1, 2])
    assert left == 0 and [p.name for p in folder.iterdir()] == [f"0002-1-abc.ndjson.sending-{os.getppid()}"]


CHILD = textwrap.dedent("""
    import json, sys, time
    from headrace import flow, task

    @task
    def step(i):
        return i

    @flow(name="child-flow")
    def child_flow():
        return sum(step(i) for i in range(3))

    started = time.perf_counter()
    child_flow()
    print(json.dumps({"flow_seconds": time.perf_counter() - started}))
""")


def test_a_refusing_endpoint_keeps_the_events_and_the_next_run_sends_them(servers: list[LineageServer],
                                                                           tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch,
                                                                           headrace_home: Path) -> None:
    script = tmp_path / "child_flow.py"
    script.write_text(CHILD)
    env = {**os.environ, "HEADRACE_OPENLINEAGE_URL": refused_url(), "HEADRACE_HOME": str(headrace_home)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    process_time = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    # Retrying each event in the flow would take 7.5 s of backoff per event; the flow takes none of it.
    assert json.loads(done.stdout.splitlines()[-1])["flow_seconds"] < 3.0
    assert process_time < 15, f"the process took {process_time:.1f} s"  # import + run; exit waits for nothing
    # The sender process outlives the pipeline's by at most its budget, then keeps what it could not send.
    deadline = time.monotonic() + 30
    while len(kept(headrace_home)) < 8 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(kept(headrace_home)) == 8
    assert "kept in" in (headrace_home / "openlineage" / "sender.log").read_text()
    validate_lines("\n".join(kept(headrace_home)))
    server = serve(servers)
    monkeypatch.setenv("HEADRACE_OPENLINEAGE_URL", server.url)
    shipped(1)
    close_emitters(timeout=60)
    names = [e["job"]["name"] for e in server.accepted]
    assert names.count("child-flow") == 2 and names.count("child-flow.step") == 6 and names.count("shipped") == 2
    assert kept(headrace_home) == []


def test_lineage_send_says_what_is_left_when_the_endpoint_is_still_down(headrace_home: Path) -> None:
    from headrace.cli import main

    Outbox(outbox_folder(headrace_home)).keep(['{"n": 1}'])
    assert main(["lineage", "send", "--url", refused_url()]) == 1
    assert len(kept(headrace_home)) == 1


# -- file and console ------------------------------------------------------------------------------------------

WRITER = textwrap.dedent("""
    import json, sys
    from headrace.lineage.transport import FileTransport

    path, who = sys.argv[1], int(sys.argv[2])
    transport = FileTransport(path)
    for batch in range(40):
        size = 200_000 if batch % 10 == 0 else 50   # some batches far past one pipe buffer
        transport.send([json.dumps({"who": who, "batch": batch, "line": i, "pad": "x" * size}) for i in range(3)])
""")


def test_the_file_transport_never_interleaves_concurrent_writers(tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    procs = [subprocess.Popen([sys.executable, str(script), str(path), str(who)]) for who in range(4)]
    transport = FileTransport(path)

    def threads_write(who: int) -> None:
        for batch in range(40):
            transport.send([json.dumps({"who": who, "batch": batch, "line": i, "pad": "y" * 70_000})
                            for i in range(3)])

    workers = [threading.Thread(target=threads_write, args=(who,)) for who in (10, 11)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert all(p.wait(60) == 0 for p in procs)
    records = [json.loads(line) for line in path.read_text().splitlines()]  # every line whole
    assert len(records) == 6 * 40 * 3
    for who in (0, 1, 2, 3, 10, 11):
        mine = [(r["batch"], r["line"]) for r in records if r["who"] == who]
        assert mine == [(b, i) for b in range(40) for i in range(3)]  # each writer's order kept


def test_the_file_transport_takes_a_file_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "deep" / "folder" / "ol events.ndjson"
    monkeypatch.setenv("HEADRACE_OPENLINEAGE_URL", path.as_uri())
    shipped(2)
    close_emitters()
    assert len(validate_lines(path.read_text())) == 6


def test_a_killed_file_sender_loses_no_event_and_the_pipeline_builds_them_itself(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import signal

    path = tmp_path / "events.ndjson"
    monkeypatch.setenv("HEADRACE_OPENLINEAGE_URL", path.as_uri())
    shipped(1)
    emitter = emitter_from_env()
    assert emitter is not None and emitter.drain(30)  # the sender runs and wrote the first 4 events
    dispatcher: Any = emitter.dispatcher
    assert len(validate_lines(path.read_text())) == 4
    os.kill(dispatcher.sender_pid, signal.SIGSTOP)  # it will never read what comes next
    try:
        shipped(3)
        dispatcher.deliver()  # 8 records in the pipe, not confirmed
    finally:
        os.kill(dispatcher.sender_pid, signal.SIGKILL)
    assert emitter.drain(30)  # the pipeline wrote the 8 itself
    events = validate_lines(path.read_text())
    assert len(events) == 12
    runs: dict[str, list[str]] = {}
    for event in events:
        runs.setdefault(event["run"]["runId"], []).append(event["eventType"])
    assert all(types[0] == "START" and len(types) == 2 for types in runs.values()), runs
    shipped(1)  # a new sender takes over
    close_emitters()
    assert len(validate_lines(path.read_text())) == 16


def test_exit_waits_at_most_the_bound_for_a_stuck_file_sender(monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    import signal

    from headrace.lineage.transport_sender import SenderProcessDispatcher

    path = tmp_path / "events.ndjson"
    dispatcher = SenderProcessDispatcher(path.as_uri(), tmp_path, exit_wait=0.5)
    dispatcher.put('{"n": 0}')
    assert dispatcher.drain(30)
    os.kill(dispatcher.sender_pid or 0, signal.SIGSTOP)  # stuck: it writes nothing more
    for i in range(1, 4):
        dispatcher.put(json.dumps({"n": i}))
    started = time.perf_counter()
    dispatcher.close()
    took = time.perf_counter() - started
    assert took < 5.0, f"closing waited {took:.2f} s for a 0.5 s bound"
    assert [json.loads(line)["n"] for line in path.read_text().splitlines()] == [0, 1, 2, 3]


def test_console_prints_one_event_per_line(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HEADRACE_OPENLINEAGE_URL", "console")
    shipped(1)
    close_emitters()
    out = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [json.loads(line)["eventType"] for line in out] == ["START", "START", "COMPLETE", "COMPLETE"]
    validate_lines("\n".join(out))


def test_a_console_transport_object_writes_what_it_is_given(capsys: pytest.CaptureFixture[str]) -> None:
    ConsoleTransport().send(['{"a": 1}', '{"b": 2}'])
    assert capsys.readouterr().out == '{"a": 1}\n{"b": 2}\n'
