"""Positions, tax lots and P&L: the pure functional core.

Pure: no I/O, no clock, no database, no environment. Every number is a Decimal; all arithmetic
runs in one explicit decimal context (``CONTEXT``: 60 significant digits, ROUND_HALF_EVEN,
float mixing trapped), whatever the caller's context is, so nothing is rounded by the context.

The only rounding that enters the books is explicit: a pro rata share (basis relieved from part
of a lot, the closing part of a fill's costs) is quantized to ``FRAC_DIGITS`` (12) decimal
places, ROUND_HALF_EVEN, and the other part gets the exact remainder, so totals are conserved
exactly (two derived figures, Position.avg_cost and an AVERAGE lot's price, are rounded the same
way for display; nothing is computed from them):

    for every account/symbol:  sum of cash_flow(fill) == realized_pnl - cost_basis (open lots)

Sign conventions (sign = +1 buy, -1 sell; costs = commission + fees):

- cash_flow = -sign * quantity * price - costs
- a lot opened by a fill has cost_basis = sign * quantity * price + costs (i.e. -cash_flow):
  positive for a long lot (q*p + c), negative for a short lot (-(q*p - c));
- closing realizes cash_flow - relieved_basis.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import (
    Decimal,
    InvalidOperation,
    localcontext,
)
from typing import NamedTuple

from oms.errors import BadInput
from oms.values import QUANTUM, ZERO, CostMethod, Side, decimal_context

__all__ = [
    "CONTEXT",
    "EXEC_TYPES",
    "ExecRecord",
    "Lot",
    "Position",
    "Valuation",
    "build_positions",
    "cash_flow",
    "effective_fills",
    "fill_order",
    "value",
]

# The one context every computation here runs in (entered as a copy; never modify it). Built
# field by field so that neither the caller's context nor decimal.DefaultContext can change a
# result.
CONTEXT = decimal_context(60)

FILL = "fill"
CORRECT = "correct"
BUST = "bust"
EXEC_TYPES = frozenset({FILL, CORRECT, BUST})

_NO_TIME = datetime.min.replace(tzinfo=UTC)


class ExecRecord(NamedTuple):
    """One stored execution row, as the book holds it."""

    seq: int  # book order (row id); ties broken by it
    venue: str
    exec_id: str
    account: str
    symbol: str
    side: Side
    quantity: Decimal  # > 0
    price: Decimal  # > 0
    commission: Decimal  # >= 0
    fees: Decimal  # >= 0
    trade_date: date
    exec_time: datetime | None  # tz-aware UTC or None
    exec_type: str = FILL  # "fill" | "correct" | "bust"
    ref_exec_id: str | None = None  # correct/bust: exec_id (same venue) of the execution it changes
    currency: str | None = None  # carried for the cash journal; positions do not use them
    settle_date: date | None = None


def fill_order(record: ExecRecord) -> tuple[date, bool, datetime, int]:
    """Sort key of effective fills: trade date, then exec time (None first), then seq."""
    t = record.exec_time
    if t is None:
        return (record.trade_date, False, _NO_TIME, record.seq)
    return (record.trade_date, True, t, record.seq)


def _seq(record: ExecRecord) -> int:
    return record.seq


def effective_fills(records: Iterable[ExecRecord]) -> list[ExecRecord]:
    """Apply corrections and busts; return the fills that count, in ``fill_order``.

    Records are replayed in book order (seq), as the book saw them:

    - a "fill" is an execution in its own right;
    - a "correct" replaces the terms of the execution it names (venue + ref_exec_id); the result
      takes every field from the correction but keeps the original fill's seq, venue and
      exec_id, and is marked exec_type="fill", ref_exec_id=None (it is an effective fill);
    - a "bust" removes the execution it names.

    A correction or bust may name an earlier correction or bust: the chain resolves back to the
    original fill. The latest record of a chain (highest seq) decides: two corrections of one
    fill leave the later terms, a correction after a bust reinstates the fill with its terms.
    A record naming an exec_id not booked before it (unknown, other venue, no ref_exec_id) is
    ignored here; validation is the caller's job. exec_id is assumed unique per venue (the
    store enforces it); if not, a reference goes to the latest record with that id.

    Raises BadInput for an exec_type other than fill, correct or bust.
    """
    records = list(records)
    if all(rec.exec_type == FILL for rec in records):  # the common case: nothing to apply
        return sorted(records, key=fill_order)
    originals: list[ExecRecord] = []
    current: list[ExecRecord | None] = []  # effective terms per original; None = busted
    root: dict[tuple[str, str], int] = {}  # (venue, exec_id) of any record -> original index
    for rec in sorted(records, key=_seq):
        kind = rec.exec_type
        if kind == FILL:
            root[(rec.venue, rec.exec_id)] = len(originals)
            originals.append(rec)
            current.append(rec)
        elif kind in (CORRECT, BUST):
            if rec.ref_exec_id is None:
                continue
            index = root.get((rec.venue, rec.ref_exec_id))
            if index is None:
                continue
            root.setdefault((rec.venue, rec.exec_id), index)
            current[index] = rec if kind == CORRECT else None
        else:
            raise BadInput(
                f"execution {rec.venue}/{rec.exec_id}",
                f"exec_type {kind!r} is not one of fill, correct, bust",
            )
    result: list[ExecRecord] = []
    for original, terms in zip(originals, current, strict=True):
        if terms is None:
            continue
        effective = terms
        if terms is not original:
            effective = terms._replace(
                seq=original.seq,
                venue=original.venue,
                exec_id=original.exec_id,
                exec_type=FILL,
                ref_exec_id=None,
            )
        result.append(effective)
    result.sort(key=fill_order)
    return result


def cash_flow(fill: ExecRecord) -> Decimal:
    """Cash of a fill, signed from the account's side: -sign*q*p - commission - fees."""
    with localcontext(CONTEXT):
        notional = fill.quantity * fill.price
        if fill.side == Side.BUY:
            notional = -notional
        elif fill.side != Side.SELL:
            raise _bad_fill(fill)
        return notional - fill.commission - fill.fees


