"""Through the real command on both backends: what a review of order files, expiry and stuck
orders found. An order given no client order id never takes one the account used already; an
external day order past its expiry that the venue never reported is stuck; `--stuck` keeps the
other filters; options beside `--file` are refused however they are written; `PAPER` is the
paper venue; a refused row keeps its client order id; a nameless header column is named."""

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tests.cli.test_exec_apply_review import apply, book, external
from tests.cli.test_order_cli import report, submit
from tests.conftest import Tieout, write

__all__ = ["book"]  # the fixture, used by name

HEADER = "account,symbol,side,qty,type,limit,tif,client_order_id,venue\n"


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_an_order_without_a_client_order_id_never_takes_one_the_account_used(
    book: Tieout, tmp_path: Path
) -> None:
    # the next order would be O00000002, named by its order id: the account used that text
    first = submit(book, "--side", "buy", "--qty", "1", "--client-order-id", "O00000002")
    assert first["order_id"] == "O00000001"
    second = submit(book, "--side", "buy", "--qty", "2")
    assert (second["order_id"], second["client_order_id"]) == ("O00000002", "O00000002-2")
    assert second["duplicate"] is False
    # the same in a file: row 2 names O00000004, which the row after it would have taken
    f = write(tmp_path / "o.csv", HEADER + "A1,COIN,buy,3,,,,O00000004,\nA1,COIN,buy,4,,,,,\n")
    doc = book.ok("order", "submit", "--file", f, "--json").json()
    assert (doc["accepted"], doc["rejected"]) == (2, 0)
    assert [(x["order_id"], x["client_order_id"]) for x in doc["results"]] == [
        ("O00000003", "O00000004"),
        ("O00000004", "O00000004-2"),
    ]
    ids = [o["client_order_id"] for o in book.ok("order", "list", "--json").json()]
    assert sorted(ids) == ["O00000002", "O00000002-2", "O00000004", "O00000004-2"]
    # each name still finds its own order
    shown = book.ok("order", "show", "--client-order-id", "O00000002", "--json").json()
    assert shown["order_id"] == "O00000001"
    assert book.ok("audit", "verify", "--json").json()["ok"] is True


