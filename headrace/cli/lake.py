"""``headrace lake run FILE.py:JOB``: run a lake job as a recorded flow run, with live counters."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from headrace.cli.output import console
from headrace.errors import FlowNotFound


@click.group("lake")
def lake_group() -> None:
    """Lake-to-warehouse jobs (headrace.spark.LakeJob)."""


def _load_job(target: str) -> object:
    from headrace.engine.loader import load_module
    from headrace.spark import LakeJob

    if ":" not in target:
        raise FlowNotFound(f"{target!r} does not name a lake job; write FILE.py:JOB")
    where, _, attr = target.rpartition(":")
    job = getattr(load_module(where), attr, None)
    if not isinstance(job, LakeJob):
        raise FlowNotFound(f"{attr!r} in {where} is not a LakeJob (it is {type(job).__name__})")
    return job


@lake_group.command("run")
@click.argument("target")
@click.option("--engine", type=click.Choice(["duckdb", "spark"]), default=None,
              help="Run on this engine instead of the job's own.")
@click.option("--spark-master", default=None, help="Spark master URL (engine spark), e.g. local[4].")
@click.option("--progress/--no-progress", default=None,
              help="Show the live display (default: when the terminal is interactive).")
def run_cmd(target: str, engine: str | None, spark_master: str | None, progress: bool | None) -> None:
    """Run the lake job TARGET (FILE.py:JOB) as a flow run; counters are recorded as run metrics."""
    import dataclasses

    from headrace.engine import flow, run_flow
    from headrace.spark import LakeJob

    job = _load_job(target)
    assert isinstance(job, LakeJob)
    changes: dict[str, Any] = {k: v for k, v in (("engine", engine), ("spark_master", spark_master))
                               if v is not None}
    if changes:
        job = dataclasses.replace(job, **changes)
    holder = []

    def body() -> None:
        holder.append(job.run(progress=progress))

    state = run_flow(flow(name=job.name or "lake", log_prints=False)(body), {})
    if not state.is_completed() or not holder:
        console.print(f"[red]{state.name}: {state.message or ''}[/red]")
        raise click.exceptions.Exit(1)
    r = holder[0]
    table = Table(title=f"{job.name} on {r.engine} (flow run {str(state.run_id)[:8]}, {r.seconds:.1f} s)")
    for col in ("files", "bytes read", "rows read", "good rows", "bad rows", "bad bytes", "bytes written"):
        table.add_column(col, justify="right")
    table.add_row(*(f"{v:,}" for v in (r.files_read, r.bytes_read, r.rows_read, r.good_rows, r.bad_rows,
                                       r.bad_bytes, r.bytes_written)))
    console.print(table)
    if r.bad_rows:
        console.print(f"quarantine: {job.quarantine}")
    raise click.exceptions.Exit(0)


def register(cli: click.Group) -> None:
    cli.add_command(lake_group)
