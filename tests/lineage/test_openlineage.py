"""OpenLineage events of real runs: one START and one final event per flow run and task run, valid
against the official schemas, with the facets built from what the runs recorded.

Every test runs flows with ``HEADRACE_OPENLINEAGE_URL`` pointing at a file and validates every
line of it (``openlineage_schemas``). Task bodies record their datasets the way the lineage
recorders do: a ``DatasetIO`` appended to the running task's ``lineage`` list.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openlineage_schemas import validate_event, validate_lines

from headrace import ProcessPoolTaskRunner, flow, task
from headrace.engine.context import current_flow_run, current_task_run
from headrace.lineage import ColumnSource, DatasetIO, DatasetRef
from headrace.lineage.openlineage import close_emitters
from headrace.store import get_store

SALES = DatasetRef("postgres://db.example:5432", "dwh.public.sales")
FACT = DatasetRef("duckdb:///srv/warehouse.duckdb", "warehouse.main.fact_sales")
SECRET = "pw-Zq8!canary"


@pytest.fixture
def events_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "events" / "openlineage.ndjson"
    monkeypatch.setenv("HEADRACE_OPENLINEAGE_URL", path.as_uri())
    monkeypatch.delenv("HEADRACE_OPENLINEAGE_NAMESPACE", raising=False)
    yield path
    close_emitters()


def read_events(path: Path) -> list[dict[str, Any]]:
    close_emitters()  # what is queued is written
    return validate_lines(path.read_text()) if path.exists() else []


def by_job(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        out.setdefault(e["job"]["name"], []).append(e)
    return out


def assert_one_start_one_end(events: list[dict[str, Any]]) -> None:
    """The spec's rule: each run has one START and then exactly one of COMPLETE, FAIL, ABORT."""
    runs: dict[str, list[str]] = {}
    for e in events:
        runs.setdefault(e["run"]["runId"], []).append(e["eventType"])
    for run_id, types in runs.items():
        assert types[0] == "START" and len(types) == 2 and types[1] in ("COMPLETE", "FAIL", "ABORT"), (run_id, types)


def record(io: DatasetIO) -> None:
    ctx = current_task_run() or current_flow_run()
    assert ctx is not None
    ctx.lineage.append(io)


# -- module-level tasks: the process runner pickles them by name ------------------------------------

@task
def extract(day: str) -> int:
    record(DatasetIO(SALES, "input", rows=3, schema=[("order_id", "BIGINT"), ("amount", "DECIMAL")],
                     sql="SELECT order_id, amount FROM sales WHERE day = :day",
                     metrics={"rowCount": 3, "columnMetrics": {"amount": {"nullCount": 0, "min": 1.0, "max": 9.5}}}))
    return 3


@task
def load(rows: int) -> int:
    record(DatasetIO(FACT, "output", rows=rows, bytes=4096, schema=[("order_id", "BIGINT"), ("total", "DECIMAL")],
                     column_lineage={"order_id": [ColumnSource(SALES, "order_id")],
                                     "total": [ColumnSource(SALES, "amount", "DIRECT", "AGGREGATION")]},
                     assertions=[{"assertion": "column_values_to_not_be_null", "column": "order_id", "success": True},
                                 {"assertion": "table_row_count_to_be_between", "success": False}]))
    return rows


@task
def explode(token: str) -> int:
    raise ConnectionError(f"could not reach postgresql://etl:{token}@db:5432/dwh (password={token})")


@flow(name="sales-etl")
def sales_etl(day: str) -> int:
    return load(extract(day))


@flow(name="sales-etl-processes", task_runner=ProcessPoolTaskRunner(max_workers=1))
def sales_etl_processes(day: str) -> int:
    return load.submit(extract.submit(day)).result()


# -- the events of one flow run ---------------------------------------------------------------------------

