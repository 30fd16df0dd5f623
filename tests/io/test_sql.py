"""One suite over every SQL backend: PostgreSQL (ADBC), DuckDB, SQLite (SQLAlchemy)."""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from headrace.errors import DataIOError, SchemaMismatch
from headrace.io import read_sql, write_table

INJECTION = "2024-01-31' OR '1'='1"


def sales(ids: list[int], amount: float = 10.0, region: str = "North") -> pd.DataFrame:
    return pd.DataFrame({
        "order_id": ids,
        "order_date": [dt.date(2024, 1, 1 + (i % 28)) for i in ids],
        "amount": [amount + i for i in ids],
        "region": [region] * len(ids),
    })


def rows(url: str, table: str = "sales") -> list[tuple]:
    df = read_sql(f"SELECT * FROM {table} ORDER BY order_id", url, as_="arrow")
    return [tuple(r.values()) for r in df.to_pylist()]


def test_append_creates_the_table_and_returns_rows(db_url: str) -> None:
    assert write_table(sales([1, 2, 3]), "sales", db_url) == 3
    assert write_table(sales([4]), "sales", db_url, mode="append") == 1
    assert [r[0] for r in rows(db_url)] == [1, 2, 3, 4]


@pytest.mark.parametrize("kind", ["pandas", "polars", "arrow"])
def test_every_frame_type_loads_and_reads_back(db_url: str, kind: str) -> None:
    df = sales([1, 2])
    frame = {"pandas": df, "polars": pl.from_pandas(df),
             "arrow": pa.Table.from_pandas(df, preserve_index=False)}[kind]
    write_table(frame, "sales", db_url)
    out = read_sql("SELECT order_id, amount FROM sales ORDER BY order_id", db_url, as_=kind)
    assert type(out).__module__.split(".")[0] == {"pandas": "pandas", "polars": "polars",
                                                    "arrow": "pyarrow"}[kind]
    assert pa.table(out.to_arrow() if kind == "polars" else out).column("amount").to_pylist() \
        == [11.0, 12.0]


def test_read_binds_values_and_treats_injection_as_a_literal(db_url: str) -> None:
    write_table(sales([1, 2, 3]), "sales", db_url)
    got = read_sql("SELECT order_id FROM sales WHERE region = :r AND order_id >= :lo "
                   "ORDER BY order_id", db_url, {"r": "North", "lo": 2})
    assert got["order_id"].tolist() == [2, 3]
    nothing = read_sql("SELECT * FROM sales WHERE region = :r", db_url, {"r": INJECTION})
    assert len(nothing) == 0
    assert len(rows(db_url)) == 3  # and the table is intact


def test_date_range_with_string_parameters(db_url: str) -> None:
    write_table(sales([1, 2, 20]), "sales", db_url)
    got = read_sql("SELECT order_id FROM sales WHERE order_date BETWEEN :start AND :end "
                   "ORDER BY order_id", db_url, {"start": "2024-01-02", "end": "2024-01-10"})
    assert got["order_id"].tolist() == [1, 2]


def test_replace_swaps_the_rows(db_url: str) -> None:
    write_table(sales([1, 2, 3]), "sales", db_url)
    assert write_table(sales([7]), "sales", db_url, mode="replace") == 1
    assert [r[0] for r in rows(db_url)] == [7]


def test_merge_updates_and_inserts_by_key(db_url: str) -> None:
    write_table(sales([1, 2]), "sales", db_url, mode="merge", keys=["order_id"])
    write_table(sales([2, 3], amount=100.0), "sales", db_url, mode="merge", keys=["order_id"])
    assert [(r[0], r[2]) for r in rows(db_url)] == [(1, 11.0), (2, 102.0), (3, 103.0)]


def test_merge_into_a_table_without_unique_key(db_url: str) -> None:
    write_table(sales([1, 2]), "sales", db_url)  # append: no primary key
    write_table(sales([2, 3], amount=100.0), "sales", db_url, mode="merge", keys="order_id")
    assert [(r[0], r[2]) for r in rows(db_url)] == [(1, 11.0), (2, 102.0), (3, 103.0)]


def test_overwrite_partitions_replaces_only_the_frames_partitions(db_url: str) -> None:
    write_table(pd.concat([sales([1, 2], region="North"), sales([3], region="South")]),
                "sales", db_url)
    write_table(sales([9], region="North"), "sales", db_url, mode="overwrite_partitions",
                partition_by=["region"])
    assert [(r[0], r[3]) for r in rows(db_url)] == [(3, "South"), (9, "North")]


