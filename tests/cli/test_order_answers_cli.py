"""Through the real command on both backends: the same answer to a repeated rejected order,
how long an order has really waited for its venue, and market data from the future."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.cli.test_exec_apply_review import apply, book, external
from tests.cli.test_order_cli import report
from tests.conftest import Tieout, write

__all__ = ["book"]  # the fixture, used by name


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_repeated_rejected_order_is_answered_as_rejected(book: Tieout) -> None:
    args = ["order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy", "--qty",
            "5000", "--client-order-id", "BIG", "--json"]  # 5,000 x 100 > 100,000 USD
    first = book(*args)
    assert first.code == 4 and first.json()["status"] == "rejected"
    again = book(*args)
    assert again.code == 4, again.out  # not 0: a retrying script must not take it as accepted
    doc = again.json()
    assert (doc["order_id"], doc["status"], doc["duplicate"]) == (
        first.json()["order_id"], "rejected", True)
    assert "a duplicate of an order that was rejected: risk: buying power" in again.err
    assert len(book.ok("order", "list", "--json").json()) == 1


def test_a_cancel_waiting_for_its_venue_is_stuck_though_fills_came_meanwhile(
    book: Tieout, tmp_path: Path
) -> None:
    order = external(book, "X1")
    placed = datetime.fromisoformat(order["created_at"])
    t0 = book.at(_iso(placed + timedelta(minutes=1)))
    apply(t0, tmp_path, "ack.fix", report("X1", "X1E0", "0"))
    t0.ok("order", "cancel", "--client-order-id", "X1")  # asked at +1 min
    t1 = book.at(_iso(placed + timedelta(minutes=12)))
    apply(t1, tmp_path, "fill.fix", report("X1", "E1", "F", (32, "2"), (31, "100")))
    late = book.at(_iso(placed + timedelta(minutes=17)))  # 16 min after the request
    (stuck,) = late.ok("order", "list", "--stuck", "--json").json()
    assert (stuck["order_id"], stuck["status"]) == (order["order_id"], "pending_cancel")
    assert late.ok("order", "list", "--stuck", "--stuck-minutes", "20", "--json").json() == []
    r = late("order", "list", "--stuck", "--stuck-minutes", "-5")
    assert r.code == 3 and "must not be negative" in r.err


def test_a_bar_from_the_future_is_refused(book: Tieout, tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    ahead = _iso(now + timedelta(minutes=6))  # 5 minutes of clock skew are allowed
    f = write(tmp_path / "bars.csv", "time,symbol,open,high,low,close,volume\n"
              f"{_iso(now - timedelta(seconds=30))},COIN,100,100,100,100,10\n"
              f"{ahead},COIN,90,90,90,90,10\n")
    t = book.at(_iso(now))
    doc = t.ok("md", "import", f, "--json").json()
    assert (doc["accepted"], doc["rejected"]) == (1, 1)  # kept with its reason (contract)
    (rejected,) = t.ok("md", "rejects", "--import", str(doc["import_id"]), "--json").json()
    assert "is after now" in json.dumps(rejected)
    assert t.ok("md", "last", "COIN", "--json").json()["price"] == "100"  # not the future 90
