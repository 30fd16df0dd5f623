"""The load ledger, one for every SQL backend: a load key is claimed inside the load's transaction.

``headrace_load_ledger`` (in the target table's schema) holds one row per load that committed.
A load's first statement claims its key (``INSERT ... ON CONFLICT DO NOTHING``): if the key is
there, the load was done before and nothing is written; if another transaction holds the same
key uncommitted, the database makes this one wait for it. The row commits with the data or
not at all, so a key can only ever have landed once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from headrace.io._target import WriteSpec, compose

LEDGER_TABLE = "headrace_load_ledger"

_CREATE = ("CREATE TABLE IF NOT EXISTS {ledger} ({key} VARCHAR(500) PRIMARY KEY, "
           "{table} VARCHAR(500) NOT NULL, {mode} VARCHAR(40) NOT NULL, {rows} BIGINT NOT NULL, "
           "{at} {timestamp} NOT NULL)")
_CLAIM = ("INSERT INTO {ledger} ({key}, {table}, {mode}, {rows}, {at}) "
          "VALUES (:key, :table, :mode, :rows, CURRENT_TIMESTAMP)")
_ON_CONFLICT = " ON CONFLICT ({key}) DO NOTHING RETURNING {key}"
_PRIOR = "SELECT {rows} FROM {ledger} WHERE {key} = :key"

Fetch = Callable[[str, dict[str, Any]], list[Any]]


def _double_quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Ledger:
    """The ledger of one database, run through ``fetch(sql, params) -> rows`` (``:name`` params).

    ``upsert``: the database knows ``ON CONFLICT DO NOTHING RETURNING`` (PostgreSQL, DuckDB,
    SQLite); otherwise a second claim fails on the primary key and the caller calls
    ``prior`` after rolling back. ``quote`` quotes one identifier the database's way.
    """

    fetch: Fetch
    schema: str | None
    timestamp: str = "TIMESTAMP"
    upsert: bool = True
    quote: Callable[[str], str] = _double_quote

    def _sql(self, template: str) -> str:
        q = self.quote
        ledger = q(LEDGER_TABLE) if not self.schema else f"{q(self.schema)}.{q(LEDGER_TABLE)}"
        return compose(template, ledger=ledger, key=q("load_key"), table=q("table_name"),
                       mode=q("mode"), rows=q("rows"), at=q("loaded_at"), timestamp=self.timestamp)

    def create_sql(self) -> str:
        return self._sql(_CREATE)

    def ensure(self) -> None:
        self.fetch(self.create_sql(), {})

    def claim(self, spec: WriteSpec, rows: int) -> int | None:
        """Claim ``spec.load_key`` for ``rows`` rows: ``None`` if this load is to be done, else
        the row count of the load that was done before."""
        params = {"key": spec.load_key, "table": spec.name, "mode": spec.mode, "rows": rows}
        if not self.upsert:
            self.fetch(self._sql(_CLAIM), params)
            return None
        if self.fetch(self._sql(_CLAIM + _ON_CONFLICT), params):
            return None
        return self.prior(spec)

    def prior(self, spec: WriteSpec) -> int | None:
        """The rows of the committed load under ``spec.load_key``, if there is one."""
        found = self.fetch(self._sql(_PRIOR), {"key": spec.load_key})
        return int(found[0][0]) if found else None
