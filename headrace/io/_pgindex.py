"""Dropping a table's indexes around a big load and building them again, in the load's transaction.

PostgreSQL maintains an index row by row during COPY (about 1.3 s per million rows of a bigint
primary key here); building it afresh after the COPY is one sort (about 0.45 s for a million
rows). So a merge whose frame is large next to its table drops the indexes, deletes and COPYs,
then rebuilds them under the same names. Nothing is committed in between, so readers either
see the old table with its indexes or the new one with its indexes; they wait for the lock
meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from headrace.io._target import WriteSpec, quote

# Rebuild when the table holds at most this many rows per frame row: a rebuild sorts
# table + frame rows, row-by-row maintenance costs about 3x a sorted row, per frame row.
REBUILD_RATIO = 2.0
# Below this the gain is milliseconds, not worth keeping readers waiting on the lock.
MIN_FRAME_ROWS = 50_000


@dataclass(frozen=True)
class Index:
    """One index: how to drop it and how to build it again."""

    drop: str
    create: str


def rebuildable(cur: Any, spec: WriteSpec, frame_rows: int) -> bool:
    """Whether dropping and rebuilding ``spec``'s indexes should beat maintaining them.

    Only for a plain table whose indexes can be rebuilt exactly from their definitions: none
    is a replica identity or cluster index, in its own tablespace or commented, and no foreign
    key points at the table (the caller checks that).
    """
    if frame_rows < MIN_FRAME_ROWS:
        return False
    cur.execute("SELECT c.relkind::text, c.reltuples::float8, "
                "(SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid), "
                "(SELECT count(*) FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
                " WHERE i.indrelid = c.oid AND (i.indisreplident OR i.indisclustered OR "
                " NOT i.indisvalid OR ic.reltablespace <> 0 "
                " OR obj_description(i.indexrelid, 'pg_class') IS NOT NULL)) "
                "FROM pg_class c WHERE c.oid = to_regclass($1)", (spec.qualified,))
    row = cur.fetchone()
    if row is None:
        return False
    kind, tuples, indexes, special = str(row[0]), float(row[1]), int(row[2]), int(row[3])
    return kind == "r" and indexes > 0 and not special and tuples <= REBUILD_RATIO * frame_rows


def drop_all(cur: Any, spec: WriteSpec) -> list[Index]:
    """Drop every index of the table (constraints through ALTER TABLE); return how to rebuild."""
    cur.execute("SELECT n.nspname::text, ic.relname::text, pg_get_indexdef(i.indexrelid), "
                "con.conname::text, pg_get_constraintdef(con.oid) "
                "FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
                "JOIN pg_namespace n ON n.oid = ic.relnamespace "
                "LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid "
                "AND con.conrelid = i.indrelid "
                "WHERE i.indrelid = to_regclass($1) ORDER BY ic.relname", (spec.qualified,))
    found = []
    for nsp, name, indexdef, conname, condef in cur.fetchall():
        if conname is not None:
            alter = f"ALTER TABLE {spec.qualified}"
            found.append(Index(f"{alter} DROP CONSTRAINT {quote(conname)}",
                               f"{alter} ADD CONSTRAINT {quote(conname)} {condef}"))
        else:
            found.append(Index(f"DROP INDEX {quote(nsp)}.{quote(name)}", str(indexdef)))
    for index in found:
        cur.execute(index.drop)
    return found


def rebuild(cur: Any, indexes: list[Index]) -> None:
    """Build the dropped indexes again; a duplicate key fails the whole load."""
    for index in indexes:
        cur.execute(index.create)