@dataclass(frozen=True, slots=True)
class Lot:
    opened: date  # trade date of the opening fill (AVERAGE: first opening date of the pool)
    quantity: Decimal  # signed: > 0 long lot, < 0 short lot
    price: Decimal  # opening price (AVERAGE: average opening price, FRAC_DIGITS places)
    cost_basis: Decimal  # signed, includes the opening commission and fees


@dataclass(frozen=True, slots=True)
class Position:
    account: str
    symbol: str
    quantity: Decimal  # signed sum of open lots
    cost_basis: Decimal  # sum of open lots' cost_basis
    realized_pnl: Decimal
    commissions: Decimal  # total commissions paid on this account/symbol (opening and closing)
    fees: Decimal
    lots: tuple[Lot, ...]  # open lots, oldest first (FIFO relief order), whatever the method

    @property
    def avg_cost(self) -> Decimal | None:
        """cost_basis / quantity (costs included, positive for long and short), quantized to
        FRAC_DIGITS (12) places ROUND_HALF_EVEN; None when flat."""
        if not self.quantity:
            return None
        with localcontext(CONTEXT):
            return (self.cost_basis / self.quantity).quantize(QUANTUM)


class _Book:
    """Running state of one account/symbol while positions are built; never leaves the module.

    Open lots are kept column-wise in three parallel deques, oldest first: sizes (unsigned; every
    open lot is on the side of the signed ``quantity``), bases (signed cost basis) and openers
    (the fill that opened the lot: its trade_date and price are the lot's). Appending a lot
    allocates no object the garbage collector tracks, which matters over a million fills.
    AVERAGE keeps at most one (pooled) lot: its opener is the pool's first opening fill and
    ``avg_price`` its unrounded average opening price.
    """

    __slots__ = (
        "avg_price",
        "bases",
        "commissions",
        "fees",
        "openers",
        "quantity",
        "realized",
        "sizes",
    )

    def __init__(self) -> None:
        self.quantity = ZERO  # signed
        self.realized = ZERO
        self.commissions = ZERO
        self.fees = ZERO
        self.sizes: deque[Decimal] = deque()
        self.bases: deque[Decimal] = deque()
        self.openers: deque[ExecRecord] = deque()
        self.avg_price = ZERO


