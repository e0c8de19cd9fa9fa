"""The internal side of a reconciliation: the book of record as canonical frames.

Reads only (the caller's connection); every frame has the recon.canonical schema, with `ref`
the book's identity of the record and `row` a 1-based ordinal in `ref` order, so the same book
gives the same frame whatever order the database returns rows in.

- trades: the effective executions (corrections applied, busts removed) of one venue with one
  trade date, plus any executions named by earlier open breaks. Read columnar: decimals, dates
  and times come back as text from either backend and are cast by polars, so a million rows
  never become a million Python Decimals.
- positions: per account and symbol, the signed quantity of the venue's effective executions
  up to the date, on trade basis (trade_date <= D) or settlement basis (settle_date <= D), and
  the book's mark at the end of that date as price.
- cash: the movements of each account's cash ledger account with that value date (one line per
  journal entry) and the balances by value date (opening: before D, closing: through D).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, Final

import polars as pl
from sqlalchemy import Connection, String, cast, func, or_, select

from oms import bulk, lots, md_book
from oms import executions as executions_mod
from oms.ledger import SETTLEMENT
from oms.schema import executions, journal_entries, journal_postings
from oms.values import EXACT, ZERO, dec_str, utc_iso
from recon.canonical import MONEY, SETTLEMENT_LINE, conform, empty

_TRADE_COLUMNS: Final = (
    "exec_id",
    "account",
    "symbol",
    "side",
    "quantity",
    "price",
    "currency",
    "trade_date",
    "settle_date",
    "exec_time",
    "venue",
    "commission",
    "fees",
    "client_order_id",
)
_TEXT: Final = ("quantity", "price", "commission", "fees", "trade_date", "settle_date", "exec_time")


def _as_text(col: Any) -> Any:
    return cast(col, String)


def _finish(frame: pl.DataFrame, kind: str) -> pl.DataFrame:
    """Order by ref, number the rows, and conform to the canonical schema."""
    # stable: movements of one ref keep their book order (entry order), and their row numbers
    frame = frame.sort("ref", maintain_order=True).with_columns(
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("row")
    )
    return conform(frame, kind)


def _parse_trades(rows: Sequence[Sequence[Any]] | pl.DataFrame) -> pl.DataFrame:
    raw = (
        rows
        if isinstance(rows, pl.DataFrame)
        else pl.DataFrame(rows, schema=dict.fromkeys(_TRADE_COLUMNS, pl.String()), orient="row")
    )
    return raw.with_columns(
        pl.col("exec_id").alias("ref"),
        *(pl.col(c).cast(MONEY) for c in ("quantity", "price", "commission", "fees")),
        pl.col("trade_date").str.to_date("%Y-%m-%d"),
        pl.col("settle_date").str.to_date("%Y-%m-%d"),
        bulk.utc_text(pl.col("exec_time")),
    )


def internal_trades(
    conn: Connection,
    venue: str,
    day: date,
    extra_refs: Collection[str] = (),
    venue_ids: pl.Series | None = None,
) -> pl.DataFrame:
    """The book's effective executions at `venue` traded on `day`, plus those named in
    `extra_refs` (exec ids of earlier open breaks), as a canonical trades frame.

    `venue_ids`: the exec ids of the venue's records. Those the book has with another trade
    date are added too (a broker's file of several days, a trade reported late, a trade date
    the two sides disagree on): each is compared with the book's execution it names, which
    tells a trade_date_mismatch or a repeat of a matched trade from a trade the book does not
    have (missing_internal). Read in a second query, for the few ids the first did not find."""
    e = executions.c
    cols = [_as_text(e[c]) if c in _TEXT else e[c] for c in _TRADE_COLUMNS]
    fills = select(*cols).where(e.venue == venue, e.exec_type == lots.FILL)
    wanted = e.trade_date == day
    if extra_refs:
        wanted = or_(wanted, e.exec_id.in_(sorted(extra_refs)))
    frame = _parse_trades(bulk.text_frame(conn, fills.where(wanted), _TRADE_COLUMNS, plain=_TEXT))
    ids = pl.Series(dtype=pl.String) if venue_ids is None else venue_ids.drop_nulls().unique()
    absent = ids.filter(~ids.is_in(frame["exec_id"].implode())).sort().to_list()
    if absent:
        elsewhere = fills.where(e.trade_date != day, e.exec_id.in_(absent))
        found = _parse_trades(bulk.text_frame(conn, elsewhere, _TRADE_COLUMNS, plain=_TEXT))
        if found.height:
            frame = pl.concat([frame, found], how="vertical")
            extra_refs = {*extra_refs, *found["exec_id"].to_list()}
    changed = conn.execute(
        select(func.count())
        .select_from(executions)
        .where(e.venue == venue, e.exec_type != lots.FILL)
    ).scalar()
    if changed:
        frame = _apply_changes(conn, venue, day, set(extra_refs), frame)
    return _finish(frame, "trades")


def _apply_changes(
    conn: Connection, venue: str, day: date, extra: set[str], frame: pl.DataFrame
) -> pl.DataFrame:
    """Corrections and busts at the venue: recompute the effective terms of every execution a
    change touches (the few), and put them in place of the stored fills."""
    e = executions.c
    records = _venue_records(conn, venue)
    effective = {r.exec_id: r for r in lots.effective_fills(records)}
    touched = {r.ref_exec_id for r in records if r.exec_type != lots.FILL}
    touched |= {r.exec_id for r in records if r.exec_type != lots.FILL}
    roots = {r.exec_id for r in records if r.exec_type == lots.FILL and r.exec_id in touched}
    # every original whose chain changed: drop its stored terms, add its effective ones
    kept = frame.filter(~pl.col("exec_id").is_in(sorted(roots | touched)))
    named = select(e.exec_id, e.client_order_id).where(
        e.venue == venue, e.exec_id.in_(sorted(roots))
    )
    client_ids = {str(x): c for x, c in conn.execute(named)}
    redone = [
        (
            r.exec_id,
            r.account,
            r.symbol,
            r.side.value,
            dec_str(r.quantity),
            dec_str(r.price),
            r.currency,
            r.trade_date.isoformat(),
            r.settle_date.isoformat() if r.settle_date else None,
            utc_iso(r.exec_time) if r.exec_time else None,
            venue,
            dec_str(r.commission),
            dec_str(r.fees),
            client_ids.get(r.exec_id),
        )
        for exec_id, r in sorted(effective.items())
        if exec_id in roots and (r.trade_date == day or exec_id in extra)
    ]
    return pl.concat([kept, _parse_trades(redone)], how="vertical")


def _venue_records(conn: Connection, venue: str) -> list[lots.ExecRecord]:
    """Every record of the venue that a change names, and the changes themselves."""
    e = executions.c
    changes = select(e.ref_exec_id).where(e.venue == venue, e.exec_type != lots.FILL)
    named = or_(e.exec_type != lots.FILL, e.exec_id.in_(changes))
    ids = conn.execute(select(e.id).where(e.venue == venue, named)).scalars().all()
    wanted = set(ids)
    return [r for r in executions_mod.records(conn) if r.seq in wanted]


def internal_positions(
    conn: Connection, venue: str, day: date, *, basis: str = "trade"
) -> pl.DataFrame:
    """Signed quantity per account and symbol of the venue's effective executions up to `day`
    (trade or settlement basis), with the book's mark at the end of `day` as price."""
    return positions_and_prices(conn, venue, day, basis=basis)[0]


