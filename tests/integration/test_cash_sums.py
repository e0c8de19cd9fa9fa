"""A cash balance is read as the running sum kept up to a posting plus the postings after it
(book.cash_total); a bar filling a cash account's resting orders keeps the sum as it goes
(its transaction writes), so each fill reads only the postings since the last one. On both
backends: the kept sum and the figures are those of every posting read one by one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from oms import book, ledger, md_book, order_book
from oms.book import Ctx
from oms.order_book import OrderRequest
from oms.refdata import make_account, make_instrument
from oms.schema import journal_postings, running_sums
from oms.store import Store
from oms.values import OrdType, Side, TimeInForce


def _bar(store: Store, tmp_path: Path, name: str, at: datetime, low: str, close: str) -> None:
    path = tmp_path / f"{name}.csv"
    path.write_text(
        "time,symbol,open,high,low,close,volume\n"
        f"{at.strftime('%Y-%m-%dT%H:%M:%SZ')},COIN,100,100,{low},{close},1000000\n"
    )
    md_book.import_bars(store, Ctx("md", at + timedelta(seconds=1)), str(path))


def _kept(store: Store) -> list[tuple[str, str, str, int, Decimal]]:
    with store.read() as conn:
        return [tuple(r) for r in conn.execute(select(running_sums))]  # type: ignore[misc]


def test_a_bar_filling_a_cash_account_keeps_its_cash_sum(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(book, "KEEP_CASH_AFTER", 3)
    start = datetime.now(UTC) - timedelta(minutes=10)
    ctx = Ctx("ops", start)
    book.add_instruments(store, ctx, [make_instrument("COIN", "24/7", "USD")])
    book.open_account(store, ctx, make_account("C1", "USD", None, "cash", None))
    book.deposit(store, ctx, "C1", Decimal("2000.10"), None)
    _bar(store, tmp_path, "b0", start, "100", "100")
    for i in range(6):  # 6 resting buys at 95 of 1 to 6: 21 x 95 = 1995
        order_book.submit(
            store,
            Ctx("trader", start + timedelta(minutes=1, seconds=i)),
            OrderRequest(
                account="C1",
                symbol="COIN",
                side=Side.BUY,
                quantity=Decimal(1 + i),
                type=OrdType.LIMIT,
                tif=TimeInForce.GTC,
                limit_price=Decimal("95"),
            ),
        )
    assert _kept(store) == []  # single submissions keep a sum after 64 postings: none yet
    _bar(store, tmp_path, "b1", start + timedelta(minutes=5), "94.5", "94.5")
    filled = order_book.fill_pending(store, Ctx("md", start + timedelta(minutes=6)))
    assert len(filled) == 6 and all(o.status.value == "filled" for o in filled)
    with store.read() as conn:
        owner = ledger.cash_account("C1")
        last = conn.execute(
            select(func.max(journal_postings.c.posting_id)).where(
                journal_postings.c.ledger_account == owner
            )
        ).scalar()
        scan = book.cash_total_scan(conn, "C1", "USD")
        assert str(scan) == "5.10"  # 2000.10 - 21 x 95 (limit orders fill at their limit)
        assert str(book.cash_total(conn, "C1", "USD")) == str(scan)
    ((kind, who, ccy, through, total),) = _kept(store)
    # kept by a fill after 3 postings or more, up to a posting of this account
    assert (kind, who, ccy) == ("cash", owner, "USD")
    assert through <= last
    with store.read() as conn:  # the kept total is the sum of the postings up to `through`
        upto = conn.execute(
            select(journal_postings.c.amount).where(
                journal_postings.c.ledger_account == owner,
                journal_postings.c.posting_id <= through,
            )
        ).scalars()
        assert str(total) == str(sum(upto, Decimal(0)))
        assert total != scan or through == last
    # more postings after the kept sum: read through it, digit for digit
    book.deposit(store, Ctx("ops", start + timedelta(minutes=7)), "C1", Decimal("0.01"), None)
    with store.read() as conn:
        assert str(book.cash_total(conn, "C1", "USD")) == "5.11"
        assert str(book.cash_total_scan(conn, "C1", "USD")) == "5.11"
        assert str(book.cash_balance(conn, "C1").balance) == "5.11"


def test_a_read_never_keeps_a_sum(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(book, "KEEP_CASH_AFTER", 1)
    ctx = Ctx("ops", datetime.now(UTC))
    book.open_account(store, ctx, make_account("C2", "USD", None, "cash", None))
    for cents in ("0.01", "0.02", "0.03"):
        book.deposit(store, ctx, "C2", Decimal(cents), None)
    with store.read() as conn:
        assert str(book.cash_total(conn, "C2", "USD")) == "0.06"
    assert _kept(store) == []
