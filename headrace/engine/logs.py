"""Capturing log lines made inside a run into the run store.

One handler on the root logger records every line emitted while a flow or task
run is current (``get_run_logger()`` and plain ``logging`` calls alike). It
writes records; showing them on a terminal is the CLI's business.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from typing import Any

from headrace.engine.context import flow_run_var, task_run_var
from headrace.secrets import redact

RUN_LOGGER = "headrace.runs"


class RunLogCapture(logging.Handler):
    """Sends records emitted inside a run to that run's store."""

    def emit(self, record: logging.LogRecord) -> None:
        task = task_run_var.get()
        flow = flow_run_var.get()
        if task is None and flow is None:
            return
        store = task.store if task else flow.store  # type: ignore[union-attr]
        try:
            message = redact(record.getMessage())
            if record.exc_info and record.exc_info[1] is not None:
                message += "\n" + redact(self.formatException(record.exc_info))
        except Exception:
            message = str(record.msg)
        store.writer.log({
            "flow_run_id": task.flow_run_id if task else flow.flow_run_id,  # type: ignore[union-attr]
            "task_run_id": task.task_run_id if task else None,
            "at": datetime.fromtimestamp(record.created, UTC),
            "level": record.levelno,
            "logger": record.name,
            "message": message,
        })

    def formatException(self, ei: Any) -> str:  # noqa: N802 - logging's name
        return logging.Formatter().formatException(ei)


_handler: RunLogCapture | None = None


def install_capture() -> None:
    """Attach the capture handler once; let INFO lines through an untouched root logger."""
    global _handler
    if _handler is not None:
        return
    _handler = RunLogCapture(level=logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(_handler)
    level = os.environ.get("HEADRACE_LOG_LEVEL", "INFO").upper()
    if root.level == logging.WARNING:  # Python's default: the user did not configure it
        root.setLevel(level)
    # The last-resort handler would print these INFO lines on stderr; keep stderr for warnings.
    if logging.lastResort is not None:
        logging.lastResort.setLevel(logging.WARNING)
    logging.getLogger(RUN_LOGGER).setLevel(level)


class RunLoggerAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger whose lines carry the run they belong to."""

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        """Format and redact here, so no handler anywhere sees a secret this logger was given."""
        if self.isEnabledFor(level):
            text = str(msg) % args if args else str(msg)
            self.logger.log(level, "%s", redact(text), **kwargs)


def get_run_logger(name: str | None = None) -> logging.LoggerAdapter:  # type: ignore[type-arg]
    """The logger for the current run; its lines are stored with the run.

    Outside a run it still works and logs to ``headrace.runs`` like any logger.
    """
    install_capture()
    task = task_run_var.get()
    flow = flow_run_var.get()
    logger = logging.getLogger(f"{RUN_LOGGER}.{name}" if name else RUN_LOGGER)
    extra = {"flow_run_id": flow.flow_run_id if flow else None,
             "task_run_id": task.task_run_id if task else None,
             "task_name": task.task_name if task else None}
    return RunLoggerAdapter(logger, extra)
