"""Benchmark: the lake job (NDJSON lake -> partitioned Parquet + quarantine) against hand-written DuckDB.

Run: ``.venv/bin/python bench/lake.py [--records 2000000] [--files 8] [--repeat 5] [--big 6000000]
[--spark]``. The lake is ``headrace.spark.testing.write_dirty_lake`` (2% bad lines of every kind).

* ``LakeJob(engine="duckdb")`` next to a hand-written DuckDB query doing the same split in the
  same run: each line read as text, its fields extracted and cast with ``TRY_CAST``, the row
  bad when the line is not JSON, a value does not cast or a rule fails; good rows written
  Hive-partitioned by ``order_date``, bad lines to a Parquet file. The hand-written query is
  less strict than the job (``"5"`` casts to 5, a duplicate key passes): its counts are shown.
  Target: the job within 1.3x of it (medians of ``--repeat`` runs, in this process).
* ``--big N``: the job over an N-record lake in a fresh process with DuckDB ``memory_limit=1GB``;
  prints its time and the process's peak memory (RSS).
* ``--spark``: ``engine="spark"`` on ``local[2]`` (needs ``headrace[spark]``): the first run's time
  includes the Spark session's start-up, the next runs reuse it; start-up is reported apart.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from headrace.spark import LakeJob
from headrace.spark.testing import REGIONS, SALES_SCHEMA, sales_rules, write_dirty_lake

TARGET = 1.3


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float, float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), max(times)


_CASTS = {"int64": "BIGINT", "float64": "DOUBLE", "string": "VARCHAR", "bool": "BOOLEAN", "date": "DATE",
          "timestamp": "TIMESTAMPTZ"}


def hand_written(pattern: str, out: str) -> dict[str, int]:
    """The split as a DuckDB user would write it by hand (one query per output over a staged table)."""
    import duckdb

    con = duckdb.connect()
    fields = list(SALES_SCHEMA)
    casts = ", ".join(f'TRY_CAST(v[{i + 1}] AS {_CASTS[t]}) AS "{n}"' for i, (n, t) in enumerate(SALES_SCHEMA.items()))
    failed = " OR ".join(f'("{n}" IS NULL AND v[{i + 1}] IS NOT NULL)' for i, n in enumerate(fields))
    regions = ", ".join(f"'{r}'" for r in REGIONS)
    paths = "[" + ", ".join(f"'$.{n}'" for n in fields) + "]"
    con.execute(f"""
        CREATE TABLE staged AS
        WITH lines AS (SELECT line, filename FROM read_csv('{pattern}', columns={{'line': 'VARCHAR'}},
                       delim=chr(31), quote='', escape='', header=false, auto_detect=false, filename=true)),
        parsed AS (SELECT line, filename, json_valid(line) AS ok,
                          CASE WHEN json_valid(line) THEN json_extract_string(line, {paths}) END AS v FROM lines),
        typed AS (SELECT line, filename, ok, v, {casts} FROM parsed)
        SELECT *, NOT ok OR {failed} OR customer_id IS NULL OR quantity < 0 OR region NOT IN ({regions}) AS bad
        FROM typed""")
    cols = ", ".join(f'"{n}"' for n in fields if n != "order_date")
    con.execute(f"COPY (SELECT {cols}, order_date FROM staged WHERE NOT bad) TO '{out}/good' "
                "(FORMAT parquet, PARTITION_BY (order_date), OVERWRITE_OR_IGNORE)")
    con.execute(f"COPY (SELECT filename AS source_file, line AS raw, 'bad' AS reason FROM staged WHERE bad) "
                f"TO '{out}/bad.parquet' (FORMAT parquet)")
    good, bad = con.execute("SELECT count(*) FILTER (WHERE NOT bad), count(*) FILTER (WHERE bad) "
                            "FROM staged").fetchone()
    con.close()
    return {"good": int(good), "bad": int(bad)}


def job_run(pattern: str, out: str, engine: str = "duckdb", **options: Any) -> Any:
    return LakeJob(pattern, SALES_SCHEMA, sales_rules(), out, partition_by=["order_date"], engine=engine,
                   progress=False, **options).run()


def compare(lake: Any, tmp: str, repeat: int) -> None:
    counts: dict[str, Any] = {}

    def ours() -> None:
        shutil.rmtree(f"{tmp}/job", ignore_errors=True)
        counts["job"] = job_run(lake.pattern, f"{tmp}/job")

    def theirs() -> None:
        shutil.rmtree(f"{tmp}/hand", ignore_errors=True)
        os.makedirs(f"{tmp}/hand")
        counts["hand"] = hand_written(lake.pattern, f"{tmp}/hand")

    t_hand, lo_h, hi_h = timed(theirs, repeat)
    t_job, lo_j, hi_j = timed(ours, repeat)
    r = counts["job"]
    print(f"  LakeJob engine=duckdb        {t_job:6.2f} s [{lo_j:.2f}-{hi_j:.2f}]  good {r.good_rows:,} + bad "
          f"{r.bad_rows:,} = read {r.rows_read:,} (expected good {lake.good:,}, bad {lake.bad:,})")
    h = counts["hand"]
    print(f"  hand-written DuckDB split    {t_hand:6.2f} s [{lo_h:.2f}-{hi_h:.2f}]  good {h['good']:,} + bad "
          f"{h['bad']:,} (casts '5' to 5, lets duplicate keys pass)")
    ratio = t_job / t_hand
    print(f"  job / hand-written: {ratio:.2f}x  (target <= {TARGET}x) {'ok' if ratio <= TARGET else 'MISS'}")


def big_child(records: int) -> None:
    """In a fresh process: write the lake, run the job with memory_limit=1GB, print JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        lake = write_dirty_lake(f"{tmp}/lake", records=records, files=max(8, records // 250_000))
        size = sum(os.path.getsize(f) for f in lake.files)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        r = job_run(lake.pattern, f"{tmp}/out", memory_limit="1GB")
        seconds = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({"records": records, "mb": size / 1e6, "seconds": seconds, "peak_mb": peak / 1024,
                          "before_mb": before / 1024, "good": r.good_rows, "bad": r.bad_rows,
                          "ok": (r.good_rows, r.bad_rows) == (lake.good, lake.bad)}))


def big(records: int) -> None:
    done = subprocess.run([sys.executable, __file__, "--big-child", str(records)], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        print(f"  {records:,} records with memory_limit=1GB: FAILED\n{done.stderr[-2000:]}")
        return
    d = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"  {records:,} records ({d['mb']:.0f} MB), DuckDB memory_limit=1GB: {d['seconds']:.1f} s, peak RSS "
          f"{d['peak_mb']:.0f} MB (after writing the lake: {d['before_mb']:.0f} MB), counts "
          f"{'match' if d['ok'] else 'DIFFER'} (good {d['good']:,}, bad {d['bad']:,})")


def spark(lake: Any, tmp: str, repeat: int) -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        print("  --spark: PySpark is not installed (pip install 'headrace[spark]'); not measured")
        return
    t0 = time.perf_counter()
    first = job_run(lake.pattern, f"{tmp}/spark", engine="spark", spark_master="local[2]")
    t_first = time.perf_counter() - t0
    t_job, lo, hi = timed(lambda: job_run(lake.pattern, f"{tmp}/spark", engine="spark", spark_master="local[2]"),
                          max(repeat - 1, 1))
    print(f"  LakeJob engine=spark local[2]: job {t_job:6.2f} s [{lo:.2f}-{hi:.2f}] (session reused), "
          f"start-up ~{max(t_first - t_job, 0):.1f} s (first run {t_first:.1f} s); good {first.good_rows:,} "
          f"bad {first.bad_rows:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=2_000_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--big", type=int, default=0, help="also run an N-record lake with memory_limit=1GB")
    parser.add_argument("--spark", action="store_true")
    parser.add_argument("--big-child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if args.big_child:
        big_child(args.big_child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        lake = write_dirty_lake(f"{tmp}/lake", records=args.records, files=args.files)
        size = sum(os.path.getsize(f) for f in lake.files)
        print(f"lake: {args.records:,} records in {args.files} files ({size / 1e6:.0f} MB), {lake.bad:,} bad; "
              f"median of {args.repeat} runs [min-max]")
        compare(lake, tmp, args.repeat)
        if args.spark:
            spark(lake, tmp, args.repeat)
    if args.big:
        big(args.big)


if __name__ == "__main__":
    main()
