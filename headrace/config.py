"""Settings read from the environment, in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """Where headrace keeps its records.

    ``home``: folder for the embedded store, results and keys (``HEADRACE_HOME``,
    default ``./.headrace``). ``store_url``: SQLAlchemy URL of the run store
    (``HEADRACE_STORE``; default SQLite at ``home/headrace.db``).
    ``ui_url``: base URL of the web page, used for links in alerts (``HEADRACE_UI_URL``).
    ``log_level``: lowest level of the lines a run logger stores and the CLI shows
    (``HEADRACE_LOG_LEVEL``, default INFO).
    """

    home: Path
    store_url: str
    ui_url: str | None = None
    log_level: str = "INFO"

    @property
    def results_dir(self) -> Path:
        return self.home / "results"


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from ``env`` (default ``os.environ``)."""
    env = os.environ if env is None else env
    home = Path(env.get("HEADRACE_HOME") or ".headrace").expanduser().absolute()
    store = env.get("HEADRACE_STORE") or f"sqlite:///{home / 'headrace.db'}"
    return Settings(home=home, store_url=store, ui_url=env.get("HEADRACE_UI_URL") or None,
                    log_level=(env.get("HEADRACE_LOG_LEVEL") or "INFO").strip().upper())
