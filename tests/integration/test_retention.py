"""Retention on both backends: what has expired is archived (Parquet + manifest of SHA-256
digests) and removed in one transaction, balances, open positions and live orders stay as they
were, `audit verify` passes from the archive anchor (also offline on an export), and the attacks:
a run that would remove something on hold, a broken chain, a run that fails half-way, a hold
deleted behind tieout's back."""

import json
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from oms import audit, retention_book
from oms.backup import table_counts
from oms.book import Ctx
from oms.errors import VerificationFailed
from oms.store import Store
from oms.values import parse_utc
from tests.conftest import Tieout, write

OLD = "2018-03-01T10:00:00Z"
YOUNG = "2026-01-05T10:00:00Z"
PG_TRIGGER = "audit_events_append_only"


def old_book(db_url: str, tmp_path: Path) -> Tieout:
    """2018: the book is made, A1 trades COIN flat (two filled orders) and cancels a limit
    order; B1 keeps an open position and a live GTC order. 2026: one deposit."""
    t = Tieout(db_url)
    o = t.at(OLD)
    o.ok("init")
    o.ok("instrument", "add", "COIN", "--exchange", "24/7", "--currency", "USD")
    for acct in ("A1", "B1"):
        o.ok("account", "open", acct, "--currency", "USD", "--type", "margin")
        o.ok("cash", "deposit", acct, "100000")
    o.ok("md", "import", write(tmp_path / "bars.csv", "time,symbol,open,high,low,close,volume\n"
                               "2018-03-01T09:59:00Z,COIN,100,101,99,100,5000\n"))

    def submit(acct: str, *args: str) -> dict[str, Any]:
        return o.ok("order", "submit", "--account", acct, "--symbol", "COIN", *args,
                    "--json").json()

    submit("A1", "--side", "buy", "--qty", "10")
    submit("A1", "--side", "sell", "--qty", "10")
    resting = submit("A1", "--side", "buy", "--qty", "1", "--type", "limit", "--limit", "95")
    o.ok("order", "cancel", resting["order_id"])
    submit("B1", "--side", "buy", "--qty", "5")
    submit("B1", "--side", "buy", "--qty", "1", "--type", "limit", "--limit", "95",
           "--tif", "gtc")
    t.at(YOUNG).ok("cash", "deposit", "A1", "1")
    return t


def facts(t: Tieout) -> dict[str, Any]:
    return {
        "cash": [t.ok("cash", "balance", a, "--json").json() for a in ("A1", "B1")],
        "B1": t.ok("positions", "--account", "B1", "--json").json(),
        "live": [o["order_id"] for o in t.ok("order", "list", "--status", "new", "--json").json()],
    }


def delete_refused(store: Store, table: str) -> bool:
    try:
        with store.engine.begin() as conn:
            conn.execute(sa.text(f"DELETE FROM {table}"))
    except DBAPIError:
        return True
    return False


