"""A bar filling a cash account's resting orders asks, for each fill, what the account's older
live buy orders hold (time priority). It reads them once per bar and keeps them as the bar's
fills change them (order_book._BarHolds). At every fill, on both backends, the kept sum equals
a fresh read of every older live buy of the account (order_book.live_buy_holds) at that moment,
on cash accounts with many resting orders of every type (limits, stops, stop-limits, buys and
sales, some already partly filled, some on an external venue, one with a replace pending) that
one bar partly fills, with and without a paper commission. (The state oracle's random books
seldom fill resting orders from bars: they do not exercise this.)"""

from __future__ import annotations

import random
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal, localcontext
from pathlib import Path

import pytest

from oms import book, lots, md_book, order_book, risk_limits
from oms.book import Ctx
from oms.errors import Refused
from oms.order_book import OrderRequest
from oms.orders import Order
from oms.refdata import make_account, make_instrument
from oms.store import Store
from oms.values import OrdType, Side, TimeInForce
from tests.conftest import BookTemplates
from tests.integration.test_submission_state_oracle import NOW, fresh_store


@dataclass
class Seen:
    calls: int = 0
    after_change: int = 0  # calls on holds that a fill earlier in the bar had changed
    changed: set[int] = field(default_factory=set)


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> Seen:
    """Every _BarHolds.older answer compared with a fresh read on the bar's connection."""
    seen = Seen()
    older, changed = order_book._BarHolds.older, order_book._BarHolds.changed

    def older_checked(self: order_book._BarHolds, order: Order, currency: str) -> Decimal:
        got = older(self, order, currency)
        fresh = order_book.live_buy_holds(self.conn, order.account, currency)
        with localcontext(lots.CONTEXT):
            want = sum((v for k, v in fresh.items() if k < order.order_id), Decimal(0))
        assert got == want, (order.order_id, got, want)
        seen.calls += 1
        seen.after_change += id(self) in seen.changed
        return got

    def changed_seen(self: order_book._BarHolds, order: Order, currency: str) -> None:
        seen.changed.add(id(self))
        changed(self, order, currency)

    monkeypatch.setattr(order_book._BarHolds, "older", older_checked)
    monkeypatch.setattr(order_book._BarHolds, "changed", changed_seen)
    return seen


@pytest.mark.parametrize(("seed", "commission"), [(1, False), (2, True), (3, True)])
def test_kept_holds_are_a_fresh_read_through_a_bar_of_many_fills(
    db_url: str,
    book_templates: BookTemplates,
    checked: Seen,
    tmp_path: Path,
    seed: int,
    commission: bool,
) -> None:
    with fresh_store(db_url, tmp_path, book_templates) as store:
        one_bar_many_fills(store, tmp_path, random.Random(seed), commission)
        with store.read() as conn:
            mine = order_book.list_orders(conn, account="C")
    filled = [o for o in mine if o.cum_qty > 0]
    assert checked.after_change >= 10, checked  # the kept sums were exercised, not re-read
    assert len(filled) >= 10 and any(o.live for o in mine)  # the share or the cash ran out


def one_bar_many_fills(store: Store, tmp: Path, rnd: random.Random, commission: bool) -> None:
    at = NOW - timedelta(minutes=30)
    ctx = Ctx("setup", at)
    book.add_instruments(store, ctx, [make_instrument(s, "24/7", "USD") for s in ("X", "Y")])
    book.open_account(store, ctx, make_account("C", "USD", None, "cash", None))
    book.deposit(store, ctx, "C", Decimal(rnd.randint(450_000, 600_000)), None)
    for name, value in {"max-orders-per-window": "1000", "max-order-quantity": "1000000"}.items():
        risk_limits.set_limit(store, ctx, name, value)
    if commission:
        order_book.set_paper_term(store, ctx, "commission-bps", "7")
        order_book.set_paper_term(store, ctx, "commission-min", "1.25")

    def bars(when: str, *rows: str) -> None:
        path = tmp / f"bars{when}.csv"
        path.write_text("time,symbol,open,high,low,close,volume\n" + "".join(rows))
        t = NOW + timedelta(minutes=int(when))
        done = md_book.import_bars(store, Ctx("md", t + timedelta(seconds=1)), str(path))
        order_book.fill_resting(store, Ctx("md", t + timedelta(seconds=1)), done.import_id)

    bars("-20", f"{(NOW - timedelta(minutes=20)):%Y-%m-%dT%H:%M:%SZ},X,100,101,99,100,1000\n",
         f"{(NOW - timedelta(minutes=20)):%Y-%m-%dT%H:%M:%SZ},Y,50,51,49,50,1000\n")  # fmt: skip
    submit_at = NOW - timedelta(minutes=15)
    n = 0

    def order(
        symbol: str, qty: int, kind: OrdType, *, limit: str | None, stop: str | None,
        venue: str, side: Side,
    ) -> None:  # fmt: skip
        nonlocal n
        n += 1
        req = OrderRequest(
            "C", symbol, side, Decimal(qty), kind, TimeInForce.GTC,
            None if limit is None else Decimal(limit), None if stop is None else Decimal(stop),
            client_order_id=f"C{n}", venue=venue,
        )  # fmt: skip
        order_book.submit(store, Ctx("ops", submit_at + timedelta(seconds=n)), req)

    for _ in range(60):
        kind = rnd.choice([OrdType.LIMIT, OrdType.STOP, OrdType.STOP_LIMIT])
        symbol = rnd.choice("XXXY")
        ref = 100 if symbol == "X" else 50
        limit = f"{ref - 2 + rnd.randint(0, 12) / 4}" if kind is not OrdType.STOP else None
        stop = f"{ref + rnd.randint(0, 8) / 4}" if kind is not OrdType.LIMIT else None
        side = Side.SELL if rnd.random() < 0.1 else Side.BUY  # a sale with nothing held: refused
        venue = "XEXT" if rnd.random() < 0.15 else "paper"
        with suppress(order_book.RiskRejected, Refused):
            order(symbol, rnd.randint(5, 60), kind, limit=limit, stop=stop, venue=venue, side=side)
    # a first bar fills some in part (small volume): later fills count what filled already
    bars("-10", f"{(NOW - timedelta(minutes=10)):%Y-%m-%dT%H:%M:%SZ},X,99,99,97,98,300\n")
    # a replace pending on an external venue's buy (it holds the larger of both terms)
    ext = OrderRequest("C", "X", Side.BUY, Decimal(30), OrdType.LIMIT, TimeInForce.GTC,
                       Decimal(95), client_order_id="E1", venue="XEXT")  # fmt: skip
    placed = order_book.submit(store, Ctx("ops", NOW - timedelta(minutes=9)), ext).order
    order_book.amend(store, Ctx("ops", NOW - timedelta(minutes=8)), str(placed.order_id),
                     quantity=Decimal(60), limit_price=Decimal(96))  # fmt: skip
    # the bar that crosses every limit and stop of X, with a share for some of them
    volume = rnd.randint(6_000, 16_000)
    bars("-5", f"{(NOW - timedelta(minutes=5)):%Y-%m-%dT%H:%M:%SZ},X,98,103,97,102,{volume}\n")
