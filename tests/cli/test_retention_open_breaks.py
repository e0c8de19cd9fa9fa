"""Retention never archives what an open break names: the executions of an open trade break
(and the later executions of their account and symbol) and the ledger of an open cash break's
account and currency stay live, however old, until the break is resolved. Archived, they were
missing from the next run, which closed the break unseen and opened a false one in its place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import Tieout, write

OLD = "2018-01-10T12:00:00Z"
LATER = "2026-03-20T15:00:00Z"
EXECS = "exec_id,account,symbol,side,quantity,price,trade_date,venue,commission,fees\n"


def _book(t: Tieout, tmp_path: Path) -> Tieout:
    o = t.at(OLD)
    o.ok("instrument", "add", "FLAT", "--exchange", "XNYS", "--currency", "USD")
    for acct in ("R", "S"):
        o.ok("account", "open", acct, "--currency", "USD", "--type", "margin")
        o.ok("cash", "deposit", acct, "10000")
    trades = (
        "F1,R,FLAT,buy,10,10,2018-01-02,X,1,0\nF2,R,FLAT,sell,10,12.5,2018-01-03,X,1,0\n"
        "G1,S,FLAT,buy,10,10,2018-01-02,X,1,0\nG2,S,FLAT,sell,10,12.5,2018-01-03,X,1,0\n"
    )
    o.ok("exec", "import", write(tmp_path / "e.csv", EXECS + trades))
    # a recent trade: the newest execution (which always stays) is not one of these
    t.at("2026-03-02T20:00:00Z").ok("exec", "import", write(
        tmp_path / "n.csv", EXECS + "N1,S,FLAT,buy,1,11,2026-03-02,X,0,0\n"))  # fmt: skip
    return o


def _open(t: Tieout) -> list[dict[str, Any]]:
    return list(t.ok("breaks", "list", "--status", "open", "--json").json())


def test_an_open_trade_break_keeps_its_executions_live(tieout: Tieout, tmp_path: Path) -> None:
    o = _book(tieout, tmp_path)
    profile = write(tmp_path / "p.toml", 'name = "x"\nvenue = "X"\nkind = "trades"\n'
                    'format = "csv"\n')  # fmt: skip
    # the venue reports F1 at another price (a break); S's trades match
    o.ok("recon", "run", "--profile", profile, "--date", "2018-01-02", "--file",
         write(tmp_path / "v.csv", EXECS + "F1,R,FLAT,buy,10,10.5,2018-01-02,X,1,0\n"
               "G1,S,FLAT,buy,10,10,2018-01-02,X,1,0\n"), "--json")  # fmt: skip
    (brk,) = _open(o)
    assert (brk["type"], brk["internal_refs"]) == ("price_mismatch", ["F1"])
    later = tieout.at(LATER)
    done = later.ok("retention", "apply", "--archive-dir", str(tmp_path / "a"), "--json").json()
    assert done["archived"]["executions"] == 2  # S's flat pair; R's stay, F1 is named
    left = {e["exec_id"] for e in later.ok("exec", "list", "--json").json()}
    assert {"F1", "F2"} <= left and not {"G1", "G2"} & left
    # the next run of the profile re-examines the break: still there, still the same
    later.ok("recon", "run", "--profile", profile, "--date", "2018-01-02", "--force", "--file",
             write(tmp_path / "v2.csv", EXECS + "F1,R,FLAT,buy,10,10.5,2018-01-02,X,1,0\n"),
             "--json")  # fmt: skip
    (again,) = _open(later)
    assert (again["break_id"], again["type"], again["internal_refs"]) == (
        brk["break_id"], "price_mismatch", ["F1"]
    )  # fmt: skip
    # resolved, it no longer pins them: the next retention archives R's pair too
    later.ok("breaks", "resolve", str(brk["break_id"]), "--reason", "venue_error")
    done = later.ok("retention", "apply", "--archive-dir", str(tmp_path / "b"), "--json").json()
    assert done["archived"]["executions"] == 2


def test_an_open_cash_break_keeps_its_account_and_currency_in_the_ledger(
    tieout: Tieout, tmp_path: Path
) -> None:
    o = _book(tieout, tmp_path)
    profile = write(tmp_path / "c.toml", 'name = "c"\nvenue = "X"\nkind = "cash"\n'
                    'format = "csv"\n')  # fmt: skip
    day = "2018-01-10"
    o.ok("recon", "run", "--profile", profile, "--date", day, "--file",
         write(tmp_path / "c.csv", "account,currency,date,amount,ref\n"
               f"R,USD,{day},9000,DEP1\n"), "--json")  # fmt: skip
    before = _open(o)
    assert before and {b["account"] for b in before} == {"R"}
    later = tieout.at(LATER)
    plan = later.ok("retention", "apply", "--dry-run", "--json").json()
    balance = later.ok("cash", "balance", "R", "--json").json()
    later.ok("retention", "apply", "--archive-dir", str(tmp_path / "a"), "--json")
    assert later.ok("cash", "balance", "R", "--json").json() == balance
    assert plan["archived"]["journal_entries"] > 0  # S's ledger goes; R's USD stays
    later.ok("recon", "run", "--profile", profile, "--date", day, "--force", "--file",
             write(tmp_path / "c2.csv", "account,currency,date,amount,ref\n"
                   f"R,USD,{day},9000,DEP1\n"), "--json")  # fmt: skip
    after = _open(later)
    assert [(b["break_id"], b["type"]) for b in after] == [
        (b["break_id"], b["type"]) for b in before
    ]


def test_an_open_duplicate_break_keeps_the_execution_it_names(
    tieout: Tieout, tmp_path: Path
) -> None:
    """A duplicate_venue break names the booked execution in its venue refs only: F1 was
    archived, and the next run opened a false missing_internal break beside it."""
    o = _book(tieout, tmp_path)
    profile = write(tmp_path / "p.toml", 'name = "x"\nvenue = "X"\nkind = "trades"\n'
                    'format = "csv"\n')  # fmt: skip
    twice = EXECS + "F1,R,FLAT,buy,10,10,2018-01-02,X,1,0\n" * 2
    o.ok("recon", "run", "--profile", profile, "--date", "2018-01-02", "--file",
         write(tmp_path / "v.csv", twice + "G1,S,FLAT,buy,10,10,2018-01-02,X,1,0\n"))  # fmt: skip
    before = [(b["break_id"], b["type"]) for b in _open(o)]
    assert [t for _, t in before] == ["duplicate_venue"]
    later = tieout.at(LATER)
    later.ok("retention", "apply", "--archive-dir", str(tmp_path / "a"))
    assert "F1" in {e["exec_id"] for e in later.ok("exec", "list", "--json").json()}
    later.ok("recon", "run", "--profile", profile, "--date", "2018-01-02", "--force",
             "--file", write(tmp_path / "v2.csv", twice))  # fmt: skip
    assert [(b["break_id"], b["type"]) for b in _open(later)] == before


def test_an_open_position_break_keeps_its_account_and_symbol_executions(
    tieout: Tieout, tmp_path: Path
) -> None:
    """The custodian holds 7 FLAT where the book had 10 on 2018-01-02: a quantity_mismatch.
    Retention archived the flat run, and running the file again turned the break into a
    missing_internal one (the book's position of that date was gone)."""
    o = _book(tieout, tmp_path)
    profile = write(tmp_path / "pos.toml", 'name = "pos"\nvenue = "X"\nkind = "positions"\n'
                    'format = "csv"\n')  # fmt: skip
    held = write(tmp_path / "h.csv", "account,symbol,quantity\nR,FLAT,7\n")
    o.ok("recon", "run", "--profile", profile, "--date", "2018-01-02", "--file", held)
    before = [(b["break_id"], b["type"]) for b in _open(o)]
    assert ("quantity_mismatch" in {t for _, t in before}), before
    later = tieout.at(LATER)
    later.ok("retention", "apply", "--archive-dir", str(tmp_path / "a"))
    left = {e["exec_id"] for e in later.ok("exec", "list", "--json").json()}
    assert {"F1", "F2"} <= left
    later.ok("recon", "run", "--profile", profile, "--date", "2018-01-02", "--force", "--file",
             held)  # fmt: skip
    assert [(b["break_id"], b["type"]) for b in _open(later)] == before
