"""The Spark lake job as a task: metrics and datasets recorded, counters moving while it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lake_lineage import assert_lake_lineage

from headrace import flow
from headrace.spark import LakeJob
from headrace.spark.progress import LakeProgress
from headrace.spark.testing import SALES_SCHEMA, sales_rules, write_dirty_lake
from headrace.store import get_store


def test_in_a_flow_the_spark_job_records_metrics_and_datasets(spark: Any, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from headrace.spark import lake_spark

    lake = write_dirty_lake(str(tmp_path / "lake"), records=2_000, files=2)
    events = tmp_path / "openlineage.ndjson"
    monkeypatch.setenv("HEADRACE_OPENLINEAGE_URL", events.as_uri())
    monkeypatch.setattr(lake_spark, "CHUNK_BYTES", 25_013)     # ~20 tasks finishing one after another
    monkeypatch.setattr(lake_spark, "LIVE_EVERY", 0.02)
    seen: list[dict[str, int]] = []
    real = LakeProgress.update

    def watch(self: LakeProgress, **counters: int) -> None:
        seen.append(dict(counters))
        real(self, **counters)

    monkeypatch.setattr(LakeProgress, "update", watch)
    job = LakeJob(lake.pattern, SALES_SCHEMA, sales_rules(), str(tmp_path / "wh"), partition_by=["order_date"],
                  name="sales-lake-spark", engine="spark", spark_master="local[2]")

    @flow
    def nightly() -> int:
        return job.run().good_rows

    state = nightly(return_state=True)
    assert state.is_completed() and state.result() == lake.good
    store = get_store()
    store.writer.flush()
    assert [(t["task_name"], t["state_type"]) for t in store.list_task_runs(str(state.run_id))] == [
        ("sales-lake-spark", "COMPLETED")]
    last = {m["name"]: m["value"] for m in store.get_metrics(str(state.run_id))}
    assert (last["lake_rows_read"], last["lake_good_rows"], last["lake_bad_rows"]) == (lake.rows, lake.good, lake.bad)
    assert last["lake_bad_bytes"] == lake.bad_bytes and last["lake_backlog_bytes"] == 0
    assert_lake_lineage(str(state.run_id), lake_dir=tmp_path / "lake", target=tmp_path / "wh", good=lake.good,
                        bad=lake.bad, events=events, capsys=capsys)
    total = sum(Path(f).stat().st_size for f in lake.files)
    partial = [u["bytes_read"] for u in seen if 0 < u.get("bytes_read", 0) < total]
    assert partial, f"no update while the tasks ran: {seen}"
    assert partial == sorted(partial)      # the backlog only shrinks


def test_a_failing_task_is_one_clear_line_and_publishes_nothing(spark: Any, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A fault injected into what the tasks run (their typing query): the job fails with the
    task's own error in one line, and the target gets no partition."""
    from headrace.spark import LakeJobError, lake_spark

    real = lake_spark.typed_select

    def broken(*args: Any) -> tuple[str, dict[str, Any]]:
        sql, params = real(*args)
        return sql.replace("__hr_line", "__hr_no_such_column", 1), params

    monkeypatch.setattr(lake_spark, "typed_select", broken)
    lake = write_dirty_lake(str(tmp_path / "lake"), records=200, files=2)
    job = LakeJob(lake.pattern, SALES_SCHEMA, sales_rules(), str(tmp_path / "wh"), partition_by=["order_date"],
                  engine="spark", spark_master="local[2]")
    with pytest.raises(LakeJobError) as info:
        job.run()
    message = str(info.value)
    assert "failed on Spark" in message and "__hr_no_such_column" in message and "\n" not in message
    assert not [p for p in (tmp_path / "wh").rglob("*.parquet")]


def test_task_error_picks_the_python_cause() -> None:
    from headrace.spark.lake_spark import task_error

    text = ("An exception was thrown from the Python worker:\nTraceback (most recent call last):\n"
            '  File "x.py", line 1, in f\nheadrace.errors.DataFileError: lake file s3://l/a.json vanished\n'
            "\tat org.apache.spark.api.python.BasePythonRunner$ReaderIterator.handlePythonException(x)\n")
    assert task_error(text) == "headrace.errors.DataFileError: lake file s3://l/a.json vanished"
    assert task_error("[PATH_NOT_FOUND] Path does not exist: file:/x\nmore") == \
        "[PATH_NOT_FOUND] Path does not exist: file:/x"
