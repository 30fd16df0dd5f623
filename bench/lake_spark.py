"""Benchmark: the lake job on Spark local[2] next to the same job on DuckDB, at several lake sizes.

Run: ``.venv/bin/python bench/lake_spark.py [--sizes 200000,1000000,2000000] [--repeat 5]``
(needs ``headrace[spark]`` and Java 17). The lake is ``write_dirty_lake`` (8 files, 2% bad lines
of every kind), as in ``bench/lake.py``.

* Spark's start-up: ``spark_session("local[2]")`` in a fresh process (JVM, SparkContext),
  median of 3 processes; then one warm-up job (the JVM's first job is slower still), reported.
* Per size: the job on DuckDB (the baseline, same process, same lake) and on Spark (session
  reused), interleaved, median of ``--repeat`` runs [min-max]; the counters of both must match.
* The size at which Spark overtakes DuckDB on this machine: the first size where Spark's median
  job time (start-up excluded) is below DuckDB's, or "not reached" up to the largest size.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from headrace.spark import LakeJob
from headrace.spark.testing import SALES_SCHEMA, sales_rules, write_dirty_lake

COUNTERS = ("files_read", "bytes_read", "rows_read", "good_rows", "bad_rows", "bad_bytes")
_START = ("import time; t0 = time.perf_counter()\n"
          "from headrace.spark.session import spark_session\n"
          "spark_session('local[2]'); print(time.perf_counter() - t0)\n")


def startup() -> list[float]:
    times = []
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", _START], capture_output=True, text=True, check=True)
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return times


def job(pattern: str, out: str, engine: str) -> Any:
    return LakeJob(pattern, SALES_SCHEMA, sales_rules(), out, partition_by=["order_date"], engine=engine,
                   spark_master="local[2]", progress=False).run()


def stats(times: list[float]) -> str:
    return f"{statistics.median(times):6.2f} s [{min(times):.2f}-{max(times):.2f}]"


def measure(records: int, repeat: int, tmp: str) -> tuple[float, float]:
    lake = write_dirty_lake(f"{tmp}/lake-{records}", records=records, files=8)
    size = sum(os.path.getsize(f) for f in lake.files) / 1e6
    times: dict[str, list[float]] = {"duckdb": [], "spark": []}
    results: dict[str, Any] = {}
    for _ in range(repeat):
        for engine in ("duckdb", "spark"):
            t0 = time.perf_counter()
            results[engine] = job(lake.pattern, f"{tmp}/out-{engine}-{records}", engine)
            times[engine].append(time.perf_counter() - t0)
    same = all(getattr(results["duckdb"], k) == getattr(results["spark"], k) for k in COUNTERS)
    d, s = statistics.median(times["duckdb"]), statistics.median(times["spark"])
    print(f"  {records:>9,} records ({size:5.0f} MB): DuckDB {stats(times['duckdb'])}   Spark local[2] "
          f"{stats(times['spark'])}   Spark/DuckDB {s / d:4.2f}x   counters {'match' if same else 'DIFFER'}")
    return d, s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="200000,1000000,2000000")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    sizes = [int(x) for x in args.sizes.split(",")]
    starts = startup()
    print(f"Spark local[2] start-up (fresh process, session ready): {stats(starts)}")
    from headrace.spark.session import spark_session

    spark_session("local[2]")
    with tempfile.TemporaryDirectory() as tmp:
        warm = write_dirty_lake(f"{tmp}/warm", records=20_000, files=2)
        t0 = time.perf_counter()
        job(warm.pattern, f"{tmp}/warm-out", "spark")
        print(f"first Spark job of the session (20,000 records, JVM warm-up): {time.perf_counter() - t0:.2f} s")
        print(f"median of {args.repeat} runs [min-max], DuckDB and Spark interleaved, Spark session reused:")
        overtakes = None
        for n in sizes:
            d, s = measure(n, args.repeat, tmp)
            if overtakes is None and s < d:
                overtakes = n
    print("Spark overtakes DuckDB at " + (f"{overtakes:,} records" if overtakes else
                                          f"no size measured (up to {max(sizes):,} records) on this machine"))


if __name__ == "__main__":
    main()
