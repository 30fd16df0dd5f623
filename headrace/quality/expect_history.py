"""Checks whose bounds are learned from the profiles of the suite's past successful runs.

Each passes, with a "too little history" note, until ``min_history`` runs exist.
"""

from __future__ import annotations

from headrace.quality.expectation import expectation


def _need_window(window: int, sigma: float, min_history: int) -> None:
    if not isinstance(window, int) or window < 2:
        raise ValueError(f"window must be an int >= 2, not {window!r}")
    if not isinstance(sigma, int | float) or sigma <= 0:
        raise ValueError(f"sigma must be a positive number, not {sigma!r}")
    if not isinstance(min_history, int) or min_history < 2:
        raise ValueError(f"min_history must be an int >= 2, not {min_history!r}")


@expectation("history", "row_count")
def table_row_count_to_be_within_history(window: int = 30, sigma: float = 3.0,
                                         min_history: int = 3) -> None:
    """Row count within mean ± sigma·stdev of the last ``window`` successful runs."""
    _need_window(window, sigma, min_history)


@expectation("history", "mean", needs="numeric")
def column_mean_to_be_within_history(column: str, window: int = 30, sigma: float = 3.0,
                                     min_history: int = 3) -> None:
    """Column mean within mean ± sigma·stdev of the last ``window`` successful runs."""
    _need_window(window, sigma, min_history)


@expectation("history", "null_share")
def column_null_share_to_be_within_history(column: str, window: int = 30, sigma: float = 3.0,
                                           min_history: int = 3) -> None:
    """Share of nulls within mean ± sigma·stdev of the last ``window`` successful runs."""
    _need_window(window, sigma, min_history)


@expectation("history", "distinct_count")
def column_distinct_count_to_be_within_history(column: str, window: int = 30, sigma: float = 3.0,
                                               min_history: int = 3) -> None:
    """Distinct count within mean ± sigma·stdev of the last ``window`` successful runs."""
    _need_window(window, sigma, min_history)
