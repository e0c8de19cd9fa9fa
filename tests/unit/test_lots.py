"""Positions, tax lots and P&L (oms.lots): hand-worked examples and hypothesis properties.

Every number is a Decimal made from a string or an int (hypothesis draws integers and scales
them by a power of ten), never from a float.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal, FloatOperation, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oms.errors import BadInput
from oms.lots import (
    CONTEXT,
    ExecRecord,
    Lot,
    Position,
    Valuation,
    build_positions,
    cash_flow,
    effective_fills,
    fill_order,
    value,
)
from oms.values import ZERO, CostMethod, Side

D = Decimal
DAY0 = date(2024, 3, 4)
BUY, SELL = Side.BUY, Side.SELL
METHODS = tuple(CostMethod)
KEY = ("ACC1", "XYZ")


def day(n: int) -> date:
    return DAY0 + timedelta(days=n)


def rec(
    seq: int,
    side: Side,
    quantity: str | Decimal,
    price: str | Decimal,
    commission: str | Decimal = "0",
    fees: str | Decimal = "0",
    *,
    on: int = 0,
    at: datetime | None = None,
    account: str = "ACC1",
    symbol: str = "XYZ",
    venue: str = "XNAS",
    exec_id: str | None = None,
    exec_type: str = "fill",
    ref: str | None = None,
) -> ExecRecord:
    return ExecRecord(
        seq=seq,
        venue=venue,
        exec_id=exec_id if exec_id is not None else f"E{seq}",
        account=account,
        symbol=symbol,
        side=side,
        quantity=D(quantity),
        price=D(price),
        commission=D(commission),
        fees=D(fees),
        trade_date=day(on),
        exec_time=at,
        exec_type=exec_type,
        ref_exec_id=ref,
    )


def total_cash(fills: Sequence[ExecRecord]) -> dict[tuple[str, str], Decimal]:
    totals: dict[tuple[str, str], Decimal] = {}
    with localcontext(CONTEXT):
        for f in fills:
            key = (f.account, f.symbol)
            totals[key] = totals.get(key, ZERO) + cash_flow(f)
    return totals


def one(fills: Sequence[ExecRecord], method: CostMethod = CostMethod.FIFO) -> Position:
    positions = build_positions(fills, method)
    assert list(positions) == [KEY]
    return positions[KEY]


# --------------------------------------------------------------------------- hand-worked


def test_cash_flow_is_signed_from_the_account() -> None:
    assert cash_flow(rec(1, BUY, "100", "10", "1", "0.5")) == D("-1001.5")
    assert cash_flow(rec(1, SELL, "100", "10", "1", "0.5")) == D("998.5")


# Buy 100 @ 10 (commission 1), buy 100 @ 12 (commission 1), sell 150 @ 15 (commission 1.5).
# Lots: 100 @ 10 basis 1001, 100 @ 12 basis 1201. The sale brings 2250 - 1.5 = 2248.5.
THREE = (
    rec(1, BUY, "100", "10", "1", on=0),
    rec(2, BUY, "100", "12", "1", on=1),
    rec(3, SELL, "150", "15", "1.5", on=2),
)


def test_fifo_relieves_oldest_first() -> None:
    # Relieves 1001 (all of lot 1) + 1201 * 50/100 = 600.5 of lot 2: 2248.5 - 1601.5 = 647.
    pos = one(THREE, CostMethod.FIFO)
    assert pos.realized_pnl == D("647")
    assert pos.lots == (Lot(day(1), D("50"), D("12"), D("600.5")),)
    assert (pos.quantity, pos.cost_basis) == (D("50"), D("600.5"))
    assert pos.avg_cost == D("12.01")
    assert (pos.commissions, pos.fees) == (D("3.5"), ZERO)


def test_lifo_relieves_newest_first() -> None:
    # Relieves 1201 (all of lot 2) + 1001 * 50/100 = 500.5 of lot 1: 2248.5 - 1701.5 = 547.
    pos = one(THREE, CostMethod.LIFO)
    assert pos.realized_pnl == D("547")
    assert pos.lots == (Lot(day(0), D("50"), D("10"), D("500.5")),)
    assert pos.avg_cost == D("10.01")


def test_average_pools_and_relieves_pro_rata() -> None:
    # One pool: 200 @ 11, basis 2202. Relieves 2202 * 150/200 = 1651.5: 2248.5 - 1651.5 = 597.
    pos = one(THREE, CostMethod.AVERAGE)
    assert pos.realized_pnl == D("597")
    assert pos.lots == (Lot(day(0), D("50"), D("11"), D("550.5")),)
    assert pos.avg_cost == D("11.01")


def test_methods_agree_on_quantity_and_total() -> None:
    # Cash flows: -1001 - 1201 + 2248.5 = 46.5 = realized - open basis, whatever the method.
    for method in METHODS:
        pos = one(THREE, method)
        assert pos.quantity == D("50")
        assert pos.realized_pnl - pos.cost_basis == D("46.5") == total_cash(THREE)[KEY]


def test_method_may_be_given_as_text() -> None:
    assert one(THREE, CostMethod("lifo")) == one(THREE, CostMethod.LIFO)
    as_text: object = "average"  # a caller that did not convert
    by_text = build_positions(THREE, as_text)  # type: ignore[arg-type]
    assert by_text == build_positions(THREE, CostMethod.AVERAGE)


def test_lifo_keeps_lots_oldest_first() -> None:
    fills = [
        rec(1, BUY, "10", "1", on=0),
        rec(2, BUY, "10", "2", on=1),
        rec(3, BUY, "10", "3", on=2),
        rec(4, SELL, "5", "4", on=3),
    ]
    pos = one(fills, CostMethod.LIFO)
    assert [lot.opened for lot in pos.lots] == [day(0), day(1), day(2)]
    assert [lot.quantity for lot in pos.lots] == [D("10"), D("10"), D("5")]
    assert pos.realized_pnl == D("5")  # 5 * (4 - 3)
    fifo = one(fills, CostMethod.FIFO)
    assert [lot.quantity for lot in fifo.lots] == [D("5"), D("10"), D("10")]
    assert fifo.realized_pnl == D("15")  # 5 * (4 - 1)


def test_short_sale_and_cover() -> None:
    # Sell short 100 @ 50, commission 2: short lot -100, basis -(5000 - 2) = -4998.
    short = [rec(1, SELL, "100", "50", "2", on=0)]
    pos = one(short)
    assert pos.lots == (Lot(day(0), D("-100"), D("50"), D("-4998")),)
    assert pos.avg_cost == D("49.98")
    # Cover 40 @ 45, commission 1: cash -1801, relieved -4998 * 40/100 = -1999.2: +198.2.
    partly = [*short, rec(2, BUY, "40", "45", "1", on=1)]
    pos = one(partly)
    assert pos.realized_pnl == D("198.2")
    assert pos.lots == (Lot(day(0), D("-60"), D("50"), D("-2998.8")),)
    assert (pos.quantity, pos.cost_basis) == (D("-60"), D("-2998.8"))
    # Cover the other 60 @ 55, commission 1: cash -3301, relieved -2998.8: -302.2.
    done = [*partly, rec(3, BUY, "60", "55", "1", on=2)]
    pos = one(done)
    assert pos.realized_pnl == D("-104")  # 4998 - 1801 - 3301
    assert (pos.quantity, pos.cost_basis, pos.lots, pos.avg_cost) == (ZERO, ZERO, (), None)
    assert pos.commissions == D("4")


def test_flip_long_to_short_splits_costs_pro_rata() -> None:
    # Long 100 @ 10 (costs 2, basis 1002); sell 150 @ 12 with commission 2 and fees 1. The
    # closing 100 carries 3 * 100/150 = 2 of the costs, the opening 50 the other 1.
    fills = [rec(1, BUY, "100", "10", "2", on=0), rec(2, SELL, "150", "12", "2", "1", on=1)]
    for method in METHODS:
        pos = one(fills, method)
        assert pos.realized_pnl == D("196")  # (1200 - 2) - 1002
        assert pos.lots == (Lot(day(1), D("-50"), D("12"), D("-599")),)  # -(600 - 1)
        assert (pos.quantity, pos.cost_basis) == (D("-50"), D("-599"))
        assert pos.avg_cost == D("11.98")
        assert (pos.commissions, pos.fees) == (D("4"), D("1"))
        assert pos.realized_pnl - pos.cost_basis == total_cash(fills)[KEY] == D("795")


def test_flip_short_to_long_with_repeating_cost_share() -> None:
    # Short 100 @ 20 (basis -2000); buy 150 @ 19 with commission 1. The closing 100 carries
    # 1 * 100/150 = 0.666666666667 (12 places, half even), the opening 50 the remainder.
    fills = [rec(1, SELL, "100", "20", on=0), rec(2, BUY, "150", "19", "1", on=1)]
    pos = one(fills)
    assert pos.realized_pnl == D("99.333333333333")  # -1900 - 0.666666666667 + 2000
    assert pos.lots == (Lot(day(1), D("50"), D("19"), D("950.333333333333")),)
    assert pos.realized_pnl - pos.cost_basis == total_cash(fills)[KEY] == D("-851")


def test_partial_relief_of_thirds_conserves_basis() -> None:
    # Buy 3 @ 10 with commission 1: basis 31, which does not divide by 3.
    buy = rec(1, BUY, "3", "10", "1", on=0)
    sells = [rec(i, SELL, "1", "11", on=i) for i in (2, 3, 4)]
    # 1st sale relieves 31 * 1/3 = 10.333333333333, leaving 20.666666666667.
    pos = one([buy, sells[0]])
    assert pos.realized_pnl == D("0.666666666667")
    assert pos.lots == (Lot(day(0), D("2"), D("10"), D("20.666666666667")),)
    # 2nd relieves 20.666666666667 / 2 = 10.3333333333335 -> 10.333333333334 (half even).
    pos = one([buy, *sells[:2]])
    assert pos.realized_pnl == D("1.333333333333")
    assert pos.lots == (Lot(day(0), D("1"), D("10"), D("10.333333333333")),)
    # The last relieves what is left exactly: the three realized amounts add up to 33 - 31.
    pos = one([buy, *sells])
    assert pos.realized_pnl == D("2")
    assert (pos.quantity, pos.cost_basis, pos.lots) == (ZERO, ZERO, ())


def test_partial_relief_spanning_lots() -> None:
    fills = [
        rec(1, BUY, "1", "10", "1", on=0),  # basis 11
        rec(2, BUY, "3", "20", "1", on=1),  # basis 61
        rec(3, SELL, "2", "30", on=2),  # relieves 11 + 61/3 = 11 + 20.333333333333
    ]
    pos = one(fills)
    assert pos.realized_pnl == D("28.666666666667")  # 60 - 31.333333333333
    assert pos.lots == (Lot(day(1), D("2"), D("20"), D("40.666666666667")),)
    assert pos.realized_pnl - pos.cost_basis == total_cash(fills)[KEY] == D("-12")


def test_average_price_and_opened_of_the_pool() -> None:
    fills = [
        rec(1, BUY, "1", "10", on=0),
        rec(2, BUY, "2", "11", on=1),
        rec(3, SELL, "1", "12", on=2),
        rec(4, BUY, "3", "13", on=3),
    ]
    pos = one(fills, CostMethod.AVERAGE)
    # Pool after two buys: 3 @ 32/3; one sold leaves 2 @ 32/3; +3 @ 13: 5 @ (64/3 + 39)/5.
    (lot,) = pos.lots
    assert lot.opened == day(0)
    assert lot.quantity == D("5")
    assert lot.price == D("12.066666666667")
    assert lot.cost_basis == D("60.333333333333")  # 32 - 10.666666666667 + 39
    assert pos.realized_pnl == D("1.333333333333")  # 12 - 10.666666666667


def test_round_trip_leaves_flat_position_visible() -> None:
    fills = [
        rec(1, BUY, "250", "4.02", "1.25", "0.03", on=0),
        rec(2, SELL, "250", "4.10", "1.25", "0.04", on=1),
        rec(3, BUY, "1", "7", account="ACC2", on=1),
    ]
    for method in METHODS:
        positions = build_positions(fills, method)
        assert set(positions) == {KEY, ("ACC2", "XYZ")}
        pos = positions[KEY]
        assert (pos.quantity, pos.cost_basis, pos.lots) == (ZERO, ZERO, ())
        assert pos.realized_pnl == D("1025") - D("1005") - D("2.57")
        assert (pos.commissions, pos.fees) == (D("2.5"), D("0.07"))
        assert positions[("ACC2", "XYZ")].quantity == D("1")


def test_accounts_and_symbols_are_kept_apart() -> None:
    fills = [
        rec(1, BUY, "10", "5", account="A", symbol="S1"),
        rec(2, SELL, "10", "6", account="A", symbol="S2"),
        rec(3, SELL, "4", "7", account="B", symbol="S1"),
        rec(4, SELL, "10", "6", account="A", symbol="S1"),
    ]
    positions = build_positions(fills)
    assert {k: p.quantity for k, p in positions.items()} == {
        ("A", "S1"): ZERO,
        ("A", "S2"): D("-10"),
        ("B", "S1"): D("-4"),
    }
    assert positions[("A", "S1")].realized_pnl == D("10")
    assert positions[("A", "S1")].account == "A"
    assert positions[("A", "S1")].symbol == "S1"


def test_input_is_sorted_by_trade_date_time_and_seq() -> None:
    t = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
    fills = [
        rec(5, SELL, "1", "30", on=1, at=t),  # last
        rec(9, BUY, "1", "20", on=1, at=None),  # no time: before timed fills of its day
        rec(7, BUY, "1", "10", on=0, at=t + timedelta(hours=1)),  # first: earlier trade date
    ]
    assert [f.seq for f in sorted(fills, key=fill_order)] == [7, 9, 5]
    pos = one(fills, CostMethod.FIFO)
    assert pos.realized_pnl == D("20")  # the lot @ 10 went first
    assert pos.lots == (Lot(day(1), D("1"), D("20"), D("20")),)
    assert build_positions(fills) == build_positions(sorted(fills, key=fill_order))


def test_result_does_not_depend_on_the_callers_decimal_context() -> None:
    expected = {m: build_positions(THREE, m) for m in METHODS}
    marked = {m: value(expected[m][KEY], D("15.123456789")) for m in METHODS}
    with localcontext() as ctx:
        ctx.prec = 3
        ctx.rounding = ROUND_DOWN
        ctx.traps[FloatOperation] = True
        for method in METHODS:
            assert build_positions(THREE, method) == expected[method]
            assert value(expected[method][KEY], D("15.123456789")) == marked[method]
            assert expected[method][KEY].avg_cost == one(THREE, method).avg_cost


def test_avg_cost_is_rounded_to_twelve_places() -> None:
    pos = one([rec(1, BUY, "3", "10", "1")])
    assert pos.avg_cost == D("10.333333333333")
    assert one([rec(1, SELL, "3", "10", "1")]).avg_cost == D("9.666666666667")


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"quantity": D("0")}, "quantity"),
        ({"quantity": D("-1")}, "quantity"),
        ({"price": D("0")}, "price"),
        ({"commission": D("-0.01")}, "commission"),
        ({"fees": D("-0.01")}, "fees"),
        ({"quantity": D("NaN")}, "finite"),
        ({"exec_type": "bust", "ref_exec_id": "E0"}, "effective fills"),
        ({"side": "short"}, "side"),
    ],
)
def test_build_positions_refuses_bad_fills(change: dict[str, object], reason: str) -> None:
    bad = rec(2, SELL, "1", "10")._replace(**change)
    with pytest.raises(BadInput, match=reason) as err:
        build_positions([rec(1, BUY, "1", "10"), bad])
    assert "XNAS/E2" in str(err.value)


def test_side_may_be_plain_text() -> None:
    fills = [f._replace(side=str(f.side)) for f in THREE]
    assert build_positions(fills) == build_positions(THREE)


def test_effective_fills_refuses_unknown_exec_type() -> None:
    with pytest.raises(BadInput, match="exec_type"):
        effective_fills([rec(1, BUY, "1", "1", exec_type="amend", ref="E0")])


# --------------------------------------------------------------------------- corrections


def test_correction_replaces_terms_and_keeps_identity() -> None:
    original = rec(1, BUY, "100", "10", "1", on=0)
    other = rec(2, BUY, "5", "11", on=0)
    fix = rec(3, BUY, "100", "10.5", "1", on=0, exec_id="C1", exec_type="correct", ref="E1")
    out = effective_fills([original, other, fix])
    assert out == [original._replace(price=D("10.5")), other]
    assert out[0].seq == 1
    assert out[0].exec_id == "E1"
    assert (out[0].exec_type, out[0].ref_exec_id) == ("fill", None)
    assert one(out).cost_basis == D("1051") + D("55")


def test_correction_may_change_every_term_and_the_order() -> None:
    original = rec(1, BUY, "100", "10", on=0)
    later = rec(2, SELL, "10", "11", on=1)
    fix = rec(3, SELL, "7", "9", "2", "1", on=2, exec_id="C1", exec_type="correct", ref="E1")
    out = effective_fills([original, later, fix])
    assert [(f.seq, f.side, f.quantity, f.trade_date) for f in out] == [
        (2, SELL, D("10"), day(1)),
        (1, SELL, D("7"), day(2)),
    ]
    assert one(out).quantity == D("-17")


def test_bust_removes_the_fill() -> None:
    fills = [rec(1, BUY, "100", "10"), rec(2, BUY, "50", "11")]
    bust = rec(3, BUY, "100", "10", exec_id="B1", exec_type="bust", ref="E1")
    assert effective_fills([*fills, bust]) == [fills[1]]
    assert effective_fills([rec(1, BUY, "1", "1"), bust._replace(ref_exec_id="E1")]) == []


def test_correction_of_a_correction_resolves_to_the_original() -> None:
    original = rec(1, BUY, "10", "5", on=0)
    c1 = rec(2, BUY, "20", "5", on=0, exec_id="C1", exec_type="correct", ref="E1")
    c2 = rec(3, BUY, "30", "5", on=0, exec_id="C2", exec_type="correct", ref="C1")
    out = effective_fills([c2, original, c1])  # input order does not matter, seq does
    assert out == [original._replace(quantity=D("30"))]
    # A bust of the second correction removes the original.
    bust = rec(4, BUY, "30", "5", exec_id="B1", exec_type="bust", ref="C2")
    assert effective_fills([original, c1, c2, bust]) == []


def test_later_record_wins() -> None:
    original = rec(1, BUY, "10", "5")
    c1 = rec(2, BUY, "20", "5", exec_id="C1", exec_type="correct", ref="E1")
    c2 = rec(3, BUY, "30", "5", exec_id="C2", exec_type="correct", ref="E1")
    assert effective_fills([original, c2, c1])[0].quantity == D("30")
    # A correction booked after a bust reinstates the fill on the corrected terms.
    bust = rec(2, BUY, "10", "5", exec_id="B1", exec_type="bust", ref="E1")
    fix = rec(3, BUY, "40", "5", exec_id="C3", exec_type="correct", ref="B1")
    assert effective_fills([original, bust, fix]) == [original._replace(quantity=D("40"))]


def test_records_naming_unknown_executions_are_ignored() -> None:
    original = rec(1, BUY, "10", "5", venue="XNAS")
    ignored = [
        rec(2, BUY, "1", "1", exec_id="C1", exec_type="correct", ref="NOPE"),
        rec(3, BUY, "1", "1", venue="ARCX", exec_id="C2", exec_type="correct", ref="E1"),
        rec(4, BUY, "1", "1", exec_id="B1", exec_type="bust", ref=None),
        rec(5, BUY, "1", "1", exec_id="C3", exec_type="correct", ref="C2"),  # C2 ignored
        rec(6, BUY, "1", "1", exec_id="C4", exec_type="correct", ref="C4"),  # itself
        rec(0, BUY, "1", "1", exec_id="B0", exec_type="bust", ref="E1"),  # before E1
    ]
    assert effective_fills([original, *ignored]) == [original]


def test_effective_fills_are_in_fill_order() -> None:
    t = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)
    fills = [
        rec(1, BUY, "1", "1", on=1, at=t),
        rec(2, BUY, "1", "1", on=1, at=None),
        rec(3, BUY, "1", "1", on=0, at=t),
        rec(4, BUY, "1", "1", on=1, at=t - timedelta(seconds=1)),
        rec(5, BUY, "1", "1", on=1, at=t),
    ]
    assert [f.seq for f in effective_fills(fills)] == [3, 2, 4, 1, 5]


# --------------------------------------------------------------------------- valuation


def test_value_long_short_flat_and_unpriced() -> None:
    long = one([rec(1, BUY, "100", "10", "1")])
    assert value(long, D("12")) == Valuation(D("12"), D("1200"), D("199"))
    short = one([rec(1, SELL, "100", "50", "2")])
    assert value(short, D("45")) == Valuation(D("45"), D("-4500"), D("498"))
    assert value(long, None) == Valuation(None, None, None)
    flat = one([rec(1, BUY, "1", "10"), rec(2, SELL, "1", "11")])
    assert value(flat, None) == Valuation(None, ZERO, ZERO)
    assert value(flat, D("3")) == Valuation(D("3"), ZERO, ZERO)


def test_value_is_exact_for_large_numbers() -> None:
    pos = one([rec(1, BUY, "999999999.999999", "999999.999999", "999.99", "999.99")])
    mark = D("999999.999998")
    val = value(pos, mark)
    assert val.market_value == D("999999999.999999") * mark
    assert val.unrealized_pnl == D("-999999999.999999") * D("0.000001") - D("1999.98")


def test_value_refuses_a_negative_price() -> None:
    with pytest.raises(BadInput, match="price"):
        value(one(THREE), D("-1"))


# --------------------------------------------------------------------------- properties


@st.composite
def scaled(draw: st.DrawFn, max_value: int, max_places: int, minimum: int = 1) -> Decimal:
    """A Decimal from minimum (in units of its last place) to max_value with up to max_places
    decimals: an integer scaled by a power of ten, never a float."""
    places = draw(st.integers(0, max_places))
    units = draw(st.integers(minimum, max_value * 10**places))
    return Decimal(units).scaleb(-places)


# Small whole numbers make positions go flat and flip exactly; scaled ones cover the range.
quantities = st.one_of(st.integers(1, 10).map(Decimal), scaled(10**9, 6))
prices = st.one_of(st.integers(1, 100).map(Decimal), scaled(10**6, 6))
costs = st.one_of(st.just(ZERO), scaled(10**3, 6, minimum=0))
sides = st.sampled_from([BUY, SELL])
TIMES = [None, *(datetime(2024, 3, 4, 14, m, tzinfo=UTC) for m in range(3))]


@st.composite
def fill_lists(draw: st.DrawFn, max_size: int = 20) -> list[ExecRecord]:
    rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["A", "B"]),
                st.sampled_from(["S1", "S2"]),
                sides,
                quantities,
                prices,
                costs,
                costs,
                st.integers(0, 4),
                st.sampled_from(TIMES),
            ),
            max_size=max_size,
        )
    )
    return [
        ExecRecord(
            seq=i,
            venue="XNAS",
            exec_id=f"E{i}",
            account=account,
            symbol=symbol,
            side=side,
            quantity=q,
            price=p,
            commission=c,
            fees=f,
            trade_date=day(d),
            exec_time=t,
        )
        for i, (account, symbol, side, q, p, c, f, d, t) in enumerate(rows)
    ]


# The main invariant gets 200 examples, the other properties 100: the file runs in seconds.
PROPS = settings(max_examples=200, deadline=None)
SOME = settings(max_examples=100, deadline=None)


def signed_quantity(fill: ExecRecord) -> Decimal:
    return fill.quantity if fill.side is BUY else -fill.quantity


@PROPS
@given(fill_lists(), st.sampled_from(METHODS))
def test_cash_is_conserved_exactly(fills: list[ExecRecord], method: CostMethod) -> None:
    positions = build_positions(fills, method)
    cash = total_cash(fills)
    assert set(positions) == set(cash)
    with localcontext(CONTEXT):
        for key, pos in positions.items():
            mine = [f for f in fills if (f.account, f.symbol) == key]
            assert pos.realized_pnl - pos.cost_basis == cash[key]
            assert pos.quantity == sum((signed_quantity(f) for f in mine), ZERO)
            assert pos.quantity == sum((lot.quantity for lot in pos.lots), ZERO)
            assert pos.cost_basis == sum((lot.cost_basis for lot in pos.lots), ZERO)
            assert pos.commissions == sum((f.commission for f in mine), ZERO)
            assert pos.fees == sum((f.fees for f in mine), ZERO)
            assert (pos.quantity == 0) == (pos.lots == ())
            assert all((lot.quantity > 0) == (pos.quantity > 0) for lot in pos.lots)
            assert all(lot.quantity != 0 for lot in pos.lots)
            openings = [lot.opened for lot in pos.lots]
            assert openings == sorted(openings)
            if method is CostMethod.AVERAGE:
                assert len(pos.lots) <= 1
            if pos.avg_cost is not None:
                slack = abs(pos.quantity) * D("0.5E-12")  # avg_cost is rounded to 12 places
                assert abs(pos.avg_cost * pos.quantity - pos.cost_basis) <= slack


@SOME
@given(fill_lists(max_size=12))
def test_methods_agree_on_every_fill_list(fills: list[ExecRecord]) -> None:
    fifo, lifo, average = (build_positions(fills, m) for m in METHODS)
    assert set(fifo) == set(lifo) == set(average)
    with localcontext(CONTEXT):
        for key, pos in fifo.items():
            others = (lifo[key], average[key])
            assert all(o.quantity == pos.quantity for o in others)
            total = pos.realized_pnl - pos.cost_basis
            assert all(o.realized_pnl - o.cost_basis == total for o in others)
            assert all((o.commissions, o.fees) == (pos.commissions, pos.fees) for o in others)


@SOME
@given(fill_lists(max_size=12), st.randoms(use_true_random=False))
def test_input_order_does_not_matter(fills: list[ExecRecord], rnd: random.Random) -> None:
    shuffled = list(fills)
    rnd.shuffle(shuffled)
    for method in METHODS:
        assert build_positions(shuffled, method) == build_positions(fills, method)


@SOME
@given(
    st.lists(st.tuples(quantities, prices, costs, costs), min_size=1, max_size=6),
    prices,
    costs,
    costs,
    st.sampled_from([BUY, SELL]),
    st.sampled_from(METHODS),
)
def test_round_trip(
    opens: list[tuple[Decimal, Decimal, Decimal, Decimal]],
    close_price: Decimal,
    close_commission: Decimal,
    close_fees: Decimal,
    side: Side,
    method: CostMethod,
) -> None:
    other = SELL if side is BUY else BUY
    fills = [rec(i, side, q, p, c, f, on=i) for i, (q, p, c, f) in enumerate(opens)]
    with localcontext(CONTEXT):
        total = sum((q for q, _, _, _ in opens), ZERO)
        fills.append(rec(99, other, total, close_price, close_commission, close_fees, on=9))
        pos = one(fills, method)
        assert (pos.quantity, pos.cost_basis, pos.lots, pos.avg_cost) == (ZERO, ZERO, (), None)
        bought = sum((q * p for q, p, _, _ in opens), ZERO)
        sold = total * close_price
        if side is SELL:  # a short sale and its cover
            bought, sold = sold, bought
        all_costs = sum((c + f for _, _, c, f in opens), ZERO) + close_commission + close_fees
        assert pos.realized_pnl == sold - bought - all_costs
        assert pos.commissions + pos.fees == all_costs


@SOME
@given(fill_lists(max_size=12), prices)
def test_total_pnl_at_a_mark_is_the_same_for_every_method(
    fills: list[ExecRecord], mark: Decimal
) -> None:
    totals = []
    with localcontext(CONTEXT):
        for method in METHODS:
            row = {}
            for key, pos in build_positions(fills, method).items():
                val = value(pos, mark)
                assert val.market_value is not None
                assert val.unrealized_pnl is not None
                assert val.unrealized_pnl == val.market_value - pos.cost_basis
                row[key] = pos.realized_pnl + val.unrealized_pnl
            totals.append(row)
        assert totals[0] == totals[1] == totals[2]
        for key, cash in total_cash(fills).items():
            held = sum((signed_quantity(f) for f in fills if (f.account, f.symbol) == key), ZERO)
            assert totals[0][key] == cash + held * mark


@SOME
@given(fill_lists(max_size=12), st.randoms(use_true_random=False))
def test_effective_fills_of_plain_fills_is_a_sort(
    fills: list[ExecRecord], rnd: random.Random
) -> None:
    shuffled = list(fills)
    rnd.shuffle(shuffled)
    assert effective_fills(shuffled) == sorted(fills, key=fill_order)


@SOME
@given(
    fill_lists(max_size=8),
    st.lists(st.tuples(st.integers(0, 20), st.booleans(), sides, quantities, prices), max_size=12),
)
def test_corrections_and_busts_follow_the_latest_record(
    fills: list[ExecRecord], changes: list[tuple[int, bool, Side, Decimal, Decimal]]
) -> None:
    """Each change names a random earlier record (fill or change); a model tracks each
    original's latest terms."""
    records = list(fills)
    root: dict[str, int] = {f.exec_id: i for i, f in enumerate(fills)}
    latest: dict[int, ExecRecord | None] = dict(enumerate(fills))
    for n, (pick, is_bust, side, q, p) in enumerate(changes):
        if not records:
            break
        target = records[pick % len(records)]
        change = rec(
            100 + n,
            side,
            q,
            p,
            on=n % 3,
            exec_id=f"X{n}",
            exec_type="bust" if is_bust else "correct",
            ref=target.exec_id,
        )
        records.append(change)
        index = root[target.exec_id]
        root[change.exec_id] = index
        latest[index] = None if is_bust else change
    expected = [
        # a corrected fill keeps its own time (its place in the lot queue)
        terms._replace(
            seq=fills[i].seq,
            exec_id=fills[i].exec_id,
            exec_time=fills[i].exec_time,
            exec_type="fill",
        )
        for i, terms in latest.items()
        if terms is not None
    ]
    expected = [e._replace(ref_exec_id=None) for e in expected]
    expected.sort(key=fill_order)
    assert effective_fills(records) == expected
    assert effective_fills(reversed(records)) == expected


