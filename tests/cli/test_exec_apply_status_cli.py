"""`exec apply` of a suspension (ExecType 9) and of order status reports (ExecType I), through
the real command on both backends. The contract's statuses include `suspended`, yet no report
could put an order there: 150=9 was refused. A venue's answer to a status request (150=I) was
refused too, so that the one message that states the order as the venue has it could not be
checked against the book."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.cli.test_exec_apply_audit_cli import _placed
from tests.cli.test_exec_apply_review import apply, book, executions, refused_events, shown
from tests.cli.test_order_cli import fix_line, report
from tests.conftest import Tieout, write

__all__ = ["book"]  # the fixture, for pytest


def test_a_suspended_order_holds_its_cash_takes_no_fill_and_works_again_when_restated(
    book: Tieout, tmp_path: Path
) -> None:
    t = book
    _placed(t, "S1")
    before = t.ok("cash", "balance", "A1", "--json").json()
    r = apply(
        t,
        tmp_path,
        "suspend.fix",
        report("S1", "S1E0", "0", (39, "0")),
        report("S1", "S1E1", "F", (32, "4"), (31, "100"), (39, "1")),
        report("S1", "S1E2", "9", (39, "9"), (14, "4"), (151, "6"), (58, "halted")),
        report("S1", "S1E3", "F", (32, "1"), (31, "100")),  # a suspended order does not execute
    )
    assert r.code == 3, r.err
    assert [p["line"] for p in r.json()["problems"]] == [4]
    assert "suspended" in r.json()["problems"][0]["reason"]
    assert r.json()["applied"] == 3 and r.json()["warnings"] == []
    s = shown(t, "S1")
    assert (s["status"], s["cum_qty"], s["leaves_qty"]) == ("suspended", "4", "6")
    assert s["history"][-1]["status"] == "suspended" and "halted" in s["history"][-1]["reason"]
    assert set(executions(t)) == {"S1E1"}
    # still live: its 6 left stay reserved (6 x 101 limit)
    now = t.ok("cash", "balance", "A1", "--json").json()
    assert (now["reserved"], before["reserved"]) == ("606", "1010")
    # listed among live orders, and cancelable
    listed = t.ok("order", "list", "--status", "suspended", "--json").json()
    assert [o["client_order_id"] for o in listed] == ["S1"]
    resumed = apply(
        t,
        tmp_path,
        "resume.fix",
        report("S1", "S1E4", "D", (39, "1")),
        report("S1", "S1E5", "F", (32, "6"), (31, "100"), (39, "2")),
    )
    assert resumed.code == 0, resumed.err
    assert (shown(t, "S1")["status"], shown(t, "S1")["cum_qty"]) == ("filled", "10")
    assert t.ok("audit", "verify", "--json").json()["ok"] is True


def test_a_suspension_applied_twice_is_a_duplicate_and_a_cancel_of_a_suspended_order_works(
    book: Tieout, tmp_path: Path
) -> None:
    t = book
    _placed(t, "S2")
    first = apply(t, tmp_path, "a.fix", report("S2", "S2E0", "0"), report("S2", "S2E1", "9"))
    again = apply(t, tmp_path, "b.fix", report("S2", "S2E1", "9"))
    assert first.code == 0 and again.code == 0, (first.err, again.err)
    assert (again.json()["applied"], again.json()["duplicates"]) == (0, 1)
    t.ok("order", "cancel", "--client-order-id", "S2", "--account", "A1",
         "--new-client-order-id", "S2c")  # fmt: skip
    assert shown(t, "S2c")["status"] == "pending_cancel"
    done = apply(t, tmp_path, "c.fix", report("S2c", "S2E2", "4", (41, "S2")))
    assert done.code == 0, done.err
    assert shown(t, "S2c")["status"] == "canceled"
    assert t.ok("cash", "balance", "A1", "--json").json()["reserved"] == "0"


def test_an_order_status_report_changes_nothing_and_warns_where_it_disagrees(
    book: Tieout, tmp_path: Path
) -> None:
    t = book
    _placed(t, "Q1")
    setup = apply(
        t,
        tmp_path,
        "fills.fix",
        report("Q1", "Q1E0", "0"),
        report("Q1", "Q1E1", "F", (32, "4"), (31, "100")),
    )
    assert setup.code == 0, setup.err
    shown_before = shown(t, "Q1")
    r = apply(
        t,
        tmp_path,
        "status.fix",
        # agrees with the book: no warning
        report("Q1", "0", "I", (39, "1"), (14, "4"), (151, "6"), (6, "100")),
        # the same ExecID 0 again (FIX sends 0 on status reports): checked again, no duplicate
        # the venue has a fill the book lacks: flagged, nothing booked
        report("Q1", "0", "I", (39, "2"), (14, "10"), (151, "0"), (6, "100")),
    )
    assert r.code == 0, r.err
    doc = r.json()
    assert (doc["applied"], doc["duplicates"], doc["problems"]) == (2, 0, [])
    assert {w["line"] for w in doc["warnings"]} == {2}
    reasons = " ".join(w["reason"] for w in doc["warnings"])
    assert "OrdStatus (39) 2" in reasons and "CumQty (14) 10" in reasons
    assert "LeavesQty (151) 0" in reasons
    assert "a report may be missing" in r.err  # the warning on stderr too
    after = shown(t, "Q1")
    assert after == shown_before  # nothing changed: status, quantities, history
    assert set(executions(t)) == {"Q1E1"}
    assert t.ok("audit", "verify", "--json").json()["ok"] is True


def test_an_order_status_report_for_an_unknown_order_or_a_paper_order_is_refused(
    book: Tieout, tmp_path: Path
) -> None:
    t = book
    t.ok("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy", "--qty",
         "1", "--client-order-id", "P1")  # fmt: skip
    r = apply(t, tmp_path, "s.fix", report("NOPE", "0", "I", (39, "0")), report("P1", "0", "I"))
    assert r.code == 3, r.err
    problems = {p["line"]: p["reason"] for p in r.json()["problems"]}
    assert set(problems) == {1, 2}
    assert "NOPE" in problems[1]
    assert "paper venue" in problems[2]
    assert len(refused_events(t, tmp_path)) == 2


def test_a_quantity_or_price_padded_with_zeros_is_booked_as_its_value(
    book: Tieout, tmp_path: Path
) -> None:
    """FIX engines pad LastQty and LastPx ("10.0000000", "100.25000000"); the book kept them as
    sent, and the cash of quantity x price carried the places of both: a balance of
    98998.500000000000000. The value is booked without the padding (a quantity without any, a
    price down to its cents), by drop copy and by import alike; a re-import of the padded row is
    still the same execution."""
    t = book
    _placed(t, "Z1")
    r = apply(
        t,
        tmp_path,
        "padded.fix",
        report("Z1", "Z1E0", "0"),
        report("Z1", "Z1E1", "F", (32, "10.0000000"), (31, "100.25000000"), (12, "1.50")),
    )
    assert r.code == 0, r.err
    head = "exec_id,account,symbol,side,quantity,price,trade_date,venue,commission\n"
    day = executions(t)["Z1E1"]["trade_date"]
    row = f"I1,A1,COIN,sell,4.000,100.500,{day},V,1.00\n"
    t.ok("exec", "import", write(tmp_path / "i.csv", head + row))
    ex = executions(t)
    assert (ex["Z1E1"]["quantity"], ex["Z1E1"]["price"]) == ("10", "100.25")
    assert (ex["I1"]["quantity"], ex["I1"]["price"]) == ("4", "100.50")  # a price keeps cents
    assert shown(t, "Z1")["cum_qty"] == "10" and shown(t, "Z1")["avg_px"] == "100.25"
    # 100,000 - 1,002.50 - 1.50 + 402.00 - 1.00
    assert t.ok("cash", "balance", "A1", "--json").json()["balance"] == "99397.00"
    (pos,) = t.ok("positions", "--account", "A1", "--json").json()
    assert pos["quantity"] == "6"
    again = t.ok("exec", "import", write(tmp_path / "j.csv", head + row), "--json").json()
    assert (again["booked"], again["already_booked"]) == (0, 1)


def test_a_restatement_that_says_the_order_is_still_suspended_keeps_it_so(
    book: Tieout, tmp_path: Path
) -> None:
    """A restatement (D) during a suspension (a corporate action in a halt) with OrdStatus 9
    resumed the order, which then took fills the venue would not give (a re-review)."""
    t = book
    _placed(t, "Y1", qty="5")
    r = apply(
        t,
        tmp_path,
        "halt.fix",
        report("Y1", "Y1E0", "0", (39, "0")),
        report("Y1", "Y1E1", "9", (39, "9")),
        report("Y1", "Y1E2", "D", (39, "9"), (38, "4"), (14, "0"), (151, "4")),
        report("Y1", "Y1E3", "F", (32, "1"), (31, "100")),
    )
    assert r.code == 3, r.err
    assert [p["line"] for p in r.json()["problems"]] == [4]
    s = shown(t, "Y1")
    assert (s["status"], s["quantity"], s["cum_qty"]) == ("suspended", "4", "0")
    assert "restated still suspended" in s["history"][-1]["reason"]
    assert r.json()["warnings"] == []


def test_a_suspension_while_a_cancel_is_pending_shows_once_the_venue_refuses_the_cancel(
    book: Tieout, tmp_path: Path
) -> None:
    """A suspension (9) while a cancel was pending was refused, and the order then showed as
    working; a suspended order under a request took fills (a re-review)."""
    t = book
    _placed(t, "U1")
    assert apply(t, tmp_path, "a.fix", report("U1", "U0", "0")).code == 0
    t.ok("order", "cancel", "--client-order-id", "U1", "--account", "A1",
         "--new-client-order-id", "U1c")  # fmt: skip
    r = apply(
        t,
        tmp_path,
        "b.fix",
        report("U1c", "U1", "6", (41, "U1"), (39, "6")),
        report("U1", "U2", "9", (39, "6")),
        report("U1", "U3", "F", (32, "3"), (31, "100")),  # a suspended order takes no fill
        fix_line((35, "9"), (11, "U1c"), (41, "U1"), (434, "1"), (39, "9")),
    )
    assert r.code == 3, r.err
    (problem,) = r.json()["problems"]
    assert problem["line"] == 3 and "is suspended" in problem["reason"]
    s = shown(t, "U1")
    assert (s["status"], s["cum_qty"]) == ("suspended", "0")
    assert t.ok("cash", "balance", "A1", "--json").json()["reserved"] == "1010"


def test_an_order_status_report_compares_the_status_exactly_and_says_what_it_cannot_read(
    book: Tieout, tmp_path: Path
) -> None:
    t = book
    _placed(t, "Q2")
    assert (
        apply(t, tmp_path, "a.fix", report("Q2", "Q2E0", "0"), report("Q2", "Q2E1", "9")).code == 0
    )
    r = apply(
        t,
        tmp_path,
        "status.fix",
        report("Q2", "0", "I", (39, "9"), (14, "0"), (151, "10")),  # agrees
        report("Q2", "0", "I", (39, "0")),  # new, where the book has it suspended
        report("Q2", "0", "I", (39, "Z"), (14, "abc")),  # nothing readable to compare
    )
    assert r.code == 0, r.err
    by_line: dict[int, list[str]] = {}
    for w in r.json()["warnings"]:
        by_line.setdefault(w["line"], []).append(w["reason"])
    assert set(by_line) == {2, 3}
    assert "OrdStatus (39) 0 (new), the book has order" in by_line[2][0]
    assert "suspended (9)" in by_line[2][0]
    assert any("'Z' is not a status FIX 4.4 defines" in x for x in by_line[3])
    assert any("CumQty (14) 'abc' is not a number" in x for x in by_line[3])


def test_padding_beyond_twelve_places_is_no_more_places(book: Tieout, tmp_path: Path) -> None:
    t = book
    _placed(t, "Z9", qty="5")
    r = apply(
        t,
        tmp_path,
        "k.fix",
        report("Z9", "Z0", "0"),
        report("Z9", "Z1", "F", (32, "1.0000000000000000"), (31, "100.000000000000000000")),
    )
    assert r.code == 0, r.err
    day = executions(t)["Z1"]["trade_date"]
    head = "exec_id,account,symbol,side,quantity,price,trade_date,venue\n"
    row = f"I9,A1,COIN,buy,2.00000000000000000,99.5000000000000000,{day},V\n"
    t.ok("exec", "import", write(tmp_path / "k.csv", head + row))
    ex = executions(t)
    assert (ex["Z1"]["quantity"], ex["Z1"]["price"]) == ("1", "100.00")
    assert (ex["I9"]["quantity"], ex["I9"]["price"]) == ("2", "99.50")
    bad = t("exec", "import", write(tmp_path / "b.csv", head + f"I8,A1,COIN,buy,0.000,1,{day},V\n"))
    assert bad.code == 3 and "greater than zero" in bad.err


def test_the_kill_switch_dates_its_cancel_no_earlier_than_the_order_s_last_change(
    book: Tieout, tmp_path: Path
) -> None:
    t = book
    ahead = t.at((datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    _placed(ahead, "W2")
    _placed(ahead, "W3", qty="3")
    rejected = ahead("exec", "apply", write(tmp_path / "r.fix", report("W3", "W3E", "8") + "\n"))
    assert rejected.code == 0, rejected.err
    t.ok("risk", "kill", "--account", "A1")
    s = shown(t, "W2")
    assert s["status"] == "pending_cancel"
    times = [h["at"] for h in s["history"]]
    assert times == sorted(times)  # the cancel is not before the submission
    # a finished order under a clock behind it is refused as finished, not for the clock
    done = t("order", "cancel", "--client-order-id", "W3", "--account", "A1")
    assert done.code == 4 and "check this machine's clock" not in done.err
    assert "rejected" in done.err


def test_padded_figures_beside_the_fill_are_read_and_compared(book: Tieout, tmp_path: Path) -> None:
    """A venue padding every figure to 18 places had its Commission (12) refused, its CumQty
    and LeavesQty left uncompared on a fill and called "not a number" on a status report, as
    was an AvgPx of 19 places (a re-review)."""
    t = book
    _placed(t, "S9", qty="9")
    pad = "000000000000000000"
    r = apply(
        t,
        tmp_path,
        "pad.fix",
        report("S9", "Q0", "0"),
        report(
            "S9",
            "Q1",
            "F",
            (32, f"1.{pad}"),
            (31, f"100.{pad}"),
            (12, f"1.25{pad}"),
            (14, f"1.{pad}"),
            (151, f"8.{pad}"),
            (6, f"100.{pad}"),
        ),
        report("S9", "Q2", "F", (32, "2"), (31, "100.5"), (14, f"2.{pad}")),  # one is missing
        report(
            "S9",
            "0",
            "I",
            (39, "1"),
            (14, f"3.{pad}"),
            (151, "6"),
            (6, "100.3333333333333333333"),  # 19 places: the book keeps 12
        ),
    )
    assert r.code == 0, r.err
    assert executions(t)["Q1"]["commission"] == "1.25"
    warned = {(w["line"], w["field"]) for w in r.json()["warnings"]}
    assert warned == {(3, "14")}  # the venue's 2 against the book's 3; line 4 agrees
    head = "exec_id,account,symbol,side,quantity,price,trade_date,venue,commission,fees\n"
    day = executions(t)["Q1"]["trade_date"]
    row = f"I7,A1,COIN,buy,1,100,{day},V,0.50{pad},0.0100{pad}\n"
    t.ok("exec", "import", write(tmp_path / "i.csv", head + row))
    assert (executions(t)["I7"]["commission"], executions(t)["I7"]["fees"]) == ("0.50", "0.01")


def test_a_fix_status_the_book_does_not_keep_is_named_as_such(book: Tieout, tmp_path: Path) -> None:
    t = book
    _placed(t, "S4")
    assert apply(t, tmp_path, "a.fix", report("S4", "S4E0", "0")).code == 0
    r = apply(
        t, tmp_path, "s.fix", report("S4", "0", "I", (39, "7")), report("S4", "0", "I", (39, "B"))
    )
    assert r.code == 0, r.err
    reasons = [w["reason"] for w in r.json()["warnings"]]
    assert "OrdStatus (39) 7 (stopped), a status the book does not keep" in reasons[0]
    assert "(calculated: filled or done for the day)" in reasons[1]
    assert "not a status FIX 4.4 defines" not in " ".join(reasons)


def test_an_avgpx_rounded_otherwise_than_the_book_rounds_is_no_discrepancy(
    book: Tieout, tmp_path: Path
) -> None:
    """A venue's AvgPx correctly rounded to 13 places, or a tie rounded up, was flagged; a real
    difference still is. OrdStatus B (calculated) agrees with a filled order (a re-review)."""
    t = book
    _placed(t, "AV1", qty="11")
    _placed(t, "AV2", qty="2")
    r = apply(
        t,
        tmp_path,
        "avg.fix",
        report("AV1", "AV10", "0"),
        report("AV1", "A11", "F", (32, "5"), (31, "100.01"), (6, "100.01")),
        report("AV1", "A12", "F", (32, "6"), (31, "100.00"), (39, "2"), (6, "100.0045454545455")),
        report("AV2", "AV20", "0"),
        report("AV2", "A21", "F", (32, "1"), (31, "100.01"), (6, "100.01")),
        report("AV2", "A22", "F", (32, "1"), (31, "100.00"), (39, "2"), (6, "100.01")),  # a tie up
        report("AV2", "0", "I", (39, "B"), (14, "2"), (151, "0"), (6, "100.005")),
        report("AV2", "0", "I", (39, "2"), (6, "100.02")),  # a real difference
    )
    assert r.code == 0, r.err
    assert [(w["line"], w["field"]) for w in r.json()["warnings"]] == [(8, "6")]
