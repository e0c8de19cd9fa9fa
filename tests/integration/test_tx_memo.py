"""What a transaction has read once (oms.store.tx_memo: an instrument, the paper terms, the risk
limits, the settlement cycles) it does not ask the database for again, and nothing of it
outlives the transaction or a write of it: the next transaction, on this connection or another,
reads the book as it then is. On both backends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, event

from oms import book, paper, risk_limits
from oms.book import Ctx, put_setting
from oms.refdata import make_instrument
from oms.store import Store, tx_memo

CTX = Ctx("tester", datetime(2026, 11, 24, 15, tzinfo=UTC))


@contextmanager
def statements(store: Store) -> Iterator[list[str]]:
    """The SQL statements the store's engine runs inside the block."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", note)


def _reads(seen: list[str], table: str) -> int:
    return sum(1 for s in seen if s.lstrip().upper().startswith("SELECT") and table in s)


def test_a_transaction_reads_an_instrument_and_the_settings_once(store: Store) -> None:
    book.add_instruments(store, CTX, [make_instrument("AAA", "24/7", "USD")])
    with store.write() as conn, statements(store) as seen:
        for _ in range(3):
            assert book.get_instrument(conn, "AAA").symbol == "AAA"
            paper.load_terms(conn)
            risk_limits.load_limits(conn)
            book.settlement_cycles(conn)
    assert _reads(seen, "instruments") == 1
    assert _reads(seen, "settings") == 3  # the terms, the limits, the cycles: each once


def test_the_next_transaction_reads_what_another_committed(store: Store) -> None:
    book.add_instruments(store, CTX, [make_instrument("AAA", "24/7", "USD")])
    other = Store.open(store.url)  # another connection pool: another process's writes
    try:
        with store.write() as conn:
            assert not book.get_instrument(conn, "AAA").restricted
            before = risk_limits.load_limits(conn).max_order_quantity
        book.set_restricted(other, CTX, "AAA", True, "test")
        risk_limits.set_limit(other, CTX, "max-order-quantity", "7")
        book.set_settlement_days(other, CTX, "XNYS", "2")
        with store.write() as conn:
            assert book.get_instrument(conn, "AAA").restricted
            assert risk_limits.load_limits(conn).max_order_quantity == Decimal(7) != before
            assert book.settlement_cycles(conn)["XNYS"] == 2
        with store.read() as conn:  # a read transaction too
            assert book.get_instrument(conn, "AAA").restricted
    finally:
        other.dispose()


def test_a_write_in_the_transaction_is_read_back(store: Store) -> None:
    """A setting written in the transaction that read the settings before is read as written
    (put_setting forgets what the transaction kept)."""
    with store.write() as conn:
        assert book.settlement_cycles(conn).get("XLON") is None
        limits = risk_limits.load_limits(conn)
        put_setting(conn, CTX, "settlement-days.XLON", "2")
        put_setting(conn, CTX, "risk.max-order-quantity", "11")
        assert book.settlement_cycles(conn)["XLON"] == 2
        assert risk_limits.load_limits(conn).max_order_quantity == Decimal(11)
        assert limits.max_order_quantity != Decimal(11)


def test_nothing_is_kept_outside_a_transaction(store: Store) -> None:
    book.add_instruments(store, CTX, [make_instrument("AAA", "24/7", "USD")])
    with store.engine.connect() as conn:
        assert isinstance(conn, Connection)
        assert conn.get_transaction() is None
        tx_memo(conn)["x"] = 1
        assert tx_memo(conn) == {}
        with conn.begin():
            tx_memo(conn)["x"] = 1
            assert tx_memo(conn) == {"x": 1}
        with conn.begin():  # the same connection, a new transaction
            assert tx_memo(conn) == {}