# --------------------------------------------------------------------------- speed sanity


def generated_fills(n: int, symbols: int) -> Iterator[ExecRecord]:
    """n fills over `symbols` symbols, already in fill order, made on the fly."""
    rnd = random.Random(20240304)
    qty = [Decimal(rnd.randint(1, 5000)) for _ in range(64)]
    px = [Decimal(rnd.randint(1000, 90000)).scaleb(-2) for _ in range(64)]
    fee = [Decimal(rnd.randint(0, 300)).scaleb(-2) for _ in range(16)]
    for i in range(n):
        yield ExecRecord(
            seq=i,
            venue="XNAS",
            exec_id=f"E{i}",
            account=f"ACC{i % 3}",
            symbol=f"S{rnd.randrange(symbols)}",
            side=BUY if rnd.random() < 0.5 else SELL,
            quantity=qty[rnd.randrange(64)],
            price=px[rnd.randrange(64)],
            commission=fee[i % 16],
            fees=ZERO,
            trade_date=day(i * 20 // n),
            exec_time=None,
        )


def test_many_fills_in_one_pass() -> None:
    """A sanity check, not a benchmark: 20,000 fills from a generator (read once) across
    900 account/symbols go through in one pass and keep the books straight."""
    positions = build_positions(generated_fills(20_000, 300), CostMethod.FIFO)
    assert len(positions) == 900
    cash = total_cash(list(generated_fills(20_000, 300)))
    with localcontext(CONTEXT):
        for key, pos in positions.items():
            assert pos.realized_pnl - pos.cost_basis == cash[key]
