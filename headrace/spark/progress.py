"""The live counters of a lake job: a Rich display in the terminal and run metrics for the web page.

An engine calls ``start(files, total_bytes)`` once, then ``update(...)`` with the running totals
as often as it likes (after each file, say); metrics are written at most every
``METRIC_EVERY`` seconds while the job runs and once more at the end, so the run page and the
lake page (``/lake``) follow the job live.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any

METRIC_EVERY = 1.0
COUNTERS = ("files_read", "bytes_read", "rows_read", "good_rows", "bad_rows", "bad_bytes", "bytes_written")


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


class LakeProgress:
    """Running totals of one lake job run (``counters``), shown and recorded as they change."""

    def __init__(self, name: str, *, show: bool | None = None, now: Any = time.monotonic) -> None:
        self.name = name
        self.show = sys.stderr.isatty() if show is None else show
        self.now = now
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.total_files = 0
        self.total_bytes = 0
        self._last_metric = float("-inf")
        self._bar: Any = None
        self._task: Any = None

    @property
    def backlog_bytes(self) -> int:
        return max(self.total_bytes - self.counters["bytes_read"], 0)

    def __enter__(self) -> LakeProgress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._metrics(force=True)
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def start(self, files: int, total_bytes: int) -> None:
        self.total_files, self.total_bytes = files, total_bytes
        if self.show:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                 TextColumn("{task.fields[line]}"), TimeElapsedColumn(),
                                 console=Console(stderr=True), transient=False)
            self._task = self._bar.add_task(self.name, total=max(total_bytes, 1), line=self._line())
            self._bar.start()
        self._metrics(force=True)

    def update(self, **counters: int) -> None:
        """Set running totals (any of ``COUNTERS``); shown now, recorded at most every second."""
        for key, value in counters.items():
            if key not in self.counters:
                raise KeyError(f"unknown lake counter {key!r}; one of {', '.join(COUNTERS)}")
            self.counters[key] = int(value)
        if self._bar is not None:
            self._bar.update(self._task, completed=self.counters["bytes_read"], line=self._line())
        self._metrics()

    def done(self, result: Any) -> None:
        """The final counters, from the engine's result."""
        self.update(**{k: getattr(result, k) for k in COUNTERS})
        self._metrics(force=True)

    def _line(self) -> str:
        c = self.counters
        return (f"files {c['files_read']}/{self.total_files} · read {_size(c['bytes_read'])} · backlog "
                f"{_size(self.backlog_bytes)} · good {c['good_rows']:,} · bad {c['bad_rows']:,} "
                f"({_size(c['bad_bytes'])}) · written {_size(c['bytes_written'])}")

    def _metrics(self, force: bool = False) -> None:
        t = self.now()
        if not force and t - self._last_metric < METRIC_EVERY:
            return
        self._last_metric = t
        from headrace.engine.context import log_metric

        for key, value in self.counters.items():
            log_metric("lake_" + key, value)
        log_metric("lake_backlog_bytes", self.backlog_bytes)
