"""Adapters that show pandas, Polars and Arrow frames to the checks as Arrow columns.

Columns are converted one at a time and only when a check reads them; for
NumPy-backed and Arrow-backed columns the conversion shares memory.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import pyarrow as pa

from headrace.quality.backends.cond_eval import arrow_mask, pandas_mask
from headrace.quality.conditions import RowCondition
from headrace.quality.types import arrow_type_name


class Frame(ABC):
    """An in-memory frame seen column by column; one subclass per frame library."""

    kind = "frame"

    def __init__(self, data: Any, positions: np.ndarray | None = None) -> None:
        self.data = data
        self.positions = positions        # rows of the original frame, when this is a subset
        self._cols: dict[str, Any] = {}

    @property
    @abstractmethod
    def names(self) -> list[str]:
        """Declared by each frame kind."""

    @property
    @abstractmethod
    def num_rows(self) -> int:
        """Declared by each frame kind."""

    @abstractmethod
    def _convert(self, name: str) -> pa.Array | pa.ChunkedArray:
        """One column as Arrow."""

    @abstractmethod
    def native_type(self, name: str) -> str:
        """The column's type as its own library names it."""

    def column(self, name: str) -> pa.Array | pa.ChunkedArray:
        col = self._cols.get(name)
        if col is None:
            col = self._convert(name)
            if pa.types.is_dictionary(col.type):
                # Categoricals: the checks compare values, and not every kernel takes dictionaries.
                col = col.cast(col.type.value_type)
            self._cols[name] = col
        return col

    def types(self) -> dict[str, pa.DataType]:
        return {n: self.column(n).type for n in self.names}

    def raw_values(self, name: str) -> list[Any] | None:
        """The Python objects of a column whose values differ in type (pandas' object columns)."""
        return None

    def null_count(self, name: str) -> int:
        return int(self.column(name).null_count)

    def values_at(self, name: str, positions: np.ndarray) -> list[Any]:
        """The Python values of a column at some rows (the unexpected samples)."""
        return list(self.column(name).take(positions).to_pylist())

    def native_op(self, op: str, name: str, kw: dict[str, Any]) -> Any:
        """Unexpected non-null rows computed by the frame library itself (a boolean series of
        its own, see memory.as_numpy), or None to use Arrow."""
        return None

    @abstractmethod
    def take(self, mask: np.ndarray) -> Any:
        """The rows where mask is True, as a frame of the input's kind."""

    @abstractmethod
    def subset(self, mask: np.ndarray) -> Frame:
        """A Frame over the rows where mask is True, remembering their original positions."""

    @abstractmethod
    def with_failed(self, frame: Any, name: str, values: np.ndarray) -> Any:
        """``frame`` with the column ``name`` holding ``values`` (the failed checks per row)."""

    def condition_mask(self, condition: RowCondition, schema: dict[str, str]) -> np.ndarray:
        """Rows inside a row condition (ConditionError when the data cannot answer it)."""
        return arrow_mask(condition.resolve(schema), self.column, self.num_rows)

    def index_labels(self, positions: np.ndarray) -> list[Any]:
        if self.positions is not None:
            return [int(p) for p in self.positions[positions]]
        return [int(p) for p in positions]

    def _positions(self, mask: np.ndarray) -> np.ndarray:
        where = np.flatnonzero(mask)
        return where if self.positions is None else self.positions[where]


