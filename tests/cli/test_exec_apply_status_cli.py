"""`exec apply` of a suspension (ExecType 9) and of order status reports (ExecType I), through
the real command on both backends. The contract's statuses include `suspended`, yet no report
could put an order there: 150=9 was refused. A venue's answer to a status request (150=I) was
refused too, so that the one message that states the order as the venue has it could not be
checked against the book."""

from pathlib import Path

from tests.cli.test_exec_apply_audit_cli import _placed
from tests.cli.test_exec_apply_review import apply, book, executions, refused_events, shown
from tests.cli.test_order_cli import report
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
    98998.500000000000000. The value is booked without the padding, by drop copy and by
    import alike; a re-import of the padded row is still the same execution."""
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
    assert (ex["I1"]["quantity"], ex["I1"]["price"]) == ("4", "100.5")
    assert shown(t, "Z1")["cum_qty"] == "10" and shown(t, "Z1")["avg_px"] == "100.25"
    # 100,000 - 1,002.50 - 1.50 + 402.00 - 1.00
    assert t.ok("cash", "balance", "A1", "--json").json()["balance"] == "99397.00"
    (pos,) = t.ok("positions", "--account", "A1", "--json").json()
    assert pos["quantity"] == "6"
    again = t.ok("exec", "import", write(tmp_path / "j.csv", head + row), "--json").json()
    assert (again["booked"], again["already_booked"]) == (0, 1)
