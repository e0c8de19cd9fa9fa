"""Claims, leases and skips on both backends, without a scheduler process: one occurrence is
claimed once, a live owner keeps its run, a gone one loses it once the lease has expired,
occurrences that are not sessions or were missed beyond their grace time are skipped."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from oms.book import Ctx
from oms.store import Store
from schedules import alerts, jobs, runs
from schedules.runner import Runner, RunnerOptions
from schedules.scheduler import Scheduler, SchedulerOptions

T0 = datetime(2026, 3, 11, 22, 30, tzinfo=UTC)


@pytest.fixture
def book(store: Store) -> Store:
    ctx = Ctx("tester", datetime.now(UTC))
    jobs.add_job(store, ctx, jobs.JobDef("eod", "30 18 * * 1-5", "America/New_York", ("x",)))
    jobs.add_job(
        store,
        ctx,
        jobs.JobDef("sess", "0 18 * * *", "America/New_York", ("x",), sessions_only=True),
    )
    return store


def claim(store: Store, owner: str, at: datetime = T0, lease_s: float = 60) -> Any:
    return runs.claim(
        store,
        job="eod",
        scheduled_at=at,
        trigger="scheduler",
        owner=owner,
        now=datetime.now(UTC),
        lease_s=lease_s,
    )


def status(store: Store, run_id: int) -> dict[str, Any]:
    with store.read() as conn:
        doc = runs.get_run(conn, run_id)
    assert doc is not None
    return doc


def test_an_occurrence_is_claimed_once(book: Store) -> None:
    first = claim(book, "hostA/1/a")
    assert first is not None
    assert first.status == "running"
    assert claim(book, "hostB/2/b") is None
    assert runs.claimed_by(book, "eod", T0) == first.run_id
    # the next occurrence, while the first still holds its lease: skipped, not run alongside
    nxt = claim(book, "hostB/2/b", T0 + timedelta(days=1))
    assert nxt.status == "skipped"
    assert nxt.reason == f"run {first.run_id} of eod is still running"


def test_renew_and_finish_belong_to_the_owner(book: Store) -> None:
    c = claim(book, "hostA/1/a")
    now = datetime.now(UTC)
    assert runs.renew(book, c.run_id, "hostA/1/a", now, 60)
    assert not runs.renew(book, c.run_id, "hostB/2/b", now, 60)
    assert not runs.finish(book, c.run_id, "hostB/2/b", status="succeeded", now=now)
    assert runs.finish(book, c.run_id, "hostA/1/a", status="succeeded", now=now, exit_code=0)
    assert not runs.renew(book, c.run_id, "hostA/1/a", now, 60)
    done = status(book, c.run_id)
    assert (done["status"], done["exit_code"], done["lease_expires_at"]) == ("succeeded", 0, None)


def test_expired_lease_of_a_gone_owner_is_abandoned(book: Store) -> None:
    c = claim(book, "elsewhere/4242/zz", lease_s=0.2)
    assert runs.reap(book, datetime.now(UTC)) == []  # not expired yet
    time.sleep(0.3)
    [gone] = runs.reap(book, datetime.now(UTC))
    assert gone["run_id"] == c.run_id
    assert gone["status"] == "abandoned"
    assert gone["reason"].startswith("lease expired at ")
    assert "elsewhere/4242/zz" in gone["reason"]
    assert not runs.finish(book, c.run_id, "elsewhere/4242/zz", status="succeeded", now=T0)
    assert status(book, c.run_id)["status"] == "abandoned"


def test_a_live_owner_keeps_its_run(book: Store) -> None:
    """PostgreSQL: the owner's advisory lock; SQLite: the owner's process on this machine."""
    owner = runs.make_owner()  # this process
    c = claim(book, owner, lease_s=0.1)
    lock = runs.RunLock(book, c.run_id)
    try:
        assert lock.held or book.dialect == "sqlite"
        time.sleep(0.2)
        assert runs.reap(book, datetime.now(UTC)) == []
        assert status(book, c.run_id)["status"] == "running"
    finally:
        lock.release()
    if book.dialect == "postgresql":  # the lock is gone: so is the owner, as far as anyone knows
        [gone] = runs.reap(book, datetime.now(UTC))
        assert gone["run_id"] == c.run_id


def _runner(store: Store) -> Runner:
    return Runner(
        store,
        "unused://",
        owner=runs.make_owner(),
        options=RunnerOptions(lease_s=5, heartbeat_s=1),
        program=["false"],
        sender=alerts.Sender(env={}),
        env={},
    )


def test_not_a_session_is_skipped(book: Store) -> None:
    saturday = datetime(2026, 3, 14, 22, 0, tzinfo=UTC)  # 18:00 in New York
    doc = _runner(book).run("sess", saturday, "scheduler")
    assert doc is not None
    assert doc["status"] == "skipped"
    assert doc["reason"] == "2026-03-14 is not a session of XNYS"
    assert doc["business_date"] is None
    with book.read() as conn:
        assert alerts.list_alerts(conn) == []  # a day without a session: nothing to tell
    assert _runner(book).run("sess", saturday, "scheduler") is None  # claimed already
    assert _runner(book).run("gone", saturday, "scheduler") is None  # removed job


def _scheduler(store: Store) -> Scheduler:
    return Scheduler(
        store,
        "unused://",
        SchedulerOptions(),
        program=["false"],
        sender=alerts.Sender(env={}),
        env={},
    )


def test_missed_beyond_grace_is_skipped(book: Store) -> None:
    scheduler = _scheduler(book)
    late = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    scheduler._fire("eod", late, 300)
    with book.read() as conn:
        [doc] = runs.history(conn, job="eod")
    assert doc["status"] == "skipped"
    assert doc["reason"].startswith("missed by 72")
    assert doc["reason"].endswith("(misfire grace 300s)")
    # ops are told (an order-expiry run missed leaves day orders live, their cash held): it
    # was logged at INFO only
    with book.read() as conn:
        [alert] = alerts.list_alerts(conn)
    assert alert["run_id"] == doc["run_id"] and alert["job"] == "eod"
    [finding] = alert["findings"]
    assert finding["kind"] == "run_skipped"
    assert finding["message"].startswith("job eod did not run: missed by 72")


def test_alerts_are_append_only(book: Store) -> None:
    from sqlalchemy.exc import DBAPIError

    from schedules.schema import schedule_alerts

    doc = alerts.alert_document("eod", {}, [alerts.Finding("job_failed", "x")])
    alerts.record_deliveries(book, T0, None, "eod", doc, [alerts.Delivery("log", "logged", 1)])
    with pytest.raises(DBAPIError), book.write() as conn:
        conn.execute(schedule_alerts.update().values(status="sent"))
    with book.read() as conn:
        [row] = alerts.list_alerts(conn)
    assert row["status"] == "logged"


def test_an_occurrence_due_while_the_scheduler_stops_is_recorded_not_lost(book: Store) -> None:
    """An audit: an occurrence that fell due as the scheduler stopped was left "to others",
    but the shared job store had moved the job past it, so no scheduler ever ran or recorded
    it (and one submitted after the pool shut down ended in a traceback)."""
    scheduler = _scheduler(book)
    scheduler.stopping.set()
    due = datetime.now(UTC).replace(microsecond=0)
    scheduler._fire("eod", due, 300)
    with book.read() as conn:
        [doc] = runs.history(conn, job="eod")
        [alert] = alerts.list_alerts(conn)
    assert (doc["status"], doc["reason"]) == (
        "skipped",
        "the scheduler was stopping when it fell due",
    )
    assert alert["findings"][0]["kind"] == "run_skipped"
    # one that fell due before the stop, and waited for a worker (--max-workers) until then,
    # did not fall due while the scheduler stopped: its reason said so all the same
    scheduler.stopped_at = due
    scheduler._fire("eod", due - timedelta(minutes=1), 300)
    with book.read() as conn:
        waited = runs.history(conn, job="eod")
    assert [d["reason"] for d in waited if d["run_id"] != doc["run_id"]] == [
        "the scheduler stopped before it could run it (it waited behind other runs: see "
        "--max-workers)"
    ]


def test_a_run_still_running_is_told_once_and_a_missed_holiday_not_at_all(book: Store) -> None:
    """The re-review: each occurrence skipped behind a long run alerted (a job every minute
    behind an hour-long run: one alert a minute); a sessions-only job missed on a Saturday
    alerted "missed", though it would not have run that day."""
    running = claim(book, "hostA/1/a", T0, lease_s=3600)
    assert running is not None and running.status == "running"
    for k in range(1, 4):
        doc = _runner(book).run("eod", T0 + timedelta(minutes=k), "scheduler")
        assert doc is not None and doc["status"] == "skipped"
    with book.read() as conn:
        told = alerts.list_alerts(conn)
    assert len(told) == 1 and told[0]["findings"][0]["message"].endswith(
        f"run {running.run_id} of eod is still running"
    )
    saturday = datetime(2026, 3, 14, 22, 0, tzinfo=UTC)
    missed = _runner(book).run("sess", saturday, "scheduler", skip_reason="missed by 3600s")
    assert missed is not None
    assert missed["reason"] == "2026-03-14 is not a session of XNYS"
    with book.read() as conn:
        assert len(alerts.list_alerts(conn)) == 1
