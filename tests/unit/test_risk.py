"""Pre-trade risk (oms.risk): one test per reason code with its figures, boundaries, the market
hours rules, and hypothesis properties.

Every number is a Decimal made from a string or an int (hypothesis draws integers and scales
them by a power of ten), never from a float.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oms.errors import BadInput, Refused
from oms.risk import (
    DEFAULT_LIMITS,
    DEFAULT_TIER,
    AccountState,
    Limits,
    MarketState,
    OrderRequest,
    OrdType,
    RecentOrder,
    RiskCode,
    RiskResult,
    TierLimits,
    TimeInForce,
    check,
    check_replace,
    price_basis,
    reservation,
)
from oms.values import AccountType, Side

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
MARKET, LIMIT, STOP, STOP_LIMIT = (
    OrdType.MARKET,
    OrdType.LIMIT,
    OrdType.STOP,
    OrdType.STOP_LIMIT,
)
OPEN = datetime(2026, 11, 25, 14, 30, tzinfo=UTC)  # XNYS 09:30 New York
CLOSE = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
TICK = D("0.01")
ALL_CODES = set(RiskCode)


def order(**kw: Any) -> OrderRequest:
    terms: dict[str, Any] = {
        "account": "ACC1",
        "symbol": "AAPL",
        "side": BUY,
        "quantity": D(100),
        "order_type": LIMIT,
        "tif": TimeInForce.DAY,
        "limit_price": D("190.25"),
        "client_order_id": "c-new",
    }
    terms.update(kw)
    return OrderRequest(**terms)


def market_order(**kw: Any) -> OrderRequest:
    return order(order_type=MARKET, limit_price=None, **kw)


def account(**kw: Any) -> AccountState:
    state: dict[str, Any] = {
        "account_type": AccountType.MARGIN,
        "tier": DEFAULT_TIER,
        "currency": "USD",
        "cash": D(100_000),
    }
    state.update(kw)
    return AccountState(**state)


def market(**kw: Any) -> MarketState:
    state: dict[str, Any] = {
        "reference_price": D("190.25"),
        "reference_time": NOW - timedelta(seconds=5),
        "tick_size": TICK,
        "lot_size": D(1),
        "session_open": OPEN,
        "session_close": CLOSE,
    }
    state.update(kw)
    return MarketState(**state)


def limits(**kw: Any) -> Limits:
    return dataclasses.replace(DEFAULT_LIMITS, **kw)


def run(
    o: OrderRequest | None = None,
    a: AccountState | None = None,
    m: MarketState | None = None,
    lim: Limits | None = None,
    now: datetime = NOW,
) -> RiskResult:
    return check(o or order(), a or account(), m or market(), lim or DEFAULT_LIMITS, now)


def only(result: RiskResult, code: RiskCode) -> str:
    """The message of the one failure the result must have, with that code."""
    assert result.codes == (code,), result.failures
    return result.failures[0].message


# ---- clean orders -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "o",
    [
        order(),
        market_order(),
        order(side=SELL),
        market_order(side=SELL),
        order(order_type=STOP, limit_price=None, stop_price=D("195")),
        order(order_type=STOP_LIMIT, stop_price=D("195"), limit_price=D("196")),
        order(tif=TimeInForce.IOC),
    ],
)
def test_a_clean_order_passes_every_check(o: OrderRequest) -> None:
    result = run(o)
    assert result.ok
    assert result.failures == ()
    assert result.summary() == "passed"


def test_default_limits_let_a_new_user_trade() -> None:
    new_user = account(account_type=AccountType.CASH, cash=D(10_000))
    assert run(order(quantity=D(10)), new_user).ok
    assert run(market_order(quantity=D(10)), new_user).ok


# ---- one test per reason code -----------------------------------------------------------------


def test_buying_power_limit_order() -> None:
    a = account(cash=D(15_000), reserved=D(3_000))
    msg = only(run(order(), a), RiskCode.BUYING_POWER)
    assert msg == (
        "buying power: order needs 19025 USD (100 x 190.25 limit), available 12000 USD "
        "(cash 15000 - reserved 3000)"
    )


def test_buying_power_market_order_adds_the_buffer() -> None:
    a = account(cash=D(15_000), reserved=D(3_000))
    lim = limits(market_buffer_pct=D("0.5"))
    msg = only(run(market_order(), a, lim=lim), RiskCode.BUYING_POWER)
    # 100 x 190.25 x 1.005 = 19120.125 exactly
    assert msg == (
        "buying power: order needs 19120.125 USD (100 x 190.25 reference + 0.5% buffer), "
        "available 12000 USD (cash 15000 - reserved 3000)"
    )


def test_position_limit() -> None:
    a = account(position=D(900), open_buy_quantity=D(50))
    lim = limits(tiers={DEFAULT_TIER: TierLimits(D(1000))})
    msg = only(run(order(), a, lim=lim), RiskCode.POSITION_LIMIT)
    assert msg == (
        "position limit: position 900 + open buys 50 + order 100 = 1050 AAPL, beyond the "
        "standard tier's limit of 1000 per symbol (long or short)"
    )


def test_position_limit_short_side() -> None:
    a = account(position=D(-900), open_sell_quantity=D(50))
    lim = limits(tiers={DEFAULT_TIER: TierLimits(D(1000))})
    msg = only(run(order(side=SELL), a, lim=lim), RiskCode.POSITION_LIMIT)
    assert "position -900 - open sells 50 - order 100 = -1050 AAPL" in msg


def test_max_quantity() -> None:
    lim = limits(max_order_quantity=D(50))
    msg = only(run(order(), lim=lim), RiskCode.MAX_QUANTITY)
    assert msg == "max quantity: 100 AAPL exceeds the per-order maximum of 50"


def test_max_notional() -> None:
    lim = limits(max_notional=D(10_000))
    msg = only(run(order(), lim=lim), RiskCode.MAX_NOTIONAL)
    assert msg == (
        "max notional: 100 x 190.25 limit = 19025 USD exceeds the per-order maximum of 10000 USD"
    )


def test_price_collar() -> None:
    msg = only(run(order(limit_price=D("210"))), RiskCode.PRICE_COLLAR)
    assert msg == (
        "price collar: limit price 210 is outside 10% of the reference price 190.25 "
        "(allowed 171.225 to 209.275)"
    )


def test_market_closed_outside_the_session() -> None:
    later = CLOSE + timedelta(hours=1)
    m = market(reference_time=later)
    msg = only(run(market_order(), m=m, now=later), RiskCode.MARKET_CLOSED)
    assert msg.startswith("market closed: now 2026-11-25T22:00:00.000000Z is outside")
    assert "2026-11-25T14:30:00.000000Z to 2026-11-25T21:00:00.000000Z" in msg
    assert msg.endswith("a market order needs an open session")


def test_market_closed_on_a_holiday() -> None:
    m = market(session_open=None, session_close=None)
    msg = only(run(order(), m=m), RiskCode.MARKET_CLOSED)
    assert msg == (
        "market closed: there is no session for AAPL today; a limit order with tif day needs "
        "an open session (gtc and gtd orders may be entered while closed)"
    )


def test_restricted() -> None:
    msg = only(run(m=market(restricted=True)), RiskCode.RESTRICTED)
    assert msg == "restricted: AAPL is on the restricted list"


def test_duplicate_order() -> None:
    earlier = RecentOrder.of(order(client_order_id="c-old"), NOW - timedelta(seconds=3))
    msg = only(run(a=account(recent_orders=[earlier])), RiskCode.DUPLICATE_ORDER)
    assert msg == (
        "duplicate order: same terms (buy 100 AAPL limit 190.25 day) as order 'c-old' sent at "
        "2026-11-25T14:59:57.000000Z, 3s ago; the duplicate window is 10s"
    )


def test_a_duplicate_timed_after_now_says_the_clock_went_back() -> None:
    later = RecentOrder.of(order(client_order_id="c-old"), NOW + timedelta(seconds=73))
    msg = only(run(a=account(recent_orders=[later])), RiskCode.DUPLICATE_ORDER)
    assert "sent at 2026-11-25T15:01:13.000000Z, 73s after now (the clock went back)" in msg
    assert "-73" not in msg


def test_another_time_in_force_or_expire_date_is_not_a_duplicate() -> None:
    at = NOW - timedelta(seconds=3)
    gtd = order(tif=TimeInForce.GTD, expire_at=date(2026, 11, 27), client_order_id="c-old")
    for earlier in (
        RecentOrder.of(order(tif=TimeInForce.GTC, client_order_id="c-old"), at),
        RecentOrder.of(gtd, at),
    ):
        assert run(a=account(recent_orders=[earlier])).ok
    later = dataclasses.replace(gtd, client_order_id="c-new")
    result = run(later, account(recent_orders=[RecentOrder.of(gtd, at)]))
    assert "limit 190.25 gtd until 2026-11-27)" in only(result, RiskCode.DUPLICATE_ORDER)


def test_order_rate() -> None:
    times = [NOW - timedelta(milliseconds=10 * i) for i in range(1000)]
    msg = only(run(a=account(recent_order_times=times)), RiskCode.ORDER_RATE)
    assert msg == "order rate: 1000 orders in the last 60s already; the limit is 1000 per 60s"


def test_kill_switch_of_the_account() -> None:
    msg = only(run(a=account(kill_switch=True)), RiskCode.KILL_SWITCH)
    assert msg == "kill switch: engaged for account ACC1; every order is refused"


def test_kill_switch_global() -> None:
    msg = only(run(lim=limits(kill_switch=True)), RiskCode.KILL_SWITCH)
    assert msg == "kill switch: engaged globally; every order is refused"
    both = run(a=account(kill_switch=True), lim=limits(kill_switch=True))
    assert both.failures[0].message.startswith("kill switch: engaged for account ACC1 and glob")


@pytest.mark.parametrize("side", [BUY, SELL])
def test_kill_switch_refuses_everything(side: Side) -> None:
    for o in (order(side=side), market_order(side=side, quantity=D(1))):
        assert RiskCode.KILL_SWITCH in run(o, lim=limits(kill_switch=True)).codes


def test_stale_price() -> None:
    m = market(reference_time=NOW - timedelta(minutes=20))
    msg = only(run(market_order(), m=m), RiskCode.STALE_PRICE)
    assert msg == (
        "stale price: the reference price 190.25 is from 2026-11-25T14:40:00.000000Z, 1200s "
        "old; a market order needs one at most 900s old"
    )


def test_stale_price_does_not_refuse_a_limit_order() -> None:
    assert run(order(), m=market(reference_time=NOW - timedelta(days=3))).ok


def test_no_reference_price() -> None:
    m = market(reference_price=None, reference_time=None)
    msg = only(run(market_order(side=SELL), m=m), RiskCode.NO_REFERENCE_PRICE)
    assert msg == (
        "no reference price: a market order needs a reference price for AAPL and there is none"
    )
    # the market buy fails closed the same way: no buying power or notional figure is guessed
    assert run(market_order(), m=m).codes == (RiskCode.NO_REFERENCE_PRICE,)


def test_a_stop_order_without_a_reference_fails_closed() -> None:
    """A stop fills at the market once triggered: its stop bounds nothing it pays."""
    m = market(reference_price=None, reference_time=None)
    for side in (BUY, SELL):
        stop = order(side=side, order_type=OrdType.STOP, limit_price=None, stop_price=D("0.01"),
                     tif=TimeInForce.GTC)  # fmt: skip
        msg = only(run(stop, m=m), RiskCode.NO_REFERENCE_PRICE)
        assert msg == (
            "no reference price: a stop order fills at the market once triggered and needs a "
            "reference price for AAPL to be sized at; there is none"
        )
    stop_limit = order(order_type=OrdType.STOP_LIMIT, stop_price=D("190.25"), tif=TimeInForce.GTC)
    assert run(stop_limit, m=m).ok  # its limit bounds it
    old = market(reference_time=NOW - timedelta(days=3))  # an old price sizes it: it may rest
    stop = order(order_type=OrdType.STOP, limit_price=None, stop_price=D("200"),
                 tif=TimeInForce.GTC)  # fmt: skip
    assert run(stop, m=old).ok


def test_a_limit_order_without_a_reference_skips_the_collar() -> None:
    m = market(reference_price=None, reference_time=None)
    assert run(order(quantity=D(10), limit_price=D("1900.25")), m=m).ok


def test_short_sale_cash_account() -> None:
    a = account(account_type=AccountType.CASH, position=D(100), open_sell_quantity=D(20))
    msg = only(run(order(side=SELL, quantity=D(90)), a), RiskCode.SHORT_SALE_CASH_ACCOUNT)
    assert msg == (
        "short sale on a cash account: selling 90 AAPL, but the account holds 100 with 20 on "
        "open sell orders (80 available to sell)"
    )
    assert run(order(side=SELL, quantity=D(80)), a).ok
    assert run(order(side=SELL, quantity=D(90)), account(position=D(100))).ok  # margin


def test_tick_size() -> None:
    msg = only(run(order(limit_price=D("190.255"))), RiskCode.TICK_SIZE)
    assert msg == (
        "tick size: limit price 190.255 is not a multiple of the tick size 0.01 "
        "(nearest: 190.25 or 190.26)"
    )


def test_tick_size_checks_the_stop_price_too() -> None:
    o = order(order_type=STOP_LIMIT, stop_price=D("195.001"), limit_price=D("196"))
    msg = only(run(o), RiskCode.TICK_SIZE)
    assert msg.startswith("tick size: stop price 195.001 is not a multiple")


def test_lot_size() -> None:
    msg = only(run(order(quantity=D(150)), m=market(lot_size=D(100))), RiskCode.LOT_SIZE)
    assert msg == (
        "lot size: quantity 150 is not a multiple of the lot size 100 (nearest: 100 or 200)"
    )


def test_every_code_has_a_test_above() -> None:
    assert {c.value for c in ALL_CODES} == {
        "buying_power",
        "position_limit",
        "max_quantity",
        "max_notional",
        "price_collar",
        "market_closed",
        "restricted",
        "duplicate_order",
        "order_rate",
        "kill_switch",
        "stale_price",
        "no_reference_price",
        "short_sale_cash_account",
        "tick_size",
        "lot_size",
    }


# ---- several failures -------------------------------------------------------------------------


def test_every_failure_is_reported_in_a_fixed_order() -> None:
    o = order(quantity=D(150), limit_price=D("300.001"), client_order_id="c2")
    a = account(
        cash=D(1000),
        kill_switch=True,
        recent_orders=[RecentOrder.of(dataclasses.replace(o, client_order_id="c1"), NOW)],
        recent_order_times=[NOW] * 5,
    )
    m = market(restricted=True, lot_size=D(100), session_open=None, session_close=None)
    lim = limits(
        max_order_quantity=D(100),
        max_notional=D(10_000),
        tiers={DEFAULT_TIER: TierLimits(D(100))},
        max_orders_per_window=5,
    )
    result = run(o, a, m, lim)
    assert result.codes == (
        RiskCode.KILL_SWITCH,
        RiskCode.RESTRICTED,
        RiskCode.MARKET_CLOSED,
        RiskCode.TICK_SIZE,
        RiskCode.LOT_SIZE,
        RiskCode.MAX_QUANTITY,
        RiskCode.MAX_NOTIONAL,
        RiskCode.PRICE_COLLAR,
        RiskCode.POSITION_LIMIT,
        RiskCode.BUYING_POWER,
        RiskCode.DUPLICATE_ORDER,
        RiskCode.ORDER_RATE,
    )
    assert not result.ok
    assert result.summary() == (
        "refused (12): kill_switch, restricted, market_closed, tick_size, lot_size, "
        "max_quantity, max_notional, price_collar, position_limit, buying_power, "
        "duplicate_order, order_rate"
    )


def test_market_order_failures_together() -> None:
    a = account(account_type=AccountType.CASH, position=D(10))
    m = market(reference_price=None, reference_time=None, session_open=None, session_close=None)
    result = run(market_order(side=SELL, quantity=D(11)), a, m)
    assert result.codes == (
        RiskCode.MARKET_CLOSED,
        RiskCode.NO_REFERENCE_PRICE,
        RiskCode.SHORT_SALE_CASH_ACCOUNT,
    )


# ---- boundaries: exactly at the limit passes, one tick or unit over fails ---------------------


def test_buying_power_boundary() -> None:
    exact = account(cash=D("19025.00"))
    assert run(order(), exact).ok
    assert run(order(limit_price=D("190.26")), exact).codes == (RiskCode.BUYING_POWER,)
    assert run(order(), account(cash=D("19025"), reserved=TICK)).codes == (RiskCode.BUYING_POWER,)


def test_buying_power_boundary_with_the_market_buffer() -> None:
    exact = account(cash=D("19976.25"))  # 100 x 190.25 x 1.05
    assert run(market_order(), exact).ok
    assert not run(market_order(), account(cash=D("19976.24"))).ok


def test_position_limit_boundary() -> None:
    lim = limits(tiers={DEFAULT_TIER: TierLimits(D(1000))})
    a = account(position=D(850), open_buy_quantity=D(50))
    assert run(order(), a, lim=lim).ok  # 850 + 50 + 100 = 1000
    assert run(order(quantity=D(101)), a, lim=lim).codes == (RiskCode.POSITION_LIMIT,)


def test_an_order_that_reduces_an_over_limit_position_passes() -> None:
    lim = limits(tiers={DEFAULT_TIER: TierLimits(D(1000))})
    over = account(position=D(2000))
    assert run(order(side=SELL), over, lim=lim).ok  # 2000 -> 1900: closer to flat
    assert run(order(side=SELL, quantity=D(2000)), over, lim=lim).ok  # 2000 -> 0
    assert not run(order(), over, lim=lim).ok  # 2000 -> 2100
    flip = order(side=SELL, quantity=D(3100))  # 2000 -> -1100: crosses flat, beyond the limit
    assert run(flip, over, lim=lim).codes == (RiskCode.POSITION_LIMIT,)
    assert run(order(side=SELL, quantity=D(3000)), over, lim=lim).ok  # 2000 -> -1000


def test_an_order_that_reduces_an_over_limit_short_passes() -> None:
    """The same on the short side: a buy that only covers part of a short beyond the limit."""
    lim = limits(tiers={DEFAULT_TIER: TierLimits(D(1000))})
    short = account(position=D(-2000), cash=D(1_000_000))
    assert run(order(), short, lim=lim).ok  # -2000 -> -1900: closer to flat
    assert run(order(quantity=D(2000)), short, lim=lim).ok  # -2000 -> 0
    assert run(order(side=SELL), short, lim=lim).codes == (RiskCode.POSITION_LIMIT,)
    assert run(order(quantity=D(3100)), short, lim=lim).codes == (RiskCode.POSITION_LIMIT,)
    assert run(order(quantity=D(3000)), short, lim=lim).ok  # -2000 -> 1000


def test_an_unknown_tier_fails_closed() -> None:
    msg = only(run(a=account(tier="gold")), RiskCode.POSITION_LIMIT)
    assert msg == ("position limit: account tier 'gold' has no limits configured (tiers: standard)")


def test_max_quantity_and_notional_boundaries() -> None:
    lim = limits(max_order_quantity=D(100), max_notional=D("19025"))
    assert run(order(), lim=lim).ok
    assert run(order(quantity=D(101)), lim=lim).codes == (
        RiskCode.MAX_QUANTITY,
        RiskCode.MAX_NOTIONAL,
    )
    assert run(order(limit_price=D("190.26")), lim=lim).codes == (RiskCode.MAX_NOTIONAL,)


def test_price_collar_boundary() -> None:
    lim = limits(price_collar_pct=D(10))
    m = market(reference_price=D("200"))
    for inside in ("180", "220", "200"):
        assert run(order(limit_price=D(inside)), m=m, lim=lim).ok, inside
    for outside in ("179.99", "220.01"):
        assert run(order(limit_price=D(outside)), m=m, lim=lim).codes == (RiskCode.PRICE_COLLAR,)


def test_a_stop_limits_limit_is_collared_around_its_stop() -> None:
    """A protective sell stop-limit at 150 (limit 149) with the market at 200 was refused as
    25% off the market, while a plain stop at 150 passed: its limit is where it trades once
    the stop is reached, so it is collared around the stop."""
    lim = limits(price_collar_pct=D(10))
    m = market(reference_price=D("200"))

    def stop_limit(stop: str, limit: str) -> OrderRequest:
        return order(
            side=SELL,
            order_type=OrdType.STOP_LIMIT,
            stop_price=D(stop),
            limit_price=D(limit),
        )

    assert run(stop_limit("150", "149"), m=m, lim=lim).codes == ()
    assert run(stop_limit("150", "135"), m=m, lim=lim).codes == ()  # the bound itself
    wide = run(stop_limit("150", "134.99"), m=m, lim=lim)
    assert wide.codes == (RiskCode.PRICE_COLLAR,)
    assert "outside 10% of the stop price 150 (allowed 135 to 165)" in wide.failures[0].message


def test_stale_price_boundary() -> None:
    at_age = market(reference_time=NOW - DEFAULT_LIMITS.max_price_age)
    assert run(market_order(), m=at_age).ok
    over = market(reference_time=NOW - DEFAULT_LIMITS.max_price_age - timedelta(microseconds=1))
    assert run(market_order(), m=over).codes == (RiskCode.STALE_PRICE,)


def test_session_boundaries() -> None:
    m = market(reference_time=OPEN - timedelta(minutes=1))
    assert run(market_order(), m=m, now=OPEN).ok
    assert run(market_order(), m=m, now=OPEN - timedelta(microseconds=1)).codes == (
        RiskCode.MARKET_CLOSED,
    )
    m = market(reference_time=CLOSE - timedelta(minutes=1))
    assert run(market_order(), m=m, now=CLOSE - timedelta(microseconds=1)).ok
    assert run(market_order(), m=m, now=CLOSE).codes == (RiskCode.MARKET_CLOSED,)


def test_order_rate_boundary() -> None:
    lim = limits(max_orders_per_window=3, rate_window=timedelta(seconds=1))
    two = account(recent_order_times=[NOW, NOW - timedelta(milliseconds=999)])
    assert run(a=two, lim=lim).ok  # this order is the third in the window
    three = account(recent_order_times=[*two.recent_order_times, NOW])
    assert run(a=three, lim=lim).codes == (RiskCode.ORDER_RATE,)
    left = account(recent_order_times=[*two.recent_order_times, NOW - timedelta(seconds=1)])
    assert run(a=left, lim=lim).ok  # exactly one window ago has left the window


def test_duplicate_boundaries() -> None:
    def recent(at: datetime, **kw: Any) -> AccountState:
        return account(recent_orders=[RecentOrder.of(order(**kw), at)])

    window = DEFAULT_LIMITS.duplicate_window
    DUP = RiskCode.DUPLICATE_ORDER
    inside = NOW - window + timedelta(microseconds=1)
    assert run(a=recent(inside, client_order_id="c-old")).codes == (RiskCode.DUPLICATE_ORDER,)
    assert run(a=recent(inside, client_order_id=None)).codes == (RiskCode.DUPLICATE_ORDER,)
    assert run(a=recent(NOW - window, client_order_id="c-old")).ok
    assert run(a=recent(inside)).ok  # same client order id: the OMS's resubmission rule
    assert run(a=recent(inside, client_order_id="x", quantity=D(101))).ok
    assert run(a=recent(inside, client_order_id="x", limit_price=D("190.26"))).ok
    assert run(a=recent(inside, client_order_id="x", side=SELL)).ok
    assert run(a=recent(inside, client_order_id="x", symbol="MSFT")).ok
    stop = {"order_type": STOP_LIMIT, "stop_price": D(195), "limit_price": D(196)}
    msg = only(run(order(**stop), a=recent(inside, client_order_id="x", **stop)), DUP)
    assert "(buy 100 AAPL stop 195 limit 196 day)" in msg
    msg = only(
        run(
            market_order(),
            a=account(recent_orders=[RecentOrder.of(market_order(client_order_id="x"), inside)]),
        ),
        DUP,
    )
    assert "(buy 100 AAPL market day)" in msg
    # equal as numbers is the same price
    assert not run(a=recent(inside, client_order_id="x", limit_price=D("190.250"))).ok


# ---- market hours -----------------------------------------------------------------------------

AFTER_CLOSE = CLOSE + timedelta(hours=2)


@pytest.mark.parametrize(
    ("o", "passes"),
    [
        (market_order(), False),
        (market_order(tif=TimeInForce.GTC), False),
        (order(tif=TimeInForce.DAY), False),
        (order(tif=TimeInForce.IOC), False),
        (order(tif=TimeInForce.FOK), False),
        (order(tif=TimeInForce.GTC), True),
        (order(tif=TimeInForce.GTD), True),
        (order(order_type=STOP, limit_price=None, stop_price=D(195)), False),
        (order(order_type=STOP, limit_price=None, stop_price=D(195), tif="gtc"), True),
    ],
)
def test_market_hours_rules(o: OrderRequest, passes: bool) -> None:
    m = market(reference_time=AFTER_CLOSE)
    assert run(o, m=m, now=AFTER_CLOSE).ok is passes
    assert run(o, m=market(always_open=True, reference_time=AFTER_CLOSE), now=AFTER_CLOSE).ok
    always = market(always_open=True, session_open=None, session_close=None)
    assert run(o, m=always).ok


# ---- prices, reservation ----------------------------------------------------------------------


def test_price_basis_of_each_order_type() -> None:
    m = market()
    assert price_basis(order(), m) == D("190.25")
    assert price_basis(market_order(), m) == D("190.25")
    above = order(order_type=STOP, limit_price=None, stop_price=D(195))
    below = order(order_type=STOP, limit_price=None, stop_price=D(185))
    assert price_basis(above, m) == D(195)
    assert price_basis(below, m) == D("190.25")  # triggers at once and pays the market
    no_ref = market(reference_price=None, reference_time=None)
    assert price_basis(below, no_ref) == D(185)
    assert price_basis(market_order(), no_ref) is None


def test_reservation() -> None:
    m = market()
    assert reservation(order(), m, DEFAULT_LIMITS) == D("19025")
    assert reservation(market_order(), m, DEFAULT_LIMITS) == D("19976.25")
    stop = order(order_type=STOP, limit_price=None, stop_price=D(200))
    assert reservation(stop, m, DEFAULT_LIMITS) == D(21000)
    assert reservation(order(side=SELL), m, DEFAULT_LIMITS) == 0
    with pytest.raises(Refused, match="reference price"):
        reservation(
            market_order(), market(reference_price=None, reference_time=None), DEFAULT_LIMITS
        )


def test_stop_buy_buying_power_message_names_the_stop() -> None:
    stop = order(order_type=STOP, limit_price=None, stop_price=D(200))
    msg = only(run(stop, account(cash=D(20_000))), RiskCode.BUYING_POWER)
    assert "needs 21000 USD (100 x 200 stop + 5% buffer)" in msg


# ---- invalid input is BadInput, not a risk failure --------------------------------------------


@pytest.mark.parametrize(
    "kw",
    [
        {"quantity": D(0)},
        {"quantity": D(-1)},
        {"quantity": 100},
        {"quantity": 1.5},
        {"quantity": D("NaN")},
        {"limit_price": None},
        {"stop_price": D(1)},
        {"limit_price": D(0)},
        {"side": "hold"},
        {"tif": "forever"},
        {"order_type": "iceberg"},
    ],
)
def test_bad_orders_are_bad_input(kw: dict[str, Any]) -> None:
    with pytest.raises(BadInput):
        order(**kw)


def test_enum_fields_accept_their_strings() -> None:
    o = order(side="sell", order_type="stop_limit", tif="gtc", stop_price=D(195))
    assert o.side is SELL
    assert o.order_type is STOP_LIMIT
    assert o.tif is TimeInForce.GTC


def test_naive_times_are_bad_input() -> None:
    with pytest.raises(BadInput, match="time zone"):
        run(now=NOW.replace(tzinfo=None))
    with pytest.raises(BadInput, match="time zone"):
        market(reference_time=NOW.replace(tzinfo=None))
    with pytest.raises(BadInput):
        market(reference_time=None)
    with pytest.raises(BadInput):
        market(session_close=None)


# ---- hypothesis properties --------------------------------------------------------------------


def dec(min_units: int, max_units: int, places: int) -> st.SearchStrategy[Decimal]:
    """Decimals with `places` decimals, built from integers."""
    return st.integers(min_units, max_units).map(lambda n: D(n).scaleb(-places))


GENEROUS = limits(
    tiers={DEFAULT_TIER: TierLimits(D(10) ** 15)},
    max_order_quantity=D(10) ** 15,
    max_notional=D(10) ** 25,
    price_collar_pct=D(10) ** 20,
    market_buffer_pct=D(0),
    max_price_age=timedelta(days=365),
)
QTY = dec(1, 10**9, 2)
PRICE = dec(1, 10**10, 4)


@settings(max_examples=200, deadline=None)
@given(
    qty=QTY,
    price=PRICE,
    ref=PRICE,
    kind=st.sampled_from(list(OrdType)),
    headroom=dec(0, 10**12, 4),
    reserved=dec(0, 10**12, 2),
)
def test_a_buy_within_buying_power_passes_buying_power(
    qty: Decimal,
    price: Decimal,
    ref: Decimal,
    kind: OrdType,
    headroom: Decimal,
    reserved: Decimal,
) -> None:
    o = OrderRequest(
        "ACC1",
        "AAPL",
        BUY,
        qty,
        kind,
        TimeInForce.GTC,
        limit_price=price if kind.needs_limit else None,
        stop_price=price if kind.needs_stop else None,
    )
    m = market(reference_price=ref, tick_size=D("0.0001"), lot_size=D("0.01"))
    basis = price_basis(o, m)
    assert basis is not None
    notional = qty * basis
    a = account(cash=notional + reserved + headroom, reserved=reserved)
    result = check(o, a, m, GENEROUS, NOW)
    assert RiskCode.BUYING_POWER not in result.codes
    assert result.ok
    assert reservation(o, m, GENEROUS) == notional


@settings(max_examples=200, deadline=None)
@given(qty=QTY, cap=QTY, price=PRICE)
def test_doubling_the_quantity_never_passes_a_failing_max_quantity(
    qty: Decimal, cap: Decimal, price: Decimal
) -> None:
    lim = limits(max_order_quantity=cap)
    m = market(tick_size=D("0.0001"), lot_size=D("0.01"))
    first = run(order(quantity=qty, limit_price=price), m=m, lim=lim)
    second = run(order(quantity=qty * 2, limit_price=price), m=m, lim=lim)
    if RiskCode.MAX_QUANTITY in first.codes:
        assert RiskCode.MAX_QUANTITY in second.codes


@settings(max_examples=200, deadline=None)
@given(
    qty=dec(1, 10**6, 0),
    price=dec(1, 10**6, 2),
    ref=dec(1, 10**6, 2),
    cash=dec(0, 10**9, 2),
    position=dec(-(10**5), 10**5, 0),
    side=st.sampled_from([BUY, SELL]),
    kind=st.sampled_from(list(OrdType)),
    tif=st.sampled_from(list(TimeInForce)),
    cash_account=st.booleans(),
    minutes=st.integers(-600, 600),
    restricted=st.booleans(),
)
def test_check_is_deterministic(
    qty: Decimal,
    price: Decimal,
    ref: Decimal,
    cash: Decimal,
    position: Decimal,
    side: Side,
    kind: OrdType,
    tif: TimeInForce,
    cash_account: bool,
    minutes: int,
    restricted: bool,
) -> None:
    o = OrderRequest(
        "ACC1",
        "AAPL",
        side,
        qty,
        kind,
        tif,
        limit_price=price if kind.needs_limit else None,
        stop_price=price if kind.needs_stop else None,
    )
    a = account(
        account_type=AccountType.CASH if cash_account else AccountType.MARGIN,
        cash=cash,
        position=position,
    )
    m = market(reference_price=ref, restricted=restricted)
    now = NOW + timedelta(minutes=minutes)
    first = check(o, a, m, DEFAULT_LIMITS, now)
    again = check(o, a, m, DEFAULT_LIMITS, now)
    copies = check(
        dataclasses.replace(o), dataclasses.replace(a), dataclasses.replace(m), DEFAULT_LIMITS, now
    )
    assert first == again == copies
    assert len(set(first.codes)) == len(first.codes)


# ---- speed sanity (no timing assertion: timings are measured by scripts, not tests) -----------


def test_check_runs_ten_thousand_times() -> None:
    o, a, m = order(), account(), market()
    passed = sum(check(o, a, m, DEFAULT_LIMITS, NOW).ok for _ in range(10_000))
    assert passed == 10_000


# ---- cancel/replace ---------------------------------------------------------------------------


def test_a_replace_is_checked_on_its_new_terms_and_leaves() -> None:
    # 100 filled of 200; raising to 300 leaves 200 x 190.25 = 38050 to pay for, and the
    # account has 30000 available after the filled part was paid
    a = account(cash=D(30_000))
    result = check_replace(order(quantity=D(300)), D(100), a, market(), DEFAULT_LIMITS, NOW)
    assert result.codes == (RiskCode.BUYING_POWER,)
    assert "38050" in result.failures[0].message
    ok = check_replace(order(quantity=D(250)), D(100), a, market(), DEFAULT_LIMITS, NOW)
    assert ok.ok  # 150 x 190.25 = 28537.50 fits


def test_a_replace_is_not_a_duplicate_and_does_not_count_towards_the_rate() -> None:
    recent = [RecentOrder(NOW - timedelta(seconds=1), "AAPL", BUY, D(100), LIMIT, D("190.25"))]
    a = account(recent_orders=recent, recent_order_times=[NOW] * 1000)
    assert check_replace(order(), D(0), a, market(), DEFAULT_LIMITS, NOW).ok


def test_a_replace_checks_the_whole_quantity_against_the_fat_finger_limit() -> None:
    lim = limits(max_order_quantity=D(1000))
    result = check_replace(order(quantity=D(1200)), D(900), account(), market(), lim, NOW)
    assert result.codes == (RiskCode.MAX_QUANTITY,)


def test_a_replace_under_a_kill_switch_or_outside_the_collar_is_refused() -> None:
    result = check_replace(
        order(limit_price=D(250)), D(0), account(kill_switch=True), market(), DEFAULT_LIMITS, NOW
    )
    assert result.codes == (RiskCode.KILL_SWITCH, RiskCode.PRICE_COLLAR)


def test_a_replace_checks_the_position_limit_on_its_leaves() -> None:
    """600 of the order filled (in the position already); raising it to 900 adds 300 more:
    600 + 300 = 900 within a limit of 1000, though the whole 900 on top of the position would
    not be. To 1100: 600 + 500 = 1100, over."""
    lim = limits(tiers={DEFAULT_TIER: TierLimits(D(1000))})
    a = account(position=D(600))
    assert check_replace(order(quantity=D(900)), D(600), a, market(), lim, NOW).ok
    over = check_replace(order(quantity=D(1100)), D(600), a, market(), lim, NOW)
    assert over.codes == (RiskCode.POSITION_LIMIT,)


def test_a_replace_below_the_filled_quantity_is_bad_input() -> None:
    with pytest.raises(BadInput, match="already filled"):
        check_replace(order(quantity=D(50)), D(50), account(), market(), DEFAULT_LIMITS, NOW)
