from datetime import UTC, date, datetime, timedelta

import pytest

from oms.calendars import day_end, session_bounds, settlement_date, trade_date
from oms.errors import BadInput


def test_session_bounds_of_a_regular_day_a_half_day_and_a_holiday() -> None:
    assert session_bounds("XNYS", date(2026, 11, 24)) == (
        datetime(2026, 11, 24, 14, 30, tzinfo=UTC), datetime(2026, 11, 24, 21, 0, tzinfo=UTC))
    assert session_bounds("XNYS", date(2026, 11, 27)) == (  # the day after Thanksgiving
        datetime(2026, 11, 27, 14, 30, tzinfo=UTC), datetime(2026, 11, 27, 18, 0, tzinfo=UTC))
    assert session_bounds("XNYS", date(2026, 11, 26)) is None  # Thanksgiving
    assert session_bounds("XNYS", date(2026, 11, 28)) is None  # Saturday
    with pytest.raises(ValueError, match="24/7"):
        session_bounds("24/7", date(2026, 11, 28))


@pytest.mark.parametrize(("exchange", "trade", "settle"), [
    ("XNYS", date(2026, 11, 24), date(2026, 11, 25)),
    ("XNYS", date(2026, 11, 25), date(2026, 11, 27)),  # over Thanksgiving
    ("XNYS", date(2026, 11, 27), date(2026, 11, 30)),  # over the weekend
    ("XNYS", date(2026, 11, 28), date(2026, 12, 1)),  # a Saturday trade counts from Monday
    ("24/7", date(2026, 11, 28), date(2026, 11, 29)),
    ("XLON", date(2026, 12, 24), date(2026, 12, 29)),  # Christmas and Boxing Day
])
def test_settlement_is_one_session_after_the_trade_date(
    exchange: str, trade: date, settle: date
) -> None:
    assert settlement_date(exchange, trade) == settle


def test_unknown_exchange_and_dates_outside_the_calendar() -> None:
    with pytest.raises(BadInput, match="not an exchange calendar"):
        settlement_date("MOON", date(2026, 1, 2))
    with pytest.raises(BadInput, match="outside the XNYS calendar"):
        settlement_date("XNYS", date(2099, 1, 2))


def test_a_trade_on_the_last_session_has_no_settlement_date_in_the_calendar() -> None:
    from oms.calendars import get_calendar

    last = get_calendar("XNYS").last_session.date()
    with pytest.raises(BadInput, match="settles beyond the end of the XNYS calendar"):
        settlement_date("XNYS", last)


@pytest.mark.parametrize(("after", "close"), [
    (datetime(2026, 11, 24, 15, 0, tzinfo=UTC), datetime(2026, 11, 24, 21, 0, tzinfo=UTC)),
    (datetime(2026, 11, 24, 22, 0, tzinfo=UTC), datetime(2026, 11, 25, 21, 0, tzinfo=UTC)),
    (datetime(2026, 11, 25, 23, 0, tzinfo=UTC), datetime(2026, 11, 27, 18, 0, tzinfo=UTC)),
    (datetime(2026, 11, 28, 12, 0, tzinfo=UTC), datetime(2026, 11, 30, 21, 0, tzinfo=UTC)),
])
def test_a_day_order_lives_until_the_next_close(after: datetime, close: datetime) -> None:
    from oms.calendars import next_close

    assert next_close("XNYS", after) == close
    assert next_close("24/7", after) == datetime(after.year, after.month, after.day,
                                                  tzinfo=UTC) + timedelta(days=1)


@pytest.mark.parametrize(("exchange", "at", "traded"), [
    # in a session: its label (Sydney's morning session is the evening before in UTC)
    ("XNYS", "2026-07-10T15:00:00Z", date(2026, 7, 10)),
    ("XASX", "2026-03-01T23:30:00Z", date(2026, 3, 2)),
    # outside one: the exchange's local date, not the UTC date (they used to give 07-11, a
    # Saturday, for a Friday after-hours trade, and 03-02 for Tokyo's Tuesday pre-open)
    ("XNYS", "2026-07-11T00:30:00Z", date(2026, 7, 10)),  # Friday 20:30 New York
    ("XNYS", "2026-07-10T12:00:00Z", date(2026, 7, 10)),  # Friday 08:00, before the open
    ("XTKS", "2026-03-02T23:30:00Z", date(2026, 3, 3)),  # Tuesday 08:30 Tokyo
    ("XTKS", "2026-03-03T03:00:00Z", date(2026, 3, 3)),  # Tokyo's lunch break
    # a local date without a session: the next session's
    ("XNYS", "2026-07-11T15:00:00Z", date(2026, 7, 13)),  # Saturday
    ("XLON", "2026-12-25T10:00:00Z", date(2026, 12, 29)),  # Christmas, then Boxing Day
    ("24/7", "2026-07-11T00:30:00Z", date(2026, 7, 11)),  # the UTC date
])  # fmt: skip
def test_the_trade_date_is_the_exchange_s_business_date(
    exchange: str, at: str, traded: date
) -> None:
    assert trade_date(exchange, datetime.fromisoformat(at)) == traded


