"""Run logs: the lines a run leaves in the store, without touching the logging configuration.

headrace attaches no handler and sets no level here (only the CLI does, to show
lines on a terminal). Two ways a line reaches the run's store:

- ``get_run_logger()``: the run logger stores each line of level
  ``HEADRACE_LOG_LEVEL`` (default INFO) and above itself, redacted, then hands
  it to ordinary logging (logger ``headrace.runs``) for whatever display the
  application configured.
- a plain ``logging`` call made inside a run is stored when logging creates its
  record, that is at the levels the application's logging configuration enables
  (Python's default: WARNING and above; the CLI enables INFO). A record factory,
  installed once and chained to the one before it, does this; outside a run it
  only calls the previous factory. Inside a run it also redacts the record's
  message as it is created, so no handler anywhere sees a secret.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from headrace.config import load_settings
from headrace.engine.context import FlowRunContext, TaskRunContext, flow_run_var, task_run_var
from headrace.secrets import redact

RUN_LOGGER = "headrace.runs"

_install_lock = threading.Lock()
_installed = False
_passing = threading.local()  # set while the run logger hands its (already stored) line on
# Where a body runs for another process (headrace.engine.snapshot): that process's run-log level.
_run_log_level: ContextVar[int | None] = ContextVar("headrace_run_log_level", default=None)


def _where() -> tuple[FlowRunContext | None, TaskRunContext | None]:
    return flow_run_var.get(), task_run_var.get()


def store_line(flow: FlowRunContext | None, task: TaskRunContext | None, level: int, logger: str,
               message: str, created: float | None = None) -> None:
    """Write one (already redacted) log line to the run's store; nothing outside a run."""
    if task is None and flow is None:
        return
    store = task.store if task is not None else flow.store  # type: ignore[union-attr]
    store.writer.log({
        "flow_run_id": task.flow_run_id if task is not None else flow.flow_run_id,  # type: ignore[union-attr]
        "task_run_id": task.task_run_id if task is not None else None,
        "at": datetime.fromtimestamp(created, UTC) if created is not None else datetime.now(UTC),
        "level": level,
        "logger": logger,
        "message": message,
    })


def capture_record(record: logging.LogRecord) -> None:
    """Redact a record made inside a run and store it with the run (the record factory's work)."""
    flow, task = _where()
    if flow is None and task is None:
        return
    passing = getattr(_passing, "on", False)  # the run logger stored and redacted this line itself
    try:
        text = record.getMessage()
    except Exception:  # a bad format call: logging reports it when a handler formats the record
        text = str(record.msg)
    else:
        clean = text if passing else redact(text)
        if clean != text:  # untouched otherwise: handlers keep the message template and its args
            record.msg, record.args, text = clean, None, clean
    if record.exc_info and record.exc_info[1] is not None:
        record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
        text += "\n" + record.exc_text
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    if not passing:
        store_line(flow, task, record.levelno, record.name, text, record.created)


def install_capture() -> None:
    """Install (once) the record factory that stores plain ``logging`` lines made inside a run."""
    global _installed
    if _installed:
        return
    with _install_lock:
        if _installed:
            return
        previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

        def run_record_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            if flow_run_var.get() is not None or task_run_var.get() is not None:
                capture_record(record)
            return record

        logging.setLogRecordFactory(run_record_factory)
        _installed = True


def _store_level() -> int:
    given = _run_log_level.get()
    if given is not None:
        return given
    level = logging.getLevelName(load_settings().log_level)
    return level if isinstance(level, int) else logging.INFO


@dataclass(frozen=True)
class LogLevels:
    """A process's logging levels as plain data: its explicitly set logger levels (``""`` is the
    root) and its run-log level. A body run in another process (``headrace.engine.snapshot``)
    takes them along, so it creates the records this process would have created."""

    loggers: tuple[tuple[str, int], ...] = ()
    run_level: int = logging.INFO


def log_levels() -> LogLevels:
    """This process's ``LogLevels``."""
    loggers = [(name, logger.level) for name, logger in list(logging.root.manager.loggerDict.items())
               if isinstance(logger, logging.Logger) and logger.level != logging.NOTSET]
    return LogLevels((("", logging.root.level), *sorted(loggers)), _store_level())


