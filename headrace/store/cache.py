"""Task result cache entries and tag concurrency slots."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select

from headrace.store.base import StoreBase, as_utc, utcnow
from headrace.store.retry import retried
from headrace.store.schema import cache, concurrency_limits, concurrency_slots


class CacheMixin(StoreBase):
    @retried
    def get_cached(self, cache_key: str, now: datetime | None = None) -> str | None:
        """The result reference cached under ``cache_key`` unless it has expired."""
        now = now or utcnow()
        with self.read() as conn:
            row = conn.execute(select(cache.c.result, cache.c.expires_at)
                               .where(cache.c.cache_key == cache_key)).first()
        if row is None:
            return None
        expires = as_utc(row[1])
        if expires is not None and expires <= now:
            return None
        return str(row[0])

    @retried
    def put_cached(self, cache_key: str, task_name: str, result: str,
                   expires_at: datetime | None, now: datetime | None = None) -> None:
        ins = self.insert_stmt()
        values = {"cache_key": cache_key, "task_name": task_name, "result": result,
                  "created_at": now or utcnow(), "expires_at": expires_at}
        stmt = ins(cache).values(**values)
        stmt = stmt.on_conflict_do_update(index_elements=[cache.c.cache_key],
                                          set_={k: stmt.excluded[k] for k in values if k != "cache_key"})
        with self.transaction() as conn:
            conn.execute(stmt)


LIMITS_TTL = 2.0  # seconds a process trusts its copy of the tag limits


class ConcurrencyMixin(StoreBase):
    _limits_cache: tuple[float, dict[str, int]] | None = None

    def cached_concurrency_limits(self) -> dict[str, int]:
        """The tag limits, re-read at most every LIMITS_TTL seconds (checked once per flow run)."""
        cached = self._limits_cache
        if cached is None or time.monotonic() - cached[0] > LIMITS_TTL:
            cached = self._limits_cache = (time.monotonic(), self.concurrency_limits())
        return cached[1]

    @retried
    def set_concurrency_limit(self, tag: str, limit: int) -> None:
        self._limits_cache = None
        ins = self.insert_stmt()
        stmt = ins(concurrency_limits).values(tag=tag, limit=limit)
        stmt = stmt.on_conflict_do_update(index_elements=[concurrency_limits.c.tag],
                                          set_={"limit": stmt.excluded.limit})
        with self.transaction() as conn:
            conn.execute(stmt)

    @retried
    def delete_concurrency_limit(self, tag: str) -> None:
        self._limits_cache = None
        with self.transaction() as conn:
            conn.execute(delete(concurrency_limits).where(concurrency_limits.c.tag == tag))

    @retried
    def concurrency_limits(self) -> dict[str, int]:
        with self.read() as conn:
            return {r[0]: int(r[1]) for r in conn.execute(select(concurrency_limits))}

    @retried
    def concurrency_usage(self) -> dict[str, int]:
        query = select(concurrency_slots.c.tag, func.count()).group_by(concurrency_slots.c.tag)
        with self.read() as conn:
            return {r[0]: int(r[1]) for r in conn.execute(query)}

    @retried
    def try_acquire_slots(self, tags: list[str], holder: str, flow_run_id: str | None,
                          now: datetime | None = None) -> bool:
        """Take one slot of every limited tag in ``tags`` for ``holder``, all or none."""
        with self.transaction() as conn:
            if self.dialect == "postgresql":
                # Serialize slot accounting per tag across every process sharing the store.
                for tag in sorted(tags):
                    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"hr-slot:{tag}",))
            limits = {r[0]: int(r[1]) for r in conn.execute(
                select(concurrency_limits).where(concurrency_limits.c.tag.in_(tags)))}
            if not limits:
                return True
            query = (select(concurrency_slots.c.tag, func.count())
                     .where(concurrency_slots.c.tag.in_(list(limits))).group_by(concurrency_slots.c.tag))
            used = {str(r[0]): int(r[1]) for r in conn.execute(query)}
            if any(int(used.get(tag, 0)) >= limit for tag, limit in limits.items()):
                return False
            conn.execute(insert(concurrency_slots), [
                {"tag": tag, "holder": holder, "flow_run_id": flow_run_id, "acquired_at": now or utcnow()}
                for tag in limits])
            return True

    @retried
    def release_slots(self, holder: str) -> None:
        with self.transaction() as conn:
            conn.execute(delete(concurrency_slots).where(concurrency_slots.c.holder == holder))

    @retried
    def slot_holders(self, tag: str) -> list[dict[str, Any]]:
        with self.read() as conn:
            return [dict(r) for r in conn.execute(
                select(concurrency_slots).where(concurrency_slots.c.tag == tag)).mappings()]
