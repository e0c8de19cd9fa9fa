"""Through the real command on both backends, with tieout's clock pinned: which bars may fill a
resting paper order (not those after its time in force ran out, nor those before its present
terms), and what a venue's drop copies restate or may not (a correction's commission and dates,
a fill in another currency, a TransactTime in the future, a client order id two accounts use);
a refused amend is audited under the order's id."""

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_order_cli import report
from tests.conftest import Result, Tieout, write

T0 = "2026-11-26T15:00:00Z"  # a Thursday; COIN trades 24/7, its day closes at UTC midnight


@pytest.fixture
def book(tieout: Tieout, tmp_path: Path) -> Tieout:
    t = tieout.at(T0)
    t.ok("instrument", "add", "COIN", "--exchange", "24/7", "--currency", "USD")
    t.ok("account", "open", "A", "--currency", "USD", "--type", "margin")
    t.ok("cash", "deposit", "A", "100000")
    bars(t, tmp_path, "b0.csv", "2026-11-26T14:59:00Z,100,101,99,100,5000")
    return t


def bars(t: Tieout, tmp_path: Path, name: str, *rows: str) -> Any:
    lines = "".join(f"{r.split(',')[0]},COIN,{','.join(r.split(',')[1:])}\n" for r in rows)
    f = write(tmp_path / name, "time,symbol,open,high,low,close,volume\n" + lines)
    return t.ok("md", "import", f, "--json").json()


def submit(t: Tieout, *args: str) -> dict[str, Any]:
    doc: dict[str, Any] = t.ok(
        "order", "submit", "--account", "A", "--symbol", "COIN", *args, "--json"
    ).json()
    return doc


def apply(t: Tieout, tmp_path: Path, *lines: str) -> Result:
    return t("exec", "apply", write(tmp_path / "drop.fix", "\n".join(lines) + "\n"), "--json")


def show(t: Tieout, order_id: str) -> dict[str, Any]:
    doc: dict[str, Any] = t.ok("order", "show", order_id, "--json").json()
    return doc


def test_bars_after_the_time_in_force_ran_out_fill_nothing(book: Tieout, tmp_path: Path) -> None:
    limit = ("--side", "buy", "--qty", "10", "--type", "limit", "--limit", "98")
    day = submit(book, *limit, "--tif", "day")
    gtd = submit(book, *limit, "--tif", "gtd", "--expire-at", "2026-11-26")
    gtc = submit(book, *limit, "--tif", "gtc")
    late = book.at("2026-11-27T01:00:00Z")  # expire-due has not run yet
    done = bars(late, tmp_path, "b1.csv", "2026-11-27T00:30:00Z,97,98,96,97,5000")
    assert done["paper_orders_filled"] == 1  # the gtc order only
    assert (show(late, day["order_id"])["status"], show(late, gtd["order_id"])["status"]) == (
        "new", "new")
    assert show(late, gtc["order_id"])["status"] == "filled"
    expired = late.ok("order", "expire-due", "--json").json()
    assert sorted(o["order_id"] for o in expired) == sorted([day["order_id"], gtd["order_id"]])
    assert len(late.ok("exec", "list", "--json").json()) == 1


def test_a_bar_before_an_amend_does_not_fill_the_new_terms(book: Tieout, tmp_path: Path) -> None:
    order = submit(book, "--side", "buy", "--qty", "10", "--type", "limit", "--limit", "90",
                   "--tif", "gtc")
    book.at("2026-11-26T15:05:00Z").ok("order", "amend", order["order_id"], "--limit", "97")
    later = book.at("2026-11-26T15:10:00Z")
    # at 15:02 the order's limit was 90, which the bar (low 96) never reached
    assert bars(later, tmp_path, "b2.csv", "2026-11-26T15:02:00Z,99,99,96,98,5000")[
        "paper_orders_filled"] == 0
    assert show(later, order["order_id"])["status"] == "new"
    bars(later, tmp_path, "b3.csv", "2026-11-26T15:06:00Z,99,99,96,98,5000")
    doc = show(later, order["order_id"])
    assert (doc["status"], doc["avg_px"]) == ("filled", "97")


def _external(t: Tieout, account: str = "A") -> None:
    t.ok("order", "submit", "--account", account, "--symbol", "COIN", "--side", "buy", "--qty",
         "10", "--type", "limit", "--limit", "99", "--venue", "ACME", "--client-order-id", "X1")


