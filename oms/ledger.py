"""The double-entry cash journal, pure part: entries whose postings balance to zero per currency.

Ledger accounts are named `<account>:<book>`: `cash` (the client's cash), `capital` (money paid in
and out), `securities` (cost of securities bought, proceeds of securities sold), `commissions`,
`fees`. Cash balance = sum of the `cash` postings. Amounts are exact products of the trade's
decimals; nothing is rounded in the journal (rounding happens only where a document shows it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

# Every amount is computed with EXACT's methods, never in the caller's context: a trade's
# gross amount can need 60 digits and a settlement batch sums many.
from oms.values import EXACT, ZERO, Side


@dataclass(frozen=True, slots=True)
class Posting:
    ledger_account: str
    currency: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Entry:
    kind: str  # deposit | withdrawal | trade
    account: str
    currency: str
    value_date: date
    postings: tuple[Posting, ...]
    ref: str | None = None
    destination: str | None = None

    def __post_init__(self) -> None:
        add = EXACT.add
        totals: dict[str, Decimal] = {}
        for p in self.postings:
            totals[p.currency] = add(totals.get(p.currency, ZERO), p.amount)
        unbalanced = {c: t for c, t in totals.items() if t != 0}
        if unbalanced or not self.postings:
            raise ValueError(f"journal entry does not balance: {unbalanced or 'no postings'}")


def cash_account(account: str) -> str:
    return f"{account}:cash"


def deposit(
    account: str, currency: str, amount: Decimal, value_date: date, ref: str | None
) -> Entry:
    return Entry(
        "deposit",
        account,
        currency,
        value_date,
        (
            Posting(cash_account(account), currency, amount),
            Posting(f"{account}:capital", currency, EXACT.minus(amount)),
        ),
        ref=ref,
    )


def withdrawal(
    account: str,
    currency: str,
    amount: Decimal,
    value_date: date,
    destination: str,
    ref: str | None = None,
) -> Entry:
    return Entry(
        "withdrawal",
        account,
        currency,
        value_date,
        (
            Posting(cash_account(account), currency, EXACT.minus(amount)),
            Posting(f"{account}:capital", currency, amount),
        ),
        ref=ref,
        destination=destination,
    )


def _cost_postings(
    account: str, currency: str, commission: Decimal, fees: Decimal
) -> list[Posting]:
    postings = []
    if commission != ZERO:
        postings.append(Posting(f"{account}:commissions", currency, commission))
    if fees != ZERO:
        postings.append(Posting(f"{account}:fees", currency, fees))
    return postings


def trade_postings(
    account: str,
    currency: str,
    side: Side,
    quantity: Decimal,
    price: Decimal,
    commission: Decimal,
    fees: Decimal,
) -> tuple[Posting, ...]:
    """Postings of one execution: the cash that moves at settlement against securities, and the
    costs. A buy pays gross + costs; a sell receives gross - costs."""
    gross = EXACT.multiply(quantity, price)
    securities = gross if side is Side.BUY else EXACT.minus(gross)
    return (
        Posting(cash_account(account), currency, _cash(securities, commission, fees)),
        Posting(f"{account}:securities", currency, securities),
        *_cost_postings(account, currency, commission, fees),
    )


def _cash(securities: Decimal, commission: Decimal, fees: Decimal) -> Decimal:
    """-securities - commission - fees, exactly."""
    x = EXACT
    return x.subtract(x.subtract(x.minus(securities), commission), fees)


@dataclass(slots=True)
class SettlementTotals:
    """Running totals of the trades that settle together (one account, currency, value date)."""

    securities: Decimal = ZERO  # bought minus sold, at trade prices
    commission: Decimal = ZERO
    fees: Decimal = ZERO
    trades: int = 0

    def add(
        self,
        side: Side,
        quantity: Decimal,
        price: Decimal,
        commission: Decimal,
        fees: Decimal,
        sign: int = 1,
    ) -> None:
        """Add a trade (sign 1) or take one back (sign -1: a bust, a correction's old terms)."""
        x = EXACT
        gross = x.multiply(quantity, price)
        if (side is Side.BUY) != (sign > 0):  # a sale, or a buy taken back
            gross = x.minus(gross)
        if sign < 0:
            commission, fees = x.minus(commission), x.minus(fees)
        self.securities = x.add(self.securities, gross)
        self.commission = x.add(self.commission, commission)
        self.fees = x.add(self.fees, fees)
        self.trades += 1


SETTLEMENT = "settlement"  # the kind of a settlement batch's entry (imported executions)


def settlement(
    account: str, currency: str, value_date: date, totals: SettlementTotals, ref: str
) -> Entry:
    """One summary entry for many trades settling together, as a settlement batch posts them:
    the same amounts, to the cent and beyond, as one entry per trade would."""
    cash = _cash(totals.securities, totals.commission, totals.fees)
    return Entry(
        SETTLEMENT,
        account,
        currency,
        value_date,
        (
            Posting(cash_account(account), currency, cash),
            Posting(f"{account}:securities", currency, totals.securities),
            *_cost_postings(account, currency, totals.commission, totals.fees),
        ),
        ref=ref,
    )


def trade(
    account: str,
    currency: str,
    side: Side,
    quantity: Decimal,
    price: Decimal,
    commission: Decimal,
    fees: Decimal,
    settle_date: date,
    ref: str,
) -> Entry:
    return Entry(
        "trade",
        account,
        currency,
        settle_date,
        trade_postings(account, currency, side, quantity, price, commission, fees),
        ref=ref,
    )


def reverse(entry: Entry, kind: str, ref: str) -> Entry:
    """The entry that undoes another (a bust, a correction's first half): a new record."""
    return Entry(
        kind,
        entry.account,
        entry.currency,
        entry.value_date,
        tuple(Posting(p.ledger_account, p.currency, EXACT.minus(p.amount)) for p in entry.postings),
        ref=ref,
    )
