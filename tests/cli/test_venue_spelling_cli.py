"""Through the real command on both backends: `order submit` takes a venue as the book knows it.

Venue names are matched as written (an execution is (venue, ExecID)), so an order routed to
`acme` in a book that knows ACME would have its venue's fills booked under a second spelling:
`exec import` refused such rows already; `order submit` took them, the root of the cases where
one execution was booked twice (an audit of hostile input, 2026-11-28).
"""

from pathlib import Path

from tests.cli.test_exec_apply_review import book, external
from tests.cli.test_order_cli import submit
from tests.conftest import Tieout, write

__all__ = ["book"]  # the fixture, used by name

HEAD = "account,symbol,side,qty,type,limit,venue,client_order_id\n"


def _orders(t: Tieout) -> list[tuple[str, str]]:
    return [(o["client_order_id"], o["venue"]) for o in t.ok("order", "list", "--json").json()]


def test_an_order_to_a_known_venue_in_another_case_is_refused(book: Tieout) -> None:
    external(book, "X1")  # routed to ACME
    r = book("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy",
             "--qty", "1", "--type", "limit", "--limit", "99", "--venue", "acme",
             "--client-order-id", "X2")  # fmt: skip
    assert r.code == 3, r.err
    assert "venue acme: the book knows this venue as ACME" in r.err and "write ACME" in r.err
    assert _orders(book) == [("X1", "ACME")]
    # the book's own spelling is taken; `paper` in any case is the paper venue
    assert submit(book, "--side", "buy", "--qty", "1", "--type", "limit", "--limit", "99",
                  "--venue", "ACME")["status"] == "pending_new"  # fmt: skip
    assert submit(book, "--side", "buy", "--qty", "1", "--venue", "Paper")["venue"] == "paper"


def test_a_venue_known_from_imported_executions_is_matched_in_its_spelling(
    book: Tieout, tmp_path: Path
) -> None:
    trades = write(tmp_path / "t.csv", "exec_id,account,symbol,side,quantity,price,trade_date,"
                   "venue\nT1,A1,COIN,buy,1,100,2026-11-27,Xchg\n")  # fmt: skip
    assert book("exec", "import", trades).code == 0
    r = book("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy",
             "--qty", "1", "--type", "limit", "--limit", "99", "--venue", "XCHG")  # fmt: skip
    assert r.code == 3 and "the book knows this venue as Xchg" in r.err, r.err
    assert _orders(book) == []


def test_an_order_file_takes_one_spelling_of_a_venue(book: Tieout, tmp_path: Path) -> None:
    external(book, "X1")  # routed to ACME
    rows = ["A1,COIN,buy,1,limit,99,acme,F1", "A1,COIN,buy,2,limit,99,ACME,F2",
            "A1,COIN,buy,3,limit,99,Beta,F3", "A1,COIN,buy,4,limit,99,BETA,F4",
            "A1,COIN,buy,5,limit,99,Beta,F5"]  # fmt: skip
    r = book("order", "submit", "--file", write(tmp_path / "o.csv", HEAD + "\n".join(rows)),
             "--json")  # fmt: skip
    assert r.code == 3, r.err
    doc = r.json()
    assert (doc["accepted"], doc["rejected"]) == (3, 2), doc
    refused = {x["line"]: x["reason"] for x in doc["results"] if x.get("reason")}
    assert sorted(refused) == [2, 5]
    assert "the book knows this venue as ACME" in refused[2]
    assert "the book knows this venue as Beta" in refused[5]
    assert sorted(_orders(book)) == [("F2", "ACME"), ("F3", "Beta"), ("F5", "Beta"), ("X1", "ACME")]
