"""Run logs without touching the application's logging: no handler, no level, secrets redacted at creation."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from headrace import ProcessPoolTaskRunner, flow, get_run_logger, task
from headrace.secrets import Secret
from headrace.store import get_store


class Collect(logging.Handler):
    """The application's own handler: what it formats is what its users would see."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        return "\n".join(self.format(r) for r in self.records)


@pytest.fixture
def app_logging() -> Iterator[Collect]:
    """The application configured logging: a handler on the root logger at INFO."""
    root = logging.getLogger()
    handler, level = Collect(), root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


def _config() -> tuple[object, ...]:
    root = logging.getLogger()
    named = [logging.getLogger(n) for n in ("headrace", "headrace.runs", "headrace.engine", "app")]
    return (root.level, tuple(root.handlers), logging.lastResort and logging.lastResort.level,
            tuple((lg.level, tuple(lg.handlers), lg.propagate) for lg in named))


def test_running_flows_attaches_no_handler_and_changes_no_level() -> None:
    before = _config()

    @task
    def work() -> None:
        get_run_logger().info("from the task")
        logging.getLogger("app").warning("plain warning")

    @flow
    def pipeline() -> None:
        get_run_logger().info("from the flow")
        work()

    state = pipeline(return_state=True)
    assert _config() == before
    messages = [line["message"] for line in get_store().get_logs(str(state.run_id))]
    assert {"from the task", "from the flow", "plain warning"} <= set(messages)


def test_a_secret_in_a_plain_logging_call_inside_a_run_never_reaches_a_handler(app_logging: Collect) -> None:
    app = logging.getLogger("app")

    @task
    def connect(password: str) -> None:
        app.info("connecting to postgresql://etl:%s@db/dwh", password)
        app.info("token=%s used", password)
        try:
            raise ConnectionError(f"login with {password} refused")
        except ConnectionError:
            app.exception("login failed")

    @flow
    def pipeline(password: Secret[str]) -> None:
        connect(password)
        app.warning("the password was %s", password)

    pipeline(password="hunter2-canary")
    shown = app_logging.text()
    run = get_store().list_flow_runs(limit=1)[0]
    stored = "\n".join(line["message"] for line in get_store().get_logs(run["id"]))
    for text in (shown, stored):
        assert "hunter2-canary" not in text
        assert "etl:***@db" in text and "token=*** used" in text and "login failed" in text
        assert "ConnectionError: login with *** refused" in text


def test_a_record_without_secrets_keeps_its_template_and_one_made_outside_a_run_is_untouched(
        app_logging: Collect) -> None:
    app = logging.getLogger("app")

    @flow
    def pipeline() -> None:
        app.info("loaded %d rows", 7)

    pipeline()
    app.info("outside at postgresql://u:pw-outside@h/db")
    inside, outside = [r for r in app_logging.records if r.name == "app"]
    assert (inside.msg, inside.args) == ("loaded %d rows", (7,))  # grouping by template still works
    assert outside.getMessage().endswith("u:pw-outside@h/db")  # outside a run headrace changes nothing
    messages = [line["message"] for line in get_store().get_logs(get_store().list_flow_runs(limit=1)[0]["id"])]
    assert messages == ["loaded 7 rows"]


