"""Futures, runners, timeouts, concurrency limits and the ETLPipeline style."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from headrace import ETLPipeline, PipelineRun, ProcessPoolTaskRunner, flow, task, unmapped
from headrace.errors import ParameterError
from headrace.store import get_store


@task
def square(x: int) -> int:
    return x * x


@task
def add(x: int, y: int) -> int:
    return x + y


@task(timeout_seconds=0.5)
def sleeps_then_writes(path: str) -> None:
    Path(path + ".pid").write_text(str(os.getpid()))
    time.sleep(5)
    Path(path).write_text("the body outlived its timeout")


@task
def pid() -> int:
    return os.getpid()


def test_submit_map_and_futures_as_arguments() -> None:
    @flow
    def fan_out() -> list[int]:
        squares = square.map([1, 2, 3, 4])
        total = add.submit(squares[0], squares[3])
        shifted = add.map([1, 2], unmapped(10))
        assert total.result() == 17
        return [f.result() for f in squares] + shifted.result()

    assert fan_out() == [1, 4, 9, 16, 11, 12]
    run = get_store().list_flow_runs(limit=1)[0]
    keys = sorted(t["task_key"] for t in get_store().list_task_runs(run["id"]))
    assert keys == ["add-0", "add-1", "add-2", "square-0", "square-1", "square-2", "square-3"]


def test_a_failed_upstream_fails_its_downstream_without_running_it() -> None:
    ran: list[int] = []

    @task
    def broken() -> int:
        raise ValueError("bad extract")

    @task
    def downstream(x: int) -> None:
        ran.append(x)

    @flow
    def pipeline() -> None:
        downstream.submit(broken.submit())

    state = pipeline(return_state=True)
    assert state.is_failed() and ran == []
    run = get_store().list_flow_runs(limit=1)[0]
    rows = {t["task_name"]: t for t in get_store().list_task_runs(run["id"])}
    assert rows["downstream"]["state_name"] == "Failed"
    assert "upstream task 'broken'" in rows["downstream"]["state_message"]


def test_map_rejects_iterables_of_different_lengths() -> None:
    @flow
    def pipeline() -> None:
        add.map([1, 2], [1, 2, 3])

    with pytest.raises(ParameterError, match="different lengths"):
        pipeline()


def test_task_timeout_is_a_failed_attempt_that_retries() -> None:
    calls: list[int] = []

    @task(timeout_seconds=0.2, retries=1)
    def hangs() -> None:
        calls.append(1)
        time.sleep(2)

    @flow
    def pipeline() -> None:
        hangs()

    started = time.perf_counter()
    state = pipeline(return_state=True)
    assert time.perf_counter() - started < 1.5
    assert state.is_failed() and len(calls) == 2
    run = get_store().list_flow_runs(limit=1)[0]
    (tr,) = get_store().list_task_runs(run["id"])
    assert tr["state_name"] == "TimedOut" and tr["attempts"] == 2


def test_process_runner_runs_bodies_elsewhere_and_terminates_timed_out_ones(tmp_path: Path) -> None:
    marker = tmp_path / "marker"

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
    def pipeline() -> tuple[int, int]:
        futures = [pid.submit(), square.submit(7)]
        timed = sleeps_then_writes.submit(str(marker))
        assert timed.wait() is not None and timed.state.name == "TimedOut"
        return futures[0].result(), futures[1].result()

    state = pipeline(return_state=True)
    child_pid, value = state.result(raise_on_failure=False) if state.is_completed() else (0, 0)
    assert state.is_completed(), state.message
    assert value == 49 and child_pid != os.getpid()
    body_pid = int(Path(str(marker) + ".pid").read_text())
    with pytest.raises(ProcessLookupError):  # the timed-out body was terminated, not left running
        os.kill(body_pid, 0)
    assert not marker.exists()


def test_tag_concurrency_limits_hold_across_submitted_tasks() -> None:
    get_store().set_concurrency_limit("warehouse", 1)
    spans: list[tuple[float, float]] = []

    @task(tags=["warehouse"])
    def write(i: int) -> None:
        start = time.perf_counter()
        time.sleep(0.05)
        spans.append((start, time.perf_counter()))

    @flow
    def pipeline() -> None:
        futures = write.map(range(4))
        for f in futures:
            f.result()

    pipeline()
    spans.sort()
    assert len(spans) == 4
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:], strict=False))
    assert get_store().concurrency_usage() == {}  # every slot released


def test_a_slot_is_released_when_the_task_fails_or_times_out() -> None:
    get_store().set_concurrency_limit("db", 1)

    @task(tags=["db"], timeout_seconds=0.1)
    def stuck() -> None:
        time.sleep(1)

    @task(tags=["db"])
    def broken() -> None:
        raise RuntimeError("x")

    @flow
    def pipeline() -> None:
        stuck(return_state=True)
        broken(return_state=True)

    pipeline()
    assert get_store().concurrency_usage() == {}


# -- ETLPipeline --------------------------------------------------------------------------------
def _pipeline(fail_load: bool = False) -> tuple[ETLPipeline, list[Any]]:
    events: list[Any] = []
    p = ETLPipeline("sales")

    @p.extract
    def orders(start_date: str) -> pd.DataFrame:
        return pd.DataFrame({"order_id": [1, 2, 3], "qty": [1, 0, 2], "day": [start_date] * 3})

    @p.extract
    def refs() -> dict[str, Any]:
        return {"regions": ["N", "S"], "channels": ["web"]}

    @p.transform
    def clean(data: dict[str, Any]) -> pd.DataFrame:
        df = data["orders"]
        return df[df.qty > 0]

    @p.load
    def save(df: pd.DataFrame) -> int:
        if fail_load:
            raise OSError("warehouse is read-only")
        return len(df)

    @p.on_success
    def ok(run: PipelineRun) -> None:
        events.append(("success", run.status))

    @p.on_failure
    def failed(run: PipelineRun, error: BaseException) -> None:
        events.append(("failure", run.status, str(error)))

    @p.on_complete
    def done(run: PipelineRun) -> None:
        events.append(("complete", run.status))

    return p, events


def test_etl_pipeline_runs_its_stages_as_task_runs() -> None:
    p, events = _pipeline()
    run = p.run(start_date="2024-01-01")
    assert isinstance(run, PipelineRun)
    assert (run.pipeline_name, run.status, run.rows_extracted, run.rows_loaded) == ("sales", "success", 6, 2)
    assert run.errors == [] and run.started_at <= run.completed_at  # type: ignore[operator]
    assert run.metrics["rows_loaded"] == 2 and run.metrics["duration_seconds"] >= 0
    assert events == [("success", "success"), ("complete", "success")]
    stored = get_store().get_flow_run(run.run_id)
    assert stored["flow_name"] == "sales" and stored["state_name"] == "Completed"
    assert stored["rows_loaded"] == 2
    names = [t["task_name"] for t in get_store().list_task_runs(run.run_id)]
    assert names == ["orders", "refs", "clean", "save"]


def test_etl_pipeline_failure_calls_hooks_then_reraises() -> None:
    p, events = _pipeline(fail_load=True)
    with pytest.raises(OSError, match="read-only") as info:
        p.run(start_date="2024-01-01")
    run = info.value.pipeline_run  # type: ignore[attr-defined]
    assert run is p.last_run and run.status == "failed"
    assert run.errors and "read-only" in run.errors[0]
    assert events == [("failure", "failed", "warehouse is read-only"), ("complete", "failed")]
    assert get_store().get_flow_run(run.run_id)["state_name"] == "Failed"
