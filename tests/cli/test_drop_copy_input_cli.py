"""Through the real command on both backends: what `exec apply` and `exec import` do with input
an earlier reading let through (an audit of hostile and malformed input, 2026-11-28).

- `exec import`: a venue written in another case (`PAPER`, `acme`) than the book knows it would
  have booked the same execution twice; a re-import that states another commission, fees or
  settlement date was skipped without a word; a fill naming an order tieout keeps was booked
  beside it, and the venue's report of it then refused for good; an exec_time in 2099 was
  booked; a trailing blank line refused the whole file.
- `exec apply`: FIX 4.2 (BeginString, ExecTransType) was read as FIX 4.4; a commission in
  another currency (CommCurrency 479) was booked as the instrument's; unreadable CumQty or an
  undefined OrdStatus on a normal report passed without a word; an empty file exited 0; a
  SIGTERM part way said nothing of what committed.
"""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from oms import executions as executions_book
from tests.cli.test_exec_apply_review import apply, book, executions, external, shown
from tests.cli.test_order_cli import fix_line, report, submit
from tests.conftest import Tieout, write

__all__ = ["book"]  # the fixture, used by name

HEADER = "exec_id,account,symbol,side,quantity,price,trade_date,venue"


def _import(t: Tieout, tmp_path: Path, name: str, *rows: str, header: str = HEADER) -> object:
    return t("exec", "import", write(tmp_path / name, "\n".join([header, *rows]) + "\n"), "--json")


def _position(t: Tieout) -> str:
    rows = t.ok("positions", "--account", "A1", "--json").json()
    return str(rows[0]["quantity"]) if rows else "0"


def test_a_venue_in_another_case_is_refused_not_booked_again(book: Tieout, tmp_path: Path) -> None:
    paper = submit(book, "--side", "buy", "--qty", "10")
    assert paper["status"] == "filled"
    (fill,) = executions(book).values()
    day = fill["trade_date"]
    r = _import(book, tmp_path, "paper.csv",
                f"{fill['exec_id']},A1,COIN,buy,10,100,{day},PAPER")  # fmt: skip
    assert r.code == 3 and "paper venue's own fill ids" in r.err
    external(book, "X1", qty="4")
    assert apply(book, tmp_path, "f.fix", report("X1", "X1E0", "0"),
                 report("X1", "E1", "F", (32, "4"), (31, "100"))).code == 0  # fmt: skip
    r = _import(book, tmp_path, "acme.csv", f"E1,A1,COIN,buy,4,100,{day},acme")
    assert r.code == 3 and "the book knows this venue as ACME" in r.err
    assert _position(book) == "14"
    # the venue as the book knows it: booked already, skipped
    same = _import(book, tmp_path, "same.csv", f"E1,A1,COIN,buy,4,100,{day},ACME")
    assert same.code == 0 and same.json()["already_booked"] == 1
    assert _position(book) == "14"


def test_a_re_import_stating_other_costs_or_settlement_is_refused(
    book: Tieout, tmp_path: Path
) -> None:
    day = "2026-11-24"
    header = HEADER + ",commission,fees,settle_date"
    first = _import(book, tmp_path, "a.csv", f"D1,A1,COIN,buy,5,100,{day},BRK,0,0,2026-11-25",
                    header=header)  # fmt: skip
    assert first.code == 0
    for row, field in (
        (f"D1,A1,COIN,buy,5,100,{day},BRK,250,0,2026-11-25", "commission"),
        (f"D1,A1,COIN,buy,5,100,{day},BRK,0,75,2026-11-25", "fees"),
        (f"D1,A1,COIN,buy,5,100,{day},BRK,0,0,2026-12-10", "settle_date"),
    ):
        r = _import(book, tmp_path, "b.csv", row, header=header)
        assert r.code == 3 and f"is booked already with {field}" in r.err, r.err
    # what a row leaves to its defaults is not compared: the same execution, skipped
    again = _import(book, tmp_path, "c.csv", f"D1,A1,COIN,buy,5,100,{day},BRK")
    assert again.code == 0 and again.json()["already_booked"] == 1
    (d1,) = executions(book).values()
    assert (d1["commission"], d1["fees"], d1["settle_date"]) == ("0", "0", "2026-11-25")


