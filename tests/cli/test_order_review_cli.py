"""Review findings, through the real command on both backends: the paper venue trades only in
session (a gtc/gtd order entered while its exchange is closed rests and fills in a later session)
and a cancel request of an order the venue has not acknowledged yet (FIX 4.4 Appendix D,
"cancel request issued for an order that has not yet been acknowledged")."""

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_exec_apply_review import book
from tests.cli.test_order_cli import fix_line, report
from tests.conftest import Result, Tieout, write

__all__ = ["book"]  # the fixture, used by name

THANKSGIVING = "2026-11-26T17:20:00Z"  # XNYS closed all day
NEXT_SESSION = "2026-11-27T14:45:00Z"  # XNYS open 14:30Z to 18:00Z (early close)


@pytest.fixture
def nyse(tieout: Tieout, tmp_path: Path) -> Tieout:
    """An XNYS instrument whose last price (190, from the Wednesday's close) is the limit."""
    t = tieout.at("2026-11-25T21:00:00Z")  # after the close: the bar has happened
    t.ok("instrument", "add", "AAPL", "--exchange", "XNYS", "--currency", "USD")
    t.ok("account", "open", "A1", "--currency", "USD", "--type", "margin")
    t.ok("cash", "deposit", "A1", "100000")
    t.ok(
        "md",
        "import",
        write(
            tmp_path / "wed.csv",
            "time,symbol,open,high,low,close,volume\n"
            "2026-11-25T20:59:00Z,AAPL,190,190,190,190,100000\n",
        ),
    )
    assert t.ok("md", "last", "AAPL", "--json").json()["price"] == "190"
    return tieout.at(THANKSGIVING)


def aapl_buy(t: Tieout, *args: str) -> Result:
    """`order submit` of an AAPL buy for A1 with these options."""
    return t("order", "submit", "--account", "A1", "--symbol", "AAPL", "--side", "buy", *args)


def limit_buy(t: Tieout, client_id: str, *extra: str) -> dict[str, Any]:
    args = ["--qty", "1", "--type", "limit", "--limit", "190", "--client-order-id", client_id]
    r = aapl_buy(t, *args, *extra, "--json")
    assert r.code == 0, r.err
    order: dict[str, Any] = r.json()
    return order


@pytest.mark.parametrize("tif", [("--tif", "gtc"), ("--tif", "gtd", "--expire-at", "2026-12-31")])
def test_a_marketable_gt_order_entered_on_a_holiday_rests(
    nyse: Tieout, tif: tuple[str, ...]
) -> None:
    order = limit_buy(nyse, "G1", *tif)
    assert (order["status"], order["cum_qty"], order["leaves_qty"]) == ("new", "0", "1")
    assert nyse.ok("exec", "list", "--json").json() == []
    assert nyse.ok("positions", "--account", "A1", "--json").json() == []
    assert nyse.ok("cash", "balance", "A1", "--json").json()["reserved"] == "190"


def test_a_day_or_market_order_is_still_refused_on_a_holiday(nyse: Tieout) -> None:
    r = aapl_buy(nyse, "--qty", "1", "--type", "limit", "--limit", "190")
    assert r.code == 4 and "market closed" in r.err


def test_an_order_file_on_a_holiday_fills_nothing(nyse: Tieout, tmp_path: Path) -> None:
    f = write(
        tmp_path / "o.csv",
        "account,symbol,side,qty,type,limit,tif,expire_at,client_order_id\n"
        "A1,AAPL,buy,1,limit,190,gtc,,F1\n"
        "A1,AAPL,buy,2,limit,191,gtd,2026-12-31,F2\n",
    )
    nyse.ok("order", "submit", "--file", f)
    got = {o["client_order_id"]: o["status"] for o in nyse.ok("order", "list", "--json").json()}
    assert got == {"F1": "new", "F2": "new"}
    assert nyse.ok("exec", "list", "--json").json() == []


def test_an_amend_on_a_holiday_that_makes_the_order_marketable_rests(nyse: Tieout) -> None:
    placed = aapl_buy(nyse, "--qty", "1", "--type", "limit", "--limit", "180", "--tif", "gtc",
                      "--json")
    assert placed.code == 0, placed.err
    order = placed.json()
    amended = nyse.ok("order", "amend", order["order_id"], "--limit", "190", "--json").json()
    assert (amended["status"], amended["limit_price"], amended["cum_qty"]) == ("new", "190", "0")
    assert nyse.ok("exec", "list", "--json").json() == []


