"""Deployments on the page: next fire times, run now with parameters, pause/resume, backfills."""

from __future__ import annotations

import ast
import json
import os
import re
from datetime import UTC, date, datetime
from itertools import islice
from pathlib import Path
from typing import Any

from headrace.errors import ParameterError, ScheduleError
from headrace.schedule.backfill import Backfill
from headrace.schedule.deployment import stored_schedule
from headrace.schedule.scheduler import new_run_row
from headrace.secrets import protect_parameters
from headrace.store.deployments import BACKFILL_MARK, NOT_FINISHED, slot_key
from headrace.ui.actions import run_key
from headrace.ui.render import MASK
from headrace.ui.web import NotFound

PREVIEW_SLOTS = 200
MAX_BACKFILL = 10_000


def deployment_or_404(store: Any, name: str) -> dict[str, Any]:
    try:
        return dict(store.get_deployment(name))
    except ScheduleError:
        raise NotFound(f"no deployment named {name!r}; the deployments page lists them") from None


def describe(dep: dict[str, Any], now: datetime, fires: int = 3) -> dict[str, Any]:
    """Schedule text, zone and the next fire times in the deployment's own zone."""
    try:
        schedule = stored_schedule(dep)
    except ScheduleError as exc:
        return {"schedule": f"invalid: {exc}", "zone": None, "next": []}
    if schedule is None:
        return {"schedule": "no schedule (runs on demand)", "zone": None, "next": []}
    upcoming = [] if dep["paused"] else [t.astimezone(schedule.zone) for t in islice(schedule.iter_after(now), fires)]
    return {"schedule": schedule.describe(), "zone": str(schedule.zone), "next": upcoming}


def flow_parameters(entrypoint: str) -> list[dict[str, Any]] | None:
    """The flow function's parameters read from its source without importing it (None if unreadable)."""
    where, _, name = entrypoint.rpartition(":")
    try:
        tree = ast.parse(Path(where).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (node.name == name or _flow_named(node, name)):
            return _params(node.args)
    return None


def _flow_named(node: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> bool:
    for deco in node.decorator_list:
        if isinstance(deco, ast.Call):
            for kw in deco.keywords:
                if kw.arg == "name" and isinstance(kw.value, ast.Constant) and kw.value.value == name:
                    return True
    return False


def _params(args: ast.arguments) -> list[dict[str, Any]]:
    plain = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(plain) - len(args.defaults)) + list(args.defaults)
    out = [{"name": a.arg, "annotation": ast.unparse(a.annotation) if a.annotation else "",
            "default": ast.unparse(d) if d is not None else None, "required": d is None}
           for a, d in zip(plain, defaults, strict=True)]
    out += [{"name": a.arg, "annotation": ast.unparse(a.annotation) if a.annotation else "",
             "default": ast.unparse(d) if d is not None else None, "required": d is None}
            for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)]
    if args.kwarg is not None:
        out.append({"name": "**" + args.kwarg.arg, "annotation": "", "default": None, "required": False})
    return out


