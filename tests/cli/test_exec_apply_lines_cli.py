"""`exec apply` through the real command on both backends, on what a second review found:
one physical line is one message (control characters inside a line used to split it, booking
its first half), a tag tieout reads sent twice, a resend that restates other money terms, a
TransactTime before the order existed or a correction's from the future, and venue text with
terminal escapes in human output."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from oms.values import printable
from tests.cli.test_exec_apply_review import apply, book, executions, external, shown
from tests.cli.test_order_cli import fix_line, report
from tests.conftest import Tieout

__all__ = ["book"]  # the fixture, used by name


def _fix_time(t: datetime) -> str:
    return t.strftime("%Y%m%d-%H:%M:%S")


def test_a_control_character_refuses_its_whole_line(book: Tieout, tmp_path: Path) -> None:
    """Each of these used to split its line in two: the fill before the character was booked
    without what came after it (its commission, its currency, its TransactTime), and every
    later line number was off by one. Now the line is refused whole, on its own line number."""
    external(book, "X1")
    fill = report("X1", "E1", "F", (32, "1"), (31, "100"))
    tails = ["|58=a\u2028b", "\x0c|15=EUR", "\x1c|54=2", "\x85|12=50", "\r|12=9"]
    lines = [fill.replace("|10=", f"{tail}|10=", 1) for tail in tails]
    lines.append(report("X1", "E9", "F", (32, "2"), (31, "100"), (12, "1.5")))
    lines.append(report("NOPE", "E10", "F", (32, "1"), (31, "100")))
    r = apply(book, tmp_path, "drop.fix", *lines)
    assert r.code == 3, r.err
    doc = r.json()
    assert (doc["messages"], doc["applied"], doc["refused"]) == (7, 1, 6), doc
    problems = {p["line"]: p["reason"] for p in doc["problems"]}
    assert sorted(problems) == [1, 2, 3, 4, 5, 7]  # physical lines, none split
    assert "control character U+2028" in problems[1]
    assert "control character U+000C" in problems[2]
    assert "control character U+000D" in problems[5]
    assert "NOPE" in problems[7]
    (only,) = executions(book).values()
    assert (only["exec_id"], only["quantity"], only["commission"]) == ("E9", "2", "1.5")
    assert (shown(book, "X1")["cum_qty"], shown(book, "X1")["status"]) == (
        "2", "partially_filled")


def test_a_crlf_file_is_still_one_message_a_line(book: Tieout, tmp_path: Path) -> None:
    external(book, "X1")
    lines = [report("X1", "E1", "F", (32, "1"), (31, "100"), (12, "2")),
             report("X1", "E2", "F", (32, "1"), (31, "100"))]
    path = tmp_path / "crlf.fix"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    doc = book.ok("exec", "apply", str(path), "--json").json()
    assert (doc["applied"], doc["refused"]) == (2, 0)
    assert executions(book)["E1"]["commission"] == "2"


def test_a_read_tag_sent_twice_is_refused(book: Tieout, tmp_path: Path) -> None:
    """FIX 4.4: a field outside a repeating group is sent once (SessionRejectReason 13). Which
    LastQty or which order was meant cannot be known: the message is refused, not read as its
    last value. Tags tieout does not read (a party group's 448) may repeat."""
    external(book, "X1")
    external(book, "X2", qty="11")
    r = apply(
        book,
        tmp_path,
        "drop.fix",
        report("X1", "E1", "F", (32, "1"), (31, "30"), (32, "3")),
        fix_line((35, "8"), (11, "X2"), (11, "X1"), (17, "E2"), (150, "F"), (32, "1"),
                 (31, "100")),
        report("X1", "E3", "F", (32, "1"), (31, "100"), (453, "2"), (448, "P1"), (448, "P2")),
    )
    assert r.code == 3, r.err
    doc = r.json()
    assert [(p["line"], p["field"]) for p in doc["problems"]] == [(1, "32"), (2, "11")]
    assert "tag 32 appears more than once" in doc["problems"][0]["reason"]
    assert doc["applied"] == 1
    assert sorted(executions(book)) == ["E3"]


def test_a_resend_that_restates_other_money_terms_is_refused(
    book: Tieout, tmp_path: Path
) -> None:
    """The same ExecID again with another commission or settlement date is not a duplicate
    to skip: what was booked is not what the venue now says. Refused, with what differs; a
    resend restating the same figures (written otherwise) is a duplicate."""
    external(book, "X1")
    today = datetime.now(UTC).date()
    booked, other = today + timedelta(days=36), today + timedelta(days=43)  # (within a year)
    first = report(
        "X1", "E1", "F", (32, "1"), (31, "100"), (12, "5"), (64, f"{booked:%Y%m%d}")
    )
    assert apply(book, tmp_path, "a.fix", first).code == 0
    r = apply(
        book,
        tmp_path,
        "b.fix",
        report("X1", "E1", "F", (32, "1"), (31, "100"), (12, "70"), (13, "3")),
        report("X1", "E1", "F", (32, "1"), (31, "100"), (64, f"{other:%Y%m%d}")),
        report("X1", "E1", "F", (32, "1"), (31, "100"), (12, "5.00"), (64, f"{booked:%Y%m%d}")),
    )
    assert r.code == 3, r.err
    doc = r.json()
    assert (doc["applied"], doc["duplicates"], doc["refused"]) == (0, 1, 2)
    reasons = [p["reason"] for p in doc["problems"]]
    assert "commission 70 against 5 booked" in reasons[0]
    assert f"settlement date {other} against {booked} booked" in reasons[1]
    assert all(p["field"] == "17" for p in doc["problems"])
    e1 = executions(book)["E1"]
    assert (e1["commission"], e1["settle_date"]) == ("5", booked.isoformat())


def test_transact_times_before_the_order_or_a_correction_from_the_future_are_refused(
    book: Tieout, tmp_path: Path
) -> None:
    order = external(book, "X1")
    placed = datetime.fromisoformat(order["created_at"])
    r = apply(
        book,
        tmp_path,
        "drop.fix",
        report("X1", "E1", "F", (32, "1"), (31, "100"), (60, "19000101-00:00:00")),
        report("X1", "E2", "F", (32, "1"), (31, "100"),
               (60, _fix_time(placed - timedelta(minutes=1)))),  # clock skew: booked
        report("X1", "E3", "G", (19, "E2"), (32, "1"), (31, "99"),
               (60, _fix_time(datetime.now(UTC) + timedelta(days=1)))),
        report("X1", "E4", "H", (19, "E2"), (60, "20990101-00:00:00")),
    )
    assert r.code == 3, r.err
    doc = r.json()
    reasons = {p["line"]: p["reason"] for p in doc["problems"]}
    assert sorted(reasons) == [1, 3, 4] and doc["applied"] == 1
    assert f"is before order {order['order_id']} was placed" in reasons[1]
    assert "is after now" in reasons[3] and "is after now" in reasons[4]
    assert sorted(executions(book)) == ["E2"]


def test_venue_text_cannot_drive_the_terminal(book: Tieout, tmp_path: Path) -> None:
    """A venue's text with terminal escapes (an OSC sequence that would retitle the window, a
    cursor move that would hide a line) used to reach the operator's terminal raw, in a
    refusal message (55) and in `order show` (58). Such a line is refused, and nothing of it
    is echoed raw; the order's history keeps no such text."""
    external(book, "X1")
    osc = "\x1b]0;pwned\x07"
    r = apply(book, tmp_path, "drop.fix",
              report("X1", "E0", "0", (58, f"ok{osc}")),
              report("X1", "E1", "F", (32, "1"), (31, "100"), (55, "COIN\x1b[2K")))
    assert r.code == 3
    assert "\x1b" not in r.err and "\x07" not in r.err, r.err
    assert [p["reason"][:28] for p in r.json()["problems"]] == [
        "control character U+001B at "] * 2
    text = book.ok("order", "show", "--client-order-id", "X1").out
    assert "\x1b" not in text and "pwned" not in text


def test_human_output_shows_control_characters_as_escapes() -> None:
    """oms.values.printable, which say(), note(), the error printer and the reports pass all
    text through."""
    assert printable("a\x1b]0;t\x07b\tc\nd\u2028e\x85f\x7f") == (
        "a\\x1b]0;t\\x07b\tc\nd\\u2028e\\x85f\\x7f")
    assert printable("caf\u00e9 \u20ac 100 \u6771\u4eac") == "caf\u00e9 \u20ac 100 \u6771\u4eac"
    # every bidirectional control (Unicode's Bidi_Control): they reorder what is shown
    bidi = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    assert printable(bidi) == "".join(f"\\u{ord(c):04x}" for c in bidi)


def test_a_report_whose_own_figures_disagree_is_applied_and_flagged(
    book: Tieout, tmp_path: Path
) -> None:
    """A venue's fill is a fact: it is booked. But where the report's own CumQty (14),
    LeavesQty (151) or AvgPx (6) disagree with the book after it (a fill missed), or its price
    is beyond the order's limit or off the tick, the command says so (stderr, JSON warnings)
    and the audit trail keeps it, to be chased with the venue. Agreeing figures say nothing."""
    external(book, "X1")  # buy 10 limit 101 on ACME
    r = apply(
        book,
        tmp_path,
        "drop.fix",
        report("X1", "E1", "F", (32, "1"), (31, "100"), (39, "1"), (14, "1"), (151, "9"),
               (6, "100")),
        report("X1", "E2", "F", (32, "1"), (31, "100.5"), (39, "2"), (14, "10"), (151, "0"),
               (6, "100.4")),  # the venue has filled 10: the book, 2
        report("X1", "E3", "F", (32, "1"), (31, "4000")),  # beyond the buy's limit of 101
        report("X1", "E4", "F", (32, "1"), (31, "100.001")),  # COIN's tick is 0.01
    )
    assert r.code == 0, r.err
    doc = r.json()
    assert (doc["applied"], doc["refused"]) == (4, 0)
    got = [(w["line"], w["field"]) for w in doc["warnings"]]
    assert got == [(2, "39"), (2, "14"), (2, "151"), (2, "6"), (3, "31"), (4, "31")], got
    reasons = [w["reason"] for w in doc["warnings"]]
    assert "OrdStatus (39) 2 (the order done), the book has order" in reasons[0]
    assert "the venue reports CumQty (14) 10, the book has 2" in reasons[1]
    assert "LeavesQty (151) 0, the book has 8" in reasons[2]
    assert "AvgPx (6) 100.4, the book has 100.25" in reasons[3]
    assert "fill price 4000 is beyond order" in reasons[4] and "limit 101" in reasons[4]
    assert "not a multiple of COIN's tick size 0.01" in reasons[5]
    assert "tieout: warning: line 2: the venue reports CumQty" in r.err
    assert shown(book, "X1")["cum_qty"] == "4"  # all four booked
    book.ok("audit", "export", "--from", "2000-01-01", "--to", "2100-01-01", "--out",
            str(tmp_path / "a.jsonl"))
    events = (tmp_path / "a.jsonl").read_text()
    assert events.count('"order.report_discrepancy"') == 6


def test_a_bust_stating_another_trade_than_the_one_it_busts_is_flagged(
    book: Tieout, tmp_path: Path
) -> None:
    """A bust (150=H) names its fill by ExecRefID (19) and is applied; where it also states
    LastQty (32) or LastPx (31) other than that fill's (another trade than the venue meant),
    the command says so. A bust with the fill's own figures, or with none, or with 0 (as some
    venues send), says nothing."""
    external(book, "X1")  # buy 10 limit 101 on ACME
    r = apply(
        book,
        tmp_path,
        "drop.fix",
        report("X1", "E1", "F", (32, "5"), (31, "100")),
        report("X1", "E2", "F", (32, "3"), (31, "99")),
        report("X1", "E3", "F", (32, "2"), (31, "98")),
        report("X1", "H1", "H", (19, "E1"), (32, "7"), (31, "50")),
        report("X1", "H2", "H", (19, "E2"), (32, "3"), (31, "99")),
        report("X1", "H3", "H", (19, "E3"), (32, "0"), (31, "0")),
    )
    assert r.code == 0, r.err
    doc = r.json()
    assert (doc["applied"], doc["refused"]) == (6, 0)
    got = [(w["line"], w["field"]) for w in doc["warnings"]]
    assert got == [(4, "32"), (4, "31")], got
    assert "the bust states LastQty (32) 7," in doc["warnings"][0]["reason"]
    assert "the fill it busts (E1 of order" in doc["warnings"][0]["reason"]
    assert "was 5 at 100" in doc["warnings"][0]["reason"]
    assert shown(book, "X1")["cum_qty"] == "0"  # all three busted


def test_a_bust_the_venue_reports_with_the_order_ended_ends_it_in_the_book(
    book: Tieout, tmp_path: Path
) -> None:
    """A venue that busts a trade of a filled order need not reopen it: a bust (or correction)
    reporting OrdStatus (39) canceled or expired with LeavesQty (151) 0 ends the order in the
    book too, in the transaction that applies it (unsolicited cancel, or expiry), with the
    reason in its history. It used to reopen it: working in the book, cash reserved, while
    the venue had ended it. A report that states 39=4 with leaves still left is contradictory:
    the bust reopens the order and the command warns."""
    for client_id, qty in (("X1", "10"), ("X2", "11"), ("X3", "12")):
        external(book, client_id, qty=qty)  # buy limit 101 on ACME
    r = apply(
        book,
        tmp_path,
        "drop.fix",
        report("X1", "E1", "F", (32, "10"), (31, "100")),
        report("X2", "E2", "F", (32, "11"), (31, "100")),
        report("X3", "E3", "F", (32, "12"), (31, "100")),
        report("X1", "H1", "H", (19, "E1"), (39, "4"), (14, "0"), (151, "0")),
        report("X2", "G2", "G", (19, "E2"), (32, "6"), (31, "100"), (39, "C"), (151, "0")),
        report("X3", "H3", "H", (19, "E3"), (39, "4"), (151, "12")),
    )
    assert r.code == 0, r.err
    doc = r.json()
    assert (doc["applied"], doc["refused"]) == (6, 0)
    assert [(w["line"], w["field"]) for w in doc["warnings"]] == [(6, "39")]
    x1, x2, x3 = shown(book, "X1"), shown(book, "X2"), shown(book, "X3")
    assert (x1["status"], x1["cum_qty"], x1["leaves_qty"]) == ("canceled", "0", "0")
    assert (x2["status"], x2["cum_qty"], x2["leaves_qty"]) == ("expired", "6", "0")
    assert (x3["status"], x3["cum_qty"], x3["leaves_qty"]) == ("new", "0", "12")
    assert [h["status"] for h in x1["history"]][-3:] == ["filled", "new", "canceled"]
    assert x1["history"][-1]["reason"] == (
        "canceled (unsolicited): the venue reported the order canceled with the bust of E1 "
        "(OrdStatus (39) 4, LeavesQty (151) 0)"
    )
    assert "expired with the correction of E2" in x2["history"][-1]["reason"]
    # only X3 (reopened, 12 at 101) reserves cash; the positions are what is left of the fills
    assert book.ok("cash", "balance", "A1", "--json").json()["reserved"] == "1212"
    (pos,) = book.ok("positions", "--account", "A1", "--json").json()
    assert pos["quantity"] == "6"
    again = book("exec", "apply", str(tmp_path / "drop.fix"), "--json")  # changes nothing
    assert (again.json()["applied"], again.json()["duplicates"]) == (0, 6)
    assert shown(book, "X1")["status"] == "canceled"
    assert book.ok("audit", "verify", "--json").json()["ok"] is True


def test_a_correction_up_to_the_whole_order_stating_it_ended_is_applied(
    book: Tieout, tmp_path: Path
) -> None:
    """A correction that leaves nothing to end (it raises the order's fills to its whole
    quantity while its cancel is pending, and states 39=4, 151=0) is applied as it always was:
    the order cannot be canceled with nothing left, and trying to refused the whole report,
    losing the correction (a re-review of the change)."""
    external(book, "X1")  # buy 10 limit 101 on ACME
    apply(book, tmp_path, "a.fix", report("X1", "E1", "F", (32, "6"), (31, "100"), (39, "1")))
    book.ok("order", "cancel", "--client-order-id", "X1")
    r = apply(book, tmp_path, "b.fix", report("X1", "G1", "G", (19, "E1"), (32, "10"),
                                              (31, "100"), (39, "4"), (14, "10"), (151, "0")))
    assert r.code == 0, r.err
    x1 = shown(book, "X1")
    assert (x1["cum_qty"], x1["leaves_qty"]) == ("10", "0")


def test_refusals_say_what_is_wrong(book: Tieout, tmp_path: Path) -> None:
    """A bust of a busted fill names the bust; a value with too many digits says how many are
    allowed; a directory is not "no such file"."""
    external(book, "X1")
    r = apply(
        book,
        tmp_path,
        "drop.fix",
        report("X1", "E1", "F", (32, "1"), (31, "100")),
        report("X1", "E2", "H", (19, "E1")),
        report("X1", "E3", "H", (19, "E1")),  # again: E1 is gone
        report("X1", "E4", "F", (32, "1"), (31, "100.0000000000001")),
        report("X1", "E5", "G", (19, "NOPE"), (32, "1"), (31, "100")),
    )
    assert r.code == 3, r.err
    reasons = {p["line"]: (p["field"], p["reason"]) for p in r.json()["problems"]}
    assert reasons[3] == ("19", "ExecRefID (19): execution E1 is not a live fill of order "
                          "O00000001: busted already by E2")
    assert reasons[4][0] == "31" and "at most" in reasons[4][1] and "after it" in reasons[4][1]
    assert "no fill of it has that ExecID" in reasons[5][1]
    d = book("exec", "apply", str(tmp_path))
    assert d.code == 3 and "is a directory: give a file" in d.err


def test_the_venue_rejects_an_order_whose_cancel_is_pending(book: Tieout, tmp_path: Path) -> None:
    """After `risk kill` (or a cancel) of an order the venue has not acknowledged, the venue's
    reject of the order (150=8) used to be refused: the order stayed pending_cancel with its
    cash reserved. It is rejected, the request ends, the cash is free."""
    external(book, "X1")
    book.ok("risk", "kill", "--account", "A1")
    assert shown(book, "X1")["status"] == "pending_cancel"
    r = apply(book, tmp_path, "rej.fix", report("X1", "E0", "8", (39, "8"), (58, "no")))
    assert r.code == 0, r.err
    got = shown(book, "X1")
    assert (got["status"], got["leaves_qty"]) == ("rejected", "0")
    assert book.ok("cash", "balance", "A1", "--json").json()["reserved"] == "0"
    # the same file again: a duplicate (it was refused, exit 3, as "other terms (codes)": the
    # reject's stored codes [] read as another value than ())
    again = apply(book, tmp_path, "rej2.fix", report("X1", "E0", "8", (39, "8"), (58, "no")))
    assert again.code == 0, again.err
    assert (again.json()["duplicates"], again.json()["refused"]) == (1, 0)


def test_a_drop_copy_with_a_cancel_reject_can_be_applied_again(
    book: Tieout, tmp_path: Path
) -> None:
    """An OrderCancelReject has no ExecID: applied again, it used to be refused (the request it
    answered was closed), failing the re-run of a whole day's file. It is a duplicate now."""
    external(book, "X1")
    book.ok("order", "cancel", "--client-order-id", "X1")
    lines = [report("X1", "X1E0", "0", (39, "6")),
             report("X1", "E1", "F", (32, "3"), (31, "100"), (39, "6")),
             fix_line((35, "9"), (11, "X1"), (41, "X1"), (39, "1"), (434, "1"), (102, "0")),
             report("X1", "E2", "F", (32, "2"), (31, "100"), (39, "1"))]
    first = apply(book, tmp_path, "day.fix", *lines)
    assert first.code == 0 and first.json()["applied"] == 4, first.err
    again = apply(book, tmp_path, "day2.fix", *lines)
    assert again.code == 0, again.err
    assert (again.json()["applied"], again.json()["duplicates"]) == (0, 4)
    assert shown(book, "X1")["cum_qty"] == "5"


def test_the_venues_ordstatus_is_checked_against_the_book(book: Tieout, tmp_path: Path) -> None:
    """A cancel reject saying the order is canceled at the venue (39=4), or a fill saying it is
    filled when the book has 1 of 10: flagged, as CumQty is. Done for day with LeavesQty 0 is
    what FIX says and is not flagged."""
    external(book, "X1")
    external(book, "X2", qty="13")
    book.ok("order", "cancel", "--client-order-id", "X1")
    r = apply(book, tmp_path, "a.fix",
              report("X1", "X1E0", "0", (39, "6")),
              fix_line((35, "9"), (11, "X1"), (41, "X1"), (39, "4"), (434, "1"), (102, "1")),
              report("X2", "X2E0", "0", (39, "0")),
              report("X2", "E1", "F", (32, "1"), (31, "99"), (39, "2")),
              report("X2", "E2", "3", (39, "3"), (14, "1"), (151, "0")))
    assert r.code == 0, r.err
    warned = [(w["line"], w["field"]) for w in r.json()["warnings"]]
    assert warned == [(2, "39"), (4, "39")], r.json()["warnings"]
    assert "OrdStatus (39) 4 (the order done), the book has order" in r.json()["warnings"][0][
        "reason"]


def test_stuck_means_longer_than_and_bad_amends_are_audited(book: Tieout, tmp_path: Path) -> None:
    order = external(book, "X1")
    placed = datetime.fromisoformat(order["created_at"])
    exactly = book.at((placed + timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    assert exactly.ok("order", "list", "--stuck", "--json").json() == []  # not longer than 15
    later = book.at((placed + timedelta(minutes=15, seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert [o["order_id"] for o in later.ok("order", "list", "--stuck", "--json").json()] == [
        order["order_id"]]
    same = book("order", "amend", "--client-order-id", "X1", "--qty", "10")
    assert same.code == 3, same.err
    book.ok("audit", "export", "--from", "2000-01-01", "--to", "2100-01-01", "--out",
            str(tmp_path / "a.jsonl"))
    refused = [e for e in map(json.loads, (tmp_path / "a.jsonl").read_text().splitlines())
               if e["action"] == "order.amend_refused"]
    assert [(e["entity_id"], e["payload"]["code"]) for e in refused] == [
        (order["order_id"], "bad_input")]


def _reject(cl: str, orig: str, to: str, status: str = "1") -> str:
    return fix_line((35, "9"), (11, cl), (41, orig), (39, status), (434, to), (58, "too late"))


def test_a_cancel_reject_of_an_earlier_request_leaves_the_open_one(
    book: Tieout, tmp_path: Path
) -> None:
    """A late or repeated OrderCancelReject (35=9) names its request by ClOrdID (11): one of a
    request answered already used to close the request open now (the order back to partially
    filled, the venue's later cancel then booked as unsolicited). It is a duplicate now; one
    naming no request of the order is refused."""
    external(book, "C1", qty="100")
    first = apply(book, tmp_path, "a.fix", report("C1", "E0", "0", (39, "0")),
                  report("C1", "E1", "F", (39, "1"), (32, "40"), (31, "100")))
    assert first.code == 0, first.err
    book.ok("order", "cancel", "--client-order-id", "C1", "--new-client-order-id", "C1c")
    rejected = _reject("C1c", "C1", "1")
    assert apply(book, tmp_path, "b.fix", rejected).json()["applied"] == 1
    assert shown(book, "C1")["status"] == "partially_filled"
    book.ok("order", "cancel", "--client-order-id", "C1", "--new-client-order-id", "C1d")

    again = apply(book, tmp_path, "b2.fix", rejected, _reject("C1x", "C1", "1"),
                  _reject("C1", "C1", "1"))
    assert again.code == 3, again.err
    doc = again.json()
    assert (doc["applied"], doc["duplicates"], doc["refused"]) == (0, 1, 2), doc
    problems = {p["line"]: p["reason"] for p in doc["problems"]}
    assert "C1x is not the open request of order" in problems[2]
    assert "(that is C1d)" in problems[2] and "C1 is not the open request" in problems[3]
    order = shown(book, "C1")
    assert (order["status"], order["leaves_qty"]) == ("pending_cancel", "60")

    done = apply(book, tmp_path, "c.fix", report("C1d", "E2", "4", (41, "C1"), (39, "4")))
    assert done.code == 0, done.err
    order = shown(book, "C1")
    assert order["status"] == "canceled"
    # the answer to C1d, not unsolicited; the order is named by the cancel's id from now on
    assert order["history"][-1]["reason"] == "canceled; client order id C1 -> C1d"


def test_a_pending_report_after_the_venues_answer_is_refused(
    book: Tieout, tmp_path: Path
) -> None:
    """A Pending Replace (150=E) or Pending Cancel (150=6) that arrives after the venue's answer
    to its request used to open the request again: the order stayed pending_replace, every
    amend and cancel refused, waiting for an answer the venue had given. It is refused as out
    of sequence, with its line; a pending report naming the open request is applied."""
    external(book, "A1", qty="100")
    apply(book, tmp_path, "a.fix", report("A1", "E0", "0", (39, "0")),
          report("A1", "E1", "F", (39, "1"), (32, "10"), (31, "100")))
    book.ok("order", "amend", "--client-order-id", "A1", "--qty", "50",
            "--new-client-order-id", "A1r")
    r = apply(book, tmp_path, "b.fix",
              report("A1r", "Z5", "5", (41, "A1"), (39, "1"), (38, "50"), (14, "10"),
                     (151, "40")),
              report("A1r", "Z4", "E", (41, "A1"), (39, "E")))
    assert r.code == 3, r.err
    doc = r.json()
    assert (doc["applied"], doc["refused"]) == (1, 1), doc
    (problem,) = doc["problems"]
    assert problem["line"] == 2 and problem["field"] == "11"
    assert "A1r names a request of order" in problem["reason"]
    assert "answered already" in problem["reason"]
    order = shown(book, "A1r")
    assert (order["status"], order["quantity"], order["leaves_qty"]) == (
        "partially_filled", "50", "40")

    # the order can be changed again, and its own pending report is applied
    book.ok("order", "cancel", "--client-order-id", "A1r", "--new-client-order-id", "A1c")
    stale = report("A1r", "Z6", "6", (41, "A1"), (39, "6"))  # names the replace, answered
    late = apply(book, tmp_path, "c.fix", stale, report("A1c", "Z7", "6", (41, "A1r"), (39, "6")))
    assert late.code == 3, late.err
    assert (late.json()["applied"], late.json()["refused"]) == (1, 1), late.json()
    assert late.json()["problems"][0]["line"] == 1
    assert shown(book, "A1r")["status"] == "pending_cancel"
    rejected = apply(book, tmp_path, "d.fix", _reject("A1c", "A1r", "1"),
                     report("A1c", "Z8", "6", (41, "A1r"), (39, "6")))
    assert rejected.code == 3, rejected.err
    assert (rejected.json()["applied"], rejected.json()["refused"]) == (1, 1)
    assert shown(book, "A1r")["status"] == "partially_filled"


def test_a_request_the_venue_reports_first_is_named_by_its_clordid(
    book: Tieout, tmp_path: Path
) -> None:
    """A cancel the venue took by other means (a phone call) opens a request when its pending
    report comes, named by the ClOrdID the venue gives it: a late or repeated cancel reject of
    it, once answered, no longer closes the next request (its id used to be kept nowhere), and
    a cancel reject naming no request of the order is refused, not skipped."""
    external(book, "C1", qty="100")
    day = [report("C1", "E0", "0", (39, "0")),
           report("X", "E1", "6", (41, "C1"), (39, "6")),
           _reject("X", "C1", "1", status="0"),
           report("Y", "E2", "6", (41, "C1"), (39, "6"))]
    first = apply(book, tmp_path, "a.fix", *day)
    assert first.code == 0 and first.json()["applied"] == 4, first.err
    assert shown(book, "C1")["status"] == "pending_cancel"
    again = apply(book, tmp_path, "a2.fix", *day)
    assert again.code == 0, again.err
    assert (again.json()["applied"], again.json()["duplicates"]) == (0, 4), again.json()
    assert shown(book, "C1")["status"] == "pending_cancel"  # Y's request is still open
    done = apply(book, tmp_path, "b.fix", report("Y", "E3", "4", (41, "C1"), (39, "4")))
    assert done.code == 0, done.err
    order = shown(book, "C1")
    assert order["status"] == "canceled"
    assert order["history"][-1]["reason"] == "canceled; client order id C1 -> Y"

    external(book, "D1", qty="10")
    book.ok("order", "cancel", "--client-order-id", "D1", "--new-client-order-id", "D1c")
    apply(book, tmp_path, "c.fix", report("D1", "F0", "0", (39, "6")), _reject("D1c", "D1", "1"))
    bogus = apply(book, tmp_path, "d.fix", _reject("BOGUS", "D1", "1"))
    assert bogus.code == 3, bogus.err
    (problem,) = bogus.json()["problems"]
    assert "BOGUS names no request of order" in problem["reason"]


def test_a_cancel_without_a_new_id_takes_the_clordid_the_venue_gives_it(
    book: Tieout, tmp_path: Path
) -> None:
    """Cancel sent without a new client order id: the venue's pending report names the
    request V1, and its reject of V1 is the answer to it (it was skipped as a duplicate, the
    order stuck pending_cancel with its cash held). A resend of the pending report with
    another ClOrdID is refused as naming another ClOrdID, not as other quantity or price."""
    external(book, "C1")
    apply(book, tmp_path, "a.fix", report("C1", "E0", "0", (39, "0")))
    book.ok("order", "cancel", "--client-order-id", "C1")
    r = apply(book, tmp_path, "b.fix", report("V1", "E1", "6", (41, "C1"), (39, "6")),
              report("V1", "E2", "6", (41, "C1"), (39, "6")),
              _reject("V1", "C1", "1", status="0"))
    assert r.code == 0 and r.json()["applied"] == 3, r.err
    order = shown(book, "C1")
    assert order["status"] == "new", order
    assert book.ok("cash", "balance", "A1", "--json").json()["reserved"] == "1010"
    resend = apply(book, tmp_path, "c.fix", report("C1", "E1", "6", (39, "6")))
    assert resend.code == 3, resend.err
    assert "other terms (client_order_id)" in resend.json()["problems"][0]["reason"]


def test_a_replaced_order_is_named_by_its_new_id_in_a_later_request(
    book: Tieout, tmp_path: Path
) -> None:
    """After a replace the order is C2: a cancel sent without a new id is answered by reports
    naming C2 (the pending report was refused as out of sequence, the reject skipped)."""
    external(book, "C1")
    apply(book, tmp_path, "a.fix", report("C1", "E0", "0", (39, "0")))
    book.ok("order", "amend", "--client-order-id", "C1", "--limit", "98",
            "--new-client-order-id", "C2")
    apply(book, tmp_path, "b.fix", report("C2", "E1", "E", (41, "C1"), (39, "E")),
          report("C2", "E2", "5", (41, "C1"), (39, "0"), (44, "98")))
    book.ok("order", "cancel", "--client-order-id", "C2")
    r = apply(book, tmp_path, "c.fix", report("C2", "E3", "6", (39, "6")),
              _reject("C2", "C2", "1", status="0"))
    assert r.code == 0 and r.json()["applied"] == 2, r.err
    assert shown(book, "C2")["status"] == "new"


def test_a_report_naming_two_orders_is_refused(book: Tieout, tmp_path: Path) -> None:
    """ClOrdID (11) of one order with OrigClOrdID (41) of another: it went to the order 11
    named, silently."""
    external(book, "C1")
    external(book, "B1", qty="5")
    apply(book, tmp_path, "a.fix", report("C1", "E0", "0", (39, "0")),
          report("B1", "F0", "0", (39, "0")))
    r = apply(book, tmp_path, "b.fix", report("B1", "E4", "6", (41, "C1"), (39, "6"), (1, "A1")))
    assert r.code == 3, r.err
    (problem,) = r.json()["problems"]
    assert problem["field"] == "41" and "the report names two orders" in problem["reason"]
    assert shown(book, "B1")["status"] == "new" and shown(book, "C1")["status"] == "new"


def test_the_history_names_each_client_order_id_the_order_had(
    book: Tieout, tmp_path: Path
) -> None:
    """A request's own client order id, and the order's new name once the venue accepts it,
    are in the history: `order show` under the last id says which earlier ids were the same
    order (its `client_order_id` is only the current one)."""
    external(book, "C1")
    assert apply(book, tmp_path, "a.fix", report("C1", "E1", "0")).json()["applied"] == 1
    book.ok("order", "amend", "--client-order-id", "C1", "--qty", "5",
            "--new-client-order-id", "C2")  # fmt: skip
    replaced = report("C2", "E2", "5", (41, "C1"), (39, "0"), (38, "5"), (151, "5"), (14, "0"))
    assert apply(book, tmp_path, "b.fix", replaced).json()["applied"] == 1
    book.ok("order", "cancel", "--client-order-id", "C2", "--new-client-order-id", "C3")
    canceled = report("C3", "E3", "4", (41, "C2"), (39, "4"))
    assert apply(book, tmp_path, "c.fix", canceled).json()["applied"] == 1
    order = shown(book, "C3")
    assert order["client_order_id"] == "C3"
    assert [h["reason"] for h in order["history"][-4:]] == [
        "replace requested: quantity 10 -> 5 as C2",
        "replaced: quantity 10 -> 5; client order id C1 -> C2",
        "cancel requested as C3",
        "canceled; client order id C2 -> C3",
    ]
    assert shown(book, "C1")["order_id"] == order["order_id"]
