"""Keep passwords out of logs, the store, the CLI and error messages."""

from __future__ import annotations

import re

# scheme://user:password@host  ->  scheme://user:***@host
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@\s/]+)(?=@)")
# password=secret in query strings and libpq conninfo strings
_KV_PASSWORD = re.compile(r"(?P<head>\b(?:password|passwd|pwd|secret|token)\s*=\s*)(?P<pw>[^&\s;]+)",
                          re.IGNORECASE)


def redact(text: str) -> str:
    """Return ``text`` with every URL password and ``password=`` value replaced by ``***``.

    >>> redact("postgresql://app:s3cret@db/x?sslmode=require")
    'postgresql://app:***@db/x?sslmode=require'
    """
    if not text:
        return text
    text = _URL_PASSWORD.sub(r"\g<head>***", text)
    return _KV_PASSWORD.sub(r"\g<head>***", text)


def redact_url(url: object) -> str:
    """Render a connection URL (a string or a SQLAlchemy URL) with its password hidden."""
    render = getattr(url, "render_as_string", None)
    if callable(render):
        return redact(str(render(hide_password=True)))
    return redact(str(url))
