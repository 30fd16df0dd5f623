"""Running the web page: in the foreground (``headrace ui``), in a thread (``headrace serve``, tests).

The socket is bound before the server starts, so port 0 picks a free port and
``UIServer.url`` tells which.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

from headrace.errors import ConfigError
from headrace.ui.settings import UISettings

log = logging.getLogger("headrace.ui")


class UIServer:
    """One uvicorn server for the web app on a bound socket.

    >>> server = UIServer(UISettings(port=0)).start()      # doctest: +SKIP
    >>> server.url, server.stop()                           # doctest: +SKIP
    """

    def __init__(self, settings: UISettings, app: Any = None) -> None:
        import uvicorn

        from headrace.ui.app import create_app

        settings.check()
        self.settings = settings
        self.app = app or create_app(settings)
        family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP: asyncio sets NODELAY
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((settings.host.strip("[]"), settings.port))
        except OSError as exc:
            self.sock.close()
            raise ConfigError(f"the web page cannot listen on {settings.host}:{settings.port}: "
                              f"{exc.strerror or exc}; pick another port (--port, or 0 for a free one)") from None
        self.sock.listen(128)
        self.port = int(self.sock.getsockname()[1])
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = self.settings.host
        return f"http://{f'[{host}]' if ':' in host and not host.startswith('[') else host}:{self.port}"

    def run(self) -> None:
        """Serve in this thread until ``stop()`` (or Ctrl-C in the main thread)."""
        try:
            self.server.run(sockets=[self.sock])
        finally:
            self.sock.close()

    def start(self) -> UIServer:
        """Serve in a background thread; returns once the server accepts requests."""
        self._thread = threading.Thread(target=self.run, name="headrace-ui", daemon=True)
        self._thread.start()
        while not self.server.started and self._thread.is_alive():
            self._thread.join(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)


def serve_component(settings: UISettings, announce: Callable[[str], None] | None = None) -> Callable[[Any], None]:
    """A ``headrace serve`` component: runs the page until the stop event is set.

    The server binds here (not in the thread), so a port in use fails ``serve`` at once.
    """
    server = UIServer(settings)
    if announce is not None:
        announce(server.url)

    def web_page(stop: threading.Event) -> None:
        def stop_when_told() -> None:
            stop.wait()
            server.server.should_exit = True

        threading.Thread(target=stop_when_told, name="headrace-ui-stop", daemon=True).start()
        server.run()

    return web_page