def test_a_flow_run_emits_valid_events_for_itself_and_each_task(events_file: Path) -> None:
    state = sales_etl("2024-03-01", return_state=True)
    assert state.is_completed()
    events = read_events(events_file)
    assert_one_start_one_end(events)
    jobs = by_job(events)
    assert sorted(jobs) == ["sales-etl", "sales-etl.extract", "sales-etl.load"]
    flow_run_id = str(uuid.UUID(state.run_id))
    assert [e["run"]["runId"] for e in jobs["sales-etl"]] == [flow_run_id, flow_run_id]
    assert all(e["job"]["namespace"] == "headrace" for e in events)
    stored = {str(uuid.UUID(t["id"])): t["task_name"] for t in get_store().list_task_runs(state.run_id)}
    for name in ("extract", "load"):
        for e in jobs[f"sales-etl.{name}"]:
            parent = e["run"]["facets"]["parent"]
            assert parent["run"]["runId"] == flow_run_id and parent["job"] == {
                "namespace": "headrace", "name": "sales-etl", "facets": {}}
            assert stored[e["run"]["runId"]] == name  # the task run's own id, as a UUID
    assert events[0]["eventType"] == "START" and events[0]["job"]["name"] == "sales-etl"
    assert events[-1]["eventType"] == "COMPLETE" and events[-1]["job"]["name"] == "sales-etl"


def test_task_events_carry_their_datasets_and_facets(events_file: Path) -> None:
    sales_etl("2024-03-01")
    jobs = by_job(read_events(events_file))
    done = jobs["sales-etl.extract"][1]
    assert done["eventType"] == "COMPLETE" and done["outputs"] == []
    (source,) = done["inputs"]
    assert (source["namespace"], source["name"]) == (SALES.namespace, SALES.name)
    assert [f["name"] for f in source["facets"]["schema"]["fields"]] == ["order_id", "amount"]
    assert source["facets"]["dataSource"]["uri"] == SALES.namespace
    assert source["inputFacets"]["dataQualityMetrics"]["columnMetrics"]["amount"] == {
        "nullCount": 0, "min": 1.0, "max": 9.5, "quantiles": {}}
    assert done["job"]["facets"]["sql"]["query"] == "SELECT order_id, amount FROM sales WHERE day = :day"
    location = done["job"]["facets"]["sourceCodeLocation"]
    assert location["path"] == os.path.abspath(__file__)
    assert location["url"] == f"{Path(__file__).resolve().as_uri()}#L{extract.fn.__code__.co_firstlineno}"
    loaded = jobs["sales-etl.load"][1]
    (out,) = loaded["outputs"]
    assert out["outputFacets"]["outputStatistics"]["rowCount"] == 3
    assert out["outputFacets"]["outputStatistics"]["size"] == 4096
    lineage = out["facets"]["columnLineage"]["fields"]
    assert lineage["total"]["inputFields"] == [{"namespace": SALES.namespace, "name": SALES.name, "field": "amount",
                                                "transformations": [{"type": "DIRECT", "subtype": "AGGREGATION"}]}]
    assertions = out["facets"]["dataQualityAssertions"]["assertions"]
    assert [(a["assertion"], a["success"]) for a in assertions] == [
        ("column_values_to_not_be_null", True), ("table_row_count_to_be_between", False)]
    assert "sql" not in loaded["job"]["facets"]
    checked = validate_event(loaded) | validate_event(done)
    assert {"schema", "columnLineage", "outputStatistics", "dataQualityAssertions", "dataQualityMetrics",
            "sql", "sourceCodeLocation", "parent"} <= checked  # each against its own official schema


def test_the_flow_event_carries_the_union_of_its_tasks_datasets(events_file: Path) -> None:
    sales_etl("2024-03-01")
    start, end = by_job(read_events(events_file))["sales-etl"]
    assert start["inputs"] == [] and start["outputs"] == []
    assert [(d["namespace"], d["name"]) for d in end["inputs"]] == [(SALES.namespace, SALES.name)]
    assert [(d["namespace"], d["name"]) for d in end["outputs"]] == [(FACT.namespace, FACT.name)]
    assert end["job"]["facets"]["jobType"]["jobType"] == "FLOW"
    assert "parent" not in end["run"]["facets"]


