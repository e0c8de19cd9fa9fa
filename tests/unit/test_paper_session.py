"""The paper venue trades only in session: answer_live_order outside the exchange's session
fills nothing (gtc/gtd orders rest, ioc/fok are canceled); in session it is unchanged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from oms import orders
from oms.paper import DEFAULT_TERMS, answer_live_order, in_session
from oms.risk import MarketState
from oms.values import AccountId, OrdType, Side, Symbol, TimeInForce

D = Decimal
OPEN = datetime(2026, 11, 27, 14, 30, tzinfo=UTC)
CLOSE = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
LAST = (D(190), OPEN - timedelta(days=2))


def market(*, session: bool = True, always_open: bool = False) -> MarketState:
    return MarketState(
        reference_price=LAST[0],
        reference_time=LAST[1],
        tick_size=D("0.01"),
        lot_size=D(1),
        session_open=OPEN if session else None,
        session_close=CLOSE if session else None,
        always_open=always_open,
    )


def acked(at: datetime, tif: TimeInForce, type: OrdType = OrdType.LIMIT) -> orders.Order:
    submit = orders.SubmitOrder(
        order_id=orders.OrderId("O1"),
        client_order_id=orders.ClientOrderId("C1"),
        account=AccountId("A1"),
        symbol=Symbol("AAPL"),
        side=Side.BUY,
        quantity=D(3),
        type=type,
        tif=tif,
        limit_price=D(190) if type is OrdType.LIMIT else None,
        expire_at=at.date() + timedelta(days=30) if tif is TimeInForce.GTD else None,
    )
    order = orders.decide(None, submit, at, "t").order
    return orders.decide(order, orders.AcknowledgeOrder(), at, "t").order


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (OPEN - timedelta(microseconds=1), False),
        (OPEN, True),
        (CLOSE - timedelta(microseconds=1), True),
        (CLOSE, False),
    ],
)
def test_the_session_is_open_from_its_open_to_before_its_close(
    now: datetime, expected: bool
) -> None:
    assert in_session(market(), now) is expected
    assert in_session(market(session=False), now) is False  # a holiday: no session at all
    assert in_session(market(session=False, always_open=True), now) is True  # 24/7


@pytest.mark.parametrize("tif", [TimeInForce.GTC, TimeInForce.GTD, TimeInForce.DAY])
@pytest.mark.parametrize(
    ("at", "state"),
    [(CLOSE + timedelta(hours=2), market()), (OPEN + timedelta(hours=1), market(session=False))],
    ids=["after the close", "holiday"],
)
def test_a_marketable_limit_rests_outside_the_session(
    tif: TimeInForce, at: datetime, state: MarketState
) -> None:
    assert answer_live_order(acked(at, tif), state, DEFAULT_TERMS) == []


@pytest.mark.parametrize("tif", [TimeInForce.IOC, TimeInForce.FOK])
def test_ioc_and_fok_are_canceled_outside_the_session(tif: TimeInForce) -> None:
    (answer,) = answer_live_order(acked(OPEN, tif), market(session=False), DEFAULT_TERMS)
    assert isinstance(answer, orders.AcceptCancel)
    assert answer.reason is not None and "market closed" in answer.reason


def test_a_market_order_outside_the_session_does_not_fill() -> None:
    # risk refuses it before it gets here; the venue would not fill it either
    order = acked(CLOSE, TimeInForce.GTC, OrdType.MARKET)
    assert answer_live_order(order, market(), DEFAULT_TERMS) == []


@pytest.mark.parametrize("tif", [TimeInForce.GTC, TimeInForce.DAY, TimeInForce.IOC])
def test_in_session_a_marketable_limit_fills_at_once(tif: TimeInForce) -> None:
    (fill,) = answer_live_order(acked(OPEN, tif), market(), DEFAULT_TERMS)
    assert isinstance(fill, orders.ApplyFill)
    assert (fill.quantity, fill.price) == (D(3), D(190))


def test_a_24_7_market_fills_at_any_time() -> None:
    at = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
    (fill,) = answer_live_order(
        acked(at, TimeInForce.GTC), market(session=False, always_open=True), DEFAULT_TERMS
    )
    assert isinstance(fill, orders.ApplyFill)


def test_now_defaults_to_the_orders_last_change_and_can_be_given() -> None:
    order = acked(CLOSE, TimeInForce.GTC)  # acknowledged at the close: closed
    assert answer_live_order(order, market(), DEFAULT_TERMS) == []
    inside = answer_live_order(order, market(), DEFAULT_TERMS, now=OPEN)
    assert [type(a) for a in inside] == [orders.ApplyFill]
