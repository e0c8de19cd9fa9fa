"""`exec apply` through the real command on both backends: what a review found wrong. A reused
ExecID, a resend with other terms, the drop copy's dates and commission, a report that names
another symbol or side, a paper order, and messages without BodyLength or CheckSum."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_order_cli import fix_line, report, submit
from tests.conftest import Tieout, write


@pytest.fixture
def book(tieout: Tieout, tmp_path: Path) -> Tieout:
    """A 24/7 instrument COIN (always in session, settles T+1 day) with a fresh last price of
    100, and a margin account A1 with 100,000 USD."""
    tieout.ok("instrument", "add", "COIN", "--exchange", "24/7", "--currency", "USD")
    tieout.ok("account", "open", "A1", "--currency", "USD", "--type", "margin")
    tieout.ok("cash", "deposit", "A1", "100000")
    at = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    bars = f"time,symbol,open,high,low,close,volume\n{at},COIN,100,101,99,100,5000\n"
    tieout.ok("md", "import", write(tmp_path / "bars.csv", bars))
    return tieout


def external(t: Tieout, cl: str, side: str = "buy", qty: str = "10") -> dict[str, Any]:
    return submit(
        t,
        "--side",
        side,
        "--qty",
        qty,
        "--type",
        "limit",
        "--limit",
        "101",
        "--venue",
        "ACME",
        "--client-order-id",
        cl,
    )


def apply(t: Tieout, tmp_path: Path, name: str, *lines: str) -> Any:
    return t("exec", "apply", write(tmp_path / name, "\n".join(lines) + "\n"), "--json")


def shown(t: Tieout, cl: str) -> dict[str, Any]:
    doc: dict[str, Any] = t.ok("order", "show", "--client-order-id", cl, "--json").json()
    return doc


def executions(t: Tieout) -> dict[str, dict[str, Any]]:
    return {e["exec_id"]: e for e in t.ok("exec", "list", "--json").json()}


def audit_events(t: Tieout, tmp_path: Path, action: str) -> list[dict[str, Any]]:
    """The book's audit events of an action (an export of yesterday to tomorrow)."""
    today = datetime.now(UTC).date()
    out = tmp_path / "audit.jsonl"
    t.ok(
        "audit",
        "export",
        "--from",
        (today - timedelta(days=1)).isoformat(),
        "--to",
        (today + timedelta(days=1)).isoformat(),
        "--out",
        str(out),
    )
    events = [json.loads(x) for x in out.read_text().splitlines()]
    return [e for e in events if e["action"] == action]


def refused_events(t: Tieout, tmp_path: Path) -> list[dict[str, Any]]:
    return audit_events(t, tmp_path, "order.report_refused")


def test_an_exec_id_booked_on_another_order_is_refused_and_the_rest_applied(
    book: Tieout, tmp_path: Path
) -> None:
    first = external(book, "X1")
    second = external(book, "X2", qty="9")
    r = apply(
        book,
        tmp_path,
        "drop.fix",
        report("X1", "X1E0", "0"),
        report("X1", "E1", "F", (32, "4"), (31, "100")),
        report("X2", "X2E0", "0"),
        report("X2", "E1", "F", (32, "3"), (31, "100")),  # E1 is X1's fill
        report("X2", "X2E2", "F", (32, "2"), (31, "100")),
    )
    assert r.code == 3, r.err
    doc = r.json()
    assert (doc["applied"], doc["duplicates"], doc["refused"]) == (4, 0, 1)
    (problem,) = doc["problems"]
    assert problem["line"] == 4
    assert f"E1 is booked already at venue ACME (order {first['order_id']})" in problem["reason"]
    assert "database error" not in r.err
    assert shown(book, "X1")["cum_qty"] == "4"
    assert shown(book, "X2")["cum_qty"] == "2"  # the line after the refused one applied
    assert executions(book)["E1"]["order_id"] == first["order_id"]
    (event,) = refused_events(book, tmp_path)
    assert event["payload"]["line"] == 4 and event["payload"]["exec_id"] == "E1"
    # about the order the report named (its audit events show it), with the file
    assert (event["entity_type"], event["entity_id"]) == ("order", second["order_id"]), event
    assert event["payload"]["file"].endswith(".fix"), event
    assert book.ok("audit", "verify", "--json").json()["ok"] is True


