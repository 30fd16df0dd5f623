"""The sleeping loops, on slots that are already due (nothing waits for a schedule)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from headrace.schedule import CronSchedule, Deployment
from headrace.schedule.service import serve
from headrace.schedule.worker import sleep_seconds
from headrace.store import utcnow

from .conftest import T0


def test_serve_runs_a_due_slot_and_stops_on_request(store, flow_file) -> None:
    Deployment(flow_file.load(), "due", schedule=CronSchedule("* * * * *")).apply(now=utcnow() - timedelta(minutes=2))
    stop = threading.Event()
    thread = threading.Thread(target=serve, args=(store,), kwargs={"stop": stop}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not store.list_flow_runs(state="Completed"):
        time.sleep(0.05)  # waiting for the run's work to finish, not for a schedule
    stop.set()
    thread.join(15)
    assert not thread.is_alive()
    done = store.list_flow_runs(state="Completed")
    assert len(done) == 1 and done[0]["worker"]
    skipped = store.list_flow_runs(state="Cancelled")
    assert all("catchup=False" in r["state_message"] for r in skipped)


def test_an_idle_worker_sleeps_until_the_next_run_is_due() -> None:
    poll = timedelta(seconds=2)
    assert sleep_seconds(T0 + timedelta(milliseconds=300), T0, poll) == 0.3
    assert sleep_seconds(T0 + timedelta(hours=1), T0, poll) == 2.0
    assert sleep_seconds(None, T0, poll) == 2.0
    assert sleep_seconds(T0 - timedelta(seconds=5), T0, poll) == 0.0
