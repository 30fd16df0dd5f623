"""Content hashes of Arrow, pandas, Polars and NumPy data, independent of memory layout.

Each Arrow column is hashed as up to three streams (validity, fixed-width
values or string lengths, string bytes) fed chunk by chunk with slice offsets
applied, so any chunking and any slice of equal values give the same digest.
Null slots count as null whatever bytes lie under them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

Feed = Callable[[Any], None]


def feed_frame(h: Any, value: Any, feed: Feed) -> bool:
    """Feed a frame, array or column into ``h``; False if ``value`` is none of those."""
    module = type(value).__module__
    if module.startswith("pyarrow"):
        return _feed_arrow(h, value)
    if module.startswith("pandas"):
        return _feed_pandas(h, value, feed)
    if module.startswith("polars"):
        return _feed_polars(h, value)
    if module.startswith("numpy"):
        return _feed_numpy(h, value, feed)
    return False


# -- Arrow ---------------------------------------------------------------------------------
def _feed_arrow(h: Any, value: Any) -> bool:
    import pyarrow as pa

    if isinstance(value, (pa.Table, pa.RecordBatch)):
        h.update(repr(("arrow.table", [(f.name, str(f.type)) for f in value.schema], value.num_rows)).encode())
        for column in value.columns:
            h.update(arrow_column_digest(column))
        return True
    if isinstance(value, (pa.Array, pa.ChunkedArray)):
        h.update(repr(("arrow.array", str(value.type), len(value))).encode())
        h.update(arrow_column_digest(value))
        return True
    if isinstance(value, pa.Scalar):
        h.update(repr(("arrow.scalar", str(value.type), value.as_py())).encode())
        return True
    return False


_ONES = b"\x01" * 65536


def arrow_column_digest(column: Any) -> bytes:
    """The digest of one Arrow column's values, the same for every chunking and slice."""
    import pyarrow as pa

    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    streams = [hashlib.blake2b(digest_size=20) for _ in range(3)]
    for chunk in chunks:
        if pa.types.is_dictionary(chunk.type):
            chunk = chunk.dictionary_decode()
        _feed_chunk(streams, chunk)
    return b"".join(s.digest() for s in streams)


def _feed_chunk(streams: list[Any], chunk: Any) -> None:
    import numpy as np
    import pyarrow as pa

    valid_h, values_h, data_h = streams
    n, t = len(chunk), chunk.type
    valid = None
    if chunk.null_count:  # one byte per value, so chunk boundaries leave no trace
        valid = chunk.is_valid().to_numpy(zero_copy_only=False)
        valid_h.update(valid.astype(np.uint8).tobytes())
    else:
        valid_h.update(_ONES[:n] if n <= len(_ONES) else b"\x01" * n)
    if pa.types.is_null(t) or n == 0:
        return
    if pa.types.is_boolean(t):
        bits = chunk.fill_null(False).to_numpy(zero_copy_only=False)
        values_h.update(bits.astype(np.uint8).tobytes())
    elif _fixed_width(t):
        width = t.bit_width // 8
        raw = np.frombuffer(chunk.buffers()[1], dtype=np.uint8)[chunk.offset * width:(chunk.offset + n) * width]
        if valid is not None:
            raw = raw.reshape(n, width).copy()
            raw[~valid] = 0
        values_h.update(raw.tobytes())
    elif pa.types.is_string(t) or pa.types.is_binary(t) or pa.types.is_large_string(t) or pa.types.is_large_binary(t):
        wide = pa.types.is_large_string(t) or pa.types.is_large_binary(t)
        all_offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64 if wide else np.int32)
        offsets = all_offsets[chunk.offset:chunk.offset + n + 1]
        lengths = np.diff(offsets).astype(np.int64)
        if valid is not None:
            lengths[~valid] = -1
        values_h.update(lengths.tobytes())
        data = chunk.buffers()[2]
        if data is not None:
            data_h.update(memoryview(data)[int(offsets[0]):int(offsets[-1])])
    else:  # nested, views and other types: value by value
        for item in chunk.to_pylist():
            data_h.update(repr(item).encode() + b"\x00")


