"""Data quality: Great-Expectations-style checks that gate loads, quarantine bad rows and
learn from history.

    from headrace.quality import Suite, expect

    quality = Suite("sales", [
        expect.column_values_to_not_be_null("customer_id"),
        expect.column_values_to_be_between("revenue", min_value=0),
    ], on_failure="quarantine")
    result = quality.validate(df)          # pandas, Polars, Arrow, files, DuckDB, PostgreSQL
    good, bad = quality.split(df)          # bad rows carry the names of the checks they failed
    clean = quality.gate(df)               # inside a flow: halt, warn or quarantine

Where checks run: pandas, Polars and Arrow frames in memory (pyarrow.compute and
NumPy, one pass per column); Parquet/CSV files and DuckDB tables as one SQL query in
DuckDB; PostgreSQL tables as one SQL query on the server. Every backend gives the same
results; in pandas a NaN is a null, as pandas itself has it. ``split`` on a file or
table returns Arrow tables. Two kinds of check read each *distinct* value in Python
(strftime and dateutil parsing, the distinct-set checks); no row is pulled for them.
A new engine plugs in with ``register_backend``: a SQL engine (Spark SQL) with a
``SqlRelation`` and a ``Dialect`` wrapped in ``SqlSource``; anything else with the
``Source`` protocol. Checks may be limited to rows with ``row_condition``.
"""

from headrace.quality import expect
from headrace.quality.backends import (
    FAILED_CHECKS_COLUMN,
    Backend,
    Source,
    open_source,
    register_backend,
)
from headrace.quality.backends.sources import CsvFile, DuckDBTable, ParquetFile, PostgresTable, SqlRelation
from headrace.quality.backends.sql import SqlSource
from headrace.quality.backends.sql_ops import Dialect
from headrace.quality.dataset import Dataset, PandasDataset
from headrace.quality.expectation import REGISTRY, Expectation, make
from headrace.quality.gate import GateOutcome
from headrace.quality.results import ExpectationResult, ResultFormat, SuiteResult
from headrace.quality.suite import Suite

__all__ = [
    "FAILED_CHECKS_COLUMN", "REGISTRY", "Backend", "CsvFile", "Dataset", "Dialect", "DuckDBTable",
    "Expectation", "ExpectationResult", "GateOutcome", "PandasDataset", "ParquetFile", "PostgresTable",
    "ResultFormat", "Source", "SqlRelation", "SqlSource", "Suite", "SuiteResult", "expect", "make",
    "open_source", "register_backend",
]
