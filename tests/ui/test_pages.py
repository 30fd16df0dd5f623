"""The HTML pages show what a data engineer looks for, and the forms do what they say."""

from __future__ import annotations

import re

import httpx
from conftest import Seeded, csrf


def test_runs_page_filters_and_pages(seeded: Seeded, client: httpx.Client) -> None:
    html = client.get("/runs").text
    assert html.count('<tr id="run-') == 4 and "4 runs match" in html
    assert 'data-live="runs"' in html  # the first page takes new runs live
    failed = client.get("/runs?state=FAILED").text
    assert failed.count('<tr id="run-') == 1 and f"/runs/{seeded.bad}" in failed and "1 failed" in failed
    first = client.get("/runs?limit=3").text
    nxt = re.search(r'href="([^"]+)" rel="next"', first)
    assert nxt is not None and first.count('<tr id="run-') == 3
    second = client.get(nxt.group(1).replace("&amp;", "&")).text
    assert second.count('<tr id="run-') == 1 and 'data-live=""' in second


def test_run_page_shows_errors_timeline_logs_and_datasets(seeded: Seeded, client: httpx.Client) -> None:
    html = client.get(f"/runs/{seeded.bad}").text
    for text in ("Failed", "explode-0", "row 7 broke the load", "Traceback", 'id="gantt"', "gantt-data",
                 "raw_orders", "Re-run from failure", f"/runs/{seeded.bad}/logs?task=", "2/3 done"):
        assert text in html, text
    good = client.get(f"/runs/{seeded.good}").text
    assert "fact_orders" in good and "rows_seen" in good and "Parameters" in good
    checked = client.get(f"/runs/{seeded.checked}").text
    assert "0/2 checks passed" in checked and "2 quarantined" in checked
    assert client.get(f"/runs/{seeded.bad[:8]}", follow_redirects=False).headers["location"] == f"/runs/{seeded.bad}"


def test_log_page_of_the_failing_task(seeded: Seeded, client: httpx.Client) -> None:
    task = next(t for t in client.get(f"/api/runs/{seeded.bad}").json()["task_runs"] if t["task_key"] == "explode-0")
    html = client.get(f"/runs/{seeded.bad}/logs", params={"task": task["id"]}).text
    assert "task explode-0" in html and html.count("load refused") == 2 and "extracting" not in html
    assert client.get(f"/runs/{seeded.good}/logs", params={"task": task["id"]}).status_code == 404


def test_rerun_form_previews_then_starts_the_run(seeded: Seeded, client: httpx.Client) -> None:
    preview = client.get(f"/runs/{seeded.good}/rerun", params={"mode": "subset", "task": "load-0"}).text
    assert "2</b> reused" in preview and "1</b> run again" in preview
    r = client.post(f"/runs/{seeded.good}/rerun", data={"csrf_token": csrf(client), "mode": "subset", "task": "load-0"})
    assert r.status_code == 303
    new = r.headers["location"].rsplit("/", 1)[1]
    page = client.get(f"/runs/{new}").text
    assert "Scheduled" in page and "Waiting for a worker" in page and f"re-run of {seeded.good[:8]}" in page


def test_bulk_page_is_a_dry_run_until_confirmed(seeded: Seeded, client: httpx.Client) -> None:
    dry = client.get("/runs/bulk", params={"action": "retry", "state": "FAILED"}).text
    assert "dry run" in dry and "Retry these 1 runs" in dry
    done = client.post("/runs/bulk", data={"csrf_token": csrf(client), "action": "retry", "state": "FAILED"}).text
    assert "Done: 1 run(s) re-run" in done
    assert client.get("/api/runs?state=SCHEDULED").json()["count"] == 1


