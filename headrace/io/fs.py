"""File systems by URL (local, ``file://``, ``s3://``, any fsspec protocol) and atomic writes."""

from __future__ import annotations

import os
import posixpath
import uuid
from collections.abc import Callable
from typing import IO, Any

from headrace.errors import ConnectionFailed, DataFileError


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec file system for ``url`` and the path within it.

    ``s3://`` takes its endpoint from ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL`` and its
    credentials from the usual ``AWS_*`` variables (through botocore).
    """
    import fsspec

    options: dict[str, Any] = {}
    if url.startswith(("s3://", "s3a://")):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            options["client_kwargs"] = {"endpoint_url": endpoint}
        # Listings are cached by default; a reader right after a writer must see the new files.
        options["use_listings_cache"] = False
    try:
        fs, path = fsspec.core.url_to_fs(url, **options)
    except (ImportError, ValueError) as exc:
        raise ConnectionFailed(f"cannot open a file system for {url}: {exc}") from None
    return fs, path


def is_local(fs: Any) -> bool:
    return "file" in protocols(fs) or "local" in protocols(fs)


def protocols(fs: Any) -> tuple[str, ...]:
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)


def uri(fs: Any, path: str) -> str:
    """The full URL of ``path`` (``file:///abs``, ``s3://bucket/key``) for records and messages."""
    return str(fs.unstrip_protocol(path))


def atomic_write(fs: Any, path: str, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` so readers see the old file or the whole new one, never a part.

    Local disks: write a hidden temporary file beside it, then rename over it. Object stores
    publish an object only when its upload completes, so there we write in place.
    """
    parent = posixpath.dirname(path)
    if not is_local(fs):
        with fs.open(path, "wb") as f:
            write(f)
        return
    fs.makedirs(parent, exist_ok=True)
    tmp = posixpath.join(parent, f".{posixpath.basename(path)}.tmp-{uuid.uuid4().hex[:12]}")
    try:
        with fs.open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)  # atomic on one file system, replaces an existing file
    except BaseException:
        if fs.exists(tmp):
            fs.rm(tmp)
        raise


def expand(fs: Any, pattern: str, url: str) -> list[str]:
    """The data files ``pattern`` names: a file, a glob, or a folder (searched recursively)."""
    if any(ch in pattern for ch in "*?["):
        paths = sorted(fs.glob(pattern))
    elif fs.isdir(pattern):
        paths = sorted(fs.find(pattern))
    elif fs.exists(pattern):
        paths = [pattern]
    else:
        raise DataFileError(f"no such file: {url}")
    files = [p for p in paths if not hidden(p) and not fs.isdir(p)]
    if not files:
        raise DataFileError(f"no data files match {url}")
    return files


def hidden(path: str) -> bool:
    # Our temporary files start with '.', Spark/Hadoop markers with '_': neither is data.
    return any(part.startswith((".", "_")) for part in path.split("/")[-1:])