def test_new_columns_are_added_and_logged(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    write_table(sales([1]), "sales", db_url)
    with caplog.at_level(logging.WARNING, logger="headrace.io"):
        write_table(sales([2]).assign(channel="web"), "sales", db_url)
    assert "added nullable column channel" in caplog.text
    got = read_sql("SELECT order_id, channel FROM sales ORDER BY order_id", db_url, as_="arrow")
    assert got["channel"].to_pylist() == [None, "web"]


def test_type_conflict_names_table_and_column(db_url: str) -> None:
    write_table(sales([1]), "sales", db_url)
    bad = sales([2]).assign(amount="lots")
    with pytest.raises(SchemaMismatch, match=r"sales.*'amount'"):
        write_table(bad, "sales", db_url)
    assert len(rows(db_url)) == 1


def test_merge_key_problems_are_refused(db_url: str) -> None:
    with pytest.raises(SchemaMismatch, match=r"sales.*merge key column 'id'"):
        write_table(sales([1]), "sales", db_url, mode="merge", keys=["id"])
    with pytest.raises(DataIOError, match=r"sales.*duplicate.*order_id"):
        write_table(sales([1, 1, 2]), "sales", db_url, mode="merge", keys=["order_id"])
    with pytest.raises(DataIOError, match="needs keys"):
        write_table(sales([1]), "sales", db_url, mode="merge")


def test_same_load_key_is_a_no_op_returning_the_first_count(db_url: str) -> None:
    assert write_table(sales([1, 2]), "sales", db_url, load_key="run-1/load-0") == 2
    assert write_table(sales([1, 2, 3]), "sales", db_url, load_key="run-1/load-0") == 2
    assert write_table(sales([3]), "sales", db_url, load_key="run-1/load-1") == 1
    assert [r[0] for r in rows(db_url)] == [1, 2, 3]


def test_a_failed_load_leaves_the_table_as_it_was(db_url: str) -> None:
    write_table(sales([1, 2]), "sales", db_url, mode="merge", keys=["order_id"])
    # A NOT NULL violation half-way through the statement: nothing of the load stays.
    bad = pa.table({"order_id": pa.array([3, None], pa.int64()), "amount": [1.0, 2.0]})
    with pytest.raises(DataIOError, match="sales"):
        write_table(bad, "sales", db_url, mode="append", load_key="k")
    assert [r[0] for r in rows(db_url)] == [1, 2]
    assert write_table(sales([3]), "sales", db_url, load_key="k") == 1  # not recorded as done


def test_merge_with_fewer_columns_keeps_the_others(db_url: str) -> None:
    write_table(sales([1, 2]), "sales", db_url, mode="merge", keys=["order_id"])
    partial = pd.DataFrame({"order_id": [2, 3], "amount": [50.0, 60.0]})
    write_table(partial, "sales", db_url, mode="merge", keys=["order_id"])
    got = [(r[0], r[2], r[3]) for r in rows(db_url)]
    assert got == [(1, 11.0, "North"), (2, 50.0, "North"), (3, 60.0, None)]


def test_duckdb_file_can_be_read_read_only(tmp_path: object) -> None:
    url = f"duckdb:///{tmp_path}/w.duckdb"
    write_table(sales([1, 2]), "sales", url)
    got = read_sql("SELECT count(*) AS n FROM sales WHERE order_date >= :d",
                   url + "?access_mode=read_only", {"d": dt.date(2024, 1, 3)})
    assert got["n"][0] == 1
    with pytest.raises(DataIOError, match="read-only"):
        write_table(sales([3]), "sales", url + "?access_mode=read_only")


def test_timestamps_naive_and_aware_round_trip(db_url: str) -> None:
    df = pd.DataFrame({
        "order_id": [1, 2],
        "at": pd.to_datetime(["2024-01-01 10:00:00.123456789", "2024-06-01 12:30:00.000000000"]),
        "at_utc": pd.to_datetime(["2024-01-01 10:00", "2024-06-01 12:30"]).tz_localize(
            "Europe/Berlin"),
        "ok": [True, False],
        "note": ["a", None],
    })
    assert write_table(df, "events", db_url) == 2
    got = read_sql("SELECT * FROM events ORDER BY order_id", db_url, as_="arrow").to_pylist()

    def when(value: object) -> dt.datetime:  # SQLite hands back text
        moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
        assert isinstance(moment, dt.datetime)
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)

    naive = when(got[0]["at"]).replace(tzinfo=None)
    assert abs(naive - dt.datetime(2024, 1, 1, 10, 0, 0, 123456)) <= dt.timedelta(microseconds=1)
    assert when(got[1]["at_utc"]) == dt.datetime(2024, 6, 1, 10, 30, tzinfo=dt.UTC)
    assert [r["ok"] for r in got] in ([True, False], [1, 0])
    assert got[1]["note"] is None


@pytest.mark.timeout(60)
def test_merge_of_a_large_frame_is_not_quadratic(db_url: str) -> None:
    n = 20_000
    write_table(sales(list(range(n))), "sales", db_url)  # no key index on the table
    full = sales(list(range(n // 2, n + n // 2)), amount=1.0)
    assert write_table(full, "sales", db_url, mode="merge", keys=["order_id"]) == n
    partial = pd.DataFrame({"order_id": range(n, 2 * n), "amount": 2.0})
    assert write_table(partial, "sales", db_url, mode="merge", keys=["order_id"]) == n
    got = read_sql("SELECT count(*) AS n, sum(amount) AS s FROM sales", db_url, as_="arrow")
    assert got["n"][0].as_py() == 2 * n
