"""Exchange calendars: sessions and settlement dates (exchange_calendars, loaded lazily: its
import costs most of a second, which a command that does not need it should not pay)."""

from __future__ import annotations

import warnings
from collections.abc import Container
from datetime import UTC, date, datetime, timedelta
from functools import cache, lru_cache
from typing import Any

from oms.errors import BadInput

ALWAYS_OPEN = "24/7"
DEFAULT_SETTLEMENT_DAYS = 1
MAX_SETTLEMENT_SPAN = 366  # days from a trade date to a stated settlement date: a year at most


@cache
def calendar_names() -> frozenset[str]:
    import exchange_calendars as xc

    return frozenset(xc.get_calendar_names(include_aliases=True))


def check_exchange(name: str) -> str:
    if name == ALWAYS_OPEN or name in calendar_names():
        return name
    raise BadInput(
        "exchange",
        f"{name!r} is not an exchange calendar (a MIC such as XNYS or XLON, or 24/7)",
    )


@cache
def canonical_exchange(name: str) -> str:
    """The exchange calendar's own code for a name it is known by (LSE -> XLON, NASDAQ -> XNYS,
    JPX -> XTKS; 24/7 as it is): what a setting per exchange is kept under. 24/7 is answered
    without importing exchange_calendars (and pandas): an order on a 24/7 instrument needs
    neither."""
    if check_exchange(name) == ALWAYS_OPEN:
        return name
    import exchange_calendars as xc

    return str(xc.resolve_alias(name))


@cache
def get_calendar(name: str) -> Any:
    import exchange_calendars as xc

    with warnings.catch_warnings():  # pandas deprecations inside exchange_calendars
        warnings.simplefilter("ignore")
        return xc.get_calendar(check_exchange(name))


def settlement_date(exchange: str, trade_date: date, days: int = DEFAULT_SETTLEMENT_DAYS) -> date:
    """The settlement date: `days` sessions of the exchange after the trade date (T+1 default).
    A trade date that is not a session (a weekend trade) counts from the next session."""
    if exchange == ALWAYS_OPEN:
        try:
            return trade_date + timedelta(days=days)
        except OverflowError:
            raise BadInput(
                "trade_date", f"{trade_date} settles after the last date there is ({date.max})"
            ) from None
    import pandas as pd

    cal = get_calendar(exchange)
    ts = pd.Timestamp(trade_date)
    if not cal.first_session <= ts <= cal.last_session:
        raise BadInput(
            "trade_date",
            f"{trade_date} is outside the {exchange} calendar "
            f"({cal.first_session.date()} to {cal.last_session.date()})",
        )
    closed = _settlement_holidays(canonical_exchange(exchange), trade_date, days)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            base = cal.date_to_session(ts, direction="next")  # the trade date, or the next one
            settled = cal.session_offset(base, days)
            # a session the settlement system is closed on is not counted (US: Columbus and
            # Veterans Day, when the NYSE trades and the Federal Reserve and DTC do not)
            counted = sum(1 for d in _sessions(cal, base, settled) if d not in closed)
            while counted < days or settled.date() in closed:
                settled = cal.session_offset(settled, 1)
                counted += settled.date() not in closed
        except ValueError:  # exchange_calendars: beyond its last session
            raise BadInput(
                "trade_date",
                f"{trade_date} settles beyond the end of the {exchange} calendar "
                f"({cal.last_session.date()})",
            ) from None
    return date(settled.year, settled.month, settled.day)


def _sessions(cal: Any, after: Any, through: Any) -> list[date]:
    """The calendar's sessions after `after`, through `through` (dates)."""
    if through <= after:
        return []
    return [d.date() for d in cal.sessions_in_range(after, through)[1:]]


# the days an exchange trades and its settlement system does not: the calendar's own code ->
# the `holidays` package's financial calendar of that system, and the months such days fall in
# (tests/unit/test_calendars.py checks them over a century): importing `holidays` takes 0.2 s,
# which a command settling a trade in another month does not pay
_SETTLEMENT_SYSTEMS = {"XNYS": ("FederalReserve", frozenset({10, 11}))}
_NONE: frozenset[date] = frozenset()


