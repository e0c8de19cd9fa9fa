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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import (
    Decimal,
    InvalidOperation,
    localcontext,
)
from functools import cache
from operator import add, itemgetter
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import polars as pl

from oms.errors import BadInput
from oms.values import QUANTUM, ZERO, CostMethod, Side, decimal_context

__all__ = [
    "CONTEXT",
    "EXEC_TYPES",
    "ExecRecord",
    "FillEffect",
    "Lot",
    "LotRelief",
    "Position",
    "Valuation",
    "build_positions",
    "build_positions_frame",
    "cash_flow",
    "effective_fills",
    "fill_columns",
    "fill_frame",
    "fill_order",
    "relief_trace",
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


def net_quantity(records: Iterable[ExecRecord]) -> Decimal:
    """The position the records make: the signed sum of their effective fills (corrections and
    busts applied)."""
    return sum((f.quantity * f.side.sign for f in effective_fills(records)), Decimal(0))


def effective_fills(records: Iterable[ExecRecord]) -> list[ExecRecord]:
    """Apply corrections and busts; return the fills that count, in ``fill_order``.

    Records are replayed in book order (seq), as the book saw them:

    - a "fill" is an execution in its own right;
    - a "correct" replaces the terms of the execution it names (venue + ref_exec_id); the result
      takes every field from the correction but keeps the original fill's seq, venue, exec_id
      and exec_time (a correction's time is when the venue corrected the trade, not when it was
      made: a corrected fill keeps its place in the lot queue), and is marked exec_type="fill",
      ref_exec_id=None (it is an effective fill);
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
                exec_time=original.exec_time,
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


class _Relief:
    """Running state of one account/symbol's lots while they are relieved; never leaves the
    module.

    Open lots are kept column-wise in three parallel deques, oldest first: sizes (unsigned; every
    open lot is on the side of the signed ``quantity``), bases (signed cost basis) and openers
    (the index, among the account/symbol's fills, of the fill that opened the lot: its trade
    date and price are the lot's). Appending a lot allocates no object the garbage collector
    tracks, which matters over a million fills. AVERAGE keeps at most one (pooled) lot: its
    opener is the pool's first opening fill and ``avg_price`` its unrounded average opening
    price.
    """

    __slots__ = ("avg_price", "bases", "openers", "quantity", "realized", "sizes")

    def __init__(self) -> None:
        self.quantity = ZERO  # signed
        self.realized = ZERO
        self.avg_price = ZERO
        self.sizes: deque[Decimal] = deque()
        self.bases: deque[Decimal] = deque()
        self.openers: deque[int] = deque()


class _ReliefError(Exception):
    """Arithmetic failed (InvalidOperation) at the fill with this index."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


# A fill's effect as _relieve records it: (closed, relieved basis, realized P&L, opened basis,
# [(opener index, quantity, basis) of each lot, or part of a lot, it relieved]).
_Effect = tuple[Decimal, Decimal, Decimal, Decimal, list[tuple[int, Decimal, Decimal]]]


def _relieve(
    quantities: Sequence[Decimal],
    prices: Sequence[Decimal],
    costs: Sequence[Decimal],
    buys: Sequence[bool],
    method: CostMethod,
    effects: list[_Effect] | None = None,
) -> _Relief:
    """The lot relief of one account/symbol: the one implementation of FIFO, LIFO and average
    cost, for build_positions, build_positions_frame and relief_trace alike.

    Takes the account/symbol's valid effective fills in fill order, as columns: quantity
    (> 0), price (> 0), costs (commission + fees) and buy (True for a buy, False for a sell;
    real bools). Runs in the caller's decimal context (CONTEXT). With ``effects``, appends each
    fill's effect, in order.

    - FIFO relieves the oldest lot first, LIFO the newest; AVERAGE keeps one pooled lot.
    - A fill larger than the open position closes it and opens the remainder the other way;
      its costs are split pro rata by quantity (closing part quantized, opening part gets the
      remainder).

    Raises _ReliefError(index) if the arithmetic fails (numbers beyond the context's digits).
    """
    average = method is CostMethod.AVERAGE
    newest_first = method is CostMethod.LIFO
    end = -1 if newest_first else 0  # the end of the deque lots are relieved from
    zero, quantum = ZERO, QUANTUM  # locals, not globals: this loop runs once per fill
    state = _Relief()
    sizes, bases, openers = state.sizes, state.bases, state.openers
    held = realized = avg_price = zero
    tracing = effects is not None
    parts: list[tuple[int, Decimal, Decimal]] = []
    closed = relieved = gain = zero
    index = 0
    try:
        for index, qty, price, cost, buy in zip(
            range(len(quantities)), quantities, prices, costs, buys, strict=True
        ):
            if tracing:
                parts = []
                closed = relieved = gain = zero
            if held and (held > zero) is not buy:
                # Closing (part of) the position: relieve `closing` from the lots.
                size = -held if buy else held
                if qty <= size:
                    closing, closing_costs = qty, cost
                else:
                    closing = size
                    closing_costs = (cost * size / qty).quantize(quantum) if cost else zero
                relieved = zero
                amount = closing
                while amount:
                    lot_size = sizes[end]
                    if lot_size <= amount:
                        amount -= lot_size
                        if newest_first:
                            basis = bases.pop()
                            sizes.pop()
                            opener = openers.pop()
                        else:
                            basis = bases.popleft()
                            sizes.popleft()
                            opener = openers.popleft()
                        relieved += basis
                        if tracing:
                            parts.append((opener, lot_size, basis))
                    else:
                        lot_basis = bases[end]
                        part = (lot_basis * amount / lot_size).quantize(quantum)
                        sizes[end] = lot_size - amount
                        bases[end] = lot_basis - part
                        relieved += part
                        if tracing:
                            parts.append((openers[end], amount, part))
                        break
                notional = closing * price
                gain = (-notional if buy else notional) - closing_costs - relieved
                realized += gain
                if qty <= size:
                    held = held + qty if buy else held - qty
                    if effects is not None:
                        effects.append((closing, relieved, gain, zero, parts))
                    continue
                # Flip: the remainder opens a lot the other way, with the rest of the costs.
                closed = closing
                qty -= size  # noqa: PLW2901 - the opening remainder of this fill
                cost -= closing_costs  # noqa: PLW2901 - and the rest of its costs
                held = zero
            # Opening (or adding to) a position.
            notional = qty * price
            if buy:
                held = held + qty
                basis = notional + cost
            else:
                held = held - qty
                basis = cost - notional
            if not average:
                sizes.append(qty)
                bases.append(basis)
                openers.append(index)
            elif sizes:
                pool_size = sizes[0]
                avg_price = (avg_price * pool_size + notional) / (pool_size + qty)
                sizes[0] = pool_size + qty
                bases[0] += basis
            else:
                sizes.append(qty)
                bases.append(basis)
                openers.append(index)
                avg_price = price
            if effects is not None:
                effects.append((closed, relieved, gain, basis, parts))
    except InvalidOperation as err:
        raise _ReliefError(index) from err
    state.quantity, state.realized, state.avg_price = held, realized, avg_price
    return state


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


class _Group:
    """One account/symbol's valid fills in fill order, with their columns as _relieve takes
    them (and the costs apart, for the totals)."""

    __slots__ = ("buys", "commissions", "costs", "fees", "fills", "prices", "quantities")

    def __init__(self) -> None:
        self.fills: list[ExecRecord] = []
        self.quantities: list[Decimal] = []
        self.prices: list[Decimal] = []
        self.costs: list[Decimal] = []
        self.buys: list[bool] = []
        self.commissions: list[Decimal] = []
        self.fees: list[Decimal] = []


def _grouped(
    fills: Iterable[ExecRecord],
) -> tuple[dict[tuple[str, str], _Group], ExecRecord | None]:
    """The valid fills per (account, symbol), each in fill order, up to the first fill (in
    fill order) that build_positions cannot take, and that fill (None if all are valid)."""
    groups: dict[tuple[str, str], _Group] = {}
    # Locals, not globals or enum attributes: this loop runs once per fill.
    buy_side, sell_side, fill_type, zero = Side.BUY, Side.SELL, FILL, ZERO
    with localcontext(CONTEXT):
        fill: ExecRecord | None = None
        try:
            for fill in _in_fill_order(fills):
                qty, price, side = fill.quantity, fill.price, fill.side
                commission, fees = fill.commission, fill.fees
                buy = side == buy_side
                if (
                    not (qty > zero and price > zero and commission >= zero and fees >= zero)
                    or fill.exec_type != fill_type
                    or not (buy or side == sell_side)
                ):
                    return groups, fill
                costs = commission + fees
                key = (fill.account, fill.symbol)
                group = groups.get(key)
                if group is None:
                    group = groups[key] = _Group()
                group.fills.append(fill)
                group.quantities.append(qty)
                group.prices.append(price)
                group.costs.append(costs)
                group.buys.append(buy)
                group.commissions.append(commission)
                group.fees.append(fees)
        except InvalidOperation:  # a NaN among a fill's numbers
            if fill is None:
                raise
            return groups, fill
    return groups, None


def _relieve_groups(
    groups: dict[tuple[str, str], _Group],
    bad: ExecRecord | None,
    method: CostMethod,
    effects: dict[tuple[str, str], list[_Effect]] | None = None,
) -> dict[tuple[str, str], _Relief]:
    """_relieve over each group (in CONTEXT); raises the BadInput the one-pass relief in fill
    order would raise first: for the earliest fill whose arithmetic failed, else for `bad`."""
    reliefs: dict[tuple[str, str], _Relief] = {}
    failed: list[tuple[ExecRecord, _ReliefError]] = []
    with localcontext(CONTEXT):
        for key, group in groups.items():
            traced: list[_Effect] | None = None
            if effects is not None:
                traced = effects[key] = []
            try:
                reliefs[key] = _relieve(
                    group.quantities, group.prices, group.costs, group.buys, method, traced
                )
            except _ReliefError as err:
                failed.append((group.fills[err.index], err))
    if failed:
        first, error = min(failed, key=lambda item: fill_order(item[0]))
        raise _bad_fill(first) from error.__cause__
    if bad is not None:
        raise _bad_fill(bad)
    return reliefs


def build_positions(
    fills: Iterable[ExecRecord], method: CostMethod = CostMethod.FIFO
) -> dict[tuple[str, str], Position]:
    """Positions per (account, symbol) from effective fills, relieving lots by ``method``.

    The fills are sorted by ``fill_order`` first (cheap when they already are), then relieved
    per account/symbol (``_relieve``). Every account/symbol that traded appears, flat ones too
    (quantity 0, no lots).

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
    groups, bad = _grouped(fills)
    reliefs = _relieve_groups(groups, bad, method)
    average = method is CostMethod.AVERAGE
    with localcontext(CONTEXT):
        return {
            key: _position(
                key,
                reliefs[key],
                average,
                sum(group.commissions, ZERO),
                sum(group.fees, ZERO),
                [(group.fills[i].trade_date, group.prices[i]) for i in reliefs[key].openers],
            )
            for key, group in groups.items()
        }


def _position(
    key: tuple[str, str],
    relief: _Relief,
    average: bool,
    commissions: Decimal,
    fees: Decimal,
    openers: Sequence[tuple[date, Decimal]],
) -> Position:
    """The Position of a relief; `openers`: (trade date, price) of each open lot's opener."""
    short = relief.quantity < 0
    lots = tuple(
        Lot(
            opened=opened,
            quantity=-size if short else size,
            price=relief.avg_price.quantize(QUANTUM) if average else price,
            cost_basis=basis,
        )
        for size, basis, (opened, price) in zip(relief.sizes, relief.bases, openers, strict=True)
    )
    total = ZERO
    for lot in lots:
        total += lot.cost_basis
    return Position(
        account=key[0],
        symbol=key[1],
        quantity=relief.quantity if relief.quantity else ZERO,
        cost_basis=total,
        realized_pnl=relief.realized,
        commissions=commissions,
        fees=fees,
        lots=lots,
    )


# ---- per-trade relief -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LotRelief:
    """The part of one open lot that a closing fill relieved."""

    opened_by: int  # seq of the fill that opened the lot (AVERAGE: the pool's first opener)
    opened: date  # that fill's trade date
    quantity: Decimal  # relieved (unsigned)
    cost_basis: Decimal  # basis relieved (signed as the lot's)


@dataclass(frozen=True, slots=True)
class FillEffect:
    """One fill's effect on its account/symbol's lots."""

    closed: Decimal  # quantity it closed (unsigned; 0 for a purely opening fill)
    relieved_basis: Decimal  # cost basis of the lots it closed (signed as the lots' bases)
    realized_pnl: Decimal  # P&L it realized (net of its closing share of the costs)
    opened_basis: Decimal  # cost basis of the lot it opened (0 if it opened none)
    relieved: tuple[LotRelief, ...] = ()  # the lots it closed, in relief order


def relief_trace(
    fills: Iterable[ExecRecord], method: CostMethod = CostMethod.FIFO
) -> dict[int, FillEffect]:
    """The effect of each of the effective fills (as build_positions takes them), by seq: the
    very same relief as build_positions (one implementation, ``_relieve``), step by step, so
    the per-fill figures add up exactly to build_positions' realized P&L and cost basis.

    Raises BadInput as build_positions does."""
    method = CostMethod(method)
    groups, bad = _grouped(fills)
    effects: dict[tuple[str, str], list[_Effect]] = {}
    _relieve_groups(groups, bad, method, effects)
    out: dict[int, FillEffect] = {}
    for key, group in groups.items():
        opened_by = group.fills
        for fill, (closed, relieved, realized, opened, parts) in zip(
            opened_by, effects[key], strict=True
        ):
            lots = tuple(
                LotRelief(opened_by[i].seq, opened_by[i].trade_date, quantity, basis)
                for i, quantity, basis in parts
            )
            out[fill.seq] = FillEffect(closed, relieved, realized, opened, lots)
    return out


# ---- columns: the read path of a whole book --------------------------------------------------

@cache
def fill_columns() -> dict[str, pl.DataType]:
    """The columns of build_positions_frame: an ExecRecord's, decimals as their exact text.
    (polars is imported by what reads whole books, not by every command's start-up.)"""
    import polars as pl

    return {
        "seq": pl.Int64(),
        "account": pl.String(),
        "symbol": pl.String(),
        "side": pl.String(),
        "quantity": pl.String(),
        "price": pl.String(),
        "commission": pl.String(),
        "fees": pl.String(),
        "trade_date": pl.Date(),
        "exec_time": pl.Datetime("us", "UTC"),
    }


def fill_frame(fills: Iterable[ExecRecord]) -> pl.DataFrame:
    """Fills as build_positions_frame takes them (decimals as str(): exact, exponent kept)."""
    import polars as pl

    rows = [
        (
            f.seq,
            f.account,
            f.symbol,
            str(f.side),
            str(f.quantity),
            str(f.price),
            str(f.commission),
            str(f.fees),
            f.trade_date,
            f.exec_time,
        )
        for f in fills
    ]
    return pl.DataFrame(rows, schema=fill_columns(), orient="row")


def _frame_in_fill_order(frame: pl.DataFrame) -> bool:
    """Whether the rows are in fill_order (trade date, exec time with None first, seq)."""
    import polars as pl

    td, et, seq = pl.col("trade_date"), pl.col("exec_time"), pl.col("seq")
    ptd, pet, pseq = td.shift(1), et.shift(1), seq.shift(1)
    later = (td > ptd) | (
        (td == ptd)
        & (
            (et.is_not_null() & pet.is_null())
            | (et.is_null() & pet.is_null() & (seq > pseq))
            | (et.is_not_null() & pet.is_not_null() & ((et > pet) | ((et == pet) & (seq > pseq))))
        )
    )
    return bool(frame.select(later.slice(1).all()).item())


def build_positions_frame(
    frame: pl.DataFrame, method: CostMethod = CostMethod.FIFO
) -> dict[tuple[str, str], Position] | None:
    """build_positions for effective fills given as columns (fill_columns(), in any order),
    without an ExecRecord per fill: the read path of a whole book. The same relief
    (``_relieve``) on the same Decimals in the same order, so the same Positions, exponents
    included (tested against build_positions). The columns are turned into Decimals one
    account/symbol at a time, so a million fills are never a million objects at once.

    Returns None when a row is not a valid fill (a null, a side other than buy or sell, a
    number that is not a positive price or quantity or a non-negative cost, arithmetic beyond
    the context's digits): build_positions over the records says which and why.
    """
    import polars as pl

    method = CostMethod(method)
    if frame.height == 0:
        return {}
    if frame.null_count().drop("exec_time").sum_horizontal().item() or not (
        frame["side"].is_in(["buy", "sell"]).all()
    ):
        return None
    if not _frame_in_fill_order(frame):
        frame = frame.sort(["trade_date", "exec_time", "seq"], nulls_last=False)
    # the rows one account/symbol after the other, each in fill order
    groups = (
        frame.with_row_index("row")
        .group_by("account", "symbol", maintain_order=True)
        .agg(pl.col("row"))
    )
    order = groups["row"].explode()
    average = method is CostMethod.AVERAGE
    buys = (frame["side"].gather(order) == "buy").to_list()
    reliefs: list[tuple[_Relief, Decimal, Decimal, int]] = []
    with localcontext(CONTEXT):
        try:
            quantities, prices, commissions, fees = (
                _decimals(frame[c], order, positive)
                for c, positive in (
                    ("quantity", True),
                    ("price", True),
                    ("commission", False),
                    ("fees", False),
                )
            )
            costs = list(map(add, commissions, fees))
            start = 0
            for n in groups["row"].list.len().to_list():
                end = start + n
                relief = _relieve(
                    quantities[start:end],
                    prices[start:end],
                    costs[start:end],
                    buys[start:end],
                    method,
                )
                paid = (sum(commissions[start:end], ZERO), sum(fees[start:end], ZERO))
                reliefs.append((relief, *paid, start))
                start = end
        except (InvalidOperation, _ReliefError, _NotFills):
            return None
        # the trade dates of the open lots' openers, in one gather
        rows = [offset + i for relief, _, _, offset in reliefs for i in relief.openers]
        dates = iter(frame["trade_date"].gather(order.gather(rows)).to_list())
        out: dict[tuple[str, str], Position] = {}
        for account, symbol, (relief, commissions_paid, fees_paid, offset) in zip(
            groups["account"].to_list(), groups["symbol"].to_list(), reliefs, strict=True
        ):
            openers = [(next(dates), prices[offset + i]) for i in relief.openers]
            key = (account, symbol)
            out[key] = _position(key, relief, average, commissions_paid, fees_paid, openers)
        return out


class _NotFills(Exception):
    """A number build_positions would refuse (not > 0, or < 0 for costs)."""


def _decimals(texts: pl.Series, order: pl.Series, positive: bool) -> Sequence[Decimal]:
    """The Decimals of a text column, in `order` (in CONTEXT: a text that is not a number
    raises InvalidOperation). Each distinct text is made a Decimal once when texts repeat
    (quantities, costs): the rows share it. Raises _NotFills for a value <= 0 (`positive`) or
    < 0."""
    import polars as pl

    distinct = texts.unique()
    values = list(map(Decimal, distinct.to_list()))
    lowest = min(values)
    if lowest < ZERO or (positive and lowest == ZERO):
        raise _NotFills
    if 2 * len(values) > len(texts):
        return list(map(Decimal, texts.gather(order).to_list()))
    codes = texts.cast(pl.Enum(distinct)).to_physical().gather(order).to_list()
    if len(codes) == 1:
        return [values[codes[0]]]
    return itemgetter(*codes)(values)  # type: ignore[no-any-return]


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
