"""Schedule commands: jobs (add, add-builtin, list, remove), running them (run, trigger),
their history, crontab lines, alert settings and alerts sent."""

from __future__ import annotations

import contextlib
import dataclasses
import faulthandler
import io
import logging
import os
import re
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from sqlalchemy import Connection
from sqlalchemy.engine import make_url

from cli.common import (
    SERVICE_TOKEN_ENV,
    SERVICE_TOKEN_FILE_ENV,
    ActorOpt,
    DbOpt,
    JsonOpt,
    clock,
    emit_json,
    make_ctx,
    note,
    open_store,
    say,
    warn,
)
from oms import access
from oms.book import exchanges_of
from oms.errors import BadInput
from oms.store import resolve_url
from oms.values import parse_date, utc_iso
from schedules import alerts, config, jobs, runs
from schedules.cron import CrontabEntry, crontab_text, latest_fire
from schedules.runner import (
    PROGRAM_ENV,
    Runner,
    RunnerOptions,
    default_program,
    skipped_as_expected,
)
from schedules.scheduler import Scheduler, SchedulerOptions, store_trigger, trigger_now
from schedules.templates import FIELDS, render_args

schedule_app = typer.Typer(
    help="Scheduled operations: jobs on cron schedules, run once across schedulers, alerts.",
    no_args_is_help=True,
)
config_app = typer.Typer(help="Alert thresholds and channels, the default calendar.")
schedule_app.add_typer(config_app, name="config")


def register(app: typer.Typer) -> None:
    app.add_typer(schedule_app, name="schedule")


CronOpt = Annotated[
    str | None, typer.Option("--cron", help='cron expression, e.g. "30 18 * * 1-5"')
]
TzOpt = Annotated[str | None, typer.Option("--timezone", help="IANA time zone of the schedule")]
CalendarOpt = Annotated[
    str | None,
    typer.Option(help="exchange calendar of {date} templates (else setting, else XNYS)"),
]
GraceOpt = Annotated[
    int, typer.Option("--misfire-grace", help="seconds late an occurrence may still start")
]
ReplaceOpt = Annotated[bool, typer.Option("--replace", help="replace a job of the same name")]
MaxBreaksOpt = Annotated[
    str | None, typer.Option(help="alert above this many open breaks ('none': never)")
]
MaxAmountOpt = Annotated[str | None, typer.Option(help="alert when a break's amount exceeds")]
MaxAgeOpt = Annotated[str | None, typer.Option(help="alert when a break is older (days)")]
MaxQuarantinedOpt = Annotated[str | None, typer.Option(help="alert above this many quarantined")]
LeaseOpt = Annotated[float, typer.Option("--lease", help="seconds a run's lease lasts")]
HeartbeatOpt = Annotated[float, typer.Option("--heartbeat", help="seconds between renewals")]


def _thresholds(**values: str | None) -> dict[str, str]:
    return {k: v for k, v in values.items() if v is not None}


