"""The pipelined group commit of `order submit --file` (oms.submission._pipeline): a group is
acknowledged only once committed, and never after a group that failed; a group whose rows the
database refuses is redone one order per transaction with nothing decided after it kept;
another writer committing between two groups is seen (SQLite) or, waiting for the book lock
that the pipeline holds, let in after the group in flight (PostgreSQL), never forks the audit chain
and never makes a decision on stale state. On SQLite each test runs with the writer process
(the default) and with the inline writer; the fakes below count in shared memory, since the
writer process runs them in a process of its own."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from oms import book, order_book, submission
from oms.book import Ctx
from oms.errors import PartlyDone
from oms.schema import audit_events, orders
from oms.store import Store
from tests.conftest import BookTemplates, _pg_url
from tests.integration.test_batch_submission import (
    NOW,
    _book,
    _children,
    _lines,
    _one_by_one,
    _rows,
    _setup,
    _write,
)


def _stores(db_url: str, tmp_path: Path, book_templates: BookTemplates) -> tuple[Store, Store]:
    other = (
        f"sqlite:///{tmp_path / 'other.db'}"
        if db_url.startswith("sqlite")
        else _pg_url(db_url.split("?", maxsplit=1)[0].replace("+psycopg", ""))
    )
    for url in (db_url, other):  # books init made ten minutes before NOW (BookTemplates)
        book_templates.fresh(url, f"store@{NOW - timedelta(minutes=10):%Y-%m-%dT%H:%M:%S%z}")
    single, batch = Store.open(db_url), Store.open(other)
    for s, name in ((single, "a"), (batch, "b")):
        _setup(s, tmp_path, name)
    return single, batch


@pytest.fixture(params=["process", "inline"])
def writer(request: pytest.FixtureRequest, db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The SQLite pipeline's writer: a process of its own, or this thread (PostgreSQL: its
    writer thread, once)."""
    if db_url.startswith("postgresql"):
        if request.param == "inline":
            pytest.skip("PostgreSQL has one writer: a thread")
        return "thread"
    monkeypatch.setattr(submission, "WRITER_PROCESS", request.param == "process")
    monkeypatch.setattr(submission, "_may_fork", lambda: True)  # a thread another test left
    return str(request.param)


def _acked_in_db(store: Store, acked: list[str]) -> Callable[[Any], None]:
    """An on_commit that checks, from another connection, that every order it is given is
    committed already, and records them in order."""

    def on_commit(lines: Any) -> None:
        ids = [x.order_id for x in lines if x.order_id is not None]
        with store.read() as conn:
            found = set(
                conn.execute(sa.select(orders.c.order_id).where(orders.c.order_id.in_(ids)))
                .scalars()
                .all()
            )
        assert found == set(ids)
        acked.extend(ids)

    return on_commit


@pytest.mark.parametrize("raised_by", ["sqlalchemy", "driver"])
def test_a_refused_group_is_redone_one_order_at_a_time(
    db_url: str,
    book_templates: BookTemplates,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    raised_by: str,
    writer: str,
) -> None:
    """The second group's insert fails (an IntegrityError, through SQLAlchemy or from the
    driver, after its rows went in): the first
    group stays acknowledged, the third group (decided meanwhile) is dropped and decided again
    after the second is redone order by order; the book is as one submission per row."""
    single, batch = _stores(db_url, tmp_path, book_templates)
    path = tmp_path / "orders.csv"
    rows = _rows(7)
    _write(path, rows)
    expected = _one_by_one(single, path)
    monkeypatch.setattr(submission, "CHUNK", 10)
    original: Callable[..., None] = submission.Db.write
    calls = multiprocessing.Value("i", 0)  # shared with the writer process
    singles: list[int] = []

    def failing(self: submission.Db, collected: Any) -> None:
        with calls.get_lock():
            calls.value += 1
            n = calls.value
        original(self, collected)
        if n == 2:
            if raised_by == "sqlalchemy":
                raise IntegrityError("INSERT", {}, Exception("refused on purpose"))
            # the rows go by the raw connection: the driver's own error
            if self.pg:
                raise psycopg.IntegrityError("refused on purpose")
            raise sqlite3.IntegrityError("refused on purpose")

    real_singles = submission._singles

    def spy(store: Store, ctx: Ctx, part: Any, *held: Any) -> Any:
        singles.append(len(part))
        return real_singles(store, ctx, part, *held)

    monkeypatch.setattr(submission.Db, "write", failing)
    monkeypatch.setattr(submission, "_singles", spy)
    acked: list[str] = []
    result = order_book.submit_file(batch, Ctx("ops", NOW), str(path), _acked_in_db(batch, acked))
    assert singles == [10]  # the second group, one order per transaction
    assert _lines(result) == expected
    assert acked == [x.order_id for x in result.lines if x.order_id is not None]
    new = [x.order_id for x in result.lines if x.order_id is not None and not x.duplicate]
    assert new == sorted(set(new))  # each order made once, in file order
    assert _book(batch) == _book(single)
    assert _book(batch)["audit"] is True
    single.dispose()
    batch.dispose()


