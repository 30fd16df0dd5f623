"""The scheduler and workers on every store, driven by a fake clock (nothing sleeps)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from headrace.errors import ScheduleError
from headrace.schedule import CronSchedule, Deployment, IntervalSchedule, Scheduler, Webhook, Worker
from headrace.schedule.scheduler import next_wake

from .conftest import NO_SPREAD, T0, FlowFile

MIN = timedelta(minutes=1)


def deploy(flow_file: FlowFile, name: str = "every-10", cron: str = "*/10 * * * *", **options: Any) -> Deployment:
    dep = Deployment(flow_file.load(), name, parameters={"label": name}, schedule=CronSchedule(cron), **options)
    dep.apply(now=T0 - MIN)
    return dep


def runs_of(store, dep: Deployment) -> list[dict[str, Any]]:
    rows = store.list_flow_runs(deployment_id=dep.id, limit=1000)
    return sorted(rows, key=lambda r: r["expected_start"])


def test_runs_are_created_ahead_once_whatever_the_number_of_schedulers(store, flow_file) -> None:
    dep = deploy(flow_file)
    first, second = Scheduler(store, spread=NO_SPREAD), Scheduler(store, spread=NO_SPREAD)
    assert first.tick(T0).created == 2  # 06:00 and 06:10 (lookahead 10 min)
    assert second.tick(T0).created == 0
    assert first.tick(T0 + 30 * MIN).created == 3  # 06:20 .. 06:40
    assert second.tick(T0 + 30 * MIN).created == 0
    slots = [r["expected_start"] for r in runs_of(store, dep)]
    assert slots == [T0 + k * 10 * MIN for k in range(5)]
    assert len({r["idempotency_key"] for r in runs_of(store, dep)}) == 5


def test_a_worker_runs_a_due_slot_with_its_scheduled_time(store, flow_file) -> None:
    deploy(flow_file)
    Scheduler(store, spread=NO_SPREAD).tick(T0)
    worker = Worker(store)
    assert worker.run_due(T0 - MIN) == []  # nothing due yet
    assert worker.run_due(T0 + timedelta(seconds=1)) == ["Completed"]
    assert worker.run_due(T0 + timedelta(seconds=2)) == []  # claimed once
    assert flow_file.lines() == ["every-10 2024-01-01T06:00:00+00:00"]


def test_restart_without_catchup_runs_only_the_latest_missed_slot(store, flow_file) -> None:
    dep = deploy(flow_file)
    Scheduler(store, spread=NO_SPREAD).tick(T0 - MIN)  # plans 06:00 and 06:10, then "crashes"
    later = T0 + timedelta(hours=1, seconds=30)  # back at 07:00:30
    result = Scheduler(store, spread=NO_SPREAD).tick(later)
    assert Worker(store).run_due(later) == ["Completed"]
    runs = runs_of(store, dep)
    by_slot = {r["expected_start"]: r for r in runs}
    assert len(by_slot) == len(runs)  # one run per slot, never two
    missed = [T0 + k * 10 * MIN for k in range(6)]  # 06:00 .. 06:50
    assert all(by_slot[s]["state_name"] == "Cancelled" for s in missed)
    assert all("catchup=False" in by_slot[s]["state_message"] for s in missed)
    assert by_slot[T0 + 60 * MIN]["state_name"] == "Completed"
    assert result.skipped == 6
    assert flow_file.lines() == ["every-10 2024-01-01T07:00:00+00:00"]


def test_restart_with_catchup_runs_every_missed_slot_oldest_first(store, flow_file) -> None:
    dep = deploy(flow_file, catchup=True)
    Scheduler(store, spread=NO_SPREAD).tick(T0 - MIN)
    later = T0 + timedelta(minutes=30, seconds=5)
    Scheduler(store, spread=NO_SPREAD).tick(later)
    states = Worker(store, concurrency=2).run_due(later, limit=10)
    assert states == ["Completed"] * 4
    assert [ln.split()[1][11:16] for ln in flow_file.lines()] == ["06:00", "06:10", "06:20", "06:30"]
    assert all(r["state_name"] in ("Completed", "Scheduled") for r in runs_of(store, dep))


def test_pause_cancels_waiting_runs_and_resume_does_not_catch_up(store, flow_file) -> None:
    dep = deploy(flow_file)
    sched = Scheduler(store, spread=NO_SPREAD)
    sched.tick(T0)
    store.set_deployment_paused(dep.name, True, now=T0 + MIN)
    assert sched.tick(T0 + 30 * MIN).created == 0
    assert Worker(store).run_due(T0 + 30 * MIN) == []
    store.set_deployment_paused(dep.name, False, now=T0 + 45 * MIN)
    sched.tick(T0 + 45 * MIN)
    assert Worker(store).run_due(T0 + 50 * MIN) == ["Completed"]
    states = {r["expected_start"]: r["state_name"] for r in runs_of(store, dep)}
    assert states[T0] == "Cancelled" and states[T0 + 50 * MIN] == "Completed"
    assert T0 + 20 * MIN not in states  # the paused period was not planned


def test_changing_the_schedule_cancels_runs_of_the_old_one(store, flow_file) -> None:
    dep = deploy(flow_file)
    Scheduler(store, spread=NO_SPREAD).tick(T0 - MIN)
    dep.schedule = CronSchedule("5 * * * *")
    dep.apply(now=T0 - MIN)
    Scheduler(store, spread=NO_SPREAD).tick(T0 - MIN)
    waiting = [r for r in runs_of(store, dep) if r["state_name"] == "Scheduled"]
    assert [r["expected_start"] for r in waiting] == [T0 + 5 * MIN]


def test_deployment_concurrency_limit_holds_back_extra_runs(store, flow_file) -> None:
    dep = deploy(flow_file, cron="* * * * *", concurrency_limit=1, catchup=True)
    Scheduler(store, spread=NO_SPREAD).tick(T0 + 3 * MIN)
    worker = Worker(store, concurrency=4)
    claimed = worker.claim(T0 + 3 * MIN)
    assert len(claimed) == 1  # four are due, the limit is one
    assert worker.claim(T0 + 3 * MIN) == []
    assert worker.execute(claimed[0]) == "Completed"
    assert len(worker.claim(T0 + 3 * MIN)) == 1
    assert store.get_deployment(dep.name)["concurrency_limit"] == 1


def test_a_flow_file_that_no_longer_imports_fails_its_run_and_others_go_on(store, flow_file, tmp_path):
    broken = tmp_path / "broken_flows.py"
    broken.write_text(flow_file.path.read_text())
    from headrace.engine import load_flow

    Deployment(load_flow(f"{broken}:ticker"), "broken", schedule=CronSchedule("0 * * * *")).apply(now=T0 - MIN)
    deploy(flow_file, "fine", cron="0 * * * *")
    broken.write_text("import not_a_module_anywhere\n")
    Scheduler(store, spread=NO_SPREAD).tick(T0)
    states = sorted(Worker(store).run_due(T0 + MIN))
    assert states == ["Completed", "Failed"]
    failed = store.list_flow_runs(state="Failed")[0]
    assert "not_a_module_anywhere" in failed["state_message"]
    assert failed["name"].startswith("broken-")


def test_late_runs_alert_once_through_the_deployments_failure_alerts(store, flow_file, http_server):
    dep = deploy(
        flow_file,
        cron="0 * * * *",
        late_after=timedelta(minutes=5),
        on_failure=[Webhook(http_server.url, retries=0, timeout=5)],
    )
    sched = Scheduler(store, spread=NO_SPREAD)
    result = sched.tick(T0)
    assert result.late == 0 and T0 + 5 * MIN in result.late_deadlines
    assert sched.tick(T0 + 4 * MIN).late == 0
    assert sched.tick(T0 + 6 * MIN).late == 1
    assert Scheduler(store, spread=NO_SPREAD).tick(T0 + 7 * MIN).late == 0  # another scheduler: not twice
    sched.drain_alerts(timeout=10)
    assert len(http_server.bodies) == 1
    body = http_server.bodies[0]["json"]
    assert body["event"] == "late" and body["deployment"] == dep.name
    assert "not finished 6m after its scheduled time" in body["text"]


def test_next_wake_is_a_pure_function_of_refills_and_deadlines() -> None:
    sleep = timedelta(seconds=30)
    assert next_wake([T0 + 10 * MIN], [T0 + 2 * MIN, T0 - MIN], T0, sleep) == T0 + sleep
    assert next_wake([T0 + MIN], [T0 + 1_000 * MIN], T0, 10 * MIN) == T0 + MIN
    assert next_wake([], [T0 + 2 * MIN], T0, 10 * MIN) == T0 + 2 * MIN
    assert next_wake([T0 - MIN], [], T0, MIN) == T0  # a refill already due: now
    assert next_wake([T0 + MIN], [], T0, 10 * MIN, min_sleep=2 * MIN) == T0 + 2 * MIN  # batched


def test_tick_says_when_the_next_slot_enters_the_window(store, flow_file) -> None:
    deploy(flow_file, cron="0 * * * *")
    result = Scheduler(store, spread=NO_SPREAD, lookahead=10 * MIN, max_sleep=timedelta(hours=2)).tick(T0)
    assert result.next_wake == T0 + 50 * MIN  # 07:00 is planned at 06:50


def test_interval_deployments_and_bad_deployments(store, flow_file) -> None:
    dep = Deployment(
        flow_file.load(), "quarter-hourly", schedule=IntervalSchedule(timedelta(minutes=15), anchor_date=T0)
    )
    dep.apply(now=T0 - MIN)
    assert Scheduler(store, spread=NO_SPREAD).tick(T0).created == 1  # 06:00; 06:15 is past the lookahead
    with pytest.raises(ScheduleError, match="schedule must be"):
        Deployment(flow_file.load(), "bad", schedule="0 6 * * *")  # type: ignore[arg-type]
    with pytest.raises(ScheduleError, match="is not an alert"):
        Deployment(flow_file.load(), "bad", on_failure=[print])  # type: ignore[list-item]
    with pytest.raises(ScheduleError, match="no deployment named 'nope'"):
        store.get_deployment("nope")


def test_deployments_sharing_a_cron_plan_in_different_ticks_yet_ahead_of_time(store, flow_file) -> None:
    flow = flow_file.load()
    for i in range(20):
        Deployment(flow, f"d{i}", schedule=CronSchedule("* * * * *")).apply(now=T0 - MIN)
    sched = Scheduler(store, lookahead=10 * MIN)  # spread: half the lookahead by default
    sched.tick(T0)
    created, now = [], T0 + timedelta(seconds=5)
    while now < T0 + 5 * MIN:
        result = sched.tick(now)
        created.append(result.created)
        assert result.next_wake is not None and result.next_wake <= now + timedelta(seconds=5)
        now = result.next_wake if result.next_wake > now else now + timedelta(seconds=1)
    assert max(created) < 20  # no tick had to create a run for every deployment at once
    later = [r for r in store.list_flow_runs(limit=1000) if r["created_at"] > T0]
    assert len(later) >= 20 * 4
    for row in later:  # after the first window, each slot was planned at least 5 min ahead
        assert row["expected_start"] - row["created_at"] >= 5 * MIN - timedelta(seconds=5)


def test_a_worker_starts_a_burst_of_due_runs_in_one_transaction(store, flow_file) -> None:
    from sqlalchemy import event

    dep = deploy(flow_file, cron="* * * * *", catchup=True)
    Scheduler(store, spread=NO_SPREAD).tick(T0 + 5 * MIN)  # 06:00 .. 06:05 are due, six runs
    worker = Worker(store, name="w1", concurrency=4)
    commits: list[object] = []

    def committed(conn: object) -> None:
        commits.append(conn)

    event.listen(store.engine, "commit", committed)
    try:
        started = worker.start(T0 + 5 * MIN, 4)
    finally:
        event.remove(store.engine, "commit", committed)
    assert len(commits) == 1 and len(started) == 4
    assert [r["expected_start"] for r in started] == [T0 + k * MIN for k in range(4)]  # oldest slots first
    for run in started:
        stored = store.get_flow_run(run["id"])
        assert (stored["state_name"], stored["started_at"], stored["worker"]) == ("Running", T0 + 5 * MIN, "w1")
        history = [(c["from_type"], c["to_type"]) for c in store.get_state_changes(run["id"])]
        assert history == [(None, "SCHEDULED"), ("SCHEDULED", "PENDING"), ("PENDING", "RUNNING")]
    assert sorted(worker.execute(run) for run in started) == ["Completed"] * 4
    done = store.get_flow_run(started[0]["id"])
    assert done["started_at"] == T0 + 5 * MIN and done["run_count"] == 1
    assert [c["to_type"] for c in store.get_state_changes(done["id"])][-2:] == ["RUNNING", "COMPLETED"]
    waiting = [r for r in runs_of(store, dep) if r["state_name"] == "Scheduled"]
    assert [r["expected_start"] for r in waiting][:2] == [T0 + 4 * MIN, T0 + 5 * MIN]  # left for others


def test_a_started_run_whose_flow_no_longer_imports_fails(store, flow_file, tmp_path) -> None:
    from headrace.engine import load_flow

    broken = tmp_path / "gone_flows.py"
    broken.write_text(flow_file.path.read_text())
    Deployment(load_flow(f"{broken}:ticker"), "gone", schedule=CronSchedule("0 * * * *")).apply(now=T0 - MIN)
    broken.write_text("import not_a_module_anywhere\n")
    Scheduler(store, spread=NO_SPREAD).tick(T0)
    worker = Worker(store)
    (run,) = worker.start(T0 + MIN, 4)
    assert worker.execute(run) == "Failed"
    failed = store.get_flow_run(run["id"])
    assert failed["state_name"] == "Failed" and "not_a_module_anywhere" in failed["state_message"]
