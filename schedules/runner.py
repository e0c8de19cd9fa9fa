"""Running one occurrence of a job: the imperative shell.

1. Claim the occurrence (schedules.runs): nobody else runs it; a skipped occurrence (not a
   session, missed beyond its grace time, the previous run still going) is recorded as such.
2. Resolve the argument templates with the job's exchange calendar; check that every `--file`
   input exists (a file that has not arrived is a failed run and an alert, never a success).
3. Run the tieout command as a subprocess (`python -m cli.main ARGS --db URL`, or the program
   in TIEOUT_PROGRAM), in a session of its own, its output to temporary files; renew the lease
   every heartbeat while it runs; on request (scheduler stopping, Ctrl-C) end it and record the
   run as abandoned.
4. Record the end (status, exit code, the tail of the output) and send alerts for what the
   run found (schedules.alerts).
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from oms.interrupts import DIE_WITH_ENV
from oms.store import Store
from oms.values import utc_iso
from schedules import alerts, config, runs
from schedules.jobs import JobDef, find_job
from schedules.templates import (
    CALENDAR_FIELDS,
    input_paths,
    render_args,
    resolve_dates,
    template_fields,
)

log = logging.getLogger("tieout.schedule")

# the reason of an occurrence skipped on a date that is no session of its calendar (expected)
NO_SESSION = " is not a session of "


def skipped_as_expected(doc: Mapping[str, Any]) -> bool:
    """Whether a run was skipped because its date is no session (a holiday: nothing wrong),
    rather than because it could not run (its previous run still going, missed)."""
    return doc.get("status") == "skipped" and NO_SESSION in str(doc.get("reason") or "")


PROGRAM_ENV = "TIEOUT_PROGRAM"
SECRET_ENVS = (config.SMTP_PASSWORD_ENV, config.WEBHOOK_TOKEN_ENV)
MAX_STDOUT_BYTES = 16 * 1024 * 1024


def utcnow() -> datetime:
    return datetime.now(UTC)


def default_program(env: Mapping[str, str]) -> list[str]:
    """How a job's tieout command starts: TIEOUT_PROGRAM (split like a shell would), else this
    Python running tieout's entry point."""
    text = env.get(PROGRAM_ENV, "").strip()
    return shlex.split(text) if text else [sys.executable, "-m", "cli.main"]


@dataclass(frozen=True, slots=True)
class RunnerOptions:
    lease_s: float = 60.0
    heartbeat_s: float = 10.0
    kill_grace_s: float = 10.0  # after SIGTERM, before SIGKILL, when a job must end


@dataclass(frozen=True, slots=True)
class _Active:
    run_id: int
    job: str


def _session_predicate(calendar: str) -> Callable[[date], bool]:
    from oms.calendars import is_session

    return lambda day: is_session(calendar, day)


def _read(handle: IO[bytes], limit: int) -> str:
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    handle.seek(max(0, size - limit))
    return handle.read().decode("utf-8", errors="replace")


