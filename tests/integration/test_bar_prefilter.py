"""The paper venue works a bar on the resting orders it may act on, chosen by a condition on
their columns (oms.order_book.may_act): on both backends, every order that the pure functions
would fill or trigger on the bar (bar_fill_price, stop_reached and triggered) is among them,
whatever the prices' digits (SQLite compares its text decimals as floating point with a
margin), and a bar that reaches no resting order reads none of them."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from oms import book, orders
from oms import marketdata as md
from oms.book import Ctx
from oms.order_book import (
    PAPER,
    _store_order,
    bar_fill_price,
    may_act,
    resting_query,
    stop_reached,
)
from oms.orders import (
    AccountId,
    AcknowledgeOrder,
    ApplyFill,
    ClientOrderId,
    OrderId,
    OrderStatus,
    SubmitOrder,
    Symbol,
    TriggerOrder,
)
from oms.refdata import make_account, make_instrument
from oms.schema import RESTING_WHERE
from oms.schema import orders as orders_table
from oms.store import Store
from oms.values import ExecId, OrdType, Side, TimeInForce, Venue
from tests.plans import query_plan

T0 = datetime(2026, 11, 2, 15, tzinfo=UTC)
_names = itertools.count()

# prices with up to 12 decimal places, near one another (bounds met exactly, and by a hair)
base = st.sampled_from([Decimal("0.000001"), Decimal("1"), Decimal("99.99"), Decimal("123456789")])
offset = st.sampled_from([Decimal(0), Decimal("1e-12"), Decimal("-1e-12"), Decimal("0.01"),
                          Decimal("-0.01"), Decimal("1e-9"), Decimal("-1e-9")])
price = st.builds(lambda b, d: max(b + d * b.max(Decimal(1)), Decimal("1e-12")), base, offset)

resting = st.tuples(
    st.sampled_from([Side.BUY, Side.SELL]),
    st.sampled_from([OrdType.LIMIT, OrdType.STOP, OrdType.STOP_LIMIT]),
    price,
    price,
    st.sampled_from(["rests", "triggered", "part_filled"]),
)


def _place(conn: Any, ctx: Ctx, symbol: str, n: int, spec: tuple[Any, ...]) -> orders.Order:
    side, kind, first, second, state = spec
    limit = first if kind in (OrdType.LIMIT, OrdType.STOP_LIMIT) else None
    stop = second if kind in (OrdType.STOP, OrdType.STOP_LIMIT) else None
    commands: list[Any] = [
        SubmitOrder(
            order_id=OrderId(f"O{next(_names):08d}"),
            client_order_id=ClientOrderId(f"{symbol}-{n}"),
            account=AccountId("A1"),
            symbol=Symbol(symbol),
            side=side,
            quantity=Decimal(10),
            type=kind,
            tif=TimeInForce.GTC,
            limit_price=limit,
            stop_price=stop,
            venue=Venue("paper"),
        ),
        AcknowledgeOrder(),
    ]
    if state == "triggered" and kind is not OrdType.LIMIT:
        commands.append(TriggerOrder())
    if state == "part_filled":
        at = limit if limit is not None else stop
        assert at is not None
        if kind is not OrdType.LIMIT:
            commands.append(TriggerOrder())
        commands.append(ApplyFill(ExecId(f"{symbol}-{n}-1"), Decimal(1), at))
    steps, order = [], None
    for command in commands:
        step = orders.decide(order, command, T0, "t")
        steps.append(step)
        order = step.order
    assert order is not None and order.live
    _store_order(conn, order, ctx, steps, commands, before=None)
    return order


def _acts(order: orders.Order, bar: md.Bar) -> bool:
    """What fill_resting does with the order: fills it, or records its trigger."""
    return bar_fill_price(order, bar) is not None or (
        stop_reached(order, bar) and not orders.triggered(order)
    )


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(specs=st.lists(resting, min_size=1, max_size=8), low=price, high=price)
@example(  # the widened high (0.999999999 + a billionth) rounds to 1.0 as a float: read
    specs=[(Side.SELL, OrdType.LIMIT, Decimal(1), Decimal(1), "rests")],
    low=Decimal("0.000001"),
    high=Decimal("0.999999999"),
)
def test_the_orders_read_for_a_bar_are_all_it_acts_on(
    store: Store, specs: list[tuple[Any, ...]], low: Decimal, high: Decimal
) -> None:
    low, high = min(low, high), max(low, high)
    symbol = f"P{next(_names)}"
    ctx = Ctx("t", T0)
    book.add_instruments(store, ctx, [make_instrument(symbol, "24/7", "USD")])
    book.open_account(store, ctx, make_account("A1", "USD", None, "margin", None))  # once
    with store.write() as conn:
        placed = [_place(conn, ctx, symbol, n, spec) for n, spec in enumerate(specs)]
    bar = md.Bar(symbol, T0 + timedelta(minutes=1), low, high, low, high, Decimal(1000))
    o = orders_table.c
    with store.read() as conn:
        chosen = set(
            conn.execute(
                select(o.order_id).where(o.symbol == symbol, may_act(store.dialect, bar))
            ).scalars()
        )
    acted = {p.order_id for p in placed if _acts(p, bar)}
    assert acted <= chosen, (acted - chosen, bar)
    # and no more than those plus the triggered ones (which may act on any later bar)
    triggered = {p.order_id for p in placed if orders.triggered(p)}
    near = {  # within the SQLite margin of a bound (a billionth, and the float's rounding of
        # the widened bound: 0.999999999 widened rounds to 1.0), by a hair
        p.order_id for p in placed
        for v in (p.limit_price, p.stop_price) if v is not None
        for b in (low, high) if abs(v - b) <= abs(b) * Decimal("2e-9")
    }
    assert chosen <= acted | triggered | near, (chosen - acted, bar)


def test_a_bar_finds_the_resting_orders_by_their_index(store: Store) -> None:
    """Not by reading every order ever placed (ix_orders_resting; the query says its condition
    as the index does)."""
    assert (
        f"venue = '{PAPER}' AND status IN "
        f"('{OrderStatus.NEW.value}', '{OrderStatus.PARTIALLY_FILLED.value}')"
    ) == RESTING_WHERE
    bar = md.Bar("X", T0, Decimal(1), Decimal(2), Decimal(1), Decimal(1), Decimal(1))
    plan = query_plan(store, resting_query(store.dialect, bar))
    assert "ix_orders_resting" in plan, plan
