"""Several processes racing the same client order ids create each order exactly once."""

import multiprocessing
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from oms import book, md_book, order_book
from oms.book import Ctx
from oms.refdata import make_account, make_instrument
from oms.schema import executions, orders
from oms.store import Store
from oms.values import Side

ORDERS = 15


def _racer(url: str, seed: int) -> None:
    store = Store.open(url)
    for i in range(ORDERS):
        n = (i + seed) % ORDERS  # each process in its own order, so they collide in every way
        req = order_book.OrderRequest(account="A1", symbol="COIN", side=Side.BUY,
                                      quantity=Decimal(n + 1), client_order_id=f"C{n}")
        result = order_book.submit(store, Ctx(f"p{seed}", datetime.now(UTC)), req)
        assert result.order.client_order_id == f"C{n}"


def test_racing_submissions_make_each_order_once(store: Store, db_url: str,
                                                 tmp_path: Path) -> None:
    ctx = Ctx("t", datetime.now(UTC))
    book.add_instruments(store, ctx, [make_instrument("COIN", "24/7", "USD")])
    book.open_account(store, ctx, make_account("A1", "USD", None, "margin", None))
    book.deposit(store, ctx, "A1", Decimal("1000000"), None)
    at = (datetime.now(UTC) - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    bars = tmp_path / "bars.csv"
    bars.write_text(f"time,symbol,open,high,low,close,volume\n{at},COIN,10,10,10,10,100\n")
    md_book.import_bars(store, ctx, str(bars))
    spawn = multiprocessing.get_context("spawn")
    procs = [spawn.Process(target=_racer, args=(db_url, k * 4)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(180)
        assert p.exitcode == 0
    with store.read() as conn:
        n_orders = conn.execute(sa.select(sa.func.count()).select_from(orders)).scalar()
        n_execs = conn.execute(sa.select(sa.func.count()).select_from(executions)).scalar()
        ids = sorted(conn.execute(sa.select(orders.c.client_order_id)).scalars())
        cash = book.cash_balance(conn, "A1").balance
    assert n_orders == ORDERS == n_execs
    assert ids == sorted(f"C{n}" for n in range(ORDERS))
    assert cash == Decimal("1000000") - 10 * sum(range(1, ORDERS + 1))
