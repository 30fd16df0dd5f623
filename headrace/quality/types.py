"""One vocabulary of column types across pandas, Polars, Arrow, DuckDB and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

INTS = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
FLOATS = ("float16", "float32", "float64")
NUMERIC = INTS + FLOATS + ("decimal",)

# What a user may write in be_of_type -> the canonical types it admits.
ALIASES: dict[str, tuple[str, ...]] = {
    "int": INTS, "integer": INTS, "int_": INTS, "bigint": ("int64",), "smallint": ("int16",),
    "float": FLOATS, "double": ("float64",), "real": ("float32",), "number": NUMERIC,
    "numeric": NUMERIC, "decimal": ("decimal",),
    "str": ("string",), "string": ("string",), "object": ("string",), "utf8": ("string",),
    "varchar": ("string",), "text": ("string",), "large_string": ("string",),
    "bool": ("bool",), "boolean": ("bool",), "bool_": ("bool",),
    "date": ("date",), "date32": ("date",), "datetime": ("timestamp",),
    "datetime64": ("timestamp",), "timestamp": ("timestamp",), "datetime64[ns]": ("timestamp",),
    "binary": ("binary",), "bytes": ("binary",),
}


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
        return "timestamp"
    if pa.types.is_decimal(t):
        return "decimal"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "binary"
    return str(t)


SQL_TYPES = {
    "bigint": "int64", "int8": "int64", "integer": "int32", "int": "int32", "int4": "int32",
    "smallint": "int16", "int2": "int16", "tinyint": "int8", "hugeint": "decimal",
    "ubigint": "uint64", "uinteger": "uint32", "usmallint": "uint16", "utinyint": "uint8",
    "double": "float64", "double precision": "float64", "float8": "float64",
    "float": "float32", "real": "float32", "float4": "float32",
    "varchar": "string", "text": "string", "character varying": "string", "character": "string",
    "bpchar": "string", "boolean": "bool", "bool": "bool", "date": "date", "blob": "binary",
    "bytea": "binary", "numeric": "decimal", "decimal": "decimal",
}


def sql_type_name(sql_type: str) -> str:
    """The canonical name of a DuckDB or PostgreSQL column type."""
    t = sql_type.lower().split("(")[0].strip()
    if t.startswith("timestamp"):
        return "timestamp"
    return SQL_TYPES.get(t, t)


def type_matches(observed: str | None, wanted: Iterable[str]) -> bool:
    """Whether a canonical column type satisfies any of the user's type names."""
    if observed is None:
        return False
    for w in wanted:
        key = str(w).lower()
        if key == observed or observed in ALIASES.get(key, ()):
            return True
    return False


def is_numeric(t: str) -> bool:
    return t in NUMERIC


def is_string(t: str) -> bool:
    return t == "string"
