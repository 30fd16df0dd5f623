"""``headrace deploy``, ``serve``, ``worker``, ``backfill``, ``deployments`` and ``concurrency``."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from headrace.cli.output import console
from headrace.errors import ScheduleError
from headrace.secrets import redact


def _store() -> Any:
    from headrace.store import get_store

    return get_store()


@click.command("deploy")
@click.argument("file", type=click.Path(dir_okay=False))
def deploy_cmd(file: str) -> None:
    """Apply every deployment FILE.py declares (applied in it or defined at its top level)."""
    from headrace.engine.loader import load_module
    from headrace.schedule.deployment import Deployment, collect_applied

    with collect_applied() as applied:
        module = load_module(file)
    for value in vars(module).values():
        if isinstance(value, Deployment) and all(value is not d for d in applied):
            value.apply()
            applied.append(value)
    if not applied:
        raise ScheduleError(
            f"{file} declares no deployment; add e.g. "
            "Deployment(my_flow, 'nightly', schedule=CronSchedule('0 6 * * *')).apply()"
        )
    for dep in applied:
        what = dep.schedule.describe() if dep.schedule else "no schedule (run on demand)"
        console.print(f"Deployment [bold]{dep.name}[/bold] applied: flow {dep.entrypoint}, {what}")


def _next_fire(row: dict[str, Any], now: datetime) -> str:
    from headrace.schedule.deployment import stored_schedule

    if row["paused"]:
        return "paused"
    try:
        schedule = stored_schedule(row)
        if schedule is None:
            return "-"
        return schedule.next_after(now).strftime("%Y-%m-%d %H:%M %Z")
    except ScheduleError:
        return "never"


@click.group("deployments")
def deployments_group() -> None:
    """List, pause and resume deployments."""


@deployments_group.command("list")
def deployments_list() -> None:
    """Deployments with their schedule and next fire time (in the deployment's zone)."""
    from headrace.schedule.deployment import stored_schedule
    from headrace.store import utcnow

    rows = _store().list_deployments()
    if not rows:
        console.print("No deployments yet; `headrace deploy FILE.py` applies them.")
        return
    table = Table("name", "flow", "schedule", "next run", "limit", "catchup", "tags", "error")
    now = utcnow()
    for row in rows:
        try:
            schedule = stored_schedule(row)
            described = schedule.describe() if schedule else "-"
        except ScheduleError as exc:
            described = f"invalid: {exc}"
        table.add_row(
            escape(row["name"]),
            escape(row["flow_name"]),
            escape(described),
            escape(_next_fire(row, now)),
            str(row["concurrency_limit"] or "-"),
            "yes" if row["catchup"] else "no",
            escape(", ".join(json.loads(row["tags"] or "[]"))),
            f"[red]{escape(redact(row['error']))}[/red]" if row.get("error") else "-",
        )
    console.print(table)


@deployments_group.command("pause")
@click.argument("name")
def deployments_pause(name: str) -> None:
    """Stop scheduling NAME; its runs not yet started are cancelled."""
    _store().set_deployment_paused(name, True)
    console.print(f"Deployment [bold]{name}[/bold] paused.")


@deployments_group.command("resume")
@click.argument("name")
def deployments_resume(name: str) -> None:
    """Schedule NAME again from now on (the paused period is not caught up)."""
    _store().set_deployment_paused(name, False)
    console.print(f"Deployment [bold]{name}[/bold] resumed.")


@click.command("serve")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(0, 64))
@click.option(
    "--concurrency",
    default=4,
    show_default=True,
    type=click.IntRange(1, 1024),
    help="Runs each worker executes at once.",
)
@click.option("--once", is_flag=True, help="One scheduler pass and run what is due, then exit.")
def serve_cmd(workers: int, concurrency: int, once: bool) -> None:
    """Run the scheduler and workers (and the web page, when installed) until stopped."""
    from headrace.schedule.service import run_once, serve
    from headrace.store import utcnow

    if once:
        count = run_once(_store(), utcnow(), worker=workers > 0)
        console.print(f"Ran {count} due run(s).")
        return
    console.print(f"Serving deployments from {_store().safe_url}; Ctrl-C stops.")
    serve(_store(), workers=workers, concurrency=concurrency)


