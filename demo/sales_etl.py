"""The headrace demo: a sales ETL on embedded defaults (DuckDB in, DuckDB out, SQLite records).

    make demo                                    # or: .venv/bin/python demo/sales_etl.py
    headrace run demo/sales_etl.py:sales_etl -p start_date=2024-03-01 -p end_date=2024-03-31

The first run generates ``demo/data/source.duckdb``: about a million sales rows
over the first half of 2024, some of them dirty on purpose (no customer, zero or
negative quantity or price, unknown regions, duplicated orders). The flow then
extracts one date range with bound parameters, transforms it, loads it into
``demo/data/warehouse.duckdb`` (table ``fact_sales``) and prints a summary read
back from the run store. A second flow, the lake stage (``sales_lake``), writes a small dirty
NDJSON lake under ``demo/data/lake/raw`` and runs ``headrace.spark.LakeJob`` on DuckDB over it:
clean Parquet partitioned by day, bad lines quarantined with their reasons, counters printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from headrace import State, flow, get_run_logger, log_metric, runtime, task, task_input_hash
from headrace.io import read_sql, write_table
from headrace.quality import Suite, expect
from headrace.store import get_store

DATA_DIR = Path(__file__).resolve().parent / "data"
SOURCE_DB = DATA_DIR / "source.duckdb"
WAREHOUSE_DB = DATA_DIR / "warehouse.duckdb"
OPENLINEAGE_FILE = DATA_DIR / "openlineage.ndjson"
SOURCE_ROWS = 1_000_000
SOURCE_START = date(2024, 1, 1)
SOURCE_DAYS = 182  # 2024-01-01 .. 2024-06-30
REGIONS = ["North", "South", "East", "West", "Central"]
# Bump when the generator's SQL changes, so cached source files are rebuilt.
GENERATOR_VERSION = 1

# -- the source database ------------------------------------------------------------------------

# A deterministic uniform number in [0, 1) per (row, purpose): unlike random(), hash() gives the
# same data on every run and with any number of DuckDB threads.
_UNIFORM = "CREATE TEMP MACRO u(i, salt) AS (hash(i, salt) % 1000003) / 1000003.0"

# About 1% of rows lack a customer, 0.5% carry an unknown region, 0.5% a zero or negative
# quantity, 0.3% a zero or negative price, and 0.1% of orders appear twice.
_GENERATE = """
CREATE TABLE sales AS
WITH base AS (
    SELECT i, u(i, 'date') AS r_date, u(i, 'cust') AS r_cust, u(i, 'prod') AS r_prod,
           u(i, 'region') AS r_region, u(i, 'qty') AS r_qty, u(i, 'price') AS r_price,
           u(i, 'chan') AS r_chan, u(i, 'dirty') AS r_dirty
    FROM range($rows) AS t(i)
), orders AS (
    SELECT
        i + 100000001 AS order_id,
        CAST($start AS DATE) + CAST(floor(r_date * $days) AS INTEGER) AS order_date,
        CASE WHEN r_dirty < 0.010 THEN NULL
             ELSE 1 + CAST(floor(r_cust * 50000) AS INTEGER) END AS customer_id,
        1 + CAST(floor(r_prod * 500) AS INTEGER) AS product_id,
        CASE WHEN r_dirty >= 0.010 AND r_dirty < 0.015
             THEN (['Nrth', 'EU-West', 'unknown'])[1 + CAST(floor(r_region * 3) AS INTEGER)]
             ELSE $regions[1 + CAST(floor(r_region * 5) AS INTEGER)] END AS region,
        CASE WHEN r_dirty >= 0.015 AND r_dirty < 0.020 THEN -CAST(floor(r_qty * 3) AS INTEGER)
             ELSE 1 + CAST(floor(r_qty * 10) AS INTEGER) END AS quantity,
        CAST(CASE WHEN r_dirty >= 0.020 AND r_dirty < 0.023
                  THEN -round(r_price * 2, 0) * 9.99
                  ELSE round(20 + floor(r_prod * 500) * 0.97 + r_price * 30, 2)
             END AS DECIMAL(10, 2)) AS unit_price,
        (['web', 'store', 'phone', 'partner'])[1 + CAST(floor(r_chan * 4) AS INTEGER)] AS channel
    FROM base
)
SELECT * FROM orders
UNION ALL
SELECT * FROM orders WHERE order_id % 1000 = 7
"""


def _source_spec(rows: int) -> str:
    return json.dumps({"version": GENERATOR_VERSION, "rows": rows, "start": SOURCE_START.isoformat(),
                       "days": SOURCE_DAYS})


def _source_is_current(path: Path, rows: int) -> bool:
    if not path.exists():
        return False
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            found = con.execute("SELECT spec FROM generator").fetchone()
    except duckdb.Error:
        return False
    return found is not None and found[0] == _source_spec(rows)


def generate_source(path: Path | str = SOURCE_DB, rows: int = SOURCE_ROWS) -> bool:
    """Create the source sales database at ``path`` unless it is already there; True if built.

    Written to a temporary file and renamed, so an interrupted run never leaves half a source.
    """
    path = Path(path)
    if _source_is_current(path, rows):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    with duckdb.connect(str(tmp)) as con:
        con.execute(_UNIFORM)
        con.execute(_GENERATE, {"rows": rows, "start": SOURCE_START, "days": SOURCE_DAYS,
                                "regions": REGIONS})
        con.execute("CREATE TABLE generator AS SELECT $spec AS spec",
                    {"spec": _source_spec(rows)})
    os.replace(tmp, path)
    return True


# -- the tasks ------------------------------------------------------------------------------------


@task(retries=2, retry_delay_seconds=1, tags=["setup"])
def prepare_source(source: str, rows: int) -> str:
    """Make sure the source database exists (generated once, then reused)."""
    logger = get_run_logger()
    started = time.perf_counter()
    if generate_source(source, rows):
        logger.info("generated %s sales rows in %s (%.1f s)", f"{rows:,}", source,
                    time.perf_counter() - started)
    else:
        logger.info("using the existing source %s", source)
    return source


def source_snapshot_key(context: Any, arguments: dict[str, Any]) -> str | None:
    """The task's inputs plus the source file's identity: a rebuilt source misses old caches."""
    try:
        stat = Path(arguments["source"]).stat()
    except OSError:
        return None
    key = task_input_hash(context, {**arguments, "_source": (stat.st_size, stat.st_mtime_ns)})
    return key


@task(retries=3, retry_delay_seconds=[1, 5, 15], cache_key_fn=source_snapshot_key,
      cache_expiration=timedelta(hours=1), tags=["extraction", "critical"])
def extract_sales(source: str, start_date: date, end_date: date) -> pd.DataFrame:
    """The source's sales rows with ``start_date <= order_date <= end_date``."""
    query = """
        SELECT order_id, order_date, customer_id, product_id, region, quantity,
               CAST(unit_price AS DOUBLE) AS unit_price, channel
        FROM sales
        WHERE order_date BETWEEN :start_date AND :end_date
        ORDER BY order_id
    """
    # Values travel as bound parameters; read_sql also records the input on the task run.
    df = read_sql(query, f"duckdb:///{Path(source).resolve()}?access_mode=read_only",
                  params={"start_date": start_date, "end_date": end_date})
    get_run_logger().info("extracted %s rows for %s .. %s", f"{len(df):,}", start_date, end_date)
    return df


