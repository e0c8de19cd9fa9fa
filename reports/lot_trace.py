"""What each fill realizes: the per-trade column of a statement's trade list. Pure.

oms.lots.build_positions gives totals per account/symbol; a statement also shows, per trade,
the basis of the lots it closed and the P&L it realized. This is the same lot relief, step by
step: the same order (fill_order), the same decimal context and the very same quantizations, so
that the per-fill figures add up exactly to build_positions' realized P&L (tests check it for
every cost method). The statement's totals always come from build_positions itself.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, localcontext

from oms.lots import CONTEXT, ExecRecord, fill_order
from oms.values import QUANTUM, ZERO, CostMethod, Side


@dataclass(frozen=True, slots=True)
class FillEffect:
    """One fill's effect on its account/symbol's lots."""

    closed: Decimal  # quantity it closed (unsigned; 0 for a purely opening fill)
    relieved_basis: Decimal  # cost basis of the lots it closed (signed as the lots' bases)
    realized_pnl: Decimal  # P&L it realized (net of its closing share of the costs)
    opened_basis: Decimal  # cost basis of the lot it opened (0 if it opened none)


class _Lots:
    __slots__ = ("bases", "quantity", "sizes")

    def __init__(self) -> None:
        self.quantity = ZERO
        self.sizes: deque[Decimal] = deque()
        self.bases: deque[Decimal] = deque()


def trace(
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
