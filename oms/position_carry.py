"""What retention took out of the live executions, carried into positions.

`tieout retention apply` archives a prefix of an account's fills in a symbol only when it leaves
the position flat (oms.retention.plan_executions); in the same transaction it writes, per account
and symbol, what those fills realized (and their commissions and fees) to the insert-only table
position_carry_forward (oms.retention_schema). Positions built from the live executions then add
it: a symbol whose whole history was archived is still listed, flat, with its realized P&L, and
a symbol that traded again adds the carried P&L to what its live fills realized. Flat episodes
realize the same whatever the cost method, so the carry holds for FIFO, LIFO and average alike.

As of a date: a carry counts from the last trade date it covers (before it, the archived fills
themselves are gone from the book; the archive's Parquet files and manifest keep them).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal, localcontext

from sqlalchemy import Connection, select

from oms.lots import CONTEXT, Position
from oms.retention_schema import position_carry_forward
from oms.values import ZERO


def carried(
    conn: Connection, account: str, as_of: date | None = None
) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
    """symbol -> (realized P&L, commissions, fees) carried forward for the account."""
    c = position_carry_forward.c
    q = (
        select(c.symbol, c.realized_pnl, c.commissions, c.fees)
        .where(c.account == account)
        .order_by(c.symbol, c.carry_id)
    )
    if as_of is not None:
        q = q.where(c.last_trade_date <= as_of)
    out: dict[str, tuple[Decimal, Decimal, Decimal]] = {}
    with localcontext(CONTEXT):
        for symbol, realized, commissions, fees in conn.execute(q):
            r, cm, f = out.get(symbol, (ZERO, ZERO, ZERO))
            out[symbol] = (r + realized, cm + commissions, f + fees)
    return out


def with_carried(
    conn: Connection,
    account: str,
    built: Mapping[tuple[str, str], Position],
    as_of: date | None = None,
) -> dict[tuple[str, str], Position]:
    """`built` (positions from the live executions) with the carried totals added: flat lines
    for symbols with no live fills left, the carried realized P&L, commissions and fees added to
    the others."""
    out = dict(built)
    extra = carried(conn, account, as_of)
    if not extra:
        return out
    for symbol, (realized, commissions, fees) in extra.items():
        key = (account, symbol)
        p = out.get(key)
        if p is None:
            out[key] = Position(account, symbol, ZERO, ZERO, realized, commissions, fees, ())
            continue
        with localcontext(CONTEXT):
            out[key] = Position(
                p.account,
                p.symbol,
                p.quantity,
                p.cost_basis,
                p.realized_pnl + realized,
                p.commissions + commissions,
                p.fees + fees,
                p.lots,
            )
    return out
