"""The sample data the quality tests count on."""

from __future__ import annotations

import pyarrow as pa


def sample_table() -> pa.Table:
    """Ten rows with nulls, out-of-range values and a duplicate; the tests count on them."""
    return pa.table({
        "id": pa.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], pa.int64()),
        "amount": pa.array([10.0, 20.0, None, 40.0, -5.0, 60.0, 70.0, None, 90.0, 1000.0]),
        "region": pa.array(["North", "South", None, "East", "Mars", "West", "North", "Central",
                            None, "south"]),
        "code": pa.array(["A-1", "B-2", "C-3", None, "x", "D-44", "E-5", "F-6", "G-7", "H-8"]),
        "day": pa.array(["2024-01-01", "2024-01-02", "2024-13-01", None, "2024-01-05",
                         "someday", "2024-01-07", "2024-01-08", "2024-01-09", "2024-01-10"]),
        "a": pa.array([5, 6, 7, 8, 9, 1, 2, 3, 4, 5], pa.int64()),
        "b": pa.array([1, 2, 3, 8, 10, 0, 1, 2, 3, 6], pa.int64()),
        "seq": pa.array([1.0, 2.0, None, 2.0, 3.0, 1.0, 5.0, None, 6.0, 7.0]),
    })
