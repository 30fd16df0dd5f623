"""The run store: every flow run, task run, state change, log line and metric.

``get_store()`` opens the store named by the settings (SQLite under
``HEADRACE_HOME`` by default, PostgreSQL when ``HEADRACE_STORE`` says so) once
per process and URL; the first open also marks runs whose process died as
Crashed.
"""

from __future__ import annotations

import os
import threading

from headrace.config import load_settings
from headrace.state_types import TERMINAL_TYPES
from headrace.store.base import normalize_url, utcnow
from headrace.store.cache import CacheMixin, ConcurrencyMixin
from headrace.store.deployments import DeploymentsMixin
from headrace.store.quality import QualityMixin
from headrace.store.runs import RunsMixin
from headrace.store.transitions import record_transitions
from headrace.store.writer import BatchWriter

__all__ = ["RunStore", "BatchWriter", "get_store", "open_store", "record_transitions", "utcnow", "TERMINAL_TYPES"]


class RunStore(RunsMixin, CacheMixin, ConcurrencyMixin, DeploymentsMixin, QualityMixin):
    """The run store on one database (SQLite or PostgreSQL)."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        super().__init__(url, migrate=migrate)
        self.writer = BatchWriter(self)

    def close(self) -> None:
        """Write the buffered records, stop the writer and release the connections."""
        try:
            self.writer.close()
        finally:
            super().close()


_STORES: dict[str, RunStore] = {}
_LOCK = threading.Lock()
_URLS: dict[tuple[str | None, str | None, str], str] = {}


def _settings_url() -> str:
    """The settings' store URL, remembered per environment and working folder (every flow run
    asks; reading the settings builds paths)."""
    env = os.environ
    store, home = env.get("HEADRACE_STORE"), env.get("HEADRACE_HOME")
    relative = not store and not (home and os.path.isabs(home))
    key = (store, home, os.getcwd() if relative else "")  # a relative home depends on the working folder
    url = _URLS.get(key)
    if url is None:
        url = _URLS[key] = load_settings().store_url
    return url


def open_store(url: str) -> RunStore:
    """Open (and migrate) the store at ``url``; each call makes a new connection pool."""
    store = RunStore(url)
    store.mark_crashed()
    return store


def get_store(url: str | None = None) -> RunStore:
    """The process-wide store for ``url`` (default: from the settings)."""
    key = normalize_url(url or _settings_url())
    store = _STORES.get(key)
    if store is None:
        with _LOCK:
            store = _STORES.get(key)
            if store is None:
                store = _STORES[key] = open_store(key)
    return store