@task(tags=["transform"])
def transform(raw: pd.DataFrame) -> pd.DataFrame:
    """Revenue and ISO week per order; drop rows without a customer or with revenue <= 0."""
    df = raw.drop_duplicates(subset="order_id", keep="first")
    duplicates = len(raw) - len(df)
    df = df.assign(revenue=(df["quantity"] * df["unit_price"]).round(2))
    no_customer = df["customer_id"].isna()
    no_revenue = ~no_customer & ~(df["revenue"] > 0)
    df = df[~no_customer & ~no_revenue]
    iso = pd.to_datetime(df["order_date"]).dt.isocalendar()
    df = df.assign(iso_year=iso["year"].astype("int32"), iso_week=iso["week"].astype("int32"))
    df = df.assign(order_date=pd.to_datetime(df["order_date"]).dt.date,
                   customer_id=df["customer_id"].astype("int64"))
    dropped = {"duplicate": duplicates, "no_customer": int(no_customer.sum()),
               "revenue_not_positive": int(no_revenue.sum())}
    for reason, count in dropped.items():
        log_metric(f"rows_dropped_{reason}", count)
    log_metric("rows_extracted", len(raw))
    log_metric("rows_dropped", sum(dropped.values()))
    get_run_logger().info("kept %s of %s rows; dropped %s", f"{len(df):,}", f"{len(raw):,}",
                          ", ".join(f"{n:,} {reason}" for reason, n in dropped.items()))
    return df.reset_index(drop=True)


