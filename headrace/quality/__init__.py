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
"""

from headrace.quality import expect
from headrace.quality.backends import (
    FAILED_CHECKS_COLUMN,
    Backend,
    Source,
    open_source,
    register_backend,
)
from headrace.quality.backends.sources import CsvFile, DuckDBTable, ParquetFile, PostgresTable
from headrace.quality.dataset import PandasDataset
from headrace.quality.expectation import REGISTRY, Expectation, make
from headrace.quality.gate import GateOutcome
from headrace.quality.results import ExpectationResult, ResultFormat, SuiteResult
from headrace.quality.suite import Suite

__all__ = [
    "FAILED_CHECKS_COLUMN", "REGISTRY", "Backend", "CsvFile", "DuckDBTable", "Expectation",
    "ExpectationResult", "GateOutcome", "PandasDataset", "ParquetFile", "PostgresTable",
    "ResultFormat", "Source", "Suite", "SuiteResult", "expect", "make", "open_source",
    "register_backend",
]