@click.command("worker")
@click.option("--concurrency", default=4, show_default=True, type=click.IntRange(1, 1024))
@click.option("--once", is_flag=True, help="Run what is due now, then exit.")
def worker_cmd(concurrency: int, once: bool) -> None:
    """Claim and run scheduled runs from the store (many workers may share it)."""
    from headrace.schedule.service import run_once, serve
    from headrace.store import utcnow

    if once:
        console.print(f"Ran {run_once(_store(), utcnow(), scheduler=False)} due run(s).")
        return
    console.print(f"Worker on {_store().safe_url}; Ctrl-C stops.")
    serve(_store(), scheduler=False, concurrency=concurrency, components=[])


def _parse_moment(text: str) -> date | datetime:
    """A bare date (a whole day) or a date and time."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ScheduleError(
            f"cannot read {text!r} as a date or time; write e.g. 2024-01-31 or 2024-01-31T06:00"
        ) from exc
    return value.date() if len(text.strip()) <= 10 else value


@click.command("backfill")
@click.argument("deployment")
@click.option("--start", required=True, help="First day or moment (deployment's zone unless given).")
@click.option("--end", required=True, help="Last day (inclusive) or moment.")
@click.option("--max-active", default=4, show_default=True, type=click.IntRange(1, 256))
@click.option("--yes", is_flag=True, help="Allow more than 10,000 slots.")
def backfill_cmd(deployment: str, start: str, end: str, max_active: int, yes: bool) -> None:
    """Run DEPLOYMENT once per schedule slot from --start to --end; resumable."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from headrace.schedule.backfill import Backfill

    plan = Backfill.plan(_store(), deployment, _parse_moment(start), _parse_moment(end), max_active=max_active, yes=yes)
    skipped = len(plan.slots) - len(plan.pending)
    console.print(
        f"Backfill of [bold]{deployment}[/bold]: {len(plan.slots)} slot(s), {skipped} already "
        f"completed, {len(plan.pending)} to run, {max_active} at a time."
    )
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("backfill", total=len(plan.slots), completed=skipped)
        counts = plan.run(
            lambda slot, state: bar.update(task, advance=1, description=f"{slot.strftime('%Y-%m-%d %H:%M')} {state}")
        )
    console.print("Done: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items()) if n))
    if any(state not in ("Completed", "Cached", "Skipped (already completed)") for state in counts):
        raise click.exceptions.Exit(1)


@click.group("concurrency")
def concurrency_group() -> None:
    """Limits on how many task runs with a tag run at once."""


@concurrency_group.command("set")
@click.argument("tag")
@click.argument("limit", type=click.IntRange(0, None))
def concurrency_set(tag: str, limit: int) -> None:
    _store().set_concurrency_limit(tag, limit)
    console.print(f"At most {limit} task run(s) tagged [bold]{tag}[/bold] run at once.")


@concurrency_group.command("list")
def concurrency_list() -> None:
    limits, usage = _store().concurrency_limits(), _store().concurrency_usage()
    if not limits:
        console.print("No concurrency limits; `headrace concurrency set TAG N` adds one.")
        return
    table = Table("tag", "limit", "in use")
    for tag, limit in sorted(limits.items()):
        table.add_row(tag, str(limit), str(usage.get(tag, 0)))
    console.print(table)


@concurrency_group.command("delete")
@click.argument("tag")
def concurrency_delete(tag: str) -> None:
    _store().delete_concurrency_limit(tag)
    console.print(f"Concurrency limit on [bold]{tag}[/bold] removed.")


def register(cli: click.Group) -> None:
    for command in (deploy_cmd, serve_cmd, worker_cmd, backfill_cmd, deployments_group, concurrency_group):
        cli.add_command(command)