def test_an_exec_id_imported_from_a_file_is_not_booked_again(book: Tieout, tmp_path: Path) -> None:
    external(book, "X1")
    book.ok(
        "exec",
        "import",
        write(
            tmp_path / "ex.csv",
            "exec_id,account,symbol,side,quantity,price,trade_date,venue\n"
            "IMP1,A1,COIN,buy,1,100,2026-03-10,ACME\n",
        ),
    )
    r = apply(
        book,
        tmp_path,
        "drop.fix",
        report("X1", "X1E0", "0"),
        report("X1", "IMP1", "F", (32, "1"), (31, "100")),
    )
    assert r.code == 3
    assert "IMP1 is booked already at venue ACME" in r.json()["problems"][0]["reason"]
    assert shown(book, "X1")["cum_qty"] == "0"


def test_a_resend_is_a_duplicate_and_the_same_exec_id_with_other_terms_is_refused(
    book: Tieout, tmp_path: Path
) -> None:
    external(book, "X1")
    fill = report("X1", "E1", "F", (32, "4"), (31, "100"))
    r = apply(
        book,
        tmp_path,
        "drop.fix",
        report("X1", "X1E0", "0"),
        fill,
        fill,  # the very same message again: a duplicate
        report("X1", "E1", "F", (32, "4.0"), (31, "100.00")),  # the same numbers
        report("X1", "E1", "F", (32, "5"), (31, "100")),  # other quantity
        report("X1", "E1", "F", (32, "4"), (31, "99")),  # other price
    )
    assert r.code == 3, r.err
    doc = r.json()
    assert (doc["applied"], doc["duplicates"], doc["refused"]) == (2, 2, 2)
    assert [p["line"] for p in doc["problems"]] == [5, 6]
    assert all("E1" in p["reason"] and "other terms" in p["reason"] for p in doc["problems"])
    assert (shown(book, "X1")["cum_qty"], shown(book, "X1")["avg_px"]) == ("4", "100")
    assert len(refused_events(book, tmp_path)) == 2


def test_a_fill_books_its_transact_time_trade_date_and_settlement_date(
    book: Tieout, tmp_path: Path
) -> None:
    external(book.at("2026-03-10T14:00:00Z"), "X1")  # placed before the fills' TransactTimes
    r = apply(
        book,
        tmp_path,
        "drop.fix",
        report("X1", "X1E0", "0"),
        report(
            "X1",
            "E1",
            "F",
            (32, "1"),
            (31, "100"),
            (60, "20260310-14:30:05.250"),
            (75, "20260310"),
            (64, "20260313"),
        ),
        report("X1", "E2", "F", (32, "1"), (31, "100"), (60, "20260311-23:59:59")),
        report("X1", "E3", "F", (32, "1"), (31, "100")),
        report("X1", "E4", "F", (32, "1"), (31, "100"), (60, "2026-03-10T14:30:00Z")),
        report("X1", "E5", "F", (32, "1"), (31, "100"), (75, "20261340")),
        report("X1", "E6", "F", (32, "1"), (31, "100"), (64, "soon")),
        report("X1", "E7", "F", (32, "1"), (31, "100"), (75, "20260310"), (64, "20260309")),
    )
    assert r.code == 3, r.err
    assert [p["line"] for p in r.json()["problems"]] == [5, 6, 7, 8]
    reasons = " | ".join(p["reason"] for p in r.json()["problems"])
    assert "TransactTime (60)" in reasons and "TradeDate (75)" in reasons
    assert "SettlDate (64)" in reasons and "before the trade date" in reasons
    ex = executions(book)
    assert set(ex) == {"E1", "E2", "E3"}
    assert (ex["E1"]["exec_time"], ex["E1"]["trade_date"], ex["E1"]["settle_date"]) == (
        "2026-03-10T14:30:05.250000Z",
        "2026-03-10",
        "2026-03-13",
    )
    # no TradeDate: the date of TransactTime; no SettlDate: the calendar's (24/7: T+1)
    assert (ex["E2"]["exec_time"], ex["E2"]["trade_date"], ex["E2"]["settle_date"]) == (
        "2026-03-11T23:59:59.000000Z",
        "2026-03-11",
        "2026-03-12",
    )
    today = datetime.now(UTC).date()
    assert ex["E3"]["trade_date"] in (today.isoformat(), (today + timedelta(days=1)).isoformat())
    assert (
        ex["E3"]["settle_date"]
        == (datetime.fromisoformat(ex["E3"]["trade_date"]) + timedelta(days=1)).date().isoformat()
    )


