"""A cash break is of one account and currency, through the real command on both backends.

An import's settlement entries of every account and currency share the import's ref, and the
bank files of two accounts (or currencies) for one date both have a row 2: a run for one must
not rewrite the other's open breaks. A file delivered again for the same account, currency and
date still replaces its earlier records. Open breaks written before revision 0022 (keyed by
refs alone, rows named `<date>/row:<n>`) keep their break_id, owner and comments. Ref-less trade
rows of per-account files do not collide either."""

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from oms.store import Store, alembic_config
from tests.conftest import Tieout, write

DAY = "2026-11-25"
BANK = 'name = "bank"\nvenue = "BANK"\nkind = "cash"\nformat = "csv"\n'
TRADES = (
    "exec_id,account,symbol,side,quantity,price,currency,trade_date,settle_date,exec_time,"
    "venue,commission,fees,client_order_id\n"
)


def book(t: Tieout, tmp_path: Path, *trades: tuple[str, str, str, str]) -> Tieout:
    """The accounts, instruments and one `exec import` of sales settling on DAY."""
    for symbol, ccy in (("UUU", "USD"), ("EEE", "EUR")):
        t.ok("instrument", "add", symbol, "--exchange", "24/7", "--currency", ccy)
    for account in ("A", "B"):
        t.ok("account", "open", account, "--currency", "USD", "--type", "margin")
    lines = "".join(
        f"{x},{acct},{sym},sell,{qty},10,,2026-11-24,{DAY},2026-11-24T14:00:00Z,BRK,0,0,\n"
        for x, acct, sym, qty in trades
    )
    if trades:
        imported = write(tmp_path / "trades.csv", TRADES + lines)
        t.at("2026-11-24T15:00:00Z").ok("exec", "import", imported)
    write(tmp_path / "bank.toml", BANK)
    return t.at("2026-11-25T23:00:00Z")


def run(t: Tieout, tmp_path: Path, name: str, *lines: str) -> dict[str, Any]:
    text = "account,currency,date,amount,ref,line_type\n" + "".join(
        f"{line},,movement\n" for line in lines
    )
    f = write(tmp_path / name, text)
    args = ("recon", "run", "--profile", str(tmp_path / "bank.toml"), "--file", f)
    result: dict[str, Any] = t.ok(*args, "--date", DAY, "--json").json()
    return result


def breaks(t: Tieout) -> dict[int, tuple[Any, ...]]:
    docs = t.ok("breaks", "list", "--status", "all", "--json").json()
    return {
        b["break_id"]: (
            b["status"],
            b["resolution"],
            b["account"],
            b["currency"],
            b["type"],
            b["amount"],
            b["internal_refs"],
            b["venue_refs"],
        )
        for b in docs
    }


OPEN, MATCHED = ("open", None), ("resolved", "matched")
A_ROW = f"{DAY}/A/USD/row:2"
B_ROW = f"{DAY}/B/USD/row:2"


def test_another_accounts_file_leaves_the_breaks_of_the_first(
    tieout: Tieout, tmp_path: Path
) -> None:
    t = book(tieout, tmp_path, ("R1", "A", "UUU", "10"), ("R2", "B", "UUU", "20"))
    run(t, tmp_path, "a.csv", f"A,USD,{DAY},99")
    a_breaks = {
        1: (*OPEN, "A", "USD", "missing_at_venue", "100", ["import:1"], []),
        2: (*OPEN, "A", "USD", "missing_internal", "99", [], [A_ROW]),
    }
    assert breaks(t) == a_breaks
    run(t, tmp_path, "b.csv", f"B,USD,{DAY},199")
    b_breaks = {
        3: (*OPEN, "B", "USD", "missing_at_venue", "200", ["import:1"], []),
        4: (*OPEN, "B", "USD", "missing_internal", "199", [], [B_ROW]),
    }
    assert breaks(t) == a_breaks | b_breaks
    # A's file again, corrected: it replaces A's row 2 and settles A's breaks, not B's
    doc = run(t, tmp_path, "a2.csv", f"A,USD,{DAY},100")
    assert doc["closed_breaks"] == 2
    now = breaks(t)
    assert {k: v[:2] for k, v in now.items()} == {1: MATCHED, 2: MATCHED, 3: OPEN, 4: OPEN}
    assert {k: now[k] for k in (3, 4)} == b_breaks
    run(t, tmp_path, "b2.csv", f"B,USD,{DAY},200")
    assert {k: v[:2] for k, v in breaks(t).items()} == dict.fromkeys((1, 2, 3, 4), MATCHED)