@pytest.mark.parametrize("between", ["deposit", "kill switch"])
def test_another_writer_between_groups(
    db_url: str,
    book_templates: BookTemplates,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    writer: str,
    between: str,
) -> None:
    """Another connection deposits cash into M2 (whose buying power decides its orders) right
    after the file's first group committed. SQLite: the pipeline sees the commit before it
    writes the second group, which it decides again on the book as the deposit left it.
    PostgreSQL: the deposit waits for the book lock, which the pipeline holds; the pipeline
    sees it waiting once the first group is acknowledged, gives way, and decides the second
    group again after the deposit (it used to keep the deposit, or a kill switch, waiting
    until the whole file was done). Either way every decision is the one single submissions
    give with the deposit at that point, and the audit chain is one chain. The same with M2's
    kill switch engaged instead of the deposit: M2's orders after the first group are
    refused."""
    single, batch = _stores(db_url, tmp_path, book_templates)
    pg = batch.dialect == "postgresql"
    path, first, rest = tmp_path / "orders.csv", tmp_path / "first.csv", tmp_path / "rest.csv"
    rows = _rows(11)
    _write(path, rows)
    _write(first, rows[:10])
    _write(rest, rows[10:])
    deposit = Ctx("treasury", NOW)

    def interject(store: Store) -> None:
        if between == "deposit":
            book.deposit(store, deposit, "M2", Decimal("5000"), None)
        else:
            order_book.engage_kill_switch(store, deposit, "M2", "stop M2")

    expected = _one_by_one(single, first)  # the other writer after the first group
    interject(single)
    expected += _one_by_one(single, rest)
    if between == "kill switch":  # (the decisions the kill changes are in the comparison)
        assert any("kill switch" in str(line[3]) for line in expected[10:])
    monkeypatch.setattr(submission, "CHUNK", 10)
    other = Store.open(batch.engine.url.render_as_string(hide_password=False))
    real_write = submission._write_part
    writes = multiprocessing.Value("i", 0)  # shared with the writer process
    threads: list[threading.Thread] = []
    redone: list[int] = []

    def write_then_deposit(*args: Any) -> None:
        real_write(*args)
        with writes.get_lock():
            writes.value += 1
            n = writes.value
        if n == 1:
            t = threading.Thread(target=interject, args=(other,))
            t.start()
            threads.append(t)
            if not pg:
                t.join()
                return
            deadline = time.monotonic() + 30
            while True:  # until the deposit waits for the book lock (the pipeline holds it)
                with other.read() as conn:
                    if other.book_lock_wanted(conn):
                        break
                assert time.monotonic() < deadline, "the deposit never waited for the lock"
                time.sleep(0.01)

    real_group = submission._group_or_singles

    def spy(store: Store, ctx: Ctx, part: Any, *held: Any) -> Any:
        redone.append(len(part))
        return real_group(store, ctx, part, *held)

    monkeypatch.setattr(submission, "_write_part", write_then_deposit)
    monkeypatch.setattr(submission, "_group_or_singles", spy)
    acked: list[str] = []
    result = order_book.submit_file(batch, Ctx("ops", NOW), str(path), _acked_in_db(batch, acked))
    for t in threads:
        t.join()
    assert redone == [10]  # the second group, read afresh
    assert _lines(result) == expected
    assert acked == [x.order_id for x in result.lines if x.order_id is not None]
    assert _book(batch) == _book(single)
    assert _book(batch)["audit"] is True
    with batch.read() as conn:
        actions = conn.execute(
            sa.select(audit_events.c.action).order_by(audit_events.c.seq)
        ).scalars()
        trail = [a for a in actions if a in {"order.submit", "cash.deposit"}]
    assert trail.count("cash.deposit") == (4 if between == "deposit" else 3)  # 3 in the setup
    other.dispose()
    single.dispose()
    batch.dispose()