def _settlement_holidays(code: str, trade_date: date, days: int) -> Container[date]:
    """The days the exchange's trades do not settle on beside its own holidays, as far as a
    trade of `trade_date` settling in `days` sessions can reach: for US exchanges the Federal
    Reserve's holidays (DTC settles only on Fed business days)."""
    found = _SETTLEMENT_SYSTEMS.get(code)
    if found is None:
        return _NONE
    system, months = found
    reach = trade_date + timedelta(days=2 * days + 14)  # (weekends and holidays between)
    if not any(m in months for m in _months(trade_date, reach)):
        return _NONE
    return _system_holidays(system)


def _months(first: date, last: date) -> set[int]:
    out, at = set(), first.replace(day=1)
    while at <= last:
        out.add(at.month)
        at = (at + timedelta(days=32)).replace(day=1)
    return out


@cache
def _system_holidays(system: str) -> Container[date]:
    import holidays

    days: Container[date] = holidays.financial_holidays(system)  # (years fill in on lookup)
    return days


def session_on_or_after(exchange: str, day: date, days: int = 14) -> date:
    """`day` if it is a session of the exchange, else the next session within `days` (else
    `day`): the business day a date without a session counts on."""
    for n in range(days):
        if is_session(exchange, day + timedelta(days=n)):
            return day + timedelta(days=n)
    return day


def is_session(exchange: str, day: date) -> bool:
    if exchange == ALWAYS_OPEN:
        return True
    import pandas as pd

    return bool(get_calendar(exchange).is_session(pd.Timestamp(day)))


@lru_cache(maxsize=4096)
def session_bounds(exchange: str, day: date) -> tuple[datetime, datetime] | None:
    """The open and close (UTC) of the exchange's session on a date; None when it has none
    (a weekend, a holiday). Not for 24/7 markets, which have no sessions to speak of. Kept per
    process (a calendar's sessions do not change while it runs; asking exchange_calendars
    costs about 75 us, and every order's market hours and trade date ask)."""
    if exchange == ALWAYS_OPEN:
        raise ValueError("24/7 markets have no session bounds")
    import pandas as pd

    cal = get_calendar(exchange)
    ts = pd.Timestamp(day)
    if not cal.first_session <= ts <= cal.last_session or not cal.is_session(ts):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opened = cal.session_open(ts).to_pydatetime()
        closed = cal.session_close(ts).to_pydatetime()
    return opened.astimezone(UTC), closed.astimezone(UTC)


@lru_cache(maxsize=4096)
def session_break(exchange: str, day: date) -> tuple[datetime, datetime] | None:
    """The lunch break (start, end in UTC) of the exchange's session on a date (Tokyo, Hong
    Kong, Shanghai ...); None when the session has none, or there is no session."""
    if exchange == ALWAYS_OPEN or session_bounds(exchange, day) is None:
        return None
    import pandas as pd

    cal = get_calendar(exchange)
    ts = pd.Timestamp(day)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start, end = cal.session_break_start(ts), cal.session_break_end(ts)
    if pd.isna(start) or pd.isna(end):
        return None
    return start.to_pydatetime().astimezone(UTC), end.to_pydatetime().astimezone(UTC)


def trading_at(exchange: str, at: datetime) -> bool:
    """Whether the exchange trades at a time: inside a session (open <= at < close) and not in
    its lunch break (break start <= at < break end). 24/7 markets always trade."""
    if exchange == ALWAYS_OPEN:
        return True
    found = _session_label(exchange, at)
    if found is None:
        return False
    pause = session_break(exchange, found[0])
    return pause is None or not pause[0] <= at < pause[1]


def session_at(exchange: str, at: datetime) -> tuple[datetime, datetime] | None:
    """The session (open, close in UTC; open <= at < close) the exchange is in at a time, or
    None when it is closed. A session is labelled with its local date, which is not always the
    UTC date of `at`: Sydney's session of a date opens the evening before in UTC, so the
    sessions labelled the day before, the day of and the day after are looked at."""
    found = _session_label(exchange, at)
    return None if found is None else found[1]


