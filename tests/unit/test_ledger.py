import decimal
from collections import defaultdict
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oms import ledger
from oms.values import Side

money = st.builds(lambda n, s: Decimal(n).scaleb(-s), st.integers(0, 10**12), st.integers(0, 6))
positive = st.builds(lambda n, s: Decimal(n).scaleb(-s), st.integers(1, 10**9), st.integers(0, 6))


@given(side=st.sampled_from(list(Side)), qty=positive, price=positive, comm=money, fees=money)
def test_trade_entries_balance_and_move_cash_by_gross_and_costs(
    side: Side, qty: Decimal, price: Decimal, comm: Decimal, fees: Decimal
) -> None:
    entry = ledger.trade("A1", "USD", side, qty, price, comm, fees, date(2026, 1, 2), "X:1")
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for p in entry.postings:
        totals[p.ledger_account] += p.amount
    assert sum(totals.values()) == 0
    expected = -(qty * price) - comm - fees if side is Side.BUY else qty * price - comm - fees
    assert totals["A1:cash"] == expected


def test_an_unbalanced_entry_cannot_be_made() -> None:
    with pytest.raises(ValueError, match="does not balance"):
        ledger.Entry("deposit", "A1", "USD", date(2026, 1, 2),
                     (ledger.Posting("A1:cash", "USD", Decimal("10")),
                      ledger.Posting("A1:capital", "USD", Decimal("-9.99"))))


def test_deposit_withdrawal_and_reversal() -> None:
    d = ledger.deposit("A1", "USD", Decimal("100.10"), date(2026, 1, 2), "wire")
    w = ledger.withdrawal("A1", "USD", Decimal("40"), date(2026, 1, 3), "bank")
    r = ledger.reverse(d, "reversal", "undo")
    cash = sum(p.amount for e in (d, w, r) for p in e.postings if p.ledger_account == "A1:cash")
    assert cash == Decimal("-40")


# what tieout stores: at most 18 digits before the point and 12 after (oms.values)
stored = st.builds(
    lambda n, s: Decimal(n).scaleb(-s), st.integers(1, 10**30 - 1), st.integers(0, 12)
).filter(lambda d: d < 10**18)
WIDE = decimal.Context(prec=500)  # the reference: no rounding at these sizes


@given(
    trades=st.lists(
        st.tuples(
            st.sampled_from(list(Side)), stored, stored, stored, stored, st.sampled_from([1, -1])
        ),
        min_size=1,
        max_size=20,
    )
)
def test_amounts_are_exact_in_pythons_default_context(
    trades: list[tuple[Side, Decimal, Decimal, Decimal, Decimal, int]],
) -> None:
    """A trade's gross amount has up to 60 digits; Python's default context rounds to 28.
    `exec import` summed its settlement batches in the caller's context, so its cash journal
    was off (by 0.0000442965279684 on one trade of 123456789012.12345678 at the same price)
    from the exact products that positions and every other booking use. Every amount of the
    journal is now exact whatever the caller's context; the reference sums in 500 digits."""
    with decimal.localcontext(decimal.Context()):  # Python's default: 28 digits
        totals = ledger.SettlementTotals()
        for side, qty, price, comm, fees, sign in trades:
            totals.add(side, qty, price, comm, fees, sign)
            entry = ledger.trade("A1", "USD", side, qty, price, comm, fees, date(2026, 1, 2), "X")
            gross = WIDE.multiply(qty, price)
            signed = gross if side is Side.BUY else WIDE.minus(gross)
            cash = WIDE.subtract(WIDE.subtract(WIDE.minus(signed), comm), fees)
            assert entry.postings[0].amount == cash
            undone = ledger.reverse(entry, "bust", "X")
            assert undone.postings[0].amount == WIDE.minus(cash)
        batch = ledger.settlement("A1", "USD", date(2026, 1, 2), totals, "import:1")
    want = Decimal(0)
    for side, qty, price, comm, fees, sign in trades:
        gross = WIDE.multiply(qty, price)
        signed = gross if side is Side.BUY else WIDE.minus(gross)
        flow = WIDE.subtract(WIDE.subtract(WIDE.minus(signed), comm), fees)
        want = WIDE.add(want, WIDE.multiply(sign, flow))
    assert batch.postings[0].amount == want
    assert batch.postings[0].ledger_account == "A1:cash"