def _in_fill_order(fills: Iterable[ExecRecord]) -> list[ExecRecord]:
    """The fills as a list in fill_order; one pass and no sort when they are in order already
    (the usual case), so no million sort keys are kept alive at once."""
    ordered = list(fills)
    prev: tuple[date, bool, datetime, int] | None = None
    for fill in ordered:
        key = fill_order(fill)
        if prev is not None and key < prev:
            ordered.sort(key=fill_order)
            break
        prev = key
    return ordered


def _bad_fill(fill: ExecRecord) -> BadInput:
    """The BadInput that says what is wrong with a fill build_positions cannot take."""
    where = f"execution {fill.venue}/{fill.exec_id} (seq {fill.seq})"
    numbers = (fill.quantity, fill.price, fill.commission, fill.fees)
    if not all(number.is_finite() for number in numbers):
        why = "quantity {}, price {}, commission {}, fees {}: not all finite".format(*numbers)
    elif fill.side not in (Side.BUY, Side.SELL):
        why = f"side {fill.side!r} is not buy or sell"
    elif fill.exec_type != FILL:
        why = f"exec_type {fill.exec_type!r}: positions take effective fills only"
    elif not fill.quantity > 0:
        why = f"quantity {fill.quantity} must be greater than zero"
    elif not fill.price > 0:
        why = f"price {fill.price} must be greater than zero"
    elif fill.commission < 0 or fill.fees < 0:
        why = f"commission {fill.commission} and fees {fill.fees} must not be negative"
    else:
        why = f"its numbers exceed the {CONTEXT.prec} digits of exact arithmetic"
    return BadInput(where, why)


