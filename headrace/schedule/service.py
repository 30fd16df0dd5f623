"""Running the scheduler, workers and extra components (the web app, later) in one process."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from headrace.schedule.scheduler import Scheduler
from headrace.schedule.worker import Worker

if TYPE_CHECKING:
    from headrace.store import RunStore

log = logging.getLogger("headrace.schedule")

Component = Callable[[threading.Event], None]

# Other parts (the web app) add a function here; `headrace serve` runs each in a
# thread and sets the event when it is time to stop.
SERVE_COMPONENTS: list[Component] = []


def run_once(store: RunStore, now: datetime, *, scheduler: bool = True, worker: bool = True) -> int:
    """One scheduler pass and one worker pass at ``now``; return the number of runs executed."""
    if scheduler:
        Scheduler(store).tick(now)
    if not worker:
        return 0
    w = Worker(store)
    done = 0
    while True:
        states = w.run_due(now)
        if not states:
            return done
        done += len(states)


def serve(
    store: RunStore,
    *,
    scheduler: bool = True,
    workers: int = 1,
    concurrency: int = 4,
    components: list[Component] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Run until SIGINT/SIGTERM (or ``stop``): scheduler, ``workers`` workers, extra components."""
    stop = stop or threading.Event()
    pool = [Worker(store, concurrency=concurrency) for _ in range(workers)]
    targets: list[tuple[str, Component]] = [(f"worker-{i}", w.serve) for i, w in enumerate(pool)]
    if scheduler:

        def wake_workers() -> None:  # runs just created may be due now
            for w in pool:
                w.wakeup.set()

        sched = Scheduler(store, on_created=wake_workers)
        targets.insert(0, ("scheduler", sched.serve))
    targets += [(getattr(c, "__name__", "component"), c) for c in (components or SERVE_COMPONENTS)]
    threads = [threading.Thread(target=fn, args=(stop,), name=f"headrace-{name}", daemon=True) for name, fn in targets]
    _on_signals(stop, pool)
    for thread in threads:
        thread.start()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        stop.set()
    for w in pool:
        w.wakeup.set()
    for thread in threads:
        thread.join(timeout=30)


def _on_signals(stop: threading.Event, workers: list[Worker]) -> None:
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, _frame: object) -> None:
        log.info("received signal %s; stopping after the runs in progress", signum)
        stop.set()
        for w in workers:
            w.wakeup.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
