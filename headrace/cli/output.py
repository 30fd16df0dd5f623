"""Terminal output shared by the commands: the console, times, durations and log handlers."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from rich.console import Console

from headrace.config import load_settings
from headrace.state_types import StateType

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

STATE_STYLES: dict[str, str] = {StateType.COMPLETED: "green", StateType.FAILED: "red", StateType.CRASHED: "red",
                StateType.CANCELLED: "yellow", StateType.RUNNING: "cyan", StateType.PENDING: "white",
                StateType.SCHEDULED: "blue"}


def setup_logging() -> None:
    """Show log lines on stderr at ``HEADRACE_LOG_LEVEL`` (default INFO): the CLI is the only place
    headrace attaches a handler or sets a level; inside runs this also decides which plain
    ``logging`` lines are stored with the run."""
    from rich.logging import RichHandler

    level = load_settings().log_level
    root = logging.getLogger()
    if any(isinstance(h, RichHandler) for h in root.handlers):
        return
    handler = RichHandler(console=err_console, show_path=False, rich_tracebacks=False, markup=False)
    handler.setLevel(level)
    root.addHandler(handler)
    if root.level == logging.WARNING:
        root.setLevel(level)


def styled_state(row: dict[str, Any]) -> str:
    style = STATE_STYLES.get(row.get("state_type") or "", "white")
    return f"[{style}]{row.get('state_name')}[/{style}]"


def fmt_time(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def fmt_duration(start: datetime | None, end: datetime | None) -> str:
    if start is None:
        return "-"
    if end is None:
        return "running"
    seconds = (end - start).total_seconds()
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    return f"{seconds / 60:.1f} min"


def first_line(text: str | None, width: int = 100) -> str:
    if not text:
        return ""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"
