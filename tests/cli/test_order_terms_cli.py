"""Through the real command on both backends: what the duplicate check counts as the same
terms (time in force and expire date too), what the order rate counts (not rejected orders),
and an amend down to what has filled."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.cli.test_exec_apply_review import apply, book, external, shown
from tests.cli.test_order_cli import report
from tests.conftest import Result, Tieout, write

__all__ = ["book"]  # the fixture, used by name

_LIMIT = ("--side", "buy", "--qty", "1", "--type", "limit", "--limit", "90")  # rests at 90


def _submit(t: Tieout, *args: str) -> Result:
    return t("order", "submit", "--account", "A1", "--symbol", "COIN", *args, "--json")


def _expire(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


def test_the_same_shares_for_another_time_in_force_are_not_a_duplicate(book: Tieout) -> None:
    day = _submit(book, *_LIMIT, "--tif", "day")
    assert day.code == 0 and day.json()["status"] == "new", day.err
    gtc = _submit(book, *_LIMIT, "--tif", "gtc")
    assert gtc.code == 0 and gtc.json()["status"] == "new", gtc.err
    gtd1 = _submit(book, *_LIMIT, "--tif", "gtd", "--expire-at", _expire(3))
    assert gtd1.code == 0, gtd1.err
    gtd2 = _submit(book, *_LIMIT, "--tif", "gtd", "--expire-at", _expire(4))
    assert gtd2.code == 0, gtd2.err
    again = _submit(book, *_LIMIT, "--tif", "gtc")  # the gtc one sent twice
    assert again.code == 4 and again.json()["status"] == "rejected"
    assert "duplicate order: same terms (buy 1 COIN limit 90 gtc)" in again.err
    later = _submit(book, *_LIMIT, "--tif", "gtd", "--expire-at", _expire(3))
    assert later.code == 4 and f"gtd until {_expire(3)})" in later.err


def test_a_file_tells_time_in_force_apart_as_single_submissions_do(
    book: Tieout, tmp_path: Path
) -> None:
    rows = "".join(
        f"A1,COIN,buy,1,limit,90,{tif},{expire}\n"
        for tif, expire in (("day", ""), ("gtc", ""), ("gtd", _expire(3)), ("gtc", ""))
    )
    f = write(tmp_path / "orders.csv", "account,symbol,side,qty,type,limit,tif,expire_at\n"
              + rows)
    r = book("order", "submit", "--file", f, "--json")
    statuses = [o["status"] for o in book.ok("order", "list", "--json").json()]
    assert sorted(statuses) == ["new", "new", "new", "rejected"], r.out
    reasons = [o["reject_reason"] for o in book.ok("order", "list", "--json").json()
               if o["status"] == "rejected"]
    assert "gtc" in reasons[0]


def test_rejected_orders_do_not_count_towards_the_order_rate(book: Tieout) -> None:
    book.ok("risk", "set", "max-orders-per-window", "2")
    big = _submit(book, "--side", "buy", "--qty", "5000")  # 500,000 USD: no buying power
    assert big.code == 4 and "buying power" in big.err
    for qty in ("1", "2"):  # an order rejected does not use up the account's rate
        r = _submit(book, "--side", "buy", "--qty", qty)
        assert r.code == 0 and r.json()["status"] == "filled", r.err
    third = _submit(book, "--side", "buy", "--qty", "3")
    assert third.code == 4 and "order rate" in third.err, third.err
    fourth = _submit(book, "--side", "buy", "--qty", "4")  # retrying does not lock it out longer
    assert fourth.code == 4 and "2 orders" in fourth.err, fourth.err


def test_an_amend_down_to_what_has_filled_says_to_cancel(book: Tieout, tmp_path: Path) -> None:
    external(book, "X1")
    apply(book, tmp_path, "ack.fix", report("X1", "X1E0", "0"))
    apply(book, tmp_path, "fill.fix", report("X1", "E1", "F", (32, "4"), (31, "100")))
    r = book("order", "amend", "--client-order-id", "X1", "--qty", "4")
    assert r.code == 3
    assert "the new quantity 4 must exceed the 4 already filled" in r.err
    assert "cancel the order instead" in r.err
    doc = shown(book, "X1")
    assert (doc["status"], doc["quantity"], doc["leaves_qty"]) == ("partially_filled", "10", "6")


def _bars(tmp_path: Path, name: str, *rows: tuple[datetime, str]) -> str:
    lines = "".join(f"{t.strftime('%Y-%m-%dT%H:%M:%SZ')},COIN,{ohlcv}\n" for t, ohlcv in rows)
    return write(tmp_path / name, "time,symbol,open,high,low,close,volume\n" + lines)


def test_a_stop_limit_remembers_its_trigger(book: Tieout, tmp_path: Path) -> None:
    """A bar through the stop (105) that does not reach the limit (103) triggers the order
    without filling it; a later bar below the stop but through the limit then fills it (it is
    a limit order now), as the venue would. It used to wait for the stop again."""
    placed = datetime.now(UTC)
    order = _submit(book, "--side", "buy", "--qty", "10", "--type", "stop_limit", "--stop",
                    "105", "--limit", "103", "--tif", "gtc").json()
    # the clock after the bars: a bar is sent once it has ended
    book = book.at((placed + timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    first = book.ok("md", "import", _bars(
        tmp_path, "b1.csv", (placed + timedelta(minutes=1), "104,106,104,105.5,1000")), "--json")
    assert first.json()["paper_orders_filled"] == 0
    doc = shown(book, order["client_order_id"])
    assert (doc["status"], doc["cum_qty"]) == ("new", "0")
    assert doc["history"][-1]["event"] == "order_triggered"
    assert doc["history"][-1]["reason"].startswith("triggered at stop 105: bar ")
    book.ok("md", "import", _bars(
        tmp_path, "b2.csv", (placed + timedelta(minutes=2), "102,102.5,101,102,1000")))
    doc = shown(book, order["client_order_id"])
    assert (doc["status"], doc["cum_qty"], doc["avg_px"]) == ("filled", "10", "102")
    assert [h["event"] for h in doc["history"]].count("order_triggered") == 1


def test_a_venue_triggers_a_stop_with_exec_type_l(book: Tieout, tmp_path: Path) -> None:
    _submit(book, "--side", "sell", "--qty", "10", "--type", "stop", "--stop", "95",
            "--venue", "ACME", "--client-order-id", "S1")
    _submit(book, "--side", "buy", "--qty", "1", "--type", "limit", "--limit", "95",
            "--venue", "ACME", "--client-order-id", "L1")
    r = apply(book, tmp_path, "drop.fix", report("S1", "S1E0", "0"), report("S1", "S1E1", "L"),
              report("L1", "L1E0", "0"), report("L1", "L1E1", "L"), report("S1", "S1E2", "L"))
    assert r.code == 3
    problems = {p["line"]: p["reason"] for p in r.json()["problems"]}
    assert set(problems) == {4, 5}
    assert "only stop and stop-limit orders trigger" in problems[4]
    assert "has triggered already" in problems[5]
    doc = shown(book, "S1")
    assert (doc["status"], [h["event"] for h in doc["history"]][-1]) == ("new", "order_triggered")


def _gtc_buy(t: Tieout, account: str, qty: str, limit: str) -> Result:
    return t("order", "submit", "--account", account, "--symbol", "COIN", "--side", "buy",
             "--qty", qty, "--type", "limit", "--limit", limit, "--tif", "gtc", "--json")


def test_a_resting_paper_buy_keeps_its_commission_reserved(book: Tieout, tmp_path: Path) -> None:
    """A cash account's resting buy holds the commission it will pay, as the check charged it:
    otherwise a second order could spend it, and the first one's fill would take the account
    below zero."""
    book.ok("paper", "set", "commission-min", "1")
    book.ok("account", "open", "C1", "--currency", "USD", "--type", "cash")
    book.ok("cash", "deposit", "C1", "10000")

    placed = datetime.now(UTC)
    first = _gtc_buy(book, "C1", "100", "99")  # 9,900 + 1 commission
    assert first.code == 0 and first.json()["status"] == "new", first.err
    bal = book.ok("cash", "balance", "C1", "--json").json()
    assert (bal["reserved"], bal["available"]) == ("9901.00", "99.00")
    second = _gtc_buy(book, "C1", "1", "99")  # 99 + 1 > 99 available
    assert second.code == 4 and "buying power: order needs 100" in second.err, second.err
    third = _gtc_buy(book, "C1", "1", "98")  # 98 + 1 fits exactly
    assert third.code == 0, third.err
    # the clock after the bars: a bar is sent once it has ended
    book = book.at((placed + timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    book.ok("md", "import", _bars(
        tmp_path, "fill.csv", (placed + timedelta(minutes=1), "98,98,98,98,100000")))
    bal = book.ok("cash", "balance", "C1", "--json").json()
    # both filled at 98: 10,000 - (9,800 + 1) - (98 + 1); the account never went below zero
    assert (bal["balance"], bal["reserved"]) == ("100.00", "0")


def test_a_partly_filled_paper_buy_holds_the_commission_its_rest_will_pay(
    book: Tieout, tmp_path: Path
) -> None:
    """10 bps, at least 1 per order. 100 @ 99 holds 9,900 + 9.90. A bar fills 50 @ 98 (paying
    4.90): the rest holds 50 x 99 = 4,950 and what the order's charge will still rise by,
    9.85 - 4.90 = 4.95. Both the balance and the next order's check see it."""
    book.ok("paper", "set", "commission-bps", "10")
    book.ok("paper", "set", "commission-min", "1")
    book.ok("account", "open", "C2", "--currency", "USD", "--type", "cash")
    book.ok("cash", "deposit", "C2", "9950")

    placed = datetime.now(UTC)
    assert _gtc_buy(book, "C2", "100", "99").code == 0
    # the clock after the bars: a bar is sent once it has ended
    book = book.at((placed + timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    book.ok("md", "import", _bars(
        tmp_path, "part.csv", (placed + timedelta(minutes=1), "98,98,98,98,500")))  # 10%: 50
    bal = book.ok("cash", "balance", "C2", "--json").json()
    assert (bal["balance"], bal["reserved"], bal["available"]) == (
        "5045.10", "4954.95", "90.15")
    r = _gtc_buy(book, "C2", "1", "92")  # 92 + 1 > 90.15 (95.10 unheld)
    assert r.code == 4 and "buying power: order needs 93" in r.err, r.err


def test_compliance_restricts_a_listed_instrument_and_lifts_it(
    book: Tieout, tmp_path: Path
) -> None:
    doc = book.ok("instrument", "restrict", "COIN", "--reason", "MNPI: deal team", "--json")
    assert doc.json()["restricted"] is True
    r = _submit(book, "--side", "buy", "--qty", "1")
    assert r.code == 4 and "restricted" in r.err
    book.ok("instrument", "restrict", "COIN")  # again: nothing changes, nothing recorded
    book.ok("instrument", "unrestrict", "COIN", "--reason", "deal announced")
    assert _submit(book, "--side", "buy", "--qty", "1").code == 0
    assert book("instrument", "restrict", "NOPE").code == 5
    out = tmp_path / "audit.jsonl"
    book.ok("audit", "export", "--from", "2000-01-01", "--to", "2100-01-01", "--out", str(out))
    events = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(e["action"], e["reason"]) for e in events if e["entity_type"] == "instrument"
            and e["action"] != "instrument.add"] == [
        ("instrument.restrict", "MNPI: deal team"), ("instrument.unrestrict", "deal announced")]