def next_session_label(exchange: str, at: datetime, days: int = 14) -> date | None:
    """The label of the first session that opens after a time (within `days`), or None."""
    day = at.astimezone(UTC).date() - timedelta(days=1)
    for n in range(days + 2):
        label = day + timedelta(days=n)
        bounds = session_bounds(exchange, label)
        if bounds is not None and bounds[0] > at:
            return label
    return None


def session_label(exchange: str, at: datetime) -> date | None:
    """The date that labels the session the exchange is in at a time (None: closed)."""
    found = _session_label(exchange, at)
    return None if found is None else found[0]


def _session_label(exchange: str, at: datetime) -> tuple[date, tuple[datetime, datetime]] | None:
    if exchange == ALWAYS_OPEN:
        raise ValueError("24/7 markets have no session bounds")
    day = at.astimezone(UTC).date()
    for label in (day, day + timedelta(days=1), day - timedelta(days=1)):
        bounds = session_bounds(exchange, label)
        if bounds is not None and bounds[0] <= at < bounds[1]:
            return label, bounds
    return None


def trade_date(exchange: str, at: datetime) -> date:
    """The trade date of an execution at a time: the date of the session it falls in (Sydney's
    morning session, in the UTC evening before, trades on the local date). Outside a session
    (a US after-hours trade at 20:30 New York time, which is the next day in UTC; Tokyo's
    trades before the open, the day before in UTC): the exchange's local date, or, when that
    date has no session (a weekend, a holiday), the next session's. 24/7: the UTC date."""
    if exchange == ALWAYS_OPEN:
        return at.astimezone(UTC).date()
    found = _session_label(exchange, at)
    if found is not None:
        return found[0]
    import pandas as pd

    cal = get_calendar(exchange)
    local = at.astimezone(cal.tz).date()
    ts = pd.Timestamp(local)
    if not cal.first_session <= ts <= cal.last_session:
        return local
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session = cal.date_to_session(ts, direction="next")
    return date(session.year, session.month, session.day)


def exchange_zone(exchange: str) -> Any:
    """The exchange's time zone (its calendar's; 24/7: UTC)."""
    return UTC if exchange == ALWAYS_OPEN else get_calendar(exchange).tz


def day_end(exchange: str, day: date) -> datetime:
    """The first instant (UTC) after a date on an exchange: the local midnight that ends it in
    the exchange's time zone (24/7: UTC midnight). A position marked as of a date takes the
    last price before it: Sydney's next session, which opens the UTC evening before, is not
    that date's."""
    nxt = day + timedelta(days=1)
    return datetime(nxt.year, nxt.month, nxt.day, tzinfo=exchange_zone(exchange)).astimezone(UTC)


def next_close(exchange: str, after: datetime) -> datetime:
    """The first session close of the exchange after a time (UTC); for 24/7 markets the end of
    the UTC day. A day order placed at that time expires then."""
    if exchange == ALWAYS_OPEN:
        day = after.astimezone(UTC).date() + timedelta(days=1)
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    import pandas as pd

    cal = get_calendar(exchange)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        minute = pd.Timestamp(after.astimezone(UTC)).floor("min")
        closed = cal.next_close(minute)
    result: datetime = closed.to_pydatetime().astimezone(UTC)
    return result


def business_days(first_seen: date, as_of: date, calendar: str) -> int:
    """Sessions of `calendar` after `first_seen` up to and including `as_of` (0 on the day it
    was found; 24/7: calendar days): how breaks age, in `tieout breaks list` and the reports."""
    if as_of <= first_seen:
        return 0
    if calendar == ALWAYS_OPEN:
        return (as_of - first_seen).days
    import pandas as pd

    sessions = get_calendar(calendar).sessions
    lo = sessions.searchsorted(pd.Timestamp(first_seen), side="right")
    hi = sessions.searchsorted(pd.Timestamp(as_of), side="right")
    return int(hi - lo)
