"""``:name`` placeholders, translated to a driver's own positional style.

Values are never put into the SQL text: the query gets ``$1, $2, ...`` and the
values travel separately, in order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from headrace.errors import DataIOError

# Quoted text, comments and casts are copied unchanged so that ':x' inside them is no placeholder.
_TOKEN = re.compile(r"""
    '(?:[^']|'')*'                        # string literal
  | "(?:[^"]|"")*"                        # quoted identifier
  | --[^\n]*                              # line comment
  | /\*.*?\*/                             # block comment
  | \$((?:[A-Za-z_]\w*)?)\$.*?\$\1\$      # PostgreSQL dollar quoting
  | ::                                    # cast, not a placeholder
  | \\:                                   # escaped colon (as in SQLAlchemy's text())
  | (?<![\w:]):(?P<name>[A-Za-z_]\w*)     # the placeholder
""", re.S | re.X)


def to_positional(query: str, params: Mapping[str, Any] | None) -> tuple[str, list[str]]:
    """Rewrite ``:name`` as ``$n``; return the new text and the names in ``$n`` order.

    >>> to_positional("SELECT * FROM t WHERE d >= :start AND x = ':no'", {"start": 1})
    ("SELECT * FROM t WHERE d >= $1 AND x = ':no'", ['start'])
    """
    params = params or {}
    order: dict[str, int] = {}

    def sub(m: re.Match[str]) -> str:
        name = m.group("name")
        if name is None:
            return ":" if m.group(0) == "\\:" else m.group(0)
        if name not in params:
            raise DataIOError(f"the query uses :{name} but params has no {name!r} "
                              f"(given: {', '.join(sorted(params)) or 'none'})")
        if name not in order:
            order[name] = len(order) + 1
        return f"${order[name]}"

    return _TOKEN.sub(sub, query), list(order)