def test_deployment_pages_and_forms(seeded: Seeded, client: httpx.Client) -> None:
    html = client.get("/deployments").text
    assert re.search(r'name="csrf_token" value="[0-9a-f]{64}"', html)  # every form carries the token
    assert "nightly-orders" in html and "GMT" in html and "Run now" in html and "Pause" in html
    page = client.get("/deployments/nightly-orders").text
    assert "Africa/Accra" in page and page.count("06:00 GMT") == 5 and "n: int = 5" in page
    r = client.post("/deployments/on-demand/run", data={"csrf_token": csrf(client), "parameters": '{"n": 9}'})
    assert r.status_code == 303 and r.headers["location"].startswith("/runs/")
    bad = client.post("/deployments/on-demand/run", data={"csrf_token": csrf(client), "parameters": "{n: 9"})
    assert bad.status_code == 400 and "not valid JSON" in bad.text
    assert client.post("/deployments/nightly-orders/pause", data={"csrf_token": csrf(client)}).status_code == 303
    assert "paused" in client.get("/deployments").text


def test_backfill_form_previews_its_runs(seeded: Seeded, client: httpx.Client) -> None:
    page = client.get("/deployments/nightly-orders", params={"start": "2024-03-01", "end": "2024-03-03"}).text
    assert "<b>3</b> run(s) to create" in page and "2024-03-02 06:00" in page and "Create these 3 runs" in page
    r = client.post("/deployments/nightly-orders/backfill",
                    data={"csrf_token": csrf(client), "start": "2024-03-01", "end": "2024-03-03"})
    assert r.status_code == 303
    assert client.get("/api/runs", params={"deployment": "nightly-orders"}).json()["count"] == 3
    wrong = client.get("/deployments/nightly-orders", params={"start": "2024-03-05", "end": "2024-03-01"})
    assert wrong.status_code == 400 and "before it starts" in wrong.text


def test_data_pages(seeded: Seeded, client: httpx.Client) -> None:
    assert "raw_orders" in client.get("/datasets").text
    raw = client.get("/datasets?q=raw").text
    assert "raw_orders" in raw and "fact_orders" not in raw
    ds_id = client.get("/api/datasets?q=raw").json()["datasets"][0]["id"]
    page = client.get(f"/datasets/{ds_id}").text
    assert "graph-data" in page and "fact_orders" in page and "orders-good" in page
    assert "orders-suite" in client.get("/quality").text
    suite = client.get("/quality/orders-suite").text
    assert "column_values_to_be_between" in suite and "[-2.0]" in suite
    lake = client.get("/lake").text
    assert "lake-orders" in lake and "2.3 KB" in lake
    assert "Flow orders-good" in client.get("/flows/orders-good").text
    assert client.get("/flows/never-ran").status_code == 404
    assert client.get("/", follow_redirects=False).headers["location"] == "/runs"


def test_the_api_page_describes_every_operation_of_the_openapi_document(client: httpx.Client) -> None:
    import html as html_lib

    spec = client.get("/openapi.json").json()
    page = client.get("/docs")
    assert page.status_code == 200
    text = html_lib.unescape(page.text)
    ids = set(re.findall(r'id="([^"]+)"', page.text))
    ops = [(m, p, op) for p, item in spec["paths"].items() for m, op in item.items()
           if m in ("get", "post", "put", "patch", "delete")]
    assert len(ops) >= 25 and any(m == "post" for m, _, _ in ops)  # the whole API, actions included
    for method, path, op in ops:
        anchor = "op-" + re.sub(r"[^A-Za-z0-9_-]+", "-", op["operationId"]).strip("-")
        assert anchor in ids, (method, path)
        section = text.split(f'id="{anchor}"', 1)[1].split('<section', 1)[0]
        assert f">{method.upper()}</span> <code>{path}</code>" in section, (method, path)
        assert op.get("summary", "") in section
        for param in op.get("parameters", []):
            assert f"<code>{param['name']}</code>" in section, (path, param["name"])
        for status in op.get("responses", {}):
            assert f"<td>{status}</td>" in section, (path, status)
        if "requestBody" in op:
            assert "Request body" in section and next(iter(op["requestBody"]["content"])) in section, path
    for name in spec.get("components", {}).get("schemas", {}):
        assert "schema-" + re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") in ids, name
    links = set(re.findall(r'href="#([^"]+)"', page.text))
    assert links and links <= ids  # every link on the page lands somewhere on it
    assert "<script src" not in page.text.replace('<script src="/static/app.js">', "")
