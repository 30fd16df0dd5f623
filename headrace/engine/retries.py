"""Retry delays: a number, a list per attempt, or exponential backoff; with jitter."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

RetryDelay = float | int | Sequence[float] | Callable[[int], Sequence[float]] | None


def exponential_backoff(backoff_factor: float) -> Callable[[int], list[float]]:
    """Delays of ``backoff_factor * 2**n`` seconds for retries n = 0, 1, 2, ...

    >>> exponential_backoff(10)(3)
    [10, 20, 40]
    """
    if backoff_factor < 0:
        raise ValueError("backoff_factor must be >= 0")

    def delays(retries: int) -> list[float]:
        return [backoff_factor * 2**n for n in range(retries)]

    return delays


def retry_delays(retries: int, delay: RetryDelay) -> list[float]:
    """The delay before each retry (index 0 is the wait before the second attempt)."""
    if retries <= 0:
        return []
    if delay is None:
        return [0.0] * retries
    if callable(delay):
        out = [float(d) for d in delay(retries)]
    elif isinstance(delay, (int, float)):
        out = [float(delay)] * retries
    else:
        out = [float(d) for d in delay]
        if not out:
            out = [0.0]
    # A list shorter than the retries repeats its last delay, as peers do.
    out = out[:retries] + [out[-1]] * max(0, retries - len(out))
    if any(d < 0 for d in out):
        raise ValueError("retry delays must be >= 0 seconds")
    return out


def with_jitter(delay: float, jitter_factor: float | None, rng: random.Random | None = None) -> float:
    """Spread ``delay`` by up to +``jitter_factor`` of itself so retries don't stampede."""
    if not jitter_factor or delay <= 0:
        return delay
    r = (rng or random).random()
    return delay * (1 + jitter_factor * r)
