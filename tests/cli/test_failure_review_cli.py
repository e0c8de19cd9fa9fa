"""Through the real command on both backends: what a review of failures found. An error the
database driver raises itself (the bulk paths write on the raw connection) is a clean database
error naming the database, not a traceback; an order file or a drop copy that the database
fails part way through says what committed, prints it as JSON, and says how to go on without
booking anything twice (it used to say "nothing was changed")."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from oms import order_book, submission
from tests.cli.test_exec_apply_review import apply, book, external
from tests.cli.test_order_cli import report
from tests.conftest import Tieout, write

__all__ = ["book"]  # the fixture, used by name


def _driver_error(t: Tieout, text: str) -> Exception:
    """What the backend's own driver raises (no SQLAlchemy around it)."""
    if t.db_url.startswith("sqlite"):
        return sqlite3.OperationalError(text)
    return psycopg.OperationalError(text)


def test_a_driver_error_is_a_clean_database_error(
    book: Tieout, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: Any, **__: Any) -> None:
        raise _driver_error(book, "attempt to write a readonly database")

    monkeypatch.setattr(submission, "bulk_insert", refuse)
    monkeypatch.setattr(submission.Db, "write", lambda self, rows: refuse())
    r = book("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy", "--qty",
             "1")
    assert r.code == 1 and "Traceback" not in r.err, r.err
    assert "database error (" in r.err and "nothing was changed" in r.err
    assert "attempt to write a readonly database" in r.err
    monkeypatch.undo()
    assert book.ok("order", "list", "--json").json() == []


def _orders_file(tmp_path: Path, n: int, *, named: bool) -> str:
    rows = [f"A1,COIN,{'buy' if i % 2 == 0 else 'sell'},{i // 2 + 1},{f'F{i}' if named else ''}"
            for i in range(n)]
    return write(tmp_path / f"orders-{named}.csv",
                 "account,symbol,side,qty,client_order_id\n" + "\n".join(rows) + "\n")


@pytest.mark.parametrize("named", [True, False])
def test_an_order_file_the_database_fails_part_way_says_what_committed(
    book: Tieout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, named: bool
) -> None:
    book.ok("risk", "set", "max-orders-per-window", "100000")
    book.ok("risk", "set", "tier.standard.max-position", "100000000")
    book.ok("cash", "deposit", "A1", "100000000")
    f = _orders_file(tmp_path, 2500, named=named)
    real, calls = submission._write_part, []

    def second_fails(*args: Any) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise _driver_error(book, "the connection is lost")
        real(*args)

    monkeypatch.setattr(submission, "_write_part", second_fails)
    r = book("order", "submit", "--file", f, "--json")
    monkeypatch.undo()
    assert r.code == 1 and "Traceback" not in r.err, r.err
    assert "nothing was changed" not in r.err
    assert "the first 1000 of 2500 orders (lines 2 to 1001) committed" in r.err
    doc = r.json()
    assert (doc["complete"], doc["next_line"], doc["accepted"]) == (False, 1002, 1000)
    assert "the connection is lost" in doc["interrupted"]
    assert len(book.ok("order", "list", "--json").json()) == 1000
    if named:  # the whole file again: the committed ones are duplicates
        assert "Submit the file again" in r.err
        again = book.ok("order", "submit", "--file", f, "--json").json()
        assert (again["accepted"], again["duplicates"]) == (1500, 1000)
    else:
        assert "Submit only the rows from line 1002 on" in r.err
    assert book.ok("audit", "verify", "--json").json()["ok"] is True


