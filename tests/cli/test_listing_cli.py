"""`order list` and `exec list` on both backends write their lists as they read them, a batch of
rows at a time (batches of 7 here, so that every listing spans many): the objects are those
`order show` and the execution rows give, in order, and a refusal comes before any output."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from oms import executions, order_book
from tests.conftest import Tieout, write


@pytest.fixture
def book(tieout: Tieout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Tieout:
    """60 orders of two accounts: paper market orders that fill, limit orders that rest, orders
    of a restricted symbol (rejected) and orders routed to an external venue."""
    monkeypatch.setattr(order_book, "LISTING_BATCH", 7)
    monkeypatch.setattr(executions, "LISTING_BATCH", 7)
    tieout.ok("instrument", "add", "COIN", "--exchange", "24/7", "--currency", "USD")
    tieout.ok("instrument", "add", "BAD", "--exchange", "24/7", "--currency", "USD", "--restricted")
    for a in ("A1", "A2"):
        tieout.ok("account", "open", a, "--currency", "USD", "--type", "margin")
        tieout.ok("cash", "deposit", a, "1000000")
    at = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    tieout.ok(
        "md",
        "import",
        write(
            tmp_path / "bars.csv",
            f"time,symbol,open,high,low,close,volume\n{at},COIN,100,101,99,100,500000\n"
            f"{at},BAD,10,10,10,10,5000\n",
        ),
    )
    rows = ["account,symbol,side,qty,type,limit,venue,client_order_id"]
    for i in range(60):
        account = f"A{i % 2 + 1}"
        kind = i % 4
        if kind == 0:
            rows.append(f"{account},COIN,buy,{i + 1},market,,paper,C{i}")
        elif kind == 1:
            rows.append(f"{account},COIN,buy,{i + 1},limit,95.5,paper,C{i}")
        elif kind == 2:
            rows.append(f"{account},BAD,buy,{i + 1},market,,paper,C{i}")
        else:
            rows.append(f"{account},COIN,sell,{i + 1},limit,101.25,EXT,C{i}")
    tieout("order", "submit", "--file", write(tmp_path / "orders.csv", "\n".join(rows) + "\n"))
    return tieout


def test_the_order_listing_is_what_order_show_gives(book: Tieout) -> None:
    listed = book.ok("order", "list", "--json").json()
    assert [o["client_order_id"] for o in listed] == [f"C{i}" for i in range(60)]
    assert {o["status"] for o in listed} == {"filled", "new", "rejected", "pending_new"}
    for o in listed[::5]:
        shown = book.ok("order", "show", o["order_id"], "--json").json()
        assert {k: v for k, v in shown.items() if k in o} == o
    text = book.ok("order", "list").out.splitlines()
    assert len(text) == 60
    one = listed[1]  # its terms too: a routed order and a paper one read alike without them
    at = "" if one["venue"] == "paper" else f" at {one['venue']}"
    assert text[1].startswith(
        f"order {one['order_id']} (C1) buy 2 COIN limit {one['limit_price']} {one['tif']}{at}: "
        f"{one['status']}, filled {one['cum_qty']}"
    )
    mine = book.ok("order", "list", "--account", "A2", "--status", "new", "--json").json()
    assert mine == [o for o in listed if o["account"] == "A2" and o["status"] == "new"]
    assert len(mine) == 15


def test_the_execution_listing_streams_what_was_booked(
    book: Tieout, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = book.ok("exec", "list", "--json").out
    monkeypatch.setattr(executions, "LISTING_BATCH", 10_000)
    assert book.ok("exec", "list", "--json").out == small  # one batch or many: the same bytes
    listed = [e["client_order_id"] for e in book.ok("exec", "list", "--json").json()]
    assert listed == [f"C{i}" for i in range(0, 60, 4)]
    assert len(book.ok("exec", "list", "--account", "A1").out.splitlines()) == 15
    assert book.ok("exec", "list", "--account", "A2", "--json").out == "[]\n"  # its orders rest


@pytest.mark.parametrize("command", [("order", "list"), ("exec", "list")])
def test_an_unknown_account_is_refused_before_any_output(
    book: Tieout, command: tuple[str, str]
) -> None:
    r = book(*command, "--account", "NOPE", "--json")
    assert r.code == 5, r.err
    assert r.out == ""
    assert "NOPE" in r.err
