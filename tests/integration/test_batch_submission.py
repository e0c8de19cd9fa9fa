"""`order submit --file` (group commit) decides exactly as one `order submit` per row: the same
orders, events, fills, cash entries, positions, risk rejections, refusals and audit trail, row
for row and hash for hash, whatever the group size; a re-run of the file creates nothing new."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from oms import audit, book, md_book, order_book, risk_limits, submission
from oms.book import Ctx
from oms.errors import BadInput, NotFound, PartlyDone, Refused
from oms.orders import OrderStatus
from oms.positions import positions
from oms.refdata import make_account, make_instrument
from oms.schema import (
    audit_events,
    executions,
    journal_entries,
    journal_postings,
    order_client_ids,
    order_events,
    orders,
)
from oms.store import Store
from tests.conftest import BookTemplates, _pg_url

NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
COLUMNS = "account,symbol,side,qty,type,limit,stop,tif,expire_at,client_order_id,venue"


def _setup(store: Store, tmp_path: Path, name: str) -> None:
    ctx = Ctx("setup", NOW - timedelta(minutes=5))
    book.add_instruments(
        store, ctx, [make_instrument("COIN", "24/7", "USD"), make_instrument("ETH", "24/7", "USD")]
    )
    for acct, kind, cash in (
        ("M1", "margin", "5000"),
        ("M2", "margin", "30"),
        ("C1", "cash", "3000"),
    ):
        book.open_account(store, ctx, make_account(acct, "USD", None, kind, None))
        book.deposit(store, ctx, acct, Decimal(cash), None)
    risk_limits.set_limit(store, ctx, "max-orders-per-window", "12")
    risk_limits.set_limit(store, ctx, "tier.standard.max-position", "60")
    bars = tmp_path / "bars.csv"
    at = (NOW - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    bars.write_text(
        f"time,symbol,open,high,low,close,volume\n{at},COIN,10,10,10,10,1000\n"
        f"{at},ETH,20,20,20,20,1000\n"
    )
    md_book.import_bars(store, Ctx("setup", NOW - timedelta(seconds=20)), str(bars))


def _rows(seed: int) -> list[dict[str, str]]:
    """Orders that meet every decision the checks take, in random order: fills that change
    cash and positions for the orders after them, resting limits that reserve cash, buying power
    running out, short sales on a cash account, the position limit, duplicates by terms and by
    client order id (same and other terms), the rate limit, unknown names and bad values."""
    rnd = random.Random(seed)
    rows = []
    for i in range(60):
        acct = rnd.choice(["M1", "M2", "C1", "C1", "X9" if i % 29 == 0 else "M1"])
        sym = rnd.choice(["COIN", "COIN", "ETH", "NOPE" if i % 31 == 0 else "ETH"])
        side = rnd.choice(["buy", "sell"])
        qty = rnd.choice(["1", "2", "5", "5.0", "10", "25", "-1" if i % 37 == 0 else "3"])
        kind = rnd.choice(["market", "market", "limit"])
        ref = 10 if sym == "COIN" else 20
        limit = ""
        if kind == "limit":
            limit = str(ref - 1 if side == "buy" else ref + 1) if rnd.random() < 0.7 else str(ref)
        cid = rnd.choice(["", "", f"K{rnd.randint(1, 8)}"])
        rows.append(
            {
                "account": acct,
                "symbol": sym,
                "side": side,
                "qty": qty,
                "type": kind,
                "limit": limit,
                "cid": cid,
            }
        )
    rows[0]["cid"], rows[5]["cid"] = "R1", "R2"
    return [*rows, dict(rows[0]), dict(rows[5]), {**rows[5], "qty": "99"}]


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    lines = [COLUMNS]
    for r in rows:
        lines.append(
            f"{r['account']},{r['symbol']},{r['side']},{r['qty']},{r['type']},{r['limit']},,day,,"
            f"{r['cid']},paper"
        )
    path.write_text("\n".join(lines) + "\n")


def _children() -> list[int]:
    """This process's child processes (Linux)."""
    pid = os.getpid()
    return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _one_by_one(store: Store, path: Path) -> list[tuple[Any, ...]]:
    """What a loop of single `order submit`s gives for each row of the file."""
    from oms import tabular

    tf = tabular.read_csv(
        str(path), required=order_book.FILE_REQUIRED, optional=order_book.FILE_OPTIONAL
    )
    out: list[tuple[Any, ...]] = []
    for row in tf.frame.iter_rows(named=True):
        try:
            done = order_book.submit(store, Ctx("ops", NOW), order_book._request(row))
            order = done.order
            # `order submit` answers a repeat of a rejected order as rejected again (exit 4)
            why = (
                f"a duplicate of an order that was rejected: {order.reject_reason}"
                if done.duplicate and order.status is OrderStatus.REJECTED
                else None
            )
            out.append((order.order_id, order.status.value, done.duplicate, why))
        except order_book.RiskRejected as exc:
            out.append((exc.order.order_id, exc.order.status.value, False, exc.reason))
        except (BadInput, Refused, NotFound) as exc:
            out.append((None, None, False, exc.message))
    return out


