"""Job definitions: a named tieout command with a cron schedule and a time zone.

The definitions (`schedule_jobs`) are the record: adding, replacing and removing a job are
audited. APScheduler's job store holds only the trigger state derived from them (see
schedules.scheduler). Built-in kinds generate the argument lists of common operations.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time
from typing import Any

from sqlalchemy import Connection, select

from oms import audit
from oms.book import Ctx
from oms.errors import AlreadyExists, BadInput, NotFound
from oms.store import Store
from oms.values import printable, utc_iso
from schedules.config import THRESHOLD_NAMES, threshold_text
from schedules.cron import CronSpec, check_timezone, next_fire, parse_cron
from schedules.schema import schedule_jobs
from schedules.templates import template_fields

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")
DEFAULT_MISFIRE_GRACE_S = 300
MAX_MISFIRE_GRACE_S = 366 * 86400
CUSTOM = "command"


@dataclass(frozen=True, slots=True)
class JobDef:
    name: str
    cron: str
    timezone: str
    args: tuple[str, ...]
    kind: str = CUSTOM
    calendar: str | None = None  # None: the schedule.calendar setting, else XNYS
    sessions_only: bool = False
    misfire_grace_s: int = DEFAULT_MISFIRE_GRACE_S
    thresholds: Mapping[str, str] = field(default_factory=dict)
    run_as: str = ""
    created_at: datetime | None = None
    created_by: str | None = None

    @property
    def spec(self) -> CronSpec:
        return parse_cron(self.cron)

    @property
    def fingerprint(self) -> str:
        """What APScheduler's copy of the job must match (its trigger and grace time)."""
        text = json.dumps([self.spec.expr, self.timezone, self.misfire_grace_s])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def terms(self) -> dict[str, Any]:
        """The definition without who and when: what makes two definitions the same."""
        return {
            "name": self.name,
            "kind": self.kind,
            "cron": self.cron,
            "timezone": self.timezone,
            "calendar": self.calendar,
            "args": list(self.args),
            "sessions_only": self.sessions_only,
            "misfire_grace_s": self.misfire_grace_s,
            "thresholds": dict(sorted(self.thresholds.items())),
            "run_as": self.run_as,
        }

    def as_json(self, now: datetime | None = None) -> dict[str, Any]:
        doc = self.terms()
        doc["created_at"] = utc_iso(self.created_at) if self.created_at else None
        doc["created_by"] = self.created_by
        if now is not None:
            fire = next_fire(self.spec, self.timezone, now)
            doc["next_run_at"] = utc_iso(fire) if fire else None
        return doc


def check_job(job: JobDef) -> JobDef:
    """Validate a definition (pure); `recon run` jobs get `--json`, which alerting reads."""
    if not NAME_RE.fullmatch(job.name):  # (match let a name end in a line break)
        raise BadInput(
            "NAME", f"{job.name!r}: letters, digits, '.', '_' and '-', at most 64 characters"
        )
    parse_cron(job.cron, must_fire=True)
    check_timezone(job.timezone)
    args = tuple(job.args)
    if not args:
        raise BadInput("TIEOUT-ARGS", "no tieout command given (put it after --)")
    if args[0] == "tieout":
        args = args[1:]
    if not args or args[0] == "schedule":
        raise BadInput("TIEOUT-ARGS", "a job cannot run `tieout schedule ...`")
    for a in args:
        if any(c < " " or c == "\x7f" for c in a):
            raise BadInput(
                "TIEOUT-ARGS",
                f"{printable(a)!r} holds a control character (a line break, a tab): a job's "
                "command is one line of a crontab, and such an argument would end it",
            )
        if a == "--db" or a.startswith("--db="):
            raise BadInput(
                "TIEOUT-ARGS", "--db: a job runs on the scheduler's database, which is passed on"
            )
    template_fields(args)
    if args[:2] == ("recon", "run") and "--json" not in args:
        args = (*args, "--json")
    if not 1 <= job.misfire_grace_s <= MAX_MISFIRE_GRACE_S:
        raise BadInput("--misfire-grace", f"must be 1 to {MAX_MISFIRE_GRACE_S} seconds (366 days)")
    for k, v in job.thresholds.items():
        if k not in THRESHOLD_NAMES:
            raise BadInput("threshold", f"unknown threshold {k!r}")
        threshold_text(k, v)
    return replace(
        job, args=args, thresholds={k: threshold_text(k, v) for k, v in job.thresholds.items()}
    )


def _from_row(row: Any) -> JobDef:
    return JobDef(
        name=row.name,
        cron=row.cron,
        timezone=row.timezone,
        args=tuple(json.loads(row.args)),
        kind=row.kind,
        calendar=row.calendar,
        sessions_only=bool(row.sessions_only),
        misfire_grace_s=int(row.misfire_grace_s),
        thresholds=json.loads(row.thresholds),
        run_as=row.run_as,
        created_at=row.created_at,
        created_by=row.created_by,
    )


