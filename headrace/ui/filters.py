"""Reading query parameters: run filters, cursors, limits and times; bad input names itself.

Every malformed value raises ``ParameterError`` with what was wrong and what
would be accepted; the app answers it with a 400.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from headrace.errors import ParameterError
from headrace.store.views import STATE_NAMES, STATE_TYPES, RunFilter

_STATE_LOOKUP = {s.lower(): s for s in (*STATE_TYPES, *STATE_NAMES)}
_STATE_LOOKUP.update({s.lower(): s for s in STATE_NAMES})  # "failed" means the name when both exist
_STATE_LOOKUP.update({s.lower(): s for s in STATE_TYPES if s.lower() not in _STATE_LOOKUP})
_RELATIVE = {"h": 3600, "d": 86400, "w": 7 * 86400, "m": 60}
FILTER_KEYS = ("flow", "state", "tag", "deployment", "since", "until", "q")


def parse_states(values: list[str]) -> tuple[str, ...]:
    out: list[str] = []
    for raw in values:
        for part in raw.split(","):
            name = part.strip()
            if not name:
                continue
            if name.upper() in STATE_TYPES:
                out.append(name.upper())
                continue
            known = _STATE_LOOKUP.get(name.lower())
            if known is None:
                raise ParameterError(f"unknown state {name!r}; use one of {', '.join(STATE_TYPES)} "
                                     f"or a state name ({', '.join(STATE_NAMES)})")
            out.append(known)
    return tuple(dict.fromkeys(out))


def parse_time(name: str, raw: str | None, now: datetime | None = None) -> datetime | None:
    """An ISO date or time (UTC unless it says otherwise), or a span back from now: ``24h``, ``7d``."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    now = now or datetime.now(UTC)
    if text[:-1].isdigit() and text[-1].lower() in _RELATIVE:
        return now - timedelta(seconds=int(text[:-1]) * _RELATIVE[text[-1].lower()])
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00")) if len(text) > 10 else \
            datetime.combine(date.fromisoformat(text), datetime.min.time())
    except ValueError:
        raise ParameterError(f"{name}={raw!r} is not a time; write 2024-05-01, 2024-05-01T06:00 or a span "
                             "back from now such as 24h or 7d") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_limit(raw: str | None, default: int = 50, maximum: int = 500) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ParameterError(f"limit={raw!r} is not a whole number; use 1 to {maximum}") from None
    if not 1 <= value <= maximum:
        raise ParameterError(f"limit={value} is out of range; use 1 to {maximum}")
    return value


def deployment_id(store: Any, name: str | None) -> str | None:
    """The id of the deployment a filter names (by name or id)."""
    if not name:
        return None
    from headrace.errors import ScheduleError

    try:
        return str(store.get_deployment(name)["id"])
    except ScheduleError:
        raise ParameterError(f"deployment={name!r} names no deployment; the deployments page lists them") from None


def run_filter(params: Mapping[str, Any], store: Any = None) -> RunFilter:
    """The runs filter of a request's query (``flow``, ``state``, ``tag``, ``deployment``, ``since``, ...)."""
    getlist = getattr(params, "getlist", None)
    flows = [f for f in (getlist("flow") if getlist else [params.get("flow")]) if f]
    states = [s for s in (getlist("state") if getlist else [params.get("state")]) if s]
    since = parse_time("since", params.get("since"))
    until = parse_time("until", params.get("until"))
    if since and until and until <= since:
        raise ParameterError(f"until ({until.isoformat()}) is not after since ({since.isoformat()}); swap them")
    return RunFilter(flows=tuple(dict.fromkeys(flows)), states=parse_states(states), tag=params.get("tag") or None,
                     deployment_id=deployment_id(store, params.get("deployment")) if store is not None else None,
                     since=since, until=until, name=params.get("q") or None)


def encode_cursor(key: tuple[Any, ...] | None) -> str | None:
    if key is None:
        return None
    parts = [v.isoformat() if isinstance(v, datetime) else v for v in key]
    return base64.urlsafe_b64encode(json.dumps(parts, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(raw: str) -> list[Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode())
    except (ValueError, UnicodeDecodeError):
        raise ParameterError(f"cursor={raw[:40]!r} is not a cursor this page handed out; "
                             "follow the page's next link instead of editing it") from None
    if not isinstance(data, list) or len(data) != 2:
        raise ParameterError(f"cursor={raw[:40]!r} is not a cursor this page handed out")
    return data


def time_cursor(raw: str | None) -> Any:
    """A (time, id) keyset cursor handed out with an earlier page (the id is text or a number)."""
    if not raw:
        return None
    stamp, key = _decode(raw)
    try:
        when = datetime.fromisoformat(str(stamp))
    except ValueError:
        raise ParameterError(f"cursor={raw[:40]!r} is not a cursor this page handed out") from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC), str(key) if isinstance(key, str) \
        else key


def name_cursor(raw: str | None) -> tuple[str, int] | None:
    if not raw:
        return None
    name, key = _decode(raw)
    if not isinstance(name, str) or not isinstance(key, int):
        raise ParameterError(f"cursor={raw[:40]!r} is not a cursor this page handed out")
    return name, key


def int_param(name: str, raw: str | None, minimum: int = 0, maximum: int = 2**62) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ParameterError(f"{name}={raw!r} is not a whole number") from None
    if not minimum <= value <= maximum:
        raise ParameterError(f"{name}={value} is out of range ({minimum} to {maximum})")
    return value


def query_string(params: Mapping[str, Any], **changes: Any) -> str:
    """The filter part of the query string with some keys replaced (for next-page and filter links)."""
    from urllib.parse import urlencode

    pairs: list[tuple[str, str]] = []
    multi = getattr(params, "multi_items", None)
    items = multi() if multi else list(params.items())
    for key, value in items:
        if key in changes or key not in (*FILTER_KEYS, "limit"):
            continue
        pairs.append((key, value))
    pairs += [(k, str(v)) for k, v in changes.items() if v not in (None, "")]
    return urlencode(pairs)