def _configure_logging(level: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    formatter = logging.Formatter("%(asctime)s.%(msecs)03dZ %(levelname)s %(message)s")
    formatter.datefmt = "%Y-%m-%dT%H:%M:%S"
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    root = logging.getLogger("tieout")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


class _NoCommand(Exception):
    """A job's command line that stops at a group of commands (`tieout risk`)."""


def _check_command_line(job: jobs.JobDef) -> None:
    """BadInput (exit 3) unless the job's command is a tieout command line: its commands, its
    options and the arguments it needs, as `tieout` would parse them when the job runs (each
    {template} filled with a date). A mistyped command was stored, and failed (exit 2) at each
    run with an alert. Where TIEOUT_PROGRAM names the program jobs run as (another build, a
    wrapper), a command this tieout does not know is stored with a note."""
    from typer.core import TyperGroup
    from typer.exceptions import TyperException

    from cli import main  # (it imports this module's commands when asked: not at import)

    args = jobs.check_job(job).args  # (its own refusals first)
    words = render_args(args, dict.fromkeys(FIELDS, date(2026, 1, 2)))
    root = main.command(words)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # (--help prints the help)
            ctx: Any = root.make_context("tieout", list(words))
            cmd: Any = root
            while isinstance(cmd, TyperGroup):
                # the words after the group's own options (typer's click keeps the first, the
                # command's name, apart)
                rest = [*getattr(ctx, "_protected_args", ()), *ctx.args]
                if not rest:
                    raise _NoCommand("it names no command, only a group of commands")
                name, sub, rest = cmd.resolve_command(ctx, rest)
                if name is None or sub is None or (isinstance(sub, TyperGroup) and not rest):
                    # (a group given no words prints its help: not here)
                    raise _NoCommand("it names no command, only a group of commands")
                ctx = sub.make_context(name, rest, parent=ctx)
                cmd = sub
    except typer.Exit:  # --help (the job prints the help)
        return
    except (TyperException, _NoCommand) as exc:
        why = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        said = f"`tieout {shlex.join(args)}` is not a command this tieout can run: {why}"
        program = os.environ.get(PROGRAM_ENV, "").strip()
        if program:  # jobs run as another program, whose commands this one cannot know
            warn(f"{said} (jobs run as {PROGRAM_ENV} {program!r}: stored as given)")
            return
        raise BadInput("TIEOUT-ARGS", said) from None


def _save(db: str | None, actor: str | None, job: jobs.JobDef, replace: bool, json: bool) -> None:
    _check_command_line(job)
    store = open_store(db)
    ctx = make_ctx(actor)
    stored, result = jobs.add_job(store, ctx, job, replace_existing=replace)
    store_trigger(store, stored)
    doc = stored.as_json(clock())  # its next run from now (TIEOUT_NOW in a drill)
    doc["result"] = result
    if json:
        emit_json(doc)
        return
    say(
        f"job {stored.name} {result}: {stored.cron} ({stored.timezone}), next run "
        f"{doc['next_run_at']}: tieout {' '.join(stored.args)}"
    )


@schedule_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="job name")],
    args: Annotated[list[str], typer.Argument(help="the tieout command, after --")],
    cron: CronOpt = None,
    timezone: TzOpt = None,
    calendar: CalendarOpt = None,
    sessions_only: Annotated[
        bool, typer.Option("--sessions-only", help="skip dates that are not sessions")
    ] = False,
    misfire_grace: GraceOpt = jobs.DEFAULT_MISFIRE_GRACE_S,
    max_breaks: MaxBreaksOpt = None,
    max_break_amount: MaxAmountOpt = None,
    max_break_age_days: MaxAgeOpt = None,
    max_quarantined: MaxQuarantinedOpt = None,
    replace: ReplaceOpt = False,
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Store a job: NAME --cron "EXPR" [--timezone TZ] -- TIEOUT-ARGS... ({date},
    {prev_business_date}, {date:%Y%m%d}... are filled in when it runs)."""
    if cron is None:
        raise BadInput("--cron", "a cron expression is required")
    if calendar is not None:
        config.check_setting("schedule.calendar", calendar)
    job = jobs.JobDef(
        name=name,
        cron=cron,
        timezone=timezone or "UTC",
        args=tuple(args),
        calendar=calendar,
        sessions_only=sessions_only,
        misfire_grace_s=misfire_grace,
        thresholds=_thresholds(
            max_breaks=max_breaks,
            max_break_amount=max_break_amount,
            max_break_age_days=max_break_age_days,
            max_quarantined=max_quarantined,
        ),
    )
    _save(db, actor, job, replace, json)


@schedule_app.command("add-builtin")
def add_builtin(
    kind: Annotated[str, typer.Argument(help=", ".join(jobs.BUILTINS))],
    name: Annotated[str | None, typer.Option(help="job name (default from the kind)")] = None,
    cron: CronOpt = None,
    timezone: TzOpt = None,
    calendar: CalendarOpt = None,
    profile: Annotated[str | None, typer.Option(help="eod-recon: profile name or TOML")] = None,
    file_pattern: Annotated[
        str | None,
        typer.Option(help="eod-recon: the venue file, e.g. drops/acme/trades_{date:%Y%m%d}.csv"),
    ] = None,
    date_field: Annotated[
        str | None,
        typer.Option(
            help="business date passed: date, business_date, prev_business_date (default: date;"
            " 24/7: prev_business_date, the day whose midnight close the job follows)"
        ),
    ] = None,
    format_: Annotated[str, typer.Option("--format", help="reports: html, pdf or json")] = "pdf",
    out: Annotated[str | None, typer.Option(help="reports: output path pattern")] = None,
    fail_on_breaks: Annotated[
        bool, typer.Option("--fail-on-breaks", help="eod-recon: the run fails on open breaks")
    ] = False,
    misfire_grace: GraceOpt = jobs.DEFAULT_MISFIRE_GRACE_S,
    max_breaks: MaxBreaksOpt = None,
    max_break_amount: MaxAmountOpt = None,
    max_break_age_days: MaxAgeOpt = None,
    max_quarantined: MaxQuarantinedOpt = None,
    replace: ReplaceOpt = False,
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Add a built-in job in one command: eod-recon, order-expiry (15 minutes after the
    session close, for the last bars to land),
    exceptions-report, monthly-statements, retention."""
    store = open_store(db)
    with store.read() as conn:
        cal = calendar or config.default_calendar(config.read_settings(conn))
    config.check_setting("schedule.calendar", cal)
    job = jobs.builtin_job(
        kind,
        jobs.calendar_info(cal),
        name=name,
        cron=cron,
        timezone=timezone,
        profile=profile,
        file_pattern=file_pattern,
        date_field=date_field,
        fmt=format_,
        out=out,
        fail_on_breaks=fail_on_breaks,
    )
    job = dataclasses.replace(
        job,
        calendar=calendar,
        misfire_grace_s=misfire_grace,
        thresholds=_thresholds(
            max_breaks=max_breaks,
            max_break_amount=max_break_amount,
            max_break_age_days=max_break_age_days,
            max_quarantined=max_quarantined,
        ),
    )
    _save(db, actor, job, replace, json)
    if kind == "order-expiry":
        with store.read() as conn:
            _warn_expiry_gaps(conn, jobs.list_jobs(conn))


