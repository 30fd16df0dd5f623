"""``suite.gate(df)``: run a suite inside a flow as a recorded task run and apply its policy.

halt: any failed check raises QualityGateFailed, so nothing downstream runs.
warn: failures are recorded and logged; the data goes on unchanged.
quarantine: rows failing row-level checks are written, with the names of the
checks they failed and the run id, to ``HEADRACE_HOME/quarantine/<suite>/<run>.parquet``
(and to ``quarantine_to`` if given); the rest go on. Failed aggregate, table or
history checks cannot be blamed on rows, so they still halt.
Rows in = rows passed + rows quarantined, always.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from headrace.errors import QualityGateFailed
from headrace.quality.backends import open_source
from headrace.quality.expectation import Expectation
from headrace.quality.results import ResultFormat, SuiteResult
from headrace.quality.run import run_checks, runnable_row_checks

log = logging.getLogger("headrace.quality")
RUN_ID_COLUMN = "_run_id"


class Suite(Protocol):
    """What a gate needs of a suite (``headrace.quality.Suite``)."""

    @property
    def name(self) -> str: ...

    @property
    def on_failure(self) -> str: ...

    @property
    def expectations(self) -> list[Expectation]: ...

    last_outcome: Any


@dataclass
class GateOutcome:
    """What a gate did; kept in the stored profile and returned by ``last_outcome``."""

    suite: str
    policy: str
    result: SuiteResult
    rows_in: int
    rows_passed: int
    rows_quarantined: int
    quarantine_path: str | None = None
    halted: bool = False
    flow_run_id: str | None = None
    task_run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"suite": self.suite, "policy": self.policy, "success": self.result.success,
                "checks": len(self.result), "passed": self.result.passed_count,
                "rows_in": self.rows_in, "rows_passed": self.rows_passed,
                "rows_quarantined": self.rows_quarantined,
                "quarantine_path": self.quarantine_path, "halted": self.halted,
                "flow_run_id": self.flow_run_id, "task_run_id": self.task_run_id}


def run_gate(suite: Suite, data: Any, *, quarantine_to: Any = None) -> Any:
    """Run the gate as a task run named ``quality-gate:<suite>``; returns the rows to pass on."""
    from headrace.engine import task

    gate_task = task(name=f"quality-gate:{suite.name}", persist_result=False)(_gate)
    return gate_task(suite, data, quarantine_to)


def _gate(suite: Suite, data: Any, quarantine_to: Any = None) -> Any:
    from headrace.engine import current_task_run

    ctx = current_task_run()
    store = ctx.store if ctx else None
    flow_run_id = ctx.flow_run_id if ctx else None
    task_run_id = ctx.task_run_id if ctx else None
    run_id = flow_run_id or task_run_id or "adhoc"
    # The N-th gate of this suite in the flow run gets its own file; a retry rewrites its own.
    nth = ctx.task_key.rsplit("-", 1)[-1] if ctx and flow_run_id else "0"
    file_stem = run_id if nth == "0" else f"{run_id}-{nth}"
    history = _history(suite, store, flow_run_id)
    source = open_source(data)
    result = run_checks(suite.name, suite.expectations, source, ResultFormat.BASIC, history)
    exact = {e.columns[0] for e in suite.expectations if e.kind == "history" and e.spec.op == "distinct_count"}
    profile = source.profile(exact)
    outcome, passed = _apply_policy(suite, source, data, result, (run_id, file_stem),
                                    quarantine_to, int(profile["row_count"]))
    outcome.flow_run_id, outcome.task_run_id = flow_run_id, task_run_id
    suite.last_outcome = outcome
    if store is not None:
        _record(store, suite, profile, outcome, flow_run_id, task_run_id)
    from headrace.lineage.quality import gate_checked

    gate_checked(data, passed, [r.to_dict() for r in result.results], profile, suite.name)
    _log(outcome)
    if outcome.halted:
        names = [r.name for r in result.failed]
        raise QualityGateFailed(
            f"quality gate {suite.name!r} stopped the run: {len(names)} of {len(result)} checks "
            f"failed: {'; '.join(r.summary() for r in result.failed)}", names)
    return passed


def _history(suite: Suite, store: Any, flow_run_id: str | None) -> list[dict[str, Any]]:
    windows = [int(e.kwargs["window"]) for e in suite.expectations if e.kind == "history"]
    if store is None or not windows:
        return []
    rows = store.quality_history(suite.name, limit=max(windows), exclude_run=flow_run_id)
    return [r["profile"] for r in rows]


def _apply_policy(suite: Suite, source: Any, data: Any, result: SuiteResult,
                  ids: tuple[str, str], quarantine_to: Any, n: int) -> tuple[GateOutcome, Any]:
    run_id, file_stem = ids
    outcome = GateOutcome(suite.name, suite.on_failure, result, n, n, 0)
    if suite.on_failure == "warn" or (result.success and suite.on_failure == "halt"):
        return outcome, data
    blocking = [r for r in result.failed if not r.row_level or r.exception_info]
    if suite.on_failure == "halt" or blocking:
        outcome.halted, outcome.rows_passed = True, 0
        return outcome, None
    # Quarantine takes every unexpected row out, also those a check's `mostly` tolerates:
    # tolerating a few bad rows is no reason to load them.
    if not any(r.row_level and r.result.get("unexpected_count") for r in result.results):
        return outcome, data
    good, bad = source.split(runnable_row_checks(suite.expectations, source))
    outcome.rows_passed, outcome.rows_quarantined = _len(good), _len(bad)
    outcome.quarantine_path = str(write_quarantine(bad, suite.name, run_id, file_stem))
    if quarantine_to is not None:
        _deliver(quarantine_to, bad, run_id)
    if outcome.rows_passed + outcome.rows_quarantined != n:  # the promise users rely on
        raise AssertionError(f"quarantine lost rows: {n} in, {outcome.rows_passed} passed, "
                             f"{outcome.rows_quarantined} quarantined")
    return outcome, good


def _len(frame: Any) -> int:
    return int(frame.num_rows) if isinstance(frame, pa.Table) else len(frame)


def to_arrow(frame: Any) -> pa.Table:
    if isinstance(frame, pa.Table):
        return frame
    if type(frame).__module__.startswith("polars"):
        return frame.to_arrow()
    return pa.Table.from_pandas(frame, preserve_index=False)


def quarantine_dir(suite: str) -> Path:
    from headrace.config import load_settings

    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", suite)
    return load_settings().home / "quarantine" / safe


def write_quarantine(bad: Any, suite: str, run_id: str, file_stem: str | None = None) -> Path:
    """Write the bad rows (plus ``_run_id``) as Parquet, atomically; returns the path."""
    import pyarrow.parquet as pq

    table = to_arrow(bad)
    table = table.append_column(RUN_ID_COLUMN, pa.array([run_id] * table.num_rows, pa.string()))
    path = quarantine_dir(suite) / f"{file_stem or run_id}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
    from headrace.lineage.capture import file_write

    file_write("file", str(path), "file", table, None, table.num_rows, table.nbytes, quarantine=True)
    return path


def _deliver(target: Any, bad: Any, run_id: str) -> None:
    """Also hand the bad rows to the user's target: a callable, or a table via headrace.io."""
    if callable(target):
        target(bad)
        return
    from headrace.quality.backends.sources import DuckDBTable, PostgresTable

    table = to_arrow(bad).append_column(RUN_ID_COLUMN, pa.array([run_id] * _len(bad), pa.string()))
    if isinstance(target, PostgresTable | DuckDBTable):
        from headrace.io import write_table

        con = target.url if isinstance(target, PostgresTable) else target.database
        if isinstance(con, Path) or (isinstance(target, DuckDBTable) and isinstance(con, str)
                                     and "://" not in con):
            con = f"duckdb:///{con}"
        write_table(table, target.table, con, mode="append", schema=target.schema)
        return
    raise TypeError("quarantine_to must be a callable, PostgresTable or DuckDBTable, "
                    f"not {type(target).__name__}")


