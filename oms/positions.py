"""Positions, lots and P&L read from the book: executions in, pure lot relief (oms.lots), marks
from the last market price. Nothing here is stored: positions are always derived, so they can
never disagree with the executions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import polars as pl
from sqlalchemy import Connection

from oms import book, executions, lots, md_book, position_carry
from oms.errors import NotFound
from oms.values import CostMethod, day_start, dec_str


@dataclass(frozen=True, slots=True)
class PositionLine:
    position: lots.Position
    valuation: lots.Valuation
    currency: str | None = None  # the instrument's: an account may trade in several

    def as_json(self) -> dict[str, Any]:
        p, v = self.position, self.valuation

        def opt(x: Decimal | None) -> str | None:
            return None if x is None else dec_str(x)

        return {
            "account": p.account,
            "symbol": p.symbol,
            "currency": self.currency,
            "quantity": dec_str(p.quantity),
            "avg_cost": opt(p.avg_cost),
            "cost_basis": dec_str(p.cost_basis),
            "market_price": opt(v.market_price),
            "market_value": opt(v.market_value),
            "unrealized_pnl": opt(v.unrealized_pnl),
            "realized_pnl": dec_str(p.realized_pnl),
        }


def end_of(day: date) -> datetime:
    """The first instant after a date (UTC): marks as of a date use bars before it."""
    return day_start(day + timedelta(days=1))


def positions(
    conn: Connection,
    account: str,
    *,
    as_of: date | None = None,
    method: CostMethod = CostMethod.FIFO,
) -> list[PositionLine]:
    book.get_account(conn, account)
    built = _build(conn, account, as_of, method)
    built = position_carry.with_carried(conn, account, built, as_of)  # archived P&L
    symbols = sorted({sym for _, sym in built})
    marks = (
        md_book.last_prices_on(conn, symbols, as_of)
        if as_of
        else md_book.last_prices(conn, symbols)
    )
    currencies = book.currencies_of(conn, symbols)
    return [
        PositionLine(built[key], lots.value(built[key], marks.get(key[1])), currencies.get(key[1]))
        for key in sorted(built)
    ]


def _build(
    conn: Connection, account: str, as_of: date | None, method: CostMethod
) -> dict[tuple[str, str], lots.Position]:
    """The account's positions from its effective fills, read in bulk as columns
    (lots.build_positions_frame: the same relief, the same figures as build_positions over
    the records). Corrections and busts apply before the as-of cut: a bust booked later still
    removes a fill dated before the as-of date, since positions show what is known now. A row
    that is not a valid fill sends it to the records, where build_positions says which."""
    plain, changes = executions.fill_columns(conn, account)
    frame = plain
    if changes:
        frame = pl.concat([plain, lots.fill_frame(lots.effective_fills(changes))])
    if as_of is not None:
        frame = frame.filter(pl.col("trade_date") <= as_of)
    built = lots.build_positions_frame(frame, method)
    if built is None:
        fills = lots.effective_fills(executions.records(conn, account=account))
        if as_of is not None:
            fills = [f for f in fills if f.trade_date <= as_of]
        built = lots.build_positions(fills, method)
    return built


def open_lots(
    conn: Connection, account: str, symbol: str, method: CostMethod = CostMethod.FIFO
) -> list[lots.Lot]:
    book.get_account(conn, account)
    book.get_instrument(conn, symbol)
    recs = executions.records(conn, account=account, symbol=symbol)
    built = lots.build_positions(lots.effective_fills(recs), method)
    # a position whose fills were all archived (retention) is flat: `positions` lists it
    # with the P&L it realized, and it has no open lots
    built = position_carry.with_carried(conn, account, built, None)
    pos = built.get((account, symbol))
    if pos is None:
        raise NotFound("position", f"{account}/{symbol}")
    return list(pos.lots)


def lot_json(lot: lots.Lot) -> dict[str, Any]:
    return {
        "opened": lot.opened.isoformat(),
        "quantity": dec_str(lot.quantity),
        "price": dec_str(lot.price),
        "cost_basis": dec_str(lot.cost_basis),
    }
