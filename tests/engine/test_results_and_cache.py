"""Result persistence and caching by input hash, with expiry and across processes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from headrace import flow, run_flow, task, task_input_hash
from headrace.engine import results
from headrace.errors import ResultError
from headrace.store import get_store


def _task_rows() -> list[dict[str, Any]]:
    run = get_store().list_flow_runs(limit=1)[0]
    return get_store().list_task_runs(run["id"])


def test_cached_results_are_returned_without_running_the_body() -> None:
    calls: list[str] = []

    @task(cache_key_fn=task_input_hash, cache_expiration=timedelta(hours=1))
    def extract(day: str) -> dict[str, Any]:
        calls.append(day)
        return {"day": day, "rows": [1, 2, 3]}

    @flow
    def pipeline(day: str) -> dict[str, Any]:
        return extract(day)

    first = pipeline("2024-01-01")
    second = pipeline("2024-01-01")
    other = pipeline("2024-01-02")
    assert first == second == {"day": "2024-01-01", "rows": [1, 2, 3]}
    assert other["day"] == "2024-01-02"
    assert calls == ["2024-01-01", "2024-01-02"]
    runs = get_store().list_flow_runs(limit=3)
    states = [get_store().list_task_runs(r["id"])[0]["state_name"] for r in reversed(runs)]
    assert states == ["Completed", "Cached", "Completed"]


def test_cache_expiry_is_honoured_with_a_fake_clock() -> None:
    calls: list[int] = []
    clock = {"now": datetime(2024, 1, 1, 6, tzinfo=UTC)}

    @task(cache_key_fn=task_input_hash, cache_expiration=timedelta(minutes=30))
    def fetch() -> int:
        calls.append(1)
        return len(calls)

    @flow
    def pipeline() -> int:
        return fetch()

    def run() -> Any:
        return run_flow(pipeline, {}, now=lambda: clock["now"]).result()

    assert run() == 1
    clock["now"] += timedelta(minutes=29)
    assert run() == 1
    clock["now"] += timedelta(minutes=2)
    assert run() == 2


def test_dataframes_persist_as_parquet_and_come_back_equal() -> None:
    frame = pd.DataFrame({"id": [1, 2], "revenue": [10.5, None], "region": ["N", "S"]})

    @task(cache_key_fn=task_input_hash)
    def build(n: int) -> pd.DataFrame:
        return frame.head(n)

    @flow
    def pipeline() -> pd.DataFrame:
        return build(2)

    pipeline()
    ref = json.loads(_task_rows()[0]["result"])
    assert ref["kind"] == "parquet" and Path(ref["path"]).exists()
    cached = pipeline()
    assert _task_rows()[0]["state_name"] == "Cached"
    pd.testing.assert_frame_equal(cached, frame)


def test_json_values_round_trip_exactly() -> None:
    value = {"t": (1, "a"), "d": datetime(2024, 1, 2, 3, tzinfo=UTC), "l": [1.5, None, True],
             "nan": float("nan")}
    back = results.load(results.persist(value) or "")
    assert back["t"] == (1, "a") and back["d"] == value["d"] and back["l"] == [1.5, None, True]
    assert back["nan"] != back["nan"]


def test_a_result_that_cannot_be_persisted_fails_with_a_clear_error() -> None:
    class Connection:
        pass

    @task(persist_result=True)
    def connect() -> Connection:
        return Connection()

    @flow
    def pipeline() -> None:
        connect()

    state = pipeline(return_state=True)
    assert state.is_failed()
    assert "result_serializer='pickle'" in (state.message or "")
    assert _task_rows()[0]["state_name"] == "Failed"
    with pytest.raises(ResultError):
        results.persist(Connection())


def test_pickles_only_on_request_and_only_when_signed_by_this_home(tmp_path: Path) -> None:
    ref = results.persist({1, 2, 3} and object.__new__(_Thing), serializer="pickle")
    assert ref is not None and isinstance(results.load(ref), _Thing)
    path = Path(json.loads(ref)["path"])
    path.write_bytes(path.read_bytes() + b"tampered")
    with pytest.raises(ResultError, match="not written by this headrace home"):
        results.load(ref)


class _Thing:
    pass


def test_cache_hits_across_processes(tmp_path: Path, headrace_home: Path) -> None:
    script = tmp_path / "cached_flow.py"
    counter = tmp_path / "calls.txt"
    script.write_text(textwrap.dedent(f"""
        from headrace import flow, task, task_input_hash

        @task(cache_key_fn=task_input_hash)
        def expensive(x: int) -> int:
            with open({str(counter)!r}, "a") as fh:
                fh.write("x")
            return x * 10

        @flow
        def main() -> None:
            print(expensive(4))

        if __name__ == "__main__":
            main()
    """))
    env = {"HEADRACE_HOME": str(headrace_home), "PATH": "/usr/bin:/bin"}
    outs = [subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                           check=True).stdout.strip() for _ in range(2)]
    assert outs == ["40", "40"]
    assert counter.read_text() == "x"
