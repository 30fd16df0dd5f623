"""The ``headrace`` command. Each part's commands live in their own module here."""

from __future__ import annotations

import sys

import click

from headrace.errors import HeadraceError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="headrace")
def cli() -> None:
    """headrace: monitored, scheduled, self-healing data pipelines."""


def _register() -> None:
    from headrace.cli import lake, lineage, openlineage, quality, runs, schedule, ui

    runs.register(cli)
    schedule.register(cli)
    quality.register(cli)
    lineage.register(cli)
    ui.register(cli)  # after schedule: it adds the web page to `serve`
    lake.register(cli)
    openlineage.register(cli)  # last: it adds `send` to the `lineage` group


_register()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script: one-line errors, non-zero exit on failure."""
    from headrace.cli.output import setup_logging

    setup_logging()
    try:
        code = cli.main(args=argv, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code or 0)
    except HeadraceError as exc:
        from headrace.secrets import redact

        click.echo(f"Error: {redact(str(exc))}", err=True)
        return 1
    return code if isinstance(code, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
