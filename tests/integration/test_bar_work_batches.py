"""The paper venue works an import's bars in time order, each bar that may act on a resting
order alone in its transaction (its business event), and the bars that reach no resting order
together, many in one transaction (a growth audit: one commit a bar made `md import` of a
million bars an hour's work, at 155-275 bars a second). A failure in a bar's work rolls back
that bar alone; the bars before it stay worked, and the work resumes where it stopped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from oms import book, md_book, order_book
from oms.book import Ctx
from oms.order_book import OrderRequest
from oms.orders import OrderStatus
from oms.refdata import make_account, make_instrument
from oms.schema import imports
from oms.store import Store
from oms.values import OrdType, Side, TimeInForce

START = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)


def _at(minutes: int) -> str:
    return f"{START + timedelta(minutes=minutes):%Y-%m-%dT%H:%M:%SZ}"


def _worked(store: Store, import_id: int) -> int:
    with store.read() as conn:
        return int(
            conn.execute(
                select(imports.c.bars_worked).where(imports.c.import_id == import_id)
            ).scalar_one()
            or 0
        )


def test_idle_bars_are_worked_together_and_a_bar_that_acts_alone(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = Ctx("ops", START)
    book.add_instruments(
        store, ctx, [make_instrument("COIN", "24/7", "USD"), make_instrument("IDLE", "24/7", "USD")]
    )
    book.open_account(store, ctx, make_account("A1", "USD", None, "margin", None))
    book.deposit(store, ctx, "A1", Decimal("10000"), None)
    first = tmp_path / "b0.csv"
    first.write_text(
        f"time,symbol,open,high,low,close,volume\n{_at(0)},COIN,100,100,100,100,1000\n"
        f"{_at(0)},IDLE,50,50,50,50,1000\n"
    )
    md_book.import_bars(store, Ctx("md", START + timedelta(seconds=30)), str(first))
    order_book.fill_pending(store, Ctx("md", START + timedelta(seconds=31)))
    placed = order_book.submit(
        store,
        Ctx("trader", START + timedelta(minutes=1)),
        OrderRequest(account="A1", symbol="COIN", side=Side.BUY, quantity=Decimal(2),
                     type=OrdType.LIMIT, tif=TimeInForce.GTC, limit_price=Decimal("95")),
    ).order  # fmt: skip
    bars = tmp_path / "b1.csv"
    bars.write_text(
        "time,symbol,open,high,low,close,volume\n"
        f"{_at(2)},IDLE,50,51,49,50,1000\n{_at(3)},IDLE,50,51,49,50,1000\n"
        f"{_at(4)},COIN,96,96,94,95,1000\n"  # reaches the resting buy at 95
        f"{_at(5)},IDLE,50,51,49,50,1000\n{_at(6)},IDLE,50,51,49,50,1000\n"
    )
    md_ctx = Ctx("md", START + timedelta(minutes=7))
    result = md_book.import_bars(store, md_ctx, str(bars))

    def failing(*args: Any, **kw: Any) -> Any:
        raise RuntimeError("the disk went away")

    with monkeypatch.context() as m:  # the bar that acts fails: it alone is rolled back
        m.setattr(order_book, "_fill_from_bar", failing)
        with pytest.raises(RuntimeError):
            order_book.fill_resting(store, md_ctx, result.import_id)
    assert _worked(store, result.import_id) == 2
    writes: list[int] = []

    def count(conn: Any) -> None:
        if conn.info.get("write"):
            writes.append(1)

    event.listen(store.engine, "commit", count)
    try:
        filled = order_book.fill_pending(store, md_ctx)
    finally:
        event.remove(store.engine, "commit", count)
    assert _worked(store, result.import_id) == 5
    assert [o.order_id for o in filled] == [placed.order_id]
    assert filled[0].status is OrderStatus.FILLED
    # the acting bar in its own transaction, the two idle bars after it in one
    assert len(writes) == 2, writes