def _end_process(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM to the job's process group, SIGKILL after the grace time."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


class Runner:
    """Runs occurrences for one owner (a scheduler process or one `schedule trigger`)."""

    def __init__(
        self,
        store: Store,
        url: str,
        *,
        owner: str,
        options: RunnerOptions,
        program: Sequence[str],
        sender: alerts.Sender,
        env: Mapping[str, str],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store, self.url, self.owner = store, url, owner
        self.options, self.program, self.sender = options, list(program), sender
        self.env, self.clock = dict(env), clock
        self._lock = threading.Lock()
        self._active: dict[int, _Active] = {}
        # Set from signal handlers, so a plain attribute (taking a lock there can deadlock).
        self.abandon_reason: str | None = None

    # ---- what the scheduler asks of it ----------------------------------------------------

    def active_count(self) -> int:
        with self._lock:
            return len(self._active)

    def abandon_all(self, reason: str) -> None:
        """End every running job and record it abandoned (safe to call from a signal handler)."""
        self.abandon_reason = reason

    # ---- one occurrence ---------------------------------------------------------------------

    def run(
        self,
        name: str,
        scheduled_at: datetime,
        trigger: str,
        *,
        business_day: date | None = None,
        skip_reason: str | None = None,
        alert: bool = True,
    ) -> dict[str, Any] | None:
        """Run an occurrence; its run as JSON, or None when another owner has claimed it (or
        the job no longer exists). `alert` False: a skip is recorded without an alert of its
        own (one of several missed occurrences, which the first one's alert counts)."""
        with self.store.read() as conn:
            job = find_job(conn, name)
            settings = config.read_settings(conn)
        if job is None:
            log.warning(
                "job %s no longer exists: occurrence %s ignored", name, utc_iso(scheduled_at)
            )
            return None
        calendar = job.calendar or config.default_calendar(settings)
        day = business_day or scheduled_at.astimezone(ZoneInfo(job.timezone)).date()
        # a day that is no session is skipped whatever else (missed too: it would not have
        # run): expected, no alert
        off_session = (
            trigger != "manual" and job.sessions_only and not _session_predicate(calendar)(day)
        )
        if off_session:
            skip_reason = f"{day.isoformat()}{NO_SESSION}{calendar}"
        claimed = runs.claim(
            self.store,
            job=name,
            scheduled_at=scheduled_at,
            trigger=trigger,
            owner=self.owner,
            now=self.clock(),
            lease_s=self.options.lease_s,
            skip_reason=skip_reason,
        )
        if claimed is None:
            log.info(
                "job %s occurrence %s: claimed by another scheduler", name, utc_iso(scheduled_at)
            )
            return None
        if claimed.status == "skipped":
            log.info("job %s run %d skipped: %s", name, claimed.run_id, claimed.reason)
            # missed, or its previous run still running: ops are told (of a run still running,
            # once: a frequent job behind a long run alerted at each occurrence)
            if alert and not off_session and not runs.skipped_before(self.store, name, claimed):
                self.alert_for_run(job, claimed.run_id, "", (), settings, skipped=True)
            return self._doc(claimed.run_id)
        active = _Active(claimed.run_id, name)
        with self._lock:
            self._active[claimed.run_id] = active
        try:
            lock = runs.RunLock(self.store, claimed.run_id)
            try:
                self._execute(job, calendar, day, scheduled_at, active, settings)
            finally:
                lock.release()
        finally:
            with self._lock:
                self._active.pop(claimed.run_id, None)
        return self._doc(claimed.run_id)

    def _doc(self, run_id: int) -> dict[str, Any] | None:
        with self.store.read() as conn:
            return runs.get_run(conn, run_id)

    def _execute(
        self,
        job: JobDef,
        calendar: str,
        day: date,
        scheduled_at: datetime,
        active: _Active,
        settings: Mapping[str, str],
    ) -> None:
        run_id = active.run_id
        log.info("job %s run %d started (scheduled %s)", job.name, run_id, utc_iso(scheduled_at))
        t0 = time.monotonic()
        command: list[str] = []
        missing: list[str] = []
        status, exit_code, reason, output, stdout = "failed", None, None, "", ""
        try:
            needed = template_fields(job.args)
            predicate = _session_predicate(calendar) if needed & CALENDAR_FIELDS else _no_calendar
            command = render_args(job.args, resolve_dates(day, needed, predicate))
            runs.started(self.store, run_id, self.owner, command, day)
            missing = [p for p in input_paths(command) if not Path(p).is_file()]
            if missing:
                reason = "input missing: " + ", ".join(missing)
            else:
                status, exit_code, reason, output, stdout = self._subprocess(
                    job, run_id, scheduled_at, command, active
                )
        except Exception as exc:  # the scheduler records it and goes on with other jobs
            log.exception("job %s run %d: error in the scheduler", job.name, run_id)
            reason = f"scheduler error: {type(exc).__name__}: {exc}"
        recorded = runs.finish(
            self.store,
            run_id,
            self.owner,
            status=status,
            now=self.clock(),
            exit_code=exit_code,
            reason=reason,
            output_tail=runs.tail(output) if output else None,
            command=command or None,
            business_date=day,
        )
        took = time.monotonic() - t0
        if not recorded:
            log.warning(
                "job %s run %d ended (%s) after its lease was lost: it stays abandoned",
                job.name,
                run_id,
                status,
            )
            return
        log.info(
            "job %s run %d ended: %s%s in %.1fs%s",
            job.name,
            run_id,
            status,
            f" (exit {exit_code})" if exit_code is not None else "",
            took,
            f": {reason}" if reason else "",
        )
        self.alert_for_run(job, run_id, stdout, tuple(missing), settings)

    def _subprocess(
        self,
        job: JobDef,
        run_id: int,
        scheduled_at: datetime,
        command: Sequence[str],
        active: _Active,
    ) -> tuple[str, int | None, str | None, str, str]:
        """(status, exit code, reason, output tail text, stdout)."""
        env = {k: v for k, v in self.env.items() if k not in SECRET_ENVS}
        env.update(
            {
                "TIEOUT_DB": self.url,
                "TIEOUT_ACTOR": job.run_as,
                "TIEOUT_SCHEDULE_JOB": job.name,
                "TIEOUT_SCHEDULE_RUN_ID": str(run_id),
                "TIEOUT_SCHEDULE_SCHEDULED_AT": utc_iso(scheduled_at),
                # the command ends (SIGTERM) if this process dies: it runs in a session of its
                # own (so that ending it ends its children), and a scheduler killed outright
                # left it running on, its run marked abandoned once its lease ran out, and the
                # next occurrence started a second copy beside it
                DIE_WITH_ENV: str(os.getpid()),
            }
        )
        # --db goes on the command line unless it holds a password (`ps` shows command lines);
        # TIEOUT_DB carries it either way.
        db_args = [] if _has_password(self.url) else ["--db", self.url]
        argv = [*self.program, *command, *db_args]
        opts = self.options
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
                start_new_session=True,
            )
            status, reason, code = "", None, None
            next_beat = time.monotonic() + opts.heartbeat_s
            while True:
                try:
                    code = proc.wait(timeout=min(0.2, opts.heartbeat_s))
                    break
                except subprocess.TimeoutExpired:
                    pass
                why = self.abandon_reason
                if why is not None:
                    log.warning("job %s run %d: ending it: %s", job.name, run_id, why)
                    _end_process(proc, opts.kill_grace_s)
                    status, reason, code = "abandoned", why, proc.returncode
                    break
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + opts.heartbeat_s
                    try:
                        kept = runs.renew(
                            self.store, run_id, self.owner, self.clock(), opts.lease_s
                        )
                    except Exception as exc:  # the database may be back by the next beat
                        log.warning("job %s run %d: heartbeat failed: %s", job.name, run_id, exc)
                        continue
                    if not kept:
                        log.error("job %s run %d: lease lost; ending the job", job.name, run_id)
                        _end_process(proc, opts.kill_grace_s)
                        status, reason, code = "abandoned", "lease lost", proc.returncode
                        break
            stdout = _read(out, MAX_STDOUT_BYTES)
            stderr = _read(err, runs.OUTPUT_TAIL_CHARS * 4)
        if not status:
            status = "succeeded" if code == 0 else "failed"
        output = stdout.rstrip()
        if stderr.strip():
            output = (output + "\n" if output else "") + stderr.rstrip()
        return status, code, reason, output, stdout

    # ---- alerts ----------------------------------------------------------------------------

    def alert_for_run(
        self,
        job: JobDef | None,
        run_id: int,
        stdout: str,
        missing: tuple[str, ...],
        settings: Mapping[str, str],
        *,
        skipped: bool = False,
    ) -> list[alerts.Delivery]:
        """Evaluate a finished run (`skipped`: an occurrence skipped that should have run) and
        send one alert with every finding (if any)."""
        try:
            with self.store.read() as conn:
                doc = runs.get_run(conn, run_id)
                recon = alerts.parse_recon_json(stdout) if stdout else None
                stats = (
                    alerts.break_stats(conn, recon.profile, recon.business_date)
                    if recon is not None
                    else None
                )
            if doc is None:
                return []
            limits = config.thresholds(settings, job.thresholds if job else {})
            facts = alerts.RunFacts(
                doc["job"], doc["status"], doc["exit_code"], doc["reason"], missing, skipped
            )
            findings = alerts.evaluate(facts, recon, stats, limits)
            if not findings:
                return []
            payload = alerts.alert_document(doc["job"], doc, findings)
            deliveries = self.sender.deliver(config.alert_config(settings), payload)
            alerts.record_deliveries(
                self.store, self.clock(), run_id, doc["job"], payload, deliveries
            )
            return deliveries
        except Exception:  # alerting never takes the scheduler down
            log.exception("alerting for run %d failed", run_id)
            return []

    def reap(self) -> list[dict[str, Any]]:
        """Mark abandoned the runs whose owners are gone, and alert about each."""
        abandoned = runs.reap(self.store, self.clock())
        if not abandoned:
            return []
        with self.store.read() as conn:
            settings = config.read_settings(conn)
        for doc in abandoned:
            log.warning("job %s run %d abandoned: %s", doc["job"], doc["run_id"], doc["reason"])
            self.alert_for_run(None, int(doc["run_id"]), "", (), settings)
        return abandoned


def _has_password(url: str) -> bool:
    from sqlalchemy.engine import make_url

    return make_url(url).password is not None


def _no_calendar(day: date) -> bool:
    raise AssertionError("the calendar is not needed")
