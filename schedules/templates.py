"""Argument templates and business dates. Pure: the exchange calendar comes in as a predicate.

A job's arguments may name dates that are filled in when an occurrence runs, with Python's
format syntax and an optional strftime format: `--date {date}` gives `--date 2026-03-11`,
`drops/acme/trades_{date:%Y%m%d}.csv` gives `drops/acme/trades_20260311.csv`; `{{` and `}}`
are literal braces. The names:

- `date`: the occurrence's date in the job's time zone (or `schedule trigger --date`);
- `business_date`: that date if it is a session of the job's exchange calendar, else the
  session before it;
- `prev_business_date`: the last session strictly before `date`;
- `next_business_date`: the first session strictly after `date`;
- `month_start`, `month_end`: the first and last day of `date`'s month;
- `prev_month_start`, `prev_month_end`: the same for the month before.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, timedelta

from oms.errors import BadInput

CALENDAR_FIELDS = frozenset({"business_date", "prev_business_date", "next_business_date"})
FIELDS = frozenset(
    {"date", "month_start", "month_end", "prev_month_start", "prev_month_end"} | CALENDAR_FIELDS
)
MAX_NON_SESSION_DAYS = 31  # no exchange closes for longer: beyond, the calendar has ended
INPUT_OPTIONS = ("--file",)

_formatter = string.Formatter()


def _parts(text: str) -> list[tuple[str, str | None, str]]:
    """(literal, field, format spec) of a template; BadInput for anything but known names."""
    try:
        parsed = list(_formatter.parse(text))
    except ValueError as exc:
        raise BadInput(
            "argument", f"{text!r}: {exc} (write {{{{ and }}}} for literal braces)"
        ) from None
    out: list[tuple[str, str | None, str]] = []
    for literal, field, spec, conversion in parsed:
        if field is None:
            out.append((literal, None, ""))
            continue
        if field not in FIELDS:
            known = ", ".join("{" + f + "}" for f in sorted(FIELDS))
            raise BadInput("argument", f"{text!r}: unknown template {{{field}}} (known: {known})")
        if conversion is not None or "{" in (spec or ""):
            raise BadInput("argument", f"{text!r}: {{{field}}} takes a strftime format only")
        out.append((literal, field, spec or ""))
    return out


def template_fields(args: Iterable[str]) -> frozenset[str]:
    """The names the arguments use (checks every template)."""
    return frozenset(f for a in args for _, f, _ in _parts(a) if f is not None)


def render(text: str, values: Mapping[str, date]) -> str:
    out = []
    for literal, field, spec in _parts(text):
        out.append(literal)
        if field is not None:
            value = values[field]
            out.append(value.strftime(spec) if spec else value.isoformat())
    return "".join(out)


def render_args(args: Sequence[str], values: Mapping[str, date]) -> list[str]:
    return [render(a, values) for a in args]


def _month_bounds(day: date) -> tuple[date, date]:
    first = day.replace(day=1)
    nxt = (first + timedelta(days=32)).replace(day=1)
    return first, nxt - timedelta(days=1)


def _walk(day: date, step: int, is_session: Callable[[date], bool], *, inclusive: bool) -> date:
    current = day if inclusive else day + timedelta(days=step)
    for _ in range(MAX_NON_SESSION_DAYS):
        if is_session(current):
            return current
        current += timedelta(days=step)
    raise BadInput(
        "business date",
        f"no session within {MAX_NON_SESSION_DAYS} days of {day.isoformat()} "
        "(is the date inside the exchange calendar?)",
    )


def resolve_dates(
    day: date, needed: Iterable[str], is_session: Callable[[date], bool]
) -> dict[str, date]:
    """The values of the needed names for a date; the calendar is consulted only when needed."""
    month_start, month_end = _month_bounds(day)
    prev_start, prev_end = _month_bounds(month_start - timedelta(days=1))
    values: dict[str, date] = {
        "date": day,
        "month_start": month_start,
        "month_end": month_end,
        "prev_month_start": prev_start,
        "prev_month_end": prev_end,
    }
    names = set(needed)
    if "business_date" in names:
        values["business_date"] = _walk(day, -1, is_session, inclusive=True)
    if "prev_business_date" in names:
        values["prev_business_date"] = _walk(day, -1, is_session, inclusive=False)
    if "next_business_date" in names:
        values["next_business_date"] = _walk(day, 1, is_session, inclusive=False)
    return values


def input_paths(args: Sequence[str]) -> list[str]:
    """The input files an argument list names (`--file PATH` or `--file=PATH`)."""
    paths: list[str] = []
    for i, arg in enumerate(args):
        for opt in INPUT_OPTIONS:
            if arg == opt and i + 1 < len(args):
                paths.append(args[i + 1])
            elif arg.startswith(opt + "="):
                paths.append(arg[len(opt) + 1 :])
    return paths