@pytest.mark.parametrize(("exchange", "day", "end"), [
    ("XNYS", date(2026, 7, 10), "2026-07-11T04:00:00+00:00"),  # EDT midnight
    ("XASX", date(2026, 3, 5), "2026-03-05T13:00:00+00:00"),  # AEDT midnight: before the
    # next session, which opens at 23:00Z
    ("XTKS", date(2026, 3, 3), "2026-03-03T15:00:00+00:00"),
    ("24/7", date(2026, 3, 5), "2026-03-06T00:00:00+00:00"),
])  # fmt: skip
def test_a_date_ends_at_the_exchange_s_local_midnight(exchange: str, day: date, end: str) -> None:
    assert day_end(exchange, day) == datetime.fromisoformat(end)


@pytest.mark.parametrize(
    ("traded", "days", "settles"),
    [
        (date(2026, 10, 9), 1, date(2026, 10, 13)),  # Friday; Monday is Columbus Day
        (date(2026, 11, 10), 1, date(2026, 11, 12)),  # Veterans Day between
        (date(2026, 10, 12), 1, date(2026, 10, 13)),  # traded on Columbus Day: the NYSE is open
        (date(2026, 10, 12), 0, date(2026, 10, 13)),  # T+0 on a day nothing settles
        (date(2026, 10, 8), 2, date(2026, 10, 13)),
        (date(2026, 11, 25), 1, date(2026, 11, 27)),  # Thanksgiving: the exchange's own holiday
        (date(2026, 3, 11), 1, date(2026, 3, 12)),
    ],
)
def test_us_trades_settle_on_days_the_settlement_system_is_open(
    traded: date, days: int, settles: date
) -> None:
    """An audit: a US fill of Friday 9 October 2026 settled on Monday 12 October, Columbus
    Day, when the NYSE trades but the Federal Reserve and DTC do not (Veterans Day likewise).
    US settlement counts sessions of the exchange that are also Fed business days; another
    name of the exchange counts the same."""
    assert settlement_date("XNYS", traded, days) == settles
    assert settlement_date("NASDAQ", traded, days) == settles


def test_the_months_checked_for_us_settlement_holidays_hold_every_one_of_them() -> None:
    """The `holidays` package is imported (0.2 s) only for settlements that reach the months
    where the Fed is closed and the NYSE is not (October and November: Columbus and Veterans
    Day); over the twenty years of the exchange calendar, no such day falls in another month."""
    import holidays

    from oms.calendars import _SETTLEMENT_SYSTEMS, get_calendar

    system, months = _SETTLEMENT_SYSTEMS["XNYS"]
    sessions = {d.date() for d in get_calendar("XNYS").sessions}
    fed = holidays.financial_holidays(system, years=range(2006, 2100))
    only_fed = {d for d in fed if d in sessions}
    assert only_fed and {d.month for d in only_fed} <= months


def test_a_24_7_fill_s_dates_and_cycle_key_import_no_exchange_calendar() -> None:
    """A paper fill on a 24/7 instrument asks for its trade date, its settlement cycle's key
    and its settlement date: none of them needs exchange_calendars (and pandas), whose import
    costs about half a second of a command's start."""
    import json
    import subprocess
    import sys

    probe = (
        "import sys, json; from datetime import UTC, datetime; from oms import calendars\n"
        "day = calendars.trade_date('24/7', datetime(2026, 11, 28, 12, tzinfo=UTC))\n"
        "calendars.settlement_date('24/7', day, 1)\n"
        "print(json.dumps([calendars.canonical_exchange('24/7'),"
        " sorted(m for m in ('exchange_calendars', 'pandas') if m in sys.modules)]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(done.stdout) == ["24/7", []]
