"""A command that waited for the book's lock is dated when it went on, not when it started (a
race audit: on SQLite, which does not grant its lock in turn, a deposit that waited 7 s behind
an execution import was overtaken by a later deposit, then refused as "the clock reads ...,
before the account's last entry" with every clock right; a cancel, by a fill booked while it
waited). The edge gives the command its clock (Ctx.clock); once the lock is held the time is
read again. A clock really behind (TIEOUT_NOW pinned before what is booked) is still refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from oms import access, book, md_book, order_book
from oms.book import Ctx
from oms.errors import Refused
from oms.refdata import make_account, make_instrument
from oms.schema import audit_events, journal_entries
from oms.store import Store
from oms.values import OrdType, Side

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
AHEAD = T0 + timedelta(seconds=7)  # what the writer ahead of the waiting command booked
GRANTED = T0 + timedelta(seconds=8)  # when the waiting command got the lock
LATER = T0 + timedelta(seconds=9)


def _book(store: Store, tmp_path: Path) -> None:
    ctx = Ctx("ops", T0 - timedelta(minutes=5))
    book.add_instruments(store, ctx, [make_instrument("COIN", "24/7", "USD")])
    book.open_account(store, ctx, make_account("C1", "USD", None, "cash", None))
    book.deposit(store, ctx, "C1", Decimal("100000"), None)
    bars = tmp_path / "bars.csv"
    at = f"{T0 - timedelta(minutes=1):%Y-%m-%dT%H:%M:%SZ}"
    bars.write_text(f"time,symbol,open,high,low,close,volume\n{at},COIN,10,10,10,10,100\n")
    md_book.import_bars(store, ctx, str(bars))


def test_a_deposit_that_waited_for_the_lock_is_booked_after_the_one_ahead(
    store: Store, tmp_path: Path
) -> None:
    _book(store, tmp_path)
    book.deposit(store, Ctx("ops", AHEAD), "C1", Decimal("1"), None)  # the one ahead
    pinned = Ctx("ops", T0, clock=lambda: T0)  # a clock that is behind: still refused
    with pytest.raises(Refused) as refused:
        book.deposit(store, pinned, "C1", Decimal("1"), None)
    assert refused.value.code == "clock_behind"
    waited = Ctx("ops", T0, clock=lambda: GRANTED)
    moved = book.deposit(store, waited, "C1", Decimal("1"), None)
    j = journal_entries.c
    with store.read() as conn:
        posted = conn.execute(select(j.posted_at).where(j.entry_id == moved.entry_id)).scalar()
    assert (moved.balance.balance, posted) == (Decimal("100002"), GRANTED)


def test_a_cancel_that_waited_for_the_lock_answers_the_order_as_it_then_stands(
    store: Store, tmp_path: Path
) -> None:
    _book(store, tmp_path)
    req = order_book.OrderRequest(
        account="C1", symbol="COIN", side=Side.BUY, quantity=Decimal(1),
        type=OrdType.LIMIT, limit_price=Decimal("9"), client_order_id="L1", venue="EXT",
    )  # fmt: skip
    placed = order_book.submit(store, Ctx("ops", AHEAD), req).order  # booked while it waited
    with pytest.raises(Refused) as refused:
        order_book.cancel(store, Ctx("ops", T0, clock=lambda: T0), placed.order_id)
    assert refused.value.code == "clock_behind"
    done = order_book.cancel(store, Ctx("ops", T0, clock=lambda: GRANTED), placed.order_id)
    assert (done.order.status.value, done.order.updated_at) == ("pending_cancel", GRANTED)
    # a refusal after the wait is audited when it was refused (it was dated when the command
    # started: before the events it answers, in the audit trail's order)
    with pytest.raises(Refused):
        order_book.cancel(store, Ctx("ops", T0, clock=lambda: LATER), placed.order_id)
    with store.read() as conn:
        at = conn.execute(
            select(audit_events.c.at)
            .where(audit_events.c.action == "order.cancel_refused")
            .order_by(audit_events.c.seq.desc())
            .limit(1)
        ).scalar()
    assert at == LATER


def test_a_withdrawal_that_waited_for_the_lock_is_held_to_the_destination_then(
    store: Store, tmp_path: Path
) -> None:
    """A new destination's waiting period is judged at the time the withdrawal went on (it
    was judged at its start: a withdrawal that waited past the period was refused as
    destination_too_new, and audited before what it waited behind)."""
    _book(store, tmp_path)
    access.add_destination(store, Ctx("ops", T0 - timedelta(minutes=4)), "C1", "BANK", None)
    with store.read() as conn:
        usable = access._active_destination(conn, "C1", "BANK").usable_from  # type: ignore[union-attr]
    early = Ctx("ops", usable - timedelta(seconds=1), clock=lambda: usable - timedelta(seconds=1))
    with pytest.raises(Refused) as refused:
        access.withdraw(store, early, "C1", Decimal("1"), "BANK")
    assert refused.value.code == "destination_too_new"
    waited = Ctx("ops", usable - timedelta(seconds=1), clock=lambda: usable + timedelta(seconds=1))
    assert access.withdraw(store, waited, "C1", Decimal("1"), "BANK").balance.balance == Decimal(
        "99999"
    )
