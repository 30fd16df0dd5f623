"""Quality results per run and per check, and the data profiles history checks learn from."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import insert, or_, select

from headrace.store.base import StoreBase, as_utc, utcnow
from headrace.store.retry import retried
from headrace.store.schema import quality_profiles, quality_results


def _json(value: Any) -> str:
    return json.dumps(value, default=str, separators=(",", ":"))


class QualityMixin(StoreBase):
    @retried
    def save_quality_results(self, *, suite: str, results: list[dict[str, Any]],
                             flow_run_id: str | None, task_run_id: str | None,
                             at: datetime | None = None) -> None:
        """Store one row per check; ``results`` are ``ExpectationResult.to_dict()`` documents."""
        at = at or utcnow()
        rows = [{
            "flow_run_id": flow_run_id, "task_run_id": task_run_id, "suite": suite,
            "check_name": r["name"][:300], "expectation_type": r["expectation_type"][:200],
            "success": bool(r["success"]),
            "element_count": r["result"].get("element_count"),
            "unexpected_count": r["result"].get("unexpected_count"),
            "unexpected_percent": r["result"].get("unexpected_percent"),
            "observed_value": _json(r["result"].get("observed_value")),
            "details": _json(r), "at": at} for r in results]
        if rows:
            with self.transaction() as conn:
                conn.execute(insert(quality_results), rows)

    @retried
    def save_quality_profile(self, *, suite: str, success: bool, profile: dict[str, Any],
                             flow_run_id: str | None, at: datetime | None = None) -> None:
        with self.transaction() as conn:
            conn.execute(insert(quality_profiles).values(
                flow_run_id=flow_run_id, suite=suite, success=success, profile=_json(profile),
                at=at or utcnow()))

    @retried
    def get_quality_results(self, run_id: str) -> list[dict[str, Any]]:
        """Every check stored for a flow run or task run (full id or a unique prefix), in order."""
        c = quality_results.c
        with self.read() as conn:
            query = select(quality_results).where(or_(c.flow_run_id == run_id, c.task_run_id == run_id))
            rows = conn.execute(query.order_by(c.id)).mappings().all()
            if not rows and 4 <= len(run_id) < 32:
                like = or_(c.flow_run_id.startswith(run_id), c.task_run_id.startswith(run_id))
                rows = conn.execute(select(quality_results).where(like).order_by(c.id)).mappings().all()
        return [_result_row(r) for r in rows]

    @retried
    def get_quality_profiles(self, run_id: str) -> list[dict[str, Any]]:
        c = quality_profiles.c
        with self.read() as conn:
            rows = conn.execute(select(quality_profiles).where(c.flow_run_id.startswith(run_id))
                                .order_by(c.id)).mappings().all()
        return [_profile_row(r) for r in rows]

    @retried
    def quality_history(self, suite: str, *, limit: int = 30, before: datetime | None = None,
                        exclude_run: str | None = None) -> list[dict[str, Any]]:
        """Profiles of the suite's last ``limit`` successful runs, oldest first."""
        c = quality_profiles.c
        query = select(quality_profiles).where(c.suite == suite, c.success.is_(True))
        if before is not None:
            query = query.where(c.at < before)
        if exclude_run is not None:
            query = query.where(or_(c.flow_run_id.is_(None), c.flow_run_id != exclude_run))
        with self.read() as conn:
            rows = conn.execute(query.order_by(c.at.desc(), c.id.desc()).limit(limit)).mappings().all()
        return [_profile_row(r) for r in reversed(rows)]


def _result_row(r: Any) -> dict[str, Any]:
    out = dict(r)
    out["at"] = as_utc(out["at"])
    out["observed_value"] = json.loads(out["observed_value"]) if out["observed_value"] else None
    out["details"] = json.loads(out["details"]) if out["details"] else {}
    return out


def _profile_row(r: Any) -> dict[str, Any]:
    out = dict(r)
    out["at"] = as_utc(out["at"])
    out["profile"] = json.loads(out["profile"])
    return out