def test_a_fill_naming_an_order_tieout_keeps_is_refused_and_the_report_books_it(
    book: Tieout, tmp_path: Path
) -> None:
    external(book, "X1", qty="100")
    apply(book, tmp_path, "ack.fix", report("X1", "X1E0", "0"))
    day = "2026-11-24"
    r = _import(book, tmp_path, "e2.csv", f"E2,A1,COIN,buy,30,100,{day},ACME,X1",
                header=HEADER + ",client_order_id")  # fmt: skip
    assert r.code == 3 and "which tieout keeps" in r.err and "ACME's execution reports" in r.err
    assert executions(book) == {}
    done = apply(book, tmp_path, "e2.fix", report("X1", "E2", "F", (32, "30"), (31, "100")))
    assert done.code == 0
    assert (shown(book, "X1")["cum_qty"], shown(book, "X1")["leaves_qty"]) == ("30", "70")
    # the same fill imported after the report booked it: skipped, as before
    booked = executions(book)["E2"]["trade_date"]
    again = _import(book, tmp_path, "e2b.csv", f"E2,A1,COIN,buy,30,100,{booked},ACME,X1",
                    header=HEADER + ",client_order_id")  # fmt: skip
    assert again.code == 0 and again.json()["already_booked"] == 1


def test_a_future_exec_time_is_refused_and_blank_lines_are_no_rows(
    book: Tieout, tmp_path: Path
) -> None:
    header = HEADER + ",exec_time"
    r = _import(book, tmp_path, "f.csv", "F1,A1,COIN,buy,1,100,2026-11-24,BRK,2099-01-01T00:00:00Z",
                header=header)  # fmt: skip
    assert r.code == 3 and "exec_time" in r.err and "is after now" in r.err
    rows = "B1,A1,COIN,buy,1,100,2026-11-24,BRK\n\nB2,A1,COIN,buy,2,100,2026-11-24,BRK"
    text = f"{HEADER}\n\n{rows}\n\n"
    ok = book("exec", "import", write(tmp_path / "blank.csv", text), "--json")
    assert ok.code == 0 and ok.json()["booked"] == 2, ok.err
    bad = f"{HEADER}\n\nB3,A1,COIN,buy,0,100,2026-11-24,BRK\n"
    refused = book("exec", "import", write(tmp_path / "bad.csv", bad))
    assert refused.code == 3 and "line 3" in refused.err  # its line, blank lines counted
    only_blank = book("exec", "import", write(tmp_path / "none.csv", f"{HEADER}\n\n\n"))
    assert only_blank.code == 3 and "only blank lines" in only_blank.err


def test_fix_42_another_commission_currency_and_an_empty_file_are_refused(
    book: Tieout, tmp_path: Path
) -> None:
    external(book, "X1", qty="10")
    fill = ((35, "8"), (11, "X1"), (150, "F"), (32, "1"), (31, "100"))
    old = "|".join(f"{t}={v}" for t, v in ((8, "FIX.4.2"), *fill, (17, "E1")))
    r = apply(
        book,
        tmp_path,
        "d.fix",
        report("X1", "X1E0", "0"),
        old,
        fix_line(*fill, (17, "E2"), (20, "1")),
        fix_line(*fill, (17, "E3"), (12, "1000"), (13, "3"), (479, "JPY")),
        fix_line(*fill, (17, "E4"), (12, "0.001"), (13, "2"), (479, "USD")),
    )
    assert r.code == 3
    problems = {p["line"]: p["reason"] for p in r.json()["problems"]}
    assert set(problems) == {2, 3, 4}
    assert "BeginString is not FIX.4.4" in problems[2]
    assert "ExecTransType" in problems[3]
    assert "CommCurrency (479)" in problems[4] and "nothing is converted" in problems[4]
    assert {k: v["commission"] for k, v in executions(book).items()} == {"E4": "0.1"}
    empty = book("exec", "apply", write(tmp_path / "empty.fix", "\n  \n"))
    assert empty.code == 3 and "has no messages" in empty.err


