"""Helpers for the lineage tests (a module of its own: `conftest` names clash between folders)."""

from __future__ import annotations

import json
from typing import Any


def io_rows(store: Any, flow_run_id: str) -> list[dict[str, Any]]:
    """The run's dataset records, details decoded."""
    store.writer.flush()
    rows = store.get_dataset_io(flow_run_id)
    for r in rows:
        r["details"] = json.loads(r["details"]) if r.get("details") else {}
    return rows
