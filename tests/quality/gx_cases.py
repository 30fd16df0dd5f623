"""Great Expectations' own test cases, read from ``../shared/specs/great_expectations/``.

GX runs each case on the backends its ``only_for`` / ``suppress_test_for`` allow;
headrace's backends map onto GX's names as in :data:`GX_NAMES`. The files are
never copied into the project: every checkout and CI has them beside the project.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

SPEC_DIR = Path(os.environ.get("HEADRACE_GX_SPECS")
                or Path(__file__).resolve().parents[2].parent / "shared" / "specs" / "great_expectations")

BACKENDS = ["pandas", "polars", "arrow", "duckdb", "parquet", "postgresql"]
MEMORY = ("pandas", "polars", "arrow")

# The GX names each headrace backend answers to. GX's "pandas" is its in-memory engine, so
# Polars and Arrow frames take its cases too. DuckDB is no GX dialect: DuckDB tables and
# Parquet files run what GX runs on every SQLAlchemy dialect ("sqlalchemy"). PostgreSQL
# is also GX's "postgresql". Spark, MySQL, MSSQL, BigQuery, ... have no headrace backend
# here (quality on Spark DataFrames is issue 12's, reusing the SQL backend).
GX_NAMES: dict[str, frozenset[str]] = {
    **{b: frozenset({"pandas", "pandas>=024", "pandas_v3_api"}) for b in MEMORY},
    "duckdb": frozenset({"sqlalchemy"}),
    "parquet": frozenset({"sqlalchemy"}),
    "postgresql": frozenset({"sqlalchemy", "postgresql"}),
}
# GX leaves these to a different test runner (see README.txt): like patterns on pandas.
GX_SKIPS = {"pandas": {"expect_column_values_to_match_like_pattern",
                       "expect_column_values_to_not_match_like_pattern"}}


@dataclass
class Case:
    """One GX test: its expectation, dataset and expected outcome."""

    expectation_type: str
    title: str
    dataset: int                      # index of the dataset in the file
    data: dict[str, list[Any]]
    schemas: dict[str, dict[str, str]]
    test: dict[str, Any]
    dataset_only_for: list[str] = field(default_factory=list)
    dataset_suppress: list[str] = field(default_factory=list)
    repeat: int = 1                   # a title GX uses twice in one dataset gets "~2"

    @property
    def key(self) -> str:
        suffix = f"~{self.repeat}" if self.repeat > 1 else ""
        return f"{self.expectation_type}:{self.title}#{self.dataset}{suffix}"

    def runs_on(self, backend: str) -> bool:
        """GX's rules (tests/test_definitions/test_expectations_v3_api.py) for this backend."""
        names = GX_NAMES[backend]
        if self.expectation_type in GX_SKIPS.get(backend, ()):
            return False
        if self.dataset_suppress and names & set(self.dataset_suppress):
            return False
        if self.dataset_only_for and not names & set(self.dataset_only_for):
            return False
        only = _listed(self.test.get("only_for"))
        if only and not names & set(only):
            return False
        suppress = _listed(self.test.get("suppress_test_for"))
        return not names & set(suppress)


def _listed(value: Any) -> list[str]:
    if not value:
        return []
    return [value] if isinstance(value, str) else list(value)


def available() -> bool:
    return SPEC_DIR.is_dir() and any(SPEC_DIR.glob("expect_*.json"))


