"""Benchmark: headrace.io against the common ways of loading and extracting with PostgreSQL.

Run: ``.venv/bin/python bench/io_postgres.py [--rows 1000000]`` (needs PostgreSQL on
127.0.0.1:5432 and ``psql``; ``HEADRACE_BENCH_PG`` overrides the server URL). Works in a
scratch schema that it drops afterwards. Every figure is measured in this run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import create_engine, text

from headrace.io import read_sql, write_table

PG = os.environ.get("HEADRACE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")


def sales_frame(n: int, start: int = 0) -> pd.DataFrame:
    """The 8-column sales frame of the issue: ids, date, region, product, quantity, price."""
    rng = np.random.default_rng(42 + start)
    regions = np.array(["North", "South", "East", "West", "Central"])
    qty = rng.integers(1, 20, n)
    price = rng.uniform(5, 500, n).round(2)
    return pd.DataFrame({
        "order_id": np.arange(start, start + n, dtype="int64"),
        "customer_id": rng.integers(1, 50_000, n),
        "order_date": (pd.Timestamp("2024-01-01")
                       + pd.to_timedelta(rng.integers(0, 366, n), unit="D")).date,
        "region": regions[rng.integers(0, 5, n)],
        "product": np.char.add("SKU-", rng.integers(1000, 9999, n).astype(str)),
        "quantity": qty.astype("int32"),
        "unit_price": price,
        "revenue": (qty * price).round(2),
    })


def timed(fn: Callable[[], Any], repeat: int = 1,
          setup: Callable[[], Any] | None = None) -> float:
    """The best of ``repeat`` runs, in seconds (``setup`` runs untimed before each)."""
    best = float("inf")
    for _ in range(repeat):
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def psql(url: str, command: str) -> None:
    subprocess.run(["psql", url, "-q", "-v", "ON_ERROR_STOP=1", "-c", command], check=True,
                   capture_output=True)


class Report:
    def __init__(self) -> None:
        self.lines: list[tuple[str, int, float]] = []

    def add(self, name: str, rows: int, seconds: float) -> float:
        self.lines.append((name, rows, seconds))
        print(f"  {name:<52} {rows:>9,} rows {seconds:6.2f} s {rows / seconds:>11,.0f} rows/s",
              flush=True)
        return rows / seconds


def bench_writes(url: str, sa_url: str, df: pd.DataFrame, small: int, rep: Report,
                 csv_path: str) -> dict[str, float]:
    n = len(df)
    print("load", flush=True)
    tables = iter(["fact_append", "fact_append2", "fact_append3"])
    rate = {"append": rep.add("write_table append (new table, best of 3)", n,
                              timed(lambda: write_table(df, next(tables), url), repeat=3))}
    engine = create_engine(sa_url)
    head = df.head(small)
    secs = timed(lambda: head.to_sql("fact_tosql", engine, if_exists="append", index=False,
                                     method="multi", chunksize=5000))
    rate["to_sql"] = rep.add(f"to_sql multi chunksize=5000 ({small:,} rows, scaled)", small, secs)
    engine.dispose()
    df.to_csv(csv_path, index=False)
    psql(url, "CREATE TABLE fact_copy (order_id bigint, customer_id bigint, order_date date, "
              "region text, product text, quantity integer, unit_price double precision, "
              "revenue double precision)")
    rate["copy"] = rep.add("psql \\copy FROM csv (new table, best of 3)", n, timed(
        lambda: psql(url, f"\\copy fact_copy2 FROM '{csv_path}' CSV HEADER"), repeat=3,
        setup=lambda: psql(url, "DROP TABLE IF EXISTS fact_copy2; CREATE TABLE fact_copy2 "
                                "(LIKE fact_copy)")))
    rate["merge_new"] = rep.add("write_table merge (into empty table)", n, timed(
        lambda: write_table(df, "fact_merge", url, mode="merge", keys=["order_id"])))
    upsert = sales_frame(n, start=n // 2)  # half updates, half new rows
    rate["merge_upsert"] = rep.add("write_table merge (half update, half insert)", n, timed(
        lambda: write_table(upsert, "fact_merge", url, mode="merge", keys=["order_id"])))
    fresh = sales_frame(n, start=n + n // 2)  # the daily case: only new keys
    rate["merge_new_keys"] = rep.add("write_table merge (all new keys, 1.5M-row table)", n, timed(
        lambda: write_table(fresh, "fact_merge", url, mode="merge", keys=["order_id"])))
    return rate


def bench_reads(url: str, sa_url: str, n: int, rep: Report, out_path: str) -> dict[str, float]:
    print("extract", flush=True)
    psql(url, "VACUUM ANALYZE fact_append")  # every reader then sees settled pages
    engine = create_engine(sa_url)
    q_all = "SELECT * FROM fact_append"
    q_range = "SELECT * FROM fact_append WHERE order_date BETWEEN :start AND :end"
    params = {"start": "2024-03-01", "end": "2024-08-31"}
    q_range_literal = ("SELECT * FROM fact_append WHERE order_date BETWEEN '2024-03-01' "
                       "AND '2024-08-31'")
    rate = {"read": rep.add("read_sql whole table -> pandas (best of 3)", n,
                            timed(lambda: read_sql(q_all, url), repeat=3))}
    rate["read_arrow"] = rep.add("read_sql whole table -> arrow (best of 3)", n,
                                 timed(lambda: read_sql(q_all, url, as_="arrow"), repeat=3))
    m = len(read_sql(q_range, url, params, as_="arrow"))
    rate["range"] = rep.add("read_sql date range, bound params (best of 3)", m,
                            timed(lambda: read_sql(q_range, url, params), repeat=3))
    rate["pd"] = rep.add("pd.read_sql whole table (best of 2)", n,
                         timed(lambda: pd.read_sql(text(q_all), engine), repeat=2))
    rate["pd_range"] = rep.add("pd.read_sql date range, bound params (best of 2)", m, timed(
        lambda: pd.read_sql(text(q_range), engine, params=params), repeat=2))
    rate["copy_to"] = rep.add("psql \\copy (SELECT *) TO csv (best of 3)", n, timed(
        lambda: psql(url, f"\\copy (SELECT * FROM fact_append) TO '{out_path}' CSV HEADER"),
        repeat=3))
    # The server's own work for the range, streamed to nowhere: no client can beat it.
    rate["copy_range"] = rep.add("psql \\copy (date range) TO /dev/null binary (best of 3)", m,
                                 timed(lambda: psql(url, f"\\copy ({q_range_literal}) TO "
                                                         "'/dev/null' (FORMAT binary)"), repeat=3))
    engine.dispose()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--to-sql-rows", type=int, default=20_000)
    args = parser.parse_args()
    schema = f"bench_io_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG.replace("postgresql://", "postgresql+psycopg://"),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{PG}?options=-csearch_path%3D{schema}"
    sa_url = url.replace("postgresql://", "postgresql+psycopg://")
    df = sales_frame(args.rows)
    print(f"headrace io benchmark: {args.rows:,} rows x {df.shape[1]} columns, PostgreSQL at "
          f"{PG.split('@')[-1]}")
    rep = Report()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            w = bench_writes(url, sa_url, df, args.to_sql_rows, rep, f"{tmp}/sales.csv")
            r = bench_reads(url, sa_url, args.rows, rep, f"{tmp}/out.csv")
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    print("targets")
    merges = [w["merge_new"], w["merge_upsert"], w["merge_new_keys"]]
    reads = [r["read"] / r["pd"], r["range"] / r["pd_range"]]
    print(f"  append vs psql \\copy:       {w['append'] / w['copy']:5.2f}x  "
          f"(target >= 1.0x) {verdict(w['append'] / w['copy'] >= 1.0)}")
    print(f"  merge vs psql \\copy:        {w['merge_new'] / w['copy']:5.2f}x (empty), "
          f"{w['merge_upsert'] / w['copy']:5.2f}x (half upsert), "
          f"{w['merge_new_keys'] / w['copy']:5.2f}x (new keys)  (target >= 0.5x) "
          f"{verdict(min(merges) / w['copy'] >= 0.5)}")
    print(f"  append vs to_sql multi:     {w['append'] / w['to_sql']:5.0f}x")
    print(f"  read_sql vs pd.read_sql:    {reads[0]:5.2f}x (table), {reads[1]:5.2f}x (date range)"
          f"  (target >= 5x) {verdict(min(reads) >= 5.0)}")
    print(f"  read_sql vs psql \\copy TO:  {r['read'] / r['copy_to']:5.2f}x")
    print(f"  ceiling for the range ratio (server's binary COPY of those rows vs pd.read_sql): "
          f"{r['copy_range'] / r['pd_range']:5.2f}x")


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISS"


if __name__ == "__main__":
    main()