def parse_parameters(dep: dict[str, Any], raw: str | None,
                     known: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The deployment's parameters overridden by ``raw`` (a JSON object); checked against the flow
    (``known``: its parameters, read from the entrypoint when not given)."""
    base = json.loads(dep.get("parameters") or "{}")
    if raw is None or not raw.strip():
        given: Any = {}
    else:
        try:
            given = json.loads(raw)
        except ValueError as exc:
            raise ParameterError(f"parameters are not valid JSON ({exc}); write an object such as "
                                 '{"start_date": "2024-03-01"}') from None
    if not isinstance(given, dict):
        raise ParameterError(f"parameters must be a JSON object, not {type(given).__name__}")
    given = _unmasked(given, base)
    merged = {**base, **given}
    known = known if known is not None else flow_parameters(dep["entrypoint"])
    if known is not None and not any(p["name"].startswith("**") for p in known):
        names = {p["name"] for p in known}
        for key in given:
            if key not in names:
                raise ParameterError(f"flow {dep['flow_name']!r} has no parameter {key!r} "
                                     f"(parameters: {', '.join(sorted(names)) or 'none'})")
        missing = [p["name"] for p in known if p["required"] and p["name"] not in merged]
        if missing:
            raise ParameterError(f"flow {dep['flow_name']!r} needs parameter {missing[0]!r}; add it to the JSON")
    return merged


_SECRET_ANNOTATION = re.compile(r"\bSecret\b")


def _unmasked(given: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """The page shows secret values as ***: a form sent back unchanged keeps the real (stored,
    possibly encrypted) ones, nested ones too."""
    out = {}
    for key, value in given.items():
        real = base.get(key)
        if value == MASK and key in base:
            out[key] = real
        elif isinstance(value, dict) and isinstance(real, dict):
            out[key] = _unmasked(value, real)
        else:
            out[key] = value
    return out


def run_now(store: Any, name: str, raw_parameters: str | None) -> str:
    """A run of the deployment due now with these parameters; returns its id."""
    dep = deployment_or_404(store, name)
    known = flow_parameters(dep["entrypoint"])
    # Stored as every run stores them: secret values encrypted (the worker decrypts them).
    secret = frozenset(p["name"] for p in known or () if _SECRET_ANNOTATION.search(p["annotation"]))
    params = protect_parameters(parse_parameters(dep, raw_parameters, known), secret)
    now = datetime.now(UTC)
    run_id = os.urandom(16).hex()
    row = new_run_row(dep, now, now, key=run_key(dep["id"], run_id, "manual", now))
    row.update(id=run_id, name=f"{dep['name']}-{now.strftime('%Y%m%d-%H%M%S')}-now",
               parameters=json.dumps(params, sort_keys=True, default=str),
               state_message="started on the web page")
    store.create_scheduled_runs([row])
    return run_id


def _moment(label: str, text: str | None) -> date | datetime:
    raw = (text or "").strip()
    try:
        return date.fromisoformat(raw) if len(raw) <= 10 else datetime.fromisoformat(raw)
    except ValueError:
        raise ParameterError(f"{label}={text!r} is not a date or time; write 2024-01-31 or 2024-01-31T06:00") from None


def backfill_plan(store: Any, name: str, start: str | None, end: str | None) -> dict[str, Any]:
    """The backfill's slots, each marked done, waiting or to create; refuses more than MAX_BACKFILL."""
    dep = deployment_or_404(store, name)
    plan = Backfill.plan(store, dep["name"], _moment("start", start), _moment("end", end),
                         max_slots=MAX_BACKFILL)
    schedule = stored_schedule(dep)
    zone = schedule.zone if schedule is not None else UTC  # plan() refuses a deployment without one
    existing: dict[datetime, list[dict[str, Any]]] = {}
    if plan.slots:
        for run in store.slot_runs(dep["id"], plan.slots[0], plan.slots[-1]):
            existing.setdefault(run["expected_start"], []).append(run)
    slots = []
    for slot in plan.slots:
        runs = existing.get(slot, [])
        if slot in plan.completed:
            status = "done"
        elif any(r["state_type"] in NOT_FINISHED for r in runs):
            status = "waiting"
        else:
            status = "create"
        slots.append({"slot": slot, "local": slot.astimezone(zone), "status": status, "runs": len(runs)})
    counts = {k: sum(1 for s in slots if s["status"] == k) for k in ("done", "waiting", "create")}
    return {"deployment": dep, "start": plan.start, "end": plan.end, "slots": slots, "counts": counts,
            "shown": slots[:PREVIEW_SLOTS]}


def create_backfill(store: Any, name: str, start: str | None, end: str | None) -> int:
    """Create a Scheduled run for each slot the plan marks ``create``; workers run them."""
    plan = backfill_plan(store, name, start, end)
    dep, now = plan["deployment"], datetime.now(UTC)
    rows = []
    for item in plan["slots"]:
        if item["status"] != "create":
            continue
        row = new_run_row(dep, item["slot"], now, key=f"{slot_key(dep['id'], item['slot'])}{BACKFILL_MARK}"
                                                      f"{item['runs']}")
        row["name"] += "-backfill"
        rows.append(row)
    return store.create_scheduled_runs(rows) if rows else 0