def _warn_expiry_gaps(conn: Connection, defs: Sequence[jobs.JobDef]) -> None:
    """Warn of the book's instruments after whose exchange's close no order-expiry job
    (among `defs`, the book's jobs) runs: their day and gtd orders stay live, cash reserved,
    until a job of another calendar runs."""
    from oms.calendars import canonical_exchange

    default = config.default_calendar(config.read_settings(conn))
    calendars = [j.calendar or default for j in defs if tuple(j.args[:2]) == jobs.EXPIRE_DUE]
    if not calendars:
        return
    exchanges = exchanges_of(conn)
    for code, symbols in jobs.expiry_gaps(exchanges, calendars, canonical_exchange).items():
        shown = ", ".join(symbols[:5]) + (
            f" and {len(symbols) - 5} more" if len(symbols) > 5 else ""
        )
        suffix = re.sub(r"[^A-Za-z0-9]+", "-", code).strip("-")
        warn(
            f"no order-expiry job runs after the close of {code}: day and gtd orders of {shown} "
            f"stay live, their cash reserved, until another calendar's job runs; add one: "
            f"tieout schedule add-builtin order-expiry --calendar {code} "
            f"--name order-expiry-{suffix}"
        )


@schedule_app.command("list")
def list_(db: DbOpt = None, json: JsonOpt = False) -> None:
    """Jobs with their next run."""
    now = clock()
    with open_store(db).read() as conn:
        defs = jobs.list_jobs(conn)
        docs = [j.as_json(now) for j in defs]
        _warn_expiry_gaps(conn, defs)
    if json:
        emit_json(docs)
        return
    for d in docs:
        say(
            f"{d['name']:<24} {d['cron']:<20} {d['timezone']:<20} next {d['next_run_at']}  "
            f"tieout {' '.join(d['args'])}"
        )