def test_a_file_delivered_again_for_one_account_replaces_its_rows(
    tieout: Tieout, tmp_path: Path
) -> None:
    t = book(tieout, tmp_path, ("R1", "A", "UUU", "10"), ("R2", "B", "UUU", "20"))
    run(t, tmp_path, "a.csv", f"A,USD,{DAY},99")
    run(t, tmp_path, "b.csv", f"B,USD,{DAY},199")
    doc = run(t, tmp_path, "a2.csv", f"A,USD,{DAY},98")  # A's file again, another amount
    assert (doc["new_breaks"], doc["closed_breaks"], doc["open_breaks"]) == (0, 0, 4)
    now = breaks(t)
    assert now[2] == (*OPEN, "A", "USD", "missing_internal", "98", [], [A_ROW])
    assert now[4] == (*OPEN, "B", "USD", "missing_internal", "199", [], [B_ROW])
    assert len(now) == 4


def test_another_currencys_file_leaves_the_breaks_of_the_first(
    tieout: Tieout, tmp_path: Path
) -> None:
    t = book(tieout, tmp_path, ("R1", "A", "UUU", "10"), ("R2", "A", "EEE", "20"))
    run(t, tmp_path, "usd.csv", f"A,USD,{DAY},99")
    first = breaks(t)
    usd = {k: v for k, v in first.items() if v[3] == "USD"}
    assert sorted(v[4:6] for v in usd.values()) == [
        ("missing_at_venue", "100"),
        ("missing_internal", "99"),
    ]
    run(t, tmp_path, "eur.csv", f"A,EUR,{DAY},199")
    now = breaks(t)
    assert {k: now[k] for k in first} == first  # the USD line's break is not the EUR one's
    eur_row = [k for k, v in now.items() if v[7] == [f"{DAY}/A/EUR/row:2"]]
    assert [now[k][4:6] for k in eur_row] == [("missing_internal", "199")]
    run(t, tmp_path, "usd2.csv", f"A,USD,{DAY},100")
    after = breaks(t)
    assert {k: after[k][:2] for k in usd} == dict.fromkeys(usd, MATCHED)
    assert after[eur_row[0]][:2] == OPEN


def test_open_breaks_written_before_the_upgrade_keep_their_identity(
    tieout: Tieout, tmp_path: Path
) -> None:
    t = book(tieout, tmp_path, ("R1", "A", "UUU", "10"), ("R2", "B", "UUU", "20"))
    run(t, tmp_path, "a.csv", f"A,USD,{DAY},99")
    t.ok("breaks", "assign", "1", "--to", "alice")
    t.ok("breaks", "comment", "2", "--text", "asked the bank")
    store = Store.open(t.db_url, check_schema=False)
    with store.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0021")
    with store.engine.begin() as conn:  # the breaks as tieout wrote them before 0022
        old_record = (
            '[{"account":"A","amount":"99","currency":"USD","date":"2026-11-25",'
            '"line_type":"movement","ref":"2026-11-25/row:2"}]'
        )
        for break_id, key, refs, records in (
            (1, "C:import:1|", "[]", "[]"),
            (2, "C:|2026-11-25/row:2", '["2026-11-25/row:2"]', old_record),
        ):
            conn.execute(
                sa.text(
                    "UPDATE recon_breaks SET break_key = :k, venue_refs = :r, "
                    "venue_records = :v WHERE break_id = :id"
                ),
                {"k": key, "r": refs, "v": records, "id": break_id},
            )
    store.engine.dispose()
    t.ok("init")  # the upgrade
    run(t, tmp_path, "b.csv", f"B,USD,{DAY},199")
    now = breaks(t)
    assert {k: now[k] for k in (1, 2)} == {
        1: (*OPEN, "A", "USD", "missing_at_venue", "100", ["import:1"], []),
        2: (*OPEN, "A", "USD", "missing_internal", "99", [], [A_ROW]),
    }
    assert {k: v[2] for k, v in now.items()} == {1: "A", 2: "A", 3: "B", 4: "B"}
    run(t, tmp_path, "a2.csv", f"A,USD,{DAY},100")
    assert {k: v[:2] for k, v in breaks(t).items()} == {1: MATCHED, 2: MATCHED, 3: OPEN, 4: OPEN}
    shown = t.ok("breaks", "show", "1", "--json").json()
    assert shown["owner"] == "alice"
    history = t.ok("breaks", "show", "2", "--json").json()
    assert "asked the bank" in str(history)


PROFILE = 'name = "brk"\nvenue = "BRK"\nkind = "trades"\nformat = "csv"\n'
VENUE = "exec_id,account,symbol,side,quantity,price,trade_date\n"


