"""Publishing a lake job's staged files: each partition replaced whole, atomically; quarantine per file.

An engine writes its output into a local staging folder (``lakefiles.staging_dir``):

* good rows as Parquet under ``<stage>/good/``, Hive-partitioned by helper columns
  ``__hr_p0``, ``__hr_p1``, ... (one per ``partition_by`` column, in order) whose value is
  ``hex()`` of the UTF-8 text of the partition value (``partition_text``), so that no
  engine's own escaping of folder names matters; any number of files per partition. Without
  ``partition_by``: files directly in ``<stage>/good/``.
* bad rows as Parquet files anywhere under ``<stage>/bad/`` with ``QUARANTINE_SCHEMA``.

``publish`` then makes one ``part-0.parquet`` per partition (merging files if needed), puts it in
place with one atomic replace (rename on a local disk, one object PUT on object stores), and
removes the partition's other data files; then writes each source file's bad rows to its
quarantine file and removes the stale quarantine file of a source that now has none.
"""

from __future__ import annotations

import binascii
import os
import posixpath
import urllib.parse
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from headrace.io import fs as fsmod

NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
PART_FILE = "part-0.parquet"
# The text of a partition value, per type (float and timestamp columns cannot partition).
PARTITION_TYPES = ("int64", "string", "bool", "date")


def partition_text(value: Any) -> str:
    """A partition value as folder text: ``2024-01-05``, ``42``, ``true``; null as Hive has it."""
    if value is None:
        return NULL_PARTITION
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def folder_name(column: str, text: str) -> str:
    return f"{column}={urllib.parse.quote(text, safe='')}"


@dataclass
class Published:
    partitions: list[str] = field(default_factory=list)
    bytes_written: int = 0
    quarantine_files: list[str] = field(default_factory=list)


def publish(stage: str, target: str, partition_by: Sequence[str], quarantine: str,
            sources: Sequence[str]) -> Published:
    """Move the staged good rows to ``target`` and the bad rows to ``quarantine`` (see above)."""
    out = Published()
    fs, root = fsmod.filesystem(target)
    good = os.path.join(stage, "good")
    for segments, files in sorted(_staged_partitions(good, len(partition_by)).items()):
        folder = posixpath.join(root, *(folder_name(c, t) for c, t in zip(partition_by, segments, strict=True)))
        out.bytes_written += _replace_partition(fs, folder, files, stage)
        out.partitions.append(fsmod.uri(fs, folder))
    out.quarantine_files = _publish_quarantine(os.path.join(stage, "bad"), quarantine, sources)
    return out


def _staged_partitions(good: str, depth: int) -> dict[tuple[str, ...], list[str]]:
    parts: dict[tuple[str, ...], list[str]] = {}
    for folder, _dirs, files in os.walk(good):
        data = sorted(f for f in files if f.endswith(".parquet") and not f.startswith((".", "_")))
        if not data:
            continue
        rel = os.path.relpath(folder, good)
        segs = [] if rel == "." else rel.split(os.sep)
        if len(segs) != depth:
            raise RuntimeError(f"staged lake output {folder} is not {depth} partition levels deep")
        texts = tuple(binascii.unhexlify(s.split("=", 1)[1]).decode("utf-8") for s in segs)
        parts.setdefault(texts, []).extend(os.path.join(folder, f) for f in data)
    return parts


def _merged(files: list[str], stage: str) -> str:
    """One Parquet file holding every row of ``files`` (row groups copied one at a time)."""
    if len(files) == 1:
        return files[0]
    merged = os.path.join(stage, f"merged-{uuid.uuid4().hex[:12]}.parquet")
    schema = pq.read_schema(files[0])
    with pq.ParquetWriter(merged, schema) as writer:
        for f in files:
            pf = pq.ParquetFile(f)
            for i in range(pf.num_row_groups):
                writer.write_table(pf.read_row_group(i).cast(schema))
    return merged


def _replace_partition(fs: Any, folder: str, files: list[str], stage: str) -> int:
    local = _merged(files, stage)
    size = os.path.getsize(local)
    target = posixpath.join(folder, PART_FILE)
    if fsmod.is_local(fs):
        fs.makedirs(folder, exist_ok=True)
        os.replace(local, target)  # the stage is inside the target: same file system
    else:
        fs.put_file(local, target)  # an object appears whole when its upload completes
    if fs.exists(folder):
        for other in fs.find(folder):
            rel = other[len(folder.rstrip("/")) + 1:] if other.startswith(folder) else other
            # Hidden ('.') and marker ('_') names are not data: the staging folder, _quarantine...
            if other.rstrip("/") != target and not any(p.startswith((".", "_")) for p in rel.split("/")):
                fs.rm(other)
    return size


def _publish_quarantine(bad_dir: str, quarantine: str, sources: Sequence[str]) -> list[str]:
    from headrace.spark.lakespec import QUARANTINE_SCHEMA, quarantine_file_name

    files = sorted(os.path.join(d, f) for d, _, fs_ in os.walk(bad_dir) for f in fs_
                   if f.endswith(".parquet")) if os.path.isdir(bad_dir) else []
    table = pa.concat_tables([pq.read_table(f).cast(QUARANTINE_SCHEMA) for f in files]) if files \
        else QUARANTINE_SCHEMA.empty_table()
    fs, root = fsmod.filesystem(quarantine)
    written = []
    by_source = set(table.column("source_file").unique().to_pylist()) if table.num_rows else set()
    for src in sources:
        path = posixpath.join(root, quarantine_file_name(src))
        if src not in by_source:
            if fs.exists(path):
                fs.rm(path)  # a rerun over a repaired file leaves no stale bad rows
            continue
        rows = table.filter(pc.equal(table.column("source_file"), src))

        def write(f: Any, rows: pa.Table = rows) -> None:
            pq.write_table(rows, f)

        fsmod.atomic_write(fs, path, write)
        written.append(fsmod.uri(fs, path))
    return written