def test_a_report_for_another_symbol_or_side_or_a_paper_order_is_refused(
    book: Tieout, tmp_path: Path
) -> None:
    order = external(book, "X1")
    paper = submit(
        book,
        "--side",
        "buy",
        "--qty",
        "1",
        "--type",
        "limit",
        "--limit",
        "95",
        "--tif",
        "gtc",
        "--client-order-id",
        "P1",
    )
    assert paper["status"] == "new"
    r = apply(
        book,
        tmp_path,
        "drop.fix",
        report("X1", "X1E0", "0", (55, "COIN"), (54, "1")),
        report("X1", "E1", "F", (32, "1"), (31, "100"), (55, "ETH"), (54, "1")),
        report("X1", "E2", "F", (32, "1"), (31, "100"), (55, "COIN"), (54, "2")),
        report("P1", "E3", "F", (32, "1"), (31, "95")),
        report("P1", "E4", "4"),
        report("X1", "E5", "F", (32, "1"), (31, "100"), (55, "COIN"), (54, "1")),
    )
    assert r.code == 3, r.err
    problems = {p["line"]: p["reason"] for p in r.json()["problems"]}
    assert set(problems) == {2, 3, 4, 5}
    assert f"ETH does not match order {order['order_id']} (COIN)" in problems[2]
    assert "Side (54)" in problems[3] and "does not match" in problems[3]
    assert "paper venue" in problems[4] and "paper venue" in problems[5]
    assert shown(book, "X1")["cum_qty"] == "1"
    assert (shown(book, "P1")["status"], shown(book, "P1")["cum_qty"]) == ("new", "0")
    assert set(executions(book)) == {"E5"}


def test_commission_counts_as_its_comm_type_says(book: Tieout, tmp_path: Path) -> None:
    external(book, "X1", qty="100")
    r = apply(
        book,
        tmp_path,
        "drop.fix",
        report("X1", "X1E0", "0"),
        report("X1", "E1", "F", (32, "4"), (31, "100"), (12, "0.5"), (13, "1")),
        report("X1", "E2", "F", (32, "4"), (31, "100"), (12, "0.001"), (13, "2")),
        report("X1", "E3", "F", (32, "4"), (31, "100"), (12, "3"), (13, "3")),
        report("X1", "E4", "F", (32, "4"), (31, "100"), (12, "1.5")),
        report("X1", "E5", "F", (32, "4"), (31, "100"), (12, "1"), (13, "4")),
        report("X1", "E6", "F", (32, "4"), (31, "100"), (12, "-7")),
        report("X1", "E7", "F", (32, "4"), (31, "100"), (12, "lots")),
    )
    assert r.code == 3, r.err
    problems = {p["line"]: p["reason"] for p in r.json()["problems"]}
    assert set(problems) == {6, 7, 8}
    assert "CommType (13)" in problems[6]
    assert "Commission (12)" in problems[7] and "-7" in problems[7]
    assert "Commission (12)" in problems[8]
    ex = executions(book)
    assert {k: ex[k]["commission"] for k in ex} == {"E1": "2", "E2": "0.4", "E3": "3", "E4": "1.5"}
    assert shown(book, "X1")["cum_qty"] == "16"
    # 16 x 100 bought, 6.9 commission
    assert book.ok("cash", "balance", "A1", "--json").json()["balance"] == "98393.1"


def test_messages_without_body_length_or_checksum_are_applied(book: Tieout, tmp_path: Path) -> None:
    external(book, "X1")
    r = apply(
        book,
        tmp_path,
        "drop.fix",
        "8=FIX.4.4|35=8|11=X1|17=X1E0|150=0|",
        "35=8|11=X1|17=E1|150=F|32=2|31=100",
        "8=FIX.4.4|9=5|35=8|11=X1|17=E2|150=F|32=1|31=100",  # a wrong BodyLength
        fix_line((35, "8"), (11, "X1"), (17, "E3"), (150, "F"), (32, "1"), (31, "100"))[:-4]
        + "000|",
    )  # the last line: a wrong CheckSum
    assert r.code == 3, r.err
    problems = {p["line"]: p["reason"] for p in r.json()["problems"]}
    assert "BodyLength" in problems[3] and "CheckSum" in problems[4]
    assert r.json()["applied"] == 2
    assert sorted(e["payload"]["line"] for e in refused_events(book, tmp_path)) == [3, 4]
    assert (shown(book, "X1")["status"], shown(book, "X1")["cum_qty"]) == ("partially_filled", "2")


