"""Orders through the real command on both backends: the paper venue, idempotent client order
ids, risk rejections, cancels, reservations and the order's history."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import Result, Tieout, write


@pytest.fixture
def book(tieout: Tieout, tmp_path: Path) -> Tieout:
    """A 24/7 instrument (always in session) with a fresh last price of 100."""
    tieout.ok("instrument", "add", "COIN", "--exchange", "24/7", "--currency", "USD")
    tieout.ok("instrument", "add", "BAD", "--exchange", "24/7", "--currency", "USD", "--restricted")
    tieout.ok("account", "open", "A1", "--currency", "USD", "--type", "margin")
    tieout.ok("cash", "deposit", "A1", "100000")
    at = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    tieout.ok(
        "md",
        "import",
        write(
            tmp_path / "bars.csv",
            "time,symbol,open,high,low,close,"
            f"volume\n{at},COIN,100,101,99,100,5000\n{at},BAD,10,10,10,10,5000\n",
        ),
    )
    return tieout


def submit(t: Tieout, *args: str) -> dict:
    return t.ok("order", "submit", "--account", "A1", "--symbol", "COIN", *args, "--json").json()


def test_a_market_order_fills_on_paper_and_books_everything(book: Tieout) -> None:
    order = submit(book, "--side", "buy", "--qty", "10", "--client-order-id", "C1")
    assert (order["status"], order["cum_qty"], order["leaves_qty"], order["avg_px"]) == (
        "filled",
        "10",
        "0",
        "100",
    )
    assert order["duplicate"] is False
    (pos,) = book.ok("positions", "--account", "A1", "--json").json()
    assert (pos["symbol"], pos["quantity"], pos["cost_basis"]) == ("COIN", "10", "1000")
    assert book.ok("cash", "balance", "A1", "--json").json()["balance"] == "99000"
    (ex,) = book.ok("exec", "list", "--json").json()
    assert (ex["order_id"], ex["client_order_id"], ex["source"]) == (
        order["order_id"],
        "C1",
        "paper",
    )
    shown = book.ok("order", "show", "--client-order-id", "C1", "--json").json()
    assert [h["status"] for h in shown["history"]] == ["pending_new", "new", "filled"]
    assert all(h["actor"] == "tester" for h in shown["history"])
    assert book.ok("audit", "verify", "--json").json()["ok"] is True


def test_the_same_client_order_id_never_makes_a_second_order(book: Tieout) -> None:
    first = submit(book, "--side", "buy", "--qty", "10", "--client-order-id", "C1")
    again = submit(book, "--side", "buy", "--qty", "10.0", "--client-order-id", "C1")
    assert again["duplicate"] is True and again["order_id"] == first["order_id"]
    other = book(
        "order",
        "submit",
        "--account",
        "A1",
        "--symbol",
        "COIN",
        "--side",
        "buy",
        "--qty",
        "11",
        "--client-order-id",
        "C1",
    )
    assert other.code == 4 and "other terms" in other.err
    assert len(book.ok("order", "list", "--json").json()) == 1
    assert len(book.ok("exec", "list", "--json").json()) == 1


def test_a_resting_limit_order_reserves_cash_until_canceled(book: Tieout) -> None:
    order = submit(
        book, "--side", "buy", "--qty", "5", "--type", "limit", "--limit", "90", "--tif", "gtc"
    )
    assert (order["status"], order["leaves_qty"]) == ("new", "5")
    bal = book.ok("cash", "balance", "A1", "--json").json()
    assert (bal["balance"], bal["reserved"], bal["available"]) == ("100000", "450", "99550")
    canceled = book.ok("order", "cancel", order["order_id"], "--json").json()
    assert (canceled["status"], canceled["leaves_qty"]) == ("canceled", "0")
    assert book.ok("cash", "balance", "A1", "--json").json()["reserved"] == "0"
    again = book("order", "cancel", order["order_id"])
    assert again.code == 4 and "canceled" in again.err
    listed = book.ok("order", "list", "--status", "canceled", "--json").json()
    assert [o["order_id"] for o in listed] == [order["order_id"]]


def test_a_filled_order_cannot_be_canceled(book: Tieout) -> None:
    order = submit(book, "--side", "sell", "--qty", "3")
    r = book("order", "cancel", order["order_id"])
    assert r.code == 4 and "filled" in r.err
    assert book.ok("order", "show", order["order_id"], "--json").json()["status"] == "filled"


def test_an_ioc_limit_that_cannot_fill_is_canceled(book: Tieout) -> None:
    order = submit(
        book, "--side", "buy", "--qty", "5", "--type", "limit", "--limit", "95", "--tif", "ioc"
    )
    assert (order["status"], order["cum_qty"]) == ("canceled", "0")
    marketable = submit(
        book, "--side", "buy", "--qty", "5", "--type", "limit", "--limit", "101", "--tif", "ioc"
    )
    assert (marketable["status"], marketable["avg_px"]) == ("filled", "100")


def test_risk_rejections_are_recorded_and_refused(book: Tieout) -> None:
    r = book(
        "order",
        "submit",
        "--account",
        "A1",
        "--symbol",
        "BAD",
        "--side",
        "buy",
        "--qty",
        "1",
        "--json",
    )
    assert r.code == 4 and "restricted" in r.err
    assert r.json()["status"] == "rejected" and "restricted" in r.json()["reject_reason"]
    big = book(
        "order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy", "--qty", "2000"
    )
    assert big.code == 4 and "buying power" in big.err
    statuses = [o["status"] for o in book.ok("order", "list", "--json").json()]
    assert statuses == ["rejected", "rejected"]
    assert book.ok("exec", "list", "--json").json() == []


def test_an_external_venue_leaves_the_order_pending(book: Tieout) -> None:
    order = submit(
        book,
        "--side",
        "buy",
        "--qty",
        "5",
        "--type",
        "limit",
        "--limit",
        "99",
        "--venue",
        "ACME",
        "--client-order-id",
        "X1",
    )
    assert order["status"] == "pending_new"
    twin = book(
        "order",
        "submit",
        "--account",
        "A1",
        "--symbol",
        "COIN",
        "--side",
        "buy",
        "--qty",
        "5",
        "--type",
        "limit",
        "--limit",
        "99",
        "--venue",
        "ACME",
    )
    assert twin.code == 4 and "duplicate order" in twin.err  # same terms within the window
    # a cancel may be requested before the venue acknowledges (FIX 4.4 Appendix D, B.1.d)
    r = book("order", "cancel", "--client-order-id", "X1", "--json")
    assert r.code == 0 and r.json()["status"] == "pending_cancel"


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (("--side", "hold", "--qty", "1"), 3, "must be one of buy, sell"),
        (("--side", "buy", "--qty", "0"), 3, "greater than zero"),
        (("--side", "buy", "--qty", "1", "--type", "limit"), 3, "limit"),
        (("--side", "buy", "--qty", "1", "--tif", "forever"), 3, "must be one of"),
    ],
)
def test_bad_order_values(book: Tieout, args: tuple[str, ...], code: int, text: str) -> None:
    r = book("order", "submit", "--account", "A1", "--symbol", "COIN", *args)
    assert r.code == code, r.err
    assert text in r.err
    assert book.ok("order", "list", "--json").json() == []


def test_unknown_account_symbol_and_order(book: Tieout) -> None:
    assert (
        book(
            "order", "submit", "--account", "ZZ", "--symbol", "COIN", "--side", "buy", "--qty", "1"
        ).code
        == 5
    )
    assert (
        book(
            "order", "submit", "--account", "A1", "--symbol", "ZZ", "--side", "buy", "--qty", "1"
        ).code
        == 5
    )
    assert book("order", "show", "O99").code == 5
    assert book("order", "show").code == 2  # usage: name the order


def fix_line(*fields: tuple[int, str], sep: str = "|") -> str:
    """A FIX 4.4 message with a correct BodyLength and CheckSum."""
    body = "".join(f"{t}={v}\x01" for t, v in fields)
    head = f"8=FIX.4.4\x019={len(body.encode())}\x01"
    total = sum((head + body).encode()) % 256
    return (head + body + f"10={total:03d}\x01").replace("\x01", sep)


def report(cl: str, exec_id: str, exec_type: str, *extra: tuple[int, str]) -> str:
    return fix_line((35, "8"), (11, cl), (17, exec_id), (150, exec_type), *extra)


def test_execution_reports_drive_an_external_order(book: Tieout, tmp_path: Path) -> None:
    submit(book, "--side", "buy", "--qty", "10", "--type", "limit", "--limit", "99",
           "--venue", "ACME", "--client-order-id", "X1")
    lines = [
        report("X1", "A1", "0"),
        report("X1", "A2", "F", (32, "4"), (31, "98.5"), (12, "1.25")),
        report("X1", "A2", "F", (32, "4"), (31, "98.5")),  # the same ExecID again
        report("X1", "A3", "F", (32, "6"), (31, "99")),
        report("X1", "A4", "G", (19, "A3"), (32, "6"), (31, "98")),
        fix_line((35, "8"), (11, "NOPE"), (17, "B1"), (150, "F"), (32, "1"), (31, "1")),
        report("X1", "A5", "F", (32, "1"), (31, "99")),  # overfill
        "8=FIX.4.4|9=5|35=8|10=999|",  # bad checksum
    ]
    f = write(tmp_path / "drop.fix", "\n".join(lines) + "\n")
    r = book("exec", "apply", f)
    assert r.code == 3
    assert "line 6" in r.err and "NOPE" in r.err
    assert "line 7" in r.err and "apply_fill is not allowed" in r.err  # the order is filled
    assert "the others applied" in r.err
    assert "line 8" in r.err and "CheckSum" in r.err
    shown = book.ok("order", "show", "--client-order-id", "X1", "--json").json()
    assert (shown["status"], shown["cum_qty"], shown["leaves_qty"]) == ("filled", "10", "0")
    assert shown["avg_px"] == "98.2"  # (4 x 98.5 + 6 x 98) / 10
    (pos,) = book.ok("positions", "--account", "A1", "--json").json()
    assert (pos["quantity"], pos["cost_basis"]) == ("10", "983.25")  # 394 + 1.25 + 588
    assert book.ok("cash", "balance", "A1", "--json").json()["balance"] == "99016.75"
    again = book("exec", "apply", f, "--json")
    assert again.json()["applied"] == 0 and again.json()["duplicates"] == 5  # A2 twice
    assert book.ok("audit", "verify", "--json").json()["ok"] is True


def test_cancel_reject_and_bust_from_a_venue(book: Tieout, tmp_path: Path) -> None:
    submit(book, "--side", "sell", "--qty", "5", "--type", "limit", "--limit", "101",
           "--venue", "ACME", "--client-order-id", "S1")
    book.ok("exec", "apply", write(tmp_path / "a.fix", "\n".join([
        report("S1", "E1", "0"), report("S1", "E2", "F", (32, "5"), (31, "101"))]) + "\n"))
    assert book.ok("cash", "balance", "A1", "--json").json()["balance"] == "100505"
    book.ok("exec", "apply", write(tmp_path / "b.fix", report("S1", "E3", "H", (19, "E2"))
                                   + "\n"))
    shown = book.ok("order", "show", "--client-order-id", "S1", "--json").json()
    assert (shown["status"], shown["cum_qty"], shown["leaves_qty"]) == ("new", "0", "5")
    assert book.ok("cash", "balance", "A1", "--json").json()["balance"] == "100000"
    assert book.ok("positions", "--account", "A1", "--json").json() == []
    r = book("order", "cancel", "--client-order-id", "S1")
    assert r.code == 0
    assert book.ok("order", "show", "--client-order-id", "S1", "--json").json()["status"] == (
        "pending_cancel")
    book.ok("exec", "apply", write(tmp_path / "c.fix", fix_line(
        (35, "9"), (11, "S1"), (434, "1"), (58, "too late")) + "\n"))
    assert book.ok("order", "show", "--client-order-id", "S1", "--json").json()["status"] == "new"


def test_amend_on_paper_and_on_an_external_venue(book: Tieout, tmp_path: Path) -> None:
    order = submit(book, "--side", "buy", "--qty", "5", "--type", "limit", "--limit", "90",
                   "--tif", "gtc", "--client-order-id", "L1")
    up = book.ok("order", "amend", "--client-order-id", "L1", "--qty", "8",
                 "--new-client-order-id", "L2", "--json").json()
    assert (up["status"], up["quantity"], up["client_order_id"]) == ("new", "8", "L2")
    assert book.ok("cash", "balance", "A1", "--json").json()["reserved"] == "720"
    crossed = book.ok("order", "amend", order["order_id"], "--limit", "100", "--json").json()
    assert (crossed["status"], crossed["cum_qty"], crossed["avg_px"]) == ("filled", "8", "100")
    assert book.ok("order", "show", "--client-order-id", "L1", "--json").json()["order_id"] == (
        order["order_id"])  # every id the order has had still finds it
    ext = submit(book, "--side", "sell", "--qty", "5", "--type", "limit", "--limit", "108",
                 "--venue", "ACME", "--client-order-id", "E1")
    book.ok("exec", "apply", write(tmp_path / "ack.fix", report("E1", "K1", "0") + "\n"))
    pending = book.ok("order", "amend", ext["order_id"], "--qty", "3",
                      "--new-client-order-id", "E2", "--json").json()
    assert (pending["status"], pending["quantity"]) == ("pending_replace", "5")
    book.ok("exec", "apply", write(tmp_path / "rep.fix", report(
        "E2", "K2", "5", (41, "E1"), (38, "3"), (44, "108")) + "\n"))
    done = book.ok("order", "show", "--client-order-id", "E2", "--json").json()
    assert (done["status"], done["quantity"], done["leaves_qty"]) == ("new", "3", "3")
    assert book("order", "amend", ext["order_id"]).code == 2  # usage: --qty or --limit


def test_a_batch_file_submits_each_order_on_its_own(book: Tieout, tmp_path: Path) -> None:
    f = write(tmp_path / "orders.csv",
              "account,symbol,side,qty,type,limit,tif,client_order_id\n"
              "A1,COIN,buy,5,market,,,B1\n"
              "A1,COIN,buy,5,market,,,B1\n"
              "A1,COIN,buy,7,limit,95,gtc,B2\n"
              "A1,BAD,buy,1,market,,,B3\n"
              "A1,COIN,hold,1,market,,,B4\n"
              "ZZ,COIN,buy,1,market,,,B5\n")
    r = book("order", "submit", "--file", f, "--json")
    assert r.code == 3  # a row had bad values
    doc = r.json()
    assert (doc["orders"], doc["accepted"], doc["duplicates"], doc["rejected"]) == (6, 2, 1, 3)
    by_line = {x["line"]: x for x in doc["results"]}
    assert by_line[2]["status"] == "filled" and by_line[3]["duplicate"] is True
    assert by_line[4]["status"] == "new"
    assert by_line[5]["status"] == "rejected" and "restricted" in by_line[5]["reason"]
    assert by_line[6]["order_id"] is None and "buy, sell" in by_line[6]["reason"]
    assert by_line[7]["order_id"] is None and "not found" in by_line[7]["reason"]
    assert len(book.ok("order", "list", "--json").json()) == 3  # two accepted, one rejected
    refused_only = write(tmp_path / "r.csv", "account,symbol,side,qty\nA1,BAD,buy,1\n")
    assert book("order", "submit", "--file", refused_only).code == 4
    missing = write(tmp_path / "m.csv", "account,symbol,side\nA1,COIN,buy\n")
    r = book("order", "submit", "--file", missing)
    assert r.code == 3 and "missing required column(s): qty" in r.err


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_day_and_gtd_orders_expire_after_their_close(book: Tieout) -> None:
    now = datetime.now(UTC)
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
    day = submit(book, "--side", "buy", "--qty", "1", "--type", "limit", "--limit", "95")
    gtd = submit(book, "--side", "buy", "--qty", "1", "--type", "limit", "--limit", "94",
                 "--tif", "gtd", "--expire-at", midnight.date().isoformat())  # through tomorrow
    gtc = submit(book, "--side", "buy", "--qty", "1", "--type", "limit", "--limit", "93",
                 "--tif", "gtc")
    before = book.at(_iso(midnight - timedelta(seconds=1)))
    assert before.ok("order", "expire-due", "--json").json() == []
    after = book.at(_iso(midnight + timedelta(seconds=1)))
    assert [o["order_id"] for o in after.ok("order", "expire-due", "--json").json()] == [
        day["order_id"]]
    later = book.at(_iso(midnight + timedelta(days=1, seconds=1)))
    assert [o["order_id"] for o in later.ok("order", "expire-due", "--json").json()] == [
        gtd["order_id"]]
    status = {o["order_id"]: o["status"] for o in book.ok("order", "list", "--json").json()}
    assert status == {day["order_id"]: "expired", gtd["order_id"]: "expired",
                      gtc["order_id"]: "new"}
    assert book.ok("cash", "balance", "A1", "--json").json()["reserved"] == "93"


def test_orders_waiting_for_a_silent_venue_are_reported_stuck(book: Tieout) -> None:
    order = submit(book, "--side", "buy", "--qty", "1", "--type", "limit", "--limit", "99",
                   "--venue", "ACME")
    placed = datetime.fromisoformat(order["updated_at"])
    soon = book.at(_iso(placed + timedelta(minutes=5)))
    assert soon.ok("order", "list", "--stuck", "--json").json() == []
    late = book.at(_iso(placed + timedelta(minutes=20)))
    (stuck,) = late.ok("order", "list", "--stuck", "--json").json()
    assert (stuck["order_id"], stuck["status"]) == (order["order_id"], "pending_new")
    assert late.ok("order", "list", "--stuck", "--stuck-minutes", "30", "--json").json() == []
    # a cancel asked for while the venue has not acknowledged the order: it still waits for the
    # acknowledgement since its submission (it said "waiting for cancel since" the submission)
    asked = book.at(_iso(placed + timedelta(minutes=25)))
    asked.ok("order", "cancel", order["order_id"])
    later = book.at(_iso(placed + timedelta(minutes=40)))
    (stuck,) = later.ok("order", "list", "--stuck", "--json").json()
    assert (stuck["status"], stuck["waiting_for"], stuck["waiting_since"]) == (
        "pending_cancel", "new", order["created_at"])  # fmt: skip
    cancel_at = _iso(placed + timedelta(minutes=25))
    assert stuck["requests"] == [{"request": "cancel", "requested_at": cancel_at}]
    text = later.ok("order", "list", "--stuck").out
    assert f"(waiting for new since {order['created_at']}; cancel requested {cancel_at})" in text
    # a cancel chained behind a replace: both, each at its own time (the cancel showed the
    # replace's time, the replace not at all)
    other = submit(book, "--side", "buy", "--qty", "2", "--type", "limit", "--limit", "99",
                   "--venue", "ACME")  # fmt: skip
    amend_at, chained_at = (_iso(placed + timedelta(minutes=m)) for m in (26, 27))
    book.at(amend_at).ok("order", "amend", other["order_id"], "--qty", "3")
    book.at(chained_at).ok("order", "cancel", other["order_id"], "--new-client-order-id", "K2")
    docs = {d["order_id"]: d for d in later.ok("order", "list", "--stuck", "--json").json()}
    assert docs[other["order_id"]]["requests"] == [
        {"request": "replace", "requested_at": amend_at},
        {"request": "cancel", "requested_at": chained_at},
    ]


def test_limits_are_changed_by_audited_commands(book: Tieout) -> None:
    shown = book.ok("risk", "show", "--json").json()
    assert shown["max_order_quantity"] == "50000" and shown["kill_switch"] is False
    book.ok("risk", "set", "max-order-quantity", "3")
    r = book("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy",
             "--qty", "4")
    assert r.code == 4
    assert "quantity" in r.err
    book.ok("risk", "set", "tier.standard.max-position", "5")
    r = book("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy",
             "--qty", "3", "--type", "limit", "--limit", "95", "--tif", "gtc")
    assert r.code == 0
    r = book("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy",
             "--qty", "3", "--type", "limit", "--limit", "94", "--tif", "gtc")
    assert r.code == 4 and "position" in r.err
    bad = book("risk", "set", "max-leverage", "3")
    assert bad.code == 3 and "not a risk limit" in bad.err
    assert book("risk", "set", "max-notional", "0").code == 3
    assert book.ok("audit", "verify", "--json").json()["ok"] is True


def test_the_kill_switch_cancels_live_orders_and_refuses_new_ones(book: Tieout) -> None:
    resting = submit(book, "--side", "buy", "--qty", "2", "--type", "limit", "--limit", "95",
                     "--tif", "gtc")
    killed = book.ok("risk", "kill", "--account", "A1", "--reason", "runaway algo",
                     "--json").json()
    assert [o["order_id"] for o in killed["canceled"]] == [resting["order_id"]]
    assert killed["canceled"][0]["status"] == "canceled"
    r = book("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy",
             "--qty", "1")
    assert r.code == 4 and "kill switch" in r.err
    book.ok("risk", "release", "--account", "A1")
    assert submit(book, "--side", "buy", "--qty", "1")["status"] == "filled"
    book.ok("risk", "kill")  # the global switch
    assert book("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy",
                "--qty", "2").code == 4
    assert book.ok("risk", "show", "--json").json()["kill_switch"] is True
    assert book("risk", "kill", "--account", "NOPE").code == 5


def test_a_release_says_when_it_changed_nothing(book: Tieout) -> None:
    """Releasing a switch that is not engaged does not claim to have released it, writes
    nothing and audits nothing; releasing an account's switch under the global one says the
    account still cannot trade; engaging twice says so the second time."""
    def setting_events() -> int:
        return int(book.ok("audit", "verify", "--json").json()["events"])

    before = setting_events()
    r = book.ok("risk", "release", "--account", "A1")
    assert "was not engaged: nothing changed" in r.out and "released" not in r.out
    doc = book.ok("risk", "release", "--json").json()
    assert (doc["changed"], doc["global_kill_switch"]) == (False, False)
    assert setting_events() == before
    book.ok("risk", "kill", "--account", "A1")
    again = book.ok("risk", "kill", "--account", "A1", "--json").json()
    assert again["changed"] is False and setting_events() == before + 1
    # what stops trading now, as `risk release --json` says it (kill used to leave it out)
    assert (again["global_kill_switch"], again["killed_accounts"]) == (False, ["A1"])
    everyone = book.ok("risk", "kill", "--json").json()
    assert (everyone["global_kill_switch"], everyone["killed_accounts"]) == (True, ["A1"])
    assert set(everyone) - {"canceled", "awaiting_venue"} == set(doc)
    r = book.ok("risk", "release", "--account", "A1")
    assert "kill switch released for A1" in r.out
    assert "the global kill switch is still engaged: A1 cannot trade" in r.out
    assert book("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy",
                "--qty", "1").code == 4
    doc = book.ok("risk", "release", "--json").json()
    assert (doc["changed"], doc["global_kill_switch"]) == (True, False)
    assert submit(book, "--side", "buy", "--qty", "1")["status"] == "filled"


def test_resting_paper_orders_fill_when_bars_cross_them(book: Tieout, tmp_path: Path) -> None:
    placed = datetime.now(UTC)
    buy = submit(book, "--side", "buy", "--qty", "50", "--type", "limit", "--limit", "98",
                 "--tif", "gtc")
    stop = submit(book, "--side", "sell", "--qty", "5", "--type", "stop", "--stop", "97",
                  "--tif", "gtc")
    far = submit(book, "--side", "buy", "--qty", "5", "--type", "limit", "--limit", "91",
                 "--tif", "gtc")
    t1 = (placed + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    t2 = (placed + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    bars = write(tmp_path / "more.csv", "time,symbol,open,high,low,close,volume\n"
                 f"{t1},COIN,99,99.5,97.5,98,300\n"  # buy limit reached: 10% of 300 = 30
                 f"{t2},COIN,96.5,97,95,96,1000\n")  # gaps below the stop; limit fills rest
    # the clock after the bars: a bar is sent once it has ended
    book = book.at((placed + timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    r = book.ok("md", "import", bars, "--json").json()
    assert r["accepted"] == 2 and r["paper_orders_filled"] == 2
    b = book.ok("order", "show", buy["order_id"], "--json").json()
    assert (b["status"], b["cum_qty"], b["avg_px"]) == ("filled", "50", "97.4")  # 30@98 20@96.5
    s = book.ok("order", "show", stop["order_id"], "--json").json()
    assert (s["status"], s["avg_px"]) == ("filled", "96.5")  # the gap: filled at the open
    assert book.ok("order", "show", far["order_id"], "--json").json()["status"] == "new"
    pos = {p["symbol"]: p["quantity"] for p in book.ok("positions", "--account", "A1",
                                                           "--json").json()}
    assert pos == {"COIN": "45"}
    execs = book.ok("exec", "list", "--json").json()
    assert [e["exec_time"] for e in execs][:1] == [t1.replace("Z", ".000000Z")]
    again = book.ok("md", "import", bars, "--json").json()
    assert again["paper_orders_filled"] == 0  # the same bars again change nothing


def _audit_actions(t: Tieout, tmp_path: Path) -> list[dict]:
    out = tmp_path / "audit.jsonl"
    t.ok("audit", "export", "--from", "2000-01-01", "--to", "2100-01-01", "--out", str(out))
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_paper_slippage_and_commission_schedule(book: Tieout, tmp_path: Path) -> None:
    assert book.ok("paper", "show", "--json").json()["slippage-bps"] == "0"
    book.ok("paper", "set", "slippage-bps", "10")
    book.ok("paper", "set", "commission-per-unit", "0.01")
    terms = book.ok("paper", "set", "commission-min", "1", "--json").json()
    assert (terms["slippage-bps"], terms["commission-min"]) == ("10", "1")
    bought = submit(book, "--side", "buy", "--qty", "10")
    sold = submit(book, "--side", "sell", "--qty", "400")
    assert (bought["avg_px"], sold["avg_px"]) == ("100.1", "99.9")  # 10 bps against each
    fills = {e["side"]: e for e in book.ok("exec", "list", "--json").json()}
    assert fills["buy"]["commission"] == "1.00"  # 10 x 0.01 = 0.10 -> the minimum, in cents
    assert fills["sell"]["commission"] == "4.00"  # 400 x 0.01
    # 100000 - 10 x 100.1 - 1 + 400 x 99.9 - 4 (settlement is T+1, the balance is the book's)
    assert book.ok("cash", "balance", "A1", "--json").json()["balance"] == "138954.00"
    bad = book("paper", "set", "participation-pct", "150")
    assert bad.code == 3 and "at most 100" in bad.err
    assert book("paper", "set", "slippage-bps", "ten").code == 3
    assert book("paper", "set", "spread", "1").code == 3
    changes = [e for e in _audit_actions(book, tmp_path) if e["action"] == "setting.set"]
    assert [e["payload"]["key"] for e in changes] == [
        "paper.slippage-bps", "paper.commission-per-unit", "paper.commission-min"]


def test_an_amend_is_risk_checked_and_a_refused_request_is_recorded(
    book: Tieout, tmp_path: Path
) -> None:
    order = submit(book, "--side", "buy", "--qty", "5", "--type", "limit", "--limit", "90",
                   "--tif", "gtc")
    book.ok("risk", "set", "max-order-quantity", "100")
    r = book("order", "amend", order["order_id"], "--qty", "150")
    assert r.code == 4 and "max quantity" in r.err
    book.ok("risk", "set", "max-order-quantity", "100000")
    r = book("order", "amend", order["order_id"], "--qty", "2000")
    assert r.code == 4 and "buying power" in r.err  # 2000 x 90 > 100000
    shown = book.ok("order", "show", order["order_id"], "--json").json()
    assert (shown["quantity"], shown["status"]) == ("5", "new")  # never applied
    assert book.ok("order", "amend", order["order_id"], "--qty", "100", "--json").json()[
        "quantity"] == "100"
    filled = submit(book, "--side", "buy", "--qty", "1")
    assert book("order", "cancel", filled["order_id"]).code == 4
    refused = [e for e in _audit_actions(book, tmp_path) if e["action"].endswith("_refused")]
    assert [(e["action"], e["payload"]["code"]) for e in refused] == [
        ("order.amend_refused", "max_quantity"),
        ("order.amend_refused", "buying_power"),
        ("order.cancel_refused", "illegal_transition"),
    ]


def test_bars_a_crash_left_unworked_are_worked_by_the_next_import(
    book: Tieout, tmp_path: Path
) -> None:
    """A crash between an import's commit and the paper venue working its bars (or among the
    bars) loses no fill: the next `md import` works what was left, once."""
    from oms import md_book
    from oms.book import Ctx
    from oms.store import Store

    placed = datetime.now(UTC)
    buy = submit(book, "--side", "buy", "--qty", "50", "--type", "limit", "--limit", "98",
                 "--tif", "gtc")
    t1 = (placed + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    t2 = (placed + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    bars = write(tmp_path / "more.csv", "time,symbol,open,high,low,close,volume\n"
                 f"{t1},COIN,99,99.5,97.5,98,300\n{t2},COIN,96.5,97,95,96,1000\n")
    store = Store.open(book.db_url)
    after = placed + timedelta(minutes=3)  # a bar is sent once it has ended
    md_book.import_bars(store, Ctx("tester", after), bars)  # ... and the process dies here
    store.dispose()
    assert book.ok("order", "show", buy["order_id"], "--json").json()["status"] == "new"
    # the clock after the bars: a bar is sent once it has ended
    book = book.at((placed + timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    r = book.ok("md", "import", bars, "--json").json()
    assert (r["accepted"], r["paper_orders_filled"]) == (0, 1)
    b = book.ok("order", "show", buy["order_id"], "--json").json()
    assert (b["status"], b["cum_qty"], b["avg_px"]) == ("filled", "50", "97.4")
    assert book.ok("md", "import", bars, "--json").json()["paper_orders_filled"] == 0


def test_buying_power_is_in_the_currency_the_order_trades_in(book: Tieout, tmp_path: Path) -> None:
    """No FX: A1's US dollars do not buy a EUR instrument; its euros (from a sale) do, and a
    EUR order reserves euros, never dollars: singles, an amend and a file alike."""
    book.ok("instrument", "add", "EURX", "--exchange", "24/7", "--currency", "EUR")
    at = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    bars = f"time,symbol,open,high,low,close,volume\n{at},EURX,50,50,50,50,5000\n"
    book.ok("md", "import", write(tmp_path / "eur.csv", bars))

    def eurx(*args: str) -> Result:
        return book("order", "submit", "--account", "A1", "--symbol", "EURX", *args, "--json")

    def balance(currency: str) -> tuple[str, str, str]:
        doc = book.ok("cash", "balance", "A1", "--currency", currency, "--json").json()
        return doc["balance"], doc["reserved"], doc["available"]

    r = eurx("--side", "buy", "--qty", "10")  # 100,000 USD, no EUR
    assert r.code == 4 and "buying power" in r.err
    assert "available 0 EUR (cash 0 - reserved 0)" in r.err
    assert eurx("--side", "sell", "--qty", "100").json()["status"] == "filled"  # short: +5000 EUR
    assert balance("EUR") == ("5000", "0", "5000")
    rest = eurx("--side", "buy", "--qty", "60", "--type", "limit", "--limit", "48", "--tif", "gtc")
    assert rest.json()["status"] == "new"  # rests: 60 x 48 EUR reserved
    assert balance("EUR") == ("5000", "2880", "2120")
    assert balance("USD") == ("100000", "0", "100000")
    r = eurx("--side", "buy", "--qty", "41")  # 41 x 50 x 1.05 = 2152.5 > 2120
    assert r.code == 4 and "available 2120 EUR (cash 5000 - reserved 2880)" in r.err
    assert eurx("--side", "buy", "--qty", "40").json()["status"] == "filled"  # 2100 <= 2120
    assert balance("EUR") == ("3000", "2880", "120")
    # dollars are checked against dollars only: 950 x 100 x 1.05 = 99,750 fits 100,000 (it
    # would not if the 2,880 EUR reserved were taken from them)
    assert submit(book, "--side", "buy", "--qty", "950")["status"] == "filled"
    oid = rest.json()["order_id"]
    r = book("order", "amend", oid, "--qty", "63")  # 63 x 48 = 3024 > 3000 EUR (its own 2880 freed)
    assert r.code == 4 and "buying power" in r.err and "EUR" in r.err
    assert book.ok("order", "amend", oid, "--qty", "62", "--json").json()["quantity"] == "62"
    assert balance("EUR") == ("3000", "2976", "24")
    f = write(tmp_path / "orders.csv",
              "account,symbol,side,qty,type,limit,tif\n"
              "A1,EURX,buy,1,market,,\n"  # 52.5 EUR > 24 EUR available
              "A1,COIN,buy,10,market,,\n")  # 1,050 USD <= 5,000 USD left
    doc = book("order", "submit", "--file", f, "--json").json()
    by_line = {x["line"]: x for x in doc["results"]}
    assert by_line[2]["status"] == "rejected"
    assert "available 24 EUR (cash 3000 - reserved 2976)" in by_line[2]["reason"]
    assert by_line[3]["status"] == "filled"
    assert balance("USD") == ("4000", "0", "4000")