class PandasFrame(Frame):
    kind = "pandas"

    def __init__(self, data: Any, positions: np.ndarray | None = None) -> None:
        super().__init__(data, positions)
        self._labels = {str(c): c for c in data.columns}
        self._mixed: set[str] = set()

    @property
    def names(self) -> list[str]:
        return [str(c) for c in self.data.columns]

    @property
    def num_rows(self) -> int:
        return len(self.data)

    def _convert(self, name: str) -> pa.Array | pa.ChunkedArray:
        # Checks name columns by text; a frame may label them with ints or other objects.
        series = self.data[self._labels[name]]
        if series.dtype != object:
            return pa.array(series, from_pandas=True)
        try:
            # Python objects: let Arrow infer the type; NaN and None both become null.
            return pa.array(series.to_numpy(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            # Mixed types (ints and strings, say) are checked as their text, as GE shows them.
            self._mixed.add(name)
            return pa.array([None if v is None or v != v else str(v) for v in series], pa.string())

    def native_type(self, name: str) -> str:
        # GX reports pandas columns by their NumPy scalar type: int64, float64, object_, Timestamp...
        return str(self.data[self._labels[name]].dtype.type.__name__)

    def raw_values(self, name: str) -> list[Any] | None:
        series = self.data[self._labels[name]]
        return list(series.to_numpy()) if series.dtype == object else None

    def types(self) -> dict[str, pa.DataType]:
        # Read types without converting whole columns where pandas can tell us.
        out: dict[str, pa.DataType] = {}
        for name, dtype in zip(self.names, self.data.dtypes, strict=True):
            try:
                out[name] = pa.from_numpy_dtype(dtype) if isinstance(dtype, np.dtype) and dtype.kind != "O" \
                    else self.column(name).type
            except (pa.ArrowNotImplementedError, TypeError):
                out[name] = self.column(name).type
        return out

    def condition_mask(self, condition: RowCondition, schema: dict[str, str]) -> np.ndarray:
        # pandas compares with its own operators; a column of mixed values compares value by value.
        for col in condition.columns:
            if col in schema:
                self.column(col)
        own = {n: ("object" if n in self._mixed else t) for n, t in schema.items()}
        return pandas_mask(condition.resolve(own), self.data)

    def take(self, mask: np.ndarray) -> Any:
        return self.data[mask]

    def subset(self, mask: np.ndarray) -> Frame:
        sub = PandasFrame(self.data[mask], self._positions(mask))
        sub._mixed = self._mixed
        return sub

    def with_failed(self, frame: Any, name: str, values: np.ndarray) -> Any:
        return frame.assign(**{name: values})

    def index_labels(self, positions: np.ndarray) -> list[Any]:
        return list(self.data.index[positions])


class PolarsFrame(Frame):
    kind = "polars"

    @property
    def names(self) -> list[str]:
        return list(self.data.columns)

    @property
    def num_rows(self) -> int:
        return int(self.data.height)

    def _convert(self, name: str) -> pa.Array | pa.ChunkedArray:
        import polars as pl

        # The oldest compat level gives large_string rather than string_view, which
        # every pyarrow.compute kernel supports.
        return self.data.get_column(name).to_arrow(compat_level=pl.CompatLevel.oldest())

    def native_type(self, name: str) -> str:
        return str(self.data.schema[name])

    def null_count(self, name: str) -> int:
        return int(self.data.get_column(name).null_count())

    def types(self) -> dict[str, pa.DataType]:
        # From the schema: converting every column to Arrow just to name its type costs a copy.
        import polars as pl

        old = pl.CompatLevel.oldest()
        return {n: self._cols[n].type if n in self._cols else pl.Series(n, [], dtype=t).to_arrow(compat_level=old).type
                for n, t in self.data.schema.items()}

    def values_at(self, name: str, positions: np.ndarray) -> list[Any]:
        return list(self.data.get_column(name).gather(positions).to_arrow().to_pylist())

    def native_op(self, op: str, name: str, kw: dict[str, Any]) -> Any:
        # Polars' own kernels, multi-threaded and without converting text columns to Arrow.
        import polars as pl

        s = self.data.get_column(name)
        if op in ("in_set", "not_in_set") and kw["value_set"] is not None and \
                (s.dtype == pl.String or s.dtype.is_numeric()):
            values = [v for v in kw["value_set"] if v is not None]
            if not all(isinstance(v, str) == (s.dtype == pl.String) for v in values):
                return None
            hit = s.is_in(pl.Series(values, dtype=s.dtype).implode()).fill_null(False)
            return (~hit & s.is_not_null()) if op == "in_set" else hit
        if op == "between" and s.dtype.is_numeric():
            lo, hi = kw.get("min_value"), kw.get("max_value")
            bad = pl.repeat(False, len(s), eager=True)
            if lo is not None:
                bad = bad | ((s <= lo) if kw.get("strict_min") else (s < lo))
            if hi is not None:
                bad = bad | ((s >= hi) if kw.get("strict_max") else (s > hi))
            return bad.fill_null(False)
        return None

    def take(self, mask: np.ndarray) -> Any:
        import polars as pl

        return self.data.filter(pl.Series(mask))

    def subset(self, mask: np.ndarray) -> Frame:
        return PolarsFrame(self.take(mask), self._positions(mask))

    def with_failed(self, frame: Any, name: str, values: np.ndarray) -> Any:
        import polars as pl

        return frame.with_columns(pl.Series(name, values.tolist(), dtype=pl.String))


class ArrowFrame(Frame):
    kind = "arrow"

    @property
    def names(self) -> list[str]:
        return list(self.data.schema.names)

    @property
    def num_rows(self) -> int:
        return int(self.data.num_rows)

    def _convert(self, name: str) -> pa.Array | pa.ChunkedArray:
        return self.data.column(name)

    def native_type(self, name: str) -> str:
        return str(self.data.schema.field(name).type)

    def take(self, mask: np.ndarray) -> Any:
        return self.data.filter(pa.array(mask))

    def subset(self, mask: np.ndarray) -> Frame:
        return ArrowFrame(self.take(mask), self._positions(mask))

    def with_failed(self, frame: Any, name: str, values: np.ndarray) -> Any:
        return frame.append_column(name, pa.array(values.tolist(), type=pa.string()))


def frame_for(data: Any) -> Frame | None:
    """The adapter for ``data``, or None if it is not an in-memory frame."""
    mod = type(data).__module__
    if mod.startswith("pandas") and hasattr(data, "columns") and hasattr(data, "iloc"):
        return PandasFrame(data)
    if mod.startswith("polars") and type(data).__name__ == "DataFrame":
        return PolarsFrame(data)
    if mod.startswith("polars") and type(data).__name__ == "LazyFrame":
        return PolarsFrame(data.collect())
    if isinstance(data, pa.Table):
        return ArrowFrame(data)
    if isinstance(data, pa.RecordBatch):
        return ArrowFrame(pa.Table.from_batches([data]))
    return None


def canonical_schema(frame: Frame) -> dict[str, str]:
    return {n: arrow_type_name(t) for n, t in frame.types().items()}