@pytest.mark.parametrize("sep", ["|", "\x01"])
def test_a_resent_file_applies_nothing_twice(book: Tieout, tmp_path: Path, sep: str) -> None:
    external(book.at("2026-03-10T09:00:00Z"), "X1")  # placed before its fill's TransactTime
    lines = [
        fix_line((35, "8"), (11, "X1"), (17, "X1E0"), (150, "0"), sep=sep),
        fix_line(
            (35, "8"),
            (11, "X1"),
            (17, "E1"),
            (150, "F"),
            (32, "2"),
            (31, "100"),
            (60, "20260310-10:00:00"),
            (12, "0.01"),
            (13, "1"),
            (58, "ref A|B"),
            sep=sep,
        ),
    ]
    first = apply(book, tmp_path, "a.fix", *lines)
    if sep == "|":  # a `|` inside a value cannot be told from a separator in a `|` file
        assert first.code == 3
        return
    assert first.code == 0, first.err
    again = apply(book, tmp_path, "b.fix", *lines)
    assert again.code == 0 and again.json()["duplicates"] == 2
    assert executions(book)["E1"]["commission"] == "0.02"


def test_a_line_that_is_not_utf8_is_refused_alone(book: Tieout, tmp_path: Path) -> None:
    """FIX messages are ASCII: a stray byte refuses its own line, not the whole drop copy."""
    external(book, "X1")
    good = report("X1", "X1E0", "0").encode()
    bad = report("X1", "E1", "F", (32, "2"), (31, "100"), (58, "caf\xe9")).encode("latin-1")
    fill = report("X1", "E2", "F", (32, "1"), (31, "100")).encode()
    path = tmp_path / "drop.fix"
    path.write_bytes(good + b"\n" + bad + b"\n" + fill + b"\n")
    r = book("exec", "apply", str(path), "--json")
    assert r.code == 3, r.err
    doc = r.json()
    assert (doc["applied"], [p["line"] for p in doc["problems"]]) == (2, [2])
    assert "not UTF-8 text: byte 0xe9" in doc["problems"][0]["reason"]
    assert (shown(book, "X1")["status"], shown(book, "X1")["cum_qty"]) == ("partially_filled", "1")
    assert [e["payload"]["line"] for e in refused_events(book, tmp_path)] == [2]


def test_a_report_without_exec_id_is_refused(book: Tieout, tmp_path: Path) -> None:
    """FIX 4.4 requires ExecID (17) on every ExecutionReport. A report without it was applied,
    and applied again each time its file was (nothing tells it from a new one): a drop copy
    applied twice left a working order suspended, and the venue's next fill was refused."""
    external(book, "X1")
    lines = (
        "35=8|11=X1|17=A0|150=0|39=0",
        "35=8|11=X1|150=9|39=9",
        "35=8|11=X1|150=3|39=3",
    )
    for _ in range(2):  # the same file, applied again: the same answer, the book unchanged
        r = apply(book, tmp_path, "drop.fix", *lines)
        assert r.code == 3, r.err
        refused = r.json()["problems"]
        assert [(x["line"], x["field"]) for x in refused] == [(2, "17"), (3, "17")], refused
        assert "ExecID (17): is missing (FIX 4.4 requires it on every ExecutionReport" in (
            refused[0]["reason"]
        ), refused
        assert shown(book, "X1")["status"] == "new"
    fill = apply(book, tmp_path, "fill.fix", "35=8|11=X1|17=E1|150=F|39=1|32=2|31=100")
    assert fill.code == 0, fill.err
    assert shown(book, "X1")["cum_qty"] == "2"


