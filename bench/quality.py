"""How fast are quality checks? The seed's five checks on 5,000,000 rows.

Each headrace measurement is printed next to a hand-written pass that computes
the same five results in the same process, as the median of ``--repeat`` runs with
the min-max range, so the ratio does not depend on the machine. Target (issue 10):
every measurement with a hand-written baseline within 1.2x of it (ok/MISS).

    .venv/bin/python bench/quality.py [--rows 5000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from headrace.quality import ParquetFile, Suite, expect

REGIONS = ["North", "South", "East", "West", "Central"]

SUITE = Suite("sales", [
    expect.column_values_to_not_be_null("customer_id"),
    expect.column_values_to_be_between("revenue", min_value=0),
    expect.column_values_to_be_in_set("region", REGIONS),
    expect.column_mean_to_be_between("revenue", min_value=800, max_value=2500),
    expect.table_row_count_to_be_between(min_value=1000, max_value=50_000_000),
], on_failure="quarantine")


def make_frame(n: int, seed: int = 7) -> pd.DataFrame:
    """Sales rows with about 0.1% of each kind of damage the checks look for."""
    rng = np.random.default_rng(seed)
    customer = rng.integers(1, 100_000, n).astype(np.float64)
    customer[rng.random(n) < 0.001] = np.nan
    revenue = rng.gamma(4.0, 400.0, n)
    revenue[rng.random(n) < 0.001] *= -1
    region = np.array(REGIONS + ["Mars"])[rng.choice(6, n, p=[0.2, 0.2, 0.2, 0.2, 0.199, 0.001])]
    return pd.DataFrame({
        "order_id": np.arange(n, dtype=np.int64),
        "customer_id": customer,
        "revenue": revenue,
        "region": pd.array(region, dtype="str"),
    })


# -- the hand-written passes ------------------------------------------------------------------

def hand_validate(df: pd.DataFrame) -> dict[str, Any]:
    rev = df["revenue"].to_numpy()
    region = df["region"]
    rev_valid = ~np.isnan(rev)
    return {
        "customer_id_nulls": int(df["customer_id"].isna().sum()),
        "revenue_negative": int(np.count_nonzero(rev[rev_valid] < 0)),
        "region_outside": int((~region.isin(REGIONS) & region.notna()).sum()),
        "revenue_mean": float(rev[rev_valid].mean()),
        "rows": len(df),
    }


def hand_split(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    rev = df["revenue"].to_numpy()
    region = df["region"]
    bad = (df["customer_id"].isna().to_numpy() | (rev < 0)
           | (~region.isin(REGIONS) & region.notna()).to_numpy())
    return df[~bad], df[bad]


def hand_polars(df: pl.DataFrame) -> dict[str, Any]:
    out = df.select(
        pl.col("customer_id").is_null().sum().alias("nulls"),
        (pl.col("revenue") < 0).sum().alias("neg"),
        (~pl.col("region").is_in(REGIONS) & pl.col("region").is_not_null()).sum().alias("outside"),
        pl.col("revenue").mean().alias("mean"),
        pl.len().alias("rows"),
    )
    return out.row(0, named=True)


HAND_SQL = ("SELECT COUNT(*) - COUNT(customer_id), SUM(CASE WHEN revenue < 0 THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN region NOT IN ('North','South','East','West','Central') THEN 1 ELSE 0 END), "
            "AVG(revenue), COUNT(*) FROM read_parquet($path)")


def hand_parquet(path: Path) -> tuple[Any, ...]:
    con = duckdb.connect()
    row = con.execute(HAND_SQL, {"path": str(path)}).fetchone()   # the path is a bound value
    assert row is not None
    return tuple(row)


# -- timing -----------------------------------------------------------------------------------

TARGET = 1.2


def timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    """Wall times of ``repeat`` runs, and the last run's value."""
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return times, value


