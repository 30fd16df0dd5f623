"""Benchmark: NDJSON with 2% malformed lines to Parquet, headrace.io against DuckDB.

Run: ``.venv/bin/python bench/io_files.py [--rows 1000000]``. headrace reads with
``read_files`` (bad lines quarantined, counts checked) and writes with ``write_parquet``;
DuckDB runs ``COPY (SELECT * FROM read_json(..., ignore_errors=true)) TO ... (FORMAT parquet)``
on the same file - which turns each bad line into a row of NULLs without saying which, and casts
values beyond its type-detection sample silently. headrace also checks every value's JSON kind
(the record contract): one more pass over the file. Measured in this run.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from headrace.io import read_files, write_parquet


def make_ndjson(path: Path, n: int, bad_share: float = 0.02) -> int:
    """Write ``n`` lines of 8-column sales records; ``bad_share`` of them cut short."""
    rng = np.random.default_rng(7)
    regions = ["North", "South", "East", "West", "Central"]
    bad = set(rng.choice(n, int(n * bad_share), replace=False).tolist())
    with path.open("w") as f:
        for i in range(n):
            qty = int(rng.integers(1, 20))
            price = round(float(rng.uniform(5, 500)), 2)
            line = json.dumps({
                "order_id": i, "customer_id": int(rng.integers(1, 50_000)),
                "order_date": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}",
                "region": regions[i % 5], "product": f"SKU-{1000 + i % 9000}",
                "quantity": qty, "unit_price": price, "revenue": round(qty * price, 2)})
            f.write((line[: len(line) // 2] if i in bad else line) + "\n")
    return len(bad)


def timed(fn: object, repeat: int) -> tuple[float, float, float]:
    """Median, min and max wall time of ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the quarantine warning on every run is expected
    import duckdb

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "orders.ndjson"
        n_bad = make_ndjson(src, args.rows)
        size = src.stat().st_size
        print(f"NDJSON -> Parquet: {args.rows:,} lines ({size / 1e6:.0f} MB), {n_bad:,} malformed; "
              f"median of {args.repeat} runs [min-max]")
        outcome: dict[str, int] = {}

        def headrace_run() -> None:
            res = read_files(str(src), format="ndjson", as_="arrow",
                             quarantine_path=f"{tmp}/quarantine.parquet")
            write_parquet(res.data, f"{tmp}/headrace.parquet")
            outcome.update(read=res.rows_read, returned=res.rows_returned,
                           quarantined=res.rows_quarantined)

        def duckdb_run() -> None:
            con = duckdb.connect()
            con.execute(f"COPY (SELECT * FROM read_json('{src}', format='newline_delimited', "
                        f"ignore_errors=true)) TO '{tmp}/duckdb.parquet' (FORMAT parquet)")
            outcome["duckdb_rows"] = con.sql(
                f"SELECT count(*) FROM '{tmp}/duckdb.parquet'").fetchall()[0][0]
            con.close()

        t_hr, lo_hr, hi_hr = timed(headrace_run, args.repeat)
        t_dk, lo_dk, hi_dk = timed(duckdb_run, args.repeat)
        print(f"  headrace read_files + write_parquet  {t_hr:6.2f} s [{lo_hr:.2f}-{hi_hr:.2f}]  "
              f"{args.rows / t_hr:>10,.0f} lines/s  rows {outcome['returned']:,} + quarantined "
              f"{outcome['quarantined']:,} = read {outcome['read']:,}")
        print(f"  duckdb read_json + COPY TO parquet   {t_dk:6.2f} s [{lo_dk:.2f}-{hi_dk:.2f}]  "
              f"{args.rows / t_dk:>10,.0f} lines/s  rows {outcome['duckdb_rows']:,} "
              "(bad lines become rows of NULLs, unreported)")
        print(f"  headrace / duckdb time: {t_hr / t_dk:.2f}x  (target <= 1.5x) "
              f"{'ok' if t_hr / t_dk <= 1.5 else 'MISS'}")


if __name__ == "__main__":
    main()
