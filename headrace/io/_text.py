"""Parsing NDJSON and CSV without losing a line: good rows to Arrow, bad lines to quarantine.

Every value obeys the record contract (``headrace.io.contract``). NDJSON, fast path
(``parse_ndjson_file``): DuckDB's ``read_json`` - it refuses unknown keys and malformed lines;
as it casts values beyond its type-detection sample silently, ``_verify`` reads the fields once
more as JSON text and checks each value's kind, else the exact path decides. When it refuses, ``_aligned``
parses the file once more with ``ignore_errors`` (a bad line becomes a row of NULLs) while a
vectorised pass over the lines lists the bad ones and checks each good line's field kinds
(``_kind_test``, so no third read); it gives up whenever ``ignore_errors`` might have thrown a
value away or cast one. Then the bad lines are blanked in a copy, which strict ``read_json``
reads. If that still fails (values of conflicting types, invalid UTF-8), the exact path
(``parse_ndjson``) applies the contract line by line in Python. Either way ``read == returned
+ quarantined``.
"""

from __future__ import annotations

import io
import logging
import math
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from headrace.errors import DataFileError
from headrace.io import contract
from headrace.io._target import compose, quote

log = logging.getLogger("headrace.io")


@dataclass
class Parsed:
    """One file's outcome: the good rows and the quarantined lines (line, raw text, reason)."""

    table: pa.Table
    bad: list[tuple[int, str, str]] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return self.table.num_rows + len(self.bad)


_LINES = ("read_csv($1, columns={'line': 'VARCHAR'}, delim=chr(31), quote='', escape='', "
          "header=false, auto_detect=false, new_line='\\n')")
_IS_OBJECT = "coalesce(json_valid(line) AND starts_with(ltrim(line), '{'), false)"


class _Misread(Exception):
    """The fast path could not account for every line; use the exact path."""


def parse_ndjson_file(local_path: str, name: str) -> Parsed:
    """Parse a local NDJSON file, quarantining bad lines (see the module docstring)."""
    import duckdb

    con = duckdb.connect()
    try:
        try:
            return Parsed(_strict_json(con, local_path))
        except _Misread:
            exact = True
        except duckdb.Error:
            exact = False  # some line is bad: find out which
        if not exact:
            try:
                return _aligned(con, local_path)
            except (duckdb.Error, _Misread):
                pass
        with open(local_path, "rb") as f:
            data = f.read()
        if exact:
            return parse_ndjson(data, name)
        try:
            return _blank_and_read(con, data, local_path)
        except (duckdb.Error, _Misread):
            return parse_ndjson(data, name)
    finally:
        con.close()


# Strings stay strings: a format no value matches keeps DuckDB from reading them as dates.
_READ = ("read_json($1, format='newline_delimited', records=true, dateformat='%d~%m~%Y', "
         "timestampformat='%d~%m~%Y %H'{more})")


def parse_ndjson_bytes(data: bytes, name: str) -> Parsed:
    """``parse_ndjson_file`` for bytes in memory (a decompressed file, say)."""
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    with tempfile.NamedTemporaryFile(suffix=".ndjson", dir=shm) as tmp:
        tmp.write(data)
        tmp.flush()
        return parse_ndjson_file(tmp.name, name)


def _strict_json(con: Any, path: str) -> pa.Table:
    rel = con.sql("SELECT * FROM " + _READ.format(more=""), params=[path])
    if any("JSON" in str(t) for t in rel.types) or not rel.types:
        # DuckDB keeps a field of mixed types as raw JSON text; we quarantine the odd lines.
        raise _Misread(path)
    table = _as_int64(rel.to_arrow_table(), rel.types)
    if table.num_rows and pc.any(_all_null(table)).as_py():
        raise _Misread(path)  # a bare null line reads as a row of NULLs: the exact path tells
    _verify(con, path, rel.types, table, ignore_errors=False)
    return table


def _as_int64(table: pa.Table, types: list[Any]) -> pa.Table:
    """DuckDB's wider integer types (a field with both 0 and -1 can read as HUGEINT) as int64;
    ``_Misread`` if a value does not fit (the exact path quarantines it)."""
    for i, typ in enumerate(types):
        if str(typ) in ("HUGEINT", "UBIGINT", "UHUGEINT"):
            try:
                table = table.set_column(i, table.field(i).name, table.column(i).cast(pa.int64()))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise _Misread(f"field {table.field(i).name}") from None
    return table


