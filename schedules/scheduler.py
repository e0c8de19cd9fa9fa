"""The scheduler: APScheduler 3 on tieout's database, in the foreground.

APScheduler's SQLAlchemyJobStore (table `apscheduler_jobs`, same database) keeps each job's
trigger and next run time; tieout's `schedule_jobs` keeps the definitions. Every scheduler
brings the job store in line with the definitions when it starts and at every maintenance pass
(`--poll` seconds), which also wakes it up for jobs another process added, and marks abandoned
the runs whose owners are gone.

APScheduler's own executor does not tell a job which occurrence it runs, so a small executor
here hands the scheduled time to the runner: the claim is per (job, scheduled time). Missed
occurrences are coalesced into the latest one; that one runs if it is no later than the job's
misfire grace time, and is recorded as skipped otherwise.

SIGTERM or SIGINT: stop taking occurrences, let running jobs finish for up to `stop_timeout_s`,
then end them and record them as abandoned; a second signal abandons them at once.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from apscheduler.executors.base import BaseExecutor  # type: ignore[import-untyped]
from apscheduler.jobstores.base import JobLookupError  # type: ignore[import-untyped]
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore  # type: ignore[import-untyped]
from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped]

from oms.store import Store
from oms.values import utc_iso
from schedules import alerts, runs
from schedules.cron import make_trigger
from schedules.jobs import JobDef, list_jobs
from schedules.runner import Runner, RunnerOptions
from schedules.schema import APSCHEDULER_TABLE

log = logging.getLogger("tieout.schedule")

JOBSTORE = "default"
FUNC_REF = "schedules.scheduler:occurrence"


def occurrence(name: str, **_: Any) -> None:
    """The target APScheduler stores for every job; tieout's executor runs the job instead."""
    raise RuntimeError(f"job {name} runs through `tieout schedule run` only")


def _aps_job(job: JobDef) -> dict[str, Any]:
    return {
        "trigger": make_trigger(job.spec, job.timezone),
        "id": job.name,
        "name": job.name,
        "args": [job.name],
        "kwargs": {"fingerprint": job.fingerprint},
        "misfire_grace_time": job.misfire_grace_s,
        # every missed occurrence comes to the executor, which runs the latest and records
        # the others as missed (coalesced, APScheduler dropped them without a trace)
        "coalesce": False,
        "max_instances": 1000,  # overlapping runs are tieout's call (a skipped run)
        "jobstore": JOBSTORE,
        "executor": "default",
        "replace_existing": True,
    }


def _jobstore(store: Store) -> Any:
    return SQLAlchemyJobStore(engine=store.engine, tablename=APSCHEDULER_TABLE)


def store_trigger(store: Store, job: JobDef | None, remove: str | None = None) -> None:
    """Write a job's trigger to (or remove it from) APScheduler's job store, as a paused
    scheduler does (running schedulers also sync it at their next maintenance pass)."""
    aps = BackgroundScheduler(timezone=UTC, jobstores={JOBSTORE: _jobstore(store)})
    aps.start(paused=True)
    try:
        if job is not None:
            _bring_in_line(aps, job, aps.get_job(job.name, jobstore=JOBSTORE))
        if remove is not None:
            with contextlib.suppress(JobLookupError):
                aps.remove_job(remove, jobstore=JOBSTORE)
    finally:
        aps.shutdown(wait=False)


def _bring_in_line(aps: Any, job: JobDef, have: Any) -> bool:
    """Store a job's trigger unless APScheduler has it as it is (`have`: its stored copy, or
    None); whether it was written anew. One stored as it is keeps its next run time: written
    again, it would start from now, and an occurrence missed while no scheduler ran (a deploy
    applying its definitions again) would never run nor be recorded. One stored before missed
    occurrences were recorded one by one (coalesced) is stored again with its next run time,
    to hand every missed one to the executor."""
    if have is None or have.kwargs.get("fingerprint") != job.fingerprint:
        aps.add_job(FUNC_REF, **_aps_job(job))
        return True
    if have.coalesce:
        aps.add_job(FUNC_REF, **_aps_job(job), next_run_time=have.next_run_time)
    return False


MISSED_KEPT = 100  # missed occurrences recorded one by one (before the latest): the latest ones


