"""The paper venue's terms: slippage rounding and the per-order commission schedule."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oms.paper import (
    PaperTerms,
    charges,
    fill_commission,
    order_commission,
    slipped_price,
    terms_from,
    terms_json,
)
from oms.values import Side, minor_units

D = Decimal


def test_no_slippage_fills_at_the_last_price() -> None:
    assert slipped_price(D("100.03"), Side.BUY, D(0), D("0.01")) == D("100.03")


@pytest.mark.parametrize(
    ("side", "expected"),
    [(Side.BUY, D("100.11")), (Side.SELL, D("99.89"))],  # 100 +- 0.105 -> away from the order
)
def test_slippage_moves_against_the_order_to_the_tick(side: Side, expected: Decimal) -> None:
    assert slipped_price(D(100), side, D("10.5"), D("0.01")) == expected


def test_slippage_never_gives_a_price_below_one_tick() -> None:
    assert slipped_price(D("0.01"), Side.SELL, D(10_000), D("0.01")) == D("0.01")


SCHEDULE = PaperTerms(commission_per_unit=D("0.005"), commission_min=D(1), commission_max_pct=D(1))


def test_the_minimum_is_paid_once_per_order() -> None:
    def fee(filled: int, notional: int, qty: int) -> Decimal:
        return fill_commission(SCHEDULE, D(filled), D(notional), D(qty), D(50), currency="USD")

    first = fee(0, 0, 10)  # 0.05 -> minimum 1
    second = fee(10, 500, 10)  # 0.10 total -> still 1
    third = fee(20, 1000, 300)  # 1.60 total -> +0.60
    assert (first, second, third) == (D("1.00"), D(0), D("0.60"))


def test_commission_is_rounded_to_the_currencys_minor_unit() -> None:
    """Yen have no minor unit: 100 shares at 0.005 a share is 0.50, which rounds (half up) to
    1 yen, not to 0.50 of a yen; dinars have three decimals."""
    per_unit = PaperTerms(commission_per_unit=D("0.005"))
    assert order_commission(per_unit, D(100), D(300_000), currency="JPY") == D(1)
    assert order_commission(per_unit, D(80), D(240_000), currency="JPY") == D(0)  # 0.40
    assert order_commission(per_unit, D(100), D(300), currency="USD") == D("0.50")
    assert order_commission(per_unit, D(101), D(300), currency="KWD") == D("0.505")
    fee = fill_commission(per_unit, D(0), D(0), D(300), D(3000), currency="JPY")
    assert (fee, str(fee)) == (D(2), "2")  # 1.50 -> 2


def test_a_currency_may_have_amounts_of_its_own() -> None:
    """A minimum of 1 and 0.005 a share, meant in dollars, were 1 yen and 0.005 yen a share
    on a Tokyo order. `commission-min.JPY 150` and `commission-per-unit.JPY 0.5` are the
    yen's; other currencies keep the schedule's amounts, and rates apply to all."""
    terms = terms_from(
        {
            "paper.commission-min": "1",
            "paper.commission-per-unit": "0.005",
            "paper.commission-bps": "1",
            "paper.commission-min.JPY": "150",
            "paper.commission-per-unit.JPY": "0.5",
        }
    )
    # yen: 100 x 0.5 = 50 + 1 bp of 300,000 = 30 -> 80, below the yen's minimum of 150
    assert order_commission(terms, D(100), D(300_000), currency="JPY") == D(150)
    assert order_commission(terms, D(1000), D(3_000_000), currency="JPY") == D(800)
    # dollars: 100 x 0.005 = 0.50 + 1 bp of 3,000 = 0.30 -> 0.80, below the minimum of 1
    assert order_commission(terms, D(100), D(3000), currency="USD") == D("1.00")
    assert order_commission(terms, D(100), D(3000), currency="EUR") == D("1.00")
    assert terms_json(terms)["commission-min.JPY"] == "150"
    assert charges(terms_from({"paper.commission-min.JPY": "150"}))


def test_the_maximum_caps_the_order() -> None:
    # 1000 x 0.005 = 5, but 1% of 1000 x 0.10 = 1: the cap wins over the minimum
    assert order_commission(SCHEDULE, D(1000), D(100), currency="USD") == D("1.00")
    terms = PaperTerms(commission_bps=D(10), commission_max_pct=D("0.05"))
    # 10 bps = 1, capped at 0.50
    assert order_commission(terms, D(10), D(1000), currency="USD") == D("0.50")


def test_a_free_venue_charges_exactly_zero() -> None:
    assert fill_commission(PaperTerms(), D(0), D(0), D(7), D("12.34"), currency="USD") == D(0)
    free = fill_commission(PaperTerms(), D(0), D(0), D(7), D("12.34"), currency="USD")
    assert str(free) == "0"


money = st.decimals(min_value=D("0.01"), max_value=D(500), places=2)
lots = st.integers(min_value=1, max_value=5_000).map(D)


@settings(max_examples=150, deadline=None)
@given(
    per_unit=st.decimals(min_value=0, max_value=D("0.05"), places=4),
    bps=st.decimals(min_value=0, max_value=D(20), places=2),
    minimum=st.decimals(min_value=0, max_value=D(5), places=2),
    cap=st.decimals(min_value=0, max_value=D(2), places=2),
    fills=st.lists(st.tuples(lots, money), min_size=1, max_size=8),
)
def test_fills_add_up_to_the_orders_commission(
    per_unit: Decimal, bps: Decimal, minimum: Decimal, cap: Decimal, fills: list
) -> None:
    """However an order fills, its fills pay exactly what the order as a whole owes, each fill
    pays a whole number of cents, and nothing is ever negative."""
    terms = PaperTerms(
        commission_per_unit=per_unit,
        commission_bps=bps,
        commission_min=minimum,
        commission_max_pct=cap,
    )
    qty, notional, paid = D(0), D(0), D(0)
    for q, p in fills:
        fee = fill_commission(terms, qty, notional, q, p, currency="USD")
        assert fee >= 0
        assert fee == fee.quantize(D("0.01"))
        paid += fee
        qty, notional = qty + q, notional + q * p
    assert paid == order_commission(terms, qty, notional, currency="USD")


def test_clf_and_uyw_have_four_decimals() -> None:
    """ISO 4217: the Unidad de Fomento and the Unidad Previsional count in ten-thousandths."""
    assert (minor_units("CLF"), minor_units("UYW"), minor_units("CLP")) == (4, 4, 0)
    minimum = PaperTerms(commission_min=D("0.00005"))
    assert order_commission(minimum, D(1), D(1), currency="CLF") == D("0.0001")


def test_the_cap_is_never_exceeded_by_rounding() -> None:
    """commission-max-pct caps the charge: a cap of 1.503 yen charges 1 yen (rounding the cap
    half up charged 2, above it), a cap of 0.03711 dollars charges 0.03; a charge just under a
    cap that rounds above it is held to the cap too."""
    terms = PaperTerms(commission_min=D(500), commission_max_pct=D("0.001"))
    assert order_commission(terms, D(100), D(150_300), currency="JPY") == D(1)
    assert order_commission(terms, D(1), D("3711"), currency="USD") == D("0.03")
    near = PaperTerms(commission_bps=D("1.51"), commission_max_pct=D("0.0152"))
    assert order_commission(near, D(1), D(100), currency="USD") == D("0.01")  # 0.0151 / 0.0152


@settings(max_examples=150, deadline=None)
@given(
    per_unit=st.decimals(min_value=0, max_value=D("0.05"), places=4),
    bps=st.decimals(min_value=0, max_value=D(20), places=3),
    minimum=st.decimals(min_value=0, max_value=D(5), places=2),
    cap=st.decimals(min_value=D("0.0001"), max_value=D(2), places=4),
    currency=st.sampled_from(["USD", "JPY", "KWD", "CLF"]),
    fills=st.lists(st.tuples(lots, money), min_size=1, max_size=8),
)
def test_the_charge_stays_within_the_cap(
    per_unit: Decimal,
    bps: Decimal,
    minimum: Decimal,
    cap: Decimal,
    currency: str,
    fills: list[tuple[Decimal, Decimal]],
) -> None:
    terms = PaperTerms(
        commission_per_unit=per_unit,
        commission_bps=bps,
        commission_min=minimum,
        commission_max_pct=cap,
    )
    qty, notional = D(0), D(0)
    for q, p in fills:
        qty, notional = qty + q, notional + q * p
        charge = order_commission(terms, qty, notional, currency=currency)
        assert 0 <= charge <= notional * cap / 100