def _all_null(table: pa.Table) -> Any:
    """Per row: is every value NULL."""
    empty = pc.is_null(table.column(0))
    for col in table.columns[1:]:
        empty = pc.and_(empty, pc.is_null(col))
    return empty


_KINDS = {"BIGINT": "integer", "UBIGINT": "integer", "INTEGER": "integer", "HUGEINT": "integer",
          "DOUBLE": "float", "VARCHAR": "string", "BOOLEAN": "boolean"}


def _verify(con: Any, path: str, types: list[Any], table: pa.Table, ignore_errors: bool) -> None:
    """``_Misread`` unless every value kept its JSON kind (see ``headrace.io.contract``).

    DuckDB types a field from a sample of the lines and casts the rest: a later "42" or
    true becomes an integer, 19.99 in an integer column becomes 20. So the file is read once
    more with each field as JSON text, and the kinds are counted; and a float column must not
    hold an integer that a float64 rounded (beyond 2**53) or an infinity.
    """
    for name, col in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_floating(col.type) and col.length() > col.null_count:
            top = pc.max(pc.abs(col)).as_py()
            if top is None or not math.isfinite(top) or top >= contract.EXACT_FLOAT_INT:
                raise _Misread(f"{path}: field {name}")
    checks = []
    for name, typ in zip(table.column_names, types, strict=True):
        pred = contract.sql_violation(quote(name), _KINDS.get(str(typ), "nested"))
        if pred is not None:
            checks.append(f"count(*) FILTER (WHERE {pred})")
    if not checks:
        return
    more = ", ignore_errors=true" if ignore_errors else ""
    columns = {name: "JSON" for name in table.column_names}
    sql = compose("SELECT {checks} FROM {source}", checks=" + ".join(checks),
                  source=_READ.format(more=more + ", columns=$2"))
    if con.sql(sql, params=[path, columns]).fetchall()[0][0]:
        raise _Misread(path)  # some value would have been cast: the exact path settles it


def _aligned(con: Any, path: str) -> Parsed:
    """One parse of the file as it is; about twice as fast as parsing a copy with bad lines blanked.

    ``read_json`` with ``ignore_errors`` gives one row per non-blank line, a bad line becoming
    a row of NULLs; a vectorised pass over the lines returns the bad ones, in file order, so the
    k-th bad line is the k-th all-NULL row. But ``ignore_errors`` also nulls a value of the
    wrong type and drops an unknown key without a word: a good line with more keys than there
    are columns, or a NULL anywhere in the good rows, sends the file to the strict paths.
    A blank line does too (its position is unknown here).
    """
    rel = con.sql("SELECT * FROM " + _READ.format(more=", ignore_errors=true"), params=[path])
    if any("JSON" in str(t) for t in rel.types) or not rel.types:
        raise _Misread(path)
    # Both passes keep every core busy: running them side by side measured no faster.
    table = _as_int64(rel.to_arrow_table(), rel.types)
    kinds = _kind_test(table.column_names, rel.types)
    odd = _odd_lines(con, path, table.num_columns, kinds)
    empty = _all_null(table)
    at = pc.indices_nonzero(empty).to_pylist()
    if len(at) != len(odd):
        raise _Misread(path)  # a good line that read as NULLs
    good = table.filter(pc.invert(empty))
    if any(col.null_count for col in good.columns):
        raise _Misread(path)  # a NULL may be a value ignore_errors threw away
    if kinds is None:
        _verify(con, path, rel.types, good, ignore_errors=True)
    else:  # _odd_lines checked every good line's kinds: only the float checks are left
        _check_floats(path, good)
    return Parsed(good, [(i + 1, line, reason) for i, (line, reason) in zip(at, odd, strict=True)])


# The JSON types (DuckDB's json_type) a value may have in a column of each type unchanged;
# NaN and Infinity are DOUBLE there too, and _check_floats refuses them.
_TYPES_OK = {"BIGINT": "('UBIGINT', 'BIGINT')", "UBIGINT": "('UBIGINT', 'BIGINT')",
             "INTEGER": "('UBIGINT', 'BIGINT')", "HUGEINT": "('UBIGINT', 'BIGINT')",
             "DOUBLE": "('DOUBLE', 'UBIGINT', 'BIGINT')", "VARCHAR": "('VARCHAR')",
             "BOOLEAN": "('BOOLEAN')"}


