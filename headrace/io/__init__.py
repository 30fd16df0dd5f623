"""Reading and writing data: SQL databases, files and object storage.

``read_sql`` / ``write_table`` talk to PostgreSQL (Arrow-native through ADBC),
DuckDB, SQLite and any SQLAlchemy database; loads are atomic and, inside a
task, exactly-once. ``read_files`` / ``write_parquet`` work on any fsspec URL
(local, ``file://``, ``s3://``); malformed lines go to quarantine and the
counts always add up: ``rows_read == rows_returned + rows_quarantined``.
"""

from __future__ import annotations

from headrace.io.files import ReadResult, read_files, write_parquet
from headrace.io.sql import read_sql, write_table

__all__ = ["read_sql", "write_table", "read_files", "write_parquet", "ReadResult"]