def test_run_logger_lines_are_stored_once_at_the_run_log_level(app_logging: Collect,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    @flow
    def pipeline() -> None:
        log = get_run_logger()
        log.debug("debug line")
        log.info("info line")

    first = pipeline(return_state=True)
    monkeypatch.setenv("HEADRACE_LOG_LEVEL", "DEBUG")
    second = pipeline(return_state=True)
    stored = [[line["message"] for line in get_store().get_logs(str(s.run_id))] for s in (first, second)]
    assert stored == [["info line"], ["debug line", "info line"]]  # never twice although it propagates
    shown = [r.getMessage() for r in app_logging.records if r.name == "headrace.runs"]
    assert shown == ["info line", "info line"]  # the application's level (INFO) decides what it shows


def test_run_logger_lines_are_stored_when_logging_is_not_configured() -> None:
    root = logging.getLogger()
    assert root.level == logging.WARNING and not root.isEnabledFor(logging.INFO)

    @flow
    def pipeline() -> None:
        get_run_logger().info("stored although nothing shows INFO")

    state = pipeline(return_state=True)
    assert [line["message"] for line in get_store().get_logs(str(state.run_id))] == [
        "stored although nothing shows INFO"]


def test_a_record_factory_of_the_application_keeps_working() -> None:
    before = logging.getLogRecordFactory()

    def tagging(*args: object, **kwargs: object) -> logging.LogRecord:
        record = before(*args, **kwargs)
        record.tagged = True
        return record

    seen: list[logging.LogRecord] = []
    handler = Collect()
    handler.emit = seen.append  # type: ignore[method-assign]
    logging.getLogger("app").addHandler(handler)
    logging.setLogRecordFactory(tagging)
    try:
        @flow
        def pipeline() -> None:
            logging.getLogger("app").warning("token=abc123456 seen")

        state = pipeline(return_state=True)
    finally:
        logging.setLogRecordFactory(before)
        logging.getLogger("app").removeHandler(handler)
    assert seen[0].tagged and seen[0].getMessage() == "token=*** seen"  # type: ignore[attr-defined]
    assert [line["message"] for line in get_store().get_logs(str(state.run_id))] == ["token=*** seen"]


FLOW = textwrap.dedent("""
    import logging
    from headrace import flow, get_run_logger

    @flow(name="talky")
    def talky() -> None:
        get_run_logger().info("run logger line")
        logging.getLogger("app").info("plain info line")
""")


def test_the_cli_shows_run_lines_and_stores_plain_info_lines(tmp_path: Path) -> None:
    path = tmp_path / "talky.py"
    path.write_text(FLOW)
    env = {**os.environ, "COLUMNS": "200"}
    main = "import sys; from headrace.cli import main; sys.exit(main())"
    done = subprocess.run([sys.executable, "-c", main, "run", f"{path}:talky"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "run logger line" in done.stderr and "plain info line" in done.stderr
    run = get_store().list_flow_runs(limit=1)[0]
    assert [line["message"] for line in get_store().get_logs(run["id"])] == ["run logger line", "plain info line"]


@task
def talk_in_a_process(password: str) -> int:
    get_run_logger().info("run logger line with %s", password)
    app = logging.getLogger("app.child")
    app.info("plain info line postgresql://etl:%s@db/dwh", password)
    app.debug("debug line the application does not enable")
    logging.getLogger("app.quiet").warning("warning of a logger the application silenced")
    return os.getpid()


def test_a_process_task_logs_are_stored_with_its_task_run_once_and_redacted(app_logging: Collect) -> None:
    quiet = logging.getLogger("app.quiet")
    quiet.setLevel(logging.ERROR)

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=1))
    def pipeline(password: Secret[str]) -> int:
        return talk_in_a_process.submit(password).result()  # type: ignore[no-any-return]

    try:
        state = pipeline(password="s3cr3t-process-canary", return_state=True)
    finally:
        quiet.setLevel(logging.NOTSET)
    assert state.is_completed(), state.message
    assert state.result() != os.getpid()  # the body ran in a task process
    store = get_store()
    task_run = next(t for t in store.list_task_runs(str(state.run_id)) if t["task_name"] == "talk_in_a_process")
    stored = [(line["task_run_id"], line["logger"], line["message"]) for line in store.get_logs(str(state.run_id))]
    # The child process does not know the flow's Secret: the flow's process redacts again.
    assert stored == [(task_run["id"], "headrace.runs", "run logger line with ***"),
                      (task_run["id"], "app.child", "plain info line postgresql://etl:***@db/dwh")]
    shown = [(r.name, r.getMessage()) for r in app_logging.records if r.name != "headrace.engine"]
    assert shown == [("headrace.runs", "run logger line with ***"),
                     ("app.child", "plain info line postgresql://etl:***@db/dwh")]
    assert "s3cr3t-process-canary" not in app_logging.text()
