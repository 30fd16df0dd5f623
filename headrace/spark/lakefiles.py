"""The files of a lake: listing them with their sizes, reading them locally, checking targets.

Shared by both engines: ``list_files`` decides which files a job reads (hidden ``.``/``_``
files are not data), ``local_copy`` gives a local, decompressed file to read and the damage of
a truncated gzip file (issue 8's reason), ``check_writable`` fails early on a target the job
could not publish to.
"""

from __future__ import annotations

import logging
import os
import posixpath
import shutil
import tempfile
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

from headrace.errors import DataFileError
from headrace.io import fs as fsmod
from headrace.io._compressed import is_compressed
from headrace.spark.lakespec import LakeJobError, LakeResult, LakeSpec

log = logging.getLogger("headrace.spark")


@dataclass(frozen=True)
class LakeFile:
    """One data file of the lake: its file system, path, full URL and stored size."""

    fs: Any
    path: str
    uri: str
    size: int


def list_files(sources: list[str]) -> list[LakeFile]:
    """The data files of every source (file, glob or folder); an empty glob or folder is no file.

    A path that names nothing at all is an error: it is more likely a typo than an empty lake.
    """
    out: list[LakeFile] = []
    seen: set[str] = set()
    for src in sources:
        fs, path = fsmod.filesystem(src)
        if any(ch in path for ch in "*?["):
            paths = sorted(fs.glob(path))
            root = path[:min(path.index(ch) for ch in "*?[" if ch in path)].rsplit("/", 1)[0] + "/"
        elif fs.isdir(path):
            paths, root = sorted(fs.find(path)), path.rstrip("/") + "/"
        elif fs.exists(path):
            paths, root = [path], posixpath.dirname(path) + "/"
        else:
            raise DataFileError(f"lake source {src} does not exist; check the path (an empty folder "
                                "or a glob that matches nothing is an empty lake)")
        for p in paths:
            if any(part.startswith((".", "_")) for part in p[len(root):].split("/") if part):
                continue  # our temporary files start with '.', Spark/Hadoop markers with '_'
            info = fs.info(p)
            if info.get("type") == "directory":
                continue
            uri = fsmod.uri(fs, p)
            if uri not in seen:
                seen.add(uri)
                out.append(LakeFile(fs, p, uri, int(info.get("size") or 0)))
    return out


@contextmanager
def local_copy(f: LakeFile, workdir: str) -> Iterator[tuple[str, tuple[str, str] | None]]:
    """``(local path of the decompressed lines, damage)``; ``damage`` is ``(raw, reason)`` of a
    gzip file cut short or corrupt (its readable lines are in the file)."""
    local, fetched = f.path, False
    if not fsmod.is_local(f.fs):
        local = os.path.join(workdir, "fetch-" + uuid.uuid4().hex[:12])
        try:
            f.fs.get(f.path, local)
        except FileNotFoundError:
            raise DataFileError(f"lake file {f.uri} vanished while the job ran") from None
        fetched = True
    damage = None
    if is_compressed(f.path):
        out = os.path.join(workdir, "gunzip-" + uuid.uuid4().hex[:12])
        with open(local, "rb") as src, open(out, "w+b") as dst:
            damage = gunzip_stream(src, dst, f.uri)
        if fetched:
            os.remove(local)
        local, fetched = out, True
    try:
        yield local, damage
    finally:
        if fetched and os.path.exists(local):
            os.remove(local)


_CHUNK = 1 << 20


def gunzip_stream(src: IO[bytes], dst: IO[bytes], name: str) -> tuple[str, str] | None:
    """Decompress every gzip member of ``src`` into ``dst`` a chunk at a time (memory stays flat).

    A file cut short or corrupt keeps the whole lines before the damage; the partial last line
    is returned as ``(raw, reason)`` with ``headrace.io._compressed``'s reason (file, offsets).
    """
    d, started, pos, member_start = zlib.decompressobj(wbits=31), False, 0, 0
    written, last_newline, lines = 0, 0, 0
    problem = None

    def emit(data: bytes) -> None:
        nonlocal written, last_newline, lines
        if data:
            dst.write(data)
            at = data.rfind(b"\n")
            if at >= 0:
                last_newline, lines = written + at + 1, lines + data.count(b"\n")
            written += len(data)

    while problem is None:
        chunk = src.read(_CHUNK)
        if not chunk:
            break
        while chunk and problem is None:
            if not started:
                if not chunk.strip(b"\0"):
                    chunk = b""  # padding after the last member
                    break
                started, member_start = True, pos
            try:
                emit(d.decompress(chunk))
            except zlib.error as exc:
                problem = f"corrupt compressed file {name}: {exc} (compressed byte offset {member_start} to {pos})"
                break
            pos += len(chunk) - len(d.unused_data)
            chunk = d.unused_data
            if d.eof:
                emit(d.flush())
                d, started = zlib.decompressobj(wbits=31), False
    if problem is None and started:
        problem = (f"truncated compressed file {name}: its gzip stream ends at compressed byte offset "
                   f"{pos} before its end marker")
    if problem is None:
        return None
    # cut_damage's rule: the whole lines before the damage stay, the partial last line is one bad row
    dst.flush()
    dst.seek(last_newline)
    tail = dst.read(1000) if dst.readable() else b""
    dst.truncate(last_newline)
    reason = (f"{problem}; the records before line {lines + 1} (decompressed byte {last_newline}) are kept")
    return tail.decode("utf-8", errors="backslashreplace"), reason


def check_writable(url: str, what: str) -> None:
    """Fail now, with a clear message, if ``url`` (a folder) cannot be written."""

    fs, path = fsmod.filesystem(url)
    probe = posixpath.join(path, f".headrace-probe-{uuid.uuid4().hex[:12]}")
    try:
        if fsmod.is_local(fs):
            fs.makedirs(path, exist_ok=True)
        with fs.open(probe, "wb") as fh:
            fh.write(b"")
        fs.rm(probe)
    except (OSError, PermissionError) as exc:
        raise LakeJobError(f"the lake job's {what} {fsmod.uri(fs, path)} is not writable: {exc}; "
                           "choose a folder the job may write to") from None
    except Exception as exc:  # botocore and other file systems raise their own errors
        raise LakeJobError(f"the lake job's {what} {fsmod.uri(fs, path)} is not writable: "
                           f"{type(exc).__name__}: {exc}") from None


@contextmanager
def staging_dir(target: str) -> Iterator[str]:
    """A local folder to write the run's files before they are published.

    For a local target it is a hidden folder inside the target (readers skip it, and files
    move into place by rename on the same file system); otherwise a temporary folder.
    """
    fs, path = fsmod.filesystem(target)
    if fsmod.is_local(fs):
        stage = posixpath.join(path, f".headrace-staging-{uuid.uuid4().hex[:12]}")
        os.makedirs(stage)
    else:
        stage = tempfile.mkdtemp(prefix="headrace-lake-")
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def open_lake(job: LakeSpec, engine: str, progress: Any) -> tuple[list[LakeFile], LakeResult]:
    """What every engine does first: list the lake, check that target and quarantine take writes
    before anything is read, start the progress display. No file: a warning and empty counters."""
    files = list_files(job.sources)
    check_writable(job.target, "target")
    check_writable(str(job.quarantine), "quarantine")
    result = LakeResult(engine=engine, files=[f.uri for f in files])
    progress.start(len(files), sum(f.size for f in files))
    if not files:
        log.warning("%s: the lake %s holds no data file; nothing to do", job.name, ", ".join(job.sources))
    return files, result