_FACT_SALES = """
CREATE TABLE IF NOT EXISTS fact_sales (
    order_id BIGINT NOT NULL, order_date DATE NOT NULL, customer_id BIGINT NOT NULL,
    product_id INTEGER, region VARCHAR, quantity INTEGER, unit_price DOUBLE, channel VARCHAR,
    revenue DOUBLE NOT NULL, iso_year INTEGER NOT NULL, iso_week INTEGER NOT NULL
)
"""
FACT_COLUMNS = ["order_id", "order_date", "customer_id", "product_id", "region", "quantity",
                "unit_price", "channel", "revenue", "iso_year", "iso_week"]


@task(retries=3, retry_delay_seconds=2, tags=["load", "critical"])
def load(clean: pd.DataFrame, warehouse: str, start_date: date, end_date: date) -> int:
    """Merge the rows into ``fact_sales`` by order_id in one transaction; a re-run never duplicates."""
    Path(warehouse).parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(warehouse) as con:
        con.execute(_FACT_SALES)
    # Exactly-once: a retry of this task finds its load in the warehouse's ledger and writes
    # nothing; a new run merges by order_id, so running the demo twice leaves the same rows.
    rows = write_table(clean[FACT_COLUMNS], "fact_sales", f"duckdb:///{Path(warehouse).resolve()}",
                       mode="merge", keys=["order_id"])
    log_metric("rows_loaded", rows)
    get_run_logger().info("loaded %s rows into fact_sales", f"{rows:,}")
    return rows


# The seed's five checks. Rows that fail a row-level check are quarantined (with the
# names of the checks they failed) instead of loaded; a failed mean or row count halts.
quality = Suite("sales", [
    expect.column_values_to_not_be_null("customer_id"),
    expect.column_values_to_be_between("revenue", min_value=0),
    expect.column_values_to_be_in_set("region", REGIONS),
    expect.column_mean_to_be_between("revenue", min_value=800, max_value=2500),
    # The seed allows 50,000 rows; one month of the generated source holds about 165,000.
    expect.table_row_count_to_be_between(min_value=1000, max_value=5_000_000),
], on_failure="quarantine")


# -- the run summary ------------------------------------------------------------------------------


def warehouse_rows(warehouse: str) -> int:
    with duckdb.connect(warehouse, read_only=True) as con:
        found = con.execute("SELECT count(*) FROM fact_sales").fetchone()
    return int(found[0]) if found else 0


def _seconds(row: dict[str, Any]) -> float | None:
    if row.get("started_at") is None or row.get("ended_at") is None:
        return None
    return float((row["ended_at"] - row["started_at"]).total_seconds())


