"""``headrace lineage send``: send the OpenLineage events an HTTP endpoint did not take earlier."""

from __future__ import annotations

import click

from headrace.cli.output import console
from headrace.errors import ConfigError


@click.command("send")
@click.option("--url", help="endpoint to send to (default: HEADRACE_OPENLINEAGE_URL)")
def send_cmd(url: str | None) -> None:
    """Send the events kept in the outbox (under HEADRACE_HOME) to the OpenLineage HTTP endpoint now."""
    from headrace.config import load_settings
    from headrace.lineage.openlineage import OpenLineageSettings
    from headrace.lineage.transport_http import send_outbox
    from headrace.secrets import redact

    settings = OpenLineageSettings.from_env()
    target = url or settings.url
    if not target or not target.lower().startswith(("http://", "https://")):
        raise ConfigError("headrace lineage send needs an http(s) endpoint: set HEADRACE_OPENLINEAGE_URL "
                          "or pass --url http://host:port")
    sent, left, folder = send_outbox(target, load_settings().home, api_key=settings.api_key)
    console.print(f"Sent {sent} OpenLineage event(s) to {redact(target)}; {left} still kept in {folder}")
    if left:
        raise click.exceptions.Exit(1)


def register(cli: click.Group) -> None:
    """Add ``send`` to the ``lineage`` group (made here when the lineage commands are not loaded)."""
    group = cli.commands.get("lineage")
    if not isinstance(group, click.Group):
        group = click.Group("lineage", help="Datasets, their lineage, and OpenLineage events.")
        cli.add_command(group)
    group.add_command(send_cmd)


__all__ = ["register", "send_cmd"]