def _kind_test(names: list[str], types: list[Any]) -> tuple[str, str] | None:
    """``(types, test)``: SQL giving a valid object ``line``'s JSON type per column (one parse
    for every field: json_type with a list of paths) and a predicate on it, ``__types``: some
    field is missing or not of its column's kind. ``None`` when a column type or name is not
    covered here (``_verify`` checks those files)."""
    if any(str(t) not in _TYPES_OK or '"' in n or "\\" in n for n, t in zip(names, types,
                                                                            strict=True)):
        return None
    paths = ", ".join("'" + ('$."' + n + '"').replace("'", "''") + "'" for n in names)
    tests = [f"coalesce(list_extract(__types, {i + 1}) NOT IN {_TYPES_OK[str(t)]}, true)"
             for i, t in enumerate(types)]
    return f"json_type(line, [{paths}])", " OR ".join(tests)


def _check_floats(path: str, table: pa.Table) -> None:
    """``_Misread`` if a float column holds NaN, an infinity or an integer a float64 may have
    rounded (beyond 2**53)."""
    for name, col in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_floating(col.type) and col.length() > col.null_count:
            top = pc.max(pc.abs(col)).as_py()
            if top is None or not math.isfinite(top) or top >= contract.EXACT_FLOAT_INT or \
                    pc.any(pc.is_nan(col)).as_py():
                raise _Misread(f"{path}: field {name}")


def _odd_lines(con: Any, path: str, columns: int, kinds: tuple[str, str] | None = None
               ) -> list[tuple[str, str]]:
    """The bad lines in file order, each with its reason; _Misread if a line is blank or a
    good line has more keys than there are ``columns`` or, with ``kinds`` (``_kind_test``), a
    field missing or of another kind.

    The reason comes from DuckDB (json.loads on each bad line would cost as much as the rest).
    """
    types, test = kinds or ("NULL", "false")
    sql = compose("SELECT line, __ok, {reason} FROM (SELECT line, __ok, CASE WHEN __ok THEN "
                  "len(json_keys(line)) END AS __keys, CASE WHEN __ok THEN {types} END AS "
                  "__types FROM (SELECT line, {ok} AS __ok FROM {lines})) WHERE NOT __ok OR "
                  "__keys > $2 OR ({test})", ok=_IS_OBJECT, reason=_REASON, lines=_LINES,
                  types=types, test=test)
    rows = con.sql(sql, params=[path, columns]).fetchall()
    if any(ok or not (line or "").strip(" \t\r") for line, ok, _ in rows):
        raise _Misread(path)
    return [(line, reason) for line, _, reason in rows]


_REASON = ("CASE WHEN NOT coalesce(json_valid(line), false) THEN 'invalid JSON: not one "
           "complete JSON value' ELSE 'not a JSON object but ' || lower(json_type(line)) END")


def _blank_and_read(con: Any, data: bytes, path: str) -> Parsed:
    # File order is kept (DuckDB preserves insertion order); _line_start checks it anyway.
    sql = compose("SELECT line FROM {lines} WHERE NOT {ok}", lines=_LINES, ok=_IS_OBJECT)
    rows = con.sql(sql, params=[path]).fetchall()
    cleaned = bytearray(data)
    bad: list[tuple[int, str, str]] = []
    search = counted = blanks = 0
    lineno = 1
    for (line,) in rows:
        if not (line or "").strip(" \t\r"):
            blanks += 1
            continue
        raw = line.encode()
        at = _line_start(data, raw, search)
        lineno += data.count(b"\n", counted, at)
        cleaned[at:at + len(raw)] = b" " * len(raw)  # a blank line is skipped by read_json
        bad.append((lineno, line, _line_reason(line)))
        search = counted = at
        search += len(raw)
    total = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    # A RAM-backed folder when there is one: this copy is read once, right away.
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    with tempfile.NamedTemporaryFile(suffix=".ndjson", dir=shm) as tmp:
        tmp.write(cleaned)
        tmp.flush()
        table = _strict_json(con, tmp.name)
    if table.num_rows + len(bad) + blanks != total:
        raise _Misread(path)
    return Parsed(table, bad)


def _line_reason(line: str) -> str:
    try:
        contract.parse_line(line)
    except contract.RecordError as exc:
        return str(exc)
    return "not one JSON object"


