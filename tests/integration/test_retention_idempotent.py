"""Retention is idempotent on both backends: a second `retention apply` with the same clock
archives nothing (the journal's newest entry is archived in the same run as the rest, since the
carry-forward written by that run takes a higher id), carry-forward entries are not archived
alone years later (which would only write them again), balances and positions stay, and
`audit verify` passes after every run."""

from pathlib import Path
from typing import Any

from oms.store import Store
from tests.conftest import Tieout
from tests.integration.test_retention import facts, old_book, table_counts_of

LATE = "2033-06-01T00:00:00Z"  # everything of the old book has expired, the 2026 deposit too
LATER = "2041-01-01T00:00:00Z"  # the carry-forward entries of 2033 have expired as well


def apply(t: Tieout, now: str, archive: Path) -> dict[str, Any]:
    doc: dict[str, Any] = t.at(now).ok(
        "retention", "apply", "--archive-dir", str(archive), "--json").json()
    assert t.ok("audit", "verify", "--json").json()["ok"] is True
    return doc


def archived(doc: dict[str, Any]) -> dict[str, int]:
    return {k: v for k, v in doc["archived"].items() if v}


def test_a_second_apply_archives_nothing(db_url: str, tmp_path: Path) -> None:
    t = old_book(db_url, tmp_path)
    archive = tmp_path / "archive"
    before = facts(t)
    first = apply(t, LATE, archive)
    # every journal entry went, the newest (the 2026 deposit) with the others
    assert archived(first)["journal_entries"] == 6
    assert len(first["carry_forward_entries"]) == 2  # A1 and B1
    assert facts(t) == before
    store = Store.open(t.db_url)
    counts = table_counts_of(store)
    again = apply(t, LATE, archive)
    assert again["archive_id"] is None and archived(again) == {}
    assert again["carry_forward_entries"] == [] or again["carry_forward_entries"] is None
    assert table_counts_of(store) == counts
    assert facts(t) == before
    assert len(list(archive.iterdir())) == 1
    # years later the carry-forward entries are old too: alone, they stay where they are
    later = apply(t, LATER, archive)
    assert later["archived"]["journal_entries"] == 0 and later["archived"]["journal_postings"] == 0
    assert not later.get("carry_forward_entries")
    assert facts(t) == before
    counts = table_counts_of(store)
    last = apply(t, LATER, archive)
    assert archived(last) == {} and table_counts_of(store) == counts
    assert facts(t) == before
    store.dispose()


def test_carry_forward_moves_with_new_entries_of_its_account(db_url: str, tmp_path: Path) -> None:
    """A later deposit of A1 that expires takes A1's carry-forward with it: one new
    carry-forward holds both, and the balance is what it was."""
    t = old_book(db_url, tmp_path)
    archive = tmp_path / "archive"
    apply(t, LATE, archive)
    t.at("2034-01-02T10:00:00Z").ok("cash", "deposit", "A1", "7")
    before = facts(t)
    moved = apply(t, LATER, archive)
    # A1: its carry-forward and the 2034 deposit; B1's carry-forward stays alone
    assert moved["archived"]["journal_entries"] == 2
    assert len(moved["carry_forward_entries"]) == 1
    assert facts(t) == before
    assert t.ok("cash", "balance", "A1", "--json").json()["balance"] == "100008"
    again = apply(t, LATER, archive)
    assert archived(again) == {}
    assert facts(t) == before