def _lines(result: order_book.BatchResult) -> list[tuple[Any, ...]]:
    return [
        (
            x.order_id,
            x.status.value if x.status else None,
            x.duplicate,
            x.reason,
        )
        for x in result.lines
    ]


def _book(store: Store) -> dict[str, Any]:
    tables = (
        orders,
        order_client_ids,
        order_events,
        executions,
        journal_entries,
        journal_postings,
        audit_events,
    )
    with store.read() as conn:
        doc: dict[str, Any] = {
            t.name: [tuple(r) for r in conn.execute(sa.select(t).order_by(*t.primary_key))]
            for t in tables
        }
        for acct in ("M1", "M2", "C1"):
            doc[f"cash {acct}"] = book.cash_balance(conn, acct)
            doc[f"positions {acct}"] = [p.as_json() for p in positions(conn, acct)]
        doc["audit"] = audit.verify_store(conn).ok
    return doc


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("group", [1, 4, 1000])
def test_a_file_decides_as_one_submission_per_row(
    db_url: str,
    book_templates: BookTemplates,
    tmp_path: Path,
    seed: int,
    group: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = (
        f"sqlite:///{tmp_path / 'other.db'}"
        if db_url.startswith("sqlite")
        else _pg_url(db_url.split("?", maxsplit=1)[0].replace("+psycopg", ""))
    )
    for url in (db_url, other):  # books init made ten minutes before NOW (BookTemplates)
        book_templates.fresh(url, f"store@{NOW - timedelta(minutes=10):%Y-%m-%dT%H:%M:%S%z}")
    single, batch = Store.open(db_url), Store.open(other)
    for s, name in ((single, "a"), (batch, "b")):
        _setup(s, tmp_path, name)
    path = tmp_path / "orders.csv"
    rows = _rows(seed)
    _write(path, rows)
    expected = _one_by_one(single, path)
    monkeypatch.setattr(submission, "CHUNK", group)
    acks: list[int] = []
    result = order_book.submit_file(
        batch, Ctx("ops", NOW), str(path), lambda lines: acks.append(len(lines))
    )
    assert _lines(result) == expected
    assert sum(acks) == len(rows) and max(acks) <= group
    decisions = {r for _, _, _, r in expected}
    assert any(r and "buying power" in r for r in decisions)  # the scenario meets the checks
    assert any(r and "order rate" in r for r in decisions)
    assert any(r and "duplicate order" in r for r in decisions)
    assert any(d for _, _, d, _ in expected)
    assert _book(batch) == _book(single)
    assert _book(batch)["audit"] is True
    before = _book(batch)
    again = order_book.submit_file(batch, Ctx("ops", NOW + timedelta(hours=2)), str(path))
    with_ids = [x for x in again.lines if x.order_id is not None and x.duplicate]
    assert len(with_ids) == sum(1 for r in rows if r["cid"]) - sum(
        1 for line, r in zip(expected, rows, strict=True) if r["cid"] and line[0] is None
    )  # every row with a client order id that made an order the first time is a duplicate
    after = _book(batch)
    new_orders = {r[0] for r in after["orders"]} - {r[0] for r in before["orders"]}
    assert all(
        not r["cid"]
        for r, x in zip(rows, again.lines, strict=True)
        if x.order_id is not None and x.order_id in new_orders
    )
    single.dispose()
    batch.dispose()


@pytest.mark.parametrize("writer", ["inline", "process"])
def test_a_crash_mid_file_leaves_whole_groups(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: str
) -> None:
    """A failure of the run in the middle of the file leaves the groups before it committed
    and acknowledged, and nothing of the groups after. Written in this thread (SQLite's inline
    writer, PostgreSQL's writer thread): the third group's insert fails, between the inserts and
    the commit. SQLite's writer process: deciding the third group fails, while the second is
    written; the second still commits and is acknowledged, and the writer process ends."""
    if writer == "process" and store.dialect != "sqlite":
        pytest.skip("the writer process is SQLite's")
    monkeypatch.setattr(submission, "WRITER_PROCESS", writer == "process")
    monkeypatch.setattr(submission, "_may_fork", lambda: True)  # a thread another test left
    children = _children()
    _setup(store, tmp_path, "a")
    path = tmp_path / "orders.csv"
    rows = [
        {
            "account": "M1",
            "symbol": "COIN",
            "side": "buy" if i % 2 else "sell",
            "qty": str(i + 1),
            "type": "market",
            "limit": "",
            "cid": f"Z{i}",
        }
        for i in range(10)
    ]
    _write(path, rows)
    monkeypatch.setattr(submission, "CHUNK", 3)
    original: Callable[..., None] = submission.Db.write
    calls = {"n": 0}

    def failing(self: submission.Db, collected: Any) -> None:
        calls["n"] += 1
        original(self, collected)
        if calls["n"] == 3:
            raise KeyboardInterrupt  # as a kill between the inserts and the commit

    decide = submission.Group.decide_all

    def decide_fails(self: submission.Group, part: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # as a kill while the second group is written
        return decide(self, part)

    if writer == "process":
        monkeypatch.setattr(submission.Group, "decide_all", decide_fails)
    else:
        monkeypatch.setattr(submission.Db, "write", failing)
    acked: list[str] = []
    with pytest.raises(PartlyDone) as stopped:  # interrupted once groups committed: which
        order_book.submit_file(
            store,
            Ctx("ops", NOW),
            str(path),
            lambda lines: acked.extend(x.client_order_id for x in lines if x.order_id),
        )
    assert stopped.value.interrupted
    assert acked == [f"Z{i}" for i in range(6)]
    summary: Any = stopped.value.summary
    assert [x["client_order_id"] for x in summary["results"]] == acked
    assert summary["next_line"] == 8
    with store.read() as conn:
        ids = sorted(conn.execute(sa.select(orders.c.client_order_id)).scalars())
        assert ids == sorted(acked)
        assert audit.verify_store(conn).ok
    assert _children() == children  # no writer process left behind
    monkeypatch.setattr(submission.Db, "write", original)
    monkeypatch.setattr(submission.Group, "decide_all", decide)
    result = order_book.submit_file(store, Ctx("ops", NOW), str(path))
    assert [x.duplicate for x in result.lines] == [True] * 6 + [False] * 4
    with store.read() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(orders)).scalar()
        qty = sum(p.position.quantity for p in positions(conn, "M1"))
    assert n == 10
    assert qty == sum(Decimal(i + 1) * (1 if i % 2 else -1) for i in range(10))


def test_an_interrupt_the_database_reports_as_its_own_error_is_an_interrupt(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL Ctrl-C cancels the query in flight and the rollback then fails ("another
    command is already in progress"): the file's run ended as "the database failed", exit 1
    (a re-review). An error raised in handling an interrupt is the interrupt: PartlyDone
    interrupted, with what committed."""
    monkeypatch.setattr(submission, "WRITER_PROCESS", False)
    _setup(store, tmp_path, "a")
    path = tmp_path / "orders.csv"
    rows = [
        {"account": "M1", "symbol": "COIN", "side": "buy" if i % 2 else "sell",
         "qty": str(i + 1), "type": "market", "limit": "", "cid": ""}
        for i in range(10)
    ]  # fmt: skip
    _write(path, rows)
    monkeypatch.setattr(submission, "CHUNK", 3)
    decide = submission.Group.decide_all
    calls = {"n": 0}

    def decide_interrupted(self: submission.Group, part: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt:
                raise sa.exc.OperationalError(
                    "ROLLBACK", {}, Exception("another command is already in progress")
                ) from None
        return decide(self, part)

    monkeypatch.setattr(submission.Group, "decide_all", decide_interrupted)
    with pytest.raises(PartlyDone) as stopped:
        order_book.submit_file(store, Ctx("ops", NOW), str(path))
    assert stopped.value.interrupted
    assert "interrupted; the first 6 of 10 orders (lines 2 to 7)" in stopped.value.message
    assert "Submit only the rows from line 8 on" in stopped.value.message
    assert "database failed" not in stopped.value.message
