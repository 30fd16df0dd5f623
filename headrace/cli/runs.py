"""``headrace run``, ``headrace runs ...`` and ``headrace retry``."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table

from headrace.cli.output import console, first_line, fmt_duration, fmt_time, styled_state
from headrace.errors import FlowError
from headrace.secrets import redact, reveal_parameters
from headrace.state_types import StateType


def _store() -> Any:
    from headrace.store import get_store

    return get_store()


def _summary(state: Any, run_id: str) -> int:
    run = _store().get_flow_run(run_id)
    tasks = _store().list_task_runs(run_id)
    done = sum(1 for t in tasks if t["state_type"] == StateType.COMPLETED)
    console.print(f"Flow run [bold]{run['name']}[/bold] ({run['id']}) {styled_state(run)} in "
                  f"{fmt_duration(run['started_at'], run['ended_at'])}; tasks {done}/{len(tasks)} completed"
                  + (f"; rows loaded {run['rows_loaded']}" if run.get("rows_loaded") else ""))
    if not state.is_completed():
        console.print(f"[red]{state.name}: {state.message or ''}[/red]")
        return 1
    return 0


@click.command("run")
@click.argument("target")
@click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE",
              help="A flow parameter; converted by the flow's type annotation. Repeatable.")
def run_cmd(target: str, params: tuple[str, ...]) -> None:
    """Run the flow TARGET, written FILE.py:FLOW."""
    from headrace.engine import load_flow, run_flow
    from headrace.engine.params import convert_parameters, parse_pairs

    flow = load_flow(target)
    parameters = flow.bind((), convert_parameters(flow, parse_pairs(params)))
    state = run_flow(flow, parameters)
    raise click.exceptions.Exit(_summary(state, str(state.run_id)))


@click.command("retry")
@click.argument("run_id")
def retry_cmd(run_id: str) -> None:
    """Re-run a failed flow run; completed tasks with persisted results are reused."""
    from headrace.engine import load_flow, run_flow
    from headrace.engine.params import convert_parameters

    old = _store().get_flow_run(run_id)
    if old["state_type"] not in (StateType.FAILED, StateType.CRASHED, StateType.CANCELLED):
        raise FlowError(f"flow run {old['id'][:8]} is {old['state_name']}; only a failed, crashed or "
                        "cancelled run can be retried")
    if not old["entrypoint"]:
        raise FlowError(f"flow run {old['id'][:8]} has no recorded entrypoint; run the flow again instead")
    flow = load_flow(old["entrypoint"])
    raw = reveal_parameters(json.loads(old["parameters"] or "{}"))  # secrets were stored encrypted
    parameters = flow.bind((), convert_parameters(flow, raw))
    state = run_flow(flow, parameters, retry_of=old["id"])
    raise click.exceptions.Exit(_summary(state, str(state.run_id)))


@click.group("runs")
def runs_group() -> None:
    """List and inspect flow runs."""


@runs_group.command("list")
@click.option("--flow", "flow_name", help="Only runs of this flow.")
@click.option("--state", help="Only runs in this state (Completed, Failed, Running, ...).")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000))
def runs_list(flow_name: str | None, state: str | None, limit: int) -> None:
    """The latest flow runs, newest first."""
    rows = _store().list_flow_runs(flow=flow_name, state=state, limit=limit)
    scheduled = any(r["expected_start"] for r in rows)
    table = Table("id", "flow", "state", "started", "duration", "rows")
    if scheduled:
        table.add_column("scheduled for")
    for r in rows:
        cells = [r["id"][:8], r["flow_name"], styled_state(r), fmt_time(r["started_at"]),
                 fmt_duration(r["started_at"], r["ended_at"]) if r["started_at"] else "-",
                 "-" if r["rows_loaded"] is None else str(r["rows_loaded"])]
        table.add_row(*cells, *([fmt_time(r["expected_start"])] if scheduled else []))
    console.print(table if rows else "No flow runs match.")


@runs_group.command("show")
@click.argument("run_id")
@click.option("--lines", default=10, show_default=True, help="How many of the last log lines to show.")
def runs_show(run_id: str, lines: int) -> None:
    """One flow run: its tasks with state, attempts, duration and error, and its last log lines."""
    store = _store()
    run = store.get_flow_run(run_id)
    console.print(f"[bold]{run['name']}[/bold]  id {run['id']}  flow {run['flow_name']}  {styled_state(run)}")
    console.print(f"started {fmt_time(run['started_at'])}  duration "
                  f"{fmt_duration(run['started_at'], run['ended_at'])}  attempts {run['run_count']}"
                  + (f"  rows loaded {run['rows_loaded']}" if run["rows_loaded"] is not None else ""))
    if run["parameters"] and run["parameters"] != "{}":
        console.print(f"parameters {redact(run['parameters'])}", markup=False)
    if run["state_message"]:
        console.print(f"message: {redact(run['state_message'])}", markup=False)
    table = Table("task", "state", "attempts", "duration", "error")
    for t in store.list_task_runs(run["id"]):
        table.add_row(t["task_key"], styled_state(t), str(t["attempts"]),
                      fmt_duration(t["started_at"], t["ended_at"]) if t["started_at"] else "-",
                      first_line(t["state_message"]) if t["state_type"] != StateType.COMPLETED else "")
    console.print(table)
    io = store.get_dataset_io(run["id"])
    if io:
        data = Table("dataset", "kind", "read/written", "rows", "bytes")
        for d in io:
            data.add_row(d["name"], d["kind"], "read" if d["direction"] == "input" else "written",
                         "-" if d["rows"] is None else f"{d['rows']:,}",
                         "-" if d["bytes"] is None else f"{d['bytes']:,}")
        console.print(data)
    metrics = store.get_metrics(run["id"])
    if metrics:
        console.print("metrics: " + ", ".join(f"{m['name']}={m['value']:g}" for m in metrics))
    tail = store.get_logs(run["id"], tail=lines)
    if tail:
        console.print("[bold]last log lines[/bold]")
        for line in tail:
            _print_log(line)


def _print_log(line: dict[str, Any]) -> None:
    import logging

    level = logging.getLevelName(line["level"])
    console.print(f"{fmt_time(line['at'])} {level:<7} {line['logger']}: {redact(line['message'])}", markup=False)


@runs_group.command("logs")
@click.argument("run_id")
def runs_logs(run_id: str) -> None:
    """Every log line of a flow run."""
    store = _store()
    run = store.get_flow_run(run_id)
    for line in store.get_logs(run["id"]):
        _print_log(line)


@runs_group.command("cancel")
@click.argument("run_id")
def runs_cancel(run_id: str) -> None:
    """Cancel a flow run: a scheduled one never starts, a running one stops at its next task."""
    from headrace.store import utcnow

    store = _store()
    run = store.get_flow_run(run_id)
    if StateType(run["state_type"]).is_terminal:
        raise FlowError(f"flow run {run['id'][:8]} already ended {run['state_name']}")
    if run["state_type"] == StateType.SCHEDULED:
        store.cancel_scheduled(run["id"], "cancelled before it started", utcnow())
        console.print(f"Cancelled scheduled flow run {run['id'][:8]}.")
        return
    store.request_cancel(run["id"])
    console.print(f"Cancellation requested for flow run {run['id'][:8]}; it stops at its next task boundary.")


def register(cli: click.Group) -> None:
    cli.add_command(run_cmd)
    cli.add_command(retry_cmd)
    cli.add_command(runs_group)