@schedule_app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="job name")],
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Remove a job (its history stays)."""
    store = open_store(db)
    old = jobs.remove_job(store, make_ctx(actor), name)
    store_trigger(store, None, remove=name)
    if json:
        emit_json({"name": name, "removed": True, "job": old.as_json()})
    else:
        say(f"job {name} removed")


def _runner(db: str | None, lease: float, heartbeat: float) -> tuple[Any, Runner]:
    store = open_store(db)
    url = resolve_url(db)
    runner = Runner(
        store,
        url,
        owner=runs.make_owner(),
        options=RunnerOptions(lease_s=lease, heartbeat_s=heartbeat),
        program=default_program(os.environ),
        sender=alerts.Sender(env=os.environ),
        env=os.environ,
    )
    return store, runner


def _exit_code(doc: dict[str, Any]) -> int:
    """trigger's exit code: 0 succeeded, or skipped on a date that is no session; 4 skipped
    otherwise (its previous run still going: the job did not run, which `trigger && next`
    must not read as done); 128 + the signal that ended it (130 for Ctrl-C, 143 for SIGTERM,
    as every command exits); a failed job's own exit code; 3 for a missing input; 1
    otherwise."""
    if doc.get("interrupted_by"):
        return 128 + signal.Signals[str(doc["interrupted_by"])].value
    if doc["status"] == "succeeded" or skipped_as_expected(doc):
        return 0
    if doc["status"] == "skipped":
        return 4
    code = doc.get("exit_code")
    if doc["status"] == "failed" and isinstance(code, int) and 0 < code < 256:
        return code
    if doc["status"] == "failed" and str(doc.get("reason") or "").startswith("input missing"):
        return 3
    return 1


@schedule_app.command("trigger")
def trigger(
    name: Annotated[str, typer.Argument(help="job name")],
    date: Annotated[
        str | None, typer.Option(help="run for this date (YYYY-MM-DD) instead of today")
    ] = None,
    scheduled: Annotated[
        bool,
        typer.Option(
            "--scheduled",
            help="run the occurrence due now (what crontab lines do): it runs once, "
            "whoever else starts it",
        ),
    ] = False,
    lease: LeaseOpt = 60.0,
    heartbeat: HeartbeatOpt = 10.0,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Run a job now, in the foreground, recorded in its history. Exit code: 0, or the job's."""
    _configure_logging(logging.WARNING)
    store, runner = _runner(db, lease, heartbeat)
    with store.read() as conn:
        job = jobs.get_job(conn, name)
    # now as every command sees it (TIEOUT_NOW pins it in a drill or a replay): the occurrence
    # due and the business date follow it; the run's leases keep the real clock
    now = clock()
    day = parse_date(date, "--date") if date else None
    if scheduled:
        fire = latest_fire(job.spec, job.timezone, now, timedelta(seconds=job.misfire_grace_s))
        if fire is None:
            raise BadInput(
                "--scheduled",
                f"no occurrence of {name} ({job.cron}, {job.timezone}) in the last "
                f"{job.misfire_grace_s}s",
            )
        scheduled_at, kind = fire.astimezone(UTC), "cron"
    else:
        scheduled_at, kind = now, "manual"
        if day is None:
            day = now.astimezone(ZoneInfo(job.timezone)).date()
    doc = trigger_now(runner, job, scheduled_at=scheduled_at, trigger=kind, business_day=day)
    for _ in range(100):
        if doc is not None or scheduled:
            break
        # a manual run is no occurrence: one at the very time of another run of the job (a
        # clock pinned by TIEOUT_NOW for a drill) is recorded a microsecond after it
        if runs.claimed_by(store, name, scheduled_at) is None:
            break  # (the job was removed meanwhile)
        scheduled_at += timedelta(microseconds=1)
        doc = trigger_now(runner, job, scheduled_at=scheduled_at, trigger=kind, business_day=day)
    if doc is None:
        other = runs.claimed_by(store, name, scheduled_at)
        status = None
        if other is not None:
            with store.read() as conn:
                found = runs.get_run(conn, other)
            status = None if found is None else found["status"]
        if status in (None, "running"):
            msg = f"occurrence {utc_iso(scheduled_at)} of {name} is run by another (run {other})"
        else:  # it ran already: an occurrence runs once, whatever its end
            msg = (
                f"occurrence {utc_iso(scheduled_at)} of {name} ran already (run {other}, "
                f"{status}); it runs once: `tieout schedule trigger {name}` without "
                "--scheduled runs the job again"
            )
        if json:
            emit_json(
                {
                    "job": name,
                    "scheduled_at": utc_iso(scheduled_at),
                    "claimed_by": other,
                    "claimed_run_status": status,
                }
            )
        else:
            say(msg)
        return
    with store.read() as conn:
        doc["alerts"] = alerts.list_alerts(conn, run_id=int(doc["run_id"]))
    if json:
        emit_json(doc)
    else:
        _say_run(doc)
        if doc.get("output_tail") and doc["status"] != "succeeded":
            say(str(doc["output_tail"]))
    code = _exit_code(doc)
    if code:
        raise typer.Exit(code)