def run_summary(flow_run_id: str, warehouse: str) -> str:
    """The flow run as recorded in the store: state, row counts, durations, warehouse size."""
    store = get_store()
    store.writer.flush()
    run = store.get_flow_run(flow_run_id)
    metrics = {m["name"]: m["value"] for m in store.get_metrics(flow_run_id)}
    params = json.loads(run["parameters"] or "{}")
    duration = _seconds(run)
    lines = ["", f"{run['flow_name']}: flow run {run['id']} {run['state_name']}"
             + (f" in {duration:.2f} s" if duration is not None else ""),
             f"  date range       {params.get('start_date')} .. {params.get('end_date')}"]
    for label, name in (("rows extracted", "rows_extracted"), ("rows dropped", "rows_dropped"),
                        ("rows loaded", "rows_loaded")):
        value = metrics.get(name)
        lines.append(f"  {label:<16} {'-' if value is None else f'{int(value):,}'}")
    reasons = {k.removeprefix("rows_dropped_"): v for k, v in metrics.items()
               if k.startswith("rows_dropped_")}
    if reasons:
        lines.append("    " + ", ".join(f"{r.replace('_', ' ')}: {int(v):,}" for r, v in reasons.items()))
    checks = store.get_quality_results(flow_run_id)
    if checks:
        quarantined = int(metrics.get(f"quality.{quality.name}.rows_quarantined", 0))
        lines.append(f"  Quality checks: {sum(c['success'] for c in checks)}/{len(checks)} passed; "
                     f"{quarantined:,} rows quarantined")
    lines.append("  tasks")
    for t in store.list_task_runs(flow_run_id):
        secs = _seconds(t)
        took = f"{secs:7.3f} s" if secs is not None else "(result reused)"
        lines.append(f"    {t['task_key']:<20} {t['state_name']:<10} {took}")
    if run["state_message"]:
        lines.append(f"  message          {run['state_message']}")
    if Path(warehouse).exists():
        lines.append(f"  warehouse        fact_sales holds {warehouse_rows(warehouse):,} rows ({warehouse})")
    return "\n".join(lines)


def print_summary(flow: Any, run: Any, state: Any) -> None:
    """Flow hook: print the run summary when the run ends, however it ends."""
    print(run_summary(run.id, str(run.parameters.get("warehouse", WAREHOUSE_DB))), flush=True)


# -- the flow -------------------------------------------------------------------------------------


@flow(name="Sales ETL Pipeline", retries=1, retry_delay_seconds=5,
      on_completion=[print_summary], on_failure=[print_summary])
def sales_etl(start_date: date = date(2024, 2, 1), end_date: date = date(2024, 2, 29),
              source: str = str(SOURCE_DB), warehouse: str = str(WAREHOUSE_DB),
              source_rows: int = SOURCE_ROWS) -> int:
    """Extract one date range of sales, clean it, and load it into the warehouse; returns rows loaded."""
    start_date, end_date = _as_date(start_date), _as_date(end_date)
    if end_date < start_date:
        raise ValueError(f"end_date {end_date} is before start_date {start_date}")
    get_run_logger().info("flow run %s: sales from %s to %s", runtime.flow_run_id, start_date, end_date)
    prepare_source(source, source_rows)
    raw = extract_sales(source, start_date, end_date)
    clean = quality.gate(transform(raw))
    return load(clean, warehouse, start_date, end_date)


def _as_date(value: date | str) -> date:
    """Dates given as ISO text (a Python caller's strings) become dates."""
    return value if isinstance(value, date) else date.fromisoformat(value)


# -- the lake stage: raw NDJSON in a lake to partitioned Parquet, bad rows kept ----------------------

LAKE_DIR = DATA_DIR / "lake"