def _record(store: Any, suite: Suite, profile: dict[str, Any], outcome: GateOutcome,
            flow_run_id: str | None, task_run_id: str | None) -> None:
    result = outcome.result
    store.save_quality_results(suite=suite.name, results=[r.to_dict() for r in result.results],
                               flow_run_id=flow_run_id, task_run_id=task_run_id)
    profile = {**profile, "gate": outcome.to_dict()}
    profile["task_run_id"] = task_run_id
    # Learn only from data the suite accepted as a whole: no failed aggregate/table checks.
    learnable = not outcome.halted and all(r.success for r in result.results if not r.row_level)
    store.save_quality_profile(suite=suite.name, success=learnable, profile=profile,
                               flow_run_id=flow_run_id)
    try:
        from headrace.engine import log_metric

        log_metric(f"quality.{suite.name}.rows_quarantined", outcome.rows_quarantined)
        log_metric(f"quality.{suite.name}.checks_failed", len(result.failed))
    except ImportError:  # pragma: no cover
        pass


def _log(outcome: GateOutcome) -> None:
    r = outcome.result
    if r.success:
        log.info("quality gate %s: %s/%s checks passed", outcome.suite, r.passed_count, len(r))
        return
    log.warning("quality gate %s (%s): %s/%s checks passed, %s rows quarantined; failed: %s",
                outcome.suite, outcome.policy, r.passed_count, len(r), outcome.rows_quarantined,
                ", ".join(x.name for x in r.failed))
