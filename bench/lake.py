"""Benchmark: the lake job (NDJSON lake -> partitioned Parquet + quarantine) against hand-written DuckDB.

Run: ``.venv/bin/python bench/lake.py [--records 2000000] [--files 8] [--repeat 5] [--big 6000000]
[--spark]``. The lake is ``headrace.spark.testing.write_dirty_lake`` (2% bad lines of every kind).

* ``LakeJob(engine="duckdb")`` next to a hand-written DuckDB query doing the same split in the
  same run (interleaved): each line read as text, checked as one JSON object without duplicate
  keys, its fields extracted and typed only from values of the right JSON kind, the row bad when
  any of that fails or a rule fails; good rows written Hive-partitioned by ``order_date``, bad
  lines to a Parquet file (without per-row reasons). Its counts are checked to be the job's.
  Also shown: a lenient query as users often write it (``TRY_CAST`` of the extracted text:
  ``"5"`` becomes 5, duplicate keys pass), which is not the same split.
  Target: the job within 1.3x of the same-split query (medians of ``--repeat`` runs, in this
  process).
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
_LINES = ("SELECT line, filename FROM read_csv('{pattern}', columns={{'line': 'VARCHAR'}}, delim=chr(31), "
          "quote='', escape='', header=false, auto_detect=false, filename=true) WHERE trim(line) <> ''")
_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_STAMP = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:?[0-9]{2})?"


def _strict_value(i: int, typ: str) -> str:
    v, t = f"v[{i}]", f"t[{i}]"
    if typ == "int64":
        return f"CASE WHEN {t} IN ('BIGINT', 'UBIGINT') THEN TRY_CAST({v} AS BIGINT) END"
    if typ == "float64":
        return (f"CASE WHEN {t} IN ('BIGINT', 'UBIGINT') AND abs(TRY_CAST({v} AS HUGEINT)) <= 9007199254740992 "
                f"THEN TRY_CAST({v} AS DOUBLE) WHEN {t} = 'DOUBLE' AND (contains({v}, '.') OR "
                f"contains(lower({v}), 'e')) AND isfinite(TRY_CAST({v} AS DOUBLE)) THEN TRY_CAST({v} AS DOUBLE) END")
    if typ == "bool":
        return f"CASE WHEN {t} = 'BOOLEAN' THEN {v} = 'true' END"
    s = f"({v} ->> '$')"
    if typ == "string":
        return f"CASE WHEN {t} = 'VARCHAR' THEN {s} END"
    pattern, cast = (_DATE, "DATE") if typ == "date" else (_STAMP, "TIMESTAMPTZ")
    return f"CASE WHEN {t} = 'VARCHAR' AND regexp_full_match({s}, '{pattern}') THEN TRY_CAST({s} AS {cast}) END"


def _split_sql(pattern: str, strict: bool) -> str:
    """The split as a DuckDB user writes it by hand; ``strict``: the same good/bad split as the job."""
    fields = list(SALES_SCHEMA)
    regions = ", ".join(f"'{r}'" for r in REGIONS)
    rules = f"customer_id IS NULL OR quantity < 0 OR region NOT IN ({regions})"
    paths = "[" + ", ".join(f"'$.{n}'" for n in fields) + "]"
    lines = _LINES.format(pattern=pattern)
    if not strict:  # what a user often writes: text extracted and cast, no kind checks
        casts = ", ".join(f'TRY_CAST(v[{i + 1}] AS {_CASTS[t]}) AS "{n}"'
                          for i, (n, t) in enumerate(SALES_SCHEMA.items()))
        failed = " OR ".join(f'("{n}" IS NULL AND v[{i + 1}] IS NOT NULL)' for i, n in enumerate(fields))
        return f"""
            WITH lines AS ({lines}),
            parsed AS (SELECT line, filename, json_valid(line) AS ok,
                              CASE WHEN json_valid(line) THEN json_extract_string(line, {paths}) END AS v FROM lines),
            typed AS (SELECT line, filename, ok, v, {casts} FROM parsed)
            SELECT *, coalesce(NOT ok OR {failed} OR {rules}, false) AS bad FROM typed"""
    values = ", ".join(f'{_strict_value(i + 1, t)} AS "{n}"' for i, (n, t) in enumerate(SALES_SCHEMA.items()))
    failed = " OR ".join(f"(coalesce(t[{i + 1}] <> 'NULL', false) AND \"{n}\" IS NULL)"
                         for i, n in enumerate(fields))
    return f"""
        WITH lines AS ({lines}),
        parsed AS (SELECT line, filename, json_valid(line) AS ok FROM lines),
        obj AS (SELECT *, CASE WHEN ok THEN json_type(line) = 'OBJECT' END AS is_obj FROM parsed),
        fields AS (SELECT *, CASE WHEN is_obj THEN json_keys(line) END AS keys,
                             CASE WHEN is_obj THEN json_extract(line, {paths}) END AS v,
                             CASE WHEN is_obj THEN json_type(line, {paths}) END AS t FROM obj),
        typed AS (SELECT line, filename, ok, is_obj, keys, t, {values} FROM fields)
        SELECT *, coalesce(NOT ok OR NOT is_obj OR len(keys) <> len(list_distinct(keys)) OR {failed} OR {rules},
                           false) AS bad
        FROM typed"""


def hand_written(pattern: str, out: str, strict: bool = True) -> dict[str, int]:
    """Stage the split in a table, then write good rows partitioned and bad lines to one file."""
    import duckdb

    con = duckdb.connect()
    con.execute("CREATE TABLE staged AS " + _split_sql(pattern, strict))
    cols = ", ".join(f'"{n}"' for n in SALES_SCHEMA if n != "order_date")
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

    def theirs(strict: bool) -> Callable[[], None]:
        def run() -> None:
            shutil.rmtree(f"{tmp}/hand", ignore_errors=True)
            os.makedirs(f"{tmp}/hand")
            counts["strict" if strict else "lenient"] = hand_written(lake.pattern, f"{tmp}/hand", strict)
        return run

    # Interleaved, so that the machine's load weighs on each alike.
    times: dict[str, list[float]] = {"job": [], "strict": [], "lenient": []}
    for _ in range(repeat):
        for name, fn in (("strict", theirs(True)), ("job", ours), ("lenient", theirs(False))):
            times[name].append(timed(fn, 1)[0])
    med = {k: statistics.median(v) for k, v in times.items()}
    r = counts["job"]
    print(f"  LakeJob engine=duckdb            {med['job']:6.2f} s [{min(times['job']):.2f}-{max(times['job']):.2f}]  "
          f"good {r.good_rows:,} + bad {r.bad_rows:,} = read {r.rows_read:,} (expected {lake.good:,} + {lake.bad:,})")
    s_ = counts["strict"]
    same = (s_["good"], s_["bad"]) == (r.good_rows, r.bad_rows)
    print(f"  hand-written DuckDB, same split  {med['strict']:6.2f} s [{min(times['strict']):.2f}-"
          f"{max(times['strict']):.2f}]  good {s_['good']:,} + bad {s_['bad']:,} "
          f"({'the same split' if same else 'A DIFFERENT SPLIT'}; no per-row reasons)")
    n_ = counts["lenient"]
    print(f"  hand-written DuckDB, lenient     {med['lenient']:6.2f} s [{min(times['lenient']):.2f}-"
          f"{max(times['lenient']):.2f}]  good {n_['good']:,} + bad {n_['bad']:,} (casts '5' to 5, lets "
          "duplicate keys pass: not the same split)")
    ratio = med["job"] / med["strict"]
    print(f"  job / hand-written same split: {ratio:.2f}x  (target <= {TARGET}x) {'ok' if ratio <= TARGET else 'MISS'}"
          f"; job / lenient: {med['job'] / med['lenient']:.2f}x")


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