def _say_run(d: dict[str, Any]) -> None:
    code = f" exit {d['exit_code']}" if d["exit_code"] is not None else ""
    why = f": {d['reason']}" if d["reason"] else ""
    took = f" {d['duration_s']}s" if d["duration_s"] else ""
    say(
        f"{d['run_id']:>6} {d['job']:<24} {d['scheduled_at']} {d['trigger']:<9} "
        f"{d['status']:<9}{code}{took}{why}"
    )


@schedule_app.command("run")
def run(
    poll: Annotated[
        float, typer.Option(help="seconds between maintenance passes (sync, abandoned runs)")
    ] = 10.0,
    lease: LeaseOpt = 60.0,
    heartbeat: HeartbeatOpt = 10.0,
    max_workers: Annotated[int, typer.Option(help="jobs that may run at once")] = 4,
    stop_timeout: Annotated[
        float, typer.Option(help="on SIGTERM/SIGINT, seconds running jobs may take to finish")
    ] = 30.0,
    db: DbOpt = None,
) -> None:
    """Run the scheduler in the foreground until SIGTERM or SIGINT."""
    if heartbeat <= 0 or lease <= heartbeat:
        raise BadInput("--lease", "the lease must be longer than the heartbeat interval")
    if poll <= 0 or max_workers < 1:
        raise BadInput("--poll", "--poll and --max-workers must be positive")
    _configure_logging(logging.INFO)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # kill -USR1: where is it stuck?
    store = open_store(db)
    scheduler = Scheduler(
        store,
        resolve_url(db),
        SchedulerOptions(
            poll_s=poll,
            max_workers=max_workers,
            stop_timeout_s=stop_timeout,
            runner=RunnerOptions(lease_s=lease, heartbeat_s=heartbeat),
        ),
        program=default_program(os.environ),
        sender=alerts.Sender(env=os.environ),
        env=os.environ,
    )
    scheduler.serve()