def test_apply_archives_what_expired_and_keeps_the_book_whole(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = old_book(db_url, tmp_path)
    store = Store.open(t.db_url)
    before, counts = facts(t), table_counts_of(store)
    a1_before = {m: t.ok("positions", "--account", "A1", "--method", m, "--json").json()
                 for m in ("fifo", "lifo", "average")}
    assert [p["symbol"] for p in a1_before["fifo"]] == ["COIN"]
    assert a1_before["fifo"][0]["quantity"] == "0"
    archive = tmp_path / "archive"
    dry = t.at(YOUNG).ok("retention", "apply", "--dry-run", "--archive-dir", str(archive),
                         "--json").json()
    assert dry["dry_run"] is True and dry["archive_id"] is None
    assert {k: v for k, v in dry["archived"].items() if v} == {
        "orders": 4, "order_client_ids": 4, "order_events": 13, "executions": 2,
        "journal_entries": 5, "journal_postings": 10,
        "audit_events": dry["archived"]["audit_events"]}
    for table in ("recon_breaks", "break_events", "recon_runs", "recon_quarantine",
                  "schedule_runs", "schedule_alerts", "surveil_alerts"):
        assert dry["archived"][table] == 0  # every class is planned and shown
    assert dry["periods"]["recon"] == "6y" and dry["periods"]["surveillance"] == "6y"
    assert dry["periods"]["schedules"] == "3y"
    assert table_counts_of(store) == counts and not archive.exists()

    done = t.at(YOUNG).ok("retention", "apply", "--archive-dir", str(archive), "--json").json()
    assert {k: v for k, v in done.items() if k not in ("dry_run", "archive_id", "location",
                                                        "manifest_sha256", "audit_anchor",
                                                        "carry_forward_entries", "archive_dir")
            } == {k: v for k, v in dry.items() if k not in ("dry_run", "archive_id", "location",
                                                             "manifest_sha256", "audit_anchor",
                                                             "carry_forward_entries",
                                                             "archive_dir")}
    after = table_counts_of(store)
    for table, n in done["archived"].items():
        # carried forward: A1 cash and capital (its securities net to 0), B1 cash, capital and
        # securities
        extra = {"journal_entries": 2, "journal_postings": 5}.get(table, 0)
        extra += 1 if table == "audit_events" else 0  # retention.apply itself
        assert after[table] == counts[table] - n + extra, table
    # balances, the open position and the live order are what they were
    assert facts(t) == before
    # A1's COIN history is archived whole: still listed, flat, with the same realized P&L
    for m, lines in a1_before.items():
        assert t.ok("positions", "--account", "A1", "--method", m, "--json").json() == lines
    assert done["positions_carried"] == [{"account": "A1", "symbol": "COIN",
                                          "realized_pnl": a1_before["fifo"][0]["realized_pnl"]}]
    # the audit chain: intact from the anchor, online and offline
    anchor = done["audit_anchor"]
    assert anchor["seq"] == done["archived"]["audit_events"]
    assert t.ok("audit", "verify", "--json").json()["ok"] is True
    with store.read() as conn:
        assert audit.chain_anchor(conn) == (anchor["seq"], anchor["hash"])
        assert audit.verify_store(conn).ok
    monkeypatch.setattr(audit, "PARALLEL_THRESHOLD", 0)  # the segments, joined at the anchor
    assert audit.verify_url(t.db_url, workers=2).ok
    export = tmp_path / "audit.jsonl"
    t.ok("audit", "export", "--from", "2018-01-01", "--to", "2030-12-31", "--out", str(export))
    first = json.loads(export.read_text().splitlines()[0])
    assert (first["seq"], first["prev_hash"]) == (anchor["seq"] + 1, anchor["hash"])
    assert t.ok("audit", "verify", "--file", str(export), "--json").json()["ok"] is True
    # the archive: the manifest's digests, the rows, the archived chain up to the anchor
    folder = Path(done["location"])
    check = t.ok("retention", "verify-archive", str(folder), "--json").json()
    assert check["ok"] is True and check["rows"] == {k: v for k, v in done["archived"].items()
                                                     if v}
    assert t.ok("retention", "verify-archive", str(folder), "--db", t.db_url,
                "--json").json()["ok"] is True
    execs = pl.read_parquet(folder / "executions.parquet")
    assert execs["account"].to_list() == ["A1", "A1"]
    assert execs["quantity"].to_list() == ["10", "10"]  # exact, as stored
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["positions_closed"][0]["account"] == "A1"
    # the protection is back on every table retention deleted from
    for table in ("executions", "journal_postings", "journal_entries", "order_events",
                  "audit_events", "archives"):
        assert delete_refused(store, table), table
    # nothing more has expired: a second run changes nothing
    again = t.at(YOUNG).ok("retention", "apply", "--archive-dir", str(archive), "--json").json()
    assert again["archive_id"] is None and not any(again["archived"].values())
    assert len(list(archive.iterdir())) == 1

    # a damaged archive file does not verify (exit 7)
    data = bytearray((folder / "executions.parquet").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "executions.parquet").write_bytes(bytes(data))
    r = t("retention", "verify-archive", str(folder))
    assert r.code == 7 and "executions.parquet" in r.err
    store.dispose()


def table_counts_of(store: Store) -> dict[str, int]:
    with store.read() as conn:
        return table_counts(conn)


def test_a_retention_run_never_removes_what_is_on_hold(db_url: str, tmp_path: Path) -> None:
    t = old_book(db_url, tmp_path)
    store = Store.open(t.db_url)
    archive = str(tmp_path / "archive")
    firm = t.at(YOUNG).ok("retention", "hold", "add", "--matter", "Audit 2026", "--reason",
                          "regulator's request", "--json").json()
    held_all = t.at(YOUNG).ok("retention", "apply", "--archive-dir", archive, "--json").json()
    assert held_all["archive_id"] is None and not any(held_all["archived"].values())
    # A1's flat pair (B1's fill is the newest row: kept anyway), and the whole old trail
    assert held_all["held"]["executions"] == 2 and held_all["held"]["audit"] > 10

    a1 = t.at(YOUNG).ok("retention", "hold", "add", "--account", "A1", "--matter", "SEC v. A1",
                        "--reason", "subpoena", "--json").json()
    t.at(YOUNG).ok("retention", "hold", "release", str(firm["hold_id"]), "--reason", "closed")
    with store.read() as conn:
        a1_rows = {
            "executions": conn.execute(sa.text(
                "SELECT count(*) FROM executions WHERE account = 'A1'")).scalar(),
            "orders": conn.execute(sa.text(
                "SELECT count(*) FROM orders WHERE account = 'A1'")).scalar(),
            "journal_entries": conn.execute(sa.text(
                "SELECT count(*) FROM journal_entries WHERE account = 'A1'")).scalar(),
        }
    done = t.at(YOUNG).ok("retention", "apply", "--archive-dir", archive, "--json").json()
    assert done["holds"] == [a1["hold_id"]]
    assert done["archived"]["orders"] == 1  # B1's filled order
    assert done["archived"]["executions"] == 0  # B1's position is open
    with store.read() as conn:
        for table, n in a1_rows.items():
            assert conn.execute(sa.text(
                f"SELECT count(*) FROM {table} WHERE account = 'A1'")).scalar() == n, table
        # the chain's prefix stops before the first event about A1 (its account.open)
        first = conn.execute(sa.text(
            "SELECT action, entity_id FROM audit_events ORDER BY seq LIMIT 1")).one()
        assert tuple(first) == ("account.open", "A1")
    assert t.ok("audit", "verify", "--json").json()["ok"] is True
    # the hold cannot be lifted behind tieout's back: holds and releases are append-only
    assert delete_refused(store, "legal_holds")
    assert delete_refused(store, "legal_hold_releases")
    assert t.ok("retention", "hold", "list", "--json").json()[0]["hold_id"] == a1["hold_id"]
    twice = t.at(YOUNG)("retention", "hold", "release", str(firm["hold_id"]), "--reason", "x")
    assert twice.code == 4
    # once released, what it kept goes too
    t.at(YOUNG).ok("retention", "hold", "release", str(a1["hold_id"]), "--reason", "settled")
    later = t.at(YOUNG).ok("retention", "apply", "--archive-dir", archive, "--json").json()
    assert later["archived"]["orders"] == 3 and later["archived"]["executions"] == 2
    assert t.ok("audit", "verify", "--json").json()["ok"] is True
    for folder in sorted(Path(archive).iterdir()):  # the second archive begins at the first's end
        assert t.ok("retention", "verify-archive", str(folder), "--db", t.db_url,
                    "--json").json()["ok"] is True
    store.dispose()


def test_failed_runs_and_broken_chains_change_nothing(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = old_book(db_url, tmp_path)
    store = Store.open(t.db_url)
    counts = table_counts_of(store)
    archive = tmp_path / "archive"
    now = Ctx("ops", parse_utc(YOUNG, "now"))
    real = retention_book._remove

    def remove_then_fail(conn: sa.Connection, plan: retention_book.Plan) -> dict[str, int]:
        real(conn, plan)
        raise RuntimeError("power cut")

    with monkeypatch.context() as m:
        m.setattr(retention_book, "_remove", remove_then_fail)
        with pytest.raises(RuntimeError, match="power cut"):
            retention_book.apply(store, now, archive_root=str(archive))
    assert table_counts_of(store) == counts
    assert list(archive.iterdir()) == []  # the archive folder was removed again
    assert delete_refused(store, "executions") and delete_refused(store, "audit_events")
    # an archive directory that cannot be made: bad input, nothing changed
    blocker = write(tmp_path / "file", "x")
    r = t.at(YOUNG)("retention", "apply", "--archive-dir", blocker)
    assert r.code == 3 and "archive folder" in r.err
    # a period shorter than a year is refused
    assert t("retention", "set", "audit", "30d").code == 3
    assert table_counts_of(store) == counts

    # a chain edited behind tieout's back is never archived (exit 7), nothing changes
    with store.engine.begin() as conn:  # tampering, with the owner's powers
        if store.dialect == "postgresql":
            conn.execute(sa.text(f"ALTER TABLE audit_events DISABLE TRIGGER {PG_TRIGGER}"))
            conn.execute(sa.text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3"))
            conn.execute(sa.text(f"ALTER TABLE audit_events ENABLE TRIGGER {PG_TRIGGER}"))
        else:
            conn.execute(sa.text("DROP TRIGGER audit_events_no_update"))
            conn.execute(sa.text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3"))
    r = t.at(YOUNG)("retention", "apply", "--archive-dir", str(archive))
    assert r.code == 7 and "broken at event 3" in r.err
    assert table_counts_of(store) == counts
    assert list(archive.iterdir()) == []
    # and a prefix removed without an archive record is a break, whatever the anchor logic
    with store.engine.begin() as conn:
        if store.dialect == "postgresql":
            conn.execute(sa.text(f"ALTER TABLE audit_events DISABLE TRIGGER {PG_TRIGGER}"))
        else:
            conn.execute(sa.text("DROP TRIGGER audit_events_no_delete"))
        conn.execute(sa.text("DELETE FROM audit_events WHERE seq <= 3"))
    with store.read() as conn:
        assert audit.chain_anchor(conn) is None
        check = audit.verify_store(conn)
    assert not check.ok and check.first_bad_seq == 1
    assert t("audit", "verify").code == 7
    with pytest.raises(VerificationFailed):
        retention_book.apply(store, now, archive_root=str(archive))
    store.dispose()


def test_a_run_killed_before_its_commit_leaves_no_folder_that_passes_for_an_archive(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The archive is written under a partial name and takes its own just before the commit:
    a run killed (SIGKILL, SIGTERM) while it removes the rows leaves
    `.archive-...partial-...`, not an `archive-...` folder that verifies although the book
    never recorded it (an interruption audit found one that `verify-archive --db` passed, and
    with the same clock the next run was refused: the folder existed). verify-archive --db now
    also fails a folder that a book with no archive at all does not record."""
    t = old_book(db_url, tmp_path)
    store = Store.open(t.db_url)
    archive = tmp_path / "archive"
    seen: list[list[str]] = []
    real = retention_book._remove

    def remove_and_look(conn: sa.Connection, plan: retention_book.Plan) -> dict[str, int]:
        seen.append(sorted(p.name for p in archive.iterdir()))  # what a kill here leaves
        return real(conn, plan)

    monkeypatch.setattr(retention_book, "_remove", remove_and_look)
    copy = tmp_path / "copy"
    other = Tieout(f"sqlite:///{tmp_path / 'other.db'}")  # a book with no archive
    other.ok("init")
    done = t.at(YOUNG).ok("retention", "apply", "--archive-dir", str(archive), "--json").json()
    ((during,),) = seen
    name = Path(done["location"]).name
    assert during.startswith(f".{name}.partial-") and name.startswith("archive-000001-")
    assert sorted(p.name for p in archive.iterdir()) == [name]  # renamed: nothing else left
    assert t.ok("retention", "verify-archive", done["location"], "--json").json()["ok"] is True
    shutil.copytree(done["location"], copy)
    r = other("retention", "verify-archive", str(copy), "--json")
    assert r.code == 7 and r.json()["problems"] == [
        "the book has no record of archive 1 (a run that did not commit may have left this "
        "folder: its rows are then still in the book)"
    ]
    store.dispose()


def test_positions_keep_what_an_archive_realized(db_url: str, tmp_path: Path) -> None:
    """A1's flat COIN history is archived; COIN trades again: positions add the carried realized
    P&L to what the live fills realize; as of a date before the archived trades it is not
    counted; a statement of a period after the archive reads the same before and after."""
    t = old_book(db_url, tmp_path)
    young = t.at(YOUNG)
    young.ok("exec", "import", write(
        tmp_path / "e.csv",
        "exec_id,account,symbol,side,quantity,price,trade_date,venue,commission\n"
        "X1,A1,COIN,buy,2,100,2026-01-05,ACME,1.5\n"
        "X2,A1,COIN,sell,1,110.25,2026-01-05,ACME,0.5\n"))
    live_only = young.ok("positions", "--account", "A1", "--json").json()

    def statement(name: str) -> dict[str, Any]:
        out = tmp_path / f"{name}.json"
        young.ok("report", "statement", "--account", "A1", "--from", "2026-01-01", "--to",
                 "2026-01-31", "--format", "json", "--out", str(out))
        doc: dict[str, Any] = json.loads(out.read_text())
        doc.pop("audit_head", None)
        return doc

    before_statement = statement("before")
    # archive only the 2018 flat episode: the 2026 fills are younger
    done = young.ok("retention", "apply", "--archive-dir", str(tmp_path / "a"), "--json").json()
    assert done["archived"]["executions"] == 2
    carried = done["positions_carried"][0]
    assert (carried["account"], carried["symbol"]) == ("A1", "COIN")
    after = young.ok("positions", "--account", "A1", "--json").json()
    assert after == live_only  # the same numbers, from the carry and the live fills
    assert after[0]["quantity"] == "1"
    # the live fills alone realize 110.25 - 100 - 0.75 (basis share) - 0.5 = 9.00
    from decimal import Decimal
    assert Decimal(after[0]["realized_pnl"]) == Decimal(carried["realized_pnl"]) + Decimal("9")
    # as of a day before the archived trades, nothing archived is counted (nothing is live)
    assert young.ok("positions", "--account", "A1", "--as-of", "2018-02-28",
                    "--json").json() == []
    assert statement("after") == before_statement
    # the carry cannot be changed behind tieout's back
    store = Store.open(t.db_url)
    assert delete_refused(store, "position_carry_forward")
    store.dispose()


def test_retention_sums_exactly_what_it_carries_and_what_it_calls_flat(
    db_url: str, tmp_path: Path
) -> None:
    """Retention summed in Python's default 28 digits. The carry-forward entry of an archived
    ledger rounded a 29-digit cash balance (-15241578780573607.157598507393 became
    ...15759850739: the cash changed by archiving it); and a position of 30-digit fills whose
    last 0.000000000001 was left summed to zero, so its executions were archived as flat. Now
    cash, positions and what is archived are exact: only the flat B1/B2 episode goes."""
    t = Tieout(db_url)
    o = t.at(OLD)
    o.ok("init")
    for symbol in ("COIN", "COIN2"):
        o.ok("instrument", "add", symbol, "--exchange", "24/7", "--currency", "USD",
             "--lot-size", "0.000000000001", "--tick-size", "0.000001")  # fmt: skip
    o.ok("account", "open", "A1", "--currency", "USD", "--type", "margin")
    o.ok("cash", "deposit", "A1", "100000")
    o.ok("exec", "import", write(
        tmp_path / "e.csv",
        "exec_id,account,symbol,side,quantity,price,trade_date,venue\n"
        "B1,A1,COIN,buy,123456789.123456,123456789.123457,2018-03-01,ACME\n"
        "B2,A1,COIN,sell,123456789.123456,123456789.123457,2018-03-01,ACME\n"
        "L1,A1,COIN,buy,123456789012345678.123456789012,1,2018-03-01,ACME\n"
        "L2,A1,COIN,sell,123456789012345678.123456789011,1,2018-03-01,ACME\n"
        "C1,A1,COIN2,buy,123456789.123456,123456789.123457,2018-03-01,ACME\n"))  # fmt: skip
    young = t.at(YOUNG)
    cash = young.ok("cash", "balance", "A1", "--json").json()["balance"]
    assert Decimal(cash) == Decimal("-15241578780573607.157598507393")  # exact
    positions = young.ok("positions", "--account", "A1", "--json").json()
    assert [(p["symbol"], p["quantity"]) for p in positions] == [
        ("COIN", "0.000000000001"), ("COIN2", "123456789.123456")]  # fmt: skip
    done = young.ok("retention", "apply", "--archive-dir", str(tmp_path / "a"), "--json").json()
    assert done["archived"]["executions"] == 2  # B1 and B2; L1 and L2 never went flat
    assert done["archived"]["journal_entries"] == 2  # the deposit and the settlement: carried
    assert young.ok("cash", "balance", "A1", "--json").json()["balance"] == cash
    assert young.ok("positions", "--account", "A1", "--json").json() == positions
    assert young.ok("audit", "verify", "--json").json()["ok"] is True


def test_a_parallel_verify_that_retention_overtakes_checks_again_from_the_new_anchor(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`audit verify` of a long chain checks segments in processes of their own, each with its
    own snapshot: a retention run that archived the chain's head between the first read and the
    segments' made an intact book fail with "events missing" (exit 7, a false tamper alarm)."""
    t = old_book(db_url, tmp_path)
    monkeypatch.setattr(audit, "PARALLEL_THRESHOLD", 1)  # this small chain takes that path
    real = audit.ProcessPoolExecutor
    ran: list[int] = []

    class RetentionFirst(real):  # type: ignore[misc, valid-type]
        def __enter__(self) -> Any:
            if not ran:  # once: the archive run commits between the first read and the segments
                done = t.at(YOUNG).ok("retention", "apply", "--archive-dir",
                                      str(tmp_path / "archive"), "--json").json()
                ran.append(done["archived"]["audit_events"])
            return super().__enter__()

    monkeypatch.setattr(audit, "ProcessPoolExecutor", RetentionFirst)
    check = audit.verify_url(t.db_url, workers=2)
    assert ran and ran[0] > 0
    assert check.ok, check