def test_a_correction_restates_its_commission_and_dates(book: Tieout, tmp_path: Path) -> None:
    _external(book)
    r = apply(book, tmp_path,
              report("X1", "E0", "0"),
              report("X1", "E2", "F", (32, "3"), (31, "98"), (12, "1"), (75, "20261126"),
                     (64, "20261127")),
              report("X1", "E6", "G", (19, "E2"), (32, "3"), (31, "98"), (12, "5"),
                     (75, "20261126"), (64, "20261130")),
              report("X1", "E7", "G", (19, "E2"), (32, "2"), (31, "98")))  # keeps 5 and dates
    assert r.code == 0, r.err
    rows = {e["exec_id"]: e for e in book.ok("exec", "list", "--json").json()}
    assert (rows["E6"]["commission"], rows["E6"]["trade_date"], rows["E6"]["settle_date"]) == (
        "5", "2026-11-26", "2026-11-30")
    assert (rows["E7"]["commission"], rows["E7"]["trade_date"], rows["E7"]["settle_date"]) == (
        "5", "2026-11-26", "2026-11-30")
    # 2 @ 98 and the restated commission of 5: the first booking (3 @ 98 + 1) and the first
    # correction (3 @ 98 + 5) are reversed in full
    assert book.ok("cash", "balance", "A", "--json").json()["balance"] == "99799"


def test_a_fill_in_another_currency_is_refused(book: Tieout, tmp_path: Path) -> None:
    _external(book)
    r = apply(book, tmp_path, report("X1", "E0", "0"),
              report("X1", "E1", "F", (32, "1"), (31, "95"), (15, "EUR")))
    assert r.code == 3
    (problem,) = r.json()["problems"]
    assert problem["line"] == 2
    assert problem["reason"].startswith(
        "Currency (15): EUR is not order O00000001's currency (COIN trades in USD)")
    assert book.ok("exec", "list", "--json").json() == []
    assert apply(book, tmp_path, report("X1", "E1", "F", (32, "1"), (31, "95"),
                                        (15, "USD"))).code == 0


def test_a_fill_from_the_future_is_refused(book: Tieout, tmp_path: Path) -> None:
    _external(book)
    r = apply(book, tmp_path, report("X1", "E1", "F", (32, "1"), (31, "95"),
                                     (60, "20261126-16:00:00")))
    assert r.code == 3
    assert "is after now (2026-11-26T15:00:00.000000Z) by more than 5 minutes" in r.err
    assert book.ok("exec", "list", "--json").json() == []
    ok = apply(book, tmp_path, report("X1", "E1", "F", (32, "1"), (31, "95"),
                                      (60, "20261126-15:04:00")))  # clock skew
    assert ok.code == 0, ok.err


def test_a_client_order_id_of_two_accounts_needs_the_account(
    book: Tieout, tmp_path: Path
) -> None:
    book.ok("account", "open", "B", "--currency", "USD", "--type", "margin")
    book.ok("cash", "deposit", "B", "100000")
    _external(book, "A")
    _external(book, "B")
    r = apply(book, tmp_path, report("X1", "E0", "0"))
    assert r.code == 3
    assert "several accounts have an order with client order id 11=X1" in r.err
    assert "needs Account (1)" in r.err
    assert apply(book, tmp_path, report("X1", "E0", "0", (1, "B"))).code == 0
    statuses = {o["account"]: o["status"] for o in book.ok("order", "list", "--json").json()}
    assert statuses == {"A": "pending_new", "B": "new"}


def test_a_refused_amend_is_audited_under_the_order_id(book: Tieout, tmp_path: Path) -> None:
    order = submit(book, "--side", "buy", "--qty", "10", "--client-order-id", "C1")  # filled
    assert book("order", "amend", "--client-order-id", "C1", "--qty", "20").code == 4
    assert book("order", "cancel", "--client-order-id", "C1").code == 4
    out = tmp_path / "audit.jsonl"
    book.ok("audit", "export", "--from", "2026-11-25", "--to", "2026-11-27", "--out", str(out))
    events = [json.loads(x) for x in out.read_text().splitlines()]
    refused = [e for e in events if e["action"].endswith("_refused")]
    assert [(e["action"], e["entity_id"]) for e in refused] == [
        ("order.amend_refused", order["order_id"]),
        ("order.cancel_refused", order["order_id"]),
    ]