@schedule_app.command("history")
def history(
    job: Annotated[str | None, typer.Option(help="only this job")] = None,
    status: Annotated[
        str | None, typer.Option(help="only this status: " + ", ".join(runs.STATUSES))
    ] = None,
    limit: Annotated[int | None, typer.Option(help="the latest N runs", min=1)] = None,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Every run: job, scheduled time, start, end, status, exit code, the tail of its output.
    Runs whose scheduler is gone and whose lease has expired are marked abandoned first."""
    if status is not None and status not in runs.STATUSES:
        raise BadInput("--status", f"{status!r}: use one of {', '.join(runs.STATUSES)}")
    store, runner = _runner(db, 60.0, 10.0)
    runner.reap()
    with store.read() as conn:
        docs = runs.history(conn, job=job, status=status, limit=limit)
    if json:
        emit_json(docs)
        return
    for d in docs:
        _say_run(d)


def _absolute(url: str) -> str:
    """A SQLite URL with a relative path (`sqlite:///tieout.db`, the default) made absolute
    against the current directory: the same file from wherever the line runs."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return url
    if parsed.database == ":memory:" or parsed.database.startswith("file:"):
        return url
    full = os.path.abspath(os.path.expanduser(parsed.database))
    return parsed.set(database=full).render_as_string(hide_password=False)


@schedule_app.command("crontab")
def crontab(
    program: Annotated[
        str | None, typer.Option(help="the tieout program cron runs (default: found on PATH)")
    ] = None,
    token_file: Annotated[
        str | None,
        typer.Option(
            "--token-file",
            help="operator mode: the service account's token file the lines run with "
            f"(default: ${SERVICE_TOKEN_FILE_ENV})",
            show_default=False,
        ),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option(
            "--user",
            help="the user the lines run as, for a system crontab (/etc/cron.d/tieout), whose "
            "lines name one; without it, lines for a user's own crontab (`crontab -e`)",
        ),
    ] = None,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Crontab lines (CRON_TZ per job) that run the same jobs from the system cron: each line is
    `tieout schedule trigger NAME --scheduled --db URL`, the scheduler's own code path. In
    operator mode the lines run as a service account: its token file is set for them
    (TIEOUT_SERVICE_TOKEN_FILE=PATH)."""
    url = _absolute(resolve_url(db))  # cron starts the lines in $HOME, not here
    store = open_store(db)
    with store.read() as conn:
        defs = jobs.list_jobs(conn)
    chosen_token = token_file or os.environ.get(SERVICE_TOKEN_FILE_ENV) or None
    env: dict[str, str] = {}
    if chosen_token:
        env[SERVICE_TOKEN_FILE_ENV] = os.path.abspath(os.path.expanduser(chosen_token))
    elif access.operators_exist(store) and not os.environ.get(SERVICE_TOKEN_ENV):
        note(
            "operator mode: these lines need a service account's token to write "
            "(`tieout user add-service NAME --token-file PATH`, then --token-file PATH here)"
        )
    secret = make_url(url).password is not None
    db_args = [] if secret else ["--db", url]
    chosen = program or os.environ.get(PROGRAM_ENV)
    prog = shlex.split(chosen) if chosen else _this_program()
    head = [
        f"tieout schedule crontab: {len(defs)} job(s) of {store.url}",
        "Each line runs `tieout schedule trigger NAME --scheduled`: the occurrence due now, with",
        "its dates filled in, inputs checked, run once (also next to `tieout schedule run`),",
        "recorded in `tieout schedule history` and alerted on. CRON_TZ needs cronie (or a cron",
        "that knows it); alert secrets (TIEOUT_SMTP_PASSWORD, TIEOUT_WEBHOOK_TOKEN) come from",
        "the environment cron gives the command.",
    ]
    if secret:
        head += [
            "The database URL holds a password, which is not printed: give the lines TIEOUT_DB",
            "in their environment (or use a password file such as ~/.pgpass).",
        ]
    if env:
        head += [
            "Operator mode: the jobs run as the service account whose token is in",
            f"{env[SERVICE_TOKEN_FILE_ENV]} (the file cron's user reads; mode 0600).",
        ]
    entries = [
        CrontabEntry(
            name=j.name,
            spec=j.spec,
            timezone=j.timezone,
            command=[
                *prog,
                "schedule",
                "trigger",
                j.name,
                "--scheduled",
                *db_args,
            ],
            describes="tieout " + " ".join(j.args),
        )
        for j in defs
    ]
    text = crontab_text(entries, head, env, user)
    if json:  # the same lines, and each job's schedule and command as data
        emit_json(
            {
                "crontab": text,
                "env": env,
                "user": user,
                "jobs": [
                    {
                        "name": e.name,
                        "cron": e.spec.expr,
                        "timezone": e.timezone,
                        "command": list(e.command),
                        "runs": e.describes,
                    }
                    for e in entries
                ],
            }
        )
        return
    sys.stdout.write(text)


def _this_program() -> list[str]:
    """The tieout program for cron's lines, by its whole path (cron's PATH is /usr/bin:/bin,
    where a virtualenv's tieout is not): the program running now (a console script is run by
    its path, /opt/tieout/.venv/bin/tieout), else the one on PATH, else this Python running
    tieout's entry point (a bare `tieout` failed under cron with "not found", exit 127)."""
    argv0 = sys.argv[0] if sys.argv else ""
    if (
        os.path.basename(argv0).startswith("tieout")
        and os.path.isfile(argv0)
        and os.access(argv0, os.X_OK)
    ):
        return [os.path.abspath(argv0)]
    found = shutil.which("tieout")
    return [os.path.abspath(found)] if found else default_program({})


@schedule_app.command("alerts")
def alerts_cmd(
    run_id: Annotated[int | None, typer.Option("--run", help="alerts of one run")] = None,
    limit: Annotated[int, typer.Option(help="the latest N")] = 100,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Alerts sent (or that failed to go out), per channel."""
    with open_store(db).read() as conn:
        docs = alerts.list_alerts(conn, run_id=run_id, limit=limit)
    if json:
        emit_json(docs)
        return
    for a in docs:
        err = f" ({a['error']})" if a["error"] else ""
        say(
            f"{a['alert_id']:>5} run {a['run_id']} {a['channel']:<8} {a['status']:<7} "
            f"x{a['attempts']} {a['subject']}{err}"
        )


@schedule_app.command("alert-test")
def alert_test(db: DbOpt = None, json: JsonOpt = False) -> None:
    """Send a test alert through every configured channel (recorded like any alert)."""
    _configure_logging(logging.WARNING)
    store = open_store(db)
    with store.read() as conn:
        settings = config.read_settings(conn)
    cfg = config.alert_config(settings)
    now = clock()
    doc = alerts.alert_document(
        "alert-test",
        {"status": "test", "at": utc_iso(now)},
        [alerts.Finding("test", "a test alert from `tieout schedule alert-test`")],
    )
    deliveries = alerts.Sender(env=os.environ).deliver(cfg, doc)
    alerts.record_deliveries(store, now, None, None, doc, deliveries)
    if json:
        emit_json([d.as_json() for d in deliveries])
    else:
        for d in deliveries:
            err = f": {d.error}" if d.error else ""
            say(f"{d.channel}: {d.status} after {d.attempts} attempt(s){err}")
    missing = config.email_missing(settings)
    if missing:  # a channel meant to be there is not: the test fails
        warn(missing)
    if missing or any(d.status == "failed" for d in deliveries):
        raise typer.Exit(1)


@config_app.command("set")
def config_set(
    key: Annotated[str, typer.Argument(help="e.g. alert.smtp.host, alert.max_breaks")],
    value: str,
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Change one setting (audited). Secrets are refused: they come from the environment."""
    stored = config.set_setting(open_store(db), make_ctx(actor), key, value)
    if json:
        emit_json({"key": key, "value": stored})
    else:
        say(f"{key} = {stored}")


@config_app.command("show")
def config_show(db: DbOpt = None, json: JsonOpt = False) -> None:
    """Every setting of scheduled operations, set or not, and whether the secrets are in the
    environment (never their values)."""
    with open_store(db).read() as conn:
        current = config.read_settings(conn)
    doc: dict[str, Any] = {
        "settings": {k: current.get(k) for k in config.KEYS},
        "environment": {
            config.SMTP_PASSWORD_ENV: bool(os.environ.get(config.SMTP_PASSWORD_ENV)),
            config.WEBHOOK_TOKEN_ENV: bool(os.environ.get(config.WEBHOOK_TOKEN_ENV)),
        },
        "channels": config.alert_config(current).channels(),
    }
    if json:
        emit_json(doc)
        return
    for k, about in config.KEYS.items():
        say(f"{k:<26} {current.get(k) or '-':<30} {about}")
    for k, present in doc["environment"].items():
        say(f"{k:<26} {'set' if present else 'not set'}")