def test_ref_less_trade_rows_of_two_accounts_files_do_not_collide(
    tieout: Tieout, tmp_path: Path
) -> None:
    t = book(tieout, tmp_path)
    write(tmp_path / "brk.toml", PROFILE)

    def trades(name: str, line: str) -> None:
        f = write(tmp_path / name, VENUE + line + "\n")
        args = ("recon", "run", "--profile", str(tmp_path / "brk.toml"), "--file", f)
        t.ok(*args, "--date", "2026-11-24", "--json")

    trades("a.csv", ",A,UUU,buy,5,10,2026-11-24")
    trades("b.csv", ",B,UUU,buy,7,10,2026-11-24")
    now = breaks(t)
    assert sorted((v[2], v[4], v[5], tuple(v[7])) for v in now.values() if v[0] == "open") == [
        ("A", "missing_internal", "50", ("2026-11-24/A/row:2",)),
        ("B", "missing_internal", "70", ("2026-11-24/B/row:2",)),
    ]


def test_a_later_days_run_leaves_an_earlier_days_breaks(tieout: Tieout, tmp_path: Path) -> None:
    """A cash run reads one value date's movements: the next day's run closed the day before's
    missing_at_venue break as superseded without looking at it (two imports), or took it over
    for its own movement of the same ref (one import settling on two days). Each stays open
    until a line settles it; a late line with the day's date then matches it."""
    t = book(tieout, tmp_path)
    imported = write(
        tmp_path / "two_days.csv",
        TRADES
        + f"R1,A,UUU,sell,10,10,,2026-11-24,{DAY},2026-11-24T14:00:00Z,BRK,0,0,\n"
        + "R2,A,UUU,sell,20,10,,2026-11-24,2026-11-26,2026-11-24T14:00:00Z,BRK,0,0,\n",
    )
    t.at("2026-11-24T15:00:00Z").ok("exec", "import", imported)
    t = t.at("2026-11-26T23:00:00Z")
    run(t, tmp_path, "d1.csv", f"A,USD,{DAY},99")
    day_one = breaks(t)
    assert sorted(v[4:6] for v in day_one.values()) == [
        ("missing_at_venue", "100"),
        ("missing_internal", "99"),
    ]
    f = write(
        tmp_path / "d2.csv",
        "account,currency,date,amount,ref,line_type\nA,USD,2026-11-26,199,,movement\n",
    )
    args = ("recon", "run", "--profile", str(tmp_path / "bank.toml"), "--file", f)
    t.ok(*args, "--date", "2026-11-26", "--json")
    now = breaks(t)
    assert {k: now[k] for k in day_one} == day_one  # the first day's breaks, as they were
    assert sorted(v[4:6] for k, v in now.items() if k not in day_one) == [
        ("missing_at_venue", "200"),
        ("missing_internal", "199"),
    ]
    # the bank's next file carries the first day's settlement late, with its date
    late = write(
        tmp_path / "d3.csv",
        "account,currency,date,amount,ref,line_type\n"
        f"A,USD,{DAY},100,,movement\nA,USD,2026-11-26,200,,movement\n",
    )
    args = ("recon", "run", "--profile", str(tmp_path / "bank.toml"), "--file", late)
    t.ok(*args, "--date", "2026-11-26", "--json")
    after = breaks(t)
    missing_at_venue = [k for k, v in after.items() if v[4] == "missing_at_venue"]
    assert {after[k][:2] for k in missing_at_venue} == {MATCHED}, after


D2, D3 = "2026-11-26", "2026-11-27"
LINES = "account,currency,date,amount,ref,line_type\n"


def recon(t: Tieout, tmp_path: Path, name: str, body: str, day: str) -> dict[str, Any]:
    f = write(tmp_path / name, LINES + body)
    args = ("recon", "run", "--profile", str(tmp_path / "bank.toml"), "--file", f)
    result: dict[str, Any] = t.ok(*args, "--date", day, "--force", "--json").json()
    return result


def two_days(tieout: Tieout, tmp_path: Path) -> Tieout:
    """One import settling A's sales on DAY (100) and D2 (200): both movements' ref import:1."""
    t = book(tieout, tmp_path)
    imported = write(
        tmp_path / "two_days.csv",
        TRADES
        + f"R1,A,UUU,sell,10,10,,2026-11-24,{DAY},2026-11-24T14:00:00Z,BRK,0,0,\n"
        + f"R2,A,UUU,sell,20,10,,2026-11-24,{D2},2026-11-24T14:00:00Z,BRK,0,0,\n",
    )
    t.at("2026-11-24T15:00:00Z").ok("exec", "import", imported)
    return t.at("2026-11-27T23:00:00Z")