def _fixed_width(t: Any) -> bool:
    try:
        return t.bit_width % 8 == 0 and t.bit_width > 0 and t.num_buffers == 2
    except ValueError:
        return False


# -- pandas --------------------------------------------------------------------------------
def _feed_pandas(h: Any, value: Any, feed: Feed) -> bool:
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        h.update(repr(("pandas.DataFrame", value.shape)).encode())
        feed(list(value.columns))
        _feed_index(h, value.columns, feed)
        _feed_index(h, value.index, feed)
        for i in range(value.shape[1]):
            _feed_values(h, value.iloc[:, i], feed)
        return True
    if isinstance(value, pd.Series):
        h.update(repr(("pandas.Series", len(value))).encode())
        feed(value.name)
        _feed_index(h, value.index, feed)
        _feed_values(h, value, feed)
        return True
    if isinstance(value, pd.Index):
        _feed_index(h, value, feed)
        return True
    if isinstance(value, (pd.Timestamp, pd.Timedelta, pd.Period, pd.Interval)):
        h.update(repr(("pandas.scalar", type(value).__name__, str(value))).encode())
        return True
    return False


def _feed_index(h: Any, index: Any, feed: Feed) -> None:
    import pandas as pd

    h.update(repr(("index", type(index).__name__, len(index))).encode())
    feed(list(index.names))
    if isinstance(index, pd.RangeIndex):
        h.update(repr(("range", index.start, index.stop, index.step)).encode())
        return
    if isinstance(index, pd.MultiIndex):
        for level in range(index.nlevels):
            _feed_values(h, pd.Series(index.get_level_values(level)), feed)
        return
    _feed_values(h, pd.Series(index), feed)


def _feed_values(h: Any, series: Any, feed: Feed) -> None:
    """A column's dtype and values (never its block layout)."""
    import numpy as np
    import pandas as pd

    dtype = series.dtype
    h.update(repr(("dtype", repr(dtype))).encode())
    if isinstance(dtype, pd.CategoricalDtype):
        _feed_values(h, pd.Series(series.cat.codes.to_numpy()), feed)
        return
    if isinstance(dtype, np.dtype) and dtype.kind != "O":
        h.update(np.ascontiguousarray(series.to_numpy()).tobytes())
        return
    if isinstance(dtype, np.dtype):  # object: strings fast through Arrow, anything else one by one
        values = series.to_numpy()
        if pd.api.types.infer_dtype(values, skipna=False) == "string":
            import pyarrow as pa

            h.update(arrow_column_digest(pa.array(values, type=pa.large_string())))
        else:
            feed(values.tolist())
        return
    try:
        import pyarrow as pa

        h.update(arrow_column_digest(pa.array(series.array)))
    except Exception:  # an extension array Arrow cannot take
        feed(list(series.array))


# -- Polars and NumPy --------------------------------------------------------------------------
def _feed_polars(h: Any, value: Any) -> bool:
    import polars as pl

    if isinstance(value, pl.DataFrame):
        h.update(repr(("polars.DataFrame", [(n, str(t)) for n, t in value.schema.items()])).encode())
        return _feed_arrow(h, value.to_arrow())
    if isinstance(value, pl.Series):
        h.update(repr(("polars.Series", value.name, str(value.dtype))).encode())
        return _feed_arrow(h, value.to_arrow())
    return False


def _feed_numpy(h: Any, value: Any, feed: Feed) -> bool:
    import numpy as np

    if isinstance(value, np.generic):
        h.update(repr(("numpy.scalar", value.dtype.str)).encode() + np.asarray(value).tobytes())
        return True
    if not isinstance(value, np.ndarray):
        return False
    h.update(repr(("numpy.ndarray", value.dtype.str, value.shape)).encode())
    if value.dtype.kind == "O":
        feed(value.tolist())
    else:
        h.update(np.ascontiguousarray(value).tobytes())
    return True
