"""`exec import` of a row booked already whose trade was busted since: still "booked already"
(nothing is booked: the ExecID is taken), with a warning that the trade is not in the book,
on stderr and in the JSON (it read as if the trade were in the book)."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_book_cli import ADJ, HEADER, setup_book
from tests.conftest import Tieout, write

E1 = "E1,A1,AAPL,buy,100,10,2026-11-24,ACME,1,0"


def test_a_busted_trade_restated_as_booked_is_pointed_out(tieout: Tieout, tmp_path: Path) -> None:
    setup_book(tieout)
    first = write(tmp_path / "a.csv", f"{HEADER}\n{E1}\nE2,A1,MSFT,buy,5,400,2026-11-24,ACME,0,0\n")
    tieout.ok("exec", "import", first)
    again = tieout.ok("exec", "import", first, "--json").json()
    assert (again["already_booked"], again["warnings"]) == (2, [])  # nothing busted yet
    bust = write(tmp_path / "bust.csv", ADJ + "B1,A1,AAPL,buy,100,10,2026-11-24,ACME,1,0,bust,E1\n")
    tieout.ok("exec", "import", bust)
    balance = tieout.ok("cash", "balance", "A1", "--json").json()

    r = tieout("exec", "import", first)  # the venue's first file again: E1 as it was
    assert r.code == 0, r.err
    assert "2 already booked (unchanged), 1 warning(s)" in r.out
    assert (
        "line 2: exec_id E1 at ACME is booked already and was busted since by B1: the trade is "
        "not in the book"
    ) in r.err
    doc = tieout.ok("exec", "import", first, "--json").json()
    assert (doc["booked"], doc["already_booked"]) == (0, 2)
    assert [(w["line"], w["field"]) for w in doc["warnings"]] == [(2, "exec_id")]
    assert tieout.ok("cash", "balance", "A1", "--json").json() == balance  # nothing booked
    assert [p["symbol"] for p in tieout.ok("positions", "--account", "A1", "--json").json()] == [
        "MSFT"
    ]
