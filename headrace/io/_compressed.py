"""Compressed text files: decompress what can be read, and say where the damage starts."""

from __future__ import annotations

import zlib

SUFFIXES = (".gz", ".gzip")
_CHUNK = 1 << 20


def is_compressed(path: str) -> bool:
    return path.lower().endswith(SUFFIXES)


def strip_suffix(path: str) -> str:
    """``orders.ndjson.gz`` -> ``orders.ndjson`` (for guessing the format)."""
    lower = path.lower()
    for suffix in SUFFIXES:
        if lower.endswith(suffix):
            return path[: -len(suffix)]
    return path


def gunzip(raw: bytes, name: str) -> tuple[bytes, str | None]:
    """The decompressed bytes of a gzip file (every member), and what is wrong with it, if any.

    A file cut short or corrupt gives back everything before the damage and a reason naming
    the file and the compressed offset where reading stopped.
    """
    out: list[bytes] = []
    pos = 0
    while pos < len(raw):
        d = zlib.decompressobj(wbits=31)
        start = pos
        try:
            while pos < len(raw) and not d.eof:
                out.append(d.decompress(raw[pos:pos + _CHUNK]))
                pos += min(_CHUNK, len(raw) - pos)
            out.append(d.flush())
        except zlib.error as exc:
            return b"".join(out), (f"corrupt compressed file {name}: {exc} (compressed byte "
                                   f"offset {start} to {pos})")
        if not d.eof:
            return b"".join(out), (f"truncated compressed file {name}: its gzip stream ends at "
                                   f"compressed byte offset {len(raw)} before its end marker")
        pos -= len(d.unused_data)
        if not raw[pos:].strip(b"\x00"):
            break  # padding after the last member
    return b"".join(out), None


def cut_damage(data: bytes, damage: str | None) -> tuple[bytes, tuple[int, str, str] | None]:
    """Keep the whole lines before the damage; the partial last line becomes one bad entry."""
    if damage is None:
        return data, None
    end = data.rfind(b"\n") + 1
    tail = data[end:]
    line = data.count(b"\n", 0, end) + 1
    reason = f"{damage}; the records before line {line} (decompressed byte {end}) are kept"
    return data[:end], (line, tail[:1000].decode("utf-8", errors="backslashreplace"), reason)