@dataclass(frozen=True, slots=True)
class Missed:
    """An occurrence that fell due while the scheduler did not run (or ran behind) and that a
    later one took the place of."""

    count: int  # how many were missed in all, before `instead`
    first: datetime
    instead: datetime  # the latest occurrence, which runs in their place
    alert: bool  # the first recorded: the one that alerts, for all of them

    @property
    def reason(self) -> str:
        why = (
            f"missed: the scheduler was not running (or ran behind) when it fell due; the "
            f"occurrence of {utc_iso(self.instead)} was taken in its place"
        )
        if not self.alert:
            return why
        span = f"{self.count} occurrence(s) missed from {utc_iso(self.first)}"
        if self.count > MISSED_KEPT:
            span += f" ({MISSED_KEPT} recorded, the latest)"
        return f"{why} ({span}; run them with `tieout schedule trigger` where they matter)"


class OccurrenceExecutor(BaseExecutor):  # type: ignore[misc]
    """Runs each due occurrence in a thread of its own, passing its scheduled time on."""

    def __init__(
        self, fire: Callable[[str, datetime, float | None, Missed | None], None], max_workers: int
    ):
        super().__init__()
        self._fire = fire
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="tieout-job"
        )

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        name = str(job.args[0])
        grace = job.misfire_grace_time

        def work() -> None:
            # the latest runs (or is skipped past its grace), first: recording the others
            # before it let the next occurrence start meanwhile, and the latest was then
            # skipped behind it; those before it were missed: each recorded as such (the
            # latest MISSED_KEPT of them), the first one alerted
            *earlier, latest = run_times
            self._fire(name, latest, grace, None)
            kept = earlier[-MISSED_KEPT:]
            for i, run_time in enumerate(kept):
                missed = Missed(len(earlier), earlier[0], latest, alert=i == 0)
                self._fire(name, run_time, grace, missed)

        def done(future: concurrent.futures.Future[None]) -> None:
            exc = future.exception()
            if exc is not None:
                self._run_job_error(job.id, exc, exc.__traceback__)
            else:
                self._run_job_success(job.id, [])

        try:
            self._pool.submit(work).add_done_callback(done)
        except RuntimeError:  # shut down: the scheduler is stopping, and its fire records that
            work()  # (APScheduler has moved the job on past these times: they must not vanish)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait)


@dataclass(frozen=True, slots=True)
class SchedulerOptions:
    poll_s: float = 10.0
    max_workers: int = 4
    stop_timeout_s: float = 30.0
    runner: RunnerOptions = field(default_factory=RunnerOptions)