def paired(ours: Callable[[], Any], hand: Callable[[], Any], repeat: int) -> tuple[list[float], Any, list[float], Any]:
    """Both passes timed in turns (after one warm-up each), so a busy machine slows both alike."""
    ours(), hand()
    t_ours: list[float] = []
    t_hand: list[float] = []
    v_ours = v_hand = None
    for _ in range(repeat):
        for fn, times in ((ours, t_ours), (hand, t_hand)):
            start = time.perf_counter()
            value = fn()
            times.append(time.perf_counter() - start)
            if fn is ours:
                v_ours = value
            else:
                v_hand = value
    return t_ours, v_ours, t_hand, v_hand


def _fmt(times: list[float]) -> str:
    return f"{statistics.median(times):7.3f} s ({min(times):.3f}-{max(times):.3f})"


def line(label: str, ours: list[float], hand: list[float] | None) -> str:
    if hand is None:
        return f"{label:<34} headrace {_fmt(ours)}"
    ratio = statistics.median(ours) / statistics.median(hand)
    verdict = "ok" if ratio <= TARGET else "MISS"
    return (f"{label:<34} headrace {_fmt(ours)}   hand-written {_fmt(hand)}   "
            f"ratio {ratio:4.2f}x (target <= {TARGET:.1f}x) {verdict}")


def check_same(result: Any, hand: dict[str, Any]) -> None:
    """The benchmark is only fair if both passes found the same things."""
    r = {x.expectation_type: x for x in result.results}
    assert r["expect_column_values_to_not_be_null"].result["unexpected_count"] == hand["customer_id_nulls"]
    assert r["expect_column_values_to_be_between"].result["unexpected_count"] == hand["revenue_negative"]
    assert r["expect_column_values_to_be_in_set"].result["unexpected_count"] == hand["region_outside"]
    assert abs(r["expect_column_mean_to_be_between"].observed_value - hand["revenue_mean"]) < 1e-6
    assert r["expect_table_row_count_to_be_between"].observed_value == hand["rows"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    logging.getLogger("headrace").setLevel(logging.ERROR)  # the gate's warning is expected here
    df = make_frame(args.rows)
    n = args.repeat
    print(f"quality bench: {args.rows:,} rows, {len(SUITE)} checks (the seed's five), "
          f"median of {n} (min-max)")

    ours_v, result, hand_v, hand = paired(lambda: SUITE.validate(df), lambda: hand_validate(df), n)
    check_same(result, hand)
    print(line("pandas validate", ours_v, hand_v))

    ours_s, (good, bad), hand_s, (hg, hb) = paired(lambda: SUITE.split(df), lambda: hand_split(df), n)
    assert (len(good), len(bad)) == (len(hg), len(hb)) and len(good) + len(bad) == len(df)
    print(line("pandas split (good + bad frames)", ours_s, hand_s))

    pdf = pl.from_pandas(df)
    ours_p, _, hand_p, _ = paired(lambda: SUITE.validate(pdf), lambda: hand_polars(pdf), n)
    print(line("polars validate", ours_p, hand_p))
    ours_ps, _ = timed(lambda: SUITE.split(pdf), n)
    print(line("polars split", ours_ps, None))

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sales.parquet"
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)
        ours_q, _, hand_q, _ = paired(lambda: SUITE.validate(ParquetFile(path)), lambda: hand_parquet(path), n)
        print(line("parquet validate (DuckDB SQL)", ours_q, hand_q))
    with tempfile.TemporaryDirectory() as home:
        os.environ["HEADRACE_HOME"] = home  # the gate records its task run and profile here
        ours_g, passed = timed(lambda: SUITE.gate(df), n)
        outcome = SUITE.last_outcome
        assert outcome.rows_passed + outcome.rows_quarantined == len(df) == outcome.rows_in
        print(line("pandas gate (quarantine, recorded)", ours_g, None)
              + "   validate + split + profile + Parquet + store")
    print(f"unexpected: {bad.shape[0]:,} rows quarantined of {len(df):,}")


if __name__ == "__main__":
    main()