@pytest.mark.parametrize("late_first", [True, False])
def test_a_late_line_of_an_earlier_date_is_paired_with_that_dates_movement(
    tieout: Tieout, tmp_path: Path, late_first: bool
) -> None:
    """D2's file carries DAY's settlement late (90 for the book's 100) and D2's (200), both with
    the import's ref: the late line pairs with DAY's movement (a mismatch of 10, keeping the 90
    line as its record), D2's matches, and D3's run keeps the mismatch as it is (it re-reads
    DAY's movement, not D2's)."""
    t = two_days(tieout, tmp_path)
    recon(t, tmp_path, "d1.csv", f"A,USD,{DAY},0,,opening_balance\n", DAY)
    lines = [f"A,USD,{DAY},90,import:1,movement\n", f"A,USD,{D2},200,import:1,movement\n"]
    recon(t, tmp_path, "d2.csv", "".join(lines if late_first else lines[::-1]), D2)
    recon(t, tmp_path, "d3.csv", f"A,USD,{D3},300,,closing_balance\n", D3)
    now = breaks(t)
    assert sorted(v[:6] for v in now.values()) == [
        ("open", None, "A", "USD", "amount_mismatch", "10"),
        ("resolved", "superseded", "A", "USD", "missing_at_venue", "100"),
    ], now
    (mismatch,) = (k for k, v in now.items() if v[4] == "amount_mismatch")
    store = Store.open(t.db_url, check_schema=False)
    with store.engine.connect() as conn:
        kept = conn.execute(
            sa.text("SELECT venue_records FROM recon_breaks WHERE break_id = :id"),
            {"id": mismatch},
        ).scalar_one()
    store.engine.dispose()
    assert [(r["date"], r["amount"]) for r in json.loads(kept)] == [(DAY, "90")]


def test_another_accounts_file_leaves_its_missing_at_venue_break(
    tieout: Tieout, tmp_path: Path
) -> None:
    """A's file does not read B's movements: B's break is not closed by it (it was closed as
    matched, A's movement of the same import ref having matched)."""
    t = book(tieout, tmp_path, ("R1", "A", "UUU", "10"), ("R2", "B", "UUU", "20"))
    recon(t, tmp_path, "b.csv", f"B,USD,{DAY},0,,opening_balance\n", DAY)
    before = breaks(t)
    assert [v[:6] for v in before.values()] == [
        ("open", None, "B", "USD", "missing_at_venue", "200")
    ]
    recon(t, tmp_path, "a.csv", f"A,USD,{DAY},100,,movement\n", DAY)
    assert breaks(t) == before


def test_balance_breaks_of_a_day_survive_the_next_days_run(tieout: Tieout, tmp_path: Path) -> None:
    """A carried balance line is compared with the book's balance of its own date: DAY's
    closing break stayed a balance mismatch (it became missing_internal 90) and DAY's opening
    one was not compared with D2's opening balance (superseded by a wrong break of 95)."""
    t = two_days(tieout, tmp_path)
    day_one = (
        f"A,USD,2026-11-24,5,,opening_balance\nA,USD,{DAY},100,,movement\n"
        f"A,USD,{DAY},90,,closing_balance\n"
    )
    recon(t, tmp_path, "d1.csv", day_one, DAY)
    first = breaks(t)
    assert sorted(v[4:6] for v in first.values()) == [
        ("balance_mismatch", "10"),
        ("balance_mismatch", "5"),
    ]
    day_two = (
        f"A,USD,{DAY},100,,opening_balance\nA,USD,{D2},200,,movement\n"
        f"A,USD,{D2},300,,closing_balance\n"
    )
    doc = recon(t, tmp_path, "d2.csv", day_two, D2)
    assert (doc["new_breaks"], doc["closed_breaks"]) == (0, 0)
    assert breaks(t) == first