def positions_and_prices(
    conn: Connection, venue: str, day: date, *, basis: str = "trade"
) -> tuple[pl.DataFrame, dict[str, Decimal]]:
    """internal_positions, and a price for each symbol of the venue's fills up to `day`: the
    book's mark at the end of `day`, else the price of the symbol's last fill (what a break
    of a position nobody marks is valued at; not compared with the venue's price)."""
    e = executions.c
    ids = conn.execute(select(e.id).where(e.venue == venue)).scalars().all()
    wanted = set(ids)
    fills = lots.effective_fills(r for r in executions_mod.records(conn) if r.seq in wanted)
    if basis == "settlement":
        fills = [f for f in fills if f.settle_date is not None and f.settle_date <= day]
    else:
        fills = [f for f in fills if f.trade_date <= day]
    held: dict[tuple[str, str], Any] = {}
    last: dict[str, Decimal] = {}  # each symbol's last fill's price (fills in fill order)
    x = EXACT  # the sums exactly, not in Python's default 28 digits
    for f in fills:
        key = (f.account, f.symbol)
        signed = f.quantity if f.side.value == "buy" else x.minus(f.quantity)
        held[key] = x.add(held.get(key, ZERO), signed)
        last[f.symbol] = f.price
    marks = md_book.last_prices_on(conn, sorted({s for _, s in held}), day)
    rows = [
        (f"{a}|{s}", a, s, dec_str(q), dec_str(marks[s]) if s in marks else None)
        for (a, s), q in sorted(held.items())
    ]
    frame = pl.DataFrame(
        rows,
        schema={
            "ref": pl.String(),
            "account": pl.String(),
            "symbol": pl.String(),
            "quantity": pl.String(),
            "price": pl.String(),
        },
        orient="row",
    ).with_columns(pl.col("quantity").cast(MONEY), pl.col("price").cast(MONEY))
    return _finish(frame, "positions"), {**last, **marks}


