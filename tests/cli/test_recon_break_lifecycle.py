"""A break is never lost: a run leaves alone what it does not re-examine (another account's
record with the same bank ref, an earlier day's, another currency's settlement, another
account's matched deposit), and a position break is settled by the position's match (an audit
of the break lifecycle across days and files, through the real command on both backends)."""

from pathlib import Path
from typing import Any

from tests.cli.test_recon_cash_identity import DAY, book, breaks, recon
from tests.conftest import Tieout, write

OPEN = ("open", None)


def statuses(t: Tieout) -> dict[int, tuple[Any, ...]]:
    return {k: (*v[:3], v[4], v[5]) for k, v in breaks(t).items()}


def test_two_accounts_lines_with_one_bank_ref_keep_their_breaks(
    tieout: Tieout, tmp_path: Path
) -> None:
    t = book(tieout, tmp_path)
    recon(t, tmp_path, "a.csv", f"A,USD,{DAY},-7,FEE,movement\n", DAY)
    t.ok("breaks", "assign", "1", "--to", "alice")
    recon(t, tmp_path, "b.csv", f"B,USD,{DAY},-9,FEE,movement\n", DAY)
    assert statuses(t) == {
        1: (*OPEN, "A", "missing_internal", "7"),
        2: (*OPEN, "B", "missing_internal", "9"),
    }
    later = t.at("2026-11-26T23:00:00Z")  # the next day's file says nothing of them
    recon(later, tmp_path, "d2.csv", "A,USD,2026-11-26,0,,opening_balance\n", "2026-11-26")
    recon(later, tmp_path, "d3.csv", "A,USD,2026-11-26,-3,FEE,movement\n", "2026-11-26")
    now = statuses(t)
    assert {k: now[k] for k in (1, 2)} == {
        1: (*OPEN, "A", "missing_internal", "7"),
        2: (*OPEN, "B", "missing_internal", "9"),
    }
    assert t.ok("breaks", "show", "1", "--json").json()["owner"] == "alice"


def test_per_currency_statements_read_the_book_in_their_currency(
    tieout: Tieout, tmp_path: Path
) -> None:
    """A USD statement is not about the account's EUR settlement (it opened a missing_at_venue
    for it, and the EUR statement one for the USD settlement)."""
    t = book(tieout, tmp_path, ("R1", "A", "UUU", "10"), ("R2", "A", "EEE", "20"))
    usd = recon(t, tmp_path, "usd.csv", f"A,USD,{DAY},100,,movement\n", DAY)
    eur = recon(t, tmp_path, "eur.csv", f"A,EUR,{DAY},200,,movement\n", DAY)
    assert (usd["new_breaks"], eur["new_breaks"], eur["open_breaks"]) == (0, 0, 0)
    assert breaks(t) == {}


def test_another_accounts_carried_record_does_not_bring_in_its_book(
    tieout: Tieout, tmp_path: Path
) -> None:
    """B's run carries A's open break's record: it reads the movements that break names, not
    A's whole day (A's deposit, matched by A's file, showed up missing at the venue)."""
    t = book(tieout, tmp_path)
    t.ok("cash", "deposit", "A", "1000", "--ref", "depA")
    t.ok("cash", "deposit", "B", "500", "--ref", "depB")
    day = DAY  # the deposits' value date: the book's clock is DAY's evening
    a_lines = f"A,USD,{day},1000,depA,movement\nA,USD,{day},7,feeX,movement\n"
    recon(t, tmp_path, "a.csv", a_lines, day)
    first = statuses(t)
    assert list(first.values()) == [(*OPEN, "A", "missing_internal", "7")]
    doc = recon(t, tmp_path, "b.csv", f"B,USD,{day},500,depB,movement\n", day)
    assert (doc["new_breaks"], doc["closed_breaks"]) == (0, 0)
    assert statuses(t) == first


POSITIONS = 'name = "pos"\nvenue = "BRK"\nkind = "positions"\nformat = "csv"\n'


def test_a_position_break_is_settled_by_the_positions_match_a_later_day(
    tieout: Tieout, tmp_path: Path
) -> None:
    """Yesterday's positions row is not carried beside today's snapshot (it opened a second
    break every day), and the day the venue agrees the break closes as matched (it closed as
    superseded)."""
    t = book(tieout, tmp_path)
    trades = (
        "exec_id,account,symbol,side,quantity,price,currency,trade_date,settle_date,exec_time,"
        "venue,commission,fees,client_order_id\n"
        "E1,A,UUU,buy,10,10,,2026-11-24,2026-11-25,2026-11-24T14:00:00Z,BRK,0,0,\n"
    )
    t.at("2026-11-24T15:00:00Z").ok("exec", "import", write(tmp_path / "e.csv", trades))
    write(tmp_path / "pos.toml", POSITIONS)

    def run(day: str, quantity: str) -> dict[str, Any]:
        f = write(tmp_path / f"p{day}.csv", f"account,symbol,quantity\nA,UUU,{quantity}\n")
        args = ("recon", "run", "--profile", str(tmp_path / "pos.toml"), "--file", f)
        result: dict[str, Any] = t.ok(*args, "--date", day, "--json").json()
        return result

    run("2026-11-24", "12")
    t.ok("breaks", "assign", "1", "--to", "alice")
    second = run("2026-11-25", "12")
    assert (second["new_breaks"], second["open_breaks"]) == (0, 1)
    third = run("2026-11-26", "10")
    assert (third["new_breaks"], third["closed_breaks"], third["open_breaks"]) == (0, 1, 0)
    assert [v[:2] for v in breaks(t).values()] == [("resolved", "matched")]


def test_another_accounts_run_leaves_a_balance_break_as_it_was(
    tieout: Tieout, tmp_path: Path
) -> None:
    """B's closing balance is 100 short; A's file the same day carries B's line without B's book
    balance: it turned the break into missing_internal 900 (a review of this session's change)."""
    t = book(tieout, tmp_path)
    for account in ("A", "B"):
        t.ok("cash", "deposit", account, "1000", "--ref", f"dep-{account}")
    b_file = f"B,USD,{DAY},1000,dep-B,movement\nB,USD,{DAY},900,,closing_balance\n"
    recon(t, tmp_path, "b.csv", b_file, DAY)
    first = statuses(t)
    assert list(first.values()) == [(*OPEN, "B", "balance_mismatch", "100")]
    a_file = f"A,USD,{DAY},1000,dep-A,movement\nA,USD,{DAY},1000,,closing_balance\n"
    doc = recon(t, tmp_path, "a.csv", a_file, DAY)
    assert (doc["new_breaks"], doc["closed_breaks"]) == (0, 0)
    assert statuses(t) == first
    events = t.ok("breaks", "show", "1", "--json").json()["history"]
    assert [e["action"] for e in events] == ["opened"]
