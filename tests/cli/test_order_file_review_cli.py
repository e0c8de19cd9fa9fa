"""Through the real command on both backends, from a review of order files and risk settings:
empty required cells, blank lines, line numbers after a quoted line break, rows with too many
fields, a repeated column, a repeated rejected order in a file, options given beside --file;
which accounts are halted, what a limit was before its first change, exact available cash."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.cli.test_exec_apply_review import book
from tests.conftest import Tieout, write

__all__ = ["book"]  # the fixture, used by name

HEAD = "account,symbol,side,qty,client_order_id\n"


def test_an_empty_required_cell_is_bad_input_not_the_text_none(
    book: Tieout, tmp_path: Path
) -> None:
    book.ok("account", "open", "None", "--currency", "USD", "--type", "margin")
    book.ok("cash", "deposit", "None", "10000")
    f = write(tmp_path / "o.csv", HEAD + ",COIN,buy,1,E1\nA1,,buy,1,E2\nA1,COIN,buy,,E3\n")
    r = book("order", "submit", "--file", f, "--json")
    assert r.code == 3
    reasons = [x["reason"] for x in r.json()["results"]]
    assert reasons == [f"{c}: is empty; the column is required in every row"
                       for c in ("account", "symbol", "qty")]
    assert book.ok("order", "list", "--json").json() == []


def test_blank_lines_are_no_orders_and_lines_are_physical(book: Tieout, tmp_path: Path) -> None:
    f = write(tmp_path / "o.csv", HEAD + 'A1,COIN,buy,1,"two\nlines"\n\nA1,COIN,sell,x,B2\n'
              "A1,COIN,buy,2,B3\r\n\r\n")
    r = book("order", "submit", "--file", f, "--json")
    doc = r.json()
    assert (doc["orders"], doc["accepted"], doc["rejected"]) == (3, 1, 2), r.out
    # the id with a line break is refused on line 2; the bad qty is on line 5, not 4
    assert [x["line"] for x in doc["results"]] == [2, 5, 6]
    assert "'two\\nlines' is not a valid identifier" in doc["results"][0]["reason"]
    assert r.code == 3 and "line 5" not in r.out  # JSON only on stdout
    only_blank = write(tmp_path / "blank.csv", HEAD + "\n\n")
    r = book("order", "submit", "--file", only_blank)
    assert r.code == 3 and "no orders (only blank lines)" in r.err


def test_file_structure_errors_name_the_line(book: Tieout, tmp_path: Path) -> None:
    extra = write(tmp_path / "extra.csv", "account,symbol,side,qty\nA1,COIN,buy,1\n"
                  "A1,COIN,buy,1,oops\n")
    r = book("order", "submit", "--file", extra)
    assert r.code == 3 and "line 3: 5 fields, the header has 4" in r.err, r.err
    # a short record was read as empty values: "qty: is empty", or an optional one left out
    short = write(tmp_path / "short.csv", "account,symbol,side,qty\nA1,COIN,buy,1\n"
                  "A1,COIN,1\n")  # fmt: skip
    r = book("order", "submit", "--file", short)
    assert r.code == 3 and "line 3: 3 fields, the header has 4" in r.err, r.err
    twice = write(tmp_path / "twice.csv", "account,symbol,side,qty,qty\nA1,COIN,buy,1,1\n")
    r = book("order", "submit", "--file", twice)
    assert r.code == 3 and "column(s) qty appear more than once in the header" in r.err, r.err
    assert book.ok("order", "list", "--json").json() == []


def test_a_rejected_order_repeated_in_a_file_is_rejected_again(
    book: Tieout, tmp_path: Path
) -> None:
    f = write(tmp_path / "o.csv", HEAD + "A1,COIN,buy,5000,BIG\n")  # 500,000 USD: no cash
    assert book("order", "submit", "--file", f).code == 4
    r = book("order", "submit", "--file", f, "--json")
    assert r.code == 4, r.err  # a retrying script must not take it for accepted
    doc = r.json()
    assert (doc["accepted"], doc["rejected"], doc["duplicates"]) == (0, 1, 0)
    (line,) = doc["results"]
    assert line["duplicate"] is True and line["status"] == "rejected"
    assert line["reason"].startswith("a duplicate of an order that was rejected: risk: buying")


def test_order_options_beside_a_file_are_a_usage_error(book: Tieout, tmp_path: Path) -> None:
    f = write(tmp_path / "o.csv", HEAD + "A1,COIN,buy,1,U1\n")
    r = book("order", "submit", "--file", f, "--account", "A1", "--qty", "2")
    assert r.code == 2 and "--account, --qty cannot be given with --file" in r.err, r.err
    assert book.ok("order", "list", "--json").json() == []


def test_a_refused_submission_names_no_order_id_it_never_made(book: Tieout) -> None:
    r = book("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy",
             "--qty", "3", "--limit", "95")
    assert r.code == 3 and "order submit: a market order takes no limit price" in r.err, r.err


def test_risk_show_lists_the_halted_accounts(book: Tieout) -> None:
    book.ok("account", "open", "B1", "--currency", "USD")
    book.ok("risk", "kill", "--account", "B1", "--reason", "runaway")
    book.ok("risk", "kill", "--account", "A1", "--reason", "runaway")
    doc = book.ok("risk", "show", "--json").json()
    assert (doc["kill_switch"], doc["killed_accounts"]) == (False, ["A1", "B1"])
    book.ok("risk", "release", "--account", "A1")
    assert book.ok("risk", "show", "--json").json()["killed_accounts"] == ["B1"]


def test_the_first_change_of_a_limit_audits_the_default_it_replaced(
    book: Tieout, tmp_path: Path
) -> None:
    book.ok("risk", "set", "price-collar-pct", "20")
    book.ok("risk", "set", "duplicate-window-s", "2.5")
    book.ok("paper", "set", "commission-min", "1")
    out = tmp_path / "audit.jsonl"
    book.ok("audit", "export", "--from", "2000-01-01", "--to", "2100-01-01", "--out", str(out))
    changes = {e["payload"]["key"]: (e["payload"]["from"], e["payload"]["to"])
               for e in map(json.loads, out.read_text().splitlines())
               if e["action"] == "setting.set"}
    assert changes["risk.price-collar-pct"] == ("10", "20")
    assert changes["risk.duplicate-window-s"] == ("10", "2.5")
    assert changes["paper.commission-min"] == ("0", "1")


def test_available_cash_is_exact_however_many_digits(book: Tieout, tmp_path: Path) -> None:
    book.ok("account", "open", "Z1", "--currency", "USD")
    book.ok("cash", "deposit", "Z1", "100000000000000000")
    trade = write(tmp_path / "x.csv", "exec_id,account,symbol,side,quantity,price,trade_date,"
                  "venue\nZ1X,Z1,COIN,buy,0.000000000001,1.000000000001,2026-11-26,XV\n")
    book.ok("exec", "import", trade)
    bal = book.ok("cash", "balance", "Z1", "--json").json()
    exact = "99999999999999999.999999999998999999999999"  # 42 digits, more than 28
    assert (bal["balance"], bal["available"]) == (exact, exact)


def test_cash_in_and_out_comes_in_the_currencys_minor_units(book: Tieout) -> None:
    r = book("cash", "deposit", "A1", "10.001")
    assert r.code == 3 and "10.001 USD has more decimals than the currency's 2" in r.err
    book.ok("destination", "add", "A1", "BANK")
    later = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    w = book.at(later)("cash", "withdraw", "A1", "0.005", "--to", "BANK")  # after cooling off
    assert w.code == 3 and "0.005 USD has more decimals" in w.err, w.err
    book.ok("account", "open", "J1", "--currency", "JPY")
    assert book("cash", "deposit", "J1", "100.5").code == 3
    book.ok("cash", "deposit", "J1", "100.00")  # whole yen, however written
    assert book.ok("cash", "balance", "J1", "--json").json()["balance"] == "100.00"
    assert book.ok("cash", "balance", "A1", "--json").json()["balance"] == "100000"


def test_an_amend_that_changes_nothing_is_refused(book: Tieout) -> None:
    book.ok("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy", "--qty",
            "10", "--type", "limit", "--limit", "90", "--tif", "gtc", "--client-order-id", "N1")
    r = book("order", "amend", "--client-order-id", "N1", "--qty", "10.0000", "--limit", "90")
    assert r.code == 3 and "the replace changes nothing (quantity 10 -> 10" in r.err, r.err
    shown = book.ok("order", "show", "--client-order-id", "N1", "--json").json()
    assert (shown["quantity"], len(shown["history"])) == ("10", 2)  # submitted, acknowledged


def test_a_risk_rejection_shows_its_stable_codes(book: Tieout, tmp_path: Path) -> None:
    r = book("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy", "--qty",
             "60000", "--json")  # over the fat-finger limits and the buying power
    assert r.code == 4 and r.json()["risk_codes"] == [
        "max_quantity", "max_notional", "buying_power"], r.out
    f = write(tmp_path / "o.csv", HEAD + "A1,COIN,buy,5000,R1\nA1,COIN,buy,1,R2\n")
    lines = book("order", "submit", "--file", f, "--json").json()["results"]
    assert [x["risk_codes"] for x in lines] == [["buying_power"], []]
    # and later, from the order's events: `order show` gives them, an accepted order none
    shown = book.ok("order", "show", r.json()["order_id"], "--json").json()
    assert shown["risk_codes"] == ["max_quantity", "max_notional", "buying_power"]
    assert shown["history"][-1]["risk_codes"] == shown["risk_codes"]
    text = book.ok("order", "show", r.json()["order_id"]).out
    assert "[max_quantity, max_notional, buying_power]" in text
    filled = book.ok("order", "show", "--client-order-id", "R2", "--json").json()
    assert filled["risk_codes"] == [] and filled["status"] == "filled"
    (fill,) = [h for h in filled["history"] if "exec_id" in h]  # the event of the fill
    assert fill["exec_id"] == f"{filled['order_id']}-1"