_lowered_lock = threading.Lock()
_lowered_depth = 0
_lowered_saved: dict[str, int] = {}


@contextmanager
def levels_of(levels: LogLevels) -> Iterator[None]:
    """Run a body for another process at (at least) that process's ``levels``: what the body
    logs is created and collected, and that process decides what it keeps when it replays it.

    Loggers are lowered, never raised, and set back when the last such body here ends.
    """
    global _lowered_depth
    token = _run_log_level.set(levels.run_level)
    with _lowered_lock:
        _lowered_depth += 1
        for name, level in levels.loggers:
            logger = logging.getLogger(name or None)
            if level < logger.getEffectiveLevel():
                _lowered_saved.setdefault(name, logger.level)
                logger.setLevel(level)
    try:
        yield
    finally:
        _run_log_level.reset(token)
        with _lowered_lock:
            _lowered_depth -= 1
            if not _lowered_depth:
                for name, level in _lowered_saved.items():
                    logging.getLogger(name or None).setLevel(level)
                _lowered_saved.clear()


def replay_line(created: float, level: int, name: str, message: str) -> None:
    """A line a body logged in another process, stored and shown here as if logged here, once.

    Run-logger lines are stored at this process's run-log level; plain lines when this process's
    logging enables them. Either is shown when ``name``'s logger here enables its level. The
    text is redacted again with the secrets this process knows.
    """
    logger = logging.getLogger(name)
    run_line = name == RUN_LOGGER or name.startswith(RUN_LOGGER + ".")
    shown = logger.isEnabledFor(level)
    if not (shown or run_line):
        return
    text = redact(message)
    if (level >= _store_level()) if run_line else shown:
        store_line(*_where(), level, name, text, created)
    if shown:
        _passing.on = True  # stored above: the record factory must not store it again
        try:
            record = logger.makeRecord(name, level, "(task process)", 0, "%s", (text,), None)
        finally:
            _passing.on = False
        record.created, record.msecs = created, (created - int(created)) * 1000
        logger.handle(record)


class RunLoggerAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger whose lines are stored with the run they belong to, then logged as usual."""

    def __init__(self, logger: logging.Logger, extra: dict[str, Any], store_level: int) -> None:
        super().__init__(logger, extra)
        self.store_level = store_level

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - logging's name
        return level >= self.store_level or self.logger.isEnabledFor(level)

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        """Format and redact here, so no handler anywhere sees a secret this logger was given."""
        stored = level >= self.store_level
        shown = self.logger.isEnabledFor(level)
        if not (stored or shown):
            return
        text = redact(str(msg) % args if args else str(msg))
        if stored:
            exc = _exception_text(kwargs.get("exc_info"))
            store_line(*_where(), level, self.logger.name, text + ("\n" + exc if exc else ""))
        if shown:
            shown_msg, shown_kwargs = self.process(text, kwargs)
            _passing.on = True
            try:
                self.logger.log(level, "%s", shown_msg, **shown_kwargs)
            finally:
                _passing.on = False


def _exception_text(exc_info: Any) -> str:
    if not exc_info:
        return ""
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    elif not isinstance(exc_info, tuple):
        import sys

        exc_info = sys.exc_info()
    if exc_info[1] is None:
        return ""
    return redact("".join(traceback.format_exception(*exc_info)).rstrip("\n"))


def get_run_logger(name: str | None = None) -> logging.LoggerAdapter:  # type: ignore[type-arg]
    """The logger for the current run; its lines (``HEADRACE_LOG_LEVEL`` and above) are stored with the run.

    Outside a run it still works and logs to ``headrace.runs`` like any logger.
    """
    install_capture()
    flow, task = _where()
    logger = logging.getLogger(f"{RUN_LOGGER}.{name}" if name else RUN_LOGGER)
    extra = {"flow_run_id": flow.flow_run_id if flow else None,
             "task_run_id": task.task_run_id if task else None,
             "task_name": task.task_name if task else None}
    return RunLoggerAdapter(logger, extra, _store_level())
