"""``async def`` flows and tasks, awaited the way the peer's users write them."""

from __future__ import annotations

import asyncio
import time

from headrace import flow, task
from headrace.store import get_store


@task
async def fetch(i: int) -> int:
    await asyncio.sleep(0.2)
    return i * 10


@task
def plain(x: int) -> int:
    return x + 1


@flow
async def gather_all(n: int) -> list[int]:
    values = await asyncio.gather(*(fetch(i) for i in range(n)))
    return [plain(v) for v in values]


def test_async_flow_and_tasks_run_concurrently_and_are_recorded() -> None:
    started = time.perf_counter()
    assert asyncio.run(gather_all(5)) == [1, 11, 21, 31, 41]
    assert time.perf_counter() - started < 0.9  # five 0.2 s awaits overlapped
    run = get_store().list_flow_runs(limit=1)[0]
    assert run["state_name"] == "Completed"
    assert len(get_store().list_task_runs(run["id"])) == 10


def test_async_task_submitted_from_a_sync_flow() -> None:
    @flow
    def sync_flow() -> int:
        return sum(f.result() for f in fetch.map([1, 2, 3]))

    assert sync_flow() == 60


def test_async_flow_failure_state() -> None:
    @flow
    async def broken() -> None:
        raise ValueError("async boom")

    state = asyncio.run(broken(return_state=True))
    assert state.is_failed() and "async boom" in (state.message or "")
