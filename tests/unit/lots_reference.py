"""The lot relief as oms.lots had it before the columnar fast path (commit dd2740d), kept
verbatim as a test oracle: the refactored core and the fast path must give exactly the same
Positions (values and Decimal exponents) as this reference Decimal path."""

# ruff: noqa
# mypy: ignore-errors

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation, localcontext

from oms.lots import CONTEXT, FILL, ExecRecord, Lot, Position, _bad_fill, fill_order
from oms.values import QUANTUM, ZERO, CostMethod, Side


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


def reference_build_positions(
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


# reports/lot_trace.py's own relief before it used oms.lots.relief_trace (commit dd2740d)

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FillEffect:
    closed: Decimal
    relieved_basis: Decimal
    realized_pnl: Decimal
    opened_basis: Decimal


class _Lots:
    __slots__ = ("bases", "quantity", "sizes")

    def __init__(self) -> None:
        self.quantity = ZERO
        self.sizes: deque[Decimal] = deque()
        self.bases: deque[Decimal] = deque()


def reference_trace(
    fills: Iterable[ExecRecord], method: CostMethod = CostMethod.FIFO
) -> dict[int, FillEffect]:
    """The effect of each of the effective fills (as build_positions takes them), by seq."""
    method = CostMethod(method)
    average = method is CostMethod.AVERAGE
    newest_first = method is CostMethod.LIFO
    end = -1 if newest_first else 0
    books: dict[tuple[str, str], _Lots] = {}
    out: dict[int, FillEffect] = {}
    with localcontext(CONTEXT):
        for fill in sorted(fills, key=fill_order):
            qty, price = fill.quantity, fill.price
            buy = fill.side == Side.BUY
            key = (fill.account, fill.symbol)
            book = books.get(key)
            if book is None:
                book = books[key] = _Lots()
            costs = fill.commission + fill.fees
            held = book.quantity
            sizes, bases = book.sizes, book.bases
            closed = relieved = realized = ZERO
            if held and (held > ZERO) is not buy:
                size = -held if buy else held
                if qty <= size:
                    closing, closing_costs = qty, costs
                else:
                    closing = size
                    closing_costs = (costs * size / qty).quantize(QUANTUM) if costs else ZERO
                amount = closing
                while amount:
                    lot_size = sizes[end]
                    if lot_size <= amount:
                        amount -= lot_size
                        if newest_first:
                            relieved += bases.pop()
                            sizes.pop()
                        else:
                            relieved += bases.popleft()
                            sizes.popleft()
                    else:
                        lot_basis = bases[end]
                        part = (lot_basis * amount / lot_size).quantize(QUANTUM)
                        sizes[end] = lot_size - amount
                        bases[end] = lot_basis - part
                        relieved += part
                        break
                notional = closing * price
                realized = (-notional if buy else notional) - closing_costs - relieved
                closed = closing
                if qty <= size:
                    book.quantity = held + qty if buy else held - qty
                    out[fill.seq] = FillEffect(closed, relieved, realized, ZERO)
                    continue
                qty -= size
                costs -= closing_costs
                held = ZERO
            notional = qty * price
            if buy:
                book.quantity = held + qty
                basis = notional + costs
            else:
                book.quantity = held - qty
                basis = costs - notional
            if average and sizes:
                sizes[0] += qty
                bases[0] += basis
            else:
                sizes.append(qty)
                bases.append(basis)
            out[fill.seq] = FillEffect(closed, relieved, realized, basis)
    return out