def test_a_report_refused_before_is_flagged_when_a_later_apply_books_it(
    book: Tieout, tmp_path: Path
) -> None:
    """A fill refused as an overfill, then the fill before it busted: applying the file again
    booked the refused fill in silence (exit 0), so the book depended on how many times the
    file was applied. It is booked as the venue's fact, and flagged: a warning naming the
    first refusal, and an `order.report_discrepancy` audit event."""
    external(book, "X1")
    lines = (
        "35=8|11=X1|17=E1|150=F|39=2|32=10|31=100",
        "35=8|11=X1|17=E2|150=F|32=5|31=100",  # an overfill: refused
        "35=8|11=X1|17=B1|150=H|19=E1",
    )
    first = apply(book, tmp_path, "drop.fix", *lines)
    assert first.code == 3, first.err
    assert [p["line"] for p in first.json()["problems"]] == [2]
    assert (shown(book, "X1")["status"], shown(book, "X1")["cum_qty"]) == ("new", "0")
    again = apply(book, tmp_path, "drop.fix", *lines)
    assert again.code == 0, again.err
    doc = again.json()
    assert (doc["applied"], doc["duplicates"], doc["refused"]) == (1, 2, 0)
    (warning,) = [w for w in doc["warnings"] if w["field"] == "17"]
    assert warning["line"] == 2
    assert "ExecID E2 was refused before (" in warning["reason"], warning
    assert "drop.fix line 2: " in warning["reason"] and "applied now" in warning["reason"]
    assert "ExecID E2 was refused before" in " ".join(again.err.split())
    assert (shown(book, "X1")["status"], shown(book, "X1")["cum_qty"]) == ("partially_filled", "5")
    flagged = apply(book, tmp_path, "drop.fix", *lines)  # a third time: nothing changes
    assert (flagged.code, flagged.json()["duplicates"], flagged.json()["warnings"]) == (0, 3, [])


def test_a_refusal_is_kept_for_its_own_order_only(book: Tieout, tmp_path: Path) -> None:
    """The first refusal is kept by the order and the ExecID: another account's order with the
    same client order id at another venue, whose report has the same ExecID, is not flagged; a
    report refused because its order was not entered yet applies unflagged once it is."""
    book.ok("account", "open", "A2", "--currency", "USD", "--type", "margin")
    book.ok("cash", "deposit", "A2", "100000")
    external(book, "X1")
    r = apply(book, tmp_path, "acme.fix", "35=8|1=A1|11=X1|17=1|150=0|39=0",
              "35=8|1=A1|11=X1|17=2|150=F|39=2|32=20|31=100")  # fmt: skip
    assert r.code == 3 and [p["line"] for p in r.json()["problems"]] == [2], r.out
    book.ok("order", "submit", "--account", "A2", "--symbol", "COIN", "--side", "buy", "--qty",
            "10", "--type", "limit", "--limit", "101", "--venue", "BETA", "--client-order-id",
            "X1")  # fmt: skip
    r = apply(book, tmp_path, "beta.fix", "35=8|1=A2|11=X1|17=1|150=0|39=0",
              "35=8|1=A2|11=X1|17=2|150=F|39=1|32=5|31=100")  # fmt: skip
    assert (r.code, r.json()["applied"], r.json()["warnings"]) == (0, 2, []), r.out
    early = apply(book, tmp_path, "early.fix", "35=8|11=U1|17=U-0|150=0|39=0")
    assert early.code == 3, early.out  # no order U1 yet
    external(book, "U1", qty="11")  # (other terms than X1's: no duplicate order)
    r = apply(book, tmp_path, "early.fix", "35=8|11=U1|17=U-0|150=0|39=0")
    assert (r.code, r.json()["applied"], r.json()["warnings"]) == (0, 1, []), r.out


def test_a_reports_reason_and_terms_are_in_the_hash_chained_trail(
    book: Tieout, tmp_path: Path
) -> None:
    """The issue: every transition goes to the hash-chained audit trail with its actor and
    reason. A venue's Text (a cancel reject's "too late", an unsolicited cancel's) and a fill's
    quantity and price were only in order_events (append-only, not chained)."""
    external(book, "X1")
    book.ok("order", "cancel", "--client-order-id", "X1", "--new-client-order-id", "X2")
    r = apply(book, tmp_path, "drop.fix",
              "35=8|11=X1|17=E0|150=0|39=0",
              "35=8|11=X1|17=E1|150=F|39=1|32=4|31=100.5",
              "35=9|11=X2|41=X1|434=1|39=1|58=too late to cancel",
              "35=8|11=X1|17=E2|150=G|19=E1|39=1|32=4|31=100.25|58=price corrected",
              "35=8|11=X1|17=E3|150=4|39=4|58=venue halted")  # fmt: skip
    assert r.code == 0, r.err
    reports = audit_events(book, tmp_path, "order.report")
    got = [
        (p["exec_id"], p.get("quantity"), p.get("price"), p.get("exec_ref_id"))
        for p in (e["payload"] for e in reports)
    ]
    assert got == [
        ("E0", None, None, None),
        ("E1", "4", "100.5", None),
        (None, None, None, None),
        ("E2", "4", "100.25", "E1"),
        ("E3", None, None, None),
    ], got
    reasons = [e["payload"]["reason"] for e in reports]
    assert reasons == [e["reason"] for e in reports]  # the event's reason, and in its payload
    assert "fill E1: 4 @ 100.5" in reasons[1]
    for n, text in ((2, "too late to cancel"), (3, "price corrected"), (4, "venue halted")):
        assert text in reasons[n], reasons
    assert book.ok("audit", "verify", "--json").json()["ok"] is True


