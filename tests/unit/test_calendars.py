from datetime import UTC, date, datetime, timedelta

import pytest

from oms.calendars import session_bounds, settlement_date
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
