"""reached_after_expiry: which bar of an import reached an expired paper order inside its time
in force (in session, after its present terms, before it ran out)."""

from datetime import UTC, date, datetime
from decimal import Decimal as D

from oms.marketdata import Bar
from oms.order_book import reached_after_expiry
from oms.orders import AcknowledgeOrder, ApplyFill, Expire, Order, TriggerOrder, decide
from oms.values import ExecId, OrdType, TimeInForce
from tests.unit.test_orders import submit

PLACED = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # a Tuesday, XNYS in session
CLOSE = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)  # Wednesday's close: the gtd's last session


def gtd_order(expired: bool = True) -> Order:
    command = submit(
        "10", limit="98", tif=TimeInForce.GTD, expire_at=date(2026, 11, 25), venue="paper"
    )
    order = decide(None, command, PLACED, "ops").order
    order = decide(order, AcknowledgeOrder(), PLACED, "ops").order
    if expired:
        order = decide(order, Expire(reason="gtd"), CLOSE, "ops").order
    return order


def ohlc(at: datetime, open_: str, high: str, low: str) -> Bar:
    return Bar("XYZ", at, D(open_), D(high), D(low), D(open_), D("1000"))


def bar(at: datetime, low: str) -> Bar:
    return Bar("XYZ", at, D("99"), D("99"), D(low), D("99"), D("1000"))


def test_the_first_bar_in_session_that_reached_the_order_is_named() -> None:
    bars = [
        bar(datetime(2026, 11, 25, 2, 0, tzinfo=UTC), "97"),  # overnight: out of session
        bar(datetime(2026, 11, 25, 15, 0, tzinfo=UTC), "98.5"),  # in session, above the limit
        bar(datetime(2026, 11, 25, 16, 0, tzinfo=UTC), "98"),  # reaches it
        bar(datetime(2026, 11, 25, 17, 0, tzinfo=UTC), "97"),
    ]
    found = reached_after_expiry(gtd_order(), "XNYS", bars)
    assert found == (bars[2], CLOSE)


def test_bars_before_the_order_or_after_its_close_are_not_its_own() -> None:
    bars = [
        bar(datetime(2026, 11, 24, 14, 45, tzinfo=UTC), "97"),  # before it was placed
        bar(datetime(2026, 11, 25, 21, 0, tzinfo=UTC), "97"),  # at the close: ran out
    ]
    assert reached_after_expiry(gtd_order(), "XNYS", bars) is None


def test_a_live_order_is_not_late_for_anything() -> None:
    bars = [bar(datetime(2026, 11, 25, 16, 0, tzinfo=UTC), "97")]
    assert reached_after_expiry(gtd_order(expired=False), "XNYS", bars) is None


def test_a_stop_is_judged_as_it_stood_at_the_bar() -> None:
    """A buy stop at 102 that a fill at 16:00 triggered: a bar of 15:00 that never traded
    through 102 did not reach it; one that did, did."""
    command = submit(
        "10", type=OrdType.STOP, limit=None, stop="102", tif=TimeInForce.GTD,
        expire_at=date(2026, 11, 25), venue="paper",
    )  # fmt: skip
    order = decide(None, command, PLACED, "ops").order
    order = decide(order, AcknowledgeOrder(), PLACED, "ops").order
    at = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
    order = decide(order, ApplyFill(ExecId("F1"), D("2"), D("103")), at, "ops").order
    order = decide(order, Expire(reason="gtd"), CLOSE, "ops").order
    below = ohlc(datetime(2026, 11, 25, 15, 0, tzinfo=UTC), "100", "100.5", "99.5")
    through = ohlc(datetime(2026, 11, 25, 15, 30, tzinfo=UTC), "101", "103", "101")
    assert reached_after_expiry(order, "XNYS", [below]) is None
    assert reached_after_expiry(order, "XNYS", [below, through]) == (through, CLOSE)


def test_a_triggered_stop_limit_is_reached_only_through_its_limit() -> None:
    """A buy stop-limit (stop 101, limit 101.5) triggered at 15:00: a later bar trading at 102
    to 103 goes through its stop again but could not fill it (it pays at most 101.5), so it did
    not reach it; a bar down to 101.5 did."""
    command = submit(
        "10", type=OrdType.STOP_LIMIT, limit="101.5", stop="101", tif=TimeInForce.GTD,
        expire_at=date(2026, 11, 25), venue="paper",
    )  # fmt: skip
    order = decide(None, command, PLACED, "ops").order
    order = decide(order, AcknowledgeOrder(), PLACED, "ops").order
    order = decide(order, TriggerOrder(), datetime(2026, 11, 25, 15, 0, tzinfo=UTC), "ops").order
    order = decide(order, Expire(reason="gtd"), CLOSE, "ops").order
    above = ohlc(datetime(2026, 11, 25, 16, 0, tzinfo=UTC), "102", "103", "102")
    down = ohlc(datetime(2026, 11, 25, 17, 0, tzinfo=UTC), "102", "102", "101.5")
    assert reached_after_expiry(order, "XNYS", [above]) is None
    assert reached_after_expiry(order, "XNYS", [above, down]) == (down, CLOSE)