def test_a_bust_that_ends_the_order_puts_both_reasons_in_the_trail(
    book: Tieout, tmp_path: Path
) -> None:
    """A bust stating 39=4 and 151=0 ends the order in the same transaction (a second
    transition): its reason was only in order_events, the chained trail said canceled without
    why."""
    external(book, "X1")
    r = apply(book, tmp_path, "drop.fix",
              "35=8|11=X1|17=E0|150=0|39=0",
              "35=8|11=X1|17=E1|150=F|39=2|32=10|31=100",
              "35=8|11=X1|17=E2|150=H|19=E1|39=4|151=0")  # fmt: skip
    assert r.code == 0, r.err
    reports = audit_events(book, tmp_path, "order.report")
    (bust,) = [e for e in reports if e["payload"]["exec_id"] == "E2"]
    (then,) = bust["payload"]["then"]
    assert (then["event"], then["status"]) == ("order_canceled", "canceled"), then
    assert "with the bust of E1" in then["reason"], then
    assert "then" not in reports[0]["payload"]


def test_a_fill_executed_after_its_day_order_ran_out_is_booked_with_a_warning(
    tieout: Tieout, tmp_path: Path
) -> None:
    """An audit of sessions: a day order placed on the NYSE's half day (closing 18:00 UTC on
    2026-11-27) filled by the venue on Monday the 30th was booked without a word: the venue is
    working it as another kind of order. Booked (the venue's fact), with a warning."""
    tieout.ok("instrument", "add", "AAPL", "--exchange", "XNYS", "--currency", "USD")
    tieout.ok("account", "open", "A1", "--currency", "USD", "--type", "margin")
    tieout.ok("cash", "deposit", "A1", "100000")
    friday = tieout.at("2026-11-27T17:00:00Z")
    friday.ok("order", "submit", "--account", "A1", "--symbol", "AAPL", "--side", "buy",
              "--qty", "10", "--type", "limit", "--limit", "100", "--venue", "ACME",
              "--client-order-id", "e1")  # fmt: skip
    ack = ("8=FIX.4.4|35=8|11=e1|17=X1|150=0|39=0|55=AAPL|54=1|38=10|14=0|151=10|"
           "60=20261127-17:00:01|\n")  # fmt: skip
    friday.ok("exec", "apply", write(tmp_path / "a.fix", ack))
    fill = ("8=FIX.4.4|35=8|11=e1|17=X2|150=F|39=2|55=AAPL|54=1|38=10|32=10|31=99|14=10|151=0|"
            "6=99|60={}|\n")  # fmt: skip
    in_time = tieout.at("2026-11-27T17:59:00Z").ok(
        "exec", "apply", write(tmp_path / "b.fix", fill.format("20261127-17:58:00")), "--json"
    )
    assert in_time.json()["warnings"] == []
    monday = tieout.at("2026-11-30T15:01:00Z")
    friday.ok("order", "submit", "--account", "A1", "--symbol", "AAPL", "--side", "buy",
              "--qty", "5", "--type", "limit", "--limit", "100", "--venue", "ACME",
              "--client-order-id", "e3")  # fmt: skip
    late = fill.replace("11=e1", "11=e3").replace("17=X2", "17=X3")
    late = late.replace("38=10|32=10", "38=5|32=5").replace("14=10|", "14=5|")
    done = monday.ok("exec", "apply", write(tmp_path / "c.fix", late.format("20261130-15:00:00")),
                     "--json").json()  # fmt: skip
    assert done["applied"] == 1
    [warning] = done["warnings"]
    assert warning["field"] == "60"
    assert (
        "filled at 2026-11-30T15:00:00.000000Z, after its time in force ran out at "
        "2026-11-27T18:00:00.000000Z" in warning["reason"]
    )