def test_a_drop_copy_the_database_fails_part_way_says_what_committed(
    book: Tieout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    external(book, "X1", qty="3")
    lines = [report("X1", "E0", "0")] + [
        report("X1", f"E{n}", "F", (32, "1"), (31, "100")) for n in (1, 2, 3)
    ]
    real, calls = order_book._apply_report, []

    def third_fails(*args: Any) -> bool:
        calls.append(1)
        if len(calls) == 3:
            raise _driver_error(book, "disk I/O error")
        return real(*args)

    monkeypatch.setattr(order_book, "_apply_report", third_fails)
    r = apply(book, tmp_path, "day.fix", *lines)
    monkeypatch.undo()
    assert r.code == 1 and "Traceback" not in r.err, r.err
    assert ("the messages before line 3 (2 applied, 0 skipped as duplicates, 0 refused) "
            "committed and stay in the book") in r.err
    assert "Apply the file again" in r.err
    doc = r.json()
    assert (doc["complete"], doc["next_line"], doc["applied"]) == (False, 3, 2)
    again = apply(book, tmp_path, "day.fix", *lines)
    assert again.code == 0 and (again.json()["applied"], again.json()["duplicates"]) == (2, 2)
    shown = book.ok("order", "show", "--client-order-id", "X1", "--json").json()
    assert (shown["status"], shown["cum_qty"]) == ("filled", "3")


def test_a_group_committed_while_the_next_one_failed_is_reported(
    book: Tieout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a writer thread commits group N while group N+1 is decided: when deciding
    fails (its read connection lost), group N's commit still counts as done."""
    book.ok("risk", "set", "max-orders-per-window", "100000")
    book.ok("risk", "set", "tier.standard.max-position", "100000000")
    book.ok("cash", "deposit", "A1", "100000000")
    f = _orders_file(tmp_path, 3500, named=False)
    real, calls = submission.Group.decide_all, []

    def third_fails(self: submission.Group, part: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            raise _driver_error(book, "the connection is lost")
        return real(self, part)

    monkeypatch.setattr(submission.Group, "decide_all", third_fails)
    r = book("order", "submit", "--file", f, "--json")
    monkeypatch.undo()
    assert r.code == 1, r.err
    doc = r.json()
    assert (doc["accepted"], doc["next_line"]) == (2000, 2002), r.err
    assert "the first 2000 of 3500 orders (lines 2 to 2001) committed" in r.err
    assert len(book.ok("order", "list", "--json").json()) == 2000


def test_a_file_the_database_fails_before_anything_committed_says_so_in_json(
    book: Tieout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = _orders_file(tmp_path, 3, named=True)

    def fails(*_: Any) -> None:
        raise _driver_error(book, "the connection is lost")

    monkeypatch.setattr(submission, "_write_part", fails)
    monkeypatch.setattr(submission.Db, "write", lambda self, rows: fails())
    r = book("order", "submit", "--file", f, "--json")
    monkeypatch.undo()
    assert r.code == 1 and "nothing was changed" in r.err and "(database " in r.err, r.err
    doc = r.json()  # --json: one document on stdout, also now
    assert (doc["complete"], doc["next_line"], doc["accepted"], doc["results"]) == (
        False, 2, 0, [])
    assert book.ok("order", "list", "--json").json() == []


def test_a_database_error_after_the_last_group_committed_leaves_the_file_done(
    book: Tieout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database fails once every group has committed and been acknowledged (closing a
    connection, say): the file is done and its summary says so, not a traceback (it was an
    IndexError: no line after the last to resume from)."""
    f = _orders_file(tmp_path, 5, named=False)
    monkeypatch.setattr(submission, "CHUNK", 2)
    real = submission._pipeline

    def fails_after(*args: Any) -> None:
        real(*args)
        raise _driver_error(book, "the connection is lost")

    monkeypatch.setattr(submission, "_pipeline", fails_after)
    r = book("order", "submit", "--file", f, "--json")
    monkeypatch.undo()
    assert r.code == 0 and "Traceback" not in r.err, r.err
    doc = r.json()
    assert (doc["orders"], doc["accepted"], doc["rejected"]) == (5, 5, 0)
    assert len(book.ok("order", "list", "--json").json()) == 5


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _fails_on_call(monkeypatch: pytest.MonkeyPatch, t: Tieout, name: str, n: int) -> None:
    """order_book.<name> fails (the driver's disk I/O error) on its n-th call."""
    real, calls = getattr(order_book, name), []

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == n:
            raise _driver_error(t, "disk I/O error")
        return real(*args, **kwargs)

    monkeypatch.setattr(order_book, name, failing)


def test_md_import_the_database_fails_while_filling_says_what_committed(
    book: Tieout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bars commit first, then the paper venue works them a bar a transaction: a failure
    in the second bar used to say "nothing was changed" (and print no JSON) though the bars
    and the first bar's fills were in the book. A re-run works the rest, nothing twice."""
    placed = datetime.now(UTC)
    for cl, limit in (("L1", "99"), ("L2", "97")):
        book.ok("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy",
                "--qty", "1", "--type", "limit", "--limit", limit, "--tif", "gtc",
                "--client-order-id", cl)
    later = book.at(_iso(placed + timedelta(minutes=10)))
    bars = write(tmp_path / "bars2.csv", "time,symbol,open,high,low,close,volume\n"
                 f"{_iso(placed + timedelta(minutes=2))},COIN,100,100,98,99,5000\n"
                 f"{_iso(placed + timedelta(minutes=3))},COIN,99,99,96,97,5000\n")
    _fails_on_call(monkeypatch, book, "_fill_from_bar", 2)
    r = later("md", "import", bars, "--json")
    monkeypatch.undo()
    assert r.code == 1 and "Traceback" not in r.err, r.err
    assert ("the bars of import 2 (2 accepted); 1 resting paper order(s) filled committed and "
            "stay in the book") in r.err, r.err
    assert "Run `tieout md import` again" in r.err and "nothing was changed" not in r.err
    doc = r.json()
    assert (doc["accepted"], doc["paper_orders_filled"], doc["complete"]) == (2, 1, False)
    assert [later.ok("order", "show", "--client-order-id", c, "--json").json()["status"]
            for c in ("L1", "L2")] == ["filled", "new"]
    again = later.ok("md", "import", bars, "--json").json()
    assert (again["unchanged"], again["paper_orders_filled"]) == (2, 1)
    assert [later.ok("order", "show", "--client-order-id", c, "--json").json()["cum_qty"]
            for c in ("L1", "L2")] == ["1", "1"]
    assert later.ok("audit", "verify", "--json").json()["ok"] is True


def test_md_import_the_database_fails_in_the_first_bar_says_the_bars_are_in(
    book: Tieout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    placed = datetime.now(UTC)
    book.ok("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy",
            "--qty", "1", "--type", "limit", "--limit", "99", "--tif", "gtc")
    later = book.at(_iso(placed + timedelta(minutes=10)))
    bars = write(tmp_path / "bars2.csv", "time,symbol,open,high,low,close,volume\n"
                 f"{_iso(placed + timedelta(minutes=2))},COIN,100,100,98,99,5000\n")
    _fails_on_call(monkeypatch, book, "_fill_from_bar", 1)
    r = later("md", "import", bars)
    monkeypatch.undo()
    assert r.code == 1, r.err
    assert "the bars of import 2 (1 accepted) committed and stay in the book" in r.err, r.err


def test_expire_due_the_database_fails_part_way_says_what_committed(
    book: Tieout, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each order expires in a transaction of its own: a failure at the second used to say
    "nothing was changed" while the first was expired."""
    ids = [book.ok("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy",
                   "--qty", "1", "--type", "limit", "--limit", limit, "--tif", "day",
                   "--json").json()["order_id"] for limit in ("90", "91", "92")]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=30)
    later = book.at(_iso(tomorrow))
    _fails_on_call(monkeypatch, book, "_store_order", 2)
    r = later("order", "expire-due", "--json")
    monkeypatch.undo()
    assert r.code == 1 and "Traceback" not in r.err, r.err
    assert f"1 expired order(s) ({ids[0]} to {ids[0]}) committed and stay in the book" in r.err
    assert "Run `tieout order expire-due` again" in r.err
    assert [o["order_id"] for o in r.json()] == [ids[0]]
    again = later.ok("order", "expire-due", "--json").json()
    assert [o["order_id"] for o in again] == ids[1:]
