"""One vocabulary of column types across pandas, Polars, Arrow, DuckDB and PostgreSQL.

A column's *canonical* type (``int64``, ``float64``, ``string``, ``bool``, ``date``,
``timestamp``, ``timestamptz``, ``decimal``, ``binary``, ``null``...) drives every
check; the type names users write in ``expect_column_values_to_be_of_type`` are the
ones pandas/NumPy, Python, SQL and Spark know, matched case-insensitively.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import pyarrow as pa

INTS = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
FLOATS = ("float16", "float32", "float64")
NUMERIC = INTS + FLOATS + ("decimal",)
TEXT = ("string",)
TIMES = ("timestamp", "timestamptz")
# Every value is an object: pandas' "object" dtype names admit any column.
ANY = ("object", "object_", "o", "any")

_ALIAS_GROUPS: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
    (("int", "integer", "int_", "long", "integertype", "longtype", "number_int", "int64dtype"), INTS),
    (("bigint", "int8_sql"), ("int64",)), (("smallint", "shorttype", "int2"), ("int16",)),
    (("int4",), ("int32",)), (("tinyint", "bytetype"), ("int8",)),
    (("float", "floating", "float_", "double", "double_precision", "double precision", "float8",
      "doubletype", "floattype", "float64dtype", "real", "float4"), FLOATS),
    (("number", "numeric", "decimaltype"), NUMERIC), (("decimal",), ("decimal",)),
    (("str", "str_", "string", "unicode", "utf8", "large_string", "varchar", "nvarchar", "char",
      "character varying", "text", "stringtype", "string_types", "stringdtype", "bpchar"), TEXT),
    (("bool", "boolean", "bool_", "booleantype", "booleandtype", "bit"), ("bool",)),
    (("date", "date32", "datetype"), ("date",)),
    (("datetime64", "datetime64[ns]", "datetime64[us]", "datetime64[ms]", "datetime64[s]",
      "timestamp_ntz", "timestamp without time zone"), ("timestamp",)),
    (("datetimetzdtype", "datetimetzdtypetype", "datetime64[ns, utc]", "datetime64[us, utc]",
      "timestamptz", "timestamp_tz", "timestamp with time zone"), ("timestamptz",)),
    (("datetime", "timestamp", "timestamptype", "datetime_"), TIMES),
    (("binary", "bytes", "bytea", "blob", "binarytype"), ("binary",)),
    (("none", "null", "nulltype", "nonetype"), ("null",)),
]
ALIASES: dict[str, tuple[str, ...]] = {name: group for names, group in _ALIAS_GROUPS for name in names}


def arrow_type_name(t: pa.DataType) -> str:
    """The canonical name of an Arrow type."""
    if pa.types.is_dictionary(t):
        return arrow_type_name(t.value_type)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_floating(t):
        return {16: "float16", 32: "float32"}.get(t.bit_width, "float64")
    if pa.types.is_integer(t):
        return str(t)
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "timestamptz" if t.tz else "timestamp"
    if pa.types.is_decimal(t):
        return "decimal"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "binary"
    if pa.types.is_null(t):
        return "null"
    return str(t)


SQL_TYPES = {
    "bigint": "int64", "int8": "int64", "integer": "int32", "int": "int32", "int4": "int32",
    "smallint": "int16", "int2": "int16", "tinyint": "int8", "hugeint": "decimal",
    "ubigint": "uint64", "uinteger": "uint32", "usmallint": "uint16", "utinyint": "uint8",
    "double": "float64", "double precision": "float64", "float8": "float64",
    "float": "float32", "real": "float32", "float4": "float32",
    "varchar": "string", "text": "string", "character varying": "string", "character": "string",
    "bpchar": "string", "boolean": "bool", "bool": "bool", "date": "date", "blob": "binary",
    "bytea": "binary", "numeric": "decimal", "decimal": "decimal", '"null"': "null",
}


def sql_type_name(sql_type: str) -> str:
    """The canonical name of a DuckDB or PostgreSQL column type."""
    t = sql_type.lower().split("(")[0].strip()
    if t.startswith("timestamp"):
        return "timestamptz" if "with time zone" in t or t == "timestamptz" else "timestamp"
    return SQL_TYPES.get(t, t)


def wanted_types(names: Iterable[Any]) -> set[str]:
    """The canonical types a user's type names admit (``{"*"}`` for pandas' object)."""
    out: set[str] = set()
    for name in names:
        key = str(name).strip().lower()
        if key in ANY:
            out.add("*")
        out.update(ALIASES.get(key, (key,)))
    return out


def type_matches(observed: str | None, wanted: Iterable[Any]) -> bool:
    """Whether a canonical column type satisfies any of the user's type names."""
    if observed is None:
        return False
    want = wanted_types(wanted)
    return "*" in want or observed in want


def is_known_type_name(name: Any) -> bool:
    key = str(name).strip().lower()
    return key in ALIASES or key in ANY or key in SQL_TYPES or key in NUMERIC + ("string", "bool")


def value_type(value: Any) -> str:
    """The canonical type of one Python value (for pandas' object columns, judged per value)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dt.datetime):
        return "timestamptz" if value.tzinfo else "timestamp"
    if isinstance(value, dt.date):
        return "date"
    if isinstance(value, Decimal):
        return "decimal"
    if isinstance(value, bytes | bytearray):
        return "binary"
    return type(value).__name__


def is_numeric(t: str) -> bool:
    return t in NUMERIC


def is_string(t: str) -> bool:
    return t == "string"


def is_temporal(t: str) -> bool:
    return t in ("date",) + TIMES


def kind_of_type(col_type: str) -> str:
    """number, string, bool, date or the type itself: what a value compared with it must be."""
    if is_numeric(col_type):
        return "number"
    if is_temporal(col_type):
        return "date"
    return col_type


def as_time(col_type: str, value: Any) -> Any:
    """A value compared with a date or timestamp column (date text too) as that column's kind
    of value; None when it is no date. Naive times on a time-zone-aware column are UTC."""
    if isinstance(value, str):
        try:
            from dateutil import parser as du

            value = du.parse(value)
        except (ValueError, OverflowError):
            return None
    if isinstance(value, bool) or not isinstance(value, dt.date):
        return None
    if col_type == "date":
        return value.date() if isinstance(value, dt.datetime) else value
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if col_type == "timestamptz":
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return value if value.tzinfo is None else value.astimezone(dt.UTC).replace(tzinfo=None)