def get_job(conn: Connection, name: str) -> JobDef:
    row = conn.execute(select(schedule_jobs).where(schedule_jobs.c.name == name)).first()
    if row is None:
        raise NotFound("job", name)
    return _from_row(row)


def find_job(conn: Connection, name: str) -> JobDef | None:
    row = conn.execute(select(schedule_jobs).where(schedule_jobs.c.name == name)).first()
    return None if row is None else _from_row(row)


def list_jobs(conn: Connection) -> list[JobDef]:
    return [
        _from_row(r) for r in conn.execute(select(schedule_jobs).order_by(schedule_jobs.c.name))
    ]


def add_job(
    store: Store, ctx: Ctx, job: JobDef, *, replace_existing: bool = False
) -> tuple[JobDef, str]:
    """Store a job; returns it and "added", "replaced" or "unchanged". The same name with other
    terms is refused (exit 4) unless `replace_existing`."""
    job = check_job(replace(job, run_as=job.run_as or ctx.actor))
    with store.write() as conn:
        old = find_job(conn, job.name)
        if old is not None and old.terms() == job.terms():
            return old, "unchanged"
        if old is not None and not replace_existing:
            raise AlreadyExists("job", job.name)
        values = {
            "kind": job.kind,
            "cron": job.cron,
            "timezone": job.timezone,
            "calendar": job.calendar,
            "args": json.dumps(list(job.args)),
            "sessions_only": job.sessions_only,
            "misfire_grace_s": job.misfire_grace_s,
            "thresholds": json.dumps(dict(sorted(job.thresholds.items()))),
            "run_as": job.run_as,
            "created_at": ctx.now,
            "created_by": ctx.actor,
        }
        if old is None:
            conn.execute(schedule_jobs.insert().values(name=job.name, **values))
        else:
            conn.execute(
                schedule_jobs.update().where(schedule_jobs.c.name == job.name).values(**values)
            )
        audit.append(
            conn,
            at=ctx.now,
            actor=ctx.actor,
            action="schedule.add" if old is None else "schedule.replace",
            entity_type="schedule_job",
            entity_id=job.name,
            payload={"job": job.terms(), "was": old.terms() if old else None},
        )
        stored = get_job(conn, job.name)
    return stored, "added" if old is None else "replaced"


def remove_job(store: Store, ctx: Ctx, name: str) -> JobDef:
    with store.write() as conn:
        old = get_job(conn, name)
        conn.execute(schedule_jobs.delete().where(schedule_jobs.c.name == name))
        audit.append(
            conn,
            at=ctx.now,
            actor=ctx.actor,
            action="schedule.remove",
            entity_type="schedule_job",
            entity_id=name,
            payload={"job": old.terms()},
        )
    return old


# ---- built-in kinds (pure) --------------------------------------------------------------------

BUILTINS = ("eod-recon", "order-expiry", "exceptions-report", "monthly-statements", "retention")
DATE_FIELDS = ("date", "business_date", "prev_business_date")


@dataclass(frozen=True, slots=True)
class CalendarInfo:
    """What the defaults of built-in jobs need of an exchange calendar."""

    timezone: str
    close: time | None  # the regular session close, local time; None: never closes (24/7)
    weekdays: str  # crontab day-of-week field of the trading week, e.g. "1-5"


def weekdays_field(weekmask: str) -> str:
    """exchange_calendars' weekmask ("1111100", Monday first) as a crontab field."""
    days = sorted((i + 1) % 7 for i, c in enumerate(weekmask[:7]) if c == "1")
    if len(days) == 7 or not days:
        return "*"
    runs: list[list[int]] = []
    for d in days:
        if runs and d == runs[-1][-1] + 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 2 else ",".join(map(str, r)) for r in runs)


# the built-in order-expiry job runs this long after the close: a bar of the session's last
# minutes imported after `order expire-due` ran can no longer fill the orders it expired (the
# paper venue's time only goes forward; `md import` names such orders), so the feed's last bars
# get time to land first
EXPIRY_AFTER_CLOSE_MINUTES = 15


def close_cron(info: CalendarInfo, offset_minutes: int) -> str:
    """A cron expression `offset_minutes` after the regular close on trading weekdays (capped at
    23:59 local time, so that the weekday stays the session's). A 24/7 calendar's day closes at
    midnight UTC: its jobs run `offset_minutes` after it, every day."""
    if info.close is None:
        minutes = min(offset_minutes, 23 * 60 + 59)
        return f"{minutes % 60} {minutes // 60} * * *"
    minutes = min(info.close.hour * 60 + info.close.minute + offset_minutes, 23 * 60 + 59)
    return f"{minutes % 60} {minutes // 60} * * {info.weekdays}"


