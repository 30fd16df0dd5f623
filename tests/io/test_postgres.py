"""PostgreSQL: dropped connections, killed processes, secrets, engines as ``con``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator

import pandas as pd
import pytest
from pg_helpers import kill_backend, make_slow_once, victim_pid
from sqlalchemy import create_engine, text

from headrace.errors import ConnectionFailed, DataIOError
from headrace.io import read_sql, write_table

PASSWORD = "hunter2-s3cret"


def frame(ids: range) -> pd.DataFrame:
    return pd.DataFrame({"order_id": list(ids), "amount": [float(i) for i in ids]})


@pytest.fixture
def admin(pg_url: str) -> Iterator[object]:
    engine = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def count(pg_libpq_url: str, table: str = "sales") -> int:
    return int(read_sql(f"SELECT count(*) AS n FROM {table}", pg_libpq_url)["n"][0])


@pytest.mark.parametrize("mode", ["append", "merge"])
def test_connection_killed_mid_load_leaves_table_as_before_and_retry_loads_once(
        pg_libpq_url: str, pg_schema: str, admin: object, mode: str) -> None:
    write_table(frame(range(0, 10)), "sales", pg_libpq_url, mode="merge", keys=["order_id"])
    make_slow_once(admin, pg_schema)
    errors: list[BaseException] = []

    def load() -> None:
        try:
            write_table(frame(range(10, 5010)), "sales", pg_libpq_url, mode=mode,
                        keys=["order_id"] if mode == "merge" else None, load_key="run-7/load-0")
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=load)
    worker.start()
    kill_backend(admin, victim_pid(admin, pg_schema))
    worker.join(30)
    assert len(errors) == 1 and isinstance(errors[0], ConnectionFailed)
    assert "safe to retry" in str(errors[0])
    assert count(pg_libpq_url) == 10  # exactly as before
    for _ in range(2):  # the retry loads; a second retry finds the ledger row
        assert write_table(frame(range(10, 5010)), "sales", pg_libpq_url, mode=mode,
                           keys=["order_id"] if mode == "merge" else None,
                           load_key="run-7/load-0") == 5000
    assert count(pg_libpq_url) == 5010


def test_sigkill_mid_load_leaves_nothing_partial(pg_libpq_url: str, pg_schema: str,
                                                  admin: object) -> None:
    write_table(frame(range(0, 10)), "sales", pg_libpq_url, mode="merge", keys=["order_id"])
    make_slow_once(admin, pg_schema)
    code = ("import pandas as pd, sys; from headrace.io import write_table; "
            "write_table(pd.DataFrame({'order_id': range(10, 20010), 'amount': 1.0}), 'sales', "
            "sys.argv[1], mode='merge', keys=['order_id'], load_key='k')")
    # The server checks every 100 ms whether the client is still there (PostgreSQL >= 14).
    url = pg_libpq_url + "%20-cclient_connection_check_interval%3D100"
    proc = subprocess.Popen([sys.executable, "-c", code, url])
    try:
        pid = victim_pid(admin, pg_schema)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert count(pg_libpq_url) == 10
        with admin.connect() as c:  # type: ignore[attr-defined]
            c.execute(text("INSERT INTO kill_flag VALUES (true)"))
            deadline = time.monotonic() + 10
            while c.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"),
                            {"p": pid}).scalar():  # the server rolls back on its own
                assert time.monotonic() < deadline, "the orphaned backend lingered"
                time.sleep(0.05)
            assert c.execute(text("SELECT count(*) FROM headrace_load_ledger")).scalar() == 0
    finally:
        proc.kill()
    assert count(pg_libpq_url) == 10
    assert write_table(frame(range(10, 20)), "sales", pg_libpq_url, load_key="k") == 10


def _with_password(url: str) -> str:
    return url.replace("postgres@", f"postgres:{PASSWORD}@")


def test_password_never_in_errors_or_logs(pg_libpq_url: str,
                                          caplog: pytest.LogCaptureFixture) -> None:
    url = _with_password(pg_libpq_url)  # the test server trusts any password
    caplog.set_level("DEBUG")
    write_table(frame(range(3)), "sales", url)
    assert len(read_sql("SELECT * FROM sales", url)) == 3
    with pytest.raises(DataIOError) as bad_sql:
        read_sql("SELECT * FROM no_such_table", url)
    with pytest.raises(ConnectionFailed) as unreachable:
        read_sql("SELECT 1", f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/test")
    for exc in (bad_sql.value, unreachable.value):
        shown = "".join(traceback.format_exception(exc))
        assert PASSWORD not in shown
    assert "127.0.0.1:1" in str(unreachable.value) and "***" in str(unreachable.value)
    assert "no_such_table" in str(bad_sql.value)
    assert PASSWORD not in caplog.text


def test_sqlalchemy_engine_as_con_uses_the_fast_path(pg_url: str) -> None:
    engine = create_engine(pg_url)
    try:
        assert write_table(frame(range(5)), "sales", engine) == 5
        got = read_sql("SELECT sum(amount) AS s FROM sales WHERE order_id < :n", engine, {"n": 3})
        assert got["s"][0] == 3.0
    finally:
        engine.dispose()


def test_type_that_needs_sql_cast_goes_through_staging(pg_libpq_url: str, admin: object) -> None:
    with admin.connect() as c:  # type: ignore[attr-defined]
        c.execute(text("CREATE TABLE sales (order_id integer PRIMARY KEY, amount numeric(10,2))"))
    write_table(frame(range(3)), "sales", pg_libpq_url)  # int64 -> integer, float -> numeric
    write_table(frame(range(2, 4)), "sales", pg_libpq_url, mode="merge", keys=["order_id"])
    got = read_sql("SELECT order_id, amount FROM sales ORDER BY 1", pg_libpq_url, as_="arrow")
    assert got["order_id"].to_pylist() == [0, 1, 2, 3]


def test_schema_argument_and_unreachable_databases(pg_libpq_url: str, pg_schema: str,
                                                   tmp_path: object) -> None:
    assert write_table(frame(range(2)), "sales", pg_libpq_url, schema=pg_schema,
                       mode="merge", keys=["order_id"], load_key="k") == 2
    assert count(pg_libpq_url) == 2
    with pytest.raises(ConnectionFailed, match="sqlite"):
        write_table(frame(range(2)), "sales", f"sqlite:///{tmp_path}/no/such/dir/x.db")
    with pytest.raises(ConnectionFailed, match="DuckDB"):
        read_sql("SELECT 1", f"duckdb:///{tmp_path}/no/such/dir/x.duckdb")


def test_a_pooled_connection_killed_while_idle_is_replaced(pg_libpq_url: str,
                                                           admin: object) -> None:
    write_table(frame(range(3)), "sales", pg_libpq_url)
    pid = int(read_sql("SELECT pg_backend_pid() AS pid", pg_libpq_url)["pid"][0])
    assert int(read_sql("SELECT pg_backend_pid() AS pid", pg_libpq_url)["pid"][0]) == pid
    with admin.connect() as c:  # type: ignore[attr-defined]
        c.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})  # now idle in the pool
    assert count(pg_libpq_url) == 3


def test_a_pooled_connection_idle_too_long_is_closed(pg_libpq_url: str, admin: object,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from headrace.io import _pgpool

    monkeypatch.setattr(_pgpool, "IDLE_SECONDS", 0.3)
    pid = int(read_sql("SELECT pg_backend_pid() AS pid", pg_libpq_url)["pid"][0])
    alive = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p")
    with admin.connect() as c:  # type: ignore[attr-defined]
        assert c.execute(alive, {"p": pid}).scalar() == 1  # kept for the next load
        deadline = time.monotonic() + 10
        while c.execute(alive, {"p": pid}).scalar() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c.execute(alive, {"p": pid}).scalar() == 0  # closed by the timer, no load needed
    assert int(read_sql("SELECT pg_backend_pid() AS pid", pg_libpq_url)["pid"][0]) != pid  # a fresh one


def test_hostile_values_and_identifiers_stay_literal(pg_libpq_url: str) -> None:
    evil = "x'); DROP TABLE sales; --"
    df = pd.DataFrame({"order_id": [1], 'note"; DROP TABLE sales; --': [evil]})
    write_table(df, "sales", pg_libpq_url)
    write_table(df.assign(order_id=2), 'sales"; DROP TABLE sales; --', pg_libpq_url)
    got = read_sql("SELECT * FROM sales WHERE order_id = :id", pg_libpq_url, {"id": 1})
    assert got.iloc[0, 1] == evil
    assert count(pg_libpq_url) == 1


def test_text_into_typed_text_columns_and_named_index(pg_libpq_url: str, admin: object) -> None:
    with admin.connect() as c:  # type: ignore[attr-defined]
        c.execute(text("CREATE TABLE docs (id uuid PRIMARY KEY, body jsonb)"))
    df = pd.DataFrame({"id": ["6f1c8f8e-8a5e-4f7e-9a57-1d2b3c4d5e6f"], "body": ['{"a": 1}']})
    assert write_table(df, "docs", pg_libpq_url, mode="merge", keys=["id"]) == 1
    got = read_sql("SELECT body->>'a' AS a FROM docs", pg_libpq_url)
    assert got["a"][0] == "1"
    write_table(frame(range(2)).set_index("order_id"), "indexed", pg_libpq_url)
    assert read_sql("SELECT order_id FROM indexed ORDER BY 1", pg_libpq_url)["order_id"].tolist() \
        == [0, 1]


def test_concurrent_loads_with_one_key_load_once(pg_libpq_url: str) -> None:
    results: list[int] = []

    def load(i: int) -> None:
        results.append(write_table(frame(range(100)), "sales", pg_libpq_url, load_key="same"))

    write_table(frame(range(0)), "sales", pg_libpq_url)
    threads = [threading.Thread(target=load, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [100] * 4
    assert count(pg_libpq_url) == 100


def test_big_merge_rebuilds_indexes_under_their_names(pg_libpq_url: str, admin: object) -> None:
    n = 60_000  # large enough for the drop-and-rebuild path
    with admin.connect() as c:  # type: ignore[attr-defined]
        c.execute(text("CREATE TABLE sales (order_id bigint PRIMARY KEY, amount float8, "
                       "ref bigint CONSTRAINT sales_ref_key UNIQUE)"))
        c.execute(text("CREATE INDEX sales_amount_idx ON sales (amount DESC)"))
    # This schema's only: other suites sharing the server load their own "sales" tables meanwhile.
    sql = ("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
           "AND tablename = 'sales' ORDER BY 1")
    with admin.connect() as c:  # type: ignore[attr-defined]
        before = c.execute(text(sql)).all()
    first = frame(range(n)).assign(ref=range(n))
    write_table(first, "sales", pg_libpq_url, mode="merge", keys=["order_id"])
    second = frame(range(n // 2, n + n // 2)).assign(ref=range(n, 2 * n), amount=-1.0)
    write_table(second, "sales", pg_libpq_url, mode="merge", keys=["order_id"])
    got = read_sql("SELECT count(*) AS n, sum(CASE WHEN amount < 0 THEN 1 ELSE 0 END) AS upd "
                   "FROM sales", pg_libpq_url)
    assert (int(got["n"][0]), int(got["upd"][0])) == (n + n // 2, n)
    with admin.connect() as c:  # type: ignore[attr-defined]
        assert c.execute(text(sql)).all() == before
    # A frame that breaks another unique index fails whole; the table is as it was.
    clash = frame(range(2 * n, 3 * n)).assign(ref=n)
    with pytest.raises(DataIOError, match="sales_ref_key"):
        write_table(clash, "sales", pg_libpq_url, mode="merge", keys=["order_id"])
    assert count(pg_libpq_url) == n + n // 2
    with admin.connect() as c:  # type: ignore[attr-defined]
        assert c.execute(text(sql)).all() == before