def test_an_external_day_order_past_its_expiry_is_stuck_until_the_venue_reports(
    book: Tieout, tmp_path: Path
) -> None:
    order = external(book, "X1")  # a day order on a 24/7 market: it expires at UTC midnight
    gtc = submit(book, "--side", "buy", "--qty", "1", "--type", "limit", "--limit", "90",
                 "--tif", "gtc", "--venue", "ACME", "--client-order-id", "G1")
    placed = datetime.fromisoformat(order["created_at"])
    t0 = book.at(_iso(placed + timedelta(minutes=1)))
    acks = apply(t0, tmp_path, "ack.fix", report("X1", "E0", "0"), report("G1", "E1", "0"))
    assert acks.code == 0
    midnight = (placed + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    # before its expiry, and within the threshold after it: not stuck
    assert book.at(_iso(midnight - timedelta(minutes=1))).ok(
        "order", "list", "--stuck", "--json").json() == []
    assert book.at(_iso(midnight + timedelta(minutes=10))).ok(
        "order", "list", "--stuck", "--json").json() == []
    late = book.at(_iso(midnight + timedelta(hours=9)))
    (stuck,) = late.ok("order", "list", "--stuck", "--json").json()  # the gtc order is not
    assert (stuck["order_id"], stuck["status"], stuck["waiting_for"]) == (
        order["order_id"], "new", "expiry")
    assert datetime.fromisoformat(stuck["waiting_since"]) == midnight
    assert "waiting for expiry since" in late.ok("order", "list", "--stuck").out
    # tieout does not expire an external order: the venue's drop copy may still bring its fills
    assert late.ok("order", "expire-due", "--json").json() == []
    assert late.ok("cash", "balance", "A1", "--json").json()["reserved"] != "0"
    # the filters still apply to stuck orders
    assert late.ok("order", "list", "--stuck", "--status", "filled", "--json").json() == []
    assert len(late.ok("order", "list", "--stuck", "--status", "new", "--json").json()) == 1
    book.ok("account", "open", "A2", "--currency", "USD")
    assert late.ok("order", "list", "--stuck", "--account", "A2", "--json").json() == []
    # the venue reports the expiry: no longer stuck, the reservation is freed
    assert apply(late, tmp_path, "exp.fix", report("X1", "E2", "C", (39, "C"))).code == 0
    assert late.ok("order", "list", "--stuck", "--json").json() == []
    assert gtc["status"] == "pending_new"


def test_stuck_orders_keep_the_status_filter_and_a_huge_threshold_is_refused(
    book: Tieout,
) -> None:
    order = external(book, "X1")
    late = book.at(_iso(datetime.fromisoformat(order["created_at"]) + timedelta(minutes=20)))
    (stuck,) = late.ok("order", "list", "--stuck", "--status", "pending_new", "--json").json()
    assert (stuck["order_id"], stuck["waiting_for"]) == (order["order_id"], "new")
    assert late.ok("order", "list", "--stuck", "--status", "new", "--json").json() == []
    r = late("order", "list", "--stuck", "--stuck-minutes", "2000000000")
    assert r.code == 3 and "stuck minutes" in r.err and "Traceback" not in r.err


def test_every_order_option_beside_file_is_a_usage_error(book: Tieout, tmp_path: Path) -> None:
    f = write(tmp_path / "o.csv", HEADER + "A1,COIN,buy,1,limit,95,gtc,L1,\n")
    for option in (["--tif", "day"], ["--type", "market"], ["--venue", "paper"]):
        r = book("order", "submit", "--file", f, *option)
        assert r.code == 2 and f"{option[0]} cannot be given with --file" in r.err, r.err
    assert book.ok("order", "list", "--json").json() == []


def test_paper_in_any_case_is_the_paper_venue(book: Tieout, tmp_path: Path) -> None:
    f = write(tmp_path / "o.csv", HEADER + "A1,COIN,buy,1,,,,P1,PAPER\n")
    (line,) = book.ok("order", "submit", "--file", f, "--json").json()["results"]
    assert line["status"] == "filled"
    single = submit(book, "--side", "buy", "--qty", "2", "--venue", "Paper")
    assert single["status"] == "filled" and single["venue"] == "paper"


def test_a_refused_row_keeps_its_client_order_id(book: Tieout, tmp_path: Path) -> None:
    f = write(tmp_path / "o.csv", HEADER + "A1,COIN,buy,-1,,,,C3,\nNOPE,COIN,buy,1,,,,C4,\n"
              "A1,COIN,buy,1,,,,,\n")
    r = book("order", "submit", "--file", f, "--json")
    assert r.code == 3
    lines: list[dict[str, Any]] = r.json()["results"]
    assert [(x["line"], x["client_order_id"], x["order_id"] is None) for x in lines] == [
        (2, "C3", True), (3, "C4", True), (4, "O00000001", False)]


def test_a_header_column_without_a_name_is_named(book: Tieout, tmp_path: Path) -> None:
    f = write(tmp_path / "o.csv", '"account","symbol","side","qty",\nA1,COIN,buy,1,\n')
    r = book("order", "submit", "--file", f)
    assert r.code == 3 and "column(s) 5 of the header have no name" in r.err, r.err
    assert book.ok("order", "list", "--json").json() == []


def test_a_done_for_day_order_is_not_stuck_and_a_weekend_gtd_expires_at_friday_s_close(
    book: Tieout, tmp_path: Path
) -> None:
    book.ok("instrument", "add", "IBM", "--exchange", "XNYS", "--currency", "USD")
    mon = book.at("2026-11-23T15:00:00Z")
    mon.ok("md", "import", write(tmp_path / "ibm.csv", "time,symbol,open,high,low,close,volume\n"
                                 "2026-11-23T14:59:00Z,IBM,100,100,100,100,1000\n"))
    for cl, tif in (("D1", ["--tif", "day"]),
                    ("G1", ["--tif", "gtd", "--expire-at", "2026-11-28"]),  # a Saturday
                    ("G2", ["--tif", "gtd", "--expire-at", "2026-11-24"])):
        mon.ok("order", "submit", "--account", "A1", "--symbol", "IBM", "--side", "buy", "--qty",
               "1", "--type", "limit", "--limit", "99", "--venue", "ACME", "--client-order-id",
               cl, *tif)
    lines = [report("D1", "E1", "0"), report("G1", "E2", "0"), report("G2", "E4", "0"),
             report("D1", "E3", "3", (39, "3")),  # D1 done for day: the venue's final word
             report("G2", "E5", "3", (39, "3"))]  # G2 too, but a gtd order trades again
    assert apply(book.at("2026-11-23T15:01:00Z"), tmp_path, "a.fix", *lines).code == 0
    tue = book.at("2026-11-24T12:00:00Z").ok("order", "list", "--stuck", "--json").json()
    assert tue == []
    wed = book.at("2026-11-25T12:00:00Z").ok("order", "list", "--stuck", "--json").json()
    assert [(x["client_order_id"], x["waiting_for"]) for x in wed] == [("G2", "expiry")]
    # G1 may last trade in Friday's session, which closes early (13:00 New York): from then on
    # the venue owes its expiry
    sat = book.at("2026-11-28T09:00:00Z").ok("order", "list", "--stuck", "--json").json()
    assert [(x["client_order_id"], x["waiting_for"]) for x in sat] == [
        ("G2", "expiry"), ("G1", "expiry")]
    assert datetime.fromisoformat(sat[1]["waiting_since"]) == datetime.fromisoformat(
        "2026-11-27T18:00:00+00:00")


def test_odd_option_values_are_refused_cleanly(book: Tieout) -> None:
    for minutes in ("1440000000000", "99999999999999999999", "-99999999999999"):
        r = book("order", "list", "--stuck", "--stuck-minutes", minutes)
        assert r.code in (2, 3) and "Traceback" not in r.err and "stuck minutes" in r.err, r.err
    for option in ("--type", "--tif", "--venue"):
        r = book("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy",
                 "--qty", "1", option, "")
        assert r.code in (2, 3), (option, r.err)
    assert book.ok("order", "list", "--json").json() == []
