"""The internal side of a recon on both backends: executions, positions and cash as canonical
frames, with corrections and busts applied."""

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl

from oms import book, executions
from oms.book import Ctx
from oms.refdata import make_account, make_instrument
from oms.store import Store
from recon import book_side
from recon.canonical import CASH, POSITIONS, TRADES

D = Decimal
DAY = date(2026, 11, 24)
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
HEADER = "exec_id,account,symbol,side,quantity,price,trade_date,venue,commission,exec_time"
CHANGES = "exec_id,account,symbol,side,quantity,price,trade_date,venue,exec_type,ref_exec_id"


def setup(store: Store, tmp_path: Path) -> None:
    ctx = Ctx("t", NOW)
    book.add_instruments(store, ctx, [make_instrument("AAPL", "XNYS", "USD"),
                                      make_instrument("MSFT", "XNYS", "USD")])
    for a in ("A1", "A2"):
        book.open_account(store, ctx, make_account(a, "USD", None, "margin", None))
    book.deposit(store, ctx, "A1", D("100000"), "wire-1")
    f = tmp_path / "execs.csv"
    f.write_text(
        f"{HEADER}\n"
        "X1,A1,AAPL,buy,100,190.25,2026-11-24,ACME,1.5,2026-11-24T15:00:00.123456Z\n"
        "X2,A1,AAPL,sell,40,191,2026-11-24,ACME,0,2026-11-24T16:00:00Z\n"
        "X3,A2,MSFT,buy,10,400,2026-11-23,ACME,0,\n"
        "X4,A2,MSFT,buy,5,401,2026-11-24,OTHER,0,\n"
        "X5,A2,MSFT,buy,7,402,2026-11-24,ACME,0,\n"
    )
    executions.import_file(store, ctx, str(f))
    g = tmp_path / "changes.csv"
    g.write_text(
        f"{CHANGES}\n"
        "C1,A1,AAPL,sell,40,191.5,2026-11-24,ACME,correct,X2\n"
        "B1,A2,MSFT,buy,7,402,2026-11-24,ACME,bust,X5\n"
    )
    executions.import_file(store, ctx, str(g))


def test_internal_trades_are_the_effective_executions_of_the_venue_and_day(
    store: Store, tmp_path: Path
) -> None:
    setup(store, tmp_path)
    with store.read() as conn:
        frame = book_side.internal_trades(conn, "ACME", DAY)
        with_old = book_side.internal_trades(conn, "ACME", DAY, extra_refs={"X3"})
    assert frame.schema == pl.Schema(TRADES)
    assert frame["ref"].to_list() == ["X1", "X2"]  # X2 corrected, X5 busted, X3 other day
    assert frame["row"].to_list() == [1, 2]
    x1, x2 = frame.to_dicts()
    assert (x1["quantity"], x1["price"], x1["commission"]) == (D(100), D("190.25"), D("1.5"))
    assert x1["exec_time"] == datetime(2026, 11, 24, 15, 0, 0, 123456, tzinfo=UTC)
    assert x1["settle_date"] == date(2026, 11, 25)
    assert (x2["side"], x2["price"]) == ("sell", D("191.5"))
    assert with_old["ref"].to_list() == ["X1", "X2", "X3"]


def test_internal_positions_on_trade_and_settlement_basis(store: Store, tmp_path: Path) -> None:
    setup(store, tmp_path)
    with store.read() as conn:
        trade = book_side.internal_positions(conn, "ACME", DAY)
        settled = book_side.internal_positions(conn, "ACME", DAY, basis="settlement")
    assert trade.schema == pl.Schema(POSITIONS)
    assert [(r["account"], r["symbol"], r["quantity"]) for r in trade.to_dicts()] == [
        ("A1", "AAPL", D(60)), ("A2", "MSFT", D(10))]
    # only X3 (traded 11-23) has settled by 11-24
    assert [(r["account"], r["symbol"], r["quantity"]) for r in settled.to_dicts()] == [
        ("A2", "MSFT", D(10))]


def test_internal_cash_movements_and_balances(store: Store, tmp_path: Path) -> None:
    setup(store, tmp_path)
    with store.read() as conn:
        moves, balances = book_side.internal_cash(conn, ["A1"], date(2026, 11, 25))
    assert moves.schema == pl.Schema(CASH)
    amounts = sorted(moves["amount"].to_list())
    assert sum(amounts) == D("100000") - D("19026.5") + D(7660)
    by_kind = {r["kind"]: r["balance"] for r in balances.to_dicts()}
    assert by_kind == {"opening_balance": D(0), "closing_balance": sum(amounts)}
