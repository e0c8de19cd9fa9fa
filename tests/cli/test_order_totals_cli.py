"""Through the real command on both backends: what a live order holds is kept as order totals
(oms.order_book.standing); a change of the paper venue's commission terms moves what resting
paper buys hold at once, for the balance and for the next order's check."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.cli.test_exec_apply_review import book
from tests.cli.test_order_terms_cli import _bars, _gtc_buy
from tests.conftest import Tieout, write

__all__ = ["book"]  # the fixture, used by name


def _held(t: Tieout, account: str) -> tuple[Decimal, Decimal]:
    bal: dict[str, Any] = t.ok("cash", "balance", account, "--json").json()
    return Decimal(bal["reserved"]), Decimal(bal["available"])


def test_a_new_commission_moves_what_resting_paper_buys_hold(
    book: Tieout, tmp_path: Path
) -> None:
    book.ok("account", "open", "C1", "--currency", "USD", "--type", "cash")
    book.ok("cash", "deposit", "C1", "10000")
    assert _gtc_buy(book, "C1", "50", "99").json()["status"] == "new"  # 4,950
    assert _gtc_buy(book, "C1", "49", "99").json()["status"] == "new"  # 4,851
    assert _held(book, "C1") == (Decimal(9801), Decimal(199))

    book.ok("paper", "set", "commission-min", "1")  # each resting buy will pay 1 more
    assert _held(book, "C1") == (Decimal(9803), Decimal(197))
    r = _gtc_buy(book, "C1", "2", "98")  # 196 + 1 commission fits 197 exactly
    assert r.code == 0 and r.json()["status"] == "new", r.err
    r = _gtc_buy(book, "C1", "1", "1")  # 1 + 1 > 0 left
    assert r.code == 4 and "buying power" in r.err, r.err

    book.ok("paper", "set", "commission-min", "0")  # and back: the three hold their prices only
    assert _held(book, "C1") == (Decimal(9997), Decimal(3))


def test_a_fill_and_a_cancel_release_what_the_order_held(book: Tieout, tmp_path: Path) -> None:
    placed = datetime.now(UTC)
    first = _gtc_buy(book, "A1", "100", "99").json()
    second = _gtc_buy(book, "A1", "10", "95").json()
    assert _held(book, "A1")[0] == Decimal(10850)  # 9,900 + 950
    book.ok("order", "cancel", second["order_id"])
    assert _held(book, "A1")[0] == Decimal(9900)
    bars = _bars(tmp_path, "fill.csv", (placed + timedelta(minutes=1), "98,98,98,98,1000"))
    # the clock after the bars: a bar is sent once it has ended
    book = book.at((placed + timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    book.ok("md", "import", bars)  # 10% of 1,000: the first order's 100, at 98
    shown = book.ok("order", "show", first["order_id"], "--json").json()
    assert shown["status"] == "filled", shown
    assert _held(book, "A1")[0] == 0


def test_reserved_shows_the_places_of_the_orders_still_live(book: Tieout, tmp_path: Path) -> None:
    """Once the order with six places ends, what the other one holds shows as summing the
    live orders does ("99", not "99.000000")."""
    book.ok("instrument", "add", "FINE", "--exchange", "24/7", "--currency", "USD",
            "--tick-size", "0.000001")
    at = (datetime.now(UTC) - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    bars = f"time,symbol,open,high,low,close,volume\n{at},FINE,100,100,100,100,1000\n"
    book.ok("md", "import", write(tmp_path / "fine.csv", bars))
    book.ok("account", "open", "M1", "--currency", "USD", "--type", "margin")
    book.ok("cash", "deposit", "M1", "100000")
    fine = book.ok("order", "submit", "--account", "M1", "--symbol", "FINE", "--side", "buy",
                   "--qty", "1", "--type", "limit", "--limit", "99.122221", "--tif", "gtc",
                   "--json").json()
    book.ok("order", "submit", "--account", "M1", "--symbol", "FINE", "--side", "buy", "--qty",
            "1", "--type", "limit", "--limit", "99", "--tif", "gtc", "--json")
    bal = book.ok("cash", "balance", "M1", "--json").json()
    assert (bal["reserved"], bal["available"]) == ("198.122221", "99801.877779")
    book.ok("order", "cancel", fine["order_id"])
    bal = book.ok("cash", "balance", "M1", "--json").json()
    assert (bal["reserved"], bal["available"]) == ("99", "99901")