def test_numbered_refs_keep_their_breaks_across_the_upgrade(tieout: Tieout, tmp_path: Path) -> None:
    """Three lines with one ref X, the first matched: breaks X#2 and X#3 (numbered among every
    record of the ref) keep their numbers through 0022, so each keeps its own line."""
    t = book(tieout, tmp_path, ("R1", "A", "UUU", "10"))
    body = f"A,USD,{DAY},100,X,movement\nA,USD,{DAY},5,X,movement\nA,USD,{DAY},7,X,movement\n"
    recon(t, tmp_path, "a.csv", body, DAY)
    ids = {v[5]: k for k, v in breaks(t).items()}
    t.ok("breaks", "assign", str(ids["7"]), "--to", "alice")
    store = Store.open(t.db_url, check_schema=False)
    with store.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0021")
    with store.engine.begin() as conn:
        for amount, n in (("5", 2), ("7", 3)):
            conn.execute(
                sa.text("UPDATE recon_breaks SET break_key = :k WHERE break_id = :id"),
                {"k": f"C:|X#{n}", "id": ids[amount]},
            )
    store.engine.dispose()
    t.ok("init")
    before = breaks(t)
    recon(t, tmp_path, "a.csv", body, DAY)
    assert breaks(t) == before
    assert t.ok("breaks", "show", str(ids["7"]), "--json").json()["owner"] == "alice"


ACME = 'name = "acme"\nvenue = "ACME"\nkind = "trades"\nformat = "csv"\n'


def trade_run(
    t: Tieout, tmp_path: Path, name: str, *rows: str, force: bool = False
) -> dict[str, Any]:
    """A trades file without exec_ids: each row `side,quantity,price` of account A's UUU."""
    text = "account,symbol,side,quantity,price,trade_date\n" + "".join(
        f"A,UUU,{row},2026-11-24\n" for row in rows
    )
    f = write(tmp_path / name, text)
    args = ("recon", "run", "--profile", str(tmp_path / "acme.toml"), "--file", f)
    forced = ("--force",) if force else ()
    result: dict[str, Any] = t.ok(*args, "--date", "2026-11-24", *forced, "--json").json()
    return result


def owned(t: Tieout) -> dict[int, tuple[Any, ...]]:
    """Each break: status, amount, venue refs, owner."""
    docs = t.ok("breaks", "list", "--status", "all", "--json").json()
    return {b["break_id"]: (b["status"], b["amount"], b["venue_refs"], b["owner"]) for b in docs}


def test_ref_less_trades_sent_again_in_another_order_keep_their_breaks(
    tieout: Tieout, tmp_path: Path
) -> None:
    """A file without exec_ids sent again in another order: each break was on its line, so the
    breaks (their owner, comments, history) moved onto other trades: the buy of 1,000 an
    operator was chasing became the sale of 550 ("changed"). A record keeps its name by its
    content; a line whose record moved away and that holds a new record gets a name of its own,
    and the record it would have replaced stays with its break; a line corrected in place still
    replaces its record (test_a_file_delivered_again_for_one_account_replaces_its_rows)."""
    t = book(tieout, tmp_path)
    write(tmp_path / "acme.toml", ACME)
    row = "2026-11-24/A/row:"
    trade_run(t, tmp_path, "v1.csv", "buy,100,10", "sell,50,11")
    t.ok("breaks", "assign", "1", "--to", "alice")
    first = {1: ("open", "1000", [f"{row}2"], "alice"), 2: ("open", "550", [f"{row}3"], None)}
    assert owned(t) == first
    doc = trade_run(t, tmp_path, "v2.csv", "sell,50,11", "buy,100,10")  # the other order
    assert (doc["new_breaks"], doc["closed_breaks"], doc["open_breaks"]) == (0, 0, 2)
    assert owned(t) == first
    history = t.ok("breaks", "show", "1", "--json").json()["history"]
    assert [h["action"] for h in history] == ["opened", "assigned"]  # never "changed"
    # a new trade on top and the sale corrected (51): the buy keeps its break; the new trade
    # comes at line 2, whose record (the buy) moved to line 3, and the corrected sale at line 4
    # replaces nothing there (line 4 was no record's): both are new breaks, and the sale of 50
    # stays open with its break for an operator to resolve
    doc = trade_run(t, tmp_path, "v3.csv", "buy,7,10", "buy,100,10", "sell,51,11")
    assert (doc["new_breaks"], doc["closed_breaks"], doc["open_breaks"]) == (2, 0, 4)
    assert owned(t) == {
        **first,
        3: ("open", "70", [f"{row}2+1"], None),
        4: ("open", "561", [f"{row}4"], None),
    }
    # the same file again: the same names (the line a moved record left keeps its new one)
    again = trade_run(t, tmp_path, "v3.csv", "buy,7,10", "buy,100,10", "sell,51,11", force=True)
    assert (again["new_breaks"], again["closed_breaks"], again["open_breaks"]) == (0, 0, 4)
    assert owned(t) == {
        **first,
        3: ("open", "70", [f"{row}2+1"], None),
        4: ("open", "561", [f"{row}4"], None),
    }
