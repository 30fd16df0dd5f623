"""Where the web page listens, which store it shows, and the access token rule."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass

from headrace.errors import ConfigError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8428
TOKEN_ENV = "HEADRACE_UI_TOKEN"
# Host names a request may carry when no token is set. "testserver" is what Starlette's
# in-process TestClient sends; no browser reaches the page under that name.
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]", "testserver"})


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``: addresses only this machine reaches."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class UISettings:
    """The web page's settings.

    ``token``: required on every request when set (``HEADRACE_UI_TOKEN``); a
    host other than a loopback address refuses to start without one.
    ``store_url``: the run store to show (default: the process settings).
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = None
    store_url: str | None = None
    poll_seconds: float = 1.0

    @classmethod
    def from_env(cls, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, store_url: str | None = None,
                 env: Mapping[str, str] | None = None) -> UISettings:
        env = os.environ if env is None else env
        return cls(host=host, port=port, token=env.get(TOKEN_ENV) or None, store_url=store_url)

    def check(self) -> None:
        """Refuse a setup that would open the runs to the network without a token."""
        if not is_loopback(self.host) and not self.token:
            raise ConfigError(
                f"refusing to serve the web page on {self.host}: any machine that reaches it could see "
                f"and start runs; set {TOKEN_ENV} to a long random secret, or bind to {DEFAULT_HOST}")
        if self.token is not None and len(self.token) < 16:
            raise ConfigError(f"{TOKEN_ENV} is {len(self.token)} characters long; use at least 16 random "
                              "characters (for example `python -c 'import secrets; print(secrets.token_urlsafe())'`)")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} is not a TCP port; use 1-65535 (0 picks a free one)")
