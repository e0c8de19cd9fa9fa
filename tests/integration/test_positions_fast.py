"""Positions read in bulk (oms.executions.fill_columns, oms.lots.build_positions_frame) give
exactly what the reference path gives (build_positions over executions.records), on both
backends: every figure's text (value and exponent), every cost method, as-of dates,
corrections and busts (of fills and of changes, moving a fill to another day or side)."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, literal, null, select

from oms import book, bulk, executions, lots, positions
from oms.book import Ctx
from oms.errors import BadInput
from oms.refdata import make_account, make_instrument
from oms.schema import executions as executions_table
from oms.store import Store
from oms.values import CostMethod

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DAY0 = date(2026, 11, 2)
HEADER = (
    "exec_id,account,symbol,side,quantity,price,trade_date,venue,commission,fees,exec_time,"
    "exec_type,ref_exec_id"
)


def number(rnd: random.Random, low: int, high: int, places: int) -> str:
    """A decimal text with exactly `places` places (trailing zeros kept: they set exponents)."""
    units = rnd.randint(low * 10**places, high * 10**places)
    text = str(Decimal(units).scaleb(-places))
    return "0" if units == 0 and places == 0 else text


def book_of(
    store: Store, tmp_path: Path, seed: int = 7, n: int = 400, *, corrections: bool = True
) -> None:
    ctx = Ctx("t", NOW)
    book.add_instruments(store, ctx, [make_instrument(s, "XNYS", "USD") for s in ("S1", "S2")])
    for account in ("A1", "A2"):
        book.open_account(store, ctx, make_account(account, "USD", None, "margin", None))
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        on = DAY0 + timedelta(days=rnd.randrange(6))  # not in id order: the fast path sorts
        at = "" if rnd.random() < 0.2 else f"{on}T14:{rnd.randrange(60):02d}:00.{i:06d}Z"
        rows.append(
            f"X{i},{rnd.choice(['A1', 'A1', 'A2'])},{rnd.choice(['S1', 'S2'])},"
            f"{rnd.choice(['buy', 'sell'])},{number(rnd, 1, 30, rnd.randrange(4))},"
            f"{number(rnd, 1, 500, rnd.randrange(5))},{on},V{i % 2},"
            f"{number(rnd, 0, 3, rnd.randrange(3))},{number(rnd, 0, 1, rnd.randrange(3))},{at},"
            "fill,"
        )
    fills = tmp_path / "fills.csv"
    fills.write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    executions.import_file(store, ctx, str(fills))
    if not corrections:
        return
    # corrections and busts (same account, symbol and venue), some naming earlier changes,
    # some moving a fill to another day or side
    names = [(f"X{i}", *r.split(",")[1:3], f"V{i % 2}") for i, r in enumerate(rows)]
    changes = []
    for k in range(40):
        ref, account, symbol, venue = rnd.choice(names)
        kind = "bust" if rnd.random() < 0.3 else "correct"
        on = DAY0 + timedelta(days=rnd.randrange(6))
        changes.append(
            f"C{k},{account},{symbol},{rnd.choice(['buy', 'sell'])},"
            f"{number(rnd, 1, 30, rnd.randrange(3))},{number(rnd, 1, 500, 2)},{on},{venue},"
            f"0.5,0,,{kind},{ref}"
        )
        names.append((f"C{k}", account, symbol, venue))
    fixes = tmp_path / "changes.csv"
    fixes.write_text(HEADER + "\n" + "\n".join(changes) + "\n")
    executions.import_file(store, ctx, str(fixes))


def exact(built: dict[tuple[str, str], lots.Position]) -> Any:
    return {
        key: (
            str(p.quantity),
            str(p.cost_basis),
            str(p.realized_pnl),
            str(p.commissions),
            str(p.fees),
            [
                (lot.opened, str(lot.quantity), str(lot.price), str(lot.cost_basis))
                for lot in p.lots
            ],
        )
        for key, p in built.items()
    }


def reference(store: Store, account: str, as_of: date | None, method: CostMethod) -> Any:
    with store.read() as conn:
        fills = lots.effective_fills(executions.records(conn, account=account))
    if as_of is not None:
        fills = [f for f in fills if f.trade_date <= as_of]
    return exact(lots.build_positions(fills, method))


def fast(store: Store, account: str, as_of: date | None, method: CostMethod) -> Any:
    with store.read() as conn:
        lines = positions.positions(conn, account, as_of=as_of, method=method)
    return exact({(line.position.account, line.position.symbol): line.position for line in lines})


@pytest.mark.parametrize("method", list(CostMethod))
def test_bulk_positions_are_the_reference_positions(
    store: Store, tmp_path: Path, method: CostMethod
) -> None:
    book_of(store, tmp_path)
    with store.read() as conn:
        plain, changes = executions.fill_columns(conn, "A1")
    assert changes  # the book has corrections and busts in A1
    assert plain.height + len(changes) == len(executions_of(store, "A1"))
    for account in ("A1", "A2"):
        for as_of in (None, DAY0 + timedelta(days=2), DAY0 - timedelta(days=1)):
            assert fast(store, account, as_of, method) == reference(store, account, as_of, method)


def executions_of(store: Store, account: str) -> list[lots.ExecRecord]:
    with store.read() as conn:
        return executions.records(conn, account=account)


def test_the_columns_are_what_the_records_hold(store: Store, tmp_path: Path) -> None:
    book_of(store, tmp_path, seed=11, n=100)
    with store.read() as conn:
        plain, changes = executions.fill_columns(conn, "A1")
        records = executions.records(conn, account="A1")
    by_seq = {r.seq: r for r in records}
    mine = lots.fill_frame([by_seq[s] for s in plain["seq"].to_list()])
    assert plain.sort("seq").equals(mine.sort("seq"))
    assert {r.seq for r in changes} | set(plain["seq"].to_list()) == set(by_seq)


def test_the_columns_do_not_depend_on_the_sessions_date_style(
    store: Store, tmp_path: Path
) -> None:
    book_of(store, tmp_path, seed=5, n=60, corrections=False)  # plain fills: read as text only
    with store.read() as conn:
        expected, _ = executions.fill_columns(conn, "A1")
    with store.read() as conn:
        if conn.dialect.name == "postgresql":  # a cast would print dates as 24/11/2026
            conn.exec_driver_sql("SET LOCAL DateStyle = 'SQL, DMY'")
        plain, _ = executions.fill_columns(conn, "A1")
    assert plain.equals(expected)


def test_sqlite_past_its_string_limit_reads_in_chunks(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if store.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's string limit")  # the PostgreSQL run is the test above
    book_of(store, tmp_path, n=300)
    expected = fast(store, "A1", None, CostMethod.FIFO)
    monkeypatch.setattr(bulk, "SQLITE_CHUNK_ROWS", 40)
    with store.read() as conn:
        raw = conn.connection.driver_connection
        assert isinstance(raw, sqlite3.Connection)
        old = raw.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 8000)  # all rows need about 20,000
        try:
            with pytest.raises(Exception, match="too big"):
                conn.exec_driver_sql(
                    "SELECT group_concat(exec_id || symbol || quantity || price || exec_type, "
                    "'....................') FROM executions"
                ).all()
            lines = positions.positions(conn, "A1")
        finally:
            raw.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, old)
    assert exact({(ln.position.account, ln.position.symbol): ln.position for ln in lines}) == (
        expected
    )


def test_text_survives_the_bulk_read(store: Store) -> None:
    text = 'a,"b"\nc'
    query = select(literal(text).label("x"), null().label("y"), literal("").label("z"))
    with store.read() as conn:
        frame = bulk.text_frame(conn, query, ["x", "y", "z"])
    assert frame.rows() == [(text, None, "")]


def test_a_row_that_is_not_a_valid_fill_is_refused_as_the_reference_refuses_it(
    store: Store, tmp_path: Path
) -> None:
    book_of(store, tmp_path, n=50)
    with store.write() as conn:
        ids = select(executions_table.c.id).order_by(executions_table.c.id.desc())
        next_id = conn.execute(ids).scalar()
        assert next_id is not None
        conn.execute(
            insert(executions_table).values(
                id=next_id + 1,
                exec_id="BAD1",
                venue="V0",
                account="A1",
                symbol="S1",
                side="sell",
                quantity=Decimal("0"),
                price=Decimal("1"),
                currency="USD",
                trade_date=DAY0,
                settle_date=DAY0,
                exec_time=None,
                commission=Decimal("0"),
                fees=Decimal("0"),
                exec_type="fill",
                source="test",
                booked_at=NOW,
                actor="t",
            )
        )
    with store.read() as conn:
        with pytest.raises(BadInput, match="quantity 0 must be greater than zero") as err:
            positions.positions(conn, "A1")
        with pytest.raises(BadInput) as ref:
            lots.build_positions(lots.effective_fills(executions.records(conn, account="A1")))
    assert str(err.value) == str(ref.value)
    assert "V0/BAD1" in str(err.value)