def test_the_resting_order_fills_in_the_next_session(nyse: Tieout, tmp_path: Path) -> None:
    order = limit_buy(nyse, "G1", "--tif", "gtc")
    friday = nyse.at(NEXT_SESSION)
    friday.ok(
        "md",
        "import",
        write(
            tmp_path / "fri.csv",
            "time,symbol,open,high,low,close,volume\n"
            "2026-11-27T14:40:00Z,AAPL,189,189,189,189,100000\n",
        ),
    )
    shown = friday.ok("order", "show", order["order_id"], "--json").json()
    assert (shown["status"], shown["avg_px"]) == ("filled", "189")
    (ex,) = friday.ok("exec", "list", "--json").json()
    assert ex["trade_date"] == "2026-11-27"


def test_a_bar_outside_the_session_fills_no_resting_order(nyse: Tieout, tmp_path: Path) -> None:
    order = limit_buy(nyse, "G1", "--tif", "gtc")
    nyse.ok(
        "md",
        "import",
        write(
            tmp_path / "thu.csv",
            "time,symbol,open,high,low,close,volume\n"
            "2026-11-26T17:21:00Z,AAPL,189,189,189,189,100000\n",
        ),
    )
    shown = nyse.ok("order", "show", order["order_id"], "--json").json()
    assert shown["status"] == "new"


# ---- a cancel (or replace) of an external order the venue has not acknowledged yet -----------


@pytest.fixture
def coin(book: Tieout) -> Tieout:
    """A 24/7 instrument with a fresh last price of 100 and a margin account A1 with 100,000
    USD (test_exec_apply_review's book)."""
    return book


def external(t: Tieout, client_id: str = "X1") -> dict[str, Any]:
    args = ["--side", "buy", "--qty", "10", "--type", "limit", "--limit", "99", "--venue", "ACME"]
    order: dict[str, Any] = t.ok(
        "order", "submit", "--account", "A1", "--symbol", "COIN", *args,
        "--client-order-id", client_id, "--json",
    ).json()  # fmt: skip
    assert order["status"] == "pending_new"
    return order


def show(t: Tieout, client_id: str) -> dict[str, Any]:
    shown: dict[str, Any] = t.ok("order", "show", "--client-order-id", client_id, "--json").json()
    return shown


def apply(t: Tieout, tmp_path: Path, name: str, *lines: str) -> None:
    t.ok("exec", "apply", write(tmp_path / name, "\n".join(lines) + "\n"))


def test_cancel_of_a_pending_new_order_then_the_venue_cancels_it(
    coin: Tieout, tmp_path: Path
) -> None:
    external(coin)
    assert coin.ok("cash", "balance", "A1", "--json").json()["reserved"] == "990"
    asked = coin.ok(
        "order", "cancel", "--client-order-id", "X1", "--new-client-order-id", "Y1", "--json"
    ).json()
    assert (asked["status"], asked["leaves_qty"]) == ("pending_cancel", "10")
    apply(coin, tmp_path, "c.fix", report("Y1", "K1", "4", (41, "X1")))
    done = show(coin, "Y1")
    assert (done["status"], done["cum_qty"], done["leaves_qty"]) == ("canceled", "0", "0")
    assert [h["status"] for h in done["history"]] == ["pending_new", "pending_cancel", "canceled"]
    assert coin.ok("cash", "balance", "A1", "--json").json()["reserved"] == "0"
    assert coin.ok("audit", "verify", "--json").json()["ok"] is True


def test_the_acknowledgement_crosses_the_cancel_which_the_venue_rejects(
    coin: Tieout, tmp_path: Path
) -> None:
    external(coin)
    coin.ok("order", "cancel", "--client-order-id", "X1")
    apply(coin, tmp_path, "ack.fix", report("X1", "K1", "0"))
    assert show(coin, "X1")["status"] == "pending_cancel"  # acknowledged underneath
    reject = fix_line((35, "9"), (11, "X1"), (434, "1"), (58, "broker option"))
    apply(coin, tmp_path, "rej.fix", reject)
    assert show(coin, "X1")["status"] == "new"
    assert coin.ok("cash", "balance", "A1", "--json").json()["reserved"] == "990"


