"""One redaction policy for every string that leaves a run, and secrets kept encrypted.

``redact(text)`` is the one function every part calls before a string reaches
the store, a log, the CLI, a report, the web page or a lineage event. It hides
URL passwords (also ones containing ``/``), ``password=``/``token:``-style
values (quoted or not), ``Bearer`` credentials, encrypted values, and every
value registered as secret: ``Secret`` parameters, alert URLs and headers,
and passwords it found in URLs before.

``Secret[str]`` marks a parameter: it is shown as ``***`` and the function
receives the real value. ``protect``/``reveal`` store a secret as an
``env:NAME`` reference or encrypted with the store key (``HEADRACE_SECRET_KEY``,
or ``secret.key`` under ``HEADRACE_HOME``), never as given.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from headrace.config import load_settings
from headrace.errors import ConfigError

MASK = "***"
T = TypeVar("T")

# scheme://user:password@host: the password runs to the last "@" of the address (it may hold "/" or ":").
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s'\"]*:)(?P<pw>[^\s'\"]+)(?=@)")
_NAMES = r"(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|secret[_-]?key" \
         r"|client[_-]?secret|auth[_-]?token|access[_-]?token|refresh[_-]?token|credentials?)"
# password=secret, password: secret, "password": "secret", password='se cret'
_KV_PASSWORD = re.compile(
    rf"(?P<head>(?P<q>[\"']?)\b[\w.-]*{_NAMES}(?P=q)\s*[=:]\s*)"
    r"(?P<pw>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[^&\s;,'\"}]+)", re.IGNORECASE)
_BEARER = re.compile(r"(?P<head>\b(?:Bearer|Basic|Token)\s+)(?P<pw>[A-Za-z0-9._~+/=\-]{6,})")
_ENCRYPTED = re.compile(r"enc:v1:[A-Za-z0-9_\-=]+")
_SECRET_NAME = re.compile(r"secret|passw|pwd|token|credential|(^|[^a-z])key($|[^a-z])|apikey|private", re.IGNORECASE)

_known: set[str] = set()
_known_pattern: re.Pattern[str] | None = None
_known_version = 0  # counts registrations: what ``redact`` hides changes with it
_lock = threading.Lock()


def register_secret(value: object) -> None:
    """From now on, ``redact`` hides ``value`` wherever it appears (values under 4 characters are not tracked)."""
    text = value.get_secret_value() if isinstance(value, Secret) else value
    if not isinstance(text, str) or len(text) < 4 or text in _known:
        return
    global _known_pattern, _known_version
    with _lock:
        _known.add(text)
        ordered = sorted(_known, key=len, reverse=True)
        _known_pattern = re.compile("|".join(re.escape(v) for v in ordered))
        _known_version += 1


def secrets_version() -> int:
    """Changes whenever a secret is registered: a cache of ``redact`` results must key on it."""
    return _known_version


def _learn(value: str) -> None:
    """A password found in context is hidden elsewhere too, once long enough not to be a common word."""
    if len(value) >= 8:
        register_secret(value)


def _url_password(match: re.Match[str]) -> str:
    _learn(match.group("pw"))
    return match.group("head") + MASK


def _kv(match: re.Match[str]) -> str:
    pw = match.group("pw")
    quote = pw[0] if pw[:1] in ("'", '"') else ""
    _learn(pw.strip("'\""))
    return f"{match.group('head')}{quote}{MASK}{quote}"


def redact(text: str) -> str:
    """``text`` with every secret replaced by ``***``.

    >>> redact("postgresql://app:s3/cr@t@db/x?sslmode=require")
    'postgresql://app:***@db/x?sslmode=require'
    """
    if not text:
        return text
    text = str(text)
    pattern = _known_pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    text = _URL_PASSWORD.sub(_url_password, text)
    text = _KV_PASSWORD.sub(_kv, text)
    text = _BEARER.sub(lambda m: m.group("head") + MASK, text)
    return _ENCRYPTED.sub(MASK, text)


class RedactingFilter:
    """A logging filter that redacts a record's message; headrace puts it on the HTTP client's
    loggers, which print request URLs (a webhook's path can be its secret)."""

    def filter(self, record: object) -> bool:
        msg = getattr(record, "msg", None)
        args = getattr(record, "args", None)
        try:
            text = str(msg) % args if args else str(msg)
        except (TypeError, ValueError):
            return True
        record.msg, record.args = redact(text), ()  # type: ignore[attr-defined]
        return True


def redact_url(url: object) -> str:
    """Render a connection URL (a string or a SQLAlchemy URL) with its password hidden."""
    raw = getattr(url, "password", None)
    if raw:
        register_secret(str(raw))
    render = getattr(url, "render_as_string", None)
    if callable(render):
        return redact(str(render(hide_password=True)))
    return redact(str(url))


def is_secret_name(name: str) -> bool:
    """Whether a parameter or header name says it holds a secret (password, token, key, ...)."""
    return bool(_SECRET_NAME.search(str(name)))


class Secret(Generic[T]):
    """A value shown as ``***`` everywhere; ``get_secret_value()`` returns it.

    As a parameter annotation, ``def flow(password: Secret[str])``, the function
    receives the real value while records and displays show ``***``.
    """

    __slots__ = ("_value",)

    def __init__(self, value: T) -> None:
        self._value = value.get_secret_value() if isinstance(value, Secret) else value
        register_secret(self._value)

    def get_secret_value(self) -> T:
        return self._value  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> tuple[Any, ...]:
        return (Secret, (self._value,))


def mask_parameters(parameters: Mapping[str, Any], secret_names: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Parameters as they may be shown or stored: secret ones as ``***``, text redacted, nested too."""
    return {k: _mask(k, v, k in secret_names) for k, v in parameters.items()}


def _mask(name: str, value: Any, secret: bool) -> Any:
    if secret or isinstance(value, Secret) or (is_secret_name(name) and value is not None):
        register_secret(value)
        return MASK
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: _mask(str(k), v, False) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask("", v, False) for v in value]
    return value


def protect_parameters(parameters: Mapping[str, Any], secret_names: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Parameters as a run stores them: what :func:`mask_parameters` would hide is encrypted with the
    store key instead (``redact`` shows it as ``***``), so a retry can pass the real value."""
    return {k: _protect(k, v, k in secret_names) for k, v in parameters.items()}


def _protect(name: str, value: Any, secret: bool) -> Any:
    if secret or isinstance(value, Secret) or (is_secret_name(name) and value is not None):
        real = value.get_secret_value() if isinstance(value, Secret) else value
        register_secret(real)
        return protect(real if isinstance(real, str) else json.dumps(real, default=str))
    if isinstance(value, str):
        return value if redact(value) == value else protect(value)  # e.g. a URL with its password
    if isinstance(value, Mapping):
        return {k: _protect(str(k), v, False) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_protect("", v, False) for v in value]
    return value


def reveal_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Stored parameters with their encrypted values decrypted (for the engine only: never show them)."""
    return {k: _reveal(v) for k, v in parameters.items()}


def _reveal(value: Any) -> Any:
    if isinstance(value, str):
        return reveal(value) if value.startswith("enc:v1:") else value
    if isinstance(value, Mapping):
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_reveal(v) for v in value]
    return value


# -- stored secrets: env:NAME references or encrypted with the store key -------------------------
def _fernet() -> Any:
    from cryptography.fernet import Fernet

    key = os.environ.get("HEADRACE_SECRET_KEY")
    if not key:
        path = load_settings().home / "secret.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(Fernet.generate_key())
        key = path.read_text().strip()
    return Fernet(key.encode())


def protect(value: str | None, *, hide: bool = True) -> str | None:
    """The form a secret is stored in: ``env:NAME`` as given, anything else encrypted (``enc:v1:...``).

    ``hide``: also register the value, so ``redact`` hides it wherever it appears.
    """
    if value is None or value.startswith("env:") or value.startswith("enc:v1:"):
        return value
    if hide:
        register_secret(value)
    return "enc:v1:" + _fernet().encrypt(value.encode()).decode()


def reveal(value: str | None, *, hide: bool = True) -> str | None:
    """The real value of a stored secret (reads ``env:NAME``, decrypts ``enc:v1:``); ``hide``: see ``protect``."""
    if value is None:
        return None
    if value.startswith("env:"):
        name = value[4:]
        if name not in os.environ:
            raise ConfigError(f"the secret reference env:{name} names no environment variable; set {name}")
        real = os.environ[name]
    elif value.startswith("enc:v1:"):
        from cryptography.fernet import InvalidToken

        try:
            real = _fernet().decrypt(value[7:].encode()).decode()
        except InvalidToken:
            raise ConfigError("a stored secret was encrypted with another key; set HEADRACE_SECRET_KEY to the "
                              "key of the process that stored it (its HEADRACE_HOME/secret.key)") from None
    else:
        real = value
    if hide:
        register_secret(real)
    return real
