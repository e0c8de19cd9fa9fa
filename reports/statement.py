"""The account statement: a pure builder from plain values to frozen report data.

Definitions (where the contract is silent, these are tieout's):

- The period is [from, to], whole days; "opening" means at the end of the day before `from`,
  "closing" at the end of `to`.
- Positions are built from the account's effective fills (corrections and busts applied as the
  book knows them now) with trade date up to the day, by the cost method (FIFO by default), and
  marked at the last price of that day (the close of the last bar before the next midnight UTC).
  An open position without any price is valued at its cost (before costs), and a note says so.
- Cash is trade-date cash: the account's cash journal postings that are not trade settlements
  (deposits, withdrawals, other movements) with value date up to the day, plus the cash flow of
  every fill traded up to the day (-side * quantity * price - commission - fees), whatever its
  settlement date. At the end of the book this equals oms.book.cash_balance (the journal books
  the very same trade cash on the settlement date); the statement also shows settled cash (all
  journal postings with value date up to `to`), the difference being trades not yet settled.
- NAV = cash + market value of the positions. The summary shows P&L before commissions and
  fees, which it lists on their own lines, so that the figures reconcile exactly:

      opening NAV + deposits - withdrawals + other cash + realized P&L + change in unrealized P&L
          - commissions - fees = closing NAV

  The position and trade lines follow the book's tax-lot convention (`tieout positions`): cost
  basis includes the opening trade's costs, realized P&L is net of the closing trade's costs.
  Their totals are shown as realized_pnl_net and unrealized_pnl_net.
- Fills in a currency other than the account's are not part of this statement (a note counts
  them); tieout keeps no FX rates.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

from oms.errors import BadInput
from oms.lots import (
    CONTEXT,
    ExecRecord,
    Position,
    build_positions,
    cash_flow,
    fill_order,
    relief_trace,
)
from oms.values import ZERO, CostMethod, Side, dec_str, utc_iso
from reports import charts, fmt
from reports.firm import Firm
from reports.lot_trace import trace

HUNDRED = Decimal(100)
PCT_QUANTUM = Decimal("0.01")
DEPOSIT, WITHDRAWAL, TRADE = "deposit", "withdrawal", "trade"


# ---- inputs: plain values read at the edge -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountInfo:
    account: str
    name: str
    currency: str
    type: str


@dataclass(frozen=True, slots=True)
class CashEntry:
    """The cash posting of one journal entry that is not a trade settlement."""

    entry_id: int
    kind: str  # deposit | withdrawal | another non-trade kind
    value_date: date
    amount: Decimal  # signed: money in is positive
    ref: str | None = None
    destination: str | None = None


@dataclass(frozen=True, slots=True)
class Mark:
    """A price of a symbol as of the end of a day."""

    symbol: str
    day: date
    price: Decimal


@dataclass(frozen=True, slots=True)
class StatementInput:
    account: AccountInfo
    period_from: date
    period_to: date
    fills: tuple[ExecRecord, ...]  # effective fills, trade date <= period_to
    cash_entries: tuple[CashEntry, ...]  # value date <= period_to, account currency
    marks: tuple[Mark, ...]  # prices as of the day before the period, and each day in it
    settled_cash: Decimal  # journal cash with value date <= period_to
    firm: Firm
    generated_at: datetime
    audit_head: str | None
    method: CostMethod = CostMethod.FIFO


# ---- output: the statement ---------------------------------------------------------------------


def _opt(value: Decimal | None) -> str | None:
    return None if value is None else dec_str(value)


@dataclass(frozen=True, slots=True)
class PositionRow:
    symbol: str
    quantity: Decimal
    avg_cost: Decimal | None
    cost_basis: Decimal  # includes the opening costs (tax-lot convention)
    market_price: Decimal | None  # None: no price, valued at cost
    market_value: Decimal
    unrealized_pnl: Decimal  # market value - cost basis
    unrealized_pnl_before_costs: Decimal
    pct_of_nav: Decimal | None  # market value / closing NAV * 100, 2 places; None if NAV <= 0

    def as_json(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "quantity": dec_str(self.quantity),
            "avg_cost": _opt(self.avg_cost),
            "cost_basis": dec_str(self.cost_basis),
            "market_price": _opt(self.market_price),
            "market_value": dec_str(self.market_value),
            "unrealized_pnl": dec_str(self.unrealized_pnl),
            "unrealized_pnl_before_costs": dec_str(self.unrealized_pnl_before_costs),
            "pct_of_nav": _opt(self.pct_of_nav),
            "priced": self.market_price is not None,
        }


@dataclass(frozen=True, slots=True)
class TradeRow:
    trade_date: date
    exec_time: datetime | None
    settle_date: date | None
    venue: str
    exec_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    proceeds: Decimal  # -side * quantity * price: negative for a buy
    commission: Decimal
    fees: Decimal
    net_amount: Decimal  # proceeds - commission - fees: the trade's cash
    basis: Decimal | None  # cost basis of the lots it closed; None when it closed none
    realized_pnl: Decimal  # net of its closing share of the costs; 0 for an opening trade
    # the quantity of lots it closed (None when it closed none): a fill that turns a position
    # over closes part of itself, and its basis and realized P&L are of that part only
    closed_quantity: Decimal | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "trade_date": self.trade_date.isoformat(),
            "exec_time": utc_iso(self.exec_time) if self.exec_time else None,
            "settle_date": self.settle_date.isoformat() if self.settle_date else None,
            "venue": self.venue,
            "exec_id": self.exec_id,
            "symbol": self.symbol,
            "side": self.side.value,
            "quantity": dec_str(self.quantity),
            "price": dec_str(self.price),
            "proceeds": dec_str(self.proceeds),
            "commission": dec_str(self.commission),
            "fees": dec_str(self.fees),
            "net_amount": dec_str(self.net_amount),
            "basis": _opt(self.basis),
            "realized_pnl": dec_str(self.realized_pnl),
            "closed_quantity": _opt(self.closed_quantity),
        }

    @property
    def turned_over(self) -> bool:
        """It closed part of its quantity and opened the rest the other way."""
        return self.closed_quantity is not None and self.closed_quantity < self.quantity


@dataclass(frozen=True, slots=True)
class CashRow:
    day: date
    settle_date: date | None
    kind: str  # deposit | withdrawal | trade | other journal kinds
    description: str
    ref: str | None
    amount: Decimal
    balance: Decimal  # trade-date cash after this row

    def as_json(self) -> dict[str, Any]:
        return {
            "date": self.day.isoformat(),
            "settle_date": self.settle_date.isoformat() if self.settle_date else None,
            "kind": self.kind,
            "description": self.description,
            "ref": self.ref,
            "amount": dec_str(self.amount),
            "balance": dec_str(self.balance),
        }


@dataclass(frozen=True, slots=True)
class NavPoint:
    day: date
    cash: Decimal
    market_value: Decimal

    @property
    def nav(self) -> Decimal:
        with localcontext(CONTEXT):
            return self.cash + self.market_value

    def as_json(self) -> dict[str, Any]:
        return {"date": self.day.isoformat(), "nav": dec_str(self.nav)}


@dataclass(frozen=True, slots=True)
class Statement:
    account: AccountInfo
    period_from: date
    period_to: date
    firm: Firm
    generated_at: datetime
    audit_head: str | None
    method: CostMethod
    opening_nav: Decimal
    closing_nav: Decimal
    opening_cash: Decimal
    closing_cash: Decimal
    settled_cash: Decimal
    market_value: Decimal
    deposits: Decimal  # positive
    withdrawals: Decimal  # positive
    other_cash: Decimal  # signed: other journal movements (none today)
    realized_pnl: Decimal  # before commissions and fees
    opening_unrealized_pnl: Decimal  # before commissions and fees
    unrealized_pnl: Decimal  # closing, before commissions and fees
    realized_pnl_net: Decimal  # tax-lot convention: the trade lines' total
    unrealized_pnl_net: Decimal  # tax-lot convention: the position lines' total
    commissions: Decimal
    fees: Decimal
    positions: tuple[PositionRow, ...]
    trades: tuple[TradeRow, ...]
    cash: tuple[CashRow, ...]
    daily_nav: tuple[NavPoint, ...]
    chart: charts.LineChart
    notes: tuple[str, ...]

    @property
    def currency(self) -> str:
        return self.account.currency

    @property
    def change_in_nav(self) -> Decimal:
        with localcontext(CONTEXT):
            return self.closing_nav - self.opening_nav

    @property
    def unrealized_pnl_change(self) -> Decimal:
        with localcontext(CONTEXT):
            return self.unrealized_pnl - self.opening_unrealized_pnl

    @property
    def pending_settlement(self) -> Decimal:
        with localcontext(CONTEXT):
            return self.closing_cash - self.settled_cash

    def as_json(self) -> dict[str, Any]:
        money = {
            "opening_nav": self.opening_nav,
            "closing_nav": self.closing_nav,
            "change_in_nav": self.change_in_nav,
            "deposits": self.deposits,
            "withdrawals": self.withdrawals,
            "other_cash": self.other_cash,
            "realized_pnl": self.realized_pnl,
            "opening_unrealized_pnl": self.opening_unrealized_pnl,
            "unrealized_pnl": self.unrealized_pnl,
            "unrealized_pnl_change": self.unrealized_pnl_change,
            "commissions": self.commissions,
            "fees": self.fees,
            "realized_pnl_net": self.realized_pnl_net,
            "unrealized_pnl_net": self.unrealized_pnl_net,
            "opening_cash": self.opening_cash,
            "closing_cash": self.closing_cash,
            "settled_cash": self.settled_cash,
            "market_value": self.market_value,
        }
        return {
            "account": self.account.account,
            "name": self.account.name,
            "account_type": self.account.type,
            "from": self.period_from.isoformat(),
            "to": self.period_to.isoformat(),
            "currency": self.currency,
            "method": self.method.value,
            **{k: dec_str(v) for k, v in money.items()},
            "positions": [p.as_json() for p in self.positions],
            "trades": [t.as_json() for t in self.trades],
            "cash": [c.as_json() for c in self.cash],
            "daily_nav": [p.as_json() for p in self.daily_nav],
            "notes": list(self.notes),
            "firm": self.firm.as_json(),
            "generated_at": utc_iso(self.generated_at),
            "audit_head": self.audit_head,
        }


# ---- the builder -------------------------------------------------------------------------------


class _Marks:
    """Prices by symbol and day; the price as of a day is the latest one dated on or before it."""

    def __init__(self, marks: Iterable[Mark]) -> None:
        by_symbol: dict[str, list[tuple[date, Decimal]]] = defaultdict(list)
        for m in marks:
            by_symbol[m.symbol].append((m.day, m.price))
        self._days: dict[str, list[date]] = {}
        self._prices: dict[str, list[Decimal]] = {}
        for symbol, items in by_symbol.items():
            items.sort(key=lambda item: item[0])
            self._days[symbol] = [d for d, _ in items]
            self._prices[symbol] = [p for _, p in items]

    def at(self, symbol: str, day: date) -> Decimal | None:
        days = self._days.get(symbol)
        if not days:
            return None
        i = bisect.bisect_right(days, day)
        return self._prices[symbol][i - 1] if i else None


def _valued(pos: Position, mark: Decimal | None) -> Decimal:
    """Market value of a position built without costs: quantity * mark, or its cost unpriced."""
    if not pos.quantity:
        return ZERO
    if mark is None:
        return pos.cost_basis
    return pos.quantity * mark


def _positions(fills: Sequence[ExecRecord], method: CostMethod) -> dict[str, Position]:
    return {sym: p for (_, sym), p in build_positions(fills, method).items()}


class _Holdings:
    """Each symbol's quantity and open lots (without costs) at the end of each day, walked
    forward through the fills in fill order: one lot relief of the account's fills, its
    per-fill effects applied day by day (the statement rebuilt every position from every fill
    since the account opened on every traded day: a year's statement took 18 times a
    quarter's). The same relief as build_positions (relief_trace), its lots kept as it keeps
    them: each lot's basis less the parts relieved from it, so that an unpriced position's
    value is its lots' sum to the digit and in the same places (the difference of all bases
    opened and all relieved is the same number, written with 12 places: "20.000000000000")."""

    def __init__(self, fills: Sequence[ExecRecord], method: CostMethod) -> None:
        self._fills = fills
        self._effects = relief_trace(fills, method)
        self._average = method is CostMethod.AVERAGE
        self._next = 0
        self.quantity: dict[str, Decimal] = {}
        # symbol -> the seq of each open lot's opening fill -> [open quantity, basis]
        self.lots: dict[str, dict[int, list[Decimal]]] = {}

    def through(self, day: date) -> None:
        """Take in the fills traded on or before `day` (days in order)."""
        fills = self._fills
        while self._next < len(fills) and fills[self._next].trade_date <= day:
            fill = fills[self._next]
            effect = self._effects[fill.seq]
            signed = fill.quantity if fill.side == Side.BUY else -fill.quantity
            self.quantity[fill.symbol] = self.quantity.get(fill.symbol, ZERO) + signed
            lots = self.lots.setdefault(fill.symbol, {})
            for part in effect.relieved:  # as _relieve: a lot relieved whole goes
                lot = lots[part.opened_by]
                if part.quantity == lot[0]:
                    del lots[part.opened_by]
                else:
                    lot[0] -= part.quantity
                    lot[1] -= part.cost_basis
            opened = fill.quantity - effect.closed
            if opened:  # a lot of its own, or (average cost) added to the pool
                if self._average and lots:
                    pool = next(iter(lots.values()))
                    pool[0] += opened
                    pool[1] += effect.opened_basis
                else:
                    lots[fill.seq] = [opened, effect.opened_basis]
            self._next += 1

    def value(self, marks: _Marks, day: date) -> Decimal:
        """Market value at `day`'s marks: quantity * mark, or its lots' basis unpriced (as
        _valued)."""
        total = ZERO
        for symbol, quantity in self.quantity.items():
            if not quantity:
                continue
            mark = marks.at(symbol, day)
            if mark is not None:
                total += quantity * mark
                continue
            basis = ZERO
            for _, lot_basis in self.lots[symbol].values():
                basis += lot_basis
            total += basis
        return total


def _upto(fills: Sequence[ExecRecord], days: Sequence[date], day: date) -> Sequence[ExecRecord]:
    return fills[: bisect.bisect_right(days, day)]


def _total(values: Iterable[Decimal]) -> Decimal:
    total = ZERO
    for v in values:
        total += v
    return total


def _describe(entry: CashEntry) -> str:
    if entry.kind == DEPOSIT:
        return "Deposit"
    if entry.kind == WITHDRAWAL:
        return f"Withdrawal to {entry.destination}" if entry.destination else "Withdrawal"
    return entry.kind.replace("_", " ").capitalize()


def _trade_text(fill: ExecRecord) -> str:
    verb = "Bought" if fill.side == Side.BUY else "Sold"
    price = fmt.price(fill.price, fill.currency or "USD")
    return f"{verb} {fmt.quantity(fill.quantity)} {fill.symbol} @ {price}"


def build_statement(inp: StatementInput) -> Statement:
    """The statement of one account and period from the values read at the edge (pure).
    Raises BadInput when the period ends before it starts."""
    if inp.period_from > inp.period_to:
        raise BadInput(
            "--from",
            f"{inp.period_from.isoformat()} is after --to {inp.period_to.isoformat()}",
        )
    ccy = inp.account.currency
    start = inp.period_from - timedelta(days=1)
    end = inp.period_to
    method = CostMethod(inp.method)
    ordered = sorted((f for f in inp.fills if f.trade_date <= end), key=fill_order)
    own = [f for f in ordered if (f.currency or ccy) == ccy]
    foreign = sorted({f.currency or "" for f in ordered if (f.currency or ccy) != ccy})
    gross = [f._replace(commission=ZERO, fees=ZERO) for f in own]
    fill_days = [f.trade_date for f in own]
    entries = sorted(
        (e for e in inp.cash_entries if e.value_date <= end),
        key=lambda e: (e.value_date, e.entry_id),
    )
    marks = _Marks(inp.marks)
    notes: list[str] = []
    if foreign:
        n = sum(1 for f in ordered if (f.currency or ccy) != ccy)
        notes.append(
            f"{n} execution(s) in {', '.join(foreign)} are not part of this {ccy} statement."
        )

    with localcontext(CONTEXT):
        # Cash and market value at the end of each day, from the day before the period on.
        days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
        capital_by_day: dict[date, Decimal] = defaultdict(Decimal)
        for e in entries:
            capital_by_day[max(e.value_date, start)] += e.amount
        flows_by_day: dict[date, Decimal] = defaultdict(Decimal)
        for f in own:
            flows_by_day[max(f.trade_date, start)] += cash_flow(f)
        cash = ZERO
        held = _Holdings(gross, method)
        points: list[NavPoint] = []
        for d in days:
            cash += capital_by_day.get(d, ZERO) + flows_by_day.get(d, ZERO)
            held.through(d)
            points.append(NavPoint(d, cash, held.value(marks, d)))
        opening, closing = points[0], points[-1]

        gross_open = _positions(_upto(gross, fill_days, start), method)
        gross_close = _positions(gross, method)
        net_open = _positions(_upto(own, fill_days, start), method)
        net_close = _positions(own, method)

        def unrealized(book: dict[str, Position], day: date) -> Decimal:
            return _total(
                _valued(p, marks.at(s, day)) - p.cost_basis for s, p in book.items() if p.quantity
            )

        realized = _total(p.realized_pnl for p in gross_close.values()) - _total(
            p.realized_pnl for p in gross_open.values()
        )
        realized_net = _total(p.realized_pnl for p in net_close.values()) - _total(
            p.realized_pnl for p in net_open.values()
        )
        in_period = [f for f in own if f.trade_date >= inp.period_from]
        period_entries = [e for e in entries if e.value_date >= inp.period_from]
        deposits = _total(e.amount for e in period_entries if e.kind == DEPOSIT)
        withdrawals = -_total(e.amount for e in period_entries if e.kind == WITHDRAWAL)
        other = _total(e.amount for e in period_entries if e.kind not in (DEPOSIT, WITHDRAWAL))
        closing_nav = closing.nav

        rows = []
        for symbol in sorted(net_close):
            net, grs = net_close[symbol], gross_close[symbol]
            if not net.quantity:
                continue
            mark = marks.at(symbol, end)
            mv = _valued(grs, mark)
            if mark is None:
                notes.append(f"{symbol}: no market price; valued at cost.")
            share = (
                (mv * HUNDRED / closing_nav).quantize(PCT_QUANTUM, ROUND_HALF_EVEN)
                if closing_nav > 0
                else None
            )
            rows.append(
                PositionRow(
                    symbol,
                    net.quantity,
                    net.avg_cost,
                    net.cost_basis,
                    mark,
                    mv,
                    mv - net.cost_basis,
                    mv - grs.cost_basis,
                    share,
                )
            )

        effects = trace(own, method)
        trades = []
        for f in in_period:
            effect = effects[f.seq]
            proceeds = -f.side.sign * f.quantity * f.price
            trades.append(
                TradeRow(
                    f.trade_date,
                    f.exec_time,
                    f.settle_date,
                    f.venue,
                    f.exec_id,
                    f.symbol,
                    f.side,
                    f.quantity,
                    f.price,
                    proceeds,
                    f.commission,
                    f.fees,
                    cash_flow(f),
                    effect.relieved_basis if effect.closed else None,
                    effect.realized_pnl,
                    effect.closed if effect.closed else None,
                )
            )

        cash_rows = []
        balance = opening.cash
        movements: list[tuple[date, int, int, CashRow]] = []
        for e in period_entries:
            row = CashRow(e.value_date, None, e.kind, _describe(e), e.ref, e.amount, ZERO)
            movements.append((e.value_date, 0, e.entry_id, row))
        for f in in_period:
            text = _trade_text(f)
            row = CashRow(f.trade_date, f.settle_date, TRADE, text, None, cash_flow(f), ZERO)
            movements.append((f.trade_date, 1, f.seq, row))
        movements.sort(key=lambda m: (m[0], m[1]))  # stable: trades stay in fill order
        for *_, row in movements:
            balance += row.amount
            cash_rows.append(
                CashRow(row.day, row.settle_date, row.kind, row.description, row.ref, row.amount,
                        balance)
            )  # fmt: skip

        return Statement(
            account=inp.account,
            period_from=inp.period_from,
            period_to=end,
            firm=inp.firm,
            generated_at=inp.generated_at,
            audit_head=inp.audit_head,
            method=method,
            opening_nav=opening.nav,
            closing_nav=closing_nav,
            opening_cash=opening.cash,
            closing_cash=closing.cash,
            settled_cash=inp.settled_cash,
            market_value=closing.market_value,
            deposits=deposits,
            withdrawals=withdrawals,
            other_cash=other,
            realized_pnl=realized,
            opening_unrealized_pnl=unrealized(gross_open, start),
            unrealized_pnl=unrealized(gross_close, end),
            realized_pnl_net=realized_net,
            unrealized_pnl_net=_total(r.unrealized_pnl for r in rows),
            commissions=_total(f.commission for f in in_period),
            fees=_total(f.fees for f in in_period),
            positions=tuple(rows),
            trades=tuple(trades),
            cash=tuple(cash_rows),
            daily_nav=tuple(points),
            chart=charts.line_chart([(p.day, p.nav) for p in points], ccy),
            notes=tuple(notes),
        )


def reconciles(s: Statement) -> Decimal:
    """The NAV identity's residual: zero, exactly, for every statement this module builds."""
    with localcontext(CONTEXT):
        return (
            s.opening_nav
            + s.deposits
            - s.withdrawals
            + s.other_cash
            + s.realized_pnl
            + s.unrealized_pnl_change
            - s.commissions
            - s.fees
            - s.closing_nav
        )
