"""Validate OpenLineage events against the official JSON Schemas copied in ``openlineage_spec/``.

The event is checked against ``OpenLineage.json#/$defs/RunEvent`` and each facet against its own
schema, found by the file name in its ``_schemaURL`` (the copies are looked up by name, so a
facet is checked against the copied version of its schema). Formats (uri, uuid, date-time) are
checked too.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SPEC_DIR = Path(__file__).resolve().parent / "openlineage_spec"
CORE_ID = "https://openlineage.io/spec/2-0-2/OpenLineage.json"


@lru_cache(maxsize=1)
def _registry() -> tuple[Registry, dict[str, str]]:
    """The schemas by $id, and each facet file name -> its $id."""
    resources, by_name = [], {}
    for path in sorted(SPEC_DIR.glob("*.json")):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
        by_name[path.name] = schema["$id"]
    return Registry().with_resources(resources), by_name


def _validator(ref: str) -> Draft202012Validator:
    registry, _ = _registry()
    return Draft202012Validator({"$ref": ref}, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER)


def facets_of(event: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(facet key, facet) of every facet in the event."""
    found = [*event["run"].get("facets", {}).items(), *event["job"].get("facets", {}).items()]
    for dataset in [*event.get("inputs", []), *event.get("outputs", [])]:
        for group in ("facets", "inputFacets", "outputFacets"):
            found += list(dataset.get(group, {}).items())
    return found


def validate_event(event: dict[str, Any]) -> set[str]:
    """Raise ``jsonschema.ValidationError`` unless the event and each facet with a copied schema are valid.
    Returns the keys of the facets checked against their own schema."""
    _validator(f"{CORE_ID}#/$defs/RunEvent").validate(event)
    _, by_name = _registry()
    checked = set()
    for key, facet in facets_of(event):
        url = facet["_schemaURL"]
        address, _, pointer = url.partition("#")
        name = address.rpartition("/")[2]
        if name not in by_name:
            continue
        _validator(f"{by_name[name]}#{pointer}").validate(facet)
        checked.add(key)
    return checked


def validate_lines(text: str) -> list[dict[str, Any]]:
    """Every line of an NDJSON event file, each validated; returns the events."""
    events = [json.loads(line) for line in text.splitlines() if line.strip()]
    for event in events:
        validate_event(event)
    return events
