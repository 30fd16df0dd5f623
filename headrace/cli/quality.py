"""``headrace quality show|report|validate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from headrace.cli.output import console
from headrace.errors import RunNotFound


def _store() -> Any:
    from headrace.store import get_store

    return get_store()


@click.group("quality")
def quality() -> None:
    """Data quality results, reports and ad-hoc validation."""


def _observed(details: dict[str, Any]) -> str:
    res = details.get("result") or {}
    if res.get("unexpected_count") is not None:
        sample = res.get("partial_unexpected_list") or []
        shown = json.dumps(sample[:5], default=str)
        return f"{res['unexpected_count']} unexpected" + (f" e.g. {shown}" if sample else "")
    if "observed_value" in res:
        return f"observed {json.dumps(res['observed_value'], default=str)[:60]}"
    return ""


@quality.command("show")
@click.argument("run_id")
def show_cmd(run_id: str) -> None:
    """Print every check stored for RUN_ID (a flow run or task run id, or a prefix)."""
    store = _store()
    rows = store.get_quality_results(run_id)
    if not rows:
        raise RunNotFound(f"no quality results for run {run_id!r}; `headrace runs list` shows the runs")
    table = Table(title=f"Quality checks of run {rows[0]['flow_run_id'] or run_id}")
    for col in ("suite", "check", "result", "details"):
        table.add_column(col)
    for r in rows:
        d = r["details"]
        note = d.get("exception_info") or d.get("note") or ""
        status = "[green]PASS[/green]" if r["success"] else "[red]FAIL[/red]"
        detail = " ".join(x for x in (_observed(d), note) if x)
        table.add_row(escape(r["suite"]), escape(r["check_name"]), status, escape(detail))
    console.print(table)
    passed = sum(1 for r in rows if r["success"])
    console.print(f"Quality checks: {passed}/{len(rows)} passed")
    if rows[0]["flow_run_id"]:
        for p in store.get_quality_profiles(rows[0]["flow_run_id"]):
            g = p["profile"].get("gate") or {}
            if g.get("halted"):
                console.print(f"gate {g.get('suite')} ({g.get('policy')}): {g.get('rows_in')} rows in, "
                              "halted: nothing passed on")
                continue
            console.print(f"gate {g.get('suite')} ({g.get('policy')}): {g.get('rows_in')} rows in, "
                          f"{g.get('rows_passed')} passed, {g.get('rows_quarantined')} quarantined"
                          + (f" -> {g['quarantine_path']}" if g.get("quarantine_path") else ""))


@quality.command("report")
@click.argument("run_id")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("quality-report.html"), show_default=True, help="Where to write the page.")
def report_cmd(run_id: str, output: Path) -> None:
    """Write a self-contained HTML report of RUN_ID's quality checks."""
    from headrace.quality.report import build_report

    output.write_text(build_report(_store(), run_id), encoding="utf-8")
    console.print(f"wrote {output}")


@quality.command("validate")
@click.argument("suite_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("data")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="A value for {$PARAMETER: NAME} arguments of the suite (repeatable).")
@click.option("--result-format", default="BASIC", show_default=True,
              type=click.Choice(["BOOLEAN_ONLY", "BASIC", "SUMMARY", "COMPLETE"], case_sensitive=False))
def validate_cmd(suite_file: Path, data: str, params: tuple[str, ...], result_format: str) -> None:
    """Run the suite in SUITE_FILE (YAML) on DATA (a .parquet or .csv path); exit 1 if a check fails."""
    from headrace.quality import Suite

    parameters = {}
    for item in params:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--param")
        parameters[name.strip()] = _value(value)
    result = Suite.from_yaml(suite_file).validate(data, result_format, parameters=parameters)
    console.print(result.summary(), markup=False)
    if result_format.upper() != "BASIC":
        console.print(json.dumps(result.to_dict(), indent=2, default=str), markup=False)
    raise click.exceptions.Exit(0 if result.success else 1)


def _value(text: str) -> Any:
    """A --param value: a JSON number, boolean or list where it reads as one, else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


@quality.command("list")
def list_cmd() -> None:
    """List the expectation types with their arguments."""
    from headrace.quality import REGISTRY

    table = Table(title=f"{len(REGISTRY)} expectation types")
    for col in ("expectation", "kind", "what it checks"):
        table.add_column(col)
    for name, spec in sorted(REGISTRY.items()):
        args = ", ".join(p for p in spec.signature.parameters)
        table.add_row(f"{name}({args})", spec.kind, spec.doc.splitlines()[0] if spec.doc else "")
    console.print(table)


def register(cli: click.Group) -> None:
    cli.add_command(quality)