def load_cases() -> list[Case]:
    cases = []
    for path in sorted(SPEC_DIR.glob("expect_*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        for i, ds in enumerate(doc["datasets"]):
            seen: dict[str, int] = {}
            for test in ds["tests"]:
                seen[test["title"]] = seen.get(test["title"], 0) + 1
                cases.append(Case(doc["expectation_type"], test["title"], i, ds["data"],
                                  ds.get("schemas") or {}, test, _listed(ds.get("only_for")),
                                  _listed(ds.get("suppress_test_for")), seen[test["title"]]))
    return cases


def datasets(cases: list[Case]) -> Iterator[tuple[str, int, Case]]:
    """One (expectation type, dataset index, a case of it) per distinct dataset."""
    seen = set()
    for c in cases:
        if (c.expectation_type, c.dataset) not in seen:
            seen.add((c.expectation_type, c.dataset))
            yield c.expectation_type, c.dataset, c


# -- the data, built the way GX's runner builds it -------------------------------------------

def pandas_frame(case: Case) -> pd.DataFrame:
    """GX's ``_get_test_validator_with_data_pandas``: a DataFrame cast to the pandas schema."""
    df = pd.DataFrame(case.data)
    schema = case.schemas.get("pandas") or {}
    types: dict[str, Any] = {}
    for col, name in schema.items():
        low = name.lower()
        if low in ("timestamp", "datetime64[ns, tz]"):
            df[col] = pd.to_datetime(df[col], utc=True)
        elif low in ("datetime", "datetime64", "datetime64[ns]"):
            df[col] = pd.to_datetime(df[col])
        elif low == "date":
            df[col] = pd.to_datetime(df[col]).dt.date
            types[col] = np.dtype("object")
        else:
            try:
                types[col] = np.dtype(name)
            except TypeError:
                types[col] = getattr(pd, name)()
    return df.astype(types) if types else df


def arrow_from_pandas(df: pd.DataFrame) -> pa.Table:
    """The pandas frame as typed columns; a column of mixed Python types becomes its text."""
    cols = {}
    for name in df.columns:
        s = df[name]
        try:
            cols[str(name)] = pa.array(s, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            cols[str(name)] = pa.array([None if v is None or v != v else str(v) for v in s], pa.string())
    return pa.table(cols)


SQL_TYPES = {
    "INTEGER": pa.int32(), "INT": pa.int32(), "BIGINT": pa.int64(), "SMALLINT": pa.int16(),
    "NUMBER": pa.int64(), "TINYINT": pa.int8(),
    "FLOAT": pa.float64(), "DOUBLE": pa.float64(), "DOUBLE_PRECISION": pa.float64(),
    "REAL": pa.float32(), "NUMERIC": pa.float64(), "DECIMAL": pa.float64(),
    "TEXT": pa.string(), "VARCHAR": pa.string(), "NVARCHAR": pa.string(), "CHAR": pa.string(),
    "STRING": pa.string(), "BOOLEAN": pa.bool_(), "BIT": pa.bool_(), "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("us"), "DATETIME": pa.timestamp("us"),
    "TIMESTAMP_NTZ": pa.timestamp("us"),
    # Spark's names: the only typing some datasets have, and it says what GX means them to hold.
    "INTEGERTYPE": pa.int32(), "LONGTYPE": pa.int64(), "FLOATTYPE": pa.float64(),
    "DOUBLETYPE": pa.float64(), "DECIMALTYPE": pa.float64(), "STRINGTYPE": pa.string(),
    "BOOLEANTYPE": pa.bool_(), "DATETYPE": pa.date32(), "TIMESTAMPTYPE": pa.timestamp("us"),
    "NULLTYPE": pa.string(),
}


def sql_table(case: Case) -> pa.Table:
    """GX's SQL recipe: the raw frame, typed by the dataset's SQL schema where it has one.

    One schema serves DuckDB, Parquet and PostgreSQL alike (PostgreSQL's first, then
    SQLite's, then Spark's), so the three hold the same table; without one the types follow
    the data, as pandas' ``to_sql`` infers them.
    """
    df = pd.DataFrame(case.data)
    schema = case.schemas.get("postgresql") or case.schemas.get("sqlite") or case.schemas.get("spark") or {}
    cols = {}
    for name in df.columns:
        wanted = SQL_TYPES.get(schema.get(name, "").upper())
        cols[name] = _sql_column(df[name], wanted)
    return pa.table(cols) if cols else pa.table({})


def _sql_column(s: pd.Series, wanted: pa.DataType | None) -> pa.Array:
    values = [None if v is None or (isinstance(v, float) and v != v) else v for v in s.tolist()]
    if wanted is None:
        if not values or all(v is None for v in values):
            return pa.array(values, pa.string())
        try:
            return pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return pa.array([None if v is None else str(v) for v in values], pa.string())
    if pa.types.is_timestamp(wanted) or pa.types.is_date(wanted):
        parsed = pd.to_datetime(pd.Series(values, dtype=object))
        arr = pa.array(parsed, from_pandas=True, type=pa.timestamp("us"))
        return arr.cast(wanted) if pa.types.is_date(wanted) else arr
    if pa.types.is_string(wanted):
        return pa.array([None if v is None else str(v) for v in values], pa.string())
    if pa.types.is_integer(wanted):
        return pa.array([None if v is None else int(v) for v in values], wanted)
    if pa.types.is_floating(wanted):
        return pa.array([None if v is None else float(v) for v in values], wanted)
    return pa.array(values, wanted)
