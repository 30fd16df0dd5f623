"""Rendering: the Jinja environment, display helpers, and redaction of everything shown.

Every value a template prints and every string in a JSON answer passes through
``headrace.secrets.redact``; mapping keys that name a secret (``password``,
``token``, ...) have their values replaced whatever they hold.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from headrace.secrets import redact, secrets_version

HERE = Path(__file__).resolve().parent
SECRET_KEY = re.compile(r"password|passwd|secret|token|api[_-]?key|credential|private[_-]?key|(^|[_-])pwd($|[_-])",
                        re.IGNORECASE)
STATE_CLASS = {"COMPLETED": "ok", "FAILED": "bad", "CRASHED": "bad", "CANCELLED": "warn", "RUNNING": "live",
               "PENDING": "wait", "SCHEDULED": "wait"}
MASK = "***"


def scrub(value: Any) -> Any:
    """A copy of ``value`` with secrets redacted, for JSON answers (recursive)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: (MASK if isinstance(k, str) and SECRET_KEY.search(k) and v not in (None, "") else scrub(v))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    if isinstance(value, datetime):
        return iso(value)
    return value


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def to_json(value: Any) -> str:
    """Redacted JSON text (datetimes as ISO UTC)."""
    return json.dumps(scrub(value), default=str, separators=(",", ":"))


def json_script(value: Any) -> Markup:
    """JSON safe to embed in ``<script type="application/json">``."""
    text = to_json(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


@functools.lru_cache(maxsize=65536)
def _redact_short(text: str, version: int) -> str:
    return redact(text)


def shown(text: str) -> str:
    """``redact(text)``, remembered for short text (pages print the same names again and again)
    until a secret is registered: what was shown before may have to be hidden from then on."""
    return _redact_short(text, secrets_version()) if len(text) <= 200 else redact(text)


def _finalize(value: Any) -> Any:
    if isinstance(value, Markup):
        return value
    if isinstance(value, str):
        return shown(value)
    if value is None:
        return ""
    return value


def fmt_time(value: datetime | None) -> Markup | str:
    """A ``<time>`` element in UTC; the page's script shows it in the reader's zone."""
    if value is None:
        return "-"
    stamp = iso(value) or ""
    return Markup('<time datetime="{0}">{1}</time>').format(stamp, stamp.replace("T", " ")[:19] + " UTC")


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None:
        return None
    end = end or datetime.now(UTC)
    return max(0.0, (end - start).total_seconds())


def fmt_duration(start: datetime | None, end: datetime | None) -> str:
    secs = seconds_between(start, end)
    if secs is None:
        return "-"
    text = fmt_seconds(secs)
    return text if end is not None else f"{text} so far"


def fmt_seconds(secs: float | None) -> str:
    if secs is None:
        return "-"
    if secs < 1:
        return f"{secs * 1000:.0f} ms"
    if secs < 120:
        return f"{secs:.1f} s"
    if secs < 7200:
        return f"{secs / 60:.1f} min"
    return f"{secs / 3600:.1f} h"


def fmt_number(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{int(value):,}"


def fmt_bytes(value: Any) -> str:
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(size) < 1024 or unit == "TB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return str(value)


def level_name(level: int) -> str:
    return logging.getLevelName(int(level))


def pretty_json(text: str | None) -> str:
    if not text:
        return ""
    try:
        return json.dumps(scrub(json.loads(text)), indent=2, default=str)
    except ValueError:
        return redact(text)


def parameters_of(run: dict[str, Any]) -> dict[str, Any]:
    try:
        value = json.loads(run.get("parameters") or "{}")
    except ValueError:
        return {}
    return scrub(value) if isinstance(value, dict) else {}


def tags_of(row: dict[str, Any]) -> list[str]:
    raw = row.get("tags")
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        return [t for t in str(raw).split(",") if t]
    return [str(t) for t in value] if isinstance(value, list) else []


def build_env() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                      finalize=_finalize, trim_blocks=True, lstrip_blocks=True, auto_reload=False)
    env.filters.update(time=fmt_time, duration=fmt_duration, seconds=fmt_seconds, number=fmt_number,
                       bytes=fmt_bytes, level=level_name, pretty_json=pretty_json, json_script=json_script,
                       params=parameters_of, tags=tags_of, redact=redact)
    env.globals.update(state_class=lambda t: STATE_CLASS.get(str(t or ""), "wait"))
    return env
