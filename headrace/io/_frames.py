"""Frames in and out: pandas, Polars and Arrow all become one Arrow table inside io.

Also the column type *families* that decide whether a frame fits a table.
"""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from headrace.errors import DataIOError, SchemaMismatch

FORMATS = ("pandas", "arrow", "polars")


def to_arrow(df: Any, what: str) -> pa.Table:
    """Return ``df`` (pandas, Polars, Arrow table or batch) as an Arrow table with plain types."""
    if isinstance(df, pa.RecordBatch):
        df = pa.Table.from_batches([df])
    if not isinstance(df, pa.Table):
        df = _foreign_to_arrow(df, what)
    return _plain(df)


def _foreign_to_arrow(df: Any, what: str) -> pa.Table:
    module = type(df).__module__
    if module.startswith("polars"):
        return df.to_arrow()  # type: ignore[no-any-return]
    if module.startswith("pandas"):
        # A named index is data (an order_id set as index); a plain row number is not.
        named = any(n is not None for n in df.index.names)
        try:
            return pa.Table.from_pandas(df, preserve_index=named)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise SchemaMismatch(f"{what}: a column of the frame has mixed types ({exc}); "
                                 "give it one type before writing") from None
    raise DataIOError(f"{what}: expected a pandas, Polars or Arrow frame, got {type(df).__name__}")


def _plain(table: pa.Table) -> pa.Table:
    """Decode dictionaries and view types, which some drivers cannot ingest."""
    fields = []
    changed = False
    for field in table.schema:
        t = field.type
        if pa.types.is_dictionary(t):
            t = t.value_type
        if pa.types.is_string_view(t):
            t = pa.large_string()
        elif pa.types.is_binary_view(t):
            t = pa.large_binary()
        changed |= t != field.type
        fields.append(pa.field(field.name, t))
    return table.cast(pa.schema(fields)) if changed else table


def from_arrow(table: pa.Table, as_: str) -> Any:
    """Convert an Arrow table to the frame type the caller asked for."""
    if as_ == "arrow":
        return table
    if as_ == "pandas":
        return table.to_pandas()
    if as_ == "polars":
        import polars as pl

        return pl.from_arrow(table)
    raise DataIOError(f"as_ must be one of {', '.join(FORMATS)}, not {as_!r}")


def check_format(as_: str) -> None:
    if as_ not in FORMATS:
        raise DataIOError(f"as_ must be one of {', '.join(FORMATS)}, not {as_!r}")


def arrow_family(t: pa.DataType) -> str:
    """The family of an Arrow type: int, float, decimal, str, bool, timestamp, date, ..."""
    checks = [(pa.types.is_null, "null"), (pa.types.is_integer, "int"),
              (pa.types.is_floating, "float"), (pa.types.is_decimal, "decimal"),
              (lambda x: pa.types.is_string(x) or pa.types.is_large_string(x), "str"),
              (pa.types.is_boolean, "bool"), (pa.types.is_timestamp, "timestamp"),
              (pa.types.is_date, "date"), (pa.types.is_time, "time"),
              (lambda x: pa.types.is_binary(x) or pa.types.is_large_binary(x), "binary")]
    for check, family in checks:
        if check(t):
            return family
    return "other"


_SQL_FAMILIES = [
    (r"interval.*|point|.*\[\]|array.*", "other"),
    (r"timestamp.*|datetime.*", "timestamp"),
    (r"date", "date"),
    (r"time.*", "time"),
    (r"u?(big|small|tiny|huge|medium)?int(eger)?\d*|(big|small)?serial", "int"),
    (r"double.*|float\d*|real", "float"),
    (r"numeric.*|decimal.*|number.*", "decimal"),
    (r".*char.*|text|string|clob|name|citext", "str"),
    # Typed text: the frame's strings are cast by the database (and refused if they don't parse).
    (r"jsonb?|uuid|xml|inet|cidr|macaddr", "str"),
    (r"bool(ean)?", "bool"),
    (r"bytea|blob|.*binary.*", "binary"),
]


def sql_family(type_name: str) -> str:
    """The family of a SQL type name as PostgreSQL, DuckDB or SQLite print it."""
    base = re.sub(r"\(.*\)", "", type_name.strip().lower()).strip()
    for pattern, family in _SQL_FAMILIES:
        if re.fullmatch(pattern, base):
            return family
    return "other"


_NUMERIC = {"int", "float", "decimal"}


def fits(frame_family: str, column_family: str) -> bool:
    """Whether values of ``frame_family`` can be stored in a column of ``column_family``."""
    if frame_family in ("null", column_family):
        return True
    if frame_family in _NUMERIC and column_family in _NUMERIC:
        return column_family != "int"  # a float or decimal never silently truncates into int
    return False


