"""The JSON API about runs: lists, one run with its task runs, logs, quality, live changes."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import httpx
from conftest import Seeded


def test_health_names_the_store(seeded: Seeded, client: httpx.Client) -> None:
    body = client.get("/api/health").json()
    assert body["ok"] is True and body["store"].startswith("sqlite:///") and body["last_change"] > 0


def test_runs_lists_newest_first_with_their_summaries(seeded: Seeded, client: httpx.Client) -> None:
    body = client.get("/api/runs").json()
    names = [r["flow_name"] for r in body["runs"]]
    assert names == ["lake-orders", "orders-checked", "orders-bad", "orders-good"]
    assert body["count"] == 4 and body["count_capped"] is False and body["next_cursor"] is None
    bad = next(r for r in body["runs"] if r["id"] == seeded.bad)
    assert (bad["state_type"], bad["tasks_total"], bad["tasks_completed"], bad["tasks_failed"]) == ("FAILED", 3, 2, 1)
    assert bad["tasks_retried"] == 1 and bad["rows_in"] == 6
    good = next(r for r in body["runs"] if r["id"] == seeded.good)
    assert (good["tasks_total"], good["tasks_completed"], good["rows_out"]) == (3, 3, 5)


def test_runs_filter_by_state_flow_and_time(seeded: Seeded, client: httpx.Client) -> None:
    assert [r["id"] for r in client.get("/api/runs?state=failed").json()["runs"]] == [seeded.bad]
    assert [r["id"] for r in client.get("/api/runs?flow=orders-good").json()["runs"]] == [seeded.good]
    both = client.get("/api/runs", params=[("flow", "orders-good"), ("flow", "orders-bad")]).json()
    assert {r["id"] for r in both["runs"]} == {seeded.good, seeded.bad}
    assert client.get("/api/runs?since=1h").json()["count"] == 4
    assert client.get("/api/runs?until=2000-01-01").json()["runs"] == []
    assert client.get("/api/runs?q=orders-ba").json()["count"] == 1


def test_runs_page_by_cursor_without_repeats(seeded: Seeded, client: httpx.Client) -> None:
    seen, cursor = [], None
    for _ in range(10):
        body = client.get("/api/runs", params={"limit": 1, **({"cursor": cursor} if cursor else {})}).json()
        seen += [r["id"] for r in body["runs"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 4 and len(set(seen)) == 4


def test_malformed_filters_are_400_with_the_reason(seeded: Seeded, client: httpx.Client) -> None:
    cases = {"state=Bogus": "unknown state 'Bogus'", "since=yesterdayish": "since='yesterdayish' is not a time",
             "limit=0": "limit=0 is out of range", "limit=ten": "not a whole number",
             "cursor=%%%garbage": "not a cursor", "since=2024-02-01&until=2024-01-01": "is not after since",
             "deployment=nope": "names no deployment"}
    for query, reason in cases.items():
        r = client.get(f"/api/runs?{query}")
        assert r.status_code == 400, query
        assert reason in r.json()["detail"], (query, r.json())
    page = client.get("/runs?state=Bogus")
    assert page.status_code == 400 and "unknown state" in page.text and "<html" in page.text


def test_one_run_with_its_task_runs_attempts_and_traceback(seeded: Seeded, client: httpx.Client) -> None:
    body = client.get(f"/api/runs/{seeded.bad}").json()
    assert body["run"]["id"] == seeded.bad and body["run"]["state_name"] == "Failed"
    tasks = {t["task_key"]: t for t in body["task_runs"]}
    assert set(tasks) == {"extract-0", "transform-0", "explode-0"}
    assert tasks["explode-0"]["attempts"] == 2 and "row 7 broke the load" in tasks["explode-0"]["error"]
    gantt = {g["key"]: g for g in body["gantt"]}
    kinds = [s["kind"] for s in gantt["explode-0"]["segments"]]
    assert kinds.count("failed") == 2 and "wait" in kinds  # both attempts failed, a retry delay between
    assert "ValueError" in body["error"]
    assert {d["name"] for d in body["datasets"]} == {"raw_orders"}
    assert client.get(f"/api/runs/{seeded.bad[:10]}").json()["run"]["id"] == seeded.bad  # a unique prefix


def test_unknown_run_is_404_saying_so(seeded: Seeded, client: httpx.Client) -> None:
    r = client.get("/api/runs/0000000000000000000000000000dead")
    assert r.status_code == 404 and "no flow run with id" in r.json()["detail"]
    page = client.get("/runs/0000000000000000000000000000dead")
    assert page.status_code == 404 and "Run not found" in page.text and "0000000000000000000000000000dead" in page.text
    assert client.get("/no/such/page").status_code == 404


def test_task_runs_page_on(seeded: Seeded, client: httpx.Client) -> None:
    first = client.get(f"/api/runs/{seeded.good}/tasks?limit=2").json()
    rest = client.get(f"/api/runs/{seeded.good}/tasks", params={"cursor": first["next_cursor"]}).json()
    keys = [t["task_key"] for t in first["task_runs"] + rest["task_runs"]]
    assert keys == ["extract-0", "transform-0", "load-0"] and rest["next_cursor"] is None
    assert len(first["gantt"]) == 2


def test_logs_of_a_task_and_search(seeded: Seeded, client: httpx.Client) -> None:
    run = client.get(f"/api/runs/{seeded.bad}").json()
    explode = next(t for t in run["task_runs"] if t["task_key"] == "explode-0")
    lines = client.get(f"/api/runs/{seeded.bad}/logs", params={"task": explode["id"]}).json()["lines"]
    assert lines and all(line["task_run_id"] == explode["id"] for line in lines)
    assert any("load refused" in line["message"] for line in lines)
    found = client.get(f"/api/runs/{seeded.bad}/logs", params={"q": "LOAD REFUSED"}).json()
    assert len(found["lines"]) == 2 and found["more_after"] is False
    errors = client.get(f"/api/runs/{seeded.bad}/logs", params={"level": 40}).json()["lines"]
    assert errors and all(line["level"] >= 40 for line in errors)


def test_huge_logs_come_a_page_at_a_time(seeded: Seeded, client: httpx.Client) -> None:
    now = datetime.now(UTC)
    rows = [{"flow_run_id": seeded.good, "task_run_id": None, "at": now, "level": 20, "logger": "bulk",
             "message": f"line {i}" + (" needle" if i % 1000 == 500 else "")} for i in range(6000)]
    seeded.store.write_batch(task_inserts=[], task_updates=[], changes=[], log_rows=rows, metric_rows=[],
                             io_rows=[], flow_updates=[])
    last = client.get(f"/api/runs/{seeded.good}/logs?limit=500").json()
    assert len(last["lines"]) == 500 and last["lines"][-1]["message"] == "line 5999"
    older = client.get(f"/api/runs/{seeded.good}/logs", params={"limit": 500, "before": last["before"]}).json()
    assert older["lines"][-1]["id"] < last["lines"][0]["id"] and len(older["lines"]) == 500
    assert client.get(f"/api/runs/{seeded.good}/logs?limit=5000").status_code == 400
    found = client.get(f"/api/runs/{seeded.good}/logs", params={"q": "needle"}).json()
    assert [line["message"] for line in found["lines"]] == [f"line {i} needle" for i in range(500, 6000, 1000)]
    page = client.get(f"/runs/{seeded.good}/logs")
    assert page.status_code == 200 and page.text.count('class="log-line') == 200 and "line 5999" in page.text


def test_quality_of_a_run_with_samples_and_quarantine(seeded: Seeded, client: httpx.Client) -> None:
    body = client.get(f"/api/runs/{seeded.checked}/quality").json()
    assert body["quarantined"] == 2 and body["passed"] == 0 and len(body["results"]) == 2
    nulls = next(r for r in body["results"] if "not_be_null" in r["expectation_type"])
    assert nulls["unexpected_count"] == 1
    run = client.get("/api/runs", params={"flow": "orders-checked"}).json()["runs"][0]
    assert run["rows_quarantined"] == 2 and run["checks_failed"] == 2 and run["quality_gates"] == 1
    report = client.get(f"/runs/{seeded.checked}/quality")
    assert report.status_code == 200 and "2 quarantined" in report.text and "-2.0" in report.text


def test_changes_and_events_resume_from_the_last_event_id(seeded: Seeded, client: httpx.Client) -> None:
    from headrace.engine import load_flow, run_flow

    start = client.get("/api/changes").json()["last_id"]
    state = run_flow(load_flow(seeded.entry("good")), {"n": 1})
    seeded.store.writer.flush()
    batch = client.get("/api/changes", params={"after": start}).json()
    assert str(state.run_id) in {r["id"] for r in batch["runs"]} and batch["last_id"] > start
    assert client.get("/api/changes", params={"after": start, "run": seeded.bad}).json()["runs"] == []
    events = _read_events(client, {"Last-Event-ID": str(start)}, until="change")
    change = json.loads(events[-1]["data"])
    assert str(state.run_id) in {r["id"] for r in change["runs"]} and int(events[-1]["id"]) > start


def _read_events(client: httpx.Client, headers: dict[str, str], until: str, params: str = "") -> list[dict[str, str]]:
    events: list[dict[str, str]] = []
    result: list[BaseException] = []

    def read() -> None:
        try:
            with client.stream("GET", f"/api/events{params}", headers=headers, timeout=10) as r:
                assert r.headers["content-type"].startswith("text/event-stream")
                event: dict[str, str] = {}
                for line in r.iter_lines():
                    if not line:
                        events.append(event)
                        if event.get("event") == until:
                            return
                        event = {}
                        continue
                    key, _, value = line.partition(": ")
                    event[key] = value
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            result.append(exc)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(10)
    assert not result, result
    assert events and events[-1].get("event") == until, events
    return events


def test_a_run_page_streams_its_task_changes(seeded: Seeded, client: httpx.Client) -> None:
    from headrace.engine import load_flow, run_flow

    start = client.get("/api/changes").json()["last_id"]
    state = run_flow(load_flow(seeded.entry("good")), {"n": 2})
    seeded.store.writer.flush()
    events = _read_events(client, {}, until="change", params=f"?run={state.run_id}&last_event_id={start}")
    change = json.loads(events[-1]["data"])
    assert {t["key"] for t in change["tasks"]} == {"extract-0", "transform-0", "load-0"}
    assert change["runs"][0]["state_name"] == "Completed"
