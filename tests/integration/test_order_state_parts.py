"""A long order's state in parts, on both backends: an external order with hundreds of fills
keeps the full chunks of its fills and history in order_state_parts and only the tail in its
state; read back in a fresh process (nothing kept in memory) it is the same Order; a
correction rewrites one chunk, a bust the chunks after it and drops the last when the list
shrinks; a damaged chunk is refused, never read as a shorter order; retention archives and
deletes the chunks with their order; the downgrade below 0023 puts them back in the state."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from alembic import command
from sqlalchemy import func, select

from oms import audit, book, order_book, retention_book
from oms.book import Ctx
from oms.order_book import STATE_PART_ITEMS, OrderRequest
from oms.orders import Order
from oms.refdata import make_account, make_instrument
from oms.schema import order_state_parts, orders
from oms.store import Store, alembic_config
from oms.values import OrdType, Side, TimeInForce

K = 8  # the chunk size in these tests (STATE_PART_ITEMS is 256): the same code, fewer fills
assert STATE_PART_ITEMS > K


def _fix(*fields: tuple[int, str]) -> str:
    body = "".join(f"{t}={v}\x01" for t, v in fields)
    head = f"8=FIX.4.4\x019={len(body.encode())}\x01"
    total = sum((head + body).encode()) % 256
    return (head + body + f"10={total:03d}\x01").replace("\x01", "|")


def _fill(i: int) -> str:
    return _fix(
        (35, "8"), (11, "BIG"), (17, f"F{i}"), (150, "F"), (32, "1"), (31, str(80 + i % 7))
    )


class Long:
    def __init__(self, store: Store, tmp_path: Path) -> None:
        self.store, self.tmp_path, self.n = store, tmp_path, 0
        self.ctx = Ctx("t", datetime.now(UTC))
        book.add_instruments(store, self.ctx, [make_instrument("COIN", "24/7", "USD")])
        book.open_account(store, self.ctx, make_account("A1", "USD", None, "margin", None))
        book.deposit(store, self.ctx, "A1", Decimal(10) ** 9, None)
        req = OrderRequest(
            "A1", "COIN", Side.BUY, Decimal(10_000), OrdType.LIMIT, TimeInForce.GTC,
            Decimal(90), venue="ACME", client_order_id="BIG",
        )  # fmt: skip
        self.order_id = str(order_book.submit(store, self.ctx, req).order.order_id)
        self.apply([_fix((35, "8"), (11, "BIG"), (17, "ACK"), (150, "0"))])

    def apply(self, lines: list[str]) -> None:
        self.n += 1
        path = self.tmp_path / f"d{self.n}.fix"
        path.write_text("\n".join(lines) + "\n")
        order_book.apply_reports(self.store, self.ctx, str(path))

    def fills(self, first: int, last: int) -> None:
        self.apply([_fill(i) for i in range(first, last)])

    def stored(self) -> tuple[dict[str, Any], dict[tuple[str, int], str]]:
        with self.store.read() as conn:
            state = json.loads(
                conn.execute(
                    select(orders.c.state).where(orders.c.order_id == self.order_id)
                ).scalar_one()
            )
            p = order_state_parts.c
            parts = {
                (r.part, r.seq): r.digest
                for r in conn.execute(
                    select(p.part, p.seq, p.digest).where(p.order_id == self.order_id)
                )
            }
        return state, parts

    def fresh(self) -> Order:
        """The order as a new process reads it: nothing kept in memory."""
        _forget()
        with self.store.read() as conn:
            return order_book.find(conn, self.order_id)


def _forget() -> None:
    order_book._KEPT_STATES.clear()
    order_book._KEPT_CHUNKS.clear()
    order_book._KEPT_LISTS.clear()


@pytest.fixture
def long(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Long]:
    monkeypatch.setattr(order_book, "STATE_PART_ITEMS", K)
    _forget()
    yield Long(store, tmp_path)
    _forget()


def _exec_ids(order: Order) -> list[str]:
    return [str(f.exec_id) for f in order.fills]


def test_a_long_order_keeps_its_full_chunks_apart_and_reads_back_whole(long: Long) -> None:
    long.fills(0, K - 3)  # and the submission and the ack in the history: K - 1 entries
    state, parts = long.stored()
    assert parts == {} and "parts" not in state  # below the chunk size: one whole state
    assert (len(state["fills"]), len(state["history"])) == (K - 3, K - 1)
    long.fills(K - 3, 2 * K + 3)
    state, parts = long.stored()
    assert sorted(parts) == [("fills", 0), ("fills", 1), ("history", 0), ("history", 1)]
    assert state["parts"] == {
        "fills": [parts[("fills", 0)], parts[("fills", 1)]],
        "history": [parts[("history", 0)], parts[("history", 1)]],
    }
    assert (len(state["fills"]), len(state["history"])) == (3, 5)  # the tails
    order = long.fresh()
    assert _exec_ids(order) == [f"F{i}" for i in range(2 * K + 3)]
    assert order.cum_qty == Decimal(2 * K + 3)
    assert len(order.history) == len(order.fills) + 2  # the submission and the ack
    # the whole order is what canonical JSON says of it, as a state of one piece would be
    whole = json.loads(audit.canonical_json(order))
    joined = {k: v for k, v in state.items() if k != "parts"}
    joined["fills"] = whole["fills"][: 2 * K] + state["fills"]
    joined["history"] = whole["history"][: 2 * K] + state["history"]
    assert joined == whole


def test_a_report_writes_only_the_chunks_that_changed(long: Long) -> None:
    long.fills(0, 2 * K + 5)
    _, before = long.stored()
    with long.store.read() as conn:
        texts_before = {(r.part, r.seq): r.text for r in conn.execute(select(order_state_parts))}
    # a correction of a fill in the first chunk: that chunk changes, the second does not
    long.apply([_fix((35, "8"), (11, "BIG"), (17, "C3"), (150, "G"), (19, "F3"), (32, "2"),
                     (31, "85"))])  # fmt: skip
    _, after = long.stored()
    assert after[("fills", 0)] != before[("fills", 0)]
    assert after[("fills", 1)] == before[("fills", 1)]
    order = long.fresh()
    corrected = order.fills[3]
    assert (corrected.exec_id, corrected.quantity, corrected.price) == ("F3", 2, 85)
    assert corrected.corrected_by == ("C3",)
    assert order.cum_qty == Decimal(2 * K + 6)
    with long.store.read() as conn:
        texts_after = {(r.part, r.seq): r.text for r in conn.execute(select(order_state_parts))}
    assert texts_after[("fills", 1)] == texts_before[("fills", 1)]


def test_a_bust_shifts_the_chunks_after_it_and_drops_the_last_when_the_list_shrinks(
    long: Long,
) -> None:
    long.fills(0, 2 * K)
    _, parts = long.stored()
    assert ("fills", 1) in parts
    long.apply([_fix((35, "8"), (11, "BIG"), (17, "B1"), (150, "H"), (19, "F1"))])
    state, parts = long.stored()
    assert ("fills", 1) not in parts and ("fills", 0) in parts
    assert len(state["parts"]["fills"]) == 1
    assert len(state["fills"]) == K - 1
    order = long.fresh()
    assert _exec_ids(order) == ["F0"] + [f"F{i}" for i in range(2, 2 * K)]
    assert order.cum_qty == Decimal(2 * K - 1)
    # and more fills after it: the list grows into a second chunk again
    long.fills(2 * K, 2 * K + 3)
    order = long.fresh()
    assert len(order.fills) == 2 * K + 2
    _, parts = long.stored()
    assert ("fills", 1) in parts


def test_a_damaged_chunk_is_refused_not_read_as_a_shorter_order(long: Long) -> None:
    long.fills(0, K + 3)
    with long.store.engine.begin() as conn:
        conn.execute(
            order_state_parts.update()
            .where(order_state_parts.c.part == "fills")
            .values(text=func.replace(order_state_parts.c.text, '"F7"', '"F77"'))
        )
    _forget()
    with long.store.read() as conn, pytest.raises(ValueError, match="stored chunks of its fills"):
        order_book.find(conn, long.order_id)
    with long.store.engine.begin() as conn:
        conn.execute(order_state_parts.delete().where(order_state_parts.c.part == "fills"))
    _forget()
    with long.store.read() as conn, pytest.raises(ValueError, match="0 stored, 1 named"):
        order_book.find(conn, long.order_id)


def test_a_state_written_whole_before_0023_is_read_and_chunked_at_its_next_change(
    long: Long,
) -> None:
    long.fills(0, K + 2)
    order = long.fresh()
    with long.store.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0022")
    with long.store.read() as conn:
        state = conn.execute(
            select(orders.c.state).where(orders.c.order_id == long.order_id)
        ).scalar_one()
    assert state == audit.canonical_json(order)  # the chunks went back into the state
    with long.store.engine.begin() as conn:
        command.upgrade(alembic_config(conn), "head")
    assert long.stored()[1] == {}
    assert long.fresh() == order  # a whole state reads as it did
    long.fills(K + 2, K + 3)
    state, parts = long.stored()
    assert sorted(parts) == [("fills", 0), ("history", 0)]
    assert _exec_ids(long.fresh()) == [f"F{i}" for i in range(K + 3)]


def test_retention_archives_and_deletes_a_long_orders_chunks(long: Long, tmp_path: Path) -> None:
    long.fills(0, K + 1)
    # done for good: the venue cancels the rest; a later order keeps the newest order id
    long.apply([_fix((35, "8"), (11, "BIG"), (17, "X"), (150, "4"), (39, "4"))])
    assert long.fresh().status.value == "canceled"
    req = OrderRequest(
        "A1", "COIN", Side.BUY, Decimal(1), OrdType.LIMIT, TimeInForce.GTC, Decimal(1),
        venue="ACME", client_order_id="LATER",
    )  # fmt: skip
    order_book.submit(long.store, long.ctx, req)
    later = Ctx("t", datetime.now(UTC) + timedelta(days=7 * 366))
    done = retention_book.apply(long.store, later, archive_root=str(tmp_path / "archive"))
    assert done.plan.counts["order_state_parts"] == 2
    assert long.order_id in done.plan.ids("orders")
    with long.store.read() as conn:
        assert conn.execute(select(func.count()).select_from(order_state_parts)).scalar() == 0
        assert conn.execute(select(orders.c.order_id)).scalars().all() != []
    archived = pl.read_parquet(next((tmp_path / "archive").rglob("order_state_parts.parquet")))
    assert sorted(zip(archived["part"], archived["seq"], strict=True)) == [
        ("fills", 0),
        ("history", 0),
    ]
