from __future__ import annotations

import headrace.io


def test_public_names_import_and_nothing_private_leaks() -> None:
    assert sorted(headrace.io.__all__) == sorted(
        ["read_sql", "write_table", "read_files", "write_parquet", "ReadResult"])
    for name in headrace.io.__all__:
        assert getattr(headrace.io, name) is not None
