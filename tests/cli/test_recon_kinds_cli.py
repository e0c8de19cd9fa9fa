"""Position and cash reconciliation through the real `tieout` command on both backends: a book
set up with the commands (instruments, accounts, market data, executions, deposits), venue
files written by the seeded fault generator (tests/integration/recon_faults.py), and
`recon run`, `recon quarantine`, `breaks list`, `recon runs` as a user or a script calls them.
The run must find every injected fault with the right type, refs, amount, differences and
suggestion, nothing else, and quarantine exactly the bad rows."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from oms import book as book_mod
from oms.book import Ctx
from oms.store import Store
from tests.conftest import Tieout, write
from tests.integration.recon_faults import (
    ACCOUNTS,
    DAY,
    NEXT,
    PREV,
    TRADING_ACCOUNTS,
    Book,
    RefLessBreak,
    Scenario,
    cash_scenario,
    make_book,
    mismatches,
    positions_scenario,
    set_refless_aside,
    text,
)

SEED = 7
CASH_ACCOUNTS = ("ACC1", "ACC5")


def setup_book(t: Tieout, tmp_path: Path, book: Book, accounts: tuple[str, ...]) -> Tieout:
    """Accounts, reference data, market data, executions and the first deposit with the
    commands; the other deposits with book.deposit, what `tieout cash deposit` calls (a command
    per movement would only make the test slow)."""
    day0 = t.at(f"{PREV}T12:00:00Z")
    for account in accounts:
        day0.ok("account", "open", account, "--currency", ACCOUNTS[account])
    if book.moves:  # booked in date order, before the executions, as the clock would have it
        first, *rest = sorted(book.moves, key=lambda m: m.day)
        args = ["--ref", first.ref] if first.ref else []
        t.at(f"{first.day}T15:00:00Z").ok(
            "cash", "deposit", first.account, str(first.amount), *args
        )
        store = Store.open(t.db_url)
        try:
            for m in rest:
                assert m.amount > 0
                at = datetime(m.day.year, m.day.month, m.day.day, 15, tzinfo=UTC)
                book_mod.deposit(store, Ctx(t.actor, at), m.account, m.amount, m.ref)
        finally:
            store.dispose()
    if book.execs:
        day0.ok("instrument", "import", write(tmp_path / "instruments.csv", book.instruments_csv()))
        t.at(f"{DAY}T21:00:00Z").ok("md", "import", write(tmp_path / "bars.csv", book.bars_csv()))
        t.at(f"{DAY}T21:00:00Z").ok(
            "exec", "import", write(tmp_path / "executions.csv", book.executions_csv())
        )
    return t.at(f"{NEXT}T06:00:00Z")


def recon(t: Tieout, tmp_path: Path, sc: Scenario, *more: str) -> tuple[dict, list, list]:
    """`recon run` of the scenario's file, then its breaks and quarantined rows."""
    here = tmp_path / f"{sc.kind}-{sc.fmt}"
    here.mkdir(exist_ok=True)
    profile = write(here / "profile.toml", sc.profile)
    venue = write(here / f"venue{sc.suffix}", sc.data)
    doc = t.ok(
        "recon", "run", "--profile", profile, "--file", venue, "--date", str(DAY), *more, "--json"
    ).json()
    run_id = str(doc["run_id"])
    found = t.ok("breaks", "list", "--run", run_id, "--json").json()
    quarantined = t.ok("recon", "quarantine", "--run", run_id, "--json").json()
    return doc, found, quarantined


def test_positions_recon_through_the_command(tieout: Tieout, tmp_path: Path) -> None:
    book = make_book(SEED, executions=80, cash_accounts=())
    t = setup_book(tieout, tmp_path, book, TRADING_ACCOUNTS)
    for fmt in ("csv",):
        sc = positions_scenario(book, fmt)
        doc, found, quarantined = recon(t, tmp_path, sc)
        problems = mismatches(sc, doc, found, quarantined)
        assert not problems, f"positions {fmt}:\n" + "\n".join(problems)
        assert (doc["kind"], doc["profile"], doc["venue"], doc["business_date"]) == (
            "positions",
            sc.profile_name,
            "ACME",
            str(DAY),
        )
        assert len(doc["input_sha256"]) == 64
        assert {b["status"] for b in found} == {"open"}
        assert all(b["symbol"] and b["account"] in TRADING_ACCOUNTS for b in found)
        for q in quarantined:
            assert q["reasons"] and isinstance(q["values"], dict)
    # the same bytes again: refused (exit 3) unless forced; forced, the same breaks are seen
    # again (none new, none closed) and --fail-on-breaks exits 6
    here = tmp_path / "positions-csv"
    args = (
        "recon",
        "run",
        "--profile",
        str(here / "profile.toml"),
        "--file",
        str(here / "venue.csv"),
        "--date",
        str(DAY),
    )
    refused = t(*args)
    assert refused.code == 3 and "--force" in refused.err
    again = t(*args, "--force", "--fail-on-breaks", "--json")
    assert again.code == 6
    doc = again.json()
    assert doc["forced"] is True
    assert (doc["new_breaks"], doc["closed_breaks"], doc["open_breaks"]) == (0, 0, len(sc.expected))
    runs = t.ok("recon", "runs", "--json").json()
    assert [(r["profile"], r["forced"]) for r in runs] == [
        ("acme-positions-csv", False),
        ("acme-positions-csv", True),
    ]
    assert [r["quarantined_rows"] for r in runs] == [len(sc.quarantined_rows)] * 2


def test_cash_recon_through_the_command(tieout: Tieout, tmp_path: Path) -> None:
    book = make_book(SEED, executions=0, cash_accounts=CASH_ACCOUNTS, withdrawals=False)
    t = setup_book(tieout, tmp_path, book, CASH_ACCOUNTS)
    balance = t.ok("cash", "balance", "ACC5", "--json").json()
    assert (balance["currency"], balance["balance"]) == ("EUR", text(book.balances("ACC5")[1]))
    refless = []
    for fmt in ("mt940", "camt053"):
        sc = cash_scenario(book, fmt)
        doc, found, quarantined = recon(t, tmp_path, sc)
        doc, found, phantom = set_refless_aside(doc, found)
        refless += phantom
        problems = mismatches(sc, doc, found, quarantined)
        assert not problems, f"cash {fmt}:\n" + "\n".join(problems)
        assert doc["kind"] == "cash" and doc["internal_rows"] == len(book.day_moves())
        by_type = {b["type"]: b for b in found}
        amount = by_type["amount_mismatch"]
        assert amount["currency"] == ACCOUNTS[amount["account"]]
        diff = amount["differences"]["amount"]
        assert Decimal(diff["venue"]) - Decimal(diff["internal"]) == Decimal(amount["amount"])
        assert by_type["balance_mismatch"]["symbol"] is None
    if refless:
        raise RefLessBreak(f"{len(refless)} ref-less cash break(s): {refless}")