def _line_start(data: bytes, raw: bytes, pos: int) -> int:
    """Where the next whole line equal to ``raw`` starts, searching forward from ``pos``."""
    while True:
        at = data.find(raw, pos)
        if at < 0:
            raise _Misread("line not found")
        end = at + len(raw)
        if (at == 0 or data[at - 1] == 10) and (end == len(data) or data[end] in (10, 13)):
            return at
        pos = at + 1


def parse_ndjson(data: bytes, name: str) -> Parsed:
    """The exact path: every line through the record contract (``headrace.io.contract``)."""
    numbered = []
    for i, raw in enumerate(data.split(b"\n")):
        raw = raw.rstrip(b"\r")
        if raw.strip(b" \t"):
            numbered.append((i + 1, raw))
    try:
        table, bad = contract.split(numbered)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataFileError(f"cannot read NDJSON file {name}: {exc}") from None
    return Parsed(table, bad)


def parse_csv(data: bytes, name: str) -> Parsed:
    """CSV with a header; rows with the wrong number of fields are quarantined, and so is a line
    whose quote never closes (it would swallow the valid rows after it)."""
    parsed = _parse_csv(data, name)
    if not _spans_lines(parsed.table):
        return parsed
    broken = _unterminated_quotes(data.decode("utf-8", errors="replace"))
    if not broken:
        return parsed
    lines = data.split(b"\n")
    raw = {}
    for i in broken:
        raw[i], lines[i] = lines[i], b""  # a blank line is skipped; the numbering stays
    parsed = _parse_csv(b"\n".join(lines), name)
    parsed.bad.extend((i + 1, raw[i].decode("utf-8", errors="backslashreplace"),
                       "unterminated quoted field: its quote does not close at the end of a "
                       "field, so it would swallow the lines after it") for i in broken)
    parsed.bad.sort()
    return parsed


def _spans_lines(table: pa.Table) -> bool:
    """Whether a text value holds a line break (a quoted value that spans lines)."""
    for col in table.columns:
        if (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)) and \
                pc.any(pc.match_substring(col, "\n")).as_py():
            return True
    return False


def _unterminated_quotes(text: str) -> list[int]:
    """The physical lines (0-based) where a record with a quote that never properly closes starts.

    Python's csv reader in strict mode refuses such a record; parsing starts again on the next
    line, so each valid row after it is read as itself.
    """
    import csv

    lines = text.split("\n")
    bad: list[int] = []
    start = 1  # after the header
    while start < len(lines):
        reader = csv.reader(io.StringIO("\n".join(lines[start:])), strict=True)
        record_start = start
        try:
            for _ in reader:
                record_start = start + reader.line_num
            return bad
        except csv.Error:
            bad.append(record_start)
            start = record_start + 1
    return bad


def _parse_csv(data: bytes, name: str) -> Parsed:
    import pyarrow.csv as pcsv

    bad: list[tuple[int, str, str]] = []

    def invalid(row: Any) -> str:
        bad.append((row.number or 0, row.text,
                    f"expected {row.expected_columns} fields, found {row.actual_columns}"))
        return "skip"

    # Single-threaded so that every bad row knows its line number.
    read = pcsv.ReadOptions(use_threads=False)
    parse = pcsv.ParseOptions(invalid_row_handler=invalid, newlines_in_values=True)
    try:
        table = pcsv.read_csv(io.BytesIO(data), read_options=read, parse_options=parse)
    except pa.ArrowInvalid as exc:
        if "conversion error" not in str(exc).lower():
            raise DataFileError(f"cannot read CSV file {name}: {exc}") from None
        # A column mixes numbers and text: keep every value, as text, and say so.
        log.warning("CSV file %s: a column mixes numbers and text (%s); every column is read "
                    "as text", name, str(exc).splitlines()[0])
        bad.clear()
        table = pcsv.read_csv(io.BytesIO(data), read_options=read, parse_options=parse,
                              convert_options=_all_text(data))
    return Parsed(table, bad)


def _all_text(data: bytes) -> Any:
    import csv

    import pyarrow.csv as pcsv

    first = data.split(b"\n", 1)[0].decode("utf-8", errors="replace").rstrip("\r")
    names = next(iter(csv.reader([first])), [])
    return pcsv.ConvertOptions(column_types={c: pa.large_string() for c in names})