def test_a_cancel_rejected_before_the_acknowledgement_leaves_it_pending_new(
    coin: Tieout, tmp_path: Path
) -> None:
    external(coin)
    coin.ok("order", "cancel", "--client-order-id", "X1")
    apply(coin, tmp_path, "rej.fix", fix_line((35, "9"), (11, "X1"), (434, "1")))
    assert show(coin, "X1")["status"] == "pending_new"
    apply(coin, tmp_path, "ack.fix", report("X1", "K1", "0"))
    assert show(coin, "X1")["status"] == "new"


def test_a_fill_while_the_cancel_is_pending_then_canceled(coin: Tieout, tmp_path: Path) -> None:
    external(coin)
    coin.ok("order", "cancel", "--client-order-id", "X1")
    apply(coin, tmp_path, "f.fix", report("X1", "K1", "F", (32, "4"), (31, "98.5")))
    mid = show(coin, "X1")
    assert (mid["status"], mid["cum_qty"], mid["leaves_qty"]) == ("pending_cancel", "4", "6")
    apply(coin, tmp_path, "c.fix", report("X1", "K2", "4"))
    done = show(coin, "X1")
    assert (done["status"], done["cum_qty"], done["leaves_qty"], done["avg_px"]) == (
        "canceled",
        "4",
        "0",
        "98.5",
    )
    (pos,) = coin.ok("positions", "--account", "A1", "--json").json()
    assert (Decimal(pos["quantity"]), Decimal(pos["cost_basis"])) == (
        Decimal(4),
        Decimal(394),
    )  # 4 x 98.5
    cash = coin.ok("cash", "balance", "A1", "--json").json()
    assert (Decimal(cash["balance"]), Decimal(cash["reserved"])) == (Decimal(99606), Decimal(0))
    assert coin.ok("audit", "verify", "--json").json()["ok"] is True


def test_an_amend_of_a_pending_new_order_then_the_venue_replaces_it(
    coin: Tieout, tmp_path: Path
) -> None:
    external(coin)
    asked = coin.ok(
        "order", "amend", "--client-order-id", "X1", "--qty", "6", "--new-client-order-id", "X2",
        "--json",
    ).json()  # fmt: skip
    assert (asked["status"], asked["quantity"]) == ("pending_replace", "10")
    apply(coin, tmp_path, "r.fix", report("X2", "K1", "5", (41, "X1"), (38, "6"), (44, "99")))
    done = show(coin, "X2")
    assert (done["status"], done["quantity"], done["leaves_qty"]) == ("new", "6", "6")
    assert coin.ok("cash", "balance", "A1", "--json").json()["reserved"] == "594"


def test_the_kill_switch_asks_the_venue_to_cancel_a_pending_new_order(
    coin: Tieout, tmp_path: Path
) -> None:
    order = external(coin)
    killed = coin.ok("risk", "kill", "--account", "A1", "--json").json()
    assert [(o["order_id"], o["status"]) for o in killed["canceled"]] == [
        (order["order_id"], "pending_cancel")
    ]
    # each cancel the switch asks for is in the hash-chained audit trail
    out = tmp_path / "audit.jsonl"
    coin.ok("audit", "export", "--from", "2000-01-01", "--to", "2100-01-01", "--out", str(out))
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(e["action"], e["entity_id"], e["reason"]) for e in events
            if e["action"] == "order.cancel"] == [("order.cancel", order["order_id"],
                                                   "kill switch")]  # fmt: skip


