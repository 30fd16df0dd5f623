from __future__ import annotations

import pytest

from headrace.errors import DataIOError
from headrace.io._sqlparams import to_positional


def test_names_become_positions_in_first_use_order() -> None:
    sql, names = to_positional("SELECT * FROM t WHERE a = :b AND c = :a OR d = :b",
                               {"a": 1, "b": 2})
    assert sql == "SELECT * FROM t WHERE a = $1 AND c = $2 OR d = $1"
    assert names == ["b", "a"]


def test_quoted_text_comments_and_casts_are_left_alone() -> None:
    query = ("SELECT ':x', \":y\", x::date, $tag$ :z $tag$ -- :w\n"
             "/* :v */ FROM t WHERE a = :a AND b = '\\:' AND c = \\:literal")
    sql, names = to_positional(query, {"a": 1})
    assert names == ["a"]
    assert "':x'" in sql and '":y"' in sql and "x::date" in sql and "$tag$ :z $tag$" in sql
    assert "-- :w" in sql and "/* :v */" in sql and "c = :literal" in sql


def test_missing_parameter_is_named() -> None:
    with pytest.raises(DataIOError, match=r":end.*no 'end'"):
        to_positional("SELECT 1 WHERE d BETWEEN :start AND :end", {"start": 1})
