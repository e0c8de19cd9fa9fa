"""Running sums (oms.submission, table running_sums): a single submission reads an account's
position and cash as the kept sum plus the rows after it, not its whole history, on both
backends. The state oracle (test_submission_state_oracle) proves the figures equal the book's
readers on random books with kept sums everywhere; these tests show the kept sum is what is
read, when it is kept, and that a correction after it is still resolved from every row."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from oms import book, executions, lots, md_book, order_book, submission
from oms.book import Ctx
from oms.order_book import OrderRequest
from oms.refdata import make_account, make_instrument
from oms.schema import executions as executions_table
from oms.schema import running_sums
from oms.store import Store
from oms.values import Side

NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
HEADER = "exec_id,account,symbol,side,quantity,price,trade_date,venue,commission,fees"


def setup(store: Store, tmp: Path, n: int) -> Decimal:
    """A 24/7 instrument, a margin account with cash, n imported executions of it (a buy
    every third, sells otherwise, 1..7 units) and a fresh last price; returns the position."""
    ctx = Ctx("ops", NOW)
    book.add_instruments(store, ctx, [make_instrument("COIN", "24/7", "USD")])
    book.open_account(store, ctx, make_account("A1", "USD", None, "margin", None))
    book.deposit(store, ctx, "A1", Decimal(10_000_000), None)
    rows, held = [], Decimal(0)
    for i in range(n):
        side, qty = ("buy" if i % 3 else "sell"), Decimal(i % 7 + 1)
        held += qty if side == "buy" else -qty
        rows.append(f"X{i},A1,COIN,{side},{qty},10.5,{date(2026, 3, 3)},V,0,0")
    path = tmp / "execs.csv"
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    executions.import_file(store, ctx, str(path))
    at = (NOW - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    bars = tmp / "bars.csv"
    bars.write_text(f"time,symbol,open,high,low,close,volume\n{at},COIN,10,10,10,10,99999\n")
    md_book.import_bars(store, ctx, str(bars))
    return held


def kept(store: Store) -> dict[tuple[str, str, str], tuple[int, Decimal]]:
    with store.read() as conn:
        return {
            (k, o, i): (int(t), Decimal(v)) for k, o, i, t, v in conn.execute(select(running_sums))
        }


def group_position(store: Store) -> Decimal:
    with store.read() as conn, localcontext(lots.CONTEXT):
        group = submission.Group(conn, Ctx("risk", NOW))
        return group.position(group.account("A1"), "COIN")


def last_exec(store: Store) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.max(executions_table.c.id))).scalar_one())


def test_a_single_submission_keeps_the_sum_and_the_next_reads_only_what_follows(
    store: Any, tmp_path: Path
) -> None:
    held = setup(store, tmp_path, 300)  # more rows than KEEP_AFTER
    assert kept(store) == {}  # an import keeps nothing: only submissions do, when they read much
    through = last_exec(store)
    order_book.submit(store, Ctx("trader", NOW), OrderRequest("A1", "COIN", Side.BUY, Decimal(2)))
    assert kept(store)[("position", "A1", "COIN")] == (through, held)
    assert group_position(store) == held + 2  # the kept sum and the fill after it
    # the kept sum is what is read: a (deliberately) wrong one shows through
    with store.write() as conn:
        conn.execute(update(running_sums).values(total="1000000"))
    assert group_position(store) == Decimal(1_000_002)


def test_a_correction_after_the_kept_sum_is_resolved_from_every_row(
    store: Any, tmp_path: Path
) -> None:
    held = setup(store, tmp_path, 300)
    order_book.submit(store, Ctx("trader", NOW), OrderRequest("A1", "COIN", Side.BUY, Decimal(2)))
    # X1 (a buy of 2) corrected to 5, X2 (a buy of 3) busted: after the kept sum, about rows
    # before it
    path = tmp_path / "fix.csv"
    path.write_text(
        HEADER + ",exec_type,ref_exec_id\n"
        f"C1,A1,COIN,buy,5,10.5,{date(2026, 3, 3)},V,0,0,correct,X1\n"
        f"B1,A1,COIN,buy,3,10.5,{date(2026, 3, 3)},V,0,0,bust,X2\n"
    )
    executions.import_file(store, Ctx("ops", NOW), str(path))
    expected = held + 2 + 3 - 3
    assert group_position(store) == expected
    order_book.submit(store, Ctx("trader", NOW), OrderRequest("A1", "COIN", Side.BUY, Decimal(1)))
    # resolved once from every row and kept: the next reads start after the correction
    assert kept(store)[("position", "A1", "COIN")] == (last_exec(store) - 1, expected)
    assert group_position(store) == expected + 1


def test_cash_is_kept_after_many_postings(store: Any, tmp_path: Path) -> None:
    setup(store, tmp_path, 3)
    ctx = Ctx("ops", NOW)
    for _ in range(submission.KEEP_AFTER):
        book.deposit(store, ctx, "A1", Decimal("0.01"), None)
    order_book.submit(store, Ctx("trader", NOW), OrderRequest("A1", "COIN", Side.BUY, Decimal(1)))
    with store.read() as conn:
        balance = book.cash_balance(conn, "A1").balance
    through, total = kept(store)[("cash", "A1:cash", "USD")]
    # the sum kept is the balance before the order's own fill (10 USD, no commission)
    assert total == balance + 10
    with store.read() as conn, localcontext(lots.CONTEXT):
        group = submission.Group(conn, Ctx("risk", NOW))
        assert group.cash(group.account("A1"), "USD") == balance
    assert through > 0
