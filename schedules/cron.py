"""Cron expressions: parsing, APScheduler triggers, occurrences and crontab lines. Pure.

A job's schedule is a standard five-field crontab expression (minute hour day-of-month month
day-of-week), one of the macros (@hourly, @daily, @midnight, @weekly, @monthly, @yearly,
@annually), or six fields with seconds first (for drills and tests; the system cron cannot run
those, so `schedule crontab` prints them as comments).

Day-of-week numbers follow crontab (0 or 7 = Sunday, 1 = Monday). APScheduler 3 counts 0 as
Monday, so the field is rewritten to day names before it reaches APScheduler; the expression kept
and printed is the one the user wrote. Crontab fires when the day of month OR the day of week
matches if both are restricted, APScheduler only when both match: an expression restricting
both is refused, so that the scheduler and the crontab lines always agree.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from oms.errors import BadInput

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab order: 0 = Sunday
_FIELD_RE = re.compile(r"^[A-Za-z0-9*/,\-]+$")
_NUMERIC_RE = re.compile(r"^[0-9*/,\-]+$")
_DOW_ITEM_RE = re.compile(r"^(?P<range>\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:/(?P<step>[0-9]+))?$")


@dataclass(frozen=True, slots=True)
class CronSpec:
    """A parsed schedule: the fields in crontab convention, seconds when given."""

    expr: str  # as the user wrote it, whitespace normalised
    second: str | None
    minute: str
    hour: str
    day: str
    month: str
    day_of_week: str

    @property
    def has_seconds(self) -> bool:
        return self.second is not None

    @property
    def crontab_fields(self) -> str:
        """The five crontab fields (macros expanded)."""
        return f"{self.minute} {self.hour} {self.day} {self.month} {self.day_of_week}"

    def trigger_fields(self) -> dict[str, str]:
        """Keyword arguments of APScheduler 3's CronTrigger (day of week as names)."""
        return {
            "second": self.second if self.second is not None else "0",
            "minute": self.minute,
            "hour": self.hour,
            "day": self.day,
            "month": self.month,
            "day_of_week": day_of_week_names(self.day_of_week),
        }


def _day_number(token: str) -> int:
    low = token.lower()
    if low in DAY_NAMES:
        return DAY_NAMES.index(low)
    if low.isdigit() and 0 <= int(low) <= 7:
        return int(low) % 7
    raise ValueError(f"{token!r} is not a day of the week (0-7 or sun-sat)")


def day_of_week_names(field: str) -> str:
    """A crontab day-of-week field (0/7 = Sunday) as APScheduler day names: "1-5" -> "mon,tue,
    wed,thu,fri"; "*" stays "*"."""
    if field == "*":
        return "*"
    days: set[int] = set()
    for item in field.split(","):
        m = _DOW_ITEM_RE.match(item)
        if m is None:
            raise ValueError(f"{item!r} is not a day-of-week item")
        step = int(m.group("step") or 1)
        if step < 1:
            raise ValueError("a step must be at least 1")
        part = m.group("range")
        if part == "*":
            first, last = 0, 6
        elif "-" in part:
            a, b = part.split("-", 1)
            first, last = _day_number(a), _day_number(b)
            if last == 0 and first > 0:
                last = 7  # "1-7", "mon-sun": Monday to Sunday
            if last < first:
                raise ValueError(f"{part!r}: a day range cannot wrap around the week")
        else:
            first = last = _day_number(part)
            if m.group("step"):
                last = 6  # "1/2": from Monday, every other day
        days.update(d % 7 for d in range(first, last + 1, step))
    if len(days) == 7:
        return "*"
    return ",".join(DAY_NAMES[d] for d in sorted(days))


def parse_cron(expr: str, what: str = "--cron", *, must_fire: bool = False) -> CronSpec:
    """Parse and check a schedule; BadInput names what is wrong. `must_fire`: also refuse one
    that names no day that exists (a new job; a job stored before that check is read as it
    is, and never fires)."""
    text = " ".join(expr.split())
    fields = MACROS.get(text.lower(), text).split()
    if len(fields) not in (5, 6):
        raise BadInput(
            what,
            f"{expr!r} has {len(fields)} field(s); expected 5 (minute hour day month weekday), "
            "6 (second first) or a macro such as @daily",
        )
    for i, f in enumerate(fields):
        names_allowed = i >= len(fields) - 2  # month and day of week may use names
        if not (_FIELD_RE if names_allowed else _NUMERIC_RE).match(f):
            raise BadInput(what, f"{expr!r}: field {f!r} has characters cron does not know")
    second = fields[0] if len(fields) == 6 else None
    minute, hour, day, month, dow = fields[-5:]
    if not day.startswith("*") and not dow.startswith("*"):
        raise BadInput(
            what,
            f"{expr!r} restricts both the day of month and the day of week, which cron reads as "
            "either and the scheduler as both; restrict one of them",
        )
    spec = CronSpec(text, second, minute, hour, day, month, dow)
    try:
        trigger = make_trigger(spec, "UTC")
    except ValueError as exc:
        raise BadInput(what, f"{expr!r}: {exc}") from None
    # a date no year has (30 February, 31 April): the job would never run, and say nothing
    if must_fire and trigger.get_next_fire_time(None, _LEAP_YEAR_BEFORE) is None:
        raise BadInput(what, f"{expr!r} names no day that exists: the job would never run")
    return spec


