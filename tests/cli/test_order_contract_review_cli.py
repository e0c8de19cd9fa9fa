"""Through the real command on both backends: what a review of the order and execution
commands against the contract found. Identifiers a drop copy or an amend carries, usage
errors (exit 2), references that name no one order, and the terms an order shows."""

from pathlib import Path

from tests.cli.test_exec_apply_review import apply, book, executions, external, shown
from tests.cli.test_order_cli import fix_line, report
from tests.conftest import Tieout

__all__ = ["book"]  # the fixture, used by name


def test_an_exec_id_tieout_cannot_keep_refuses_its_line_only(book: Tieout, tmp_path: Path) -> None:
    """A 5,000-character ExecID used to end the run on PostgreSQL with a database error (after
    the lines before it had been applied) and was booked on SQLite, where `exec import` would
    refuse it. Now its line is refused, the others applied, exit 3."""
    external(book, "Q1")
    r = apply(book, tmp_path, "ids.fix",
              report("Q1", "K1", "0"),
              report("Q1", "E" * 5000, "F", (32, "1"), (31, "100")),
              report("Q1", "A 12", "F", (32, "1"), (31, "100")),
              report("Q1", "E2", "F", (32, "2"), (31, "100")))
    assert r.code == 3, r.err
    doc = r.json()
    assert (doc["applied"], [(p["line"], p["field"]) for p in doc["problems"]]) == (
        2, [(2, "17"), (3, "17")])
    assert "is not a valid identifier" in doc["problems"][0]["reason"]
    assert len(r.err) < 2000  # the refused id is not echoed whole
    assert sorted(executions(book)) == ["E2"]
    assert shown(book, "Q1")["cum_qty"] == "2"


def test_a_new_client_order_id_is_an_identifier(book: Tieout) -> None:
    external(book, "Z3")
    for bad in ("z 3|x", "ctl\x07", "W" * 300, ""):
        r = book("order", "cancel", "--client-order-id", "Z3", "--new-client-order-id", bad)
        assert r.code == 3 and "--new-client-order-id" in r.err, (bad, r.err)
    assert shown(book, "Z3")["status"] == "pending_new"  # nothing asked of the venue


def test_a_cancel_reject_for_a_request_never_made_is_refused(
    book: Tieout, tmp_path: Path
) -> None:
    """Only a repeat of an answer is a duplicate; a reject of a cancel nobody asked for is
    refused (it used to be counted as a duplicate)."""
    external(book, "Y1")
    r = apply(book, tmp_path, "cr.fix", report("Y1", "Y1E0", "0"),
              fix_line((35, "9"), (11, "Y1"), (41, "Y1"), (39, "0"), (434, "1"), (102, "1")))
    assert r.code == 3, r.err
    assert (r.json()["duplicates"], r.json()["refused"]) == (0, 1)


def test_usage_errors_exit_2(book: Tieout) -> None:
    for args in (("order", "show"),
                 ("order", "show", "O00000001", "--client-order-id", "C2"),
                 ("order", "submit", "--json"),
                 ("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy"),
                 ("order", "amend", "--client-order-id", "C3")):
        r = book(*args)
        assert r.code == 2, (args, r.code, r.err)


def test_references_that_name_no_one_order(book: Tieout, tmp_path: Path) -> None:
    book.ok("account", "open", "A2", "--currency", "USD", "--type", "margin")
    book.ok("cash", "deposit", "A2", "100000")
    for account in ("A1", "A2"):
        book.ok("order", "submit", "--account", account, "--symbol", "COIN", "--side", "buy",
                "--qty", "1", "--type", "limit", "--limit", "90", "--tif", "gtc",
                "--client-order-id", "N1")
    r = book("order", "show", "--client-order-id", "N1")
    assert r.code == 3 and "orders of several accounts have it: name the account" in r.err
    assert book.ok("order", "show", "--client-order-id", "N1", "--account", "A2", "--json"
                   ).json()["account"] == "A2"
    nope = book("order", "list", "--account", "NOPE", "--json")
    assert nope.code == 5, nope.out
    r = apply(book, tmp_path, "u.fix", report("NOPE", "E1", "F", (32, "1"), (31, "1")))
    assert "order with ClOrdID (11) 'NOPE' not found" in r.json()["problems"][0]["reason"]


def test_a_second_request_while_a_cancel_is_pending_says_why(book: Tieout) -> None:
    """A cancel is chained behind a pending replace, with an id of its own (without one it is
    refused, and says why); a further cancel or amend waits."""
    external(book, "X1")
    book.ok("order", "amend", "--client-order-id", "X1", "--qty", "5")
    r = book("order", "cancel", "--client-order-id", "X1")
    assert r.code == 4 and "needs a client order id of its own" in r.err
    book.ok("order", "cancel", "--client-order-id", "X1", "--new-client-order-id", "X3")
    for again in (("cancel",), ("amend", "--qty", "4")):
        r = book("order", *again, "--client-order-id", "X1")
        assert r.code == 4
        assert "a cancel request is pending: wait for the venue's answer to it" in r.err
        assert "confirm_pending_cancel" not in r.err  # not the venue's commands


def test_dates_are_yyyy_mm_dd_and_an_order_shows_its_expire_date(book: Tieout) -> None:
    args = ("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy", "--qty",
            "1", "--type", "limit", "--limit", "90", "--tif", "gtd", "--json")
    r = book(*args, "--expire-at", "20301201")
    assert r.code == 3 and "is not a date (YYYY-MM-DD)" in r.err
    order = book.ok(*args, "--expire-at", "2030-12-01").json()
    assert order["expire_at"] == "2030-12-01"
    assert book.ok("order", "list", "--json").json()[0]["expire_at"] == "2030-12-01"


def test_a_repeat_of_a_rejected_order_gives_its_risk_codes_again(
    book: Tieout, tmp_path: Path
) -> None:
    args = ("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy", "--qty",
            "5000", "--client-order-id", "BIG", "--json")  # 500,000 USD > 100,000 of cash
    first = book(*args)
    assert first.code == 4 and first.json()["risk_codes"] == ["buying_power"]
    again = book(*args)
    assert again.code == 4 and again.json()["duplicate"] is True
    assert again.json()["risk_codes"] == ["buying_power"]  # it had none
    f = tmp_path / "o.csv"
    f.write_text("account,symbol,side,qty,client_order_id\nA1,COIN,buy,6000,B2\n")
    book("order", "submit", "--file", str(f), "--json")
    (line,) = book("order", "submit", "--file", str(f), "--json").json()["results"]
    assert (line["duplicate"], line["risk_codes"]) == (True, ["buying_power"])  # it had []
