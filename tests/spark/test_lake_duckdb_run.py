"""The lake job as a task: in a flow, from the CLI, with live metrics and display, on S3."""

from __future__ import annotations

import io
import textwrap
import time
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest
from lake_lineage import assert_lake_lineage

from headrace import flow
from headrace.cli import main
from headrace.spark import LakeJob
from headrace.spark.testing import SALES_SCHEMA, sales_rules, write_dirty_lake
from headrace.store import get_store

COUNTERS = ("files_read", "bytes_read", "rows_read", "good_rows", "bad_rows", "bad_bytes", "bytes_written")


def _last(metrics: list[dict[str, Any]]) -> dict[str, float]:
    return {m["name"]: m["value"] for m in metrics}


def test_in_a_flow_it_runs_as_a_task_with_metrics_and_datasets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "openlineage.ndjson"
    monkeypatch.setenv("HEADRACE_OPENLINEAGE_URL", events.as_uri())
    lake = write_dirty_lake(str(tmp_path / "lake"), records=500, files=2)
    job = LakeJob(lake.pattern, SALES_SCHEMA, sales_rules(), str(tmp_path / "wh"), partition_by=["order_date"],
                  name="sales-lake")

    @flow
    def nightly() -> int:
        return job.run().good_rows

    state = nightly(return_state=True)
    assert state.is_completed() and state.result() == lake.good
    store = get_store()
    store.writer.flush()
    tasks = store.list_task_runs(str(state.run_id))
    assert [(t["task_name"], t["state_type"]) for t in tasks] == [("sales-lake", "COMPLETED")]
    last = _last(store.get_metrics(str(state.run_id)))
    assert last["lake_rows_read"] == lake.rows and last["lake_good_rows"] == lake.good
    assert last["lake_bad_rows"] == lake.bad and last["lake_bad_bytes"] == lake.bad_bytes
    assert last["lake_files_read"] == 2 and last["lake_backlog_bytes"] == 0 and last["lake_bytes_written"] > 0
    assert_lake_lineage(str(state.run_id), lake_dir=tmp_path / "lake", target=tmp_path / "wh", good=lake.good,
                        bad=lake.bad, events=events, capsys=capsys)