@pytest.mark.parametrize(
    "dies", ["before its commit", "after its commit", "after its commit and a deposit"]
)
def test_the_writer_process_killed_loses_and_doubles_nothing(
    db_url: str,
    book_templates: BookTemplates,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    dies: str,
) -> None:
    """SQLite's writer process is killed (SIGKILL) while it writes the second group: after
    its inserts, before its commit (the database rolls the group back), or after its commit,
    before it answers (also with another connection's deposit committed in between, so that
    the trail no longer ends at the group's last event). The run reads from the database
    whether the group committed: if not, the group is decided again afresh; if so, it is
    acknowledged, and the next group (which finds the writer gone) is decided again afresh. The
    run goes on with a new writer process: every order once, the book as single submissions
    make it, each acknowledgement after its commit."""
    if not db_url.startswith("sqlite"):
        pytest.skip("the writer process is SQLite's")
    monkeypatch.setattr(submission, "_may_fork", lambda: True)  # a thread another test left
    single, batch = _stores(db_url, tmp_path, book_templates)
    path, first, rest = tmp_path / "orders.csv", tmp_path / "first.csv", tmp_path / "rest.csv"
    rows = _rows(5)
    _write(path, rows)
    deposit = Ctx("treasury", NOW)
    if dies.endswith("deposit"):  # after the second group
        _write(first, rows[:20])
        _write(rest, rows[20:])
        expected = _one_by_one(single, first)
        book.deposit(single, deposit, "M2", Decimal("5000"), None)
        expected += _one_by_one(single, rest)
    else:
        expected = _one_by_one(single, path)
    other = Store.open(batch.engine.url.render_as_string(hide_password=False))
    monkeypatch.setattr(submission, "CHUNK", 10)
    here = os.getpid()
    calls = multiprocessing.Value("i", 0)  # shared with the writer process

    def killed_on_the_second(*_: Any) -> None:
        with calls.get_lock():
            calls.value += 1
            n = calls.value
        if n == 2 and os.getpid() != here:
            if dies.endswith("deposit"):
                book.deposit(other, deposit, "M2", Decimal("5000"), None)
            os.kill(os.getpid(), signal.SIGKILL)

    if dies == "before its commit":
        write: Callable[..., None] = submission.Db.write

        def insert_then_die(self: submission.Db, collected: Any) -> None:
            write(self, collected)
            killed_on_the_second()

        monkeypatch.setattr(submission.Db, "write", insert_then_die)
    else:
        write_part = submission._write_part

        def commit_then_die(*args: Any) -> None:
            write_part(*args)
            killed_on_the_second()

        monkeypatch.setattr(submission, "_write_part", commit_then_die)
    redone: list[int] = []
    real_group = submission._group_or_singles

    def spy(store: Store, ctx: Ctx, part: Any, *held: Any) -> Any:
        redone.append(len(part))
        return real_group(store, ctx, part, *held)

    monkeypatch.setattr(submission, "_group_or_singles", spy)
    children = _children()
    acked: list[str] = []
    result = order_book.submit_file(batch, Ctx("ops", NOW), str(path), _acked_in_db(batch, acked))
    assert redone == [10]  # the second group (not committed) or the third (no writer left)
    assert _lines(result) == expected
    assert acked == [x.order_id for x in result.lines if x.order_id is not None]
    assert _book(batch) == _book(single)
    assert _book(batch)["audit"] is True
    assert _children() == children  # each writer process was waited for
    other.dispose()
    single.dispose()
    batch.dispose()