def internal_cash(
    conn: Connection, accounts: Collection[str], day: date
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(movements, balances) of the accounts' cash on value date `day`: one movement per
    journal entry (ref: the entry's ref, else J<entry id>), and the opening (value dates before
    `day`) and closing (through `day`) balance per account and currency.

    The entries of one execution and of the corrections and busts that change it, on the same
    value date, are one movement (ref: the first entry's, the trade's): a trade busted before
    it settled moved no money (nothing is left to match), and a corrected one moved its
    corrected amount once, as the bank or custodian settles it. The settlement entries of
    imported executions (one per import, account, currency and value date: a later import's
    corrections and busts post theirs) are likewise one movement per account, currency and
    day (ref: the first import's)."""
    j, p = journal_entries.c, journal_postings.c
    cash_accounts = {f"{a}:cash": a for a in accounts}
    if not cash_accounts:
        return empty("cash"), _balances_frame([])
    joined = journal_postings.join(journal_entries, p.entry_id == j.entry_id)
    rows = conn.execute(
        select(
            j.entry_id,
            j.ref,
            p.ledger_account,
            p.currency,
            _as_text(p.amount),
            j.value_date,
            j.execution_id,
            j.kind,
        )
        .select_from(joined)
        .where(p.ledger_account.in_(sorted(cash_accounts)), j.value_date <= day)
    ).all()
    roots = _trade_roots(conn, {r[6] for r in rows if r[6] is not None and r[5] == day})
    add = EXACT.add  # the journal's sums exactly, not in Python's default 28 digits
    moves: dict[tuple[Any, ...], list[Any]] = {}
    opening: dict[tuple[str, str], Decimal] = {}
    closing: dict[tuple[str, str], Decimal] = {}
    for entry_id, ref, ledger_account, ccy, amount, value_date, execution_id, kind in sorted(
        rows, key=lambda r: int(r[0])
    ):
        acct = cash_accounts[ledger_account]
        amt = Decimal(amount)
        closing[(acct, ccy)] = add(closing.get((acct, ccy), ZERO), amt)
        if value_date < day:
            opening[(acct, ccy)] = add(opening.get((acct, ccy), ZERO), amt)
        else:
            root = roots.get(execution_id) if execution_id is not None else None
            if root is not None:
                key: tuple[Any, ...] = (0, *root, acct, ccy)
            elif kind == SETTLEMENT:
                key = (2, acct, ccy)
            else:
                key = (1, entry_id, ccy)
            trade = root is not None or kind in _TRADE_KINDS
            m = moves.setdefault(
                key, [int(entry_id), ref or f"J{entry_id}", acct, ccy, Decimal(0), trade]
            )
            m[4] = add(m[4], amt)
    movement_rows = [
        (ref, acct, ccy, day, dec_str(amt), SETTLEMENT_LINE if trade else "movement")
        for (_, ref, acct, ccy, amt, trade) in sorted(moves.values(), key=lambda m: int(m[0]))
        if amt != 0
    ]
    frame = pl.DataFrame(
        movement_rows,
        schema={
            "ref": pl.String(),
            "account": pl.String(),
            "currency": pl.String(),
            "date": pl.Date(),
            "amount": pl.String(),
            "line_type": pl.String(),
        },
        orient="row",
    ).with_columns(pl.col("amount").cast(MONEY))
    balances = [
        (acct, ccy, day, dec_str(opening.get((acct, ccy), Decimal(0))), "opening_balance")
        for acct, ccy in sorted(closing)
    ] + [
        (acct, ccy, day, dec_str(total), "closing_balance")
        for (acct, ccy), total in sorted(closing.items())
    ]
    return _finish(frame, "cash"), _balances_frame(balances)


# journal entries that settle trades (a paper or FIX fill's, an import's batch): the cash
# aggregate stage may net them against a bank's one line; deposits, withdrawals and the rest
# are matched one to one
_TRADE_KINDS: Final = frozenset({"trade", SETTLEMENT})


def _trade_roots(conn: Connection, ids: set[int]) -> dict[int, tuple[str, str]]:
    """The execution (venue, ExecID) each of these executions (by row id) changes in the end:
    itself for a fill, the fill at the start of the chain for a correction or bust (a
    correction may name a correction)."""
    e = executions.c
    found: dict[int, tuple[str, str, str | None]] = {}  # id -> venue, exec_id, ref_exec_id
    listed = sorted(ids)
    for start in range(0, len(listed), 500):
        for pk, venue, exec_id, ref in conn.execute(
            select(e.id, e.venue, e.exec_id, e.ref_exec_id).where(
                e.id.in_(listed[start : start + 500])
            )
        ):
            found[int(pk)] = (venue, exec_id, ref)
    names: dict[tuple[str, str], str | None] = {(v, x): r for v, x, r in found.values()}
    wanted = {(v, r) for v, _, r in found.values() if r is not None} - names.keys()
    while wanted:  # the executions the chains name, a link at a time (chains are short)
        for venue, exec_id in sorted(wanted):
            row = conn.execute(
                select(e.ref_exec_id).where(e.venue == venue, e.exec_id == exec_id)
            ).first()
            names[(venue, exec_id)] = None if row is None else row[0]
        wanted = {(v, r) for (v, _), r in names.items() if r is not None} - names.keys()
    roots: dict[int, tuple[str, str]] = {}
    for pk, (venue, exec_id, _) in found.items():
        key, seen = (venue, exec_id), set()
        while names.get(key) is not None and key not in seen:
            seen.add(key)
            key = (venue, str(names[key]))
        roots[pk] = key
    return roots


def _balances_frame(rows: list[tuple[Any, ...]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "account": pl.String(),
            "currency": pl.String(),
            "date": pl.Date(),
            "balance": pl.String(),
            "kind": pl.String(),
        },
        orient="row",
    ).with_columns(pl.col("balance").cast(MONEY))
