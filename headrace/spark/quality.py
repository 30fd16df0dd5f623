"""Quality checks on Spark DataFrames, pushed down into Spark SQL.

    import headrace.spark.quality               # registers this backend (spark_session() does too)
    result = suite.validate(spark_df)           # one Spark SQL aggregate per row condition
    good, bad = suite.split(spark_df)           # Arrow tables, as for any SQL source

Spark plugs into ``headrace.quality``'s SQL backend as its docs describe: a
:class:`SparkRelation` (a temporary view over the DataFrame; queries run by ``spark.sql``
with named parameter markers, so values are bound, never SQL text) and a
:class:`SparkDialect` for what Spark SQL spells differently. Checks, row conditions and
results come from the same code as DuckDB's and PostgreSQL's, so the answers are the same.
A Spark DataFrame has no row order of its own: row positions (``unexpected_index_list``,
order checks) follow ``monotonically_increasing_id()``, i.e. the DataFrame's partition order,
which for a DataFrame read from one file or built from local data is the order of its rows.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pyarrow as pa

from headrace.errors import QualityError
from headrace.quality import Dialect, SqlRelation, SqlSource, register_backend

ORDER = "__hr_order"   # the row order column the relation adds to its view

# Spark's type name (DataType.simpleString, first word) -> the canonical type and the name GX
# gives a Spark column's type (its DataType class).
_TYPES: dict[str, tuple[str, str]] = {
    "tinyint": ("int8", "ByteType"), "smallint": ("int16", "ShortType"), "int": ("int32", "IntegerType"),
    "bigint": ("int64", "LongType"), "float": ("float32", "FloatType"), "double": ("float64", "DoubleType"),
    "decimal": ("decimal", "DecimalType"), "string": ("string", "StringType"),
    "varchar": ("string", "VarcharType"), "char": ("string", "CharType"), "boolean": ("bool", "BooleanType"),
    "date": ("date", "DateType"), "timestamp": ("timestamptz", "TimestampType"),
    "timestamp_ntz": ("timestamp", "TimestampNTZType"), "binary": ("binary", "BinaryType"),
    "void": ("null", "NullType"),
}


class SparkDialect(Dialect):
    """Spark SQL's spellings: backticks, ``:name`` markers, RLIKE, exact percentiles."""

    name = "spark"
    double = "DOUBLE"
    text = "STRING"

    def param(self, key: str) -> str:
        return ":" + key

    def quote(self, name: str) -> str:
        return "`" + str(name).replace("`", "``") + "`"

    def regex(self, col: str, p: str) -> str:
        return "(" + col + " RLIKE " + p + ")"

    def median(self, col: str) -> str:
        return "percentile(" + self.as_double(col) + ", 0.5)"

    def quantile(self, col: str, p: str) -> str:
        return "percentile_disc(" + self.as_double(p) + ") WITHIN GROUP (ORDER BY " + col + ")"

    def length(self, col: str) -> str:
        return "char_length(" + col + ")"

    def row_number(self) -> str:
        return "row_number() OVER (ORDER BY " + self.quote(ORDER) + ") - 1"


def is_spark_frame(data: Any) -> bool:
    """A pyspark DataFrame (classic or Spark Connect), recognised without importing pyspark."""
    t = type(data)
    return t.__module__.startswith("pyspark.sql") and t.__name__ == "DataFrame"


class SparkRelation(SqlRelation):
    """A Spark DataFrame as a temporary view, queried with bound parameters."""

    kind = "spark"
    dialect = SparkDialect()

    def __init__(self, df: Any) -> None:
        from pyspark.sql import functions as F

        self.df = df
        self.spark = df.sparkSession
        if ORDER in df.columns:
            raise QualityError(f"column {ORDER!r} is reserved by headrace's Spark checks; rename it")
        self.view = "__hr_spark_" + uuid.uuid4().hex[:16]
        df.withColumn(ORDER, F.monotonically_increasing_id()).createOrReplaceTempView(self.view)
        self.sql = self.dialect.quote(self.view)

    def columns(self) -> list[tuple[str, str]]:
        return [(f.name, f.dataType.simpleString()) for f in self.df.schema.fields]

    def fetch(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        table = self.fetch_arrow(sql, params)
        return list(zip(*(c.to_pylist() for c in table.columns), strict=True)) if table.num_columns else []

    def fetch_arrow(self, sql: str, params: dict[str, Any]) -> pa.Table:
        used = set(re.findall(r":(p\d+)\b", sql))
        try:
            return self.spark.sql(sql, args={k: v for k, v in params.items() if k in used}).toArrow()
        except Exception as exc:   # AnalysisException, SparkRuntimeException (ANSI), Py4JJavaError
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise QualityError(f"Spark could not run a check on a DataFrame: {first}") from exc

    def drop(self) -> None:
        self.spark.catalog.dropTempView(self.view)


class SparkSource(SqlSource):
    """The SQL backend over a :class:`SparkRelation`; types named as Spark and GX name them."""

    def __init__(self, rel: SparkRelation) -> None:
        super().__init__(rel)
        self.spark_rel = rel

    def schema(self) -> dict[str, str]:
        if self._schema is None:
            schema, native = {}, {}
            for name, spark_type in self.spark_rel.columns():
                word = spark_type.split("(")[0].split("<")[0]
                canonical, gx_name = _TYPES.get(word, (word, spark_type))
                schema[name], native[name] = canonical, gx_name
            self._schema, self._native = schema, native
        return self._schema


class SparkBackend:
    """Claims pyspark DataFrames for ``headrace.quality``."""

    name = "spark"

    def open(self, data: Any) -> SparkSource | None:
        return SparkSource(SparkRelation(data)) if is_spark_frame(data) else None


_registered = False


def register() -> None:
    """Register the Spark backend once (importing this module does it)."""
    global _registered
    if not _registered:
        register_backend(SparkBackend())
        _registered = True


register()
