"""What a lake job is: its declaration checked, its types, rules, result and errors.

The ground of the lake job: ``lake`` (the job and its run) and the engines (``lake_duckdb``,
``lake_spark``), the file helpers and ``publish`` all read a job through ``LakeSpec``; the
contract they follow is in ``headrace.spark.lake``'s docstring.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from headrace.errors import DataIOError, QualityError

ENGINES = ("duckdb", "spark")
TYPE_NAMES = ("int64", "float64", "string", "bool", "date", "timestamp")
ARROW_TYPES: dict[str, pa.DataType] = {
    "int64": pa.int64(), "float64": pa.float64(), "string": pa.string(), "bool": pa.bool_(),
    "date": pa.date32(), "timestamp": pa.timestamp("us", tz="UTC")}
QUARANTINE_SCHEMA = pa.schema([("source_file", pa.string()), ("raw", pa.string()),
                               ("reason", pa.string())])
SPARK_EXTRA = "pip install 'headrace[spark]'"


class LakeJobError(DataIOError):
    """A lake job that cannot run as declared (bad schema, rules, paths or engine)."""


@dataclass
class LakeResult:
    """What one run of a lake job read and wrote; ``rows_read == good_rows + bad_rows``."""

    files_read: int = 0
    bytes_read: int = 0
    rows_read: int = 0
    good_rows: int = 0
    bad_rows: int = 0
    bad_bytes: int = 0
    bytes_written: int = 0
    engine: str = "duckdb"
    files: list[str] = field(default_factory=list)
    partitions: list[str] = field(default_factory=list)   # partition folders published
    quarantine_files: list[str] = field(default_factory=list)
    missing: dict[str, int] = field(default_factory=dict)  # schema field -> records lacking it
    seconds: float = 0.0

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        if self.rows_read != self.good_rows + self.bad_rows:
            raise AssertionError(f"lake counters do not add up: rows_read {self.rows_read} != good "
                                 f"{self.good_rows} + bad {self.bad_rows}")


def schema_types(schema: pa.Schema | dict[str, str]) -> dict[str, str]:
    """``{field: type name}`` from a pyarrow schema or a dict of type names (checked)."""
    if isinstance(schema, pa.Schema):
        out = {}
        for f in schema:
            name = next((n for n, t in ARROW_TYPES.items() if _same_type(t, f.type)), None)
            if name is None:
                raise LakeJobError(f"schema field {f.name!r}: type {f.type} is not supported; use one of "
                                   f"{', '.join(TYPE_NAMES)}")
            out[f.name] = name
        return out
    if not isinstance(schema, dict) or not schema:
        raise LakeJobError("schema must be a pyarrow schema or a non-empty dict of field name to type name")
    for name, typ in schema.items():
        if typ not in TYPE_NAMES:
            raise LakeJobError(f"schema field {name!r}: unknown type {typ!r}; use one of {', '.join(TYPE_NAMES)}")
    return dict(schema)


def _same_type(ours: pa.DataType, theirs: pa.DataType) -> bool:
    if pa.types.is_timestamp(ours):
        return pa.types.is_timestamp(theirs)
    if pa.types.is_string(ours):
        return pa.types.is_string(theirs) or pa.types.is_large_string(theirs)
    if pa.types.is_date(ours):
        return pa.types.is_date(theirs)
    return bool(ours == theirs)


# Row-level checks that look at one row alone (a streamed job sees one file at a time).
_NOT_PER_ROW = {"unique", "compound_unique", "increasing", "decreasing", "strftime", "dateutil"}


def row_rules(rules: Any) -> list[Any]:
    """The row-level expectations of a Suite or list, checked to run one row at a time."""
    from headrace.quality import Suite

    checks = list(rules.expectations if isinstance(rules, Suite) else (rules or []))
    for e in checks:
        if not e.row_level:
            raise LakeJobError(f"rule {e.name}: a lake job applies row-level rules only; validate the "
                               "target afterwards for table and aggregate checks (Suite.validate)")
        if e.op in _NOT_PER_ROW:
            raise LakeJobError(f"rule {e.name}: {e.op} compares rows with each other (or parses in "
                               "Python) and cannot run row by row in a lake job")
        from headrace.spark.lakesql import supported_op

        if not supported_op(e):
            raise LakeJobError(f"rule {e.name}: {e.expectation_type} is not supported in a lake job")
        if e.kwargs.get("row_condition"):
            raise LakeJobError(f"rule {e.name}: row_condition is not supported in a lake job")
    return checks


def quarantine_file_name(source_file: str) -> str:
    """The quarantine file of one source file's bad rows (stable, so a rerun replaces it)."""
    return "bad-" + hashlib.sha1(source_file.encode()).hexdigest()[:16] + ".parquet"


@dataclass
class LakeSpec:
    """A lake job's declaration, checked when built (``LakeJob`` adds its run); fields as ``LakeJob``."""

    source: str | Sequence[str]
    schema: pa.Schema | dict[str, str]
    rules: Any = ()
    target: str = ""
    partition_by: Sequence[str] = ()
    quarantine: str | None = None
    engine: str = "duckdb"
    spark_master: str | None = None
    name: str | None = None
    memory_limit: str | None = None
    threads: int | None = None
    progress: bool | None = None

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise LakeJobError(f"engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")
        if not self.target:
            raise LakeJobError("a lake job needs a target folder (target='s3://warehouse/sales/')")
        if isinstance(self.partition_by, str):
            self.partition_by = [self.partition_by]
        self.types = schema_types(self.schema)
        for name in self.types:
            if name.startswith("__hr_"):
                raise LakeJobError(f"schema field {name!r}: names starting with __hr_ are reserved")
        for col in self.partition_by:
            if col not in self.types:
                raise LakeJobError(f"partition_by column {col!r} is not in the schema")
            if self.types[col] in ("float64", "timestamp"):
                raise LakeJobError(f"partition_by column {col!r} is {self.types[col]}: partition by an "
                                   "int64, string, bool or date column (derive a date from a timestamp)")
        try:
            self.checks = row_rules(self.rules)
        except QualityError as exc:
            raise LakeJobError(str(exc)) from None
        for e in self.checks:
            for col in e.columns:
                if col not in self.types:
                    raise LakeJobError(f"rule {e.name}: column {col!r} is not in the schema")
        if self.quarantine is None:
            self.quarantine = self.target.rstrip("/") + "/_quarantine"
        if self.name is None:
            self.name = "lake:" + self.target.rstrip("/").rsplit("/", 1)[-1]

    @property
    def sources(self) -> list[str]:
        return [self.source] if isinstance(self.source, str) else list(self.source)

    @property
    def arrow_schema(self) -> pa.Schema:
        """The schema of the good rows (partition columns included)."""
        return pa.schema([(n, ARROW_TYPES[t]) for n, t in self.types.items()])
