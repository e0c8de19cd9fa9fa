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