def test_a_bust_or_correction_reopening_an_order_under_the_kill_switch_cancels_it(
    coin: Tieout, tmp_path: Path
) -> None:
    """A filled order has nothing to cancel when the switch is engaged; a bust or a downward
    correction gives it leaves again, and it used to go on working (reserving cash, open to
    fills) with the switch on. It is now asked to cancel in the transaction that applies the
    report, and the cancel is in the audit trail. A bust of a live order whose cancel is
    open changes nothing else."""
    def submit(client_id: str, limit: str) -> None:
        coin.ok("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy",
                "--qty", "10", "--type", "limit", "--limit", limit, "--venue", "ACME",
                "--client-order-id", client_id)  # fmt: skip

    submit("B1", "99")
    submit("B2", "99.5")
    apply(coin, tmp_path, "fills.fix",
          report("B1", "F1", "F", (32, "4"), (31, "99")),
          report("B1", "F2", "F", (32, "6"), (31, "98")),
          report("B2", "F3", "F", (32, "10"), (31, "99")))  # fmt: skip
    assert (show(coin, "B1")["status"], show(coin, "B2")["status"]) == ("filled", "filled")
    assert coin.ok("risk", "kill", "--account", "A1", "--json").json()["canceled"] == []
    apply(coin, tmp_path, "bust.fix",
          report("B1", "G1", "G", (19, "F1"), (32, "1"), (31, "99")),
          report("B2", "H1", "H", (19, "F3")))  # fmt: skip
    b1, b2 = show(coin, "B1"), show(coin, "B2")
    assert (b1["status"], b1["cum_qty"], b1["leaves_qty"]) == ("pending_cancel", "7", "3")
    assert (b2["status"], b2["cum_qty"], b2["leaves_qty"]) == ("pending_cancel", "0", "10")
    out = tmp_path / "audit.jsonl"
    coin.ok("audit", "export", "--from", "2000-01-01", "--to", "2100-01-01", "--out", str(out))
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(e["entity_id"], e["reason"]) for e in events if e["action"] == "order.cancel"] == [
        (b1["order_id"], "kill switch"), (b2["order_id"], "kill switch")]  # fmt: skip
    # the venue confirms the cancels: nothing left working, nothing reserved
    apply(coin, tmp_path, "done.fix", report("B1", "C1", "4"), report("B2", "C2", "4"))
    assert (show(coin, "B1")["status"], show(coin, "B2")["status"]) == ("canceled", "canceled")
    assert coin.ok("cash", "balance", "A1", "--json").json()["reserved"] == "0"
    assert coin.ok("audit", "verify", "--json").json()["ok"] is True
    # without the switch a bust reopens the order and leaves it working
    coin.ok("risk", "release", "--account", "A1")
    submit("B3", "99.25")
    apply(coin, tmp_path, "b3.fix", report("B3", "F4", "F", (32, "10"), (31, "99")),
          report("B3", "H2", "H", (19, "F4")))  # fmt: skip
    assert show(coin, "B3")["status"] == "new"


def test_a_replace_pending_under_the_kill_switch_is_canceled_once_the_venue_answers(
    coin: Tieout, tmp_path: Path
) -> None:
    """The switch leaves an order with a replace open to the venue's answer; once the venue
    accepts (or rejects) the replace, the order is asked to cancel in the same transaction,
    instead of working on."""
    external(coin, "R1")
    external_2 = coin.ok(
        "order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy", "--qty", "7",
        "--type", "limit", "--limit", "98", "--venue", "ACME", "--client-order-id", "R2",
        "--json",
    ).json()  # fmt: skip
    apply(coin, tmp_path, "ack.fix", report("R1", "K1", "0"), report("R2", "K2", "0"))
    coin.ok("order", "amend", "--client-order-id", "R1", "--qty", "12",
            "--new-client-order-id", "R1b")
    coin.ok("order", "amend", "--client-order-id", "R2", "--qty", "8",
            "--new-client-order-id", "R2b")
    killed = coin.ok("risk", "kill", "--json").json()
    assert killed["canceled"] == []  # both wait for the venue's answer to their replace
    apply(coin, tmp_path, "rpl.fix", report("R1b", "K3", "5", (41, "R1"), (38, "12")),
          fix_line((35, "9"), (11, "R2b"), (41, "R2"), (434, "2")))
    assert (show(coin, "R1b")["status"], show(coin, "R1b")["quantity"]) == (
        "pending_cancel", "12")
    assert show(coin, "R2")["status"] == "pending_cancel"
    assert external_2["order_id"] == show(coin, "R2")["order_id"]
    assert coin.ok("audit", "verify", "--json").json()["ok"] is True
