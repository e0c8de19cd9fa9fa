"""Order totals on both backends: filled from the live orders by the migration that adds them,
found by their index, and read in a number of rows that does not grow with the account's live
orders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import text

from oms import book, md_book, order_book, risk_limits, submission
from oms.book import Ctx
from oms.order_book import OrderRequest
from oms.refdata import make_account, make_instrument
from oms.schema import order_totals
from oms.store import Store, alembic_config
from oms.values import OrdType, Side, TimeInForce


def _book(store: Store, tmp_path: Path) -> Ctx:
    ctx = Ctx("t", datetime.now(UTC))
    book.add_instruments(store, ctx, [make_instrument("COIN", "24/7", "USD")])
    book.open_account(store, ctx, make_account("A1", "USD", None, "margin", None))
    book.deposit(store, ctx, "A1", Decimal(10) ** 9, None)
    at = (ctx.now - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    bars = tmp_path / "bars.csv"
    bars.write_text(f"time,symbol,open,high,low,close,volume\n{at},COIN,100,100,100,100,10\n")
    md_book.import_bars(store, ctx, str(bars))
    risk_limits.set_limit(store, ctx, "max-orders-per-window", "100000")
    return ctx


def _order(
    store: Store, ctx: Ctx, side: Side, qty: int, limit: int | None, venue: str = "paper"
) -> str:
    req = OrderRequest(
        "A1",
        "COIN",
        side,
        Decimal(qty),
        OrdType.LIMIT if limit is not None else OrdType.MARKET,
        TimeInForce.GTC,
        None if limit is None else Decimal(limit),
        venue=venue,
    )
    return str(order_book.submit(store, ctx, req).order.order_id)


def _resting(store: Store, ctx: Ctx, n: int, first: int = 1) -> None:
    """n limit orders, sales and buys in turn, of first, first + 1, ... units (no duplicates)."""
    for i in range(n):
        _order(store, ctx, Side.BUY if i % 2 else Side.SELL, first + i, 90 if i % 2 else 110)


def test_the_migration_fills_the_totals_from_the_live_orders(
    store: Store, tmp_path: Path
) -> None:
    ctx = _book(store, tmp_path)
    _resting(store, ctx, 6)
    _order(store, ctx, Side.BUY, 3, None, venue="XBRK")  # priced each time: at the last price
    with store.read() as conn:
        before = order_book.stored_totals(conn)
        reserved = order_book.reserved_cash(conn, "A1", "USD")
    kept = before[("A1", "COIN", "buy")]
    assert kept.shown() == (Decimal(2 + 4 + 6 + 3), Decimal(90 * 12))
    assert reserved > Decimal(90 * 12)  # and the market order at the last price plus a buffer
    with store.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0014")
    with store.engine.begin() as conn:
        command.upgrade(alembic_config(conn), "head")
    with store.read() as conn:
        assert order_book.stored_totals(conn) == before
        assert order_book.reserved_cash(conn, "A1", "USD") == reserved
        assert order_book.totals_drift(conn) == []


def test_the_open_quantity_of_an_open_replace_is_made_again_by_its_migration(
    store: Store, tmp_path: Path
) -> None:
    """Revision 0017 counts an order with a replace open at the larger of its leaves and the
    replace's (order_book.open_quantity): its downgrade makes the totals again as 0016 counted
    them (the leaves: the older code moves the rows by that), its upgrade as it counts them."""
    ctx = _book(store, tmp_path)
    order_id = _order(store, ctx, Side.SELL, 50, 110, venue="XBRK")
    drop = tmp_path / "ack.fix"
    drop.write_text(f"35=8|11={order_id}|17=E0|150=0|39=0\n")
    assert order_book.apply_reports(store, ctx, str(drop)).applied == 1
    order_book.amend(store, ctx, order_id, quantity=Decimal(80), new_client_order_id="R1")
    with store.read() as conn:
        assert order_book.stored_totals(conn)[("A1", "COIN", "sell")].shown()[0] == 80
    with store.engine.begin() as conn:  # its downgrade counts them as 0016 did: the leaves
        command.downgrade(alembic_config(conn), "0016")
    with store.read() as conn:
        assert order_book.stored_totals(conn)[("A1", "COIN", "sell")].shown()[0] == 50
        assert order_book.stored_totals(conn) == order_book.computed_totals(
            conn, leaves_only=True
        )
    with store.engine.begin() as conn:
        command.upgrade(alembic_config(conn), "head")
    with store.read() as conn:
        assert order_book.totals_drift(conn) == []
        assert order_book.stored_totals(conn)[("A1", "COIN", "sell")].shown()[0] == 80


def test_a_drift_is_found_and_named(store: Store, tmp_path: Path) -> None:
    ctx = _book(store, tmp_path)
    _resting(store, ctx, 2)
    with store.write() as conn:
        conn.execute(order_totals.update().where(order_totals.c.side == "buy").values(held=1))
        (drift,) = order_book.totals_drift(conn)
    assert drift == (
        "order totals of A1 COIN buy: stored open 2 held 1 (0:1; 0:1), the live orders make "
        "open 2 held 180 (0:1; 0:1)"
    )


def test_the_live_buys_priced_each_time_are_found_by_their_index(store: Store) -> None:
    sql = submission._PRICED_EACH_SQL[store.dialect == "postgresql"]
    with store.read() as conn:
        if store.dialect == "sqlite":
            plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", ("A1",)).all()
        else:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            conn.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
            plan = conn.exec_driver_sql(
                "EXPLAIN " + sql.replace("?", "%s"), ("A1",)
            ).all()
    assert "ix_orders_priced_each" in " ".join(str(row) for row in plan), plan


@pytest.fixture
def rows_read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The rows each statement of a submission group read."""
    counts: list[int] = []
    real = submission.Db.all

    def counting(self: submission.Db, sql: str, params: Any = ()) -> list[Any]:
        rows = real(self, sql, params)
        counts.append(len(rows))
        return rows

    monkeypatch.setattr(submission.Db, "all", counting)
    return counts


def test_a_submission_reads_as_many_rows_with_300_resting_orders_as_with_2(
    store: Store, tmp_path: Path, rows_read: list[int]
) -> None:
    ctx = _book(store, tmp_path)
    _resting(store, ctx, 2)
    _order(store, ctx, Side.BUY, 3, None, venue="XBRK")
    rows_read.clear()
    _order(store, ctx, Side.BUY, 1000, 91)
    few = sum(rows_read)
    _resting(store, ctx, 300, first=10)
    rows_read.clear()
    _order(store, ctx, Side.BUY, 1001, 91)
    assert sum(rows_read) == few
    with store.read() as conn:
        assert order_book.totals_drift(conn) == []
        state = conn.execute(text("SELECT count(*) FROM orders WHERE status = 'new'")).scalar()
    assert state == 304  # the 2 + 300 resting and the two of 1,000 and 1,001 (the market one waits)
