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


def interleaved(a: object, b: object, repeat: int) -> tuple[list[float], list[float]]:
    """Wall times of ``repeat`` rounds, each running ``a`` then ``b``: a change of load on the
    machine hits both sides of a round alike (the ratio is taken per round)."""
    ta: list[float] = []
    tb: list[float] = []
    for _ in range(repeat):
        for fn, times in ((a, ta), (b, tb)):
            t0 = time.perf_counter()
            fn()  # type: ignore[operator]
            times.append(time.perf_counter() - t0)
    return ta, tb


def spread(times: list[float]) -> str:
    return f"{statistics.median(times):6.2f} s [{min(times):.2f}-{max(times):.2f}]"


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

        ours, theirs = interleaved(headrace_run, duckdb_run, args.repeat)
        ratios = [x / y for x, y in zip(ours, theirs, strict=True)]
        ratio = statistics.median(ratios)
        print(f"  headrace read_files + write_parquet  {spread(ours)}  "
              f"{args.rows / statistics.median(ours):>10,.0f} lines/s  rows {outcome['returned']:,} + quarantined "
              f"{outcome['quarantined']:,} = read {outcome['read']:,}")
        print(f"  duckdb read_json + COPY TO parquet   {spread(theirs)}  "
              f"{args.rows / statistics.median(theirs):>10,.0f} lines/s  rows {outcome['duckdb_rows']:,} "
              "(bad lines become rows of NULLs, unreported)")
        print(f"  headrace / duckdb time, median of the rounds' ratios: {ratio:.2f}x "
              f"[{min(ratios):.2f}-{max(ratios):.2f}]  (target <= 1.3x) {'ok' if ratio <= 1.3 else 'MISS'}")


if __name__ == "__main__":
    main()
