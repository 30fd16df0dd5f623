"""The flows the web page tests run: one that completes, one whose task fails after a retry."""

FLOWS = '''
import pandas as pd

from headrace import flow, task, get_run_logger, log_metric
from headrace.engine import record_dataset
from headrace.quality import Suite, expect

SECRET_URL = "postgresql://loader:CANARY-7f3a@db.internal/sales"


@task(retries=1, retry_delay_seconds=0, persist_result=True)
def extract(n: int) -> list[int]:
    get_run_logger().info("extracting %s rows from %s", n, SECRET_URL)
    record_dataset("input", "postgresql", "postgresql://db.internal/sales", "raw_orders", rows=n)
    return list(range(n))


@task(persist_result=True)
def transform(rows: list[int]) -> list[int]:
    record_dataset("input", "postgresql", "postgresql://db.internal/sales", "raw_orders", rows=len(rows))
    return [r * 2 for r in rows]


@task(retries=1, retry_delay_seconds=0)
def explode(rows: list[int]) -> int:
    get_run_logger().error("load refused: the warehouse said no to %s (password=CANARY-7f3a)", SECRET_URL)
    raise ValueError("row 7 broke the load; connect " + SECRET_URL)


@task
def load(rows: list[int]) -> int:
    record_dataset("output", "postgresql", "postgresql://db.internal/dwh", "fact_orders", rows=len(rows))
    return len(rows)


@flow(name="orders-good")
def good(n: int = 5, dsn: str = SECRET_URL) -> int:
    rows = transform(extract(n))
    log_metric("rows_seen", len(rows))
    return load(rows)


@flow(name="orders-bad")
def bad(n: int = 3) -> int:
    return explode(transform(extract(n)))


quality = Suite("orders-suite", [expect.column_values_to_not_be_null("customer_id"),
                                 expect.column_values_to_be_between("amount", min_value=0)],
                on_failure="quarantine")


@flow(name="orders-checked")
def checked() -> int:
    frame = pd.DataFrame({"customer_id": [1, None, 3, 4], "amount": [10.0, 5.0, -2.0, 7.0]})
    return len(quality.gate(frame))


LAKE = ("lake_files_read", "lake_bytes_read", "lake_rows_read", "lake_backlog_bytes", "lake_good_rows",
        "lake_bad_rows", "lake_bad_bytes", "lake_bytes_written")


@flow(name="lake-orders")
def lake(steps: int = 3) -> int:
    for step in range(1, steps + 1):
        for i, name in enumerate(LAKE):
            log_metric(name, step * (i + 1) * 100)
    return steps
'''