def build_positions(
    fills: Iterable[ExecRecord], method: CostMethod = CostMethod.FIFO
) -> dict[tuple[str, str], Position]:
    """Positions per (account, symbol) from effective fills, relieving lots by ``method``.

    The fills are sorted by ``fill_order`` first (cheap when they already are), then read in
    one pass. Every account/symbol that traded appears, flat ones too (quantity 0, no lots).

    - FIFO relieves the oldest lot first, LIFO the newest; AVERAGE keeps one pooled lot
      (relieved pro rata; opened = first opening date of the pool, price = average price).
    - A fill larger than the open position closes it and opens the remainder the other way;
      its costs are split pro rata by quantity (closing part quantized, opening part gets the
      remainder).

    Raises BadInput for a record that is not a fill, has a side other than buy or sell, a
    quantity or price <= 0, negative costs or a NaN. (Infinite numbers are not looked for:
    the store holds finite decimals only.)
    """
    method = CostMethod(method)  # also accepts "fifo", "lifo", "average"
    average = method is CostMethod.AVERAGE
    newest_first = method is CostMethod.LIFO
    end = -1 if newest_first else 0  # the end of the deque lots are relieved from
    # Locals, not globals or enum attributes: this loop runs once per fill.
    buy_side, sell_side, fill_type, zero, quantum = Side.BUY, Side.SELL, FILL, ZERO, QUANTUM
    books: dict[tuple[str, str], _Book] = {}
    with localcontext(CONTEXT):
        fill: ExecRecord | None = None
        try:
            for fill in _in_fill_order(fills):
                qty = fill.quantity
                price = fill.price
                commission = fill.commission
                fees = fill.fees
                side = fill.side
                buy = side == buy_side
                if (
                    not (qty > zero and price > zero and commission >= zero and fees >= zero)
                    or fill.exec_type != fill_type
                    or not (buy or side == sell_side)
                ):
                    raise _bad_fill(fill)
                key = (fill.account, fill.symbol)
                book = books.get(key)
                if book is None:
                    book = books[key] = _Book()
                book.commissions += commission
                book.fees += fees
                costs = commission + fees
                held = book.quantity
                sizes = book.sizes
                bases = book.bases
                if held and (held > zero) is not buy:
                    # Closing (part of) the position: relieve `closing` from the lots.
                    size = -held if buy else held
                    if qty <= size:
                        closing, closing_costs = qty, costs
                    else:
                        closing = size
                        closing_costs = (costs * size / qty).quantize(quantum) if costs else zero
                    relieved = zero
                    amount = closing
                    while amount:
                        lot_size = sizes[end]
                        if lot_size <= amount:
                            amount -= lot_size
                            if newest_first:
                                relieved += bases.pop()
                                sizes.pop()
                                book.openers.pop()
                            else:
                                relieved += bases.popleft()
                                sizes.popleft()
                                book.openers.popleft()
                        else:
                            lot_basis = bases[end]
                            part = (lot_basis * amount / lot_size).quantize(quantum)
                            sizes[end] = lot_size - amount
                            bases[end] = lot_basis - part
                            relieved += part
                            break
                    notional = closing * price
                    if buy:
                        book.realized += -notional - closing_costs - relieved
                    else:
                        book.realized += notional - closing_costs - relieved
                    if qty <= size:
                        book.quantity = held + qty if buy else held - qty
                        continue
                    # Flip: the remainder opens a lot the other way, with the rest of the costs.
                    qty -= size
                    costs -= closing_costs
                    held = zero
                # Opening (or adding to) a position.
                notional = qty * price
                if buy:
                    book.quantity = held + qty
                    basis = notional + costs
                else:
                    book.quantity = held - qty
                    basis = costs - notional
                if not average:
                    sizes.append(qty)
                    bases.append(basis)
                    book.openers.append(fill)
                elif sizes:
                    pool_size = sizes[0]
                    book.avg_price = (book.avg_price * pool_size + notional) / (pool_size + qty)
                    sizes[0] = pool_size + qty
                    bases[0] += basis
                else:
                    sizes.append(qty)
                    bases.append(basis)
                    book.openers.append(fill)
                    book.avg_price = price
        except InvalidOperation as err:  # a NaN among a fill's numbers
            if fill is None:
                raise
            raise _bad_fill(fill) from err
        return {key: _position(key, book, average) for key, book in books.items()}


def _position(key: tuple[str, str], book: _Book, average: bool) -> Position:
    short = book.quantity < 0
    lots = tuple(
        Lot(
            opened=opener.trade_date,
            quantity=-size if short else size,
            price=book.avg_price.quantize(QUANTUM) if average else opener.price,
            cost_basis=basis,
        )
        for size, basis, opener in zip(book.sizes, book.bases, book.openers, strict=True)
    )
    total = ZERO
    for lot in lots:
        total += lot.cost_basis
    return Position(
        account=key[0],
        symbol=key[1],
        quantity=book.quantity if book.quantity else ZERO,
        cost_basis=total,
        realized_pnl=book.realized,
        commissions=book.commissions,
        fees=book.fees,
        lots=lots,
    )


@dataclass(frozen=True, slots=True)
class Valuation:
    market_price: Decimal | None
    market_value: Decimal | None  # quantity * market_price; 0 when flat, None when unpriced
    unrealized_pnl: Decimal | None  # market_value - cost_basis; 0 when flat, None when unpriced


def value(position: Position, market_price: Decimal | None) -> Valuation:
    """Mark a position to a market price (exact). A flat position is worth 0 with or without a
    price; an open one without a price has no market value and no unrealized P&L.

    Raises BadInput for a negative or non-finite market price.
    """
    if market_price is not None and not (market_price.is_finite() and market_price >= 0):
        raise BadInput(
            f"market price of {position.account}/{position.symbol}",
            f"{market_price} is not a finite, non-negative price",
        )
    if not position.quantity:
        return Valuation(market_price, ZERO, ZERO)
    if market_price is None:
        return Valuation(None, None, None)
    with localcontext(CONTEXT):
        market_value = position.quantity * market_price
        return Valuation(market_price, market_value, market_value - position.cost_basis)
