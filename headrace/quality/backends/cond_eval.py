"""A resolved row condition evaluated on in-memory columns: Arrow arrays or pandas Series.

Both return a NumPy mask of the rows inside the condition. pandas columns are compared
with pandas' own operators (so an object column of mixed values behaves as pandas
makes it); Arrow columns with pyarrow.compute. A comparison pandas refuses (ordering
text against numbers) is a ConditionError, reported as the check's failure.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from headrace.quality.backends.arrow_ops import null_mask, to_mask
from headrace.quality.conditions import Compare, ConditionError, Const, Member
from headrace.quality.parse import BoolOp, Col, IsNull, Not

ARROW_OPS = {"==": pc.equal, "!=": pc.not_equal, "<": pc.less, "<=": pc.less_equal,
             ">": pc.greater, ">=": pc.greater_equal}
PY_OPS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
          ">": operator.gt, ">=": operator.ge}


def _combine(node: Any, n: int, leaf: Callable[[Any], np.ndarray]) -> np.ndarray:
    if isinstance(node, Const):
        return np.full(n, node.value, dtype=bool)
    if isinstance(node, BoolOp):
        parts = [_combine(p, n, leaf) for p in node.parts]
        return (np.logical_and if node.op == "and" else np.logical_or).reduce(parts)
    if isinstance(node, Not):
        return ~_combine(node.part, n, leaf)
    return leaf(node)


def arrow_mask(node: Any, column: Callable[[str], Any], n: int) -> np.ndarray:
    """Rows of Arrow columns (``column(name)``) inside a resolved condition."""
    def leaf(x: Any) -> np.ndarray:
        if isinstance(x, IsNull):
            nulls = null_mask(column(x.col.name))
            return ~nulls if x.negate else nulls
        if isinstance(x, Member):
            return _arrow_member(x, column(x.column))
        return _arrow_compare(x, column)
    return _combine(node, n, leaf)


def _numeric(col: Any) -> Any:
    return col.cast(pa.int8()) if pa.types.is_boolean(col.type) else col


def _arrow_compare(x: Compare, column: Callable[[str], Any]) -> np.ndarray:
    col = column(x.column)
    if isinstance(x.other, Col):
        other = column(x.other.name)
        if pa.types.is_boolean(col.type) != pa.types.is_boolean(other.type):
            col, other = _numeric(col), _numeric(other)
        rhs: Any = other
    elif pa.types.is_boolean(col.type) and not isinstance(x.other, bool):
        col, rhs = col.cast(pa.int8()), x.other
    elif isinstance(x.other, bool) and not pa.types.is_boolean(col.type):
        rhs = int(x.other)
    else:
        rhs = pa.scalar(x.other, type=col.type) if pa.types.is_temporal(col.type) else x.other
    try:
        result = ARROW_OPS[x.op](col, rhs)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ConditionError(f"cannot compare column {x.column!r} ({col.type}) with {x.other!r}: {exc}") from None
    return to_mask(pc.fill_null(result, x.when_null))


def _arrow_member(x: Member, col: Any) -> np.ndarray:
    nulls = null_mask(col)
    if pa.types.is_null(col.type) or not x.values:
        inside = np.zeros(len(col), dtype=bool)
    else:
        try:
            values = pa.array(list(x.values)).cast(col.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            values = pa.array(list(x.values))
        inside = np.array(to_mask(pc.is_in(col, value_set=values)))
    if x.negate:
        inside = ~inside
    inside[nulls] = x.when_null
    return inside


def pandas_mask(node: Any, frame: Any) -> np.ndarray:
    """Rows of a pandas DataFrame inside a resolved condition, by pandas' own comparisons."""
    labels = {str(c): c for c in frame.columns}

    def series(name: str) -> Any:
        return frame[labels[name]]

    def leaf(x: Any) -> np.ndarray:
        if isinstance(x, IsNull):
            nulls = series(x.col.name).isna().to_numpy(dtype=bool)
            return ~nulls if x.negate else nulls
        s = series(x.column)
        nulls = s.isna().to_numpy(dtype=bool)
        if isinstance(x, Member):
            inside = np.array(s.isin(list(x.values)).to_numpy(dtype=bool))
            inside = ~inside if x.negate else inside
        else:
            other = series(x.other.name) if isinstance(x.other, Col) else x.other
            if isinstance(x.other, Col):
                nulls = nulls | other.isna().to_numpy(dtype=bool)
            try:
                inside = np.array(PY_OPS[x.op](s, other).fillna(False), dtype=bool)
            except TypeError as exc:
                raise ConditionError(f"cannot compare column {x.column!r} with {x.other!r}: {exc}") from None
        inside[nulls] = x.when_null
        return inside
    return _combine(node, len(frame), leaf)
