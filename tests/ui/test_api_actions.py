"""The JSON API that changes things (re-runs, bulk actions, deployments, backfills) and the data pages' API."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from conftest import Seeded, post


def _run_due(store) -> list[str]:  # type: ignore[no-untyped-def]
    from headrace.schedule import Worker

    return Worker(store).run_due(datetime.now(UTC))


def _messages(client: httpx.Client, run_id: str) -> dict[str, str]:
    body = client.get(f"/api/runs/{run_id}").json()
    return {t["task_key"]: (t["state_name"], t["state_message"] or "") for t in body["task_runs"]}


def test_rerun_from_failure_reuses_what_completed(seeded: Seeded, client: httpx.Client) -> None:
    preview = client.get(f"/api/runs/{seeded.bad}/rerun-preview").json()
    outcome = {t["task_key"]: t["outcome"] for t in preview["tasks"]}
    assert outcome == {"extract-0": "reuse", "transform-0": "reuse", "explode-0": "run"}
    assert preview["counts"] == {"reuse": 2, "cache": 0, "run": 1} and preview["allowed"] is None
    new = post(client, f"/api/runs/{seeded.bad}/rerun", json={"mode": "failure"}).json()["run_id"]
    created = client.get(f"/api/runs/{new}").json()["run"]
    assert created["state_type"] == "SCHEDULED" and created["retry_of"] == seeded.bad
    assert _run_due(seeded.store) == ["Failed"]  # the flow still fails, but only explode ran again
    states = _messages(client, new)
    assert "reused the result" in states["extract-0"][1] and "reused the result" in states["transform-0"][1]
    assert states["explode-0"][0] == "Failed"


def test_rerun_from_a_chosen_task_runs_it_and_everything_after(seeded: Seeded, client: httpx.Client) -> None:
    preview = client.get(f"/api/runs/{seeded.good}/rerun-preview",
                         params={"mode": "from", "task": "transform-0"}).json()
    assert {t["task_key"]: t["outcome"] for t in preview["tasks"]} == {
        "extract-0": "reuse", "transform-0": "run", "load-0": "run"}
    new = post(client, f"/api/runs/{seeded.good}/rerun", json={"mode": "from", "tasks": ["transform-0"]}).json()
    assert _run_due(seeded.store) == ["Completed"]
    states = _messages(client, new["run_id"])
    assert "reused" in states["extract-0"][1]
    assert states["transform-0"] == ("Completed", "") and states["load-0"] == ("Completed", "")


def test_rerun_of_a_chosen_subset(seeded: Seeded, client: httpx.Client) -> None:
    new = post(client, f"/api/runs/{seeded.good}/rerun", json={"mode": "subset", "tasks": ["extract-0"]}).json()
    assert _run_due(seeded.store) == ["Completed"]
    states = _messages(client, new["run_id"])
    assert states["extract-0"] == ("Completed", "") and "reused" in states["transform-0"][1]


def test_rerun_refuses_bad_requests(seeded: Seeded, client: httpx.Client) -> None:
    r = client.get(f"/api/runs/{seeded.good}/rerun-preview", params={"mode": "from", "task": "nope-0"})
    assert r.status_code == 400 and "no task 'nope-0'" in r.json()["detail"]
    assert client.get(f"/api/runs/{seeded.good}/rerun-preview?mode=sideways").status_code == 400
    assert client.get(f"/api/runs/{seeded.good}/rerun-preview?mode=subset").status_code == 400
    new = post(client, f"/api/runs/{seeded.good}/rerun", json={}).json()["run_id"]
    r = post(client, f"/api/runs/{new}/rerun", json={})  # still Scheduled: nothing to re-run yet
    assert r.status_code == 409 and "wait for it to end" in r.json()["detail"]


def test_cancel_a_waiting_run_and_refuse_an_ended_one(seeded: Seeded, client: httpx.Client) -> None:
    new = post(client, "/api/deployments/on-demand/run", json={}).json()["run_id"]
    assert post(client, f"/api/runs/{new}/cancel").json()["result"] == "cancelled"
    assert client.get(f"/api/runs/{new}").json()["run"]["state_name"] == "Cancelled"
    r = post(client, f"/api/runs/{seeded.good}/cancel")
    assert r.status_code == 409 and "already ended" in r.json()["detail"]


def test_bulk_retry_dry_run_changes_nothing_then_acts(seeded: Seeded, client: httpx.Client) -> None:
    dry = post(client, "/api/runs/bulk", json={"action": "retry", "filter": {"flow": "orders-bad"}}).json()
    assert dry["dry_run"] is True and [r["id"] for r in dry["eligible"]] == [seeded.bad] and dry["done"] == []
    assert client.get("/api/runs?state=SCHEDULED").json()["count"] == 0
    everything = post(client, "/api/runs/bulk", json={"action": "retry", "dry_run": True}).json()
    assert len(everything["eligible"]) == 1 and len(everything["skipped"]) == 3
    assert all("only failed" in s["reason"] for s in everything["skipped"])
    done = post(client, "/api/runs/bulk",
                json={"action": "retry", "dry_run": False, "filter": {"state": "failed"}}).json()
    assert len(done["done"]) == 1
    waiting = client.get("/api/runs?state=SCHEDULED").json()["runs"]
    assert [r["retry_of"] for r in waiting] == [seeded.bad]
    cancel = post(client, "/api/runs/bulk",
                  json={"action": "cancel", "dry_run": False, "filter": {"state": "scheduled"}})
    assert cancel.json()["done"] == ["cancelled"] and client.get("/api/runs?state=SCHEDULED").json()["count"] == 0
    assert post(client, "/api/runs/bulk", json={"action": "explode"}).status_code == 400


def test_deployments_with_next_fire_times_in_their_zone(seeded: Seeded, client: httpx.Client) -> None:
    deps = {d["name"]: d for d in client.get("/api/deployments").json()["deployments"]}
    nightly = deps["nightly-orders"]
    assert nightly["timezone"] == "Africa/Accra" and len(nightly["next_runs"]) == 3
    assert all(datetime.fromisoformat(t).hour == 6 for t in nightly["next_runs"])
    assert deps["on-demand"]["next_runs"] == [] and "on demand" in deps["on-demand"]["schedule"]
    one = client.get("/api/deployments/nightly-orders").json()
    assert [p["name"] for p in one["flow_parameters"]] == ["n", "dsn"]
    assert client.get("/api/deployments/missing").status_code == 404


def test_run_now_with_parameters_then_a_worker_runs_it(seeded: Seeded, client: httpx.Client) -> None:
    new = post(client, "/api/deployments/on-demand/run", json={"parameters": {"n": 7}}).json()["run_id"]
    run = client.get(f"/api/runs/{new}").json()["run"]
    assert run["state_type"] == "SCHEDULED" and run["parameters"] == '{"n": 7}'
    assert _run_due(seeded.store) == ["Completed"]
    assert client.get(f"/api/runs/{new}").json()["run"]["rows_out"] == 7
    bad = post(client, "/api/deployments/on-demand/run", json={"parameters": {"rows": 7}})
    assert bad.status_code == 400 and "has no parameter 'rows'" in bad.json()["detail"]
    assert post(client, "/api/deployments/on-demand/run", json={"parameters": [1]}).status_code == 400


def test_pause_and_resume(seeded: Seeded, client: httpx.Client) -> None:
    assert post(client, "/api/deployments/nightly-orders/pause").json()["paused"] is True
    assert client.get("/api/deployments/nightly-orders").json()["next_runs"] == []
    assert post(client, "/api/deployments/nightly-orders/resume").json()["paused"] is False
    assert len(client.get("/api/deployments/nightly-orders").json()["next_runs"]) == 3


def test_backfill_previews_its_runs_then_creates_them(seeded: Seeded, client: httpx.Client) -> None:
    preview = client.get("/api/deployments/nightly-orders/backfill", params={"start": "2024-01-01",
                                                                            "end": "2024-01-05"}).json()
    assert preview["counts"] == {"create": 5, "done": 0, "waiting": 0}
    assert [s["local"][:16] for s in preview["slots"]][:2] == ["2024-01-01T06:00", "2024-01-02T06:00"]
    assert post(client, "/api/deployments/nightly-orders/backfill",
                json={"start": "2024-01-01", "end": "2024-01-05"}).json() == {"created": 5}
    again = client.get("/api/deployments/nightly-orders/backfill?start=2024-01-01&end=2024-01-06").json()
    assert again["counts"] == {"create": 1, "done": 0, "waiting": 5}
    r = client.get("/api/deployments/nightly-orders/backfill?start=2024-02-01&end=2024-01-01")
    assert r.status_code == 400 and "before it starts" in r.json()["detail"]
    assert client.get("/api/deployments/nightly-orders/backfill?start=soon&end=later").status_code == 400


def test_flows_over_time(seeded: Seeded, client: httpx.Client) -> None:
    assert client.get("/api/flows").json()["flows"] == ["lake-orders", "orders-bad", "orders-checked", "orders-good"]
    stats = client.get("/api/flows/orders-good").json()
    assert stats["count"] == 1 and stats["success_rate"] == 1.0 and stats["runs"][0]["rows_out"] == 5
    assert stats["daily"][0]["success_rate"] == 1.0


def test_datasets_and_their_lineage(seeded: Seeded, client: httpx.Client) -> None:
    listed = {d["name"]: d for d in client.get("/api/datasets").json()["datasets"]}
    assert {"raw_orders", "fact_orders"} <= set(listed)
    raw = client.get(f"/api/datasets/{listed['raw_orders']['id']}").json()
    edges = [(e["source"], e["target"]) for e in raw["graph"]["edges"]]
    assert (listed["raw_orders"]["id"], listed["fact_orders"]["id"]) in edges
    assert {r["flow_run_id"] for r in raw["io"]} == {seeded.good, seeded.bad}
    assert client.get("/api/datasets/999999").status_code == 404
    assert client.get(f"/api/datasets/{listed['raw_orders']['id']}?depth=9").status_code == 400


def test_quality_suites_over_time(seeded: Seeded, client: httpx.Client) -> None:
    suites = client.get("/api/quality").json()["suites"]
    assert [s["suite"] for s in suites] == ["orders-suite"] and suites[0]["rows_quarantined"] == 2
    history = client.get("/api/quality/orders-suite").json()
    assert history["quarantined"] == 2 and len(history["checks"]) == 2
    between = next(c for c in history["checks"] if "between" in c["type"])
    assert between["failures"] == 1 and between["last_failure"]["samples"] == [-2.0]
    assert client.get("/api/quality/nope").status_code == 404


def test_lake_jobs_show_their_counters(seeded: Seeded, client: httpx.Client) -> None:
    body = client.get("/api/lake").json()
    assert [r["id"] for r in body["runs"]] == [seeded.lake]
    assert body["runs"][0]["lake"]["lake_bytes_written"] == 3 * 8 * 100
    assert len(body["series"]["lake_rows_read"]) == 3 and body["live"] is False