# (any day of any month comes within the eight years after it: 29 February 2004 and 2008)
_LEAP_YEAR_BEFORE = datetime(2003, 3, 1, tzinfo=UTC)


def check_timezone(name: str, what: str = "--timezone") -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadInput(what, f"{name!r} is not an IANA time zone (e.g. America/New_York)") from None
    return name


def make_trigger(spec: CronSpec, timezone: str) -> Any:
    """APScheduler's CronTrigger for a schedule in a time zone, firing as cron does in the hour
    the clocks go back (schedules.trigger)."""
    from schedules.trigger import CronOnceInRepeatedHour  # imports APScheduler: when needed

    return CronOnceInRepeatedHour(timezone=ZoneInfo(timezone), **spec.trigger_fields())


def second_of_repeated(at: datetime) -> bool:
    """Whether `at` is the second time its wall-clock time came (fold 1 of an ambiguous time)."""
    return at.fold == 1 and at.replace(fold=0).utcoffset() != at.utcoffset()


def a_second_after(fire: datetime) -> datetime:
    """A second after `fire`, in UTC: adding to a time of a zone adds to its wall clock, which
    drops the fold and fell back into the first of the repeated hour (a loop without end)."""
    return fire.astimezone(UTC) + timedelta(seconds=1)


def next_fire(spec: CronSpec, timezone: str, after: datetime) -> datetime | None:
    """The first occurrence at or after a time."""
    fire: datetime | None = make_trigger(spec, timezone).get_next_fire_time(None, after)
    return fire


def latest_fire(spec: CronSpec, timezone: str, now: datetime, window: timedelta) -> datetime | None:
    """The last occurrence at or before `now` and no earlier than `now - window` (what a
    crontab line that starts a few seconds late is running), else None."""
    trigger = make_trigger(spec, timezone)
    found: datetime | None = None
    fire: datetime | None = trigger.get_next_fire_time(None, now - window)
    while fire is not None and fire <= now:
        found = fire
        later: datetime | None = trigger.get_next_fire_time(fire, a_second_after(fire))
        if later is not None and later <= fire:  # never: but a loop must end
            break
        fire = later
    return found


@dataclass(frozen=True, slots=True)
class CrontabEntry:
    name: str
    spec: CronSpec
    timezone: str
    command: Sequence[str]  # the program and arguments the line runs
    describes: str  # what the job runs, for the comment above the line


def crontab_escape(text: str) -> str:
    """crontab turns an unescaped % into a newline."""
    return text.replace("%", "\\%")


def _one_line(text: str) -> str:
    """Text for a crontab comment: its control characters as escapes, so that a line break in
    it cannot start a line cron would run."""
    return "".join(c if " " <= c != "\x7f" else repr(c)[1:-1] for c in text)


def _runnable(text: str) -> bool:
    return all(" " <= c != "\x7f" for c in text)


def crontab_text(
    entries: Sequence[CrontabEntry],
    header: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    user: str | None = None,
) -> str:
    """Crontab lines (cronie's CRON_TZ names each line's time zone) for the jobs; `env`: variables
    set for every line (NAME=value lines after the header); `user`: the user field of a system
    crontab (/etc/cron.d), between the schedule and the command."""
    if user is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", user):
        raise BadInput("--user", f"{_one_line(user)!r} is not a user name")
    who = f"{user} " if user else ""
    lines = [f"# {h}" if h else "#" for h in header]
    for key, value in (env or {}).items():
        if not (_runnable(key) and _runnable(value)):
            raise BadInput(key, f"{_one_line(value)!r} holds a control character")
        lines.append(f'{key}="{value}"' if any(c.isspace() for c in value) else f"{key}={value}")
    for e in entries:
        command = crontab_escape(shlex.join(e.command))
        lines.append("")
        lines.append(f"# {_one_line(e.name)}: {_one_line(e.describes)}")
        if not (_runnable(command) and _runnable(e.timezone)):
            # (stored before such arguments were refused): never a line cron would run
            lines.append(f"# {_one_line(e.name)} holds a control character: not scheduled here")
            continue
        if e.spec.has_seconds:
            lines.append(
                f"# {e.name} fires every few seconds ({e.spec.expr}); cron has minutes only: "
                "run it with `tieout schedule run`"
            )
            lines.append(f"# CRON_TZ={e.timezone}")
            lines.append(f"# {e.spec.crontab_fields} {who}{command}")
            continue
        lines.append(f"CRON_TZ={e.timezone}")
        lines.append(f"{e.spec.crontab_fields} {who}{command}")
    return "\n".join(lines) + "\n"