def test_an_unreadable_figure_or_undefined_status_on_a_report_is_said(
    book: Tieout, tmp_path: Path
) -> None:
    external(book, "X1", qty="10")
    r = apply(
        book,
        tmp_path,
        "w.fix",
        report("X1", "X1E0", "0", (39, "Z")),
        report("X1", "E1", "F", (32, "4"), (31, "100"), (14, "1,000"), (151, "NaN"), (6, "1e9")),
    )
    assert r.code == 0, r.err
    warned = {(w["line"], w["field"]) for w in r.json()["warnings"]}
    assert {(1, "39"), (2, "14"), (2, "151"), (2, "6")} <= warned
    assert "is not a status FIX 4.4 defines" in r.err and "is not a number" in r.err


_KILLED_ON_THIRD_MESSAGE = (  # SIGTERM as the third message of a drop copy is applied
    "import os, signal, sys\n"
    "from oms import order_book\n"
    "real, n = order_book._apply_report, [0]\n"
    "def apply_report(*args, **kw):\n"
    "    n[0] += 1\n"
    "    if n[0] == 3: os.kill(os.getpid(), signal.SIGTERM)\n"
    "    return real(*args, **kw)\n"
    "order_book._apply_report = apply_report\n"
    "from cli.main import run; sys.argv[0] = 'tieout'; run()\n"
)