def test_counters_reach_the_store_while_the_job_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run page and the lake page read metrics from the store: they must land before the end."""
    from headrace.spark import lake_duckdb
    from headrace.ui.history import lake_overview

    lake = write_dirty_lake(str(tmp_path / "lake"), records=600, files=3)
    seen: list[dict[str, Any]] = []
    real = lake_duckdb._count_files

    def count_then_look(con: Any, first: int, batch: Any, result: Any) -> None:
        real(con, first, batch, result)
        if first != 1:
            return
        # after the second file the job pauses here until the page's data shows its counters
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            page = lake_overview(get_store())
            runs = [r for r in page["runs"] if r["state_type"] == "RUNNING"]
            if runs and runs[0]["lake"].get("lake_files_read", 0) >= 1:
                seen.append(runs[0])
                return
            time.sleep(0.05)

    monkeypatch.setattr(lake_duckdb, "_count_files", count_then_look)
    monkeypatch.setattr(lake_duckdb, "BATCH_BYTES", 1)  # one file per batch: the counters move per file
    monkeypatch.setattr("headrace.spark.progress.METRIC_EVERY", 0.0)

    @flow
    def live() -> None:
        LakeJob(lake.pattern, SALES_SCHEMA, sales_rules(), str(tmp_path / "wh")).run()

    assert live(return_state=True).is_completed()
    assert seen, "no counters reached the store while the job ran"
    assert seen[0]["lake"]["lake_files_read"] >= 1 and seen[0]["lake"]["lake_backlog_bytes"] > 0
    assert 0 < seen[0]["lake"]["lake_rows_read"] < lake.rows


def test_the_terminal_display_shows_the_counters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    lake = write_dirty_lake(str(tmp_path / "lake"), records=300, files=2)
    buf = io.StringIO()
    monkeypatch.setattr("rich.console.Console", lambda **kw: Console(file=buf, width=250, force_terminal=False))
    LakeJob(lake.pattern, SALES_SCHEMA, sales_rules(), str(tmp_path / "wh"), progress=True).run()
    shown = buf.getvalue()
    assert "files 2/2" in shown and f"good {lake.good:,}" in shown and f"bad {lake.bad:,}" in shown
    assert "backlog 0 B" in shown


def test_the_cli_runs_a_job_file_as_a_recorded_flow_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lake = write_dirty_lake(str(tmp_path / "lake"), records=400, files=2)
    job_file = tmp_path / "job.py"
    job_file.write_text(textwrap.dedent(f"""
        from headrace.spark import LakeJob
        from headrace.spark.testing import SALES_SCHEMA, sales_rules
        JOB = LakeJob({lake.pattern!r}, SALES_SCHEMA, sales_rules(), {str(tmp_path / 'wh')!r},
                      partition_by=["order_date"], name="cli-lake")
        NOT_A_JOB = 1
    """))
    assert main(["lake", "run", f"{job_file}:JOB", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "cli-lake on duckdb" in out and f"{lake.good:,}" in out and f"{lake.bad:,}" in out
    runs = get_store().list_flow_runs(flow="cli-lake")
    assert len(runs) == 1 and runs[0]["state_type"] == "COMPLETED"
    assert main(["lake", "run", f"{job_file}:NOT_A_JOB"]) == 1
    assert "is not a LakeJob" in capsys.readouterr().err


# -- S3 through a real S3-compatible server on 127.0.0.1 (tests/conftest.py) ------------------------
def test_an_s3_lake_to_an_s3_warehouse(tmp_path: Path, s3_bucket: str) -> None:
    bucket = s3_bucket
    import s3fs

    lake = write_dirty_lake(str(tmp_path / "lake"), records=400, files=2, gzip_files=True)
    fs = s3fs.S3FileSystem()
    for f in lake.files:
        fs.put_file(f, f"{bucket}/raw/{Path(f).name}")
    job = LakeJob(f"s3://{bucket}/raw/*.ndjson.gz", SALES_SCHEMA, sales_rules(), f"s3://{bucket}/warehouse/sales/",
                  partition_by=["order_date"], quarantine=f"s3://{bucket}/warehouse/_quarantine/sales/")
    for _ in range(2):  # a rerun replaces
        r = job.run()
        assert (r.rows_read, r.good_rows, r.bad_rows) == (lake.rows, lake.good, lake.bad)
    fs.invalidate_cache()
    table = ds.dataset(f"{bucket}/warehouse/sales/", filesystem=fs, format="parquet", partitioning="hive").to_table()
    assert table.num_rows == lake.good
    bad = ds.dataset(f"{bucket}/warehouse/_quarantine/sales/", filesystem=fs, format="parquet").to_table()
    assert bad.num_rows == lake.bad and set(bad.column("source_file").to_pylist()) <= {
        f"s3://{bucket}/raw/{Path(f).name}" for f in lake.files}
    assert not [p for p in fs.find(f"{bucket}/warehouse") if "/." in p]


def test_an_unwritable_s3_target_is_a_clear_error(tmp_path: Path, s3_bucket: str) -> None:
    # s3_bucket points S3 at the moto server; the target names a bucket that does not exist there
    from headrace.spark import LakeJobError

    lake = write_dirty_lake(str(tmp_path / "lake"), records=10, files=1)
    with pytest.raises(LakeJobError, match="not writable"):
        LakeJob(lake.pattern, SALES_SCHEMA, target="s3://no-such-bucket-here/x/").run()


def test_the_run_page_links_to_the_live_lake_counters(tmp_path: Path) -> None:
    import httpx

    from headrace.ui import UIServer, UISettings

    lake = write_dirty_lake(str(tmp_path / "lake"), records=100, files=1)

    @flow
    def with_lake() -> None:
        LakeJob(lake.pattern, SALES_SCHEMA, sales_rules(), str(tmp_path / "wh")).run()

    state = with_lake(return_state=True)
    get_store().writer.flush()
    srv = UIServer(UISettings(port=0, store_url=get_store().url)).start()
    try:
        with httpx.Client(base_url=srv.url, timeout=20) as client:
            page = client.get(f"/runs/{state.run_id}").text
            assert f'href="/lake?run={state.run_id}"' in page
            assert f"{lake.good:,}" in client.get(f"/lake?run={state.run_id}").text
    finally:
        srv.stop()


def test_the_demo_lake_stage_prints_its_counters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util
    import sys

    demo_file = Path(__file__).resolve().parents[2] / "demo" / "sales_etl.py"
    spec = importlib.util.spec_from_file_location("headrace_demo_lake_stage", demo_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    counters = module.sales_lake(folder=str(tmp_path), records=2000)
    assert counters["rows_read"] == 2000 == counters["good_rows"] + counters["bad_rows"]
    assert counters["bad_rows"] == 40 and counters["bytes_written"] > 0
    assert "lake stage: files_read 4, " in capsys.readouterr().out