def sql_type(field: pa.Field, what: str) -> str:
    """The column type (PostgreSQL/DuckDB spelling) for a new column holding ``field``."""
    t = field.type
    if pa.types.is_timestamp(t):
        return "timestamptz" if t.tz else "timestamp"
    if pa.types.is_decimal(t):
        return f"numeric({t.precision},{t.scale})"
    if pa.types.is_integer(t):
        return {1: "smallint", 2: "smallint", 4: "integer"}.get(t.byte_width, "bigint")
    if pa.types.is_floating(t):
        return "real" if t.bit_width <= 32 else "double precision"
    names = {"str": "text", "bool": "boolean", "date": "date", "time": "time",
             "binary": "bytea", "null": "text"}
    family = arrow_family(t)
    if family not in names:
        raise SchemaMismatch(f"{what}: column {field.name!r} has type {t}, which headrace "
                             "cannot store in a table; convert it first")
    return names[family]


def create_table_sql(data: pa.Table, spec: Any, primary_key: bool = False) -> str:
    """``CREATE TABLE`` for the frame's columns (PostgreSQL/DuckDB types), quoted identifiers."""
    from headrace.io._target import compose, quote

    what = f"table {spec.name}"
    cols = [f"{quote(f.name)} {sql_type(f, what)}" for f in data.schema]
    if primary_key:
        cols.append(f"PRIMARY KEY ({', '.join(quote(k) for k in spec.keys)})")
    return compose("CREATE TABLE {table} ({columns})", table=spec.qualified,
                   columns=", ".join(cols))


def add_column_sql(data: pa.Table, columns: dict[str, str], spec: Any) -> list[tuple[pa.Field, str]]:
    """``ALTER TABLE ... ADD COLUMN`` for each frame column the table lacks (checked first)."""
    from headrace.io._target import compose, quote

    what = f"table {spec.name}"
    return [(f, compose("ALTER TABLE {table} ADD COLUMN {column} {type}", table=spec.qualified,
                        column=quote(f.name), type=sql_type(f, what)))
            for f in new_columns(data, columns, what)]


# Where a binary float column's exact integers end: 2**24 (4 bytes), 2**53 (8 bytes).
_FLOAT32 = {"postgresql": ("real", "float4"), "duckdb": ("float", "real", "float4")}


def check_exact(data: pa.Table, columns: dict[str, str], dialect: str, what: str) -> None:
    """Refuse integers that a float column of the table cannot hold exactly, naming the column.

    A DOUBLE holds every integer up to 2**53 and a REAL/FLOAT4 up to 2**24; beyond that the
    database would store a neighbour of the value without a word (PostgreSQL refuses it too).
    """
    for field in data.schema:
        col_type = columns.get(field.name)
        if col_type is None or not pa.types.is_integer(field.type) or sql_family(col_type) != "float":
            continue
        small = col_type.strip().lower() in _FLOAT32.get(dialect, ())
        limit = 2 ** 24 if small else 2 ** 53
        low, high = (v.as_py() for v in pc.min_max(data.column(field.name)).values())
        if low is None or (-limit <= low and high <= limit):
            continue
        value = high if high > limit else low
        raise SchemaMismatch(f"{what}: column {field.name!r} is {col_type} in the table, which "
                             f"cannot hold the integer {value} exactly (beyond 2**"
                             f"{24 if small else 53}); store it in a bigint or numeric column")


def check_keys(table: pa.Table, keys: list[str], what: str) -> None:
    """Refuse key columns that are missing, null or duplicated within one frame."""
    missing = [k for k in keys if k not in table.column_names]
    if missing:
        raise SchemaMismatch(f"{what}: merge key column {missing[0]!r} is not in the frame "
                             f"(columns: {', '.join(table.column_names)})")
    for k in keys:
        if table.column(k).null_count:
            raise DataIOError(f"{what}: merge key column {k!r} has {table.column(k).null_count} "
                              "null values; every row needs a key")
    groups = table.select(keys).group_by(keys).aggregate([([], "count_all")])
    if groups.num_rows == table.num_rows:
        return
    dups = groups.filter(pc.greater(groups.column("count_all"), 1))
    sample = dups.slice(0, 3).select(keys).to_pylist()
    raise DataIOError(f"{what}: {dups.num_rows} duplicate values of merge key "
                      f"{', '.join(keys)} in the frame, e.g. {sample}; a merge needs unique keys")


def new_columns(table: pa.Table, existing: dict[str, str], what: str) -> list[pa.Field]:
    """The frame's columns the table lacks; raise if a shared column's type conflicts.

    ``existing`` maps the table's column names to their SQL type names.
    """
    lowered = {name.lower(): name for name in existing}
    added = []
    for field in table.schema:
        col = existing.get(field.name)
        if col is None and field.name.lower() in lowered:
            raise SchemaMismatch(f"{what}: frame column {field.name!r} differs only in case from "
                                 f"table column {lowered[field.name.lower()]!r}; rename one")
        if col is None:
            added.append(field)
        elif not fits(arrow_family(field.type), sql_family(col)):
            raise SchemaMismatch(
                f"{what}: column {field.name!r} is {col} in the table but {field.type} in the "
                "frame; headrace does not change column types - cast the frame's column or "
                "migrate the table")
    return added


def check_columns(table: pa.Table, columns: tuple[str, ...], role: str, what: str) -> None:
    for col in columns:
        if col not in table.column_names:
            raise SchemaMismatch(f"{what}: {role} column {col!r} is not in the frame "
                                 f"(columns: {', '.join(table.column_names)})")
