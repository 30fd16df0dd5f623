"""Issue 9: cache keys are a function of the logical content of every input."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headrace import flow, task, task_input_hash
from headrace.engine.hashing import CacheKeyWarning, stable_hash

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_two_slices_of_one_arrow_table_are_two_cache_entries() -> None:
    table = pa.table({"v": list(range(10))})

    @task(cache_key_fn=task_input_hash)
    def total(t: pa.Table) -> int:
        return int(pa.compute.sum(t["v"]).as_py())

    @flow
    def pipeline() -> tuple[int, int]:
        return total(table.slice(0, 5)), total(table.slice(5, 5))

    assert pipeline() == (10, 35)


def test_a_pandas_frame_is_cached_by_content() -> None:
    calls: list[int] = []

    @task(cache_key_fn=task_input_hash)
    def rows(df: pd.DataFrame) -> int:
        calls.append(1)
        return len(df)

    @flow
    def pipeline(df: pd.DataFrame) -> int:
        return rows(df)

    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"], "d": pd.to_datetime(["2024-01-01", "2024-01-02"])})
    assert pipeline(frame) == 2 and pipeline(frame.copy()) == 2
    assert len(calls) == 1  # the second call was a cache hit
    assert pipeline(frame.assign(a=[1, 3])) == 2 and len(calls) == 2


def test_an_unhashable_input_warns_naming_task_and_parameter_and_is_not_cached() -> None:
    calls: list[int] = []

    @task(cache_key_fn=task_input_hash)
    def use(lock: object, n: int) -> int:
        calls.append(n)
        return n

    @flow
    def pipeline() -> int:
        return use(threading.Lock(), 1) + use(threading.Lock(), 1)

    with pytest.warns(CacheKeyWarning, match=r"task 'use': parameter 'lock' \(lock\).*not cached"):
        assert pipeline() == 2
    assert calls == [1, 1]


# -- properties ----------------------------------------------------------------------------------
values = st.one_of(st.none(), st.integers(-(2**40), 2**40), st.text(max_size=8))
rows = st.lists(st.tuples(st.integers(-1000, 1000), st.one_of(st.none(), st.text(max_size=6)),
                          st.floats(allow_nan=False, width=64)), min_size=1, max_size=40)


def _arrow(data: list[tuple[int, str | None, float]]) -> pa.Table:
    a, b, c = zip(*data, strict=True)
    return pa.table({"a": list(a), "b": list(b), "c": list(c)})


def _layouts(table: pa.Table, cut: int) -> list[pa.Table]:
    cut = cut % (table.num_rows + 1)
    padded = pa.concat_tables([table.slice(0, 1), table, table.slice(0, 1)]).combine_chunks()
    return [table, table.combine_chunks(), pa.concat_tables([table.slice(0, cut), table.slice(cut)]),
            padded.slice(1, table.num_rows), pa.Table.from_batches(table.to_batches(max_chunksize=3))]


@FAST
@given(rows, st.integers(0, 50))
def test_equal_arrow_content_gives_equal_keys_in_every_layout(data, cut) -> None:  # type: ignore[no-untyped-def]
    keys = {stable_hash(t) for t in _layouts(_arrow(data), cut)}
    assert len(keys) == 1
    column = _arrow(data)["b"]
    assert stable_hash(column) == stable_hash(column.combine_chunks())


@FAST
@given(rows, rows)
def test_different_arrow_content_gives_different_keys(a, b) -> None:  # type: ignore[no-untyped-def]
    same = _arrow(a).equals(_arrow(b))
    assert (stable_hash(_arrow(a)) == stable_hash(_arrow(b))) == same


def _frame(data: list[tuple[int, str | None, float]]) -> pd.DataFrame:
    a, b, c = zip(*data, strict=True)
    return pd.DataFrame({"a": list(a), "b": list(b), "c": list(c)})


@FAST
@given(rows)
def test_equal_pandas_content_gives_equal_keys_in_every_layout(data) -> None:  # type: ignore[no-untyped-def]
    df = _frame(data)
    relaid = pd.concat([df[["a"]], df[["b", "c"]]], axis=1)  # other blocks
    fortran = pd.DataFrame({k: np.asfortranarray(df[k].to_numpy()) for k in df})
    keys = {stable_hash(x) for x in (df, df.copy(), relaid, fortran, df.iloc[::1])}
    assert len(keys) == 1


@FAST
@given(rows, st.sampled_from(["value", "dtype", "index", "column", "row"]))
def test_different_pandas_content_gives_different_keys(data, change) -> None:  # type: ignore[no-untyped-def]
    df = _frame(data)
    other = {
        "value": lambda: df.assign(a=df["a"] + 1),
        "dtype": lambda: df.astype({"a": "float64"}),
        "index": lambda: df.set_axis(df.index + 1),
        "column": lambda: df.rename(columns={"a": "z"}),
        "row": lambda: pd.concat([df, df.iloc[:1]]),
    }[change]()
    assert stable_hash(df) != stable_hash(other)
    assert stable_hash(df["a"]) != stable_hash(df["a"].rename("other"))


@FAST
@given(st.lists(st.integers(-100, 100), min_size=2, max_size=30), st.integers(1, 29))
def test_polars_and_numpy_keys_ignore_chunks_and_strides(xs, cut) -> None:  # type: ignore[no-untyped-def]
    cut = cut % len(xs)
    part = {"x": pl.Int64}
    chunked = pl.concat([pl.DataFrame({"x": xs[:cut]}, schema=part), pl.DataFrame({"x": xs[cut:]}, schema=part)],
                        rechunk=False)
    assert stable_hash(chunked) == stable_hash(pl.DataFrame({"x": xs}, schema=part))
    arr = np.array(xs * 2).reshape(2, -1)
    assert stable_hash(arr.T) == stable_hash(np.ascontiguousarray(arr.T))
    assert stable_hash(arr[:, ::2]) == stable_hash(arr[:, ::2].copy())
    assert stable_hash(np.array(xs)) != stable_hash(np.array(xs, dtype=np.float64))


@dataclass
class Window:
    start: date
    amount: Decimal
    tags: list[str]


nested = st.recursive(values, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=4), inner, max_size=4)),
                      max_leaves=12)


@FAST
@given(nested, nested)
def test_nested_values_key_by_content(a, b) -> None:  # type: ignore[no-untyped-def]
    assert stable_hash(a) == stable_hash(a)
    if repr(a) != repr(b):
        assert stable_hash(a) != stable_hash(b)


def test_dates_decimals_dataclasses_and_objects_key_by_content() -> None:
    w = Window(date(2024, 1, 31), Decimal("1.50"), ["x"])
    assert stable_hash(w) == stable_hash(Window(date(2024, 1, 31), Decimal("1.50"), ["x"]))
    assert stable_hash(w) != stable_hash(Window(date(2024, 1, 31), Decimal("1.5"), ["x"]))
    assert stable_hash(datetime(2024, 1, 1, tzinfo=UTC)) != stable_hash(datetime(2024, 1, 1))
    assert stable_hash({"a": 1, "b": 2}) == stable_hash({"b": 2, "a": 1})
    assert stable_hash(SimpleNamespace(df=pd.DataFrame({"a": [1]}))) != stable_hash(
        SimpleNamespace(df=pd.DataFrame({"a": [2]})))
    assert stable_hash(1) != stable_hash(1.0) != stable_hash("1") and stable_hash(True) != stable_hash(1)