@flow(name="Sales lake to warehouse")
def sales_lake(folder: str = str(LAKE_DIR), records: int = 20_000) -> dict[str, int]:
    """Write a small dirty NDJSON lake (2% bad lines) and run the lake job on DuckDB over it."""
    from headrace.spark import LakeJob
    from headrace.spark.testing import SALES_SCHEMA, sales_rules, write_dirty_lake

    lake = write_dirty_lake(os.path.join(folder, "raw"), records=records, files=4)
    job = LakeJob(lake.pattern, SALES_SCHEMA, sales_rules(), os.path.join(folder, "warehouse", "sales"),
                  partition_by=["order_date"], quarantine=os.path.join(folder, "warehouse", "_quarantine"),
                  name="sales-lake")
    result = job.run()
    counters = {k: getattr(result, k) for k in ("files_read", "bytes_read", "rows_read", "good_rows", "bad_rows",
                                                "bad_bytes", "bytes_written")}
    print("lake stage: " + ", ".join(f"{k} {v:,}" for k, v in counters.items()), flush=True)
    return counters


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start-date", type=date.fromisoformat, default=date(2024, 2, 1))
    parser.add_argument("--end-date", type=date.fromisoformat, default=date(2024, 2, 29))
    args = parser.parse_args(argv)
    # Show the run's log lines on the terminal (the headrace CLI does this for its own runs).
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"))
    logging.getLogger("headrace").addHandler(handler)
    # The demo's OpenLineage events go to a file beside its data (set HEADRACE_OPENLINEAGE_URL to send
    # them elsewhere, e.g. to Marquez; set it empty to turn them off).
    os.environ.setdefault("HEADRACE_OPENLINEAGE_URL", OPENLINEAGE_FILE.as_uri())
    events_before = _lines(OPENLINEAGE_FILE)
    # Flow.__call__ is typed as the function's own signature, which has no return_state.
    state: State = sales_etl(start_date=args.start_date, end_date=args.end_date,  # type: ignore
                             return_state=True)
    print(openlineage_summary(events_before), flush=True)
    print_lineage(str(WAREHOUSE_DB))
    print(f"\nSee this run in the web page: {ui_command(str(state.run_id))}", flush=True)
    lake: State = sales_lake(return_state=True)  # type: ignore
    print(f"See the lake job's counters: {ui_command(str(lake.run_id))} (then Lake jobs)", flush=True)
    return 0 if state.is_completed() and lake.is_completed() else 1


def print_lineage(warehouse: str) -> None:
    """Where the warehouse table comes from, as ``headrace lineage show`` prints it."""
    from headrace.cli import main as headrace_cli
    from headrace.lineage import DatasetNotFound, find_dataset

    path = Path(warehouse).resolve()
    name = f"duckdb://{path}/{path.stem}.main.fact_sales"
    try:
        find_dataset(name)
    except DatasetNotFound:
        return  # the load did not run
    print(f"\nLineage of the warehouse table:\n$ headrace lineage show {name} --upstream", flush=True)
    headrace_cli(["lineage", "show", name, "--upstream"])


def _lines(path: Path) -> int:
    return sum(1 for _ in path.open("rb")) if path.exists() else 0


def openlineage_summary(events_before: int) -> str:
    """How many OpenLineage events this run emitted, and where they went."""
    from headrace.lineage.openlineage import emitter_from_env

    emitter = emitter_from_env()
    if emitter is None:
        return "\nOpenLineage events: off (HEADRACE_OPENLINEAGE_URL is empty)"
    emitter.drain()
    url = os.environ["HEADRACE_OPENLINEAGE_URL"]
    if url != OPENLINEAGE_FILE.as_uri():
        return f"\nOpenLineage events: sent to {emitter.dispatcher.where}"
    written = _lines(OPENLINEAGE_FILE) - events_before
    return (f"\nOpenLineage events: {written} written to {OPENLINEAGE_FILE} (one START and one COMPLETE "
            "per flow run and task run; Marquez and other catalogs read this format)")


def ui_command(run_id: str) -> str:
    """The command that serves the web page and opens it on this run."""
    exe = Path(sys.executable).with_name("headrace")
    try:
        shown = str(exe.relative_to(Path.cwd()))
    except ValueError:
        shown = str(exe) if exe.exists() else "headrace"
    return f"{shown} ui --run {run_id}"


if __name__ == "__main__":
    sys.exit(main())