def test_with_another_thread_running_the_file_is_written_in_this_thread(
    db_url: str, book_templates: BookTemplates, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forking while another thread runs is unsafe (it may hold a lock the child would wait
    for): with one running, SQLite's pipeline writes in this thread, and no process is made."""
    if not db_url.startswith("sqlite"):
        pytest.skip("the writer process is SQLite's")
    single, batch = _stores(db_url, tmp_path, book_templates)
    path = tmp_path / "orders.csv"
    _write(path, _rows(2))
    expected = _one_by_one(single, path)
    monkeypatch.setattr(submission, "CHUNK", 10)
    forks: list[int] = []
    real_fork = os.fork

    def counted_fork() -> int:
        forks.append(1)
        return real_fork()

    monkeypatch.setattr(os, "fork", counted_fork)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        result = order_book.submit_file(batch, Ctx("ops", NOW), str(path))
    finally:
        stop.set()
        other.join()
    assert forks == []
    assert _lines(result) == expected
    result = order_book.submit_file(batch, Ctx("ops", NOW), str(path))  # one thread again
    assert forks == [1]  # a writer process now
    single.dispose()
    batch.dispose()


def _writer_process_run(
    db_url: str, book_templates: BookTemplates, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Store, Store, Path]:
    """For a test of SQLite's writer process (skipped on PostgreSQL): the two books, and a file
    of 63 orders that goes in groups of 10 through a writer process."""
    if not db_url.startswith("sqlite"):
        pytest.skip("the writer process is SQLite's")
    monkeypatch.setattr(submission, "_may_fork", lambda: True)  # a thread another test left
    single, batch = _stores(db_url, tmp_path, book_templates)
    path = tmp_path / "orders.csv"
    _write(path, _rows(3))
    monkeypatch.setattr(submission, "CHUNK", 10)
    return single, batch, path


def _sigint_in(seconds: float, sig: str = "INT") -> subprocess.Popen[bytes]:
    """SIGINT (as Ctrl-C sends it), or `sig`, to this process in `seconds`, from another
    process."""
    return subprocess.Popen(["sh", "-c", f"sleep {seconds}; kill -{sig} {os.getpid()}"])


def _interrupted_run(
    batch: Store, path: Path, killers: list[subprocess.Popen[bytes]]
) -> tuple[list[str], list[str]]:
    """`order_book.submit_file`, interrupted: it ends with KeyboardInterrupt when no group was
    acknowledged, with PartlyDone (interrupted) whose summary lists the lines acknowledged and
    names the next one when some were, and returns the whole file's result when every group was
    (the interrupt came as its writer ended); (the order ids it acknowledged, those the book
    holds), once the processes sending signals have ended."""
    acked: list[str] = []
    stopped: BaseException | None = None
    try:
        done = order_book.submit_file(
            batch,
            Ctx("ops", NOW),
            str(path),
            lambda lines: acked.extend(x.order_id for x in lines if x.order_id),
        )
    except (PartlyDone, KeyboardInterrupt) as exc:
        stopped = exc
    if isinstance(stopped, PartlyDone):
        assert stopped.interrupted, stopped
        summary: Any = stopped.summary
        assert summary["complete"] is False and summary["next_line"] > 1
        assert [x["order_id"] for x in summary["results"] if x["order_id"]] == acked
        assert "interrupted; the first" in stopped.message
    elif stopped is not None:  # KeyboardInterrupt
        assert acked == []
    else:
        assert [x.order_id for x in done.lines if x.order_id] == acked
    for k in killers:
        k.wait()
    with batch.read() as conn:
        stored = sorted(conn.execute(sa.select(orders.c.order_id)).scalars())
    return acked, stored


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("when", ["before the wait", "during the wait"])
def test_an_interrupt_while_the_writer_process_writes_acknowledges_what_it_committed(
    db_url: str,
    book_templates: BookTemplates,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    when: str,
    sig: signal.Signals,
) -> None:
    """SIGINT (Ctrl-C) reaches the run while it waits for the writer process's answer on the
    sixth group of seven: just before it reads it, or while it blocks on the pipe (the signal
    then comes from another process). The run ends with KeyboardInterrupt, and every group the
    writer committed (it ignores SIGINT and finishes its group) was acknowledged first: what the
    acknowledgements say is what the database holds. SIGTERM (`timeout`, systemd) likewise,
    under the handler the command line gives it (it ended the process where it stood)."""
    if sig is signal.SIGTERM:
        from cli.main import _note_ctrl_c

        previous = signal.signal(signal.SIGTERM, _note_ctrl_c)
        request.addfinalizer(lambda: signal.signal(signal.SIGTERM, previous))
    _single, batch, path = _writer_process_run(db_url, book_templates, tmp_path, monkeypatch)
    real_wait, real_write = submission._ProcessWriter.wait, submission._write_part
    waits = {"n": 0}
    writes = {"n": 0}  # counted in the writer process
    killers: list[subprocess.Popen[bytes]] = []

    def slow_last_write(*args: Any) -> None:
        writes["n"] += 1
        if writes["n"] == 6:  # the signal lands while the run waits for this group
            time.sleep(0.5)
        real_write(*args)

    def interrupted_wait(self: Any, head: Any, new_head: Any) -> Any:
        waits["n"] += 1
        if waits["n"] == 6:  # the sixth group's answer (of 7; it adds orders)
            if when == "before the wait":
                os.kill(os.getpid(), sig)
            else:
                killers.append(_sigint_in(0.1, sig.name.removeprefix("SIG")))
        return real_wait(self, head, new_head)

    monkeypatch.setattr(submission, "_write_part", slow_last_write)
    monkeypatch.setattr(submission._ProcessWriter, "wait", interrupted_wait)
    children = _children()
    acked, stored = _interrupted_run(batch, path, killers)
    assert waits["n"] == 6  # each answer read once, none lost to the interrupt; no 7th group
    assert stored == sorted(set(acked))  # the sixth group committed and was acknowledged
    assert len(stored) > 40
    assert _book(batch)["audit"] is True
    assert _children() == children
    _single.dispose()
    batch.dispose()


def test_an_in_memory_database_is_written_in_this_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shared-cache in-memory SQLite database lives in this process: no writer process (it
    could not reach it, and closing this process's connections would destroy it)."""
    url = "sqlite:///file:tieout_mem?mode=memory&cache=shared&uri=true"
    store = Store.open(url, check_schema=False)
    with store.engine.connect() as keep:  # the database lives while a connection is open
        store.init(now=NOW - timedelta(minutes=10))
        _setup(store, tmp_path, "m")
        path = tmp_path / "orders.csv"
        _write(path, _rows(4))
        monkeypatch.setattr(submission, "CHUNK", 10)
        monkeypatch.setattr(submission, "_may_fork", lambda: True)
        forks: list[int] = []

        def no_fork() -> int:
            forks.append(1)
            raise AssertionError("no writer process for an in-memory database")

        monkeypatch.setattr(os, "fork", no_fork)
        result = order_book.submit_file(store, Ctx("ops", NOW), str(path))
        assert forks == []
        made = {x.order_id for x in result.lines if x.order_id is not None}
        with store.read() as conn:
            stored = set(conn.execute(sa.select(orders.c.order_id)).scalars())
        assert made and stored == made
        keep.rollback()
    store.dispose()


def test_no_pooled_connection_of_the_process_crosses_the_writers_fork(
    db_url: str, book_templates: BookTemplates, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At the fork of SQLite's writer process, no Store of this process holds an idle pooled
    connection (the command line's operator check has a Store of its own on the same file):
    SQLite's state of a file must not cross a fork."""
    if not db_url.startswith("sqlite"):
        pytest.skip("the writer process is SQLite's")
    monkeypatch.setattr(submission, "_may_fork", lambda: True)  # a thread another test left
    _single, batch = _stores(db_url, tmp_path, book_templates)
    other = Store.open(batch.engine.url.render_as_string(hide_password=False))
    with other.read() as conn:  # a pooled connection, idle once the read ends
        conn.exec_driver_sql("SELECT 1")
    assert other.engine.pool.checkedin() == 1  # type: ignore[attr-defined]
    path = tmp_path / "orders.csv"
    _write(path, _rows(6))
    monkeypatch.setattr(submission, "CHUNK", 10)
    pooled_at_fork: list[int] = []
    real_fork = os.fork

    def fork() -> int:
        stores = (other, batch, _single)
        pooled_at_fork.append(sum(s.engine.pool.checkedin() for s in stores))  # type: ignore[attr-defined]
        return real_fork()

    monkeypatch.setattr(os, "fork", fork)
    order_book.submit_file(batch, Ctx("ops", NOW), str(path))
    assert pooled_at_fork == [0]
    other.dispose()
    _single.dispose()
    batch.dispose()


def test_a_second_interrupt_does_not_lose_the_acknowledgement_of_the_group_in_flight(
    db_url: str, book_templates: BookTemplates, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while the third group is decided and the second written, and again while the run
    waits for the second (SQLite's writer process; PostgreSQL's writer thread): the second
    group committed and is acknowledged before the run ends with KeyboardInterrupt."""
    monkeypatch.setattr(submission, "_may_fork", lambda: True)  # a thread another test left
    _single, batch = _stores(db_url, tmp_path, book_templates)
    path = tmp_path / "orders.csv"
    _write(path, _rows(3))
    monkeypatch.setattr(submission, "CHUNK", 10)
    real_write, real_decide = submission._write_part, submission.Group.decide_all
    writes, decides = multiprocessing.Value("i", 0), {"n": 0}
    killers: list[subprocess.Popen[bytes]] = []

    def slow_second_write(*args: Any) -> None:
        with writes.get_lock():
            writes.value += 1
            n = writes.value
        if n == 2:
            time.sleep(0.6)
        real_write(*args)

    def interrupted_decide(self: Any, part: Any) -> Any:
        decides["n"] += 1
        if decides["n"] == 3:  # the second group is being written
            killers.append(_sigint_in(0.2))
            os.kill(os.getpid(), signal.SIGINT)
        return real_decide(self, part)

    monkeypatch.setattr(submission, "_write_part", slow_second_write)
    monkeypatch.setattr(submission.Group, "decide_all", interrupted_decide)
    children = _children()
    acked, stored = _interrupted_run(batch, path, killers)
    assert stored == sorted(set(acked))
    assert len(stored) > 10  # two groups
    assert _children() == children
    _single.dispose()
    batch.dispose()


def test_an_interrupt_while_the_writer_process_ends_leaves_no_zombie(
    db_url: str, book_templates: BookTemplates, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while the run waits for its writer process to end (here it takes 0.5 s): the
    process is still waited for (no zombie), then the interrupt is raised."""
    _single, batch, path = _writer_process_run(db_url, book_templates, tmp_path, monkeypatch)
    real_serve, real_close = submission._serve_writes, submission._ProcessWriter.close
    killers: list[subprocess.Popen[bytes]] = []

    def slow_end(*args: Any) -> None:
        real_serve(*args)
        time.sleep(0.5)

    def interrupted_close(self: Any) -> None:
        killers.append(_sigint_in(0.2))
        real_close(self)

    monkeypatch.setattr(submission, "_serve_writes", slow_end)
    monkeypatch.setattr(submission._ProcessWriter, "close", interrupted_close)
    children = _children()
    acked, stored = _interrupted_run(batch, path, killers)
    assert _children() == children  # reaped
    assert stored == sorted(set(acked)) and stored
    _single.dispose()
    batch.dispose()


def test_forking_the_writer_keeps_another_stores_in_memory_database(
    db_url: str, book_templates: BookTemplates, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the writer process is forked every Store's idle connections close, but not those
    of an in-memory database: they are the database."""
    if not db_url.startswith("sqlite"):
        pytest.skip("the writer process is SQLite's")
    monkeypatch.setattr(submission, "_may_fork", lambda: True)  # a thread another test left
    memory = Store.open(
        "sqlite:///file:tieout_kept?mode=memory&cache=shared&uri=true", check_schema=False
    )
    memory.init(now=NOW - timedelta(minutes=10))
    _setup(memory, tmp_path, "k")
    _single, batch = _stores(db_url, tmp_path, book_templates)
    path = tmp_path / "orders.csv"
    _write(path, _rows(3))
    monkeypatch.setattr(submission, "CHUNK", 10)
    order_book.submit_file(batch, Ctx("ops", NOW), str(path))
    with memory.read() as conn:
        accounts = conn.exec_driver_sql("SELECT count(*) FROM accounts").scalar()
    assert accounts == 3
    memory.dispose()
    _single.dispose()
    batch.dispose()


@pytest.mark.parametrize(
    ("url", "in_memory"),
    [
        ("sqlite://", True),
        ("sqlite:///:memory:", True),
        ("sqlite:///file::memory:?cache=shared&uri=true", True),
        ("sqlite:///file:name?mode=memory&cache=shared&uri=true", True),
        ("sqlite:///file:/name?vfs=memdb&uri=true", True),
        ("sqlite:///book.db", False),
        ("sqlite:///file:book.db?mode=rwc&uri=true", False),
    ],
)
def test_which_sqlite_databases_are_in_memory(url: str, in_memory: bool) -> None:
    """An in-memory database is never pipelined (a writer process could not reach it) and
    keeps its connections at a fork (they hold it)."""
    from oms.store import make_engine

    store = Store(make_engine(url))  # (no connection is opened)
    assert store.in_memory is in_memory
    store.dispose()


def test_a_pipeline_holds_the_orders_of_two_parts_and_reads_older_repeats_from_the_book(
    db_url: str,
    book_templates: BookTemplates,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    writer: str,
) -> None:
    """A file of 8 groups of 5 whose last rows repeat client order ids of the first group: the
    deciding side keeps the orders of the last two groups only, and answers a repeat of an
    older one from the book (read on a connection of its own, since the pipeline's reads began
    before that group committed; a group's repeats in one read): the same terms are a
    duplicate of the first order, other terms are refused, as one submission per row answers
    them."""
    single, batch = _stores(db_url, tmp_path, book_templates)
    rows = [
        {
            "account": "M1",
            "symbol": "COIN",
            "side": "buy" if i % 2 else "sell",
            "qty": "1",
            "type": "limit",
            "limit": "9",
            "cid": f"R{i}",
        }
        for i in range(37)
    ]
    rows += [
        {**rows[0]},  # the same terms again: a duplicate
        {**rows[1], "qty": "2"},  # other terms: refused
        {**rows[2]},
    ]
    path = tmp_path / "orders.csv"
    _write(path, rows)
    expected = _one_by_one(single, path)
    monkeypatch.setattr(submission, "CHUNK", 5)
    held: list[int] = []
    take = submission.Group.take

    def watched(self: submission.Group, head: Any) -> Any:
        out = take(self, head)
        held.append(len(self.made))
        return out

    read: list[list[str]] = []
    committed_orders = submission._committed_orders

    def reading(store: Store, order_ids: Any) -> Any:
        read.append(list(order_ids))
        return committed_orders(store, order_ids)

    monkeypatch.setattr(submission.Group, "take", watched)
    monkeypatch.setattr(submission, "_committed_orders", reading)
    result = order_book.submit_file(batch, Ctx("ops", NOW), str(path))
    assert _lines(result) == expected
    assert [x.duplicate for x in result.lines[-3:]] == [True, False, True]
    assert "other terms" in (result.lines[-2].reason or "")
    assert max(held) == 10 and len(held) == 8  # two groups' orders, not the file's
    first = [x.order_id for x in result.lines[:3]]
    assert read == [first]  # the last group's repeats, read in one go
    assert _book(batch) == _book(single)
    single.dispose()
    batch.dispose()
