"""The parts of ``openlineage-python`` headrace uses: its event classes, facet classes and ``Serde``.

The client package's ``__init__`` imports its whole ``OpenLineageClient`` with every transport
(requests, httpx2, fsspec, yaml, asyncio): about 0.3 s of CPU per process, 13 % of the demo's
(bench/lineage.py). headrace sends events itself and needs only the event and facet modules,
which depend on nothing of that; so it loads them under a bare package module and then removes
it, and a later ``import openlineage.client`` runs the real ``__init__`` as usual. If anything
about that fails (the client's layout changed), the package is imported normally.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

_MODULES = ("event_v2", "serde", "generated.column_lineage_dataset", "generated.data_quality_assertions_dataset",
            "generated.data_quality_metrics_dataset", "generated.data_quality_metrics_input_dataset",
            "generated.datasource_dataset", "generated.error_message_run", "generated.job_type_job",
            "generated.nominal_time_run", "generated.output_statistics_output_dataset", "generated.parent_run",
            "generated.schema_dataset", "generated.sql_job", "generated.source_code_location_job")


def load_client() -> Any:
    """A namespace with ``RunEvent``, ``Run``, ``Job``, ``InputDataset``, ``OutputDataset``, ``RunState``,
    ``Serde`` and the facet modules by their short names."""
    if "openlineage.client" in sys.modules:
        return _namespace()
    try:
        import openlineage

        bare = types.ModuleType("openlineage.client")
        bare.__path__ = [f"{path}/client" for path in openlineage.__path__]
        sys.modules["openlineage.client"] = bare
        try:
            return _namespace()
        finally:
            if sys.modules.get("openlineage.client") is bare:
                del sys.modules["openlineage.client"]
            if getattr(openlineage, "client", None) is bare:
                delattr(openlineage, "client")
    except Exception:  # the client's layout changed: pay for its whole import
        for name in [m for m in sys.modules if m.startswith("openlineage.client")]:
            del sys.modules[name]
        importlib.import_module("openlineage.client")
        return _namespace()


def _namespace() -> Any:
    found = types.SimpleNamespace()
    for name in _MODULES:
        module = importlib.import_module(f"openlineage.client.{name}")
        setattr(found, name.rsplit(".", 1)[-1], module)
    events = found.event_v2
    for cls in ("RunEvent", "Run", "Job", "InputDataset", "OutputDataset", "RunState"):
        setattr(found, cls, getattr(events, cls))
    found.Serde = found.serde.Serde
    return found