def default_date_field(info: CalendarInfo) -> str:
    """The business date a built-in job passes by default: the day whose close it follows. A
    job after a regular close runs on that session's own date; a 24/7 job runs after midnight,
    on the next day, so it passes the day before."""
    return "prev_business_date" if info.close is None else "date"


EXPIRE_DUE = ("order", "expire-due")


def expiry_gaps(
    exchanges: Mapping[str, str], job_calendars: Sequence[str], canonical: Any
) -> dict[str, list[str]]:
    """The calendars of the book's instruments (symbol -> exchange) after whose close no
    order-expiry job runs (`job_calendars`: the calendars of the jobs that run `order
    expire-due`), each with its symbols. A day or gtd order of such an instrument stays live,
    its cash reserved, until a job of another calendar happens to run (a 24/7 order placed on
    Friday, under a New York job, until Monday evening). `canonical` names a calendar by its
    own code (NASDAQ and XNYS are one calendar)."""
    covered = {canonical(c) for c in job_calendars}
    gaps: dict[str, list[str]] = {}
    for symbol, exchange in sorted(exchanges.items()):
        code = canonical(exchange)
        if code not in covered:
            gaps.setdefault(code, []).append(symbol)
    return gaps


def builtin_job(
    kind: str,
    info: CalendarInfo,
    *,
    name: str | None = None,
    cron: str | None = None,
    timezone: str | None = None,
    profile: str | None = None,
    file_pattern: str | None = None,
    date_field: str | None = None,
    fmt: str = "pdf",
    out: str | None = None,
    fail_on_breaks: bool = False,
) -> JobDef:
    """The definition of a built-in job, with sensible defaults from the calendar."""
    date_field = date_field or default_date_field(info)
    if date_field not in DATE_FIELDS:
        raise BadInput("--date-field", f"{date_field!r}: use one of {', '.join(DATE_FIELDS)}")
    day = "{" + date_field + "}"
    stamp = "{" + date_field + ":%Y%m%d}"
    tz = timezone or info.timezone
    if kind == "eod-recon":
        if not profile or not file_pattern:
            raise BadInput("eod-recon", "--profile and --file-pattern are required")
        stem = re.sub(r"[^A-Za-z0-9._\-]", "-", profile.rsplit("/", 1)[-1].removesuffix(".toml"))
        args = ["recon", "run", "--profile", profile, "--file", file_pattern, "--date", day]
        args += ["--json", *(["--fail-on-breaks"] if fail_on_breaks else [])]
        return JobDef(
            name=name or f"eod-recon-{stem}"[:64],
            kind=kind,
            cron=cron or close_cron(info, 120),
            timezone=tz,
            args=tuple(args),
            sessions_only=True,
        )
    if kind == "order-expiry":
        return JobDef(
            name=name or "order-expiry",
            kind=kind,
            cron=cron or close_cron(info, EXPIRY_AFTER_CLOSE_MINUTES),
            timezone=tz,
            args=("order", "expire-due", "--json"),
            sessions_only=True,
        )
    if kind == "exceptions-report":
        return JobDef(
            name=name or "exceptions-report",
            kind=kind,
            cron=cron or close_cron(info, 180),
            timezone=tz,
            args=(
                "report",
                "exceptions",
                "--date",
                day,
                "--format",
                fmt,
                "--out",
                out or f"reports/exceptions_{stamp}.{fmt}",
            ),
            sessions_only=True,
        )
    if kind == "monthly-statements":
        return JobDef(
            name=name or "monthly-statements",
            kind=kind,
            cron=cron or "0 6 1 * *",
            timezone=tz,
            args=(
                "report",
                "statement",
                "--all",
                "--from",
                "{prev_month_start}",
                "--to",
                "{prev_month_end}",
                "--format",
                fmt,
                "--out",
                out or "statements/{prev_month_start:%Y-%m}",
            ),
        )
    if kind == "retention":
        return JobDef(
            name=name or "retention",
            kind=kind,
            cron=cron or "0 3 * * 0",
            timezone=timezone or "UTC",
            args=("retention", "apply", "--json"),
        )
    raise BadInput("KIND", f"{kind!r}: use one of {', '.join(BUILTINS)}")


def calendar_info(calendar: str) -> CalendarInfo:
    """The edge: read a calendar's zone, regular close and trading week."""
    from oms.calendars import ALWAYS_OPEN, get_calendar

    if calendar == ALWAYS_OPEN:
        return CalendarInfo("UTC", None, "*")
    cal = get_calendar(calendar)
    closes: Sequence[Any] = cal.close_times
    close = closes[-1][1]
    return CalendarInfo(str(cal.tz), close, weekdays_field(str(cal.weekmask)))
