"""``headrace ui``, and the web page inside ``headrace serve`` (``--ui-host``, ``--ui-port``, ``--no-ui``)."""

from __future__ import annotations

import functools
import webbrowser
from typing import Any

import click

from headrace.cli.output import console, err_console
from headrace.errors import ConfigError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8428


def _settings(host: str, port: int) -> Any:
    try:
        from headrace.ui.settings import UISettings
    except ImportError as exc:  # pragma: no cover - the web extra is missing
        raise ConfigError(f"the web page needs FastAPI, uvicorn and Jinja2 ({exc}); "
                          "install them with `pip install 'headrace[web]'`") from None
    settings = UISettings.from_env(host=host, port=port)
    settings.check()
    return settings


@click.command("ui")
@click.option("--host", default=DEFAULT_HOST, show_default=True,
              help="Address to listen on; anything but a loopback address needs HEADRACE_UI_TOKEN.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535),
              help="TCP port (0 picks a free one).")
@click.option("--run", "run_id", metavar="RUN_ID", help="Open the browser on this flow run's page.")
@click.option("--open/--no-open", "open_browser", default=False, help="Open the page in a browser.")
def ui_cmd(host: str, port: int, run_id: str | None, open_browser: bool) -> None:
    """Serve the web page: runs, tasks, logs, quality, datasets, deployments and lake jobs."""
    from headrace.ui.server import UIServer

    server = UIServer(_settings(host, port))
    target = f"{server.url}/runs/{run_id}" if run_id else f"{server.url}/runs"
    from headrace.config import load_settings
    from headrace.secrets import redact

    # The store opens on the first request: the page starts (and says so) even while it is unreachable.
    console.print(f"Web page on {server.url} (store {redact(load_settings().store_url)}); Ctrl-C stops.",
                  markup=False)
    if run_id:
        console.print(f"Run page: {target}", markup=False)
    if run_id or open_browser:
        try:
            webbrowser.open(target)
        except Exception:  # noqa: BLE001 - no browser here: the address is printed above
            pass
    server.run()


def _with_web_page(serve_cmd: click.Command) -> None:
    """Give ``headrace serve`` the web page: its options, and a component that runs it."""
    serve_cmd.params += [
        click.Option(["--ui/--no-ui", "ui"], default=True, show_default=True, help="Also serve the web page."),
        click.Option(["--ui-host"], default=DEFAULT_HOST, show_default=True, help="Web page address."),
        click.Option(["--ui-port"], default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535),
                     help="Web page port (0 picks a free one)."),
    ]
    inner = serve_cmd.callback
    assert inner is not None

    @functools.wraps(inner)
    def callback(ui: bool, ui_host: str, ui_port: int, **kwargs: Any) -> Any:
        if ui and not kwargs.get("once"):
            _add_component(ui_host, ui_port)
        return inner(**kwargs)

    serve_cmd.callback = callback


def _add_component(host: str, port: int) -> None:
    from headrace.schedule.service import SERVE_COMPONENTS

    try:
        from headrace.ui.server import serve_component
    except ImportError:
        err_console.print("Web page not started: install it with `pip install 'headrace[web]'`.")
        return
    component = serve_component(_settings(host, port),
                                announce=lambda url: console.print(f"Web page on {url}", markup=False))
    SERVE_COMPONENTS.append(component)


def register(cli: click.Group) -> None:
    cli.add_command(ui_cmd)
    serve = cli.commands.get("serve")
    if serve is not None:
        _with_web_page(serve)
