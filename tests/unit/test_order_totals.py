"""What an order adds to its account's order totals (oms.order_book.standing): the open
quantity of a live order, and the cash a live buy holds where the market does not move it;
the other live buys are priced each time they are read (priced_each), by a query that an index
of exactly those orders serves (schema.PRICED_EACH_WHERE)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oms import paper
from oms.order_book import Total, open_quantity, order_reservation, priced_each, standing
from oms.orders import (
    AcceptCancel,
    AcknowledgeOrder,
    ClientOrderId,
    Order,
    OrderStatus,
    RequestCancel,
    RequestReplace,
)
from oms.schema import LIVE_ORDER_STATUSES, PRICED_EACH_WHERE
from oms.values import OrdType, Side
from tests.unit.test_orders import apply, fill, submit

D = Decimal
FREE = paper.DEFAULT_TERMS
CHARGED = dataclasses.replace(paper.DEFAULT_TERMS, commission_bps=D(10), commission_min=D(1))


def resting(
    quantity: str = "100",
    *,
    side: Side = Side.BUY,
    type: OrdType = OrdType.LIMIT,
    limit: str | None = "50",
    stop: str | None = None,
    venue: str = "paper",
) -> Order:
    order = apply([dataclasses.replace(submit(quantity, type=type, limit=limit, stop=stop,
                                              venue=venue), side=side), AcknowledgeOrder()])
    assert order.status is OrderStatus.NEW
    return order


def test_the_schemas_live_statuses_are_the_orders_not_final() -> None:
    assert set(LIVE_ORDER_STATUSES) == {s.value for s in OrderStatus if not s.terminal}
    for status in LIVE_ORDER_STATUSES:
        assert f"'{status}'" in PRICED_EACH_WHERE


def test_a_live_limit_buy_holds_its_leaves_at_its_limit() -> None:
    order = resting("100", limit="50")
    assert not priced_each(order)
    assert standing(order, FREE, currency="USD") == (D(100), D(5000))


def test_a_paper_limit_buy_also_holds_the_commission_its_leaves_will_pay() -> None:
    order = resting("100", limit="50")
    held = order_reservation(order, lambda: None, D(0), CHARGED, currency="USD")
    assert held == D(5000) + D(5)  # 10 bps of 5,000
    assert standing(order, CHARGED, currency="USD") == (D(100), held)
    external = resting("100", limit="50", venue="XNAS")
    assert standing(external, CHARGED, currency="USD") == (D(100), D(5000))


def test_a_part_filled_buy_holds_its_leaves_and_the_rest_of_its_commission() -> None:
    order = apply([fill("E1", "40", "49")], resting("100", limit="50"))
    assert order.status is OrderStatus.PARTIALLY_FILLED
    open_qty, held = standing(order, CHARGED, currency="USD")
    assert open_qty == D(60)
    assert held == order_reservation(order, lambda: None, D(0), CHARGED, currency="USD")
    assert held > D(60) * D(50)


@pytest.mark.parametrize(("type_", "limit", "stop"), [
    (OrdType.MARKET, None, None),
    (OrdType.STOP, None, "55"),
])
def test_market_and_stop_buys_are_priced_each_time(
    type_: OrdType, limit: str | None, stop: str | None
) -> None:
    order = resting("100", type=type_, limit=limit, stop=stop, venue="XNAS")
    assert priced_each(order)
    assert standing(order, FREE, currency="USD") == (D(100), None)


def test_a_buy_with_a_replace_pending_is_priced_each_time() -> None:
    order = apply([RequestReplace(quantity=D(200), limit_price=D(60))], resting("100"))
    assert order.status is OrderStatus.PENDING_REPLACE
    assert priced_each(order)
    # open: the larger of its leaves and the replace's (the venue may accept it)
    assert standing(order, FREE, currency="USD") == (D(200), None)


@pytest.mark.parametrize(("side", "new_qty", "open_qty"), [
    (Side.SELL, "200", "200"),  # up: what the replace may trade
    (Side.SELL, "50", "100"),  # down: what the order may still trade until the venue answers
    (Side.BUY, "30", "100"),
])
def test_an_open_replace_counts_the_larger_quantity(
    side: Side, new_qty: str, open_qty: str
) -> None:
    order = apply([RequestReplace(quantity=D(new_qty))], resting("100", side=side, limit="50"))
    assert open_quantity(order) == D(open_qty)
    assert standing(order, FREE, currency="USD")[0] == D(open_qty)
    # a cancel chained behind it (pending_cancel): the replace is still open
    chained = apply([RequestCancel(new_client_order_id=ClientOrderId("X9"))], order)
    assert chained.status is OrderStatus.PENDING_CANCEL
    assert open_quantity(chained) == D(open_qty)


def test_a_sale_holds_no_cash_but_is_open() -> None:
    order = resting("100", side=Side.SELL, limit="50")
    assert not priced_each(order)
    assert standing(order, CHARGED, currency="USD") == (D(100), None)


def test_a_finished_order_adds_nothing() -> None:
    canceled = apply([AcceptCancel()], resting("100"))
    assert not canceled.live
    assert standing(canceled, CHARGED, currency="USD") == (None, None)
    assert standing(None, CHARGED, currency="USD") == (None, None)


@settings(max_examples=200, deadline=None)
@given(
    quantity=st.integers(1, 10_000),
    filled=st.integers(0, 10_000),
    limit=st.decimals("0.01", "10000", places=2),
    price=st.decimals("0.01", "10000", places=2),
    charged=st.booleans(),
)
def test_the_kept_hold_is_the_orders_reservation_whatever_the_last_price(
    quantity: int, filled: int, limit: Decimal, price: Decimal, charged: bool
) -> None:
    """A kept hold never depends on the market: the reservation of a limit buy is the same at
    any last price, and it is what standing keeps."""
    terms = CHARGED if charged else FREE
    order = resting(str(quantity), limit=str(limit))
    if 0 < filled < quantity:
        order = apply([fill("E1", str(filled), str(limit))], order)
    kept = standing(order, terms, currency="USD")[1]
    for last in (None, price, price * 3):
        assert order_reservation(order, lambda v=last: v, D(2), terms, currency="USD") == kept


def test_the_sums_show_the_places_of_the_live_orders_only() -> None:
    """A total keeps how many live orders' amounts have each number of decimal places: once
    the order with six places ends, the sum shows none, as summing the live orders does."""
    a = resting("1", limit="99.122221")
    b = resting("1", limit="99")
    both = Total().moved((None, None), standing(a, FREE, currency="USD")).moved(
        (None, None), standing(b, FREE, currency="USD")
    )
    assert both.shown() == (D(2), D("198.122221"))
    one = both.moved(standing(a, FREE, currency="USD"), (None, None))
    assert str(one.held) == "99.000000"  # the running sum keeps the places it saw
    assert [str(v) for v in one.shown()] == ["1", "99"]
    assert one.moved(standing(b, FREE, currency="USD"), (None, None)).empty


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.decimals("0.01", "1000", places=6), st.booleans()), max_size=12))
def test_shown_sums_are_the_sums_of_the_live_amounts(moves: list[tuple[Decimal, bool]]) -> None:
    """Whatever ends in whatever order, the shown sum is the live amounts' sum, digit for
    digit (places included)."""
    total, live = Total(), []
    for limit, ends in moves:
        order = resting("1", limit=str(limit))
        total = total.moved((None, None), standing(order, FREE, currency="USD"))
        live.append(order)
        if ends and live:
            gone = live.pop(0)
            total = total.moved(standing(gone, FREE, currency="USD"), (None, None))
    want = sum((o.leaves_qty * o.limit_price for o in live), D(0))  # type: ignore[operator]
    assert str(total.shown()[1]) == str(want)
    assert total.empty == (not live)