def test_the_process_runner_emits_in_the_parent_with_what_the_bodies_recorded(events_file: Path) -> None:
    state = sales_etl_processes("2024-03-02", return_state=True)
    assert state.is_completed(), state.message
    events = read_events(events_file)
    assert_one_start_one_end(events)
    jobs = by_job(events)
    assert jobs["sales-etl-processes.extract"][1]["inputs"][0]["name"] == SALES.name
    assert jobs["sales-etl-processes.load"][1]["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == 3
    assert len(jobs["sales-etl-processes"][1]["outputs"]) == 1


# -- failures, retries, cancellation ---------------------------------------------------------------------

def test_a_failure_emits_fail_with_a_redacted_error_message_and_stack(events_file: Path) -> None:
    @flow(name="fragile")
    def fragile(token: str) -> int:
        return explode(token)

    assert fragile(SECRET, return_state=True).is_failed()
    events = read_events(events_file)
    text = events_file.read_text()
    assert SECRET not in text and "pw-Zq8" not in text
    assert_one_start_one_end(events)
    jobs = by_job(events)
    failed = jobs["fragile.explode"][1]
    assert failed["eventType"] == "FAIL"
    error = failed["run"]["facets"]["errorMessage"]
    assert error["programmingLanguage"] == "python"
    assert error["message"].startswith("ConnectionError: could not reach postgresql://etl:***@db")
    assert "Traceback (most recent call last)" in error["stackTrace"] and "explode" in error["stackTrace"]
    assert "errorMessage" in validate_event(failed)
    assert jobs["fragile"][1]["eventType"] == "FAIL" and "errorMessage" in jobs["fragile"][1]["run"]["facets"]


def test_retried_attempts_are_one_run_with_one_final_event(events_file: Path) -> None:
    tries: list[int] = []

    @task(retries=2, retry_delay_seconds=0)
    def flaky() -> int:
        tries.append(1)
        record(DatasetIO(SALES, "input", rows=1))
        if len(tries) < 3:
            raise TimeoutError("the database is busy")
        return 1

    @flow(name="flaky-flow", retries=1, retry_delay_seconds=0)
    def flaky_flow() -> int:
        return flaky()

    assert flaky_flow(return_state=True).is_completed()
    events = read_events(events_file)
    assert_one_start_one_end(events)
    (start, done) = by_job(events)["flaky-flow.flaky"]
    assert done["eventType"] == "COMPLETE"
    assert [(d["name"]) for d in done["inputs"]] == [SALES.name]  # one dataset, read by each attempt


def test_a_cancelled_task_run_emits_abort(events_file: Path) -> None:
    release = threading.Event()

    @task
    def waits() -> None:
        release.wait(30)

    @flow(name="too-slow", timeout_seconds=0.3)
    def too_slow() -> None:
        waits()

    try:
        state = too_slow(return_state=True)
    finally:
        release.set()
    assert state.name == "TimedOut"
    jobs = by_job(read_events(events_file))
    assert [e["eventType"] for e in jobs["too-slow.waits"]] == ["START", "ABORT"]
    assert [e["eventType"] for e in jobs["too-slow"]] == ["START", "FAIL"]


def test_cached_and_upstream_failed_task_runs_still_start_and_end(events_file: Path) -> None:
    @task(cache_key_fn=lambda ctx, params: "fixed-key")
    def cached() -> int:
        return 1

    @flow(name="twice")
    def twice() -> int:
        cached()
        return cached()

    assert twice(return_state=True).is_completed()
    events = read_events(events_file)
    assert_one_start_one_end(events)
    assert [e["eventType"] for e in by_job(events)["twice.cached"]] == ["START", "COMPLETE", "START", "COMPLETE"]


# -- schedules, headrace retry, standalone tasks, subflows ----------------------------------------------

def test_a_scheduled_run_carries_its_slot_as_nominal_time(events_file: Path) -> None:
    from headrace.engine import run_flow

    slot = datetime(2024, 3, 1, 6, 0, tzinfo=UTC)
    state = run_flow(sales_etl, {"day": "2024-03-01"}, scheduled_time=slot)
    assert state.is_completed()
    flow_events = by_job(read_events(events_file))["sales-etl"]
    for e in flow_events:
        assert e["run"]["facets"]["nominalTime"]["nominalStartTime"] == "2024-03-01T06:00:00+00:00"


def test_headrace_retry_emits_a_new_run_whose_reused_tasks_complete(events_file: Path) -> None:
    from headrace.engine import run_flow

    marker = events_file.parent.parent / "fail-load"
    marker.write_text("1")

    @task
    def maybe_fails(rows: int) -> int:
        if marker.exists():
            raise RuntimeError("the warehouse is down")
        return rows

    @flow(name="retry-me", persist_result=True)
    def retry_me() -> int:
        return maybe_fails(extract("d"))

    first = retry_me(return_state=True)
    assert first.is_failed()
    marker.unlink()
    second = run_flow(retry_me, {}, retry_of=first.run_id)
    assert second.is_completed()
    events = read_events(events_file)
    assert_one_start_one_end(events)
    runs = [e["run"]["runId"] for e in by_job(events)["retry-me"]]
    assert len(set(runs)) == 2
    extract_events = by_job(events)["retry-me.extract"]
    assert [e["eventType"] for e in extract_events] == ["START", "COMPLETE", "START", "COMPLETE"]


def test_a_task_called_outside_a_flow_has_no_parent(events_file: Path) -> None:
    assert extract("2024-03-03") == 3
    events = read_events(events_file)
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    assert events[0]["job"]["name"] == "extract" and "parent" not in events[0]["run"]["facets"]


def test_a_subflow_names_its_parent_flow_run(events_file: Path) -> None:
    @flow(name="child")
    def child() -> int:
        return extract("d")

    @flow(name="parent")
    def parent() -> int:
        return child()

    state = parent(return_state=True)
    events = read_events(events_file)
    assert_one_start_one_end(events)
    child_events = by_job(events)["child"]
    assert all(e["run"]["facets"]["parent"]["run"]["runId"] == str(uuid.UUID(state.run_id)) for e in child_events)
    assert child_events[0]["run"]["facets"]["parent"]["job"]["name"] == "parent"


def test_the_namespace_comes_from_the_setting(events_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADRACE_OPENLINEAGE_NAMESPACE", "analytics")
    sales_etl("d")
    events = read_events(events_file)
    assert {e["job"]["namespace"] for e in events} == {"analytics"}
    assert {e["run"]["facets"]["parent"]["job"]["namespace"] for e in events if "parent" in e["run"]["facets"]} == {
        "analytics"}


# -- off, and never in the way ------------------------------------------------------------------------------

def test_unset_means_off_no_observer_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from headrace.run_observers import active_observers

    monkeypatch.delenv("HEADRACE_OPENLINEAGE_URL", raising=False)
    assert active_observers() == ()
    sales_etl("d")
    assert not list(tmp_path.rglob("*.ndjson"))


def test_a_bad_setting_is_logged_once_per_run_and_the_run_goes_on(monkeypatch: pytest.MonkeyPatch,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("HEADRACE_OPENLINEAGE_URL", "kafka://broker:9092")
    state = sales_etl("d", return_state=True)
    assert state.is_completed()
    assert "kafka://broker:9092' is not a transport headrace knows" in caplog.text


def test_many_threads_of_tasks_emit_every_event_once(events_file: Path) -> None:
    @task
    def small(i: int) -> int:
        return i

    @flow(name="wide")
    def wide() -> int:
        return sum(f.result() for f in [small.submit(i) for i in range(200)])

    assert wide() == sum(range(200))
    events = read_events(events_file)
    assert_one_start_one_end(events)
    counts = Counter(e["eventType"] for e in events)
    assert counts == {"START": 201, "COMPLETE": 201}
    assert len({json.dumps(e, sort_keys=True) for e in events}) == 402


def test_a_password_in_a_dataset_address_or_query_never_reaches_an_event(events_file: Path) -> None:
    leaky = DatasetRef(f"postgres://etl:{SECRET}@db.example:5432", "dwh.public.sales")

    @task
    def careless() -> None:
        record(DatasetIO(leaky, "input", rows=1, sql=f"SELECT * FROM dblink('password={SECRET}', 'x')"))

    @flow(name="careless")
    def careless_flow() -> None:
        careless()

    careless_flow()
    events = read_events(events_file)
    text = events_file.read_text()
    assert SECRET not in text and "pw-Zq8" not in text
    (source,) = by_job(events)["careless.careless"][1]["inputs"]
    assert source["namespace"] == "postgres://etl:***@db.example:5432"
    assert "password=***" in by_job(events)["careless.careless"][1]["job"]["facets"]["sql"]["query"]


def test_the_demo_counts_the_events_its_run_wrote(events_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    import sys

    demo_file = Path(__file__).resolve().parents[2] / "demo" / "sales_etl.py"
    spec = importlib.util.spec_from_file_location("headrace_demo_openlineage", demo_file)
    assert spec is not None and spec.loader is not None
    demo = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = demo
    spec.loader.exec_module(demo)
    monkeypatch.setattr(demo, "OPENLINEAGE_FILE", events_file)
    sales_etl("d")
    before = len(read_events(events_file))
    sales_etl("d")
    assert demo.openlineage_summary(before).strip().startswith(f"OpenLineage events: 6 written to {events_file}")
    monkeypatch.setenv("HEADRACE_OPENLINEAGE_URL", "")
    assert "off" in demo.openlineage_summary(0)


@settings(max_examples=60, deadline=None)
@given(flow_name=st.text(min_size=1, max_size=30), task_name=st.text(min_size=1, max_size=30),
       kind=st.sampled_from(["flow", "task"]), etype=st.sampled_from(["START", "COMPLETE", "ABORT"]),
       at=st.datetimes(timezones=st.just(UTC)), scheduled=st.none() | st.datetimes(timezones=st.just(UTC)))
def test_the_template_fast_path_builds_exactly_the_full_event(flow_name: str, task_name: str, kind: str,
                                                               etype: str, at: datetime,
                                                               scheduled: datetime | None) -> None:
    from headrace.lineage import openlineage_facets as ol
    from headrace.lineage.openlineage import OpenLineageEmitter
    from headrace.lineage.transport import QueueDispatcher

    emitter = OpenLineageEmitter(QueueDispatcher(FileTransportStub()), "ns")
    run_id, parent_id = uuid.uuid4().hex, uuid.uuid4().hex
    job = flow_name if kind == "flow" else f"{flow_name}.{task_name}"
    parent = None if kind == "flow" else (parent_id, flow_name)
    record_ = (kind, etype, run_id, job, at, extract.fn, parent, scheduled, None, None, ())
    emitter.render(record_)  # builds the template
    fast = emitter.render(record_)
    full = ol.serialize(ol.build_event(event_type=etype, kind=kind, namespace="ns", job_name=job, run_id=run_id,
                                       at=at, fn=extract.fn, parent=parent, scheduled_time=scheduled))
    assert fast == full
    validate_event(json.loads(fast))


class FileTransportStub:
    def send(self, lines: list[str]) -> None:
        raise AssertionError("nothing is delivered in this test")


def test_a_worker_run_of_a_deployment_slot_has_its_nominal_time(events_file: Path) -> None:
    from headrace.schedule import Deployment, Worker
    from headrace.schedule.scheduler import new_run_row

    store = get_store()
    Deployment(sales_etl, "daily-sales", parameters={"day": "2024-03-01"}).apply(store=store)
    slot = datetime(2024, 3, 1, 6, 0, tzinfo=UTC)
    store.create_scheduled_runs([new_run_row(store.get_deployment("daily-sales"), slot, slot)])
    assert Worker(store).run_due(datetime.now(UTC)) == ["Completed"]
    events = read_events(events_file)
    assert_one_start_one_end(events)
    flow_events = by_job(events)["sales-etl"]
    assert [e["eventType"] for e in flow_events] == ["START", "COMPLETE"]
    assert {e["run"]["facets"]["nominalTime"]["nominalStartTime"] for e in flow_events} == {
        "2024-03-01T06:00:00+00:00"}
    assert len(by_job(events)["sales-etl.load"]) == 2


def test_the_client_library_loads_light_and_still_imports_whole_afterwards() -> None:
    import subprocess
    import sys

    code = ("import sys; import headrace.lineage.openlineage_facets as f; "
            "light = [m for m in ('requests', 'httpx2', 'fsspec', 'yaml') if m in sys.modules]; "
            "from openlineage.client import OpenLineageClient; from openlineage.client.event_v2 import RunEvent; "
            "print(light, RunEvent is f.RunEvent, OpenLineageClient.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] True OpenLineageClient"
