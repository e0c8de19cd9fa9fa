"""Several processes racing the same client order ids create each order exactly once: they
start together (a barrier, once each has its connection and its imports), submit the same
ids, half of them in the same order (colliding on every id at once) and half in their own,
and say for each id whether they made the order or got the first one back as a duplicate."""

import multiprocessing
import queue
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from oms import book, md_book, order_book
from oms.book import Ctx
from oms.refdata import make_account, make_instrument
from oms.schema import executions, orders
from oms.store import Store
from oms.values import Side

ORDERS = 15
RACERS = 4


def _racer(url: str, seed: int, start: Any, said: Any) -> None:
    store = Store.open(url)
    with store.read() as conn:  # connected, and the modules a submission needs imported
        conn.execute(sa.select(orders.c.order_id).limit(1)).all()
    start.wait(60)
    for i in range(ORDERS):
        n = (i + seed) % ORDERS
        req = order_book.OrderRequest(account="A1", symbol="COIN", side=Side.BUY,
                                      quantity=Decimal(n + 1), client_order_id=f"C{n}")
        result = order_book.submit(store, Ctx(f"p{seed}", datetime.now(UTC)), req)
        assert result.order.client_order_id == f"C{n}"
        said.put((f"C{n}", seed, result.duplicate, result.order.order_id))


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
    start, said = spawn.Barrier(RACERS), spawn.Queue()
    seeds = [0, 0, 5, 10]  # two in the same order: the same id at the same moment
    procs = [spawn.Process(target=_racer, args=(db_url, k, start, said)) for k in seeds]
    for p in procs:
        p.start()
    answers: list[tuple[str, int, bool, str]] = []
    deadline = time.monotonic() + 180
    while len(answers) < RACERS * ORDERS and time.monotonic() < deadline:
        try:
            answers.append(said.get(timeout=1))
        except queue.Empty:
            if not any(p.is_alive() for p in procs) and said.empty():
                break  # a racer failed: its exit code says so below
    for p in procs:
        p.join(180)
        assert p.exitcode == 0
    # each id: made by exactly one process, given back to the three others as that order
    for n in range(ORDERS):
        got = [(dup, oid) for cid, _, dup, oid in answers if cid == f"C{n}"]
        assert len(got) == RACERS
        assert [dup for dup, _ in got].count(False) == 1, (f"C{n}", got)
        assert len({oid for _, oid in got}) == 1
    with store.read() as conn:
        n_orders = conn.execute(sa.select(sa.func.count()).select_from(orders)).scalar()
        n_execs = conn.execute(sa.select(sa.func.count()).select_from(executions)).scalar()
        ids = sorted(conn.execute(sa.select(orders.c.client_order_id)).scalars())
        cash = book.cash_balance(conn, "A1").balance
    assert n_orders == ORDERS == n_execs
    assert ids == sorted(f"C{n}" for n in range(ORDERS))
    assert cash == Decimal("1000000") - 10 * sum(range(1, ORDERS + 1))
