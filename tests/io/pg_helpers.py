"""PostgreSQL helpers shared by the io tests: a load that stalls once, and killing its backend."""

from __future__ import annotations

import time

from sqlalchemy import text


def make_slow_once(admin: object, schema: str, table: str = "sales") -> None:
    """The first load into ``table`` sleeps inside its transaction until someone kills it."""
    with admin.connect() as c:  # type: ignore[attr-defined]
        c.execute(text("CREATE TABLE kill_flag (done boolean)"))
        c.execute(text(f"""CREATE FUNCTION slow_once() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF NOT EXISTS (SELECT 1 FROM kill_flag) THEN
                PERFORM set_config('application_name', 'victim-{schema}', false);
                PERFORM set_config('client_connection_check_interval', '100ms', false);
                PERFORM pg_sleep(30);
              END IF;
              RETURN NULL;
            END $$"""))
        c.execute(text(f"CREATE TRIGGER slow AFTER INSERT ON {table} FOR EACH STATEMENT "
                       "EXECUTE FUNCTION slow_once()"))


def victim_pid(admin: object, schema: str, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    with admin.connect() as c:  # type: ignore[attr-defined]
        while time.monotonic() < deadline:
            pid = c.execute(text("SELECT pid FROM pg_stat_activity WHERE application_name = :a "
                                 "AND wait_event = 'PgSleep'"), {"a": f"victim-{schema}"}).scalar()
            if pid:
                return int(pid)
            time.sleep(0.02)
    raise AssertionError("the load never reached the slow trigger")


def kill_backend(admin: object, pid: int) -> None:
    with admin.connect() as c:  # type: ignore[attr-defined]
        c.execute(text("INSERT INTO kill_flag VALUES (true)"))
        c.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
