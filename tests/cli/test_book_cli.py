"""The contract through the real command, on SQLite and PostgreSQL: reference data, cash,
execution import (and every way a file can be bad), positions, lots and the audit trail."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import Tieout, run_tieout, write

HEADER = "exec_id,account,symbol,side,quantity,price,trade_date,venue,commission,fees"


def setup_book(t: Tieout) -> None:
    t.ok("instrument", "add", "AAPL", "--exchange", "XNYS", "--currency", "USD")
    t.ok("instrument", "add", "MSFT", "--exchange", "XNYS", "--currency", "USD",
         "--tick-size", "0.01", "--lot-size", "1")
    t.ok("account", "open", "A1", "--currency", "USD", "--name", "Alpha Fund", "--type", "margin")
    t.ok("cash", "deposit", "A1", "100000", "--ref", "wire-1")


def table_counts(t: Tieout) -> tuple[str, str, str]:
    return (t.ok("exec", "list", "--json").out, t.ok("cash", "balance", "A1", "--json").out,
            t.ok("audit", "verify", "--json").out)


def test_commands_refuse_an_uninitialised_database(tmp_path: Path) -> None:
    r = run_tieout("account", "list", "--db", f"sqlite:///{tmp_path / 'none.db'}")
    assert r.code == 1
    assert "tieout init" in r.err
    assert r.out == ""


def test_reference_data_and_cash(tieout: Tieout) -> None:
    setup_book(tieout)
    inst = tieout.ok("instrument", "show", "MSFT", "--json").json()
    assert inst == {"symbol": "MSFT", "exchange": "XNYS", "currency": "USD",
                    "tick_size": "0.01", "lot_size": "1", "restricted": False}
    again = tieout.ok("account", "open", "A1", "--currency", "USD", "--name", "Alpha Fund",
                      "--type", "margin", "--json").json()
    assert again["created"] is False
    other = tieout("account", "open", "A1", "--currency", "EUR")
    assert other.code == 4
    assert "exists already" in other.err
    two_days_ago = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    tieout.at(two_days_ago).ok("destination", "add", "A1", "bank-1")  # whitelisted 24h+ ago
    bal = tieout.ok("cash", "withdraw", "A1", "250.75", "--to", "bank-1", "--json").json()
    assert bal["balance"] == "99749.25"
    assert bal["available"] == "99749.25"
    assert tieout.ok("cash", "balance", "A1", "--json").json() == {
        "account": "A1", "currency": "USD", "balance": "99749.25", "available": "99749.25",
        "reserved": "0"}
    too_much = tieout("cash", "withdraw", "A1", "1000000", "--to", "bank-1")
    assert too_much.code == 4
    assert "available cash is 99749.25" in too_much.err


@pytest.mark.parametrize(("args", "code", "text"), [
    (("cash", "deposit", "NOPE", "10"), 5, "account 'NOPE' not found"),
    (("cash", "deposit", "A1", "1e3"), 3, "not a decimal number"),
    (("cash", "deposit", "A1", "0"), 3, "greater than zero"),
    (("cash", "balance", "NOPE", "--json"), 5, "not found"),
    (("instrument", "add", "X", "--exchange", "MOON", "--currency", "USD"), 3, "exchange"),
    (("instrument", "add", "X", "--exchange", "XNYS", "--currency", "US"), 3, "ISO 4217"),
    (("account", "open", "B1", "--currency", "USD", "--type", "hedge"), 3, "cash or margin"),
    (("instrument", "show", "ZZZ"), 5, "not found"),
    (("positions", "--account", "A1", "--method", "hifo"), 3, "fifo, lifo or average"),
    (("cash", "deposit"), 2, "Missing argument"),
])
def test_bad_values_get_the_contract_exit_code(
    tieout: Tieout, args: tuple[str, ...], code: int, text: str
) -> None:
    setup_book(tieout)
    before = table_counts(tieout)
    r = tieout(*args)
    assert r.code == code, r.err
    assert text in r.err
    assert r.out == ""
    assert table_counts(tieout) == before


def test_instrument_import(tieout: Tieout, tmp_path: Path) -> None:
    good = write(tmp_path / "i.csv", "symbol,exchange,currency,tick_size,lot_size,restricted\n"
                 "AAPL,XNYS,USD,0.01,1,false\nBTC-USD,24/7,USD,0.01,0.0001,\nVOD,XLON,GBP,,,yes\n")
    assert tieout.ok("instrument", "import", good, "--json").json()["added"] == 3
    assert tieout.ok("instrument", "import", good, "--json").json()["unchanged"] == 3
    bad = write(tmp_path / "b.csv", "symbol,exchange,currency\nX1,XNYS,usd1\nX2,NOWHERE,USD\n"
                "X1,XNYS,USD\n")
    r = tieout("instrument", "import", bad)
    assert r.code == 3
    assert "line 2, currency" in r.err
    assert "line 3, exchange" in r.err
    assert "line 4, symbol: 'X1' duplicate" in r.err
    assert len(tieout.ok("instrument", "list", "--json").json()) == 3


def test_reference_data_again_compares_only_the_terms_it_states(
    tieout: Tieout, tmp_path: Path
) -> None:
    """Once compliance restricted MSFT, the same master file, the next day's with a new
    listing, and the same `instrument add` were each refused ("exists already": a file without
    a restricted column was compared as saying "not restricted"), so the new listing was never
    added; a file without tick_size was compared as saying 0.01. Terms left out are not
    compared, the restricted flag only when set, and a real difference names the term."""
    master = "symbol,exchange,currency,lot_size\nAAPL,XNYS,USD,1\nMSFT,XNYS,USD,1\n"
    tieout.ok("instrument", "add", "MSFT", "--exchange", "XNYS", "--currency", "USD",
              "--tick-size", "0.05")
    assert tieout.ok("instrument", "import", write(tmp_path / "m1.csv", master), "--json").json()[
        "added"] == 1
    tieout.ok("instrument", "restrict", "MSFT", "--reason", "MNPI")
    nvda = master + "NVDA,XNYS,USD,1\n"
    doc = tieout.ok("instrument", "import", write(tmp_path / "m2.csv", nvda), "--json").json()
    assert (doc["added"], doc["unchanged"]) == (1, 2)
    same = tieout.ok("instrument", "add", "MSFT", "--exchange", "XNYS", "--currency", "USD",
                     "--json").json()
    assert (same["created"], same["tick_size"], same["restricted"]) == (False, "0.05", True)
    unrestricting = "symbol,exchange,currency,restricted\nMSFT,XNYS,USD,false\n"
    tieout.ok("instrument", "import", write(tmp_path / "m3.csv", unrestricting))
    assert tieout.ok("instrument", "show", "MSFT", "--json").json()["restricted"] is True
    other = tieout("instrument", "add", "MSFT", "--exchange", "XNYS", "--currency", "EUR",
                   "--tick-size", "0.01")
    assert other.code == 4
    assert ("exists already with other terms: currency: the book's USD, not EUR; tick_size: "
            "the book's 0.05, not 0.01") in other.err
    restricting = "symbol,exchange,currency,restricted\nAAPL,XNYS,USD,yes\n"
    r = tieout("instrument", "import", write(tmp_path / "m4.csv", restricting))
    assert r.code == 4 and "restricted: the book's false, not true" in r.err
    assert "instrument restrict" in r.err
    assert tieout.ok("instrument", "show", "AAPL", "--json").json()["restricted"] is False
    tieout.ok("account", "open", "A9", "--currency", "USD", "--name", "Nine", "--type", "margin")
    again = tieout.ok("account", "open", "A9", "--currency", "USD", "--json").json()
    assert (again["created"], again["name"], again["type"]) == (False, "Nine", "margin")
    cash = tieout("account", "open", "A9", "--currency", "USD", "--type", "cash")
    assert cash.code == 4 and "type: the book's margin, not cash" in cash.err


def test_a_deposit_or_withdrawal_again_under_its_reference_is_booked_once(tieout: Tieout) -> None:
    """A deposit retried after a commit of unknown outcome (operations.md: "a retry would book
    twice") was booked twice. With a reference, the same movement again is the first one
    (`duplicate`, nothing booked); the reference with another amount or destination is
    refused (exit 4) naming what differs."""
    t = tieout.at("2026-11-24T15:00:00Z")
    t.ok("account", "open", "C1", "--currency", "USD", "--type", "cash")
    for dest in ("BANK", "OTHER"):
        tieout.at("2026-11-20T15:00:00Z").ok("destination", "add", "C1", dest)
    first = t.ok("cash", "deposit", "C1", "1000", "--ref", "W-1", "--json").json()
    assert (first["balance"], first["duplicate"]) == ("1000", False)
    again = t.ok("cash", "deposit", "C1", "1000.00", "--ref", "W-1", "--json").json()
    assert (again["balance"], again["duplicate"], again["entry_id"]) == (
        "1000", True, first["entry_id"])
    said = t.ok("cash", "deposit", "C1", "1000", "--ref", "W-1")
    assert "booked already" in said.err and "balance 1000" in said.out
    other = t("cash", "deposit", "C1", "900", "--ref", "W-1")
    assert other.code == 4 and "amount: the book's 1000, not 900" in other.err
    assert t.ok("cash", "deposit", "C1", "5", "--json").json()["balance"] == "1005"
    assert t.ok("cash", "deposit", "C1", "5", "--json").json()["balance"] == "1010"  # no ref
    # a blank reference is none (`--ref "$REF"` with REF unset); a padded one is trimmed
    for blank in ("", "  "):
        assert t.ok("cash", "deposit", "C1", "1", "--ref", blank, "--json").json()[
            "duplicate"] is False
    assert t.ok("cash", "deposit", "C1", "1000", "--ref", " W-1 ", "--json").json()[
        "duplicate"] is True
    t.ok("cash", "withdraw", "C1", "2", "--to", "BANK")
    out = t.ok("cash", "withdraw", "C1", "10", "--to", "BANK", "--ref", "P-1", "--json").json()
    assert out["balance"] == "1000"
    assert t.ok("cash", "withdraw", "C1", "10", "--to", "BANK", "--ref", "P-1", "--json").json()[
        "duplicate"] is True
    elsewhere = t("cash", "withdraw", "C1", "10", "--to", "OTHER", "--ref", "P-1")
    assert elsewhere.code == 4 and "destination: the book's BANK, not OTHER" in elsewhere.err
    assert t.ok("cash", "balance", "C1", "--json").json()["balance"] == "1000"


def test_a_cash_account_pays_out_only_what_has_settled(tieout: Tieout, tmp_path: Path) -> None:
    """A cash account's balance is on trade date: it holds a sale's proceeds from the trade,
    and a withdrawal paid them out before the buyer paid. What it can pay out today is its
    settled cash, less what its purchases settling later will take (`withdrawable`); a margin
    account is not held to it."""
    t = tieout.at("2026-11-24T15:00:00Z")
    t.ok("instrument", "add", "AAPL", "--exchange", "XNYS", "--currency", "USD")
    for account, kind in (("C1", "cash"), ("M1", "margin")):
        t.ok("account", "open", account, "--currency", "USD", "--type", kind)
        tieout.at("2026-11-20T15:00:00Z").ok("destination", "add", account, "BANK")
        t.ok("cash", "deposit", account, "1000")
        # bought 10 at 50 (settles the 25th), sold them at 60 (settles the 27th, Friday)
        rows = (f"B-{account},{account},AAPL,buy,10,50,2026-11-24,X,0,0,2026-11-25\n"
                f"S-{account},{account},AAPL,sell,10,60,2026-11-24,X,0,0,2026-11-27\n")
        t.ok("exec", "import", write(tmp_path / f"{account}.csv", HEADER + ",settle_date\n" + rows))
    cash = t.ok("cash", "balance", "C1", "--json").json()
    # 1,100 on trade date; 500 of the 1,000 settled is owed on the 25th; the 600 come the 27th
    assert (cash["balance"], cash["available"], cash["withdrawable"]) == ("1100", "1100", "500")
    assert "withdrawable today 500" in t.ok("cash", "balance", "C1").out
    refused = t("cash", "withdraw", "C1", "501", "--to", "BANK")
    assert refused.code == 4 and "500 can be paid out today" in refused.err
    assert t.ok("cash", "withdraw", "C1", "500", "--to", "BANK", "--json").json()[
        "balance"] == "600"
    # a deposit is cash in hand at once: one of 06:00 UTC is paid out at 06:05 (the UTC-12
    # rule is for the exchanges' value dates)
    t.ok("account", "open", "C3", "--currency", "USD", "--type", "cash")
    tieout.at("2026-11-20T15:00:00Z").ok("destination", "add", "C3", "BANK")
    tieout.at("2026-11-25T06:00:00Z").ok("cash", "deposit", "C3", "70")
    assert tieout.at("2026-11-25T06:05:00Z").ok(
        "cash", "withdraw", "C3", "70", "--to", "BANK", "--json"
    ).json()["balance"] == "0"
    # a value date counts once it has begun everywhere (UTC-12): at midnight in New York,
    # 05:00 UTC on the 27th, the 27th's sale is not paid out yet
    early = tieout.at("2026-11-27T05:00:00Z").ok("cash", "balance", "C1", "--json").json()
    assert early["withdrawable"] == "0"
    # once the sale settled, its proceeds are paid out
    settled = tieout.at("2026-11-27T15:00:00Z")
    assert settled.ok("cash", "balance", "C1", "--json").json()["withdrawable"] == "600"
    settled.ok("cash", "withdraw", "C1", "600", "--to", "BANK")
    assert "withdrawable" not in t.ok("cash", "balance", "M1", "--json").json()
    t.ok("cash", "withdraw", "M1", "1100", "--to", "BANK")
    # settled cash short of a purchase settling first: nothing to pay out (not "-400")
    t.ok("account", "open", "C2", "--currency", "USD", "--type", "cash")
    t.ok("cash", "deposit", "C2", "100")
    rows = ("B-C2,C2,AAPL,buy,10,50,2026-11-24,X,0,0,2026-11-25\n"
            "S-C2,C2,AAPL,sell,10,60,2026-11-24,X,0,0,2026-11-27\n")
    t.ok("exec", "import", write(tmp_path / "C2.csv", HEADER + ",settle_date\n" + rows))
    short = t.ok("cash", "balance", "C2", "--json").json()
    assert (short["balance"], short["withdrawable"]) == ("200", "0")


def test_cash_is_not_booked_under_a_clock_behind_the_account(tieout: Tieout) -> None:
    """With the clock set back (a machine's, or TIEOUT_NOW in a replay), a withdrawal was paid
    from a deposit booked later and dated before it: the cash account's statement read -1,000
    for 19 days. It is refused (exit 4, clock_behind), as a deposit dated before the last
    entry is, and nothing is booked."""
    opened = tieout.at("2026-11-01T15:00:00Z")
    opened.ok("account", "open", "C1", "--currency", "USD", "--type", "cash")
    opened.ok("destination", "add", "C1", "BANK")
    tieout.at("2026-11-24T15:00:00Z").ok("cash", "deposit", "C1", "1000", "--ref", "d1")
    back = tieout.at("2026-11-05T15:00:00Z")("cash", "withdraw", "C1", "1000", "--to", "BANK")
    assert back.code == 4
    assert "the clock reads 2026-11-05T15:00:00.000000Z, before the account's last entry" in (
        back.err
    )
    assert "check this machine's clock (or TIEOUT_NOW)" in back.err
    assert tieout.at("2026-11-20T15:00:00Z")("cash", "deposit", "C1", "5").code == 4
    # a lag of seconds (two hosts' clocks) is booked at the last entry's time, in order
    tieout.at("2026-11-24T14:59:58Z").ok("cash", "deposit", "C1", "5")
    now = tieout.at("2026-11-25T15:00:00Z")
    assert now.ok("cash", "balance", "C1", "--json").json()["balance"] == "1005"
    assert now.ok("cash", "withdraw", "C1", "1005", "--to", "BANK", "--json").json()[
        "balance"] == "0"


def test_exec_import_books_executions_cash_and_positions(tieout: Tieout, tmp_path: Path) -> None:
    setup_book(tieout)
    f = write(tmp_path / "e.csv", HEADER + ",exec_time\n"
              "E1,A1,AAPL,buy,100,190.25,2026-11-24,ACME,1.00,0.05,2026-11-24T15:00:00Z\n"
              "E2,A1,AAPL,sell,40,191.50,2026-11-24,ACME,1,,2026-11-24T16:00:00Z\n"
              "E3,A1,MSFT,sell,10,400,2026-11-25,ACME,,,\n")
    r = tieout.ok("exec", "import", f, "--json").json()
    assert (r["rows"], r["booked"], r["already_booked"]) == (3, 3, 0)
    again = tieout.ok("exec", "import", f, "--json").json()
    assert (again["booked"], again["already_booked"]) == (0, 3)
    execs = tieout.ok("exec", "list", "--account", "A1", "--json").json()
    assert [e["exec_id"] for e in execs] == ["E1", "E2", "E3"]
    assert execs[0]["settle_date"] == "2026-11-25"
    assert execs[2]["settle_date"] == "2026-11-27"  # Thanksgiving: T+1 skips the holiday
    assert execs[0]["exec_time"] == "2026-11-24T15:00:00.000000Z"
    assert [e["exec_id"] for e in tieout.ok("exec", "list", "--date", "2026-11-25",
                                            "--json").json()] == ["E3"]
    # cash: 100000 - 19025 - 1.05 + 7660 - 1 + 4000
    assert tieout.ok("cash", "balance", "A1", "--json").json()["balance"] == "92632.95"
    pos = {p["symbol"]: p for p in tieout.ok("positions", "--account", "A1", "--json").json()}
    assert pos["AAPL"]["quantity"] == "60"
    # basis 19026.05 for 100; 40 relieved = 7610.42; proceeds 7660 - 1
    assert pos["AAPL"]["cost_basis"] == "11415.630000000000"
    assert pos["AAPL"]["realized_pnl"] == "48.580000000000"
    assert pos["MSFT"]["quantity"] == "-10"
    assert pos["MSFT"]["cost_basis"] == "-4000"
    assert pos["AAPL"]["market_price"] is None
    assert pos["AAPL"]["unrealized_pnl"] is None
    asof = tieout.ok("positions", "--account", "A1", "--as-of", "2026-11-24", "--json").json()
    assert [p["symbol"] for p in asof] == ["AAPL"]
    lots = tieout.ok("lots", "--account", "A1", "--symbol", "AAPL", "--json").json()
    assert lots == [{"opened": "2026-11-24", "quantity": "60", "price": "190.25",
                     "cost_basis": "11415.630000000000"}]
    assert tieout.ok("audit", "verify", "--json").json()["ok"] is True


BAD_FILES = {
    "missing column": (HEADER.replace(",venue", "") + "\n", "missing required column(s): venue"),
    "unknown column": (HEADER + ",colour\nE1,A1,AAPL,buy,1,1,2026-11-24,ACME,0,0,red\n",
                       "unknown column(s): colour"),
    "empty file": ("", "the file is empty"),
    "header only": (HEADER + "\n", "no rows"),
    "bad number": (HEADER + "\nE1,A1,AAPL,buy,1O0,1,2026-11-24,ACME,0,0\n",
                   "line 2, quantity: '1O0' must be a decimal number"),
    "zero quantity": (HEADER + "\nE1,A1,AAPL,buy,0,1,2026-11-24,ACME,0,0\n",
                      "line 2, quantity: '0' must be a decimal number greater than zero"),
    "negative price": (HEADER + "\nE1,A1,AAPL,buy,1,-1,2026-11-24,ACME,0,0\n",
                       "line 2, price: '-1'"),
    "negative fee": (HEADER + "\nE1,A1,AAPL,buy,1,1,2026-11-24,ACME,0,-2\n",
                     "line 2, fees: '-2' must be a decimal number, not negative"),
    "bad date": (HEADER + "\nE1,A1,AAPL,buy,1,1,24/11/2026,ACME,0,0\n",
                 "line 2, trade_date: '24/11/2026' must be a date"),
    "unknown account": (HEADER + "\nE1,ZZ,AAPL,buy,1,1,2026-11-24,ACME,0,0\n",
                        "line 2, account: 'ZZ' unknown account"),
    "unknown symbol": (HEADER + "\nE1,A1,TSLA,buy,1,1,2026-11-24,ACME,0,0\n",
                       "line 2, symbol: 'TSLA' unknown symbol"),
    "bad side": (HEADER + "\nE1,A1,AAPL,short,1,1,2026-11-24,ACME,0,0\n",
                 "line 2, side: 'short' must be one of buy, sell"),
    "duplicate rows": (HEADER + "\nE1,A1,AAPL,buy,1,1,2026-11-24,ACME,0,0\n"
                       "E1,A1,AAPL,buy,1,1,2026-11-24,ACME,0,0\n",
                       "line 3, venue+exec_id: 'ACME/E1' duplicate"),
    "wrong currency": ("exec_id,account,symbol,side,quantity,price,trade_date,venue,currency\n"
                       "E1,A1,AAPL,buy,1,1,2026-11-24,ACME,EUR\n", "AAPL trades in USD"),
    "settle before trade": (HEADER + ",settle_date\nE1,A1,AAPL,buy,1,1,2026-11-24,ACME,0,0,"
                            "2026-11-20\n", "is before the trade date"),
    "naive time": (HEADER + ",exec_time\nE1,A1,AAPL,buy,1,1,2026-11-24,ACME,0,0,"
                   "2026-11-24T10:00:00\n", "line 2, exec_time"),
    "outside calendar": (HEADER + "\nE1,A1,AAPL,buy,1,1,2099-01-02,ACME,0,0\n",
                         "outside the XNYS calendar"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_execution_file_is_refused_whole(tieout: Tieout, tmp_path: Path, case: str) -> None:
    setup_book(tieout)
    text, message = BAD_FILES[case]
    before = table_counts(tieout)
    r = tieout("exec", "import", write(tmp_path / "bad.csv", text))
    assert r.code == 3, r.err
    assert message in r.err
    assert table_counts(tieout) == before


def test_one_bad_row_among_good_ones_refuses_the_whole_file(tieout: Tieout,
                                                              tmp_path: Path) -> None:
    setup_book(tieout)
    before = table_counts(tieout)
    rows = [f"G{i},A1,AAPL,buy,5,100,2026-11-24,ACME,0,0" for i in range(50)]
    rows[30] = "G30,A1,AAPL,buy,5,100,2026-11-24,,0,0"
    r = tieout("exec", "import", write(tmp_path / "mix.csv", HEADER + "\n" + "\n".join(rows)))
    assert r.code == 3
    assert "line 32, venue: is required and empty" in r.err
    assert "1 problem(s)" in r.err
    assert table_counts(tieout) == before


def test_errors_name_the_physical_line_after_a_multiline_cell(tieout: Tieout,
                                                               tmp_path: Path) -> None:
    """A quoted cell that spans lines moves the rows after it down the file: the message
    names the line an editor shows, for schema, cross-field and booked-already problems."""
    setup_book(tieout)
    tieout.ok("exec", "import", write(tmp_path / "a.csv",
                                      HEADER + "\nE1,A1,AAPL,buy,100,10,2026-11-24,ACME,1,0\n"))
    before = table_counts(tieout)
    text = (HEADER + "\n"
            + 'G1,A1,AAPL,buy,5,100,2026-11-24,"AC\nME",0,0\n'  # lines 2-3: a bad venue
            + "G2,A1,AAPL,buy,5,100,2026-11-24,ACME,x,0\n"  # line 4
            + "E1,A1,AAPL,buy,100,11,2026-11-24,ACME,1,0\n")  # line 5: booked with price 10
    r = tieout("exec", "import", write(tmp_path / "b.csv", text))
    assert r.code == 3
    assert "line 2, venue" in r.err and "line 4, commission" in r.err, r.err
    assert table_counts(tieout) == before
    r = tieout("exec", "import", write(tmp_path / "c.csv", HEADER + "\n"
               + 'G1,A1,AAPL,buy,5,100,2026-11-24,"ACME",0,0\n'
               + 'G2,A1,AAPL,"buy",5,100,2026-11-24,"AC\nME",0,0\n'  # lines 3-4
               + "E1,A1,AAPL,buy,100,11,2026-11-24,ACME,1,0\n"))  # line 5
    assert r.code == 3
    assert "line 3, venue" in r.err, r.err
    r = tieout("exec", "import", write(tmp_path / "d.csv", HEADER + "\n"
               + 'G1,A1,AAPL,buy,5,100,2026-11-24,"ACME",0,"0\n"\n'  # lines 2-3, fees "0\n"
               + "E1,A1,AAPL,buy,100,11,2026-11-24,ACME,1,0\n"))  # line 4
    assert r.code == 3
    assert "line 4, price" in r.err and "booked already" in r.err, r.err
    assert table_counts(tieout) == before


def test_non_utf8_and_missing_files(tieout: Tieout, tmp_path: Path) -> None:
    setup_book(tieout)
    before = table_counts(tieout)
    latin = write(tmp_path / "l.csv", (HEADER + "\nE1,A1,AAPL,buy,1,1,2026-11-24,Caf\xe9,0,0\n")
                  .encode("latin-1"))
    r = tieout("exec", "import", latin)
    assert r.code == 3
    assert "not UTF-8" in r.err
    assert "line 2" in r.err
    r = tieout("exec", "import", str(tmp_path / "nope.csv"))
    assert r.code == 3
    assert "no such file" in r.err
    assert table_counts(tieout) == before


def test_reimport_with_other_terms_is_refused(tieout: Tieout, tmp_path: Path) -> None:
    setup_book(tieout)
    tieout.ok("exec", "import", write(tmp_path / "a.csv",
                                      HEADER + "\nE1,A1,AAPL,buy,100,10,2026-11-24,ACME,0,0\n"))
    r = tieout("exec", "import", write(tmp_path / "b.csv",
                                       HEADER + "\nE1,A1,AAPL,buy,100,11,2026-11-24,ACME,0,0\n"))
    assert r.code == 3
    assert "booked already with price 10" in r.err
    same = tieout.ok("exec", "import", write(
        tmp_path / "c.csv", HEADER + "\nE1,A1,AAPL,buy,100.0,10.00,2026-11-24,ACME,0,0\n"),
        "--json").json()
    assert same["already_booked"] == 1


def test_an_export_of_days_holds_every_event_between_its_first_and_last(
    tieout: Tieout, tmp_path: Path
) -> None:
    """Two writers whose clocks differ by a fraction of a second around midnight: an event of
    the 24th (by its writer's clock) comes between two of the 25th. The export of the 25th
    selected events by time and left a gap in its chain, so a book that verifies had an export
    that failed `audit verify --file` (exit 7). It now holds every event from the day's first
    to its last, by sequence."""
    deposits = (
        ("2026-11-24T23:59:59.900Z", "5"),
        ("2026-11-25T00:00:00.200Z", "7"),
        ("2026-11-24T23:59:59.950Z", "8"),  # the lagging clock
        ("2026-11-25T00:00:01Z", "9"),
    )
    # each its own account: an account's cash is dated in order (a lag at its last entry)
    for _, amount in deposits:
        tieout.at("2026-11-24T12:00:00Z").ok("account", "open", f"A{amount}", "--currency", "USD")
    for at, amount in deposits:
        tieout.at(at).ok("cash", "deposit", f"A{amount}", amount)
    out = tmp_path / "day.jsonl"
    tieout.ok("audit", "export", "--from", "2026-11-25", "--to", "2026-11-25", "--out", str(out))
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["payload"]["amount"] for e in events] == ["7", "8", "9"], events
    r = run_tieout("audit", "verify", "--file", str(out), "--json")
    assert (r.code, r.json()["ok"]) == (0, True), r.out


def test_audit_export_and_verify_file(tieout: Tieout, tmp_path: Path) -> None:
    setup_book(tieout)
    out = tmp_path / "audit.jsonl"
    tieout.ok("audit", "export", "--from", "2000-01-01", "--to", "2100-01-01", "--out", str(out))
    r = run_tieout("audit", "verify", "--file", str(out), "--json")
    assert r.code == 0
    assert r.json()["ok"] is True
    assert r.json()["events"] == 5
    lines = out.read_text().splitlines()
    assert "Alpha Fund" in lines[3]
    lines[3] = lines[3].replace("Alpha Fund", "Mallory Fund")
    out.write_text("\n".join(lines) + "\n")
    r = run_tieout("audit", "verify", "--file", str(out), "--json")
    assert r.code == 7
    assert r.json()["ok"] is False
    assert r.json()["first_bad_seq"] == 4


ADJ = HEADER + ",exec_type,ref_exec_id\n"


def test_corrections_and_busts_are_new_records(tieout: Tieout, tmp_path: Path) -> None:
    setup_book(tieout)
    tieout.ok("exec", "import", write(tmp_path / "a.csv",
                                      HEADER + "\nE1,A1,AAPL,buy,100,10,2026-11-24,ACME,1,0\n"))
    assert tieout.ok("cash", "balance", "A1", "--json").json()["balance"] == "98999"
    fix = write(tmp_path / "fix.csv",
                ADJ + "C1,A1,AAPL,buy,100,11,2026-11-24,ACME,1,0,correct,E1\n")
    tieout.ok("exec", "import", fix)
    assert tieout.ok("cash", "balance", "A1", "--json").json()["balance"] == "98899"
    (pos,) = tieout.ok("positions", "--account", "A1", "--json").json()
    assert (pos["quantity"], pos["cost_basis"]) == ("100", "1101")
    bust = write(tmp_path / "bust.csv",
                 ADJ + "B1,A1,AAPL,buy,100,11,2026-11-24,ACME,1,0,bust,C1\n")
    tieout.ok("exec", "import", bust)
    assert tieout.ok("cash", "balance", "A1", "--json").json()["balance"] == "100000"
    # a busted trade never happened: the symbol has no position at all
    assert tieout.ok("positions", "--account", "A1", "--json").json() == []
    listed = tieout.ok("exec", "list", "--json").json()
    assert [(e["exec_id"], e["exec_type"], e["ref_exec_id"], e["price"]) for e in listed] == [
        ("E1", "fill", None, "10"), ("C1", "correct", "E1", "11"), ("B1", "bust", "C1", "11")]
    # the human listing says so too: three lines that are not three trades, the two replaced
    # ones pointing at what decides the trade now
    lines = tieout.ok("exec", "list").out.splitlines()
    assert [line.split("(")[-1] for line in lines[1:]] == [
        "corrects ACME:E1)  [replaced: see ACME:B1]", "busts ACME:C1)"]  # fmt: skip
    assert "(" not in lines[0] and lines[0].endswith("[replaced: see ACME:B1]")
    assert tieout.ok("audit", "verify", "--json").json()["ok"] is True


def test_a_correction_in_the_same_file_as_its_fill(tieout: Tieout, tmp_path: Path) -> None:
    setup_book(tieout)
    f = write(tmp_path / "f.csv", ADJ + "E1,A1,AAPL,sell,10,50,2026-11-24,ACME,0,0,,\n"
              "C1,A1,AAPL,sell,10,51,2026-11-24,ACME,0,0,correct,E1\n")
    tieout.ok("exec", "import", f)
    assert tieout.ok("cash", "balance", "A1", "--json").json()["balance"] == "100510"


@pytest.mark.parametrize(("row", "message"), [
    ("C1,A1,AAPL,buy,1,1,2026-11-24,ACME,0,0,correct,NOPE", "names no execution of A1"),
    ("C1,A1,MSFT,buy,1,1,2026-11-24,ACME,0,0,correct,E1", "names no execution of A1 in MSFT"),
    ("C1,A1,AAPL,buy,1,1,2026-11-24,OTHER,0,0,bust,E1", "at OTHER booked before it"),
    ("C1,A1,AAPL,buy,1,1,2026-11-24,ACME,0,0,bust,", "a bust names the execution it changes"),
    ("C1,A1,AAPL,buy,1,1,2026-11-24,ACME,0,0,,E1", "only a correct or bust row"),
    ("C1,A1,AAPL,buy,1,1,2026-11-24,ACME,0,0,amend,E1", "must be one of bust, correct, fill"),
])
def test_a_bad_correction_refuses_the_file(tieout: Tieout, tmp_path: Path, row: str,
                                           message: str) -> None:
    setup_book(tieout)
    tieout.ok("exec", "import", write(tmp_path / "a.csv",
                                      HEADER + "\nE1,A1,AAPL,buy,100,10,2026-11-24,ACME,1,0\n"))
    before = table_counts(tieout)
    r = tieout("exec", "import", write(tmp_path / "b.csv", ADJ + row + "\n"))
    assert r.code == 3
    assert message in r.err
    assert table_counts(tieout) == before


def test_positions_are_marked_to_the_last_bar(tieout: Tieout, tmp_path: Path) -> None:
    setup_book(tieout)
    tieout.ok("exec", "import", write(tmp_path / "e.csv", HEADER + "\n"
              "E1,A1,AAPL,buy,100,10,2026-11-23,ACME,1,0\n"
              "E2,A1,MSFT,sell,50,20,2026-11-24,ACME,0,0\n"))
    tieout.ok("md", "import", write(tmp_path / "b.csv", "time,symbol,open,high,low,close,volume\n"
              "2026-11-23T20:00:00Z,AAPL,10,10.5,9.9,10.20,1000\n"
              "2026-11-24T20:00:00Z,AAPL,10.2,11,10.1,10.90,1000\n"
              "2026-11-24T20:00:00Z,MSFT,20,20.5,18,19.00,1000\n"))
    pos = {p["symbol"]: p for p in tieout.ok("positions", "--account", "A1", "--json").json()}
    assert (pos["AAPL"]["market_price"], pos["AAPL"]["market_value"]) == ("10.90", "1090.00")
    assert pos["AAPL"]["unrealized_pnl"] == "89.00"  # 1090 - (1000 + 1 commission)
    assert pos["MSFT"]["market_value"] == "-950.00" and pos["MSFT"]["unrealized_pnl"] == "50.00"
    old = tieout.ok("positions", "--account", "A1", "--as-of", "2026-11-23", "--json").json()
    assert [(p["symbol"], p["market_price"], p["unrealized_pnl"]) for p in old] == [
        ("AAPL", "10.20", "19.00")]
    lifo = tieout.ok("positions", "--account", "A1", "--method", "average", "--json").json()
    assert {p["symbol"]: p["quantity"] for p in lifo} == {"AAPL": "100", "MSFT": "-50"}


def test_init_reports_and_audits_its_upgrade(db_url: str) -> None:
    t = Tieout(db_url)
    first = t.ok("init", "--json").json()
    assert (first["from"], first["upgraded"]) == (None, True)
    assert first["to"] is not None
    again = t.ok("init", "--json").json()
    assert again["upgraded"] is False
    events = t.ok("audit", "verify", "--json").json()
    assert events["ok"] is True and events["events"] == 1


@pytest.mark.parametrize(("url", "code", "text"), [
    ("sqlite:////nonexistent/dir/book.db", 1, "cannot connect to database"),
    ("postgresql+psycopg://postgres@127.0.0.1:1/none", 1, "cannot connect to database"),
    ("mysql://somewhere/db", 3, "tieout supports sqlite:// and postgresql+psycopg://"),
    ("not a url", 3, "is not a database URL"),
])
def test_unusable_databases_get_a_clear_message(url: str, code: int, text: str) -> None:
    for args in (("init",), ("account", "list")):
        r = run_tieout(*args, "--db", url)
        assert r.code == code
        assert text in r.err or (args[0] == "account" and "run `tieout init" in r.err)
        assert "Traceback" not in r.err


def test_lots_by_method(tieout: Tieout, tmp_path: Path) -> None:
    setup_book(tieout)
    tieout.ok("exec", "import", write(tmp_path / "e.csv", HEADER + "\n"
              "E1,A1,AAPL,buy,10,100,2026-11-20,ACME,0,0\n"
              "E2,A1,AAPL,buy,10,110,2026-11-23,ACME,0,0\n"
              "E3,A1,AAPL,sell,5,120,2026-11-24,ACME,0,0\n"))

    def lots(method: str) -> list[tuple[str, str, str]]:
        out = tieout.ok("lots", "--account", "A1", "--symbol", "AAPL", "--method", method,
                        "--json").json()
        return [(lot["opened"], lot["quantity"], lot["cost_basis"]) for lot in out]

    assert lots("fifo") == [("2026-11-20", "5", "500.000000000000"),
                            ("2026-11-23", "10", "1100")]
    assert lots("lifo") == [("2026-11-20", "10", "1000"),
                            ("2026-11-23", "5", "550.000000000000")]
    (pooled,) = lots("average")
    assert pooled[1] == "15" and pooled[2] == "1575.000000000000"
    r = tieout("lots", "--account", "A1", "--symbol", "MSFT")
    assert r.code == 5


def test_positions_as_of_a_date_are_marked_on_that_date_of_the_exchange(
    tieout: Tieout, tmp_path: Path
) -> None:
    """Sydney (AEDT, UTC+11): Friday's ASX session opens at 23:00 UTC on Thursday. A position
    as of Thursday used to be marked at a price of Friday's session once one was in (bars
    before UTC midnight), so Thursday's figures changed with the time they were asked; the
    mark is now the last price before the end of Thursday in Sydney."""
    thursday = tieout.at("2026-03-05T05:00:00Z")  # 16:00 AEDT, after the close
    thursday.ok("instrument", "add", "BHP", "--exchange", "XASX", "--currency", "AUD")
    thursday.ok("account", "open", "A1", "--currency", "AUD")
    thursday.ok("exec", "import", write(
        tmp_path / "e.csv",
        "exec_id,account,symbol,side,quantity,price,trade_date,venue\n"
        "E1,A1,BHP,buy,100,50,2026-03-05,ASX\n"))  # fmt: skip
    bars = "time,symbol,open,high,low,close,volume\n"
    thursday.ok("md", "import", write(tmp_path / "thu.csv", bars +
                                      "2026-03-05T04:59:00Z,BHP,50,50,50,50,1000\n"))
    friday = tieout.at("2026-03-05T23:35:00Z")  # 10:35 AEDT on Friday
    friday.ok("md", "import", write(tmp_path / "fri.csv", bars +
                                    "2026-03-05T23:30:00Z,BHP,60,60,60,60,1000\n"))
    (pos,) = friday.ok("positions", "--account", "A1", "--as-of", "2026-03-05", "--json").json()
    assert (pos["market_price"], pos["unrealized_pnl"]) == ("50", "0")
    (now,) = friday.ok("positions", "--account", "A1", "--json").json()
    assert now["market_price"] == "60"  # today's: the last price


def test_an_exchange_s_settlement_cycle_is_set_and_dates_what_is_booked_after(
    tieout: Tieout, tmp_path: Path
) -> None:
    """Settlement defaults to T+1 (the contract's), which is right for US markets; London and
    Tokyo settle T+2, which every trade without a stated settlement date got wrong (an audit
    of exchange calendars). `instrument settlement set XLON 2` records the cycle (audited);
    what is booked from then on settles by it, what was booked before keeps its date."""
    t = tieout.at("2026-12-01T12:00:00Z")
    t.ok("instrument", "add", "VOD", "--exchange", "XLON", "--currency", "GBP")
    t.ok("account", "open", "A1", "--currency", "GBP")
    t.ok("cash", "deposit", "A1", "1000")  # (for the paper fill below)
    head = "exec_id,account,symbol,side,quantity,price,trade_date,venue\n"
    done_by = tieout.at("2026-12-23T18:00:00Z")  # trades are imported once done
    done_by.ok("exec", "import", write(tmp_path / "a.csv",
                                       head + "E1,A1,VOD,buy,10,1,2026-12-23,LSE\n"))  # fmt: skip
    shown = t.ok("instrument", "settlement", "show", "--json").json()
    assert shown == {"default": 1, "exchanges": {}}
    done = t.ok("instrument", "settlement", "set", "XLON", "2", "--json").json()
    assert done == {"exchange": "XLON", "settlement_days": 2}
    done_by.ok("exec", "import", write(tmp_path / "b.csv",
                                       head + "E2,A1,VOD,buy,10,1,2026-12-23,LSE\n"))  # fmt: skip
    settled = {e["exec_id"]: e["settle_date"] for e in t.ok("exec", "list", "--json").json()}
    # T+1 and T+2 from Wednesday 23 December: Christmas and Boxing Day are no sessions
    assert settled == {"E1": "2026-12-24", "E2": "2026-12-29"}
    # a paper fill too: Tuesday 1 December settles Thursday 3 December
    t.ok("md", "import", write(tmp_path / "bars.csv", "time,symbol,open,high,low,close,volume\n"
                               "2026-12-01T11:59:00Z,VOD,1,1,1,1,100000\n"))
    t.ok("order", "submit", "--account", "A1", "--symbol", "VOD", "--side", "buy", "--qty", "5")
    (paper,) = [e for e in t.ok("exec", "list", "--json").json() if e["venue"] == "paper"]
    assert (paper["trade_date"], paper["settle_date"]) == ("2026-12-01", "2026-12-03")
    # and a resting order that a later bar fills (the bar's own path)
    t.ok("order", "submit", "--account", "A1", "--symbol", "VOD", "--side", "buy", "--qty", "5",
         "--type", "limit", "--limit", "0.9")  # fmt: skip
    later = tieout.at("2026-12-01T12:05:00Z")
    bars = "time,symbol,open,high,low,close,volume\n"
    bars += "2026-12-01T12:04:00Z,VOD,0.9,0.9,0.9,0.9,100000\n"
    later.ok("md", "import", write(tmp_path / "bars2.csv", bars))
    filled = [e for e in later.ok("exec", "list", "--json").json() if e["venue"] == "paper"]
    dates = [(e["trade_date"], e["settle_date"]) for e in filled]
    assert dates == [("2026-12-01", "2026-12-03")] * 2
    # and an order file's fills (the group's settings, read with the risk and paper ones)
    orders = write(tmp_path / "orders.csv", "account,symbol,side,qty\nA1,VOD,buy,3\nA1,VOD,buy,4\n")
    later.ok("order", "submit", "--file", orders)
    filled = [e for e in later.ok("exec", "list", "--json").json() if e["venue"] == "paper"]
    assert [(e["trade_date"], e["settle_date"]) for e in filled] == [
        ("2026-12-01", "2026-12-03")
    ] * 4
    assert t.ok("instrument", "settlement", "show", "--json").json()["exchanges"] == {"XLON": 2}
    assert t("instrument", "settlement", "set", "XLON", "T+2").code == 3
    assert t("instrument", "settlement", "set", "XLON", "\u00b2").code == 3  # a digit, not 0-9
    assert t("instrument", "settlement", "set", "MOON", "2").code == 3
    t.ok("audit", "export", "--from", "2000-01-01", "--to", "2100-01-01", "--out",
         str(tmp_path / "a.jsonl"))  # fmt: skip
    events = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    changes = [e["payload"] for e in events if e["action"] == "setting.set"]
    assert changes == [{"key": "settlement-days.XLON", "from": "1", "to": "2"}]


def test_a_settlement_cycle_is_the_exchange_s_by_any_name_it_is_known_by(
    tieout: Tieout, tmp_path: Path
) -> None:
    """An audit: an instrument added as `--exchange LSE` (a name the calendar knows XLON by)
    settled T+1 after `instrument settlement set XLON 2`, beside XLON's instruments at T+2;
    setting LSE instead served only the LSE ones, and `show` listed the two apart. A cycle is
    kept by the calendar's own code, whatever name set it or names the instrument."""
    t = tieout.at("2026-11-25T12:00:00Z")
    t.ok("instrument", "add", "LLOY", "--exchange", "LSE", "--currency", "GBP")
    t.ok("instrument", "add", "VOD", "--exchange", "XLON", "--currency", "GBP")
    t.ok("account", "open", "A1", "--currency", "GBP")
    t.ok("instrument", "settlement", "set", "XLON", "2")
    head = "exec_id,account,symbol,side,quantity,price,trade_date,venue\n"
    rows = "E1,A1,LLOY,buy,10,1,2026-11-24,LSE\nE2,A1,VOD,buy,10,1,2026-11-24,LSE\n"
    t.ok("exec", "import", write(tmp_path / "a.csv", head + rows))
    settled = {e["exec_id"]: e["settle_date"] for e in t.ok("exec", "list", "--json").json()}
    assert settled == {"E1": "2026-11-26", "E2": "2026-11-26"}
    # a paper fill of the LSE instrument too (an order's own path)
    t.ok("cash", "deposit", "A1", "1000")
    t.ok("md", "import", write(tmp_path / "bars.csv", "time,symbol,open,high,low,close,volume\n"
                               "2026-11-25T11:59:00Z,LLOY,1,1,1,1,100000\n"))  # fmt: skip
    t.ok("order", "submit", "--account", "A1", "--symbol", "LLOY", "--side", "buy", "--qty", "5")
    (paper,) = [e for e in t.ok("exec", "list", "--json").json() if e["venue"] == "paper"]
    assert paper["settle_date"] == "2026-11-27"
    # set by another of its names, it is the same cycle
    assert t.ok("instrument", "settlement", "set", "LSE", "3", "--json").json() == {
        "exchange": "XLON", "settlement_days": 3,
    }  # fmt: skip
    assert t.ok("instrument", "settlement", "show", "--json").json()["exchanges"] == {"XLON": 3}
