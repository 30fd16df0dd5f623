"""What a lake job inside a flow must leave in lineage, on either engine: its source, its Parquet
output (schema, rows, bytes, column lineage) and its quarantine in the store's lineage records,
in ``headrace lineage show``, and in the OpenLineage events (valid against the official schemas)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from headrace.cli import main
from headrace.lineage.openlineage import close_emitters
from headrace.store import get_store

_SCHEMAS = Path(__file__).resolve().parent.parent / "lineage" / "openlineage_schemas.py"


def _validate_lines(text: str) -> list[dict[str, Any]]:
    spec = importlib.util.spec_from_file_location("lake_openlineage_schemas", _SCHEMAS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.validate_lines(text)  # type: ignore[no-any-return]


def assert_lake_lineage(run_id: str, *, lake_dir: Path, target: Path, good: int, bad: int, events: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    store = get_store()
    store.writer.flush()
    rows = store.get_dataset_io(run_id)
    inputs = [r for r in rows if r["direction"] == "input"]
    outputs = {r["name"]: r for r in rows if r["direction"] == "output"}
    assert [(r["uri"], r["name"]) for r in inputs] == [("file", str(lake_dir))]  # the glob's folder
    assert set(outputs) == {str(target), str(target / "_quarantine")}
    table, quarantine = outputs[str(target)], outputs[str(target / "_quarantine")]
    assert (table["kind"], table["rows"], quarantine["rows"]) == ("file", good, bad)
    assert table["bytes"] > 0 and quarantine["bytes"] > 0
    details = json.loads(table["details"])
    assert [c for c, _ in details["schema"]][:2] == ["order_id", "customer_id"]
    assert details["column_lineage"]["order_id"][0]["name"] == str(lake_dir)

    capsys.readouterr()
    assert main(["lineage", "show", str(target)]) in (0, None)
    shown = capsys.readouterr().out
    assert str(lake_dir) in shown and "order_id <-" in shown, shown

    close_emitters()
    found = _validate_lines(events.read_text())
    ended = [e for e in found if e["eventType"] == "COMPLETE" and e["job"]["name"].endswith(".sales-lake")
             or e["eventType"] == "COMPLETE" and e["job"]["name"].endswith(".sales-lake-spark")]
    assert len(ended) == 1, [e["job"]["name"] for e in found]
    event = ended[0]
    assert [(i["namespace"], i["name"]) for i in event["inputs"]] == [("file", str(lake_dir))]
    written = {o["name"]: o for o in event["outputs"]}
    assert set(written) == {str(target), str(target / "_quarantine")}
    facets = written[str(target)]["facets"]
    assert [f["name"] for f in facets["schema"]["fields"]][:2] == ["order_id", "customer_id"]
    assert "order_id" in facets["columnLineage"]["fields"]
    assert written[str(target)]["outputFacets"]["outputStatistics"]["rowCount"] == good
    assert written[str(target / "_quarantine")]["outputFacets"]["outputStatistics"]["rowCount"] == bad