class Scheduler:
    def __init__(
        self,
        store: Store,
        url: str,
        options: SchedulerOptions,
        *,
        program: list[str],
        sender: alerts.Sender,
        env: Mapping[str, str],
    ) -> None:
        self.store, self.options = store, options
        self.owner = runs.make_owner()
        self.runner = Runner(
            store,
            url,
            owner=self.owner,
            options=options.runner,
            program=program,
            sender=sender,
            env=env,
        )
        self.stopping = threading.Event()
        self.stopped_at: datetime | None = None  # when it began to stop
        self.signals = 0  # counted by the signal handler: no locks may be taken there
        self.last_signal = "stop"
        self.aps = BackgroundScheduler(
            timezone=UTC,
            jobstores={JOBSTORE: _jobstore(store)},
            executors={
                "default": OccurrenceExecutor(self._fire, options.max_workers),
            },
            job_defaults={"coalesce": False, "max_instances": 1000},
        )

    # ---- occurrences and maintenance -------------------------------------------------------

    def _fire(
        self, name: str, run_time: datetime, grace_s: float | None, missed: Missed | None = None
    ) -> None:
        late = datetime.now(UTC) - run_time
        skip = None
        alert = True
        if missed is not None:
            skip, alert = missed.reason, missed.alert
        elif self.stopping.is_set():
            # APScheduler's job store (shared by every scheduler of the book) has moved the job
            # on past this time: no other scheduler will fire it. Recorded, and alerted, rather
            # than lost without a trace.
            skip = (
                "the scheduler was stopping when it fell due"
                if self.stopped_at is None or run_time >= self.stopped_at
                else "the scheduler stopped before it could run it (it waited behind other "
                "runs: see --max-workers)"
            )
        elif grace_s is not None and late > timedelta(seconds=grace_s):
            skip = f"missed by {late.total_seconds():.0f}s (misfire grace {grace_s:.0f}s)"
        self.runner.run(name, run_time.astimezone(UTC), "scheduler", skip_reason=skip, alert=alert)

    def sync(self) -> None:
        """Bring APScheduler's job store in line with the definitions."""
        with self.store.read() as conn:
            defs = {j.name: j for j in list_jobs(conn)}
        current = {j.id: j for j in self.aps.get_jobs(jobstore=JOBSTORE)}
        for name, job in defs.items():
            if _bring_in_line(self.aps, job, current.get(name)):
                log.info("job %s: trigger %s (%s) stored", name, job.cron, job.timezone)
        for name in current.keys() - defs.keys():
            log.info("job %s: removed, its trigger dropped", name)
            with contextlib.suppress(JobLookupError):
                self.aps.remove_job(name, jobstore=JOBSTORE)

    def _upkeep(self) -> None:
        while not self.stopping.wait(self.options.poll_s):
            self.maintain()
            self.aps.wakeup()  # jobs another process stored: their time may have come

    def maintain(self) -> None:
        try:
            self.sync()
            self.runner.reap()
        except Exception:  # a database hiccup: the next pass tries again
            log.exception("maintenance pass failed")

    # ---- the foreground loop ---------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.last_signal = signal.Signals(signum).name
        self.signals += 1

    def stop(self) -> None:
        self.signals += 1

    def serve(self, *, install_signals: bool = True) -> None:
        """Run until stopped (a signal, or stop() from another thread)."""
        if install_signals and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        self.aps.start()
        self.maintain()
        # Maintenance runs in a thread of its own, not as an APScheduler job: APScheduler 3's
        # shutdown waits for its jobs while holding the lock that a job calling it would need.
        upkeep = threading.Thread(target=self._upkeep, name="tieout-maintenance", daemon=True)
        upkeep.start()
        count = len(self.aps.get_jobs(jobstore=JOBSTORE))
        log.info("scheduler %s started on %s: %d job(s)", self.owner, self.store.url, count)
        while not self.signals:
            time.sleep(0.2)
        self.stopped_at = datetime.now(UTC)
        self.stopping.set()
        upkeep.join()
        log.warning(
            "%s: stopping; %d running job(s) may finish for %.0fs (signal again to abandon them)",
            self.last_signal,
            self.runner.active_count(),
            self.options.stop_timeout_s,
        )
        self.aps.pause()
        deadline = time.monotonic() + self.options.stop_timeout_s
        while self.runner.active_count() and time.monotonic() < deadline and self.signals < 2:
            time.sleep(0.1)
        if self.runner.active_count():
            if self.signals >= 2:
                log.warning("%s again: abandoning running jobs now", self.last_signal)
            self.runner.abandon_all("the scheduler was stopped before the job ended")
        self.aps.shutdown(wait=True)
        log.info("scheduler %s stopped", self.owner)


# ---- `schedule trigger` -----------------------------------------------------------------------


class _Interrupt:
    """While a triggered job runs in the foreground: SIGINT/SIGTERM end it, recorded abandoned."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.saved: dict[int, Any] = {}
        self.came: int | None = None  # the first signal that ended the job

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.came is None:
            self.came = signum
        self.runner.abandon_all(f"interrupted by {signal.Signals(signum).name}")

    def __enter__(self) -> _Interrupt:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.saved[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *_: object) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)


def trigger_now(
    runner: Runner,
    job: JobDef,
    *,
    scheduled_at: datetime,
    trigger: str,
    business_day: Any = None,
) -> dict[str, Any] | None:
    runner.reap()
    with _Interrupt(runner) as interrupt:
        doc = runner.run(job.name, scheduled_at, trigger, business_day=business_day)
    if doc is not None and interrupt.came is not None and doc["status"] == "abandoned":
        # the signal ended the job (one that came after it ended changes nothing): the
        # command exits 128 + it
        doc["interrupted_by"] = signal.Signals(interrupt.came).name
    return doc