def _terminated(
    book: Tieout, tmp_path: Path, hook: str, first: tuple[str, ...] = ()
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """`exec apply --json` of `first`, then an acknowledgement and five fills of X1 (10), in a
    process that `hook` sends SIGTERM part way: its outcome (exit 143) and the file's lines."""
    external(book, "X1", qty="10")
    lines = [*first, report("X1", "X1E0", "0")]
    lines += [report("X1", f"E{i}", "F", (32, "1"), (31, "100")) for i in range(1, 6)]
    drop = write(tmp_path / "d.fix", "\n".join(lines) + "\n")
    env = {**os.environ, "TIEOUT_ACTOR": "ops", "PYTHONPATH": str(Path(__file__).parents[2])}
    env.pop("TIEOUT_DB", None)
    proc = subprocess.run(
        [sys.executable, "-c", hook, "exec", "apply", drop, "--json", "--db", book.db_url],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 143, proc.stderr
    return proc, lines


def test_a_drop_copy_terminated_part_way_says_what_committed(book: Tieout, tmp_path: Path) -> None:
    proc, lines = _terminated(book, tmp_path, _KILLED_ON_THIRD_MESSAGE)
    doc = json.loads(proc.stdout)
    assert (doc["complete"], doc["applied"], doc["next_line"]) == (False, 2, 3)
    assert doc["interrupted"] == "interrupted (Ctrl-C or SIGTERM)"
    assert "the messages before line 3 (2 applied" in proc.stderr
    assert "terminated (SIGTERM)" in proc.stderr and "Traceback" not in proc.stderr
    assert shown(book, "X1")["cum_qty"] == "1"
    rest = apply(book, tmp_path, "d.fix", *lines)
    assert rest.code == 0 and rest.json()["duplicates"] == 2
    assert shown(book, "X1")["cum_qty"] == "5"


_KILLED_AFTER_THIRD_COMMIT = (  # SIGTERM as the third message's transaction has committed
    "import contextlib, os, signal, sys\n"
    "from oms import store\n"
    "real, n = store.transaction, [0]\n"
    "@contextlib.contextmanager\n"
    "def transaction(conn):\n"
    "    with real(conn):\n"
    "        yield\n"
    "    n[0] += 1\n"
    "    if n[0] == int(os.environ.get('KILL_AT', '3')): os.kill(os.getpid(), signal.SIGTERM)\n"
    "store.transaction = transaction\n"
    "from cli.main import run; sys.argv[0] = 'tieout'; run()\n"
)


def test_a_drop_copy_terminated_as_a_message_commits_counts_it(
    book: Tieout, tmp_path: Path
) -> None:
    """The re-review: a SIGTERM that came as a message committed was raised before the message
    was counted, and the summary said one message fewer than the book had."""
    proc, _ = _terminated(book, tmp_path, _KILLED_AFTER_THIRD_COMMIT)
    doc = json.loads(proc.stdout)
    assert (doc["applied"], doc["next_line"]) == (3, 4)
    assert shown(book, "X1")["cum_qty"] == "2"  # the ack, E1 and E2 committed


def _two_spellings(
    t: Tieout, monkeypatch: pytest.MonkeyPatch, *orders: tuple[str, str, str]
) -> None:
    """Orders routed to one venue in two spellings: a book written before `order submit`
    refused a spelling the book did not have (an older tieout: its check taken away)."""
    with monkeypatch.context() as older:
        older.setattr(executions_book, "another_spelling", lambda venue, known: None)
        for cl, venue, qty in orders:
            t.ok("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy",
                 "--qty", qty, "--type", "limit", "--limit", "101", "--venue", venue,
                 "--client-order-id", cl, "--json")  # fmt: skip


def test_venue_spellings_within_a_file_and_those_the_book_has(
    book: Tieout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = "2026-11-24"
    two = _import(book, tmp_path, "two.csv", f"E1,A1,COIN,buy,5,100,{day},NEWV",
                  f"E1,A1,COIN,buy,5,100,{day},newv")  # fmt: skip
    assert two.code == 3 and "the file writes this venue as NEWV and newv" in two.err
    # a book that came to have two spellings (orders routed to acme and ACME): each is
    # written as the book has it, and neither is refused
    _two_spellings(book, monkeypatch, ("L1", "acme", "3"), ("U1", "ACME", "4"))
    init = book.ok("init")  # what the upgrade to a tieout that refuses a third says of it
    assert "this book writes one venue as ACME and acme" in init.err, init.err
    assert _import(book, tmp_path, "lower.csv", f"L9,A1,COIN,buy,1,100,{day},acme").code == 0
    assert _import(book, tmp_path, "upper.csv", f"U9,A1,COIN,buy,1,100,{day},ACME").code == 0
    mixed = _import(book, tmp_path, "mixed.csv", f"M9,A1,COIN,buy,1,100,{day},Acme")
    assert mixed.code == 3 and "the book knows this venue as ACME or acme" in mixed.err
    # L1's fill under the other spelling is still L1's (the second re-review: booked twice)
    claim = _import(book, tmp_path, "claim.csv", f"E4,A1,COIN,buy,3,100,{day},ACME,L1",
                    header=HEADER + ",client_order_id")  # fmt: skip
    assert claim.code == 3 and "which tieout keeps" in claim.err


def test_another_systems_client_order_id_is_no_claim_on_an_order(
    book: Tieout, tmp_path: Path
) -> None:
    external(book, "X1", qty="10")  # a buy of COIN at ACME
    header = HEADER + ",client_order_id"
    day = "2026-11-24"
    for row in (f"S1,A1,COIN,sell,1,100,{day},BROKERX,X1", f"S2,A1,COIN,sell,1,100,{day},ACME,X1"):
        assert _import(book, tmp_path, "other.csv", row, header=header).code == 0
    assert shown(book, "X1")["cum_qty"] == "0"


def test_a_fill_imported_before_its_drop_copy_is_counted_on_the_order_once(
    book: Tieout, tmp_path: Path
) -> None:
    """The venue's trade file (without client order ids) came before the FIX drop copy: its
    fill E2 was booked by `exec import`, and the report of E2 was then refused for ever (the
    order stayed partially filled, holding cash for a quantity the venue had filled). Now the
    report counts it on the order without booking it twice; with other terms it is refused."""
    external(book, "X1", qty="100")
    apply(book, tmp_path, "ack.fix", report("X1", "X1E0", "0"))
    day = book.ok("md", "last", "COIN", "--json").json()["time"][:10]
    rows = [f"E2,A1,COIN,buy,30,100,{day},ACME", f"E3,A1,COIN,buy,30,100,{day},ACME"]
    assert _import(book, tmp_path, "trades.csv", *rows).code == 0
    r = apply(
        book,
        tmp_path,
        "drop.fix",
        report("X1", "E1", "F", (32, "40"), (31, "100")),
        report("X1", "E2", "F", (32, "30"), (31, "100")),
        report("X1", "E3", "F", (32, "30"), (31, "99")),  # the import booked it at 100
    )
    assert r.code == 3, r.err
    (problem,) = r.json()["problems"]
    assert problem["line"] == 3 and "price 99 against 100 booked" in problem["reason"]
    assert any("booked already by exec import" in w["reason"] for w in r.json()["warnings"])
    order = shown(book, "X1")
    assert (order["cum_qty"], order["leaves_qty"], order["status"]) == (
        "70",
        "30",
        "partially_filled",
    )
    assert _position(book) == "100"  # E1 + E2 + E3, each booked once
    assert sorted(executions(book)) == ["E1", "E2", "E3"]
    _shows_its_order(book, tmp_path, day, order["order_id"])
    verify = book.ok("audit", "verify", "--json").json()
    assert verify["ok"] is True
    again = apply(book, tmp_path, "drop.fix", report("X1", "E2", "F", (32, "30"), (31, "100")))
    assert again.code == 0 and again.json()["duplicates"] == 1


def _shows_its_order(t: Tieout, tmp_path: Path, day: str, order_id: str) -> None:
    """E1 (booked by the drop copy) and E2 (booked by the import, then counted on the order)
    name order X1 in `exec list`, `export trades` and the trade confirmations; E2 showed none
    (the import's row, append-only, names no order). E3, whose report was refused, names none."""
    want = {"E1": (order_id, "X1"), "E2": (order_id, "X1"), "E3": (None, None)}
    listed = t.ok("exec", "list", "--json").json()
    assert {r["exec_id"]: (r["order_id"], r["client_order_id"]) for r in listed} == want
    out = tmp_path / "trades.csv"
    t.ok("export", "trades", "--from", day, "--to", day, "--out", str(out))
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    csv_want = {e: (o or "", c or "") for e, (o, c) in want.items()}  # no value: empty
    assert {r["exec_id"]: (r["order_id"], r["client_order_id"]) for r in rows} == csv_want
    doc = t.ok("report", "confirmations", "--date", day, "--out", str(tmp_path / "conf"),
               "--format", "json", "--json").json()  # fmt: skip
    confirmed = doc["confirmations"]
    assert {c["exec_id"]: (c["order_id"], c["client_order_id"]) for c in confirmed} == want


def test_an_imported_fill_is_not_shown_on_an_order_whose_ack_had_its_exec_id(
    book: Tieout, tmp_path: Path
) -> None:
    """The re-review: an order's acknowledgement with ExecID K1, then a fill K1 the venue's
    trade file booked: the order never counted it, yet `exec list`, `export trades` and the
    confirmation named the order (any of its events with that ExecID was taken for a fill)."""
    external(book, "X1", qty="100")
    apply(book, tmp_path, "ack.fix", report("X1", "K1", "0"))
    day = book.ok("md", "last", "COIN", "--json").json()["time"][:10]
    assert _import(book, tmp_path, "t.csv", f"K1,A1,COIN,buy,5,100,{day},ACME").code == 0
    assert shown(book, "X1")["cum_qty"] == "0"
    assert executions(book)["K1"]["order_id"] is None
    doc = book.ok("report", "confirmations", "--date", day, "--out", str(tmp_path / "conf"),
                  "--format", "json", "--json").json()  # fmt: skip
    assert [(c["exec_id"], c["order_id"]) for c in doc["confirmations"]] == [("K1", None)]
    # and the import may still correct it: no order counted it
    fix = _import(book, tmp_path, "c.csv", f"K2,A1,COIN,buy,5,101,{day},ACME,correct,K1",
                  header=HEADER + ",exec_type,ref_exec_id")  # fmt: skip
    assert fix.code == 0, fix.err


def test_an_imported_fill_counts_on_one_order_and_only_its_report_changes_it(
    book: Tieout, tmp_path: Path
) -> None:
    """The re-review: the same imported ExecID was counted on two orders, and an import then
    busted it behind the order's back (its executions row names no order)."""
    external(book, "G1", qty="4")
    external(book, "G2", qty="5")
    apply(book, tmp_path, "ack.fix", report("G1", "G1E0", "0"), report("G2", "G2E0", "0"))
    day = book.ok("md", "last", "COIN", "--json").json()["time"][:10]
    assert _import(book, tmp_path, "z9.csv", f"Z9,A1,COIN,buy,4,100,{day},ACME").code == 0
    first = apply(book, tmp_path, "g1.fix", report("G1", "Z9", "F", (32, "4"), (31, "100")))
    assert first.code == 0, first.err
    second = apply(book, tmp_path, "g2.fix", report("G2", "Z9", "F", (32, "4"), (31, "100")))
    assert second.code == 3 and "counted already on order" in second.err
    assert (shown(book, "G1")["cum_qty"], shown(book, "G2")["cum_qty"]) == ("4", "0")
    bust = _import(book, tmp_path, "bust.csv", f"B9,A1,COIN,buy,4,100,{day},ACME,bust,Z9",
                   header=HEADER + ",exec_type,ref_exec_id")  # fmt: skip
    assert bust.code == 3 and "correct or bust it with ACME's execution report" in bust.err
    assert _position(book) == "4"
    # the venue's own bust of it, by drop copy, changes the order and the position together
    busted = apply(book, tmp_path, "h.fix", report("G1", "H9", "H", (19, "Z9"), (32, "4"),
                                                   (31, "100")))  # fmt: skip
    assert busted.code == 0, busted.err
    assert shown(book, "G1")["cum_qty"] == "0" and _position(book) == "0"


def test_a_drop_copy_terminated_after_a_refusal_commits_counts_it(
    book: Tieout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second re-review: an interrupt right after the unreadable lines' refusals committed
    printed no summary at all, and one after a refused message's commit named that message as
    the next line. The unreadable line (a bad checksum) commits first, then the overfill's
    refusal."""
    bad = report("X1", "B1", "0").replace("10=", "10=9")
    overfill = report("X1", "O1", "F", (32, "11"), (31, "100"))
    for at, first, counts in (("1", (bad,), (0, 1, 2)), ("2", (bad, overfill), (0, 2, 3))):
        monkeypatch.setenv("KILL_AT", at)
        (tmp_path / at).mkdir()
        proc, _ = _terminated(book, tmp_path / at, _KILLED_AFTER_THIRD_COMMIT, first)
        doc = json.loads(proc.stdout)
        assert (doc["applied"], len(doc["problems"]), doc["next_line"]) == counts


def test_one_fill_under_two_spellings_of_its_venue_is_booked_once(
    book: Tieout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The third re-review: with orders routed to acme and to ACME, a fill the trade file
    booked under ACME was booked again by the drop copy under acme (position 10 for 5), and
    the other way round."""
    _two_spellings(book, monkeypatch, ("G1", "ACME", "4"), ("L1", "acme", "5"))
    apply(book, tmp_path, "ack.fix", report("L1", "L1E0", "0"))
    day = book.ok("md", "last", "COIN", "--json").json()["time"][:10]
    assert _import(book, tmp_path, "z9.csv", f"Z9,A1,COIN,buy,5,100,{day},ACME").code == 0
    r = apply(book, tmp_path, "z9.fix", report("L1", "Z9", "F", (32, "5"), (31, "100")))
    assert r.code == 3 and "booked already at venue ACME, the same venue as acme" in r.err
    r = apply(book, tmp_path, "z8.fix", report("L1", "Z8", "F", (32, "2"), (31, "100")))
    assert r.code == 0, r.err
    booked = executions(book)["Z8"]["trade_date"]
    again = _import(book, tmp_path, "z8.csv", f"Z8,A1,COIN,buy,2,100,{booked},ACME")
    assert again.code == 3 and "booked already at venue acme" in again.err
    assert _position(book) == "7"  # Z9 once, Z8 once


def test_a_bust_reporting_leaves_0_with_a_point_ends_the_order(
    book: Tieout, tmp_path: Path
) -> None:
    for n, leaves in enumerate(("0.", ".0")):
        cl = f"K{n}"
        external(book, cl, qty=str(4 + n))
        fill = report(cl, f"{cl}F", "F", (32, "4"), (31, "100"))
        bust = report(cl, f"{cl}H", "H", (19, f"{cl}F"), (32, "4"), (31, "100"), (39, "4"),
                      (151, leaves))  # fmt: skip
        assert apply(book, tmp_path, f"{cl}.fix", report(cl, f"{cl}0", "0"), fill, bust).code == 0
        assert shown(book, cl)["status"] == "canceled"
    assert book.ok("cash", "balance", "A1", "--json").json()["reserved"] in ("0", "0.00")


def test_a_venue_file_stating_a_corrected_trade_as_it_is_now_is_booked_already(
    book: Tieout, tmp_path: Path
) -> None:
    """An ops day (2026-11-28): the venue's end-of-day file lists E1 at its corrected price;
    the import refused the whole file naming the first price ("booked already with price
    100"), though the book holds E1 corrected to that very price."""
    external(book, "X1", qty="10")
    r = apply(book, tmp_path, "d.fix", report("X1", "X1E0", "0"),
              report("X1", "E1", "F", (32, "4"), (31, "100")),
              report("X1", "E2", "F", (32, "1"), (31, "100")),
              report("X1", "G1", "G", (19, "E1"), (32, "4"), (31, "99")),
              report("X1", "H2", "H", (19, "E2")))  # fmt: skip
    assert r.code == 0, r.err
    day = executions(book)["E1"]["trade_date"]
    now = _import(book, tmp_path, "eod.csv", f"E1,A1,COIN,buy,4,99,{day},ACME")
    assert now.code == 0 and now.json()["already_booked"] == 1, now.err
    assert _position(book) == "4"
    other = _import(book, tmp_path, "bad.csv", f"E1,A1,COIN,buy,4,98,{day},ACME")
    assert other.code == 3
    assert "booked already with price 100, corrected since by G1 to price 99" in other.err
    busted = _import(book, tmp_path, "bust.csv", f"E2,A1,COIN,buy,1,101,{day},ACME")
    assert busted.code == 3 and "price 100, busted since by H2;" in busted.err
    # the re-review: at the corrected price, another commission is what differs, and is named
    costs = _import(book, tmp_path, "c.csv", f"E1,A1,COIN,buy,4,99,{day},ACME,7",
                    header=HEADER + ",commission")  # fmt: skip
    assert costs.code == 3 and "corrected since by G1 to commission 0" in costs.err, costs.err
    assert "price" not in costs.err


def test_a_re_import_stating_another_kind_of_record_is_refused(
    book: Tieout, tmp_path: Path
) -> None:
    """The second re-review's doubt, reproduced: a file restating fill E1, with its very terms,
    as the bust of another execution was taken as "booked already" (what a row says it is was
    never compared). Where the row says what it is, it is compared with the record booked."""
    day = "2026-11-24"
    header = HEADER + ",exec_type,ref_exec_id"
    first = [f"E1,A1,COIN,buy,4,100,{day},ACME,fill,", f"C1,A1,COIN,buy,4,99,{day},ACME,correct,E1"]
    assert _import(book, tmp_path, "f.csv", *first, header=header).code == 0
    same = _import(book, tmp_path, "same.csv", *first, header=header)  # the file again
    assert same.code == 0 and same.json()["already_booked"] == 2
    bust = _import(book, tmp_path, "b.csv", f"E1,A1,COIN,buy,4,100,{day},ACME,bust,X9",
                   header=header)  # fmt: skip
    assert bust.code == 3 and "booked already with exec_type fill" in bust.err, bust.err
    # a file without the column states nothing of it: E1 at its corrected terms is booked
    plain = _import(book, tmp_path, "p.csv", f"E1,A1,COIN,buy,4,99,{day},ACME")
    assert plain.code == 0 and plain.json()["already_booked"] == 1, plain.err


def test_many_trades_stated_as_corrected_are_read_in_batches(book: Tieout, tmp_path: Path) -> None:
    """The re-review: the corrected records were read with one IN of every key (PostgreSQL
    refuses more than 65,535 parameters: 32,768 trades); read 500 keys a query, 1,200 here."""
    day, n = "2026-11-24", 1200
    fills = [f"T{i},A1,COIN,buy,1,100,{day},ACME,fill," for i in range(n)]
    fixes = [f"C{i},A1,COIN,buy,1,99,{day},ACME,correct,T{i}" for i in range(n)]
    header = HEADER + ",exec_type,ref_exec_id"
    assert _import(book, tmp_path, "f.csv", *fills, *fixes, header=header).code == 0
    stated = [f"T{i},A1,COIN,buy,1,99,{day},ACME" for i in range(n)]
    again = _import(book, tmp_path, "eod.csv", *stated)
    assert again.code == 0 and again.json()["already_booked"] == n, again.err
