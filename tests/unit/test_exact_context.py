"""Figures that do not depend on the caller's decimal context: Python's default rounds every
result to 28 significant digits, and tieout's values have up to 30 (18 before the point, 12
after), their products up to 60. Each function here is called under the default context and
compared with the same figures computed in 500 digits. Each failed before it kept a context of
its own (found by an audit of the code that ran in the ambient context)."""

import decimal
from datetime import UTC, datetime
from decimal import Decimal

from oms import marketdata, orders, paper
from oms.orders import ClientOrderId, OrderId
from oms.values import AccountId, ExecId, Side, Symbol, normalize

WIDE = decimal.Context(prec=500)
DEFAULT = decimal.Context()  # Python's default: 28 digits, ROUND_HALF_EVEN

A = Decimal("123456789.123456")
B = Decimal("123456789.123457")  # A x B = 15241578780673607.157598507392: 29 digits


def test_normalize_keeps_every_digit() -> None:
    """`cash deposit A1 100000000000000000.000000000001` was taken for 1E+17 by the check of
    the currency's decimals (normalize rounded it first), and accepted."""
    with decimal.localcontext(DEFAULT):
        assert str(normalize(Decimal("100000000000000000.000000000001"))) == (
            "100000000000000000.000000000001"
        )
        assert str(normalize(Decimal("123456789012345678901234567890.000"))) == (
            "123456789012345678901234567890"
        )
        assert str(normalize(Decimal("1.500"))) == "1.5"


def test_hourly_bars_sum_their_volume_exactly() -> None:
    t0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    one = Decimal(1)
    bars = [
        marketdata.Bar("AAA", t0, one, one, one, one, Decimal("12345678901234567.123456789012")),
        marketdata.Bar("AAA", t0.replace(minute=1), one, one, one, one, Decimal(1)),
    ]
    with decimal.localcontext(DEFAULT):
        (hour,) = marketdata.aggregate(bars, marketdata.Interval.HOUR)
    assert hour.volume == Decimal("12345678901234568.123456789012")


def test_a_paper_fill_s_commission_counts_the_earlier_fills_exactly() -> None:
    """The second fill of an order at 100% commission paid ...679.20 where the order's whole
    charge, rounded once, makes it ...679.21: the earlier fills' notional was summed in 28
    digits."""
    q, p = Decimal("123456789.123457"), Decimal("100000872.647035")
    submit = orders.SubmitOrder(
        OrderId("O1"), ClientOrderId("C1"), AccountId("A1"), Symbol("AAA"), Side.BUY,
        q * 2, orders.OrdType.LIMIT, orders.TimeInForce.GTC, p,
    )  # fmt: skip
    at = datetime(2026, 11, 25, 12, tzinfo=UTC)
    order = orders.decide(None, submit, at, "t").order
    order = orders.decide(order, orders.AcknowledgeOrder(), at, "t").order
    first = orders.ApplyFill(ExecId("E1"), q, p)
    terms = paper.PaperTerms(commission_bps=Decimal(10000))
    with decimal.localcontext(DEFAULT):
        fee1 = paper.fill_charge(terms, order, first, currency="USD")
        after = orders.decide(order, first, at, "t").order
        second = orders.ApplyFill(ExecId("E2"), q, p)
        fee2 = paper.fill_charge(terms, after, second, currency="USD")
        assert orders.filled_notional(after.fills) == WIDE.multiply(q, p)
    whole = WIDE.multiply(WIDE.multiply(q, p), 2).quantize(Decimal("0.01"), decimal.ROUND_HALF_UP)
    assert WIDE.add(fee1, fee2) == whole


def test_a_bar_s_share_is_never_rounded_up() -> None:
    """A volume of 30 digits at 10% in lots of 0.000000000001: the floor of the share, never
    a share rounded up past what the bar traded."""
    volume = Decimal("123456789012345678.123456789012")
    with decimal.localcontext(DEFAULT):
        share = paper.participation_quantity(volume, Decimal(10), Decimal("0.000000000001"))
    assert share == Decimal("12345678901234567.812345678901")
    assert share * 10 <= volume
