"""Persisting task results: JSON inline or in a file, frames as Parquet, pickles only on request.

A result reference is a small JSON document stored in the run store. Pickles
are signed with a key kept under HEADRACE_HOME and are loaded only when the
signature matches, so headrace never unpickles a file it did not write.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import uuid
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from headrace.config import load_settings
from headrace.errors import ResultError

INLINE_LIMIT = 32 * 1024
_TAG = "__hr__"


class NotJSONable(Exception):
    pass


def _encode(value: Any) -> Any:
    """Values JSON can carry exactly; tuples, dates and decimals are tagged to come back as themselves."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        finite = value == value and value not in (float("inf"), float("-inf"))
        return value if finite else {_TAG: "float", "v": repr(value)}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, tuple) and type(value) is tuple:
        return {_TAG: "tuple", "v": [_encode(v) for v in value]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value) and _TAG not in value:
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return {_TAG: "datetime", "v": value.isoformat()}
    if isinstance(value, date):
        return {_TAG: "date", "v": value.isoformat()}
    if isinstance(value, Decimal):
        return {_TAG: "decimal", "v": str(value)}
    raise NotJSONable(type(value).__name__)


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        tag = value.get(_TAG)
        if tag is None:
            return {k: _decode(v) for k, v in value.items()}
        raw = value["v"]
        if tag == "tuple":
            return tuple(_decode(v) for v in raw)
        decoders: dict[str, Any] = {"float": float, "datetime": datetime.fromisoformat,
                                    "date": date.fromisoformat, "decimal": Decimal}
        return decoders[tag](raw)
    return value


def frame_kind(value: Any) -> str | None:
    """``pandas``, ``polars`` or ``arrow`` for a data frame, else ``None`` (without importing them)."""
    module = type(value).__module__
    name = type(value).__name__
    if module.startswith("pandas") and name == "DataFrame":
        return "pandas"
    if module.startswith("polars") and name == "DataFrame":
        return "polars"
    if module.startswith("pyarrow") and name == "Table":
        return "arrow"
    return None


def _results_dir() -> Path:
    path = load_settings().results_dir
    path.mkdir(parents=True, exist_ok=True)
    return path


def _key() -> bytes:
    path = load_settings().home / "result.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
    return path.read_bytes()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + f".{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def persist(value: Any, *, serializer: str = "json", inline_only: bool = False, label: str = "") -> str | None:
    """Store ``value`` and return its reference (JSON text).

    ``inline_only``: only a small JSON value is kept (in the store row); anything
    else returns ``None``. Otherwise a value that cannot be stored raises ResultError.
    """
    kind = frame_kind(value)
    if kind is None:
        try:
            text = json.dumps(_encode(value), separators=(",", ":"))
        except NotJSONable:
            text = None
        if text is not None and len(text) <= INLINE_LIMIT:
            return json.dumps({"kind": "json", "value": json.loads(text)})
        if inline_only:
            return None
        if text is not None:
            path = _results_dir() / f"{uuid.uuid4().hex}.json"
            _write_atomic(path, text.encode())
            return json.dumps({"kind": "json-file", "path": str(path)})
        if serializer == "pickle":
            return _persist_pickle(value)
        raise ResultError(
            f"{label or 'the result'} is a {type(value).__name__}, which headrace stores only as JSON "
            "or Parquet; return a DataFrame or JSON-able value, or pass result_serializer='pickle'")
    if inline_only:
        return None
    return _persist_frame(value, kind)


def _persist_frame(value: Any, kind: str) -> str:
    import pyarrow.parquet as pq

    if kind == "pandas":
        import pyarrow as pa

        table = pa.Table.from_pandas(value, preserve_index=True)
    elif kind == "polars":
        table = value.to_arrow()
    else:
        table = value
    path = _results_dir() / f"{uuid.uuid4().hex}.parquet"
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return json.dumps({"kind": "parquet", "path": str(path), "frame": kind})


def _persist_pickle(value: Any) -> str:
    import pickle

    try:
        data = pickle.dumps(value, protocol=5)
    except Exception as exc:
        raise ResultError(f"the result ({type(value).__name__}) cannot be pickled: {exc}") from exc
    path = _results_dir() / f"{uuid.uuid4().hex}.pickle"
    _write_atomic(path, data)
    mac = hmac.new(_key(), data, hashlib.sha256).digest()
    return json.dumps({"kind": "pickle", "path": str(path), "hmac": base64.b64encode(mac).decode()})


def load(ref: str) -> Any:
    """Read back a value stored by :func:`persist`."""
    doc = json.loads(ref)
    kind = doc["kind"]
    if kind == "json":
        return _decode(doc["value"])
    path = Path(doc["path"])
    if not path.exists():
        raise ResultError(f"the persisted result {path} is gone; run the task again")
    if kind == "json-file":
        return _decode(json.loads(path.read_bytes()))
    if kind == "parquet":
        return _load_frame(path, doc.get("frame", "pandas"))
    if kind == "pickle":
        return _load_pickle(path, doc["hmac"])
    raise ResultError(f"unknown result kind {kind!r}")


def _load_frame(path: Path, frame: str) -> Any:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    if frame == "pandas":
        return table.to_pandas()
    if frame == "polars":
        import polars as pl

        return pl.from_arrow(table)
    return table


def _load_pickle(path: Path, mac_b64: str) -> Any:
    import pickle

    data = path.read_bytes()
    expected = hmac.new(_key(), data, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, base64.b64decode(mac_b64)):
        raise ResultError(f"refusing to load {path}: it was not written by this headrace home")
    return pickle.loads(data)  # noqa: S301 - signature checked above
