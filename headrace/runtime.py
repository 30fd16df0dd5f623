"""What a running flow can ask about itself: ``from headrace import runtime``.

``runtime.flow_run_id``, ``runtime.flow_name``, ``runtime.parameters``,
``runtime.scheduled_time`` (the slot a deployment run was scheduled for, else
``None``), ``runtime.deployment_id``, ``runtime.task_run_id``; each is ``None``
outside a run.
"""

from __future__ import annotations

from typing import Any

from headrace.engine.context import current_flow_run, current_task_run

_FLOW_FIELDS = {"flow_run_id", "flow_name", "parameters", "scheduled_time", "deployment_id"}


def __getattr__(name: str) -> Any:
    if name in _FLOW_FIELDS:
        ctx = current_flow_run()
        return getattr(ctx, name) if ctx else None
    if name in ("task_run_id", "task_name", "task_key"):
        tctx = current_task_run()
        return getattr(tctx, name) if tctx else None
    raise AttributeError(f"headrace.runtime has no attribute {name!r}")
