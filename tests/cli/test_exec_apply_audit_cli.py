"""`exec apply` through the real command on both backends: what an audit of drop copies found
(session 16). A TradeDate the book could not date a settlement for crashed the whole file; trade
dates before the order existed, or in the future, and settlement dates centuries away were
booked; a cancel or replace accepted under another request's ClOrdID renamed the order and left
the open request unanswered; done for day was refused while a cancel was pending; a short sale's
Side (54) 5 was refused; a fok order filled in part, or a fill off the lot size, passed without a
word; a CheckSum of four digits passed."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.cli.test_exec_apply_review import apply, book, executions, shown
from tests.cli.test_order_cli import fix_line, report
from tests.conftest import Tieout, write

__all__ = ["book"]  # the fixture, for pytest


def _day(days: int = 0) -> str:
    """Today (UTC) and the days around it, as FIX dates: the book's clock is the real one (its
    last price is a minute old)."""
    return (datetime.now(UTC).date() + timedelta(days=days)).strftime("%Y%m%d")


def _placed(t: Tieout, cl: str, *args: str, qty: str = "10") -> dict[str, Any]:
    doc: dict[str, Any] = t.ok(
        "order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy", "--qty", qty,
        "--type", "limit", "--limit", "101", "--venue", "ACME", "--client-order-id", cl, *args,
        "--json",
    ).json()  # fmt: skip
    return doc


def test_trade_and_settlement_dates_outside_the_order_s_life_are_refused_not_a_crash(
    book: Tieout, tmp_path: Path
) -> None:
    t = book
    _placed(t, "X1")
    r = apply(
        t,
        tmp_path,
        "drop.fix",
        report("X1", "X1E0", "0"),
        report("X1", "E1", "F", (32, "1"), (31, "100")),
        report("X1", "E2", "F", (32, "1"), (31, "100"), (75, "99991231")),  # crashed the run
        report("X1", "E3", "F", (32, "1"), (31, "100"), (75, _day(3))),  # days ahead
        report("X1", "E4", "F", (32, "1"), (31, "100"), (75, "19700101")),  # before the order
        report("X1", "E5", "F", (32, "1"), (31, "100"), (75, _day()), (64, "29991231")),
        report("X1", "E6", "F", (32, "1"), (31, "100"), (75, _day()), (64, _day(2))),
        report("X1", "E7", "G", (19, "E1"), (32, "1"), (31, "99"), (75, "99991231")),
        report("X1", "E8", "F", (32, "1"), (31, "100")),
    )
    assert r.code == 3, r.err
    assert "Traceback" not in r.err
    problems = {p["line"]: p["reason"] for p in r.json()["problems"]}
    assert set(problems) == {3, 4, 5, 6, 8}
    assert "after the trade date of now" in problems[3]
    assert "after the trade date of now" in problems[4]
    assert "before order" in problems[5] and "was placed" in problems[5]
    assert "more than a year after the trade date" in problems[6]
    assert "TradeDate (75)" in problems[8]
    ex = executions(t)
    assert set(ex) == {"E1", "E6", "E8"}  # the rest of the file was applied
    day = datetime.now(UTC).date()
    assert (ex["E6"]["trade_date"], ex["E6"]["settle_date"]) == (
        day.isoformat(),
        (day + timedelta(days=2)).isoformat(),
    )
    assert shown(t, "X1")["cum_qty"] == "3"
    assert t.ok("audit", "verify", "--json").json()["ok"] is True


def test_exec_import_of_a_trade_date_with_no_settlement_date_after_it_is_refused(
    book: Tieout, tmp_path: Path
) -> None:
    head = "exec_id,account,symbol,side,quantity,price,trade_date,venue\n"
    f = write(tmp_path / "e.csv", head + "E1,A1,COIN,buy,1,100,9999-12-31,V\n")
    r = book("exec", "import", f)
    assert r.code == 3, r.err
    assert "Traceback" not in r.err and "settles after the last date there is" in r.err
    assert book.ok("exec", "list", "--json").json() == []


def test_a_cancel_or_replace_accepted_under_another_request_s_id_is_refused(
    book: Tieout, tmp_path: Path
) -> None:
    t = book
    _placed(t, "M3")
    _placed(t, "R1", qty="11")
    acks = apply(t, tmp_path, "ack.fix", report("M3", "M3E0", "0"), report("R1", "R1E0", "0"))
    assert acks.code == 0, acks.err
    t.ok("order", "cancel", "--client-order-id", "M3", "--account", "A1",
         "--new-client-order-id", "M3c")  # fmt: skip
    t.ok("order", "amend", "--client-order-id", "R1", "--account", "A1", "--limit", "100.5",
         "--new-client-order-id", "R1a")  # fmt: skip
    r = apply(
        t,
        tmp_path,
        "answers.fix",
        report("M3other", "MF", "4", (41, "M3")),  # names no request of the order
        report("R1", "RF", "5", (41, "R1")),  # the order's own id, not the replace's
    )
    assert r.code == 3, r.err
    reasons = [p["reason"] for p in r.json()["problems"]]
    assert "M3other is not the open request" in reasons[0] and "(that is M3c)" in reasons[0]
    assert "R1 is not the open request" in reasons[1] and "(that is R1a)" in reasons[1]
    assert shown(t, "M3c")["status"] == "pending_cancel"
    assert shown(t, "R1a")["status"] == "pending_replace"
    # the right names apply; an unsolicited cancel names the order itself
    ok = apply(
        t,
        tmp_path,
        "right.fix",
        report("M3c", "MG", "4", (41, "M3")),
        report("R1a", "RG", "5", (41, "R1")),
    )
    assert ok.code == 0, ok.err
    assert shown(t, "M3c")["status"] == "canceled"
    assert (shown(t, "R1a")["status"], shown(t, "R1a")["limit_price"]) == ("new", "100.5")
    t.ok("order", "cancel", "--client-order-id", "R1a", "--account", "A1",
         "--new-client-order-id", "R1c")  # fmt: skip
    assert apply(t, tmp_path, "unsolicited.fix", report("R1a", "RH", "4")).code == 0
    assert shown(t, "R1a")["status"] == "canceled"


def test_done_for_day_while_a_cancel_is_pending_and_a_short_sale_s_side(
    book: Tieout, tmp_path: Path
) -> None:
    t = book
    _placed(t, "D1")
    assert apply(t, tmp_path, "ack.fix", report("D1", "D1E0", "0")).code == 0
    t.ok("order", "cancel", "--client-order-id", "D1", "--account", "A1")
    r = apply(t, tmp_path, "dfd.fix", report("D1", "D1E1", "3", (39, "6")))
    assert r.code == 0, r.err
    assert shown(t, "D1")["status"] == "pending_cancel"  # precedence: the request shows
    rejected = fix_line((35, "9"), (11, "D1"), (41, "D1"), (434, "1"), (39, "3"))
    assert apply(t, tmp_path, "reject.fix", rejected).code == 0
    assert shown(t, "D1")["status"] == "done_for_day"
    # a sale reported as a short sale (54=5) is the order's side
    t.ok("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "sell", "--qty",
         "2", "--type", "limit", "--limit", "99", "--venue", "ACME",
         "--client-order-id", "S1")  # fmt: skip
    short = apply(
        t, tmp_path, "short.fix", report("S1", "S1E0", "0"),
        report("S1", "S1E1", "F", (54, "5"), (32, "2"), (31, "99")),
        report("S1", "S1E2", "F", (54, "1"), (32, "1"), (31, "99")),  # a buy it is not
    )  # fmt: skip
    assert short.code == 3
    (problem,) = short.json()["problems"]
    assert problem["line"] == 3 and "Side (54)" in problem["reason"]
    assert shown(t, "S1")["status"] == "filled"


def test_a_fok_order_ended_part_filled_or_a_fill_off_the_lot_size_is_warned_of(
    book: Tieout, tmp_path: Path
) -> None:
    """A fok order the venue ends with part of it filled, and a fill off the lot size, are
    applied (the venue's fills are facts) and warned of. A fok order filled whole in several
    executions at once is not (FIX allows it: a re-review of the first version, which warned
    of every fill short of the whole)."""
    t = book
    t.ok("instrument", "add", "LOTS", "--exchange", "24/7", "--currency", "USD",
         "--lot-size", "10")  # fmt: skip
    _placed(t, "F1", "--tif", "fok")
    _placed(t, "F2", "--tif", "fok", qty="12")
    r = apply(
        t,
        tmp_path,
        "fok.fix",
        report("F1", "F1E0", "0"),
        report("F1", "F1E1", "F", (32, "4"), (31, "100")),
        report("F1", "F1E2", "F", (32, "6"), (31, "100")),  # whole: no word
        report("F2", "F2E0", "0"),
        report("F2", "F2E1", "F", (32, "4"), (31, "100")),
        report("F2", "F2E2", "4"),  # the venue kills the rest
    )
    assert r.code == 0, r.err
    warned = r.json()["warnings"]
    assert [w["line"] for w in warned] == [6], warned
    assert "is fill or kill (fok) and ended with 4 of 12 filled" in warned[0]["reason"]
    assert (shown(t, "F1")["status"], shown(t, "F2")["status"]) == ("filled", "canceled")
    lots = t.ok("order", "submit", "--account", "A1", "--symbol", "LOTS", "--side", "buy",
                "--qty", "20", "--type", "limit", "--limit", "101", "--venue", "ACME",
                "--client-order-id", "L1", "--json")  # fmt: skip
    assert lots.json()["status"] == "pending_new"
    r = apply(
        t,
        tmp_path,
        "lots.fix",
        report("L1", "L1E0", "0"),
        report("L1", "L1E1", "F", (32, "5"), (31, "100")),
    )
    assert r.code == 0, r.err
    assert any("lot size 10" in w["reason"] for w in r.json()["warnings"])


def test_a_checksum_has_three_digits(book: Tieout, tmp_path: Path) -> None:
    t = book
    _placed(t, "C1")
    good = report("C1", "C1E0", "0")
    assert good.endswith("|") and good[-4:-1].isdigit()
    four = good[:-4] + "0" + good[-4:]  # 10=0NNN: the same number, four digits
    r = apply(t, tmp_path, "four.fix", four)
    assert r.code == 3
    assert "CheckSum" in r.json()["problems"][0]["reason"]
    assert shown(t, "C1")["status"] == "pending_new"


def test_a_bust_of_a_fill_busted_through_its_correction_says_so(
    book: Tieout, tmp_path: Path
) -> None:
    t = book
    _placed(t, "B1")
    r = apply(
        t,
        tmp_path,
        "bust.fix",
        report("B1", "B1E0", "0"),
        report("B1", "T3", "F", (32, "2"), (31, "100")),
        report("B1", "U2", "G", (19, "T3"), (32, "2"), (31, "99")),
        report("B1", "U3", "H", (19, "U2")),
        report("B1", "U4", "H", (19, "T3")),
        report("B1", "U5", "G", (19, "U2"), (32, "1"), (31, "99")),
    )
    assert r.code == 3
    reasons = {p["line"]: p["reason"] for p in r.json()["problems"]}
    assert "busted already by U3" in reasons[5]
    assert "busted already by U3" in reasons[6]
    assert shown(t, "B1")["cum_qty"] == "0"


def test_exec_import_refuses_an_id_of_the_paper_venue_s_own_form(
    book: Tieout, tmp_path: Path
) -> None:
    """A row on the paper venue with the id the paper venue gives an order's next fill
    (O00000001-1) was booked, and every bar after failed booking that fill (executions are
    unique per venue and id): the paper venue filled nothing more, for any symbol (an audit of
    the paper venue). Such a row is refused; a trade the venue had that the book gets late
    (the demo's give-up) is still imported on the paper venue under an id of its own."""
    t = book
    resting = t.ok("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy",
                   "--qty", "3", "--type", "limit", "--limit", "99", "--tif", "gtc",
                   "--json").json()  # fmt: skip
    assert (resting["order_id"], resting["status"]) == ("O00000001", "new")
    head = "exec_id,account,symbol,side,quantity,price,trade_date,venue\n"
    day = datetime.now(UTC).date().isoformat()
    row = f"O00000001-1,A1,COIN,buy,5,99,{day},paper\n"
    r = t("exec", "import", write(tmp_path / "e.csv", head + row))
    assert r.code == 3, r.err
    assert "the paper venue's own fill ids" in r.err
    late = f"GIVEUP-1,A1,COIN,buy,5,99,{day},paper\n"
    t.ok("exec", "import", write(tmp_path / "g.csv", head + late))
    at = datetime.now(UTC).isoformat().replace("+00:00", "Z")  # after the order was placed
    bars = f"time,symbol,open,high,low,close,volume\n{at},COIN,99,99,99,99,5000\n"
    t.ok("md", "import", write(tmp_path / "bars2.csv", bars))
    assert shown(t, resting["client_order_id"])["status"] == "filled"
    assert set(executions(t)) == {"GIVEUP-1", "O00000001-1"}


def test_a_settlement_date_is_bounded_without_a_trade_date_too(
    book: Tieout, tmp_path: Path
) -> None:
    """The year's bound on SettlDate, and SettlDate before the trade date on a correction,
    were checked only when the report stated TradeDate (75): a fill without it settled in
    2999, a correction in 1970 (a re-review). exec import bounds settle_date alike."""
    t = book
    _placed(t, "S1")
    r = apply(
        t,
        tmp_path,
        "settle.fix",
        report("S1", "S1E0", "0"),
        report("S1", "S1E1", "F", (32, "1"), (31, "100"), (64, "29991231")),
        report("S1", "S1E3", "F", (32, "1"), (31, "100")),
        report("S1", "S1E4", "G", (19, "S1E3"), (32, "1"), (31, "99"), (64, "19700101")),
        report("S1", "S1E5", "G", (19, "S1E3"), (32, "1"), (31, "99"), (64, "29991231")),
    )
    assert r.code == 3, r.err
    problems = {p["line"]: p["reason"] for p in r.json()["problems"]}
    assert set(problems) == {2, 4, 5}
    assert "more than a year after the trade date" in problems[2]
    assert "is before the trade date" in problems[4]
    assert "more than a year after the trade date" in problems[5]
    assert set(executions(t)) == {"S1E3"}
    head = "exec_id,account,symbol,side,quantity,price,trade_date,settle_date,venue\n"
    row = "E9,A1,COIN,buy,1,100,2026-11-27,9999-12-31,V\n"
    late = t("exec", "import", write(tmp_path / "late.csv", head + row))
    assert late.code == 3 and "more than a year after the trade date 2026-11-27" in late.err


def test_a_correction_s_settlement_date_is_checked_against_the_fill_as_it_stands(
    book: Tieout, tmp_path: Path
) -> None:
    """A correction naming the original fill, after an earlier correction restated its trade
    date, was checked against the original's trade date: it booked a settlement date before
    the trade date (a re-review)."""
    past = datetime.now(UTC) - timedelta(days=5)
    then = book.at(past.strftime("%Y-%m-%dT%H:%M:%SZ"))
    _placed(then, "P1")
    fill = report("P1", "P1E1", "F", (32, "4"), (31, "100"))
    assert apply(then, tmp_path, "fill.fix", report("P1", "P1E0", "0"), fill).code == 0
    restated = report("P1", "P1C1", "G", (19, "P1E1"), (32, "4"), (31, "100"), (75, _day()))
    assert apply(book, tmp_path, "c1.fix", restated).code == 0, "restating to today"
    early = f"{past + timedelta(days=1):%Y%m%d}"  # after the old trade date, before the new
    second = report("P1", "P1C2", "G", (19, "P1E1"), (32, "4"), (31, "99"), (64, early))
    r = apply(book, tmp_path, "c2.fix", second)
    assert r.code == 3, r.err
    assert "is before the trade date" in r.json()["problems"][0]["reason"]
    assert "P1C2" not in executions(book)


def test_exec_import_refuses_a_trade_dated_after_today(book: Tieout, tmp_path: Path) -> None:
    """A trade dated next year was booked (a re-review); today anywhere on Earth is the last
    date a trade can have."""
    t = book.at("2026-11-28T09:00:00Z")  # 23:00 in Kiribati (UTC+14): the 28th there too
    head = "exec_id,account,symbol,side,quantity,price,trade_date,venue\n"
    rows = "E1,A1,COIN,buy,1,100,2026-11-28,V\nE2,A1,COIN,buy,1,100,2027-01-05,V\n"
    r = t("exec", "import", write(tmp_path / "future.csv", head + rows))
    assert r.code == 3, r.err
    assert "line 3" in r.err and "is after today (2026-11-28" in r.err
    assert t.ok("exec", "list", "--json").json() == []  # the file is refused whole
    ahead = t.at("2026-11-28T11:00:00Z")  # the 29th has begun in Kiribati
    kiribati = rows.replace("2027-01-05", "2026-11-29")
    ahead.ok("exec", "import", write(tmp_path / "ok.csv", head + kiribati))
    assert len(ahead.ok("exec", "list", "--json").json()) == 2
