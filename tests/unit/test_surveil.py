"""Surveillance rules (oms.surveil), pure: a clean day stays quiet, each pattern added to it fires
its rule and only its rule, every threshold is a boundary that holds, settings parse and show,
and hypothesis properties of the windows, the statistics and the matching.

Every number is a Decimal made from a string or an int, never from a float.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oms import surveil as sv
from oms.errors import BadInput
from oms.marketdata import Bar
from oms.surveil import DayData, Market, OrderEvent, OrderFact, Trade
from oms.values import Side

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
DAY = date(2026, 1, 21)  # a Wednesday: XNYS 14:30-21:00 UTC
OPEN = datetime(2026, 1, 21, 14, 30, tzinfo=UTC)
CLOSE = datetime(2026, 1, 21, 21, 0, tzinfo=UTC)
MARKETS = {
    "XYZ": Market("XYZ", session_open=OPEN, session_close=CLOSE),
    "COIN": Market("COIN", always_open=True),
}
_ids = iter(range(1, 1_000_000))


def at(hhmmss: str, day: date = DAY) -> datetime:
    h, m, s = (int(x) for x in hhmmss.split(":"))
    return datetime(day.year, day.month, day.day, h, m, s, tzinfo=UTC)


def trade(
    account: str,
    side: Side,
    qty: int | str,
    price: int | str,
    when: datetime | None,
    symbol: str = "XYZ",
    order_id: str | None = None,
    day: date = DAY,
) -> Trade:
    n = next(_ids)
    return Trade(n, "V", f"E{n}", account, symbol, side, D(qty), D(price), day, when, order_id)


def order(
    order_id: str,
    account: str,
    side: Side,
    qty: int | str,
    limit: int | str | None,
    submitted: datetime,
    canceled: datetime | None = None,
    symbol: str = "XYZ",
    cum: int | str = 0,
) -> OrderFact:
    events = [OrderEvent("order_submitted", "pending_new", submitted)]
    events.append(OrderEvent("order_acknowledged", "new", submitted))
    status = "new"
    if canceled is not None:
        events.append(OrderEvent("cancel_requested", "pending_cancel", canceled))
        events.append(OrderEvent("order_canceled", "canceled", canceled))
        status = "canceled"
    elif D(cum) == D(qty):
        status = "filled"
    return OrderFact(
        order_id,
        account,
        symbol,
        side,
        D(qty),
        None if limit is None else D(limit),
        status,
        D(cum),
        submitted,
        tuple(events),
    )


def history(account: str, days: int = 10, notional_base: int = 100) -> list[Trade]:
    """Two executions a day over the days before DAY: sizes 90-110 x price 100, times spread
    over the session (15:00 and 20:50 UTC)."""
    out = []
    for i in range(1, days + 1):
        d = DAY - timedelta(days=i)
        qty = notional_base - 10 + (i * 7) % 21
        out.append(trade(account, BUY, qty, 100, at("15:00:00", d), day=d))
        out.append(trade(account, SELL, qty, 100, at("20:50:00", d), day=d))
    return out


def clean_day() -> DayData:
    """Ordinary trading: round trips far apart in time, normal sizes and hours, an order
    canceled after half an hour, a small share of the close."""
    o1 = order("O1", "A1", BUY, 100, 101, at("15:00:00"), cum=100)
    o2 = order("O2", "A1", BUY, 100, 95, at("15:10:00"), canceled=at("15:40:00"))
    o3 = order("O3", "A1", SELL, 100, None, at("18:00:00"), cum=100)
    trades = [
        trade("A1", BUY, 100, 100, at("15:00:00"), order_id="O1"),
        trade("A1", SELL, 100, 103, at("18:00:00"), order_id="O3"),
        trade("A2", BUY, 50, 200, at("16:00:00"), symbol="COIN"),
        trade("A2", BUY, 100, 101, at("20:55:00")),
    ]
    bars = [
        Bar("XYZ", at(f"20:{m}:00"), D(100), D(101), D(99), D(100), D(1000)) for m in range(50, 60)
    ]
    return DayData(
        DAY,
        orders=[o1, o2, o3],
        trades=trades,
        history=history("A1") + history("A2"),
        opening={("A1", "XYZ"): D(0), ("A2", "XYZ"): D(200)},
        bars=bars,
        markets=MARKETS,
    )


def plus(
    data: DayData,
    *,
    orders: Sequence[OrderFact] = (),
    trades: Sequence[Trade] = (),
    opening: dict[tuple[str, str], Decimal] | None = None,
) -> DayData:
    return dataclasses.replace(
        data,
        orders=[*data.orders, *orders],
        trades=[*data.trades, *trades],
        opening={**data.opening, **(opening or {})},
    )


def rules(alerts: list[sv.Alert]) -> list[str]:
    return sorted(a.rule for a in alerts)


def only(alerts: list[sv.Alert], rule: str) -> sv.Alert:
    assert rules(alerts) == [rule], [(a.rule, a.account, a.details) for a in alerts]
    return alerts[0]


def with_settings(**changes: str) -> sv.Settings:
    return sv.settings_from({k.replace("_", "-"): v for k, v in changes.items()})


# ---- the clean day -----------------------------------------------------------------------------


def test_the_clean_day_is_quiet() -> None:
    assert sv.run_rules(clean_day()) == []


def test_an_empty_day_is_quiet() -> None:
    assert sv.run_rules(DayData(DAY)) == []


# ---- each pattern fires its rule ---------------------------------------------------------------


def test_wash_trade_by_one_account() -> None:
    buy = trade("W1", BUY, 100, 100, at("16:00:00"))
    sell = trade("W1", SELL, 100, "100.4", at("16:02:00"))
    alert = only(sv.run_rules(plus(clean_day(), trades=[buy, sell])), "wash_trade")
    assert (alert.account, alert.symbol, alert.score) == ("W1", "XYZ", D(100))
    assert alert.details["pairs"] == [
        {
            "buy": buy.ref,
            "sell": sell.ref,
            "quantity": "100",
            "seconds_apart": "120",
            "price_diff_pct": "0.4",
        }
    ]
    assert {t.id for t in alert.trades} == {buy.id, sell.id}
    assert alert.evidence()["executions"][0]["exec_id"] == buy.exec_id


def test_wash_trade_between_linked_accounts_only_when_linked() -> None:
    day = plus(
        clean_day(),
        trades=[
            trade("W1", BUY, 100, 100, at("16:00:00"), symbol="COIN"),
            trade("W2", SELL, 60, 100, at("16:01:00"), symbol="COIN"),
            trade("W2", BUY, 40, 100, at("17:30:00"), symbol="COIN"),  # too late to match
        ],
    )
    assert sv.run_rules(day) == []
    linked = with_settings(links="W1,W2")
    alert = only(sv.run_rules(day, linked), "wash_trade")
    assert (alert.account, alert.details["accounts"]) == ("W1", ["W1", "W2"])
    # 60 matched on both sides, of 200 traded by the owner
    assert (alert.details["washed_quantity"], alert.score) == ("60", D(60))


def test_wash_window_and_price_band_are_boundaries() -> None:
    def day(seconds: int, price: str) -> DayData:
        return plus(
            clean_day(),
            trades=[
                trade("W1", BUY, 10, 100, at("16:00:00")),
                trade("W1", SELL, 10, price, at("16:00:00") + timedelta(seconds=seconds)),
            ],
        )

    assert rules(sv.run_rules(day(300, "100.5"))) == ["wash_trade"]
    assert sv.run_rules(day(301, "100")) == []
    assert sv.run_rules(day(10, "100.51")) == []
    wide = with_settings(**{"wash.window-s": "600", "wash.price-band-pct": "1"})
    assert rules(sv.run_rules(day(301, "100.51"), wide)) == ["wash_trade"]


def test_spoofing_large_order_canceled_while_the_other_side_trades() -> None:
    spoof = order("S1", "SP", BUY, 1000, 99, at("15:00:00"), canceled=at("15:00:05"))
    sell = trade("SP", SELL, 100, 100, at("15:00:02"))
    alert = only(sv.run_rules(plus(clean_day(), orders=[spoof], trades=[sell])), "spoofing")
    assert (alert.account, alert.symbol, alert.score) == ("SP", "XYZ", D(10))
    assert alert.details["side"] == "buy"
    assert alert.details["seconds_to_cancel"] == ["5"]
    assert [o.order_id for o in alert.orders] == ["S1"]
    assert [t.id for t in alert.trades] == [sell.id]
    ev = alert.evidence()
    assert ev["orders"][0]["canceled_at"] == "2026-01-21T15:00:05.000000Z"


def test_spoofing_thresholds() -> None:
    def day(cancel_after: int, qty: int, trade_at: str = "15:00:02") -> DayData:
        submitted = at("15:00:00")
        spoof = order(
            "S1",
            "SP",
            SELL,
            qty,
            101,
            submitted,
            canceled=submitted + timedelta(seconds=cancel_after),
        )
        return plus(clean_day(), orders=[spoof], trades=[trade("SP", BUY, 100, 100, at(trade_at))])

    assert rules(sv.run_rules(day(10, 300))) == ["spoofing"]  # ratio 3, canceled in 10 s
    assert sv.run_rules(day(11, 300)) == []  # canceled too late to be a spoof
    assert sv.run_rules(day(10, 299)) == []  # not large enough
    assert sv.run_rules(day(5, 1000, trade_at="15:00:06")) == []  # traded after the cancel
    patient = with_settings(**{"spoofing.cancel-within-s": "20", "spoofing.size-ratio": "2"})
    assert rules(sv.run_rules(day(11, 200), patient)) == ["spoofing"]


def test_layering_many_orders_canceled_within_a_window() -> None:
    layers = [
        order(f"L{i}", "LY", BUY, 500, D(99) - D(i) / 10, at(f"15:10:0{i}"), at("15:10:30"))
        for i in range(4)
    ]
    alert = only(sv.run_rules(plus(clean_day(), orders=layers)), "layering")
    assert (alert.account, alert.symbol, alert.score) == ("LY", "XYZ", D(100))
    assert alert.details["price_levels"] == ["98.7", "98.8", "98.9", "99"]
    assert (alert.details["submitted"], alert.details["canceled"]) == (4, 4)
    assert sorted(o.order_id for o in alert.orders) == ["L0", "L1", "L2", "L3"]


def test_layering_thresholds() -> None:
    def day(n: int, canceled: int, cancel_after: int = 30) -> DayData:
        orders = []
        for i in range(n):
            t = at("15:10:00") + timedelta(seconds=i)
            end = t + timedelta(seconds=cancel_after) if i < canceled else None
            orders.append(order(f"L{i}", "LY", BUY, 10, 99, t, end))
        return plus(clean_day(), orders=orders)

    assert rules(sv.run_rules(day(5, 4))) == ["layering"]  # 80 %
    assert sv.run_rules(day(3, 3)) == []  # too few orders
    assert sv.run_rules(day(4, 3)) == []  # 75 %
    assert sv.run_rules(day(4, 4, cancel_after=61)) == []  # canceled after the window
    loose = with_settings(**{"layering.min-orders": "3", "layering.min-cancel-pct": "75"})
    assert rules(sv.run_rules(day(4, 3), loose)) == ["layering"]


def test_unusual_size_against_the_accounts_history() -> None:
    big = trade("A1", BUY, 1000, 100, at("15:30:00"), order_id="O9")
    alert = only(sv.run_rules(plus(clean_day(), trades=[big])), "unusual_size")
    assert (alert.account, alert.symbol) == ("A1", "XYZ")
    assert alert.score > 100
    (item,) = alert.details["items"]
    assert (item["notional"], item["order_id"], item["executions"]) == ("100000", "O9", [big.ref])
    assert alert.details["history_items"] == 20


def test_unusual_size_shows_the_notional_exactly() -> None:
    """An alert's notional is quantity x price to the last digit: it was computed in 34
    digits, and a trade of 123456789012.123456789012 at 98765.123456789012 (a 36-digit
    product) showed it rounded."""
    qty, price = "123456789012.123456789012", "98765.123456789012"
    big = trade("A1", BUY, qty, price, at("15:30:00"), order_id="O9")
    alert = only(sv.run_rules(plus(clean_day(), trades=[big])), "unusual_size")
    (item,) = alert.details["items"]
    exact = localcontext(prec=100)
    with exact:
        assert item["notional"] == str(D(qty) * D(price))


def test_unusual_size_threshold_and_history() -> None:
    data = clean_day()
    mean, sd = sv.mean_stdev([t.quantity * t.price for t in data.history if t.account == "A1"])
    edge = mean + 3 * sd  # exactly z = 3

    def day(notional: Decimal) -> DayData:
        return plus(data, trades=[trade("A1", BUY, notional / 100, 100, at("15:30:00"))])

    assert rules(sv.run_rules(day(edge))) == ["unusual_size"]
    assert sv.run_rules(day(edge - D("0.01"))) == []
    short = dataclasses.replace(day(edge * 10), history=history("A1", days=4))
    assert sv.run_rules(short) == []  # 8 history items: too few for a z-score
    assert rules(sv.run_rules(short, with_settings(**{"size.min-history": "8"}))) == [
        "unusual_size"
    ]


def test_a_history_without_spread_uses_a_floor() -> None:
    flat = [trade("F", BUY, 100, 100, at("15:00:00", DAY - timedelta(days=i))) for i in range(10)]
    base = DayData(DAY, history=flat, markets=MARKETS)

    def day(qty: str) -> DayData:
        return dataclasses.replace(base, trades=[trade("F", BUY, qty, 100, at("15:00:00"))])

    assert sv.run_rules(day("102.99")) == []  # z = 2.99 against 1 % of the mean
    assert rules(sv.run_rules(day("103"))) == ["unusual_size"]


def test_unusual_hours_outside_the_session_and_the_usual_window() -> None:
    night = trade("A2", BUY, 100, 100, at("03:00:00"))
    coin = trade("A2", BUY, 50, 200, at("03:30:00"), symbol="COIN")
    alerts = sv.run_rules(plus(clean_day(), trades=[night, coin]))
    assert rules(alerts) == ["unusual_hours", "unusual_hours"]
    by_symbol = {a.symbol: a for a in alerts}
    xyz, btc = by_symbol["XYZ"], by_symbol["COIN"]
    (e,) = xyz.details["executions"]
    assert e["outside"] == ["session", "usual_window"]
    assert e["minutes_outside"] == "690"  # 11.5 hours before the open
    # (no zones given: the UTC clock)
    assert xyz.details["usual_window"] == {"from": "14:30:00", "to": "21:20:00", "clock": "UTC"}
    (c,) = btc.details["executions"]  # 24/7: only the account's own window
    # the nearer edge: 6 h 10 after the window's end at 21:20
    assert (c["outside"], c["minutes_outside"]) == (["usual_window"], "370")
    assert btc.score == D(370)


def test_unusual_hours_margin_and_history() -> None:
    def day(when: str, **kw: str) -> list[sv.Alert]:
        t = trade("A2", BUY, 50, 200, at(when), symbol="COIN")
        return sv.run_rules(plus(clean_day(), trades=[t]), with_settings(**kw))

    assert day("14:30:00") == []  # 15:00 minus the 30 minutes' margin
    assert rules(day("14:29:59")) == ["unusual_hours"]
    assert day("14:29:59", **{"hours.margin-min": "31"}) == []
    assert day("03:00:00", **{"hours.min-history": "21"}) == []  # 20 executions: no window
    # no session that day: any execution on the exchange is outside it
    holiday = dataclasses.replace(plus(clean_day()), markets={**MARKETS, "XYZ": Market("XYZ")})
    alerts = sv.run_rules(holiday)
    assert {(a.rule, a.account, a.score) for a in alerts} == {
        ("unusual_hours", "A1", D(1440)),
        ("unusual_hours", "A2", D(1440)),
    }


def test_usual_window_across_midnight() -> None:
    times = [at("23:00:00"), at("23:30:00"), at("01:00:00"), at("02:00:00")]
    start, length = sv.usual_window(times, timedelta(0)) or (0, 0)
    assert (start, length) == (23 * 3600, 3 * 3600)
    assert sv.usual_window(times, timedelta(hours=11)) is None  # covers the whole day


def test_position_flips_within_a_window() -> None:
    flips = [
        trade("PF", SELL, 200, 100, at("15:00:00")),  # +100 -> -100
        trade("PF", BUY, 200, 102, at("15:06:00")),  # -> +100
    ]
    day = plus(clean_day(), trades=flips, opening={("PF", "XYZ"): D(100)})
    alert = only(sv.run_rules(day), "position_flip")
    assert (alert.account, alert.symbol, alert.score) == ("PF", "XYZ", D(2))
    assert [(f["from"], f["to"]) for f in alert.details["flips"]] == [
        ("100", "-100"),
        ("-100", "100"),
    ]
    assert alert.details["opening_position"] == "100"


def test_position_flip_thresholds() -> None:
    def day(gap_s: int, through_flat: bool = False) -> DayData:
        t0 = at("15:00:00")
        trades = [trade("PF", SELL, 200, 100, t0)]
        if through_flat:
            trades = [trade("PF", SELL, 100, 100, t0), trade("PF", SELL, 100, 100, t0)]
        trades.append(trade("PF", BUY, 200, 102, t0 + timedelta(seconds=gap_s)))
        return plus(clean_day(), trades=trades, opening={("PF", "XYZ"): D(100)})

    assert rules(sv.run_rules(day(900))) == ["position_flip"]
    assert rules(sv.run_rules(day(900, through_flat=True))) == ["position_flip"]
    assert sv.run_rules(day(901)) == []
    assert rules(sv.run_rules(day(901), with_settings(**{"flip.min-flips": "1"}))) == [
        "position_flip"
    ]


def test_marking_the_close() -> None:
    late = trade("MC", BUY, 3000, 101, at("20:55:00"))
    alert = only(sv.run_rules(plus(clean_day(), trades=[late])), "marking_close")
    assert (alert.account, alert.symbol, alert.score) == ("MC", "XYZ", D(30))
    d = alert.details
    assert (d["quantity"], d["market_volume"], d["share_pct"]) == ("3000", "10000", "30")
    assert d["close"] == "2026-01-21T21:00:00.000000Z"


def test_marking_the_close_thresholds() -> None:
    def day(qty: int, when: str = "20:55:00") -> DayData:
        return plus(clean_day(), trades=[trade("MC", BUY, qty, 101, at(when))])

    assert rules(sv.run_rules(day(2000))) == ["marking_close"]  # 20 %
    assert sv.run_rules(day(1999)) == []
    assert sv.run_rules(day(5000, "20:49:59")) == []  # before the last ten minutes
    assert rules(sv.run_rules(day(5000, "21:00:00"))) == ["marking_close"]  # the close itself
    assert sv.run_rules(day(1000), with_settings(**{"close.min-share-pct": "10"})) != []
    no_bars = dataclasses.replace(day(5000), bars=[])
    assert sv.run_rules(no_bars) == []  # cannot judge without the market's volume


def test_marking_the_close_of_a_24_7_market_is_midnight() -> None:
    bars = [
        Bar("COIN", at(f"23:{m}:00"), D(200), D(200), D(200), D(200), D(10)) for m in range(50, 60)
    ]
    data = DayData(
        DAY,
        trades=[trade("MC", SELL, 40, 200, at("23:58:00"), symbol="COIN")],
        bars=bars,
        markets=MARKETS,
    )
    alert = only(sv.run_rules(data), "marking_close")
    assert alert.details["close"] == "2026-01-22T00:00:00.000000Z"
    assert alert.score == D(40)


def test_excessive_order_rate() -> None:
    burst = [
        order(f"R{i}", "RT", BUY, 1, 90, at("15:20:00") + timedelta(seconds=i)) for i in range(31)
    ]
    alert = only(sv.run_rules(plus(clean_day(), orders=burst)), "order_rate")
    assert (alert.account, alert.symbol, alert.score) == ("RT", "XYZ", D(31))
    assert len(alert.orders) == 31
    assert sv.run_rules(plus(clean_day(), orders=burst[:30])) == []
    spread = [
        dataclasses.replace(o, submitted_at=o.submitted_at + timedelta(seconds=i), events=())
        for i, o in enumerate(burst)
    ]  # 2 s apart: 31 messages span 60 s
    assert rules(sv.run_rules(plus(clean_day(), orders=spread))) == ["order_rate"]
    slower = with_settings(**{"rate.window-s": "59"})
    assert sv.run_rules(plus(clean_day(), orders=spread), slower) == []


def test_cancel_requests_count_as_messages() -> None:
    def burst(n: int, cancel_after: int) -> list[OrderFact]:
        t0 = at("15:20:00")
        return [
            order(f"R{i}", "RT", BUY, 1, 90, t0, canceled=t0 + timedelta(seconds=cancel_after))
            for i in range(n)
        ]

    def rate(orders: list[OrderFact]) -> list[sv.Alert]:
        return sv.order_rate(plus(clean_day(), orders=orders), sv.DEFAULT_SETTINGS)

    (alert,) = rate(burst(16, 30))
    assert alert.score == D(32)  # 16 submissions and their 16 cancels
    assert rate(burst(15, 30)) == []  # 30: allowed
    assert rate(burst(16, 61)) == []  # 16 and 16, more than a minute apart
    # placing and pulling 16 orders within half a minute is layering too
    assert rules(sv.run_rules(plus(clean_day(), orders=burst(16, 30)))) == [
        "layering",
        "order_rate",
    ]


def test_a_rule_that_is_off_stays_quiet() -> None:
    late = trade("MC", BUY, 3000, 101, at("20:55:00"))
    day = plus(clean_day(), trades=[late])
    assert sv.run_rules(day, with_settings(rules="wash_trade,spoofing")) == []
    assert rules(sv.run_rules(day, with_settings(rules="marking_close"))) == ["marking_close"]


def test_corrected_and_untimed_executions() -> None:
    # an execution without a time never matches a wash and never counts in a window
    day = plus(
        clean_day(),
        trades=[trade("W1", BUY, 100, 100, None), trade("W1", SELL, 100, 100, at("16:00:00"))],
    )
    assert sv.run_rules(day) == []


# ---- alert keys and evidence -------------------------------------------------------------------


def pattern_day() -> DayData:
    return plus(
        clean_day(),
        orders=[
            order("S1", "SP", BUY, 1000, 99, at("15:00:00"), canceled=at("15:00:05")),
            *(
                order(f"L{i}", "LY", BUY, 500, 99, at(f"15:10:0{i}"), at("15:10:30"))
                for i in range(4)
            ),
        ],
        trades=[
            trade("SP", SELL, 100, 100, at("15:00:02")),
            trade("W1", BUY, 100, 100, at("16:00:00")),
            trade("W1", SELL, 100, 100, at("16:01:00")),
            trade("MC", BUY, 3000, 101, at("20:55:00")),
        ],
    )


def test_keys_are_stable_and_distinct() -> None:
    data = pattern_day()
    first = sv.run_rules(data)
    assert rules(first) == ["layering", "marking_close", "spoofing", "wash_trade"]
    shuffled = dataclasses.replace(
        data,
        orders=random.Random(1).sample(list(data.orders), len(data.orders)),
        trades=random.Random(2).sample(list(data.trades), len(data.trades)),
    )
    again = sv.run_rules(shuffled)
    assert [a.key for a in again] == [a.key for a in first]
    assert [a.details for a in again] == [a.details for a in first]
    assert len({a.key for a in first}) == len(first)
    assert all(len(a.key) <= 200 for a in first)
    unmatched = plus(data, trades=[trade("W1", SELL, 5, 100, at("16:02:00"))])
    assert [a.key for a in sv.run_rules(unmatched)] == [a.key for a in first]  # same evidence
    more = plus(
        data,
        trades=[
            trade("W1", BUY, 5, 100, at("16:01:30")),
            trade("W1", SELL, 5, 100, at("16:02:00")),
        ],
    )
    wash_keys = {a.key for a in sv.run_rules(more) if a.rule == "wash_trade"}
    assert wash_keys.isdisjoint(a.key for a in first)  # new evidence: a new alert


def test_evidence_names_the_orders_of_the_executions() -> None:
    data = plus(
        clean_day(),
        trades=[trade("A1", BUY, 1000, 100, at("15:30:00"), order_id="O1")],
    )
    alert = only(sv.run_rules(data), "unusual_size")
    ev = alert.evidence()
    assert [o["order_id"] for o in ev["orders"]] == ["O1"]
    assert {e["order_id"] for e in ev["executions"]} == {"O1"}
    # the order's size is all its executions: the clean day's 100 and these 1000
    assert [e["quantity"] for e in ev["executions"]] == ["100", "1000"]
    assert alert.details["items"][0]["notional"] == "110000"


def test_details_and_evidence_are_plain_json() -> None:
    for alert in sv.run_rules(pattern_day()):
        # json.dumps refuses Decimals and datetimes: every figure is a string already
        assert json.loads(json.dumps(alert.details)) == alert.details
        assert json.loads(json.dumps(alert.evidence())) == alert.evidence()


# ---- settings ----------------------------------------------------------------------------------


def test_defaults() -> None:
    s = sv.DEFAULT_SETTINGS
    assert s.rules == frozenset(sv.RULES)
    assert (s.wash_window, s.wash_price_band_pct) == (timedelta(seconds=300), D("0.5"))
    assert (s.size_z, s.rate_max_messages, s.close_window) == (D(3), 30, timedelta(minutes=10))
    shown = s.as_json()
    assert shown["links"] == "none" and shown["rules"] == "all"
    assert shown["hours.margin-min"] == "30" and shown["wash.price-band-pct"] == "0.5"
    assert sv.settings_from(shown) == s  # what is shown parses back to the same


def test_links_merge_overlapping_groups() -> None:
    s = with_settings(links=" B2,B1 ; A1,A2;A2,A3 ")
    assert s.links == (frozenset({"A1", "A2", "A3"}), frozenset({"B1", "B2"}))
    assert s.as_json()["links"] == "A1,A2,A3;B1,B2"
    assert (s.owner("A3"), s.owner("B2"), s.owner("C1")) == ("A1", "B1", "C1")
    assert with_settings(links="").links == ()


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("wash.window-s", "0", "greater than zero"),
        ("wash.window-s", "abc", "not a decimal"),
        ("wash.price-band-pct", "101", "at most 100"),
        ("layering.min-orders", "2.5", "whole number"),
        ("rules", "wash_trade,nonsense", "name rules"),
        ("links", "A1", "two accounts"),
        ("links", "A1,bad name", "identifier"),
        ("nonsense", "1", "not a surveillance setting"),
    ],
)
def test_bad_settings_are_refused(name: str, value: str, why: str) -> None:
    with pytest.raises(BadInput, match=why):
        sv.parse_param(name, value)


def test_durations_keep_fractions() -> None:
    param, value = sv.parse_param("surveil.wash.window-s", "1.5")
    assert value == timedelta(seconds=1, microseconds=500_000)
    assert param.show(value) == "1.5"
    param, value = sv.parse_param("close.window-min", "0.5")
    assert (value, param.show(value)) == (timedelta(seconds=30), "0.5")


# ---- properties --------------------------------------------------------------------------------

seconds_of_day = st.integers(min_value=0, max_value=86_399)


@settings(max_examples=60, deadline=None)
@given(st.lists(seconds_of_day, min_size=1, max_size=20), st.integers(0, 120))
def test_every_history_time_is_inside_its_usual_window(secs: list[int], margin: int) -> None:
    times = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=x) for x in secs]
    window = sv.usual_window(times, timedelta(minutes=margin))
    if window is None:
        return
    start, length = window
    assert 0 <= start < 86_400 and 0 <= length < 86_400
    for t in times:
        assert (t.hour * 3600 + t.minute * 60 + t.second - start) % 86_400 <= length
    # and no shorter arc holds them all: the window without margins is the complement of the
    # largest gap between neighbouring times
    ordered = sorted(set(secs))
    gaps = [b - a for a, b in itertools.pairwise(ordered)]
    gaps.append(ordered[0] + 86_400 - ordered[-1])
    assert length - 2 * margin * 60 == 86_400 - max(gaps)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 10**9), min_size=2, max_size=30), st.integers(0, 6))
def test_mean_and_stdev_are_exact(raw: list[int], scale: int) -> None:
    values = [D(v).scaleb(-scale) for v in raw]
    mean, sd = sv.mean_stdev(values)
    n = len(values)
    with localcontext(sv.CTX):
        assert abs(mean * n - sum(values)) <= abs(mean) * D("1e-31")
        var = sum((v - mean) ** 2 for v in values) / (n - 1)
        assert abs(sd * sd - var) <= var * D("1e-30")
    assert sd >= 0
    if len(set(values)) == 1:
        assert sd == 0


trade_st = st.tuples(
    st.sampled_from(["W1", "W2"]),
    st.sampled_from([BUY, SELL]),
    st.integers(1, 500),
    st.integers(9900, 10100),
    st.integers(0, 3600),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(trade_st, max_size=25))
def test_wash_matching_never_matches_more_than_was_traded(items: list[Any]) -> None:
    trades = [
        trade(a, side, q, D(p) / 100, at("16:00:00") + timedelta(seconds=s), symbol="COIN")
        for a, side, q, p, s in items
    ]
    s = with_settings(links="W1,W2")
    for alert in sv.wash_trades(DayData(DAY, trades=trades, markets=MARKETS), s):
        washed = D(alert.details["washed_quantity"])
        bought = sum((t.quantity for t in trades if t.side is BUY), D(0))
        sold = sum((t.quantity for t in trades if t.side is SELL), D(0))
        assert 0 < washed <= min(bought, sold)
        assert 0 < alert.score <= 100
        for pair in alert.details["pairs"]:
            assert D(pair["price_diff_pct"]) <= D("0.5")
            assert D(pair["seconds_apart"]) <= 300


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 600), min_size=1, max_size=60), st.integers(1, 10))
def test_order_rate_counts_the_busiest_window(offsets: list[int], limit: int) -> None:
    t0 = at("15:00:00")
    orders = [
        order(f"R{i}", "RT", BUY, 1, 90, t0 + timedelta(seconds=x)) for i, x in enumerate(offsets)
    ]
    s = with_settings(**{"rate.max-messages": str(limit)})
    busiest = max(sum(1 for y in offsets if x <= y <= x + 60) for x in offsets)
    alerts = sv.order_rate(DayData(DAY, orders=orders), s)
    if busiest > limit:
        (alert,) = alerts
        assert alert.score == busiest
    else:
        assert alerts == []


def test_an_order_burst_across_new_york_s_evening_and_sydney_s_morning_is_one_burst() -> None:
    """Four messages in four seconds at 02:00 UTC on 15 November, New York and Sydney orders
    in turn: New York's are on its 14th, Sydney's on its 15th. Counted by each exchange's day
    only, the burst was on neither date; counted by either day, on both (re-reviews). It is
    one burst, alerted once: on the date its first message is on, on that message's exchange
    (New York's 14th)."""

    def markets(day: date) -> dict[str, Market]:
        def local(offset: int) -> dict[str, datetime]:  # the date's bounds: UTC - offset
            start = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=offset)
            return {"day_from": start, "day_to": start + timedelta(days=1)}

        return {"IBM": Market("IBM", **local(-5)), "BHP": Market("BHP", **local(11))}

    t0 = datetime(2024, 11, 15, 2, 0, 1, tzinfo=UTC)
    orders = [
        order(f"R{i}", "RT", BUY, 1, 90, t0 + timedelta(seconds=i), symbol=sym)
        for i, sym in enumerate(["IBM", "BHP", "IBM", "BHP"])
    ]
    s = with_settings(**{"rate.max-messages": "3"})
    alerted = {
        day: sv.order_rate(DayData(day, orders=orders, markets=markets(day)), s)
        for day in (date(2024, 11, 14), date(2024, 11, 15))
    }
    (alert,) = alerted[date(2024, 11, 14)]
    assert alert.score == 4
    assert alerted[date(2024, 11, 15)] == []


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from([BUY, SELL]), st.integers(1, 300)), max_size=20),
    st.integers(-300, 300),
)
def test_flips_counted_are_sign_changes(moves: list[Any], opening: int) -> None:
    trades = [
        trade("PF", side, q, 100, at("15:00:00") + timedelta(seconds=i))
        for i, (side, q) in enumerate(moves)
    ]
    s = with_settings(**{"flip.min-flips": "1"})
    alerts = sv.position_flips(DayData(DAY, trades=trades, opening={("PF", "XYZ"): D(opening)}), s)
    pos, last, flips = D(opening), (opening > 0) - (opening < 0), 0
    for side, q in moves:
        pos += q if side is BUY else -q
        sign = (pos > 0) - (pos < 0)
        if sign and last and sign != last:
            flips += 1
        last = sign or last
    assert (alerts[0].score if alerts else 0) == flips
