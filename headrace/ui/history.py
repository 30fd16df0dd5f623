"""Series over time for the flow, quality and lake pages (computed from bounded reads)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from headrace.store import views_data
from headrace.ui.data import check_view
from headrace.ui.render import iso, seconds_between

LAKE_METRICS = ("lake_files_read", "lake_bytes_read", "lake_rows_read", "lake_backlog_bytes", "lake_good_rows",
                "lake_bad_rows", "lake_bad_bytes", "lake_bytes_written")


def flow_stats(store: Any, flow_name: str, limit: int = 500) -> dict[str, Any]:
    """Per run: duration, rows and state; per day: runs and success rate (the last ``limit`` runs)."""
    runs = views_data.flow_history(store, flow_name, limit)
    points = []
    days: OrderedDict[str, dict[str, int]] = OrderedDict()
    for r in runs:
        points.append({"id": r["id"], "name": r["name"], "at": iso(r["started_at"] or r["created_at"]),
                       "state": r["state_name"], "type": r["state_type"],
                       "seconds": seconds_between(r["started_at"], r["ended_at"]) if r["ended_at"] else None,
                       "rows_in": r["rows_in"], "rows_out": r["rows_out"], "rows_loaded": r["rows_loaded"]})
        if r["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            day = days.setdefault((r["started_at"] or r["created_at"]).date().isoformat(), {"runs": 0, "ok": 0})
            day["runs"] += 1
            day["ok"] += r["state_type"] == "COMPLETED"
    daily = [{"day": d, "runs": v["runs"], "success_rate": v["ok"] / v["runs"]} for d, v in days.items()]
    finished = [p for p in points if p["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")]
    ok = sum(1 for p in finished if p["type"] == "COMPLETED")
    return {"flow": flow_name, "runs": points, "daily": daily, "count": len(points),
            "success_rate": ok / len(finished) if finished else None}


def suite_history(store: Any, suite: str) -> dict[str, Any]:
    """Each check's results over time, the latest failing samples, and the gates' quarantine counts."""
    results = views_data.suite_results(store, suite)
    checks: OrderedDict[str, dict[str, Any]] = OrderedDict()
    for r in results:
        view = check_view(r)
        item = checks.setdefault(r["check_name"], {"name": r["check_name"], "type": r["expectation_type"],
                                                   "points": [], "runs": 0, "failures": 0, "last_failure": None})
        value = view["percent"] if view["percent"] is not None else _number(view["observed"])
        item["points"].append({"at": iso(r["at"]), "success": r["success"], "value": value,
                               "run": r["flow_run_id"]})
        item["runs"] += 1
        if not r["success"]:
            item["failures"] += 1
            item["last_failure"] = {**view, "at": iso(r["at"]), "run": r["flow_run_id"]}
        item["latest"] = view
    gates = []
    for p in views_data.suite_profiles(store, suite):
        g = p["profile"].get("gate") or {}
        gates.append({"at": iso(p["at"]), "run": p["flow_run_id"], "rows_in": g.get("rows_in"),
                      "rows_passed": g.get("rows_passed"), "rows_quarantined": g.get("rows_quarantined"),
                      "halted": bool(g.get("halted")), "policy": g.get("policy")})
    return {"suite": suite, "checks": list(checks.values()), "gates": gates,
            "quarantined": sum(int(g["rows_quarantined"] or 0) for g in gates)}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def suites_overview(store: Any) -> list[dict[str, Any]]:
    """Every suite with its latest gate outcome."""
    out = []
    for suite in views_data.quality_suites(store):
        last = views_data.suite_profiles(store, suite, limit=1)
        gate = (last[0]["profile"].get("gate") or {}) if last else {}
        first = last[0] if last else {}
        out.append({"suite": suite, "at": first.get("at"), "run": first.get("flow_run_id"),
                    "passed": gate.get("passed"), "checks": gate.get("checks"), "rows_in": gate.get("rows_in"),
                    "rows_quarantined": gate.get("rows_quarantined"), "halted": bool(gate.get("halted")),
                    "success": gate.get("success")})
    return out


def lake_overview(store: Any, run_id: str | None = None) -> dict[str, Any]:
    """The lake jobs' latest counters, and one run's counters over time."""
    runs = views_data.lake_runs(store, LAKE_METRICS)
    focus = run_id or (runs[0]["id"] if runs else None)
    series: dict[str, list[dict[str, Any]]] = {}
    if focus:
        for m in views_data.metric_series(store, focus, LAKE_METRICS):
            series.setdefault(m["name"], []).append({"at": iso(m["at"]), "value": m["value"]})
    live = any(r["state_type"] in ("RUNNING", "PENDING") for r in runs)
    return {"runs": runs, "focus": focus, "series": series, "metrics": LAKE_METRICS, "live": live}
