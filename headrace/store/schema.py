"""The run store's tables and its ordered list of migrations.

Times are stored as timezone-aware UTC datetimes. JSON documents are stored as
text so that SQLite and PostgreSQL hold the same bytes. Every migration has a
stable id; a store that has applied an id this code does not know was written
by a newer headrace and is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    case,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection

from headrace.state_types import TERMINAL_TYPES

metadata = MetaData()

ID = String(32)


def _ts(name: str, **kw: object) -> Column[object]:
    return Column(name, DateTime(timezone=True), **kw)  # type: ignore[arg-type]


migrations_table = Table(
    "hr_migrations", metadata,
    Column("id", String(64), primary_key=True),
    _ts("applied_at", nullable=False),
)

flow_runs = Table(
    "hr_flow_runs", metadata,
    Column("id", ID, primary_key=True),
    Column("flow_name", String(200), nullable=False),
    Column("name", String(200), nullable=False),
    Column("state_type", String(20), nullable=False),
    Column("state_name", String(40), nullable=False),
    Column("state_message", Text),
    Column("parameters", Text),            # JSON
    Column("tags", Text),                  # JSON list
    Column("entrypoint", Text),            # path/to/file.py:flow_fn
    Column("run_count", Integer, nullable=False, default=0),
    Column("parent_run_id", ID),           # subflows: the parent flow run
    Column("retry_of", ID),                # `headrace retry`: the run being re-run
    Column("deployment_id", ID),
    Column("idempotency_key", String(300), unique=True),
    _ts("expected_start"),                 # scheduled time of a deployment run
    _ts("created_at", nullable=False),
    _ts("started_at"),
    _ts("ended_at"),
    _ts("heartbeat_at"),
    Column("hostname", String(200)),
    Column("pid", Integer),
    Column("worker", String(200)),
    Column("rows_loaded", Integer),
    Column("result", Text),                # JSON result reference
    Column("cancel_requested", Boolean, nullable=False, default=False),
)
Index("ix_hr_flow_runs_created", flow_runs.c.created_at)
Index("ix_hr_flow_runs_flow_created", flow_runs.c.flow_name, flow_runs.c.created_at)
Index("ix_hr_flow_runs_state", flow_runs.c.state_type, flow_runs.c.expected_start)
Index("ix_hr_flow_runs_deployment", flow_runs.c.deployment_id, flow_runs.c.expected_start)

task_runs = Table(
    "hr_task_runs", metadata,
    Column("id", ID, primary_key=True),
    Column("flow_run_id", ID),
    Column("task_name", String(200), nullable=False),
    Column("task_key", String(300), nullable=False),  # name-N: the call's place in its flow
    Column("state_type", String(20), nullable=False),
    Column("state_name", String(40), nullable=False),
    Column("state_message", Text),
    Column("attempts", Integer, nullable=False, default=0),
    Column("tags", Text),
    Column("cache_key", String(200)),
    Column("inputs_hash", String(80)),
    Column("error", Text),
    Column("result", Text),                # JSON result reference
    _ts("created_at", nullable=False),
    _ts("started_at"),
    _ts("ended_at"),
)
Index("ix_hr_task_runs_flow", task_runs.c.flow_run_id, task_runs.c.created_at)

state_changes = Table(
    "hr_state_changes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", ID, nullable=False),
    Column("run_kind", String(8), nullable=False),      # flow | task
    Column("from_type", String(20)),
    Column("to_type", String(20), nullable=False),
    Column("to_name", String(40), nullable=False),
    Column("message", Text),
    _ts("at", nullable=False),
)
Index("ix_hr_state_changes_run", state_changes.c.run_id, state_changes.c.id)

logs = Table(
    "hr_logs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("flow_run_id", ID),
    Column("task_run_id", ID),
    _ts("at", nullable=False),
    Column("level", Integer, nullable=False),
    Column("logger", String(200), nullable=False),
    Column("message", Text, nullable=False),
)
Index("ix_hr_logs_flow", logs.c.flow_run_id, logs.c.id)

metrics = Table(
    "hr_metrics", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("flow_run_id", ID),
    Column("task_run_id", ID),
    Column("name", String(200), nullable=False),
    Column("value", Float, nullable=False),
    _ts("at", nullable=False),
)
Index("ix_hr_metrics_flow", metrics.c.flow_run_id, metrics.c.name)
Index("ix_hr_metrics_name", metrics.c.name, metrics.c.at)

cache = Table(
    "hr_cache", metadata,
    Column("cache_key", String(200), primary_key=True),
    Column("task_name", String(200), nullable=False),
    Column("result", Text, nullable=False),              # JSON result reference
    _ts("created_at", nullable=False),
    _ts("expires_at"),
)

datasets = Table(
    "hr_datasets", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(40), nullable=False),          # postgresql, duckdb, sqlite, file, s3 ...
    Column("uri", Text, nullable=False),                 # location without secrets
    Column("name", Text, nullable=False),                # table or path
    _ts("created_at", nullable=False),
    UniqueConstraint("kind", "uri", "name", name="uq_hr_datasets_identity"),
)

dataset_io = Table(
    "hr_dataset_io", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("flow_run_id", ID),
    Column("task_run_id", ID),
    Column("dataset_id", Integer, nullable=False),
    Column("direction", String(8), nullable=False),     # input | output
    Column("rows", Integer),
    Column("bytes", Integer),
    _ts("at", nullable=False),
    # JSON: what lineage knows beyond counts: schema, column_lineage, sql, assertions, metrics, attempt
    Column("details", Text),
)
Index("ix_hr_dataset_io_flow", dataset_io.c.flow_run_id)
Index("ix_hr_dataset_io_dataset", dataset_io.c.dataset_id, dataset_io.c.at)

quality_results = Table(
    "hr_quality_results", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("flow_run_id", ID),
    Column("task_run_id", ID),
    Column("suite", String(200), nullable=False),
    Column("check_name", String(300), nullable=False),
    Column("expectation_type", String(200), nullable=False),
    Column("success", Boolean, nullable=False),
    Column("element_count", Integer),
    Column("unexpected_count", Integer),
    Column("unexpected_percent", Float),
    Column("observed_value", Text),                      # JSON
    Column("details", Text),                             # JSON: the whole result
    _ts("at", nullable=False),
)
Index("ix_hr_quality_results_flow", quality_results.c.flow_run_id)
Index("ix_hr_quality_results_suite", quality_results.c.suite, quality_results.c.at)

quality_profiles = Table(
    "hr_quality_profiles", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("flow_run_id", ID),
    Column("suite", String(200), nullable=False),
    Column("success", Boolean, nullable=False),
    Column("profile", Text, nullable=False),             # JSON
    _ts("at", nullable=False),
)
Index("ix_hr_quality_profiles_suite", quality_profiles.c.suite, quality_profiles.c.at)

deployments = Table(
    "hr_deployments", metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("flow_name", String(200), nullable=False),
    Column("entrypoint", Text, nullable=False),
    Column("parameters", Text),                          # JSON
    Column("schedule", Text),                            # JSON
    Column("tags", Text),                                # JSON
    Column("concurrency_limit", Integer),
    Column("catchup", Boolean, nullable=False, default=False),
    Column("paused", Boolean, nullable=False, default=False),
    Column("late_after_seconds", Float),
    Column("alerts", Text),                              # JSON
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    _ts("scheduled_until"),                              # runs are created up to here
    Column("error", Text),                               # why planning its runs failed, if it did
)

concurrency_limits = Table(
    "hr_concurrency_limits", metadata,
    Column("tag", String(200), primary_key=True),
    Column("limit", Integer, nullable=False),
)

concurrency_slots = Table(
    "hr_concurrency_slots", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tag", String(200), nullable=False),
    Column("holder", ID, nullable=False),                # task run or flow run id
    Column("flow_run_id", ID),
    _ts("acquired_at", nullable=False),
)
Index("ix_hr_concurrency_slots_tag", concurrency_slots.c.tag)
Index("ix_hr_concurrency_slots_holder", concurrency_slots.c.holder)

# Alerts already sent for a run (failure, success, late): the primary key makes
# each alert fire once even with several schedulers and workers on one store.
run_alerts = Table(
    "hr_run_alerts", metadata,
    Column("flow_run_id", ID, primary_key=True),
    Column("kind", String(20), primary_key=True),
    _ts("sent_at", nullable=False),
)

# Per flow run: task counts, rows read and written, quality counts; kept as task runs
# finish (headrace.store.summaries), so list pages never re-aggregate task runs.
run_summaries = Table(
    "hr_run_summaries", metadata,
    Column("flow_run_id", ID, primary_key=True),
    Column("tasks_total", Integer, nullable=False, default=0),
    Column("tasks_completed", Integer, nullable=False, default=0),   # includes cached
    Column("tasks_cached", Integer, nullable=False, default=0),
    Column("tasks_failed", Integer, nullable=False, default=0),      # failed, timed out, crashed
    Column("tasks_cancelled", Integer, nullable=False, default=0),
    Column("tasks_retried", Integer, nullable=False, default=0),     # finished after more than one attempt
    Column("rows_in", BigInteger, nullable=False, default=0),
    Column("rows_out", BigInteger, nullable=False, default=0),
    Column("rows_quarantined", BigInteger, nullable=False, default=0),
    Column("quality_gates", Integer, nullable=False, default=0),
    Column("checks_failed", Integer, nullable=False, default=0),
    _ts("updated_at"),
)

# A re-run that runs chosen tasks again: the earlier run's task keys not to reuse.
rerun_plans = Table(
    "hr_rerun_plans", metadata,
    Column("flow_run_id", ID, primary_key=True),
    Column("rerun_tasks", Text, nullable=False),          # JSON list of task keys
    _ts("created_at", nullable=False),
)

# Indexes the web page's keyset-paginated lists walk (migration 0013).
UI_INDEXES = [
    Index("ix_hr_flow_runs_created_id", flow_runs.c.created_at, flow_runs.c.id),
    Index("ix_hr_flow_runs_state_created", flow_runs.c.state_type, flow_runs.c.created_at),
    Index("ix_hr_flow_runs_deployment_created", flow_runs.c.deployment_id, flow_runs.c.created_at),
    Index("ix_hr_logs_task", logs.c.task_run_id, logs.c.id),
    Index("ix_hr_datasets_name", datasets.c.name),
    Index("ix_hr_quality_profiles_flow", quality_profiles.c.flow_run_id),
]

CORE_TABLES = [
    flow_runs, task_runs, state_changes, logs, metrics, cache, datasets, dataset_io,
    quality_results, quality_profiles, deployments, concurrency_limits, concurrency_slots,
]


def _create(tables: list[Table]) -> Callable[[Connection], None]:
    def run(conn: Connection) -> None:
        metadata.create_all(conn, tables=tables, checkfirst=True)
    return run


task_runs_state_index = Index("ix_hr_task_runs_state", task_runs.c.state_type)


def _deployment_errors(conn: Connection) -> None:
    """Deployments whose planning failed say why; crash marking finds unfinished task runs fast."""
    from sqlalchemy import inspect

    if "error" not in {c["name"] for c in inspect(conn).get_columns("hr_deployments")}:
        conn.execute(text("ALTER TABLE hr_deployments ADD COLUMN error TEXT"))
    task_runs_state_index.create(conn, checkfirst=True)


def _lineage_details(conn: Connection) -> None:
    """Dataset reads and writes keep their lineage details (schema, column lineage, SQL, checks)."""
    from sqlalchemy import inspect

    if "details" not in {c["name"] for c in inspect(conn).get_columns("hr_dataset_io")}:
        conn.execute(text("ALTER TABLE hr_dataset_io ADD COLUMN details TEXT"))
    dataset_io_task_index.create(conn, checkfirst=True)
    task_runs_cache_index.create(conn, checkfirst=True)


dataset_io_task_index = Index("ix_hr_dataset_io_task", dataset_io.c.task_run_id)
# A cache hit finds the task run that computed the entry, to record again what it read.
task_runs_cache_index = Index("ix_hr_task_runs_cache_key", task_runs.c.cache_key)


TERMINAL = TERMINAL_TYPES
QUARANTINED_METRIC = "quality.%.rows_quarantined"   # LIKE patterns of the gate's metrics
CHECKS_FAILED_METRIC = "quality.%.checks_failed"


def _count(cond: Any) -> Any:
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)


def _sum_rows(cond: Any, value: Any) -> Any:
    return func.coalesce(func.sum(case((cond, value), else_=0)), 0)


def rebuild_run_summaries(conn: Connection) -> None:
    """Sum every stored run into ``hr_run_summaries`` again (migration 0013, repairs, benches)."""
    t, s, io, m = task_runs.c, run_summaries.c, dataset_io.c, metrics.c
    conn.execute(run_summaries.delete())
    per_run = select(
        t.flow_run_id, func.count(), _count(t.state_type == "COMPLETED"), _count(t.state_name == "Cached"),
        _count(t.state_type.in_(("FAILED", "CRASHED"))), _count(t.state_type == "CANCELLED"),
        _count(t.state_type.in_(TERMINAL) & (t.attempts > 1)),
    ).where(t.flow_run_id.is_not(None)).group_by(t.flow_run_id)
    cols = ["flow_run_id", "tasks_total", "tasks_completed", "tasks_cached", "tasks_failed", "tasks_cancelled",
            "tasks_retried"]
    conn.execute(insert(run_summaries).from_select(cols, per_run))
    io_only = (select(io.flow_run_id).where(io.flow_run_id.is_not(None), io.flow_run_id.not_in(select(s.flow_run_id)))
               .distinct())
    conn.execute(insert(run_summaries).from_select(["flow_run_id"], io_only))
    mine_io = io.flow_run_id == s.flow_run_id
    mine_m = m.flow_run_id == s.flow_run_id
    conn.execute(update(run_summaries).values(
        rows_in=select(_sum_rows(io.direction == "input", io.rows)).where(mine_io).scalar_subquery(),
        rows_out=select(_sum_rows(io.direction == "output", io.rows)).where(mine_io).scalar_subquery(),
        rows_quarantined=select(_sum_rows(m.name.like(QUARANTINED_METRIC), m.value)).where(
            mine_m, m.name.like("quality.%")).scalar_subquery(),
        quality_gates=select(_count(m.name.like(CHECKS_FAILED_METRIC))).where(
            mine_m, m.name.like("quality.%")).scalar_subquery(),
        checks_failed=select(_sum_rows(m.name.like(CHECKS_FAILED_METRIC), m.value)).where(
            mine_m, m.name.like("quality.%")).scalar_subquery(),
    ))


def _ui_summaries(conn: Connection) -> None:
    """The web page's indexes and summary tables, summing the runs already stored."""
    metadata.create_all(conn, tables=[run_summaries, rerun_plans], checkfirst=True)
    for index in UI_INDEXES:
        index.create(conn, checkfirst=True)
    rebuild_run_summaries(conn)


# Append only; never edit or reorder an applied migration.
MIGRATIONS: list[tuple[str, Callable[[Connection], None]]] = [
    ("0001_initial", _create(CORE_TABLES)),
    ("0003_schedule_run_alerts", _create([run_alerts])),
    ("0004_deployment_errors", _deployment_errors),
    ("0013_ui_summaries", _ui_summaries),
    ("0011_lineage_details", _lineage_details),
]
