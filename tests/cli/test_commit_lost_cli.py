"""A PostgreSQL connection lost during a COMMIT: the server may have committed before the
connection went, so the command must not say "nothing was changed" (a retry would book the
deposit or the order twice); it says the outcome is unknown and to check the book first. A
connection lost before the commit still says nothing was changed, truly.

The connection really breaks: a TCP proxy on the loopback passes the command's traffic to the
PostgreSQL server and closes the client's socket at a chosen point, after forwarding the
COMMIT of the transaction that took the book lock (the server commits it) or instead of
forwarding the statement after the lock (nothing committed). (SQLite has no connection to
lose: its commit is local, and a failed one did not commit.)"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import Result, Tieout, _pg_url

LOCK = b"pg_advisory_xact_lock"


class CuttingProxy:
    """Forwards 127.0.0.1:<port> to the PostgreSQL server; on the first connection whose
    client sends the book lock, cuts it at `cut`: "commit" forwards that transaction's COMMIT
    and then closes the client's socket before the server's answer reaches it; "before"
    closes it instead of forwarding the next statement after the lock. `lock`: the statement
    that marks the connection (an order file's writer takes the session lock, then commits
    once for it before its first group: `nth` is the COMMIT to cut)."""

    def __init__(self, cut: str, lock: bytes = LOCK, nth: int = 1) -> None:
        self.cut, self.lock, self.nth = cut, lock, nth
        self.done = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", 5432))
            cutting = threading.Event()  # set: the server's answers no longer reach the client
            threading.Thread(target=self._up, args=(client, server, cutting), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client, cutting), daemon=True).start()

    def _up(self, client: socket.socket, server: socket.socket, cutting: threading.Event) -> None:
        locked = False
        commits = 0
        try:
            while data := client.recv(65536):
                if not self.done.is_set() and locked:
                    if self.cut == "before":
                        self._close(client, server)
                        return
                    if b"COMMIT" in data and (commits := commits + 1) == self.nth:
                        cutting.set()
                        server.sendall(data)
                        time.sleep(0.5)  # the server commits, its answer is not passed on
                        self._close(client, server)
                        return
                if not self.done.is_set() and self.lock in data:
                    locked = True
                server.sendall(data)
        except OSError:
            pass

    def _close(self, client: socket.socket, server: socket.socket) -> None:
        self.done.set()
        for s in (client, server):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _down(self, server: socket.socket, client: socket.socket, cutting: threading.Event) -> None:
        try:
            while (data := server.recv(65536)) and not cutting.is_set():
                client.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def pg_book(request: pytest.FixtureRequest) -> str:
    url = _pg_url(request.getfixturevalue("pg_database"))
    t = Tieout(url).at("2026-11-24T15:30:00Z")
    t.ok("init")
    t.ok("account", "open", "A", "--currency", "USD", "--type", "margin")
    t.ok("cash", "deposit", "A", "100")
    return url


def through(url: str, proxy: CuttingProxy) -> str:
    """The same database through the proxy, unencrypted (the proxy reads the statements)."""
    return url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}") + "&sslmode=disable"


def balance(url: str) -> str:
    doc = Tieout(url).ok("cash", "balance", "A", "--json").json()
    return str(doc["balance"])


def cut(url: str, where: str, *args: str, lock: bytes = LOCK, nth: int = 1) -> Result:
    """`tieout ARGS` on the book at `url` through a proxy that cuts its connection `where`."""
    proxy = CuttingProxy(where, lock, nth)
    try:
        r = Tieout(through(url, proxy)).at("2026-11-24T15:31:00Z")(*args)
    finally:
        proxy.close()
    assert proxy.done.is_set()
    return r


def test_a_connection_lost_during_the_commit_says_the_outcome_is_unknown(
    pg_book: str, tmp_path: Path
) -> None:
    r = cut(pg_book, "commit", "cash", "deposit", "A", "5", "--ref", "wire-1")
    assert r.code == 1
    err = " ".join(r.err.split())
    assert "nothing was changed" not in err
    assert "whether that transaction committed is unknown" in err
    assert "may or may not have been made: check the book" in err
    assert balance(pg_book) == "105"  # it did commit: the message was right not to deny it


def test_a_connection_lost_before_the_commit_changed_nothing(pg_book: str) -> None:
    r = cut(pg_book, "before", "cash", "deposit", "A", "5", "--ref", "wire-1")
    assert r.code == 1
    assert "nothing was changed" in r.err and "unknown" not in r.err
    assert balance(pg_book) == "100"


def test_an_order_whose_commit_was_cut_is_not_said_to_be_unmade(
    pg_book: str, tmp_path: Path
) -> None:
    t = Tieout(pg_book).at("2026-11-24T15:30:00Z")
    t.ok("instrument", "add", "AAA", "--exchange", "24/7", "--currency", "USD")
    bars = tmp_path / "bars.csv"
    bars.write_text(
        "time,symbol,open,high,low,close,volume\n2026-11-24T15:29:00Z,AAA,10,10,10,10,100\n"
    )
    t.ok("md", "import", str(bars))
    r = cut(pg_book, "commit", "order", "submit", "--account", "A", "--symbol", "AAA",
            "--side", "buy", "--qty", "1")  # fmt: skip
    assert r.code == 1
    assert "nothing was changed" not in r.err and "may or may not have been made" in r.err
    (order,) = t.ok("order", "list", "--json").json()
    assert order["status"] == "filled"


def test_an_order_file_whose_group_commit_was_cut_says_it_may_have_committed(
    pg_book: str, tmp_path: Path
) -> None:
    """A file of more than one group is written by a writer connection holding the book's
    session lock; its first group's COMMIT is cut (the second COMMIT on that connection: the
    first is the lock's own). The group is in the book: the message must not say otherwise."""
    t = Tieout(pg_book).at("2026-11-24T15:30:00Z")
    t.ok("instrument", "add", "AAA", "--exchange", "24/7", "--currency", "USD")
    t.ok("cash", "deposit", "A", "100000000")
    bars = tmp_path / "bars.csv"
    bars.write_text(
        "time,symbol,open,high,low,close,volume\n2026-11-24T15:29:00Z,AAA,10,10,10,10,100\n"
    )
    rows = "".join(f"A,AAA,buy,{i + 1}\n" for i in range(1500))
    orders = tmp_path / "orders.csv"
    orders.write_text("account,symbol,side,qty\n" + rows)
    t.ok("md", "import", str(bars))
    r = cut(pg_book, "commit", "order", "submit", "--file", str(orders),
            lock=b"pg_advisory_lock(", nth=2)  # fmt: skip
    assert r.code == 1
    err = " ".join(r.err.split())
    assert "whether that transaction committed is unknown" in err
    assert "nothing was changed" not in err
    assert len(t.ok("order", "list", "--json").json()) == 1000  # the cut group did commit
