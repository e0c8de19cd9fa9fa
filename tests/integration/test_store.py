"""The store on both backends: exact decimals and times, the schema check, append-only tables
enforced by the database, and the audit chain under tampering and concurrent writers."""

import multiprocessing
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Context, Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oms import audit, backup, book, executions, ledger
from oms.book import Ctx
from oms.errors import DatabaseNotReady
from oms.refdata import make_account, make_instrument
from oms.schema import audit_events, instruments
from oms.store import Store, alembic_config, book_schema, bulk_insert
from oms.values import FRAC_DIGITS, INT_DIGITS, dec_str, utc_iso
from tests.conftest import _pg_url, schema_of, schema_url

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()

extreme = st.builds(
    lambda n, s: Decimal(n).scaleb(-s, Context(prec=100)),
    st.integers(-(10 ** (INT_DIGITS + FRAC_DIGITS) - 1), 10 ** (INT_DIGITS + FRAC_DIGITS) - 1),
    st.integers(0, FRAC_DIGITS),
) | st.sampled_from(
    [Decimal(t) for t in ("0", "0.000000000001", "999999999999999999.999999999999",
                          "-999999999999999999.999999999999", "190.25", "100.500", "-0.5")]
)

times = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1),
                     timezones=st.just(UTC))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=extreme, when=times)
def test_decimals_and_times_round_trip_exactly(store: Store, value: Decimal,
                                               when: datetime) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.delete(instruments))
        conn.execute(instruments.insert().values(
            symbol="X", exchange="XNYS", currency="USD", tick_size=value, lot_size=Decimal(1),
            restricted=False, created_at=when, created_by="t"))
        row = conn.execute(sa.select(instruments.c.tick_size, instruments.c.created_at)).one()
    assert row.tick_size == value
    assert dec_str(row.tick_size) == dec_str(value)  # the same digits and scale back
    assert row.created_at == when
    assert row.created_at.tzinfo is not None


def test_the_head_every_command_checks_is_alembics_head() -> None:
    """migrations.HEAD (what the schema check compares with, without alembic) is the newest
    migration: a new migration must move it."""
    import migrations

    assert migrations.HEAD == HEAD


@pytest.mark.parametrize("revision", [None, "0001", "0009", HEAD])
def test_the_schema_check_reads_the_revision_alembic_reads(db_url: str, revision: str) -> None:
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    from oms.store import schema_revisions

    store = Store.open(db_url, check_schema=False)
    with store.engine.begin() as conn:
        if revision is not None:
            command.upgrade(alembic_config(conn), revision)
        assert schema_revisions(conn) == (
            MigrationContext.configure(conn).get_current_revision(),
            HEAD,
        )
        assert schema_revisions(conn)[0] == revision
    store.dispose()


def test_a_missing_or_behind_schema_is_refused(db_url: str) -> None:
    with pytest.raises(DatabaseNotReady, match="tieout init"):
        Store.open(db_url)
    store = Store.open(db_url, check_schema=False)
    assert store.init() == (None, HEAD)
    assert store.init() == (HEAD, HEAD)
    Store.open(db_url)  # now fine
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0000'")
    with pytest.raises(DatabaseNotReady, match=r"revision 0000.*not one of tieout's"):
        Store.open(db_url)


def test_a_schema_a_newer_tieout_made_is_refused_and_init_leaves_it(db_url: str) -> None:
    """A book a newer tieout upgraded (a revision past HEAD): every command says so, not "run
    tieout init"; `init` refuses it as it is (alembic failed with a traceback: it cannot find
    the revision), and the book keeps its revision."""
    store = Store.open(db_url, check_schema=False)
    store.init()
    newer = f"{int(HEAD) + 1:04d}"
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE alembic_version SET version_num = '{newer}'")
    for attempt in (Store.open, lambda url: Store.open(url, check_schema=False).init()):
        with pytest.raises(DatabaseNotReady) as caught:
            attempt(db_url)
        assert f"revision {newer}" in str(caught.value)
        assert "a newer tieout upgraded it" in str(caught.value)
        assert "run `tieout init" not in str(caught.value)
    with store.engine.begin() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").all() == [(newer,)]
    store.dispose()


def test_an_older_schema_is_upgraded_with_its_data(db_url: str) -> None:
    from alembic import command

    from oms.store import alembic_config

    store = Store.open(db_url, check_schema=False)
    with store.engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0001")
    with pytest.raises(DatabaseNotReady, match="revision 0001"):
        Store.open(db_url)
    with store.engine.begin() as conn:
        conn.execute(instruments.insert().values(
            symbol="X", exchange="XNYS", currency="USD", tick_size=Decimal("0.01"),
            lot_size=Decimal(1), restricted=False, created_at=datetime.now(UTC), created_by="t"))
    assert store.init("ops") == ("0001", HEAD)
    with store.read() as conn:
        assert conn.execute(sa.select(instruments.c.tick_size)).scalar() == Decimal("0.01")
        (event,) = list(audit.events(conn))
    assert event.action == "schema.upgrade" and event.actor == "ops"


def _append(store: Store, n: int) -> None:
    with store.write() as conn:
        for i in range(n):
            audit.append(conn, at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=i),
                         actor="t", action="test", entity_type="x", entity_id=str(i),
                         payload={"i": i, "amount": Decimal("1.10")})


def _book_one_of_each(store: Store, tmp_path: Path) -> None:
    ctx = Ctx("t", datetime(2026, 11, 24, 15, tzinfo=UTC))
    book.add_instruments(store, ctx, [make_instrument("AAPL", "XNYS", "USD")])
    book.open_account(store, ctx, make_account("A1", "USD", None, "cash", None))
    book.deposit(store, ctx, "A1", Decimal("1000"), "wire")
    f = tmp_path / "e.csv"
    f.write_text("exec_id,account,symbol,side,quantity,price,trade_date,venue\n"
                 "E1,A1,AAPL,buy,1,100,2026-11-24,ACME\n")
    executions.import_file(store, ctx, str(f))


@pytest.mark.parametrize("sql", [
    "UPDATE audit_events SET actor = 'mallory'",
    "DELETE FROM audit_events",
    "UPDATE executions SET price = '1'",
    "DELETE FROM executions",
    "UPDATE journal_postings SET amount = '0'",
    "DELETE FROM journal_postings",
    "UPDATE journal_entries SET kind = 'x'",
    "DELETE FROM journal_entries",
])
def test_append_only_tables_refuse_changes(store: Store, tmp_path: Path, sql: str) -> None:
    _book_one_of_each(store, tmp_path)
    table = sql.split()[1] if sql.startswith("UPDATE") else sql.split()[2]
    with store.read() as conn:
        before = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()
    assert before
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.write() as conn:
        conn.exec_driver_sql(sql)
    with store.read() as conn:
        assert conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() == before
        assert audit.verify_store(conn).ok


def test_truncate_is_refused_on_postgresql(store: Store) -> None:
    if store.dialect != "postgresql":
        pytest.skip("SQLite has no TRUNCATE")
    _append(store, 1)
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.write() as conn:
        conn.exec_driver_sql("TRUNCATE audit_events")


def test_verify_catches_an_edit_made_with_the_triggers_dropped(store: Store) -> None:
    _append(store, 10)
    with store.read() as conn:
        assert audit.verify_store(conn).ok
    with store.engine.begin() as conn:
        if store.dialect == "postgresql":
            conn.exec_driver_sql("ALTER TABLE audit_events DISABLE TRIGGER USER")
            conn.exec_driver_sql("UPDATE audit_events SET payload = '{\"i\":99}' WHERE seq = 7")
            conn.exec_driver_sql("ALTER TABLE audit_events ENABLE TRIGGER USER")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_events_no_update")
            conn.exec_driver_sql("UPDATE audit_events SET payload = '{\"i\":99}' WHERE seq = 7")
    with store.read() as conn:
        result = audit.verify_store(conn)
    assert not result.ok
    assert result.first_bad_seq == 7
    assert result.events == 7


def _writer(url: str, n: int) -> None:
    store = Store.open(url)
    for i in range(n):
        with store.write() as conn:
            audit.append(conn, at=datetime.now(UTC), actor=f"p{i}", action="race",
                         entity_type="x", entity_id=str(i), payload={"i": i})


def test_concurrent_writers_keep_one_intact_chain(store: Store, db_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(db_url, 25)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with store.read() as conn:
        result = audit.verify_store(conn)
        count = conn.execute(sa.select(sa.func.count()).select_from(audit_events)).scalar()
    assert result.ok
    assert result.events == 101 == count  # with init's own event


def test_times_are_stored_with_microseconds(store: Store) -> None:
    when = datetime(2026, 11, 25, 14, 30, 0, 123456, tzinfo=UTC)
    with store.write() as conn:
        ev = audit.append(conn, at=when, actor="t", action="a", entity_type="x", entity_id="1",
                          payload={"d": date(2026, 1, 2)})
    assert ev.at == utc_iso(when) == "2026-11-25T14:30:00.123456Z"
    with store.read() as conn:
        (_init, stored) = list(audit.events(conn))
    assert stored.at == ev.at
    assert stored.hash == ev.hash


def _tamper(store: Store, seq: int) -> None:
    with store.engine.begin() as conn:
        if store.dialect == "postgresql":
            conn.exec_driver_sql("ALTER TABLE audit_events DISABLE TRIGGER USER")
            conn.exec_driver_sql(f"UPDATE audit_events SET actor = 'mallory' WHERE seq = {seq}")
            conn.exec_driver_sql("ALTER TABLE audit_events ENABLE TRIGGER USER")
        else:
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_events_no_update")
            conn.exec_driver_sql(f"UPDATE audit_events SET actor = 'mallory' WHERE seq = {seq}")


@pytest.mark.parametrize("bad", [None, 1, 2, 10, 11, 20, 21, 31])
def test_verification_in_parallel_segments_agrees_with_one_pass(
    store: Store, db_url: str, monkeypatch: pytest.MonkeyPatch, bad: int | None
) -> None:
    _append(store, 30)  # events 2..31 after init's event 1
    if bad is not None:
        _tamper(store, bad)
    with store.read() as conn:
        one_pass = audit.verify_store(conn)
    monkeypatch.setattr(audit, "PARALLEL_THRESHOLD", 5)
    parallel = audit.verify_url(db_url, workers=3)
    assert parallel == one_pass
    assert parallel.ok is (bad is None)
    assert parallel.first_bad_seq == bad


def test_verifying_the_audit_trail_leaves_the_connection_as_it_was(
    store: Store, tmp_path: Path
) -> None:
    """verify_store streams on PostgreSQL; that must not turn later reads on the same
    connection into streamed ones (which lost a row of executions.records)."""
    ctx = Ctx("t", datetime(2026, 11, 25, 12, tzinfo=UTC))
    book.add_instruments(store, ctx, [make_instrument("AAPL", "XNYS", "USD")])
    book.open_account(store, ctx, make_account("A1", "USD", None, "margin", None))
    f = tmp_path / "x.csv"
    f.write_text("exec_id,account,symbol,side,quantity,price,trade_date,venue\n"
                 "E1,A1,AAPL,buy,1,10,2026-11-24,V\nE2,A1,AAPL,buy,2,10,2026-11-24,V\n"
                 "E3,A1,AAPL,buy,4,10,2026-11-24,V\n")
    executions.import_file(store, ctx, str(f))
    with store.read() as conn:
        assert audit.verify_store(conn).ok
        assert sum(r.quantity for r in executions.records(conn, account="A1")) == 7


def test_a_forked_child_leaves_the_parents_connections_alone(store: Store) -> None:
    """A child that disposes the engine (as a Store's finalizer does) closes only what it
    opened itself: the parent's pooled connection, in use a moment before, still works."""
    import os

    with store.read() as conn:
        assert conn.execute(sa.text("SELECT 1")).scalar() == 1  # now pooled, not idle
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            store.engine.dispose()
            with store.read() as conn:
                code = 0 if conn.execute(sa.text("SELECT 2")).scalar() == 2 else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with store.read() as conn:  # at once: the pool pings only connections idle for a second
        assert conn.execute(sa.text("SELECT 3")).scalar() == 3


def test_a_cash_balance_is_exact_beyond_28_digits(store: Store) -> None:
    """Postings of 18 integer and 12 decimal digits sum exactly on both backends (Python's
    default context would round to 28 significant digits on SQLite)."""
    ctx = Ctx("t", datetime(2026, 11, 24, 15, tzinfo=UTC))
    book.open_account(store, ctx, make_account("BIG", "USD", None, "cash", None))
    amount = Decimal("123456789012345678.123456789012")
    # postings with 12 decimals (as trades of fractional quantities give; a deposit itself
    # comes in cents), written as the journal keeps them
    entries = [ledger.deposit("BIG", "USD", amount, ctx.now.date(), None) for _ in range(3)]
    with store.write() as conn:
        book.post_entries(conn, ctx, entries)
    with store.read() as conn:
        balance = book.cash_balance(conn, "BIG").balance
    assert balance == Decimal("370370367037037034.370370367036")  # 30 significant digits


@pytest.mark.parametrize(("table", "key"), [
    ("audit_events", "seq"),
    ("executions", "id"),
    ("journal_postings", "posting_id"),
    ("journal_entries", "entry_id"),
])
def test_sqlite_refuses_a_replace_of_an_append_only_row(
    store: Store, tmp_path: Path, table: str, key: str
) -> None:
    """REPLACE deletes the stored row without firing its DELETE trigger: refused as well, by
    the row's key and (executions) by its unique (venue, exec_id) under a new id."""
    if store.dialect != "sqlite":
        pytest.skip("PostgreSQL has no REPLACE; its upsert fires the UPDATE trigger")
    _book_one_of_each(store, tmp_path)
    with store.read() as conn:
        before = conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY {key}")).all()
    attempts = [f"INSERT OR REPLACE INTO {table} SELECT * FROM {table} WHERE {key} = "
                f"(SELECT min({key}) FROM {table})",
                f"REPLACE INTO {table} SELECT * FROM {table} LIMIT 1"]
    if table == "executions":  # the same (venue, exec_id) under another id
        cols = [c["name"] for c in sa.inspect(store.engine).get_columns("executions")]
        picked = ", ".join("id + 1000" if c == "id" else f'"{c}"' for c in cols)
        attempts.append(f"INSERT OR REPLACE INTO executions SELECT {picked} FROM executions")
    for sql in attempts:
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.write() as conn:
            conn.exec_driver_sql(sql)
    with store.read() as conn:
        assert conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY {key}")).all() == before
        assert audit.verify_store(conn).ok


def test_driver_errors_are_database_errors_once_the_driver_is_loaded(db_url: str) -> None:
    """store.database_errors names psycopg's errors once a PostgreSQL engine has loaded psycopg
    (an SQLite command never loads it, and then no psycopg error can be raised)."""
    import sqlite3
    import sys

    from oms.store import database_errors

    store = Store.open(db_url, check_schema=False)
    with store.read() as conn:
        conn.exec_driver_sql("SELECT 1")
    assert sqlite3.Error in database_errors()
    if store.dialect == "postgresql":
        import psycopg

        assert psycopg.Error in database_errors()
        with store.read() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            with pytest.raises(database_errors()) as raised:
                raw.execute("SELECT no_such_column FROM no_such_table")
        assert isinstance(raised.value, psycopg.Error)  # the driver's own, not SQLAlchemy's
    else:
        assert "psycopg" not in sys.modules or any(
            getattr(e, "__module__", "").startswith("psycopg") for e in database_errors()
        )
    store.dispose()


def test_the_book_lock_is_one_per_schema_and_a_waiting_writer_is_seen(db_url: str) -> None:
    """PostgreSQL: a writer holding its book's lock for a run (Store.writer, as a pipeline of
    group commits does) keeps the writers of its own book waiting, and sees them waiting
    (book_lock_wanted); a book in another schema of the same database neither waits for it
    nor counts as waiting (the lock used to be one for the whole database)."""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's advisory lock; SQLite holds no lock between transactions")
    database = db_url.split("?", maxsplit=1)[0].replace("+psycopg", "")
    urls = (db_url, db_url, _pg_url(database))
    mine, same, other = (Store.open(u, check_schema=False) for u in urls)
    wrote = {name: threading.Event() for name in ("same", "other")}

    def write(store: Store, name: str) -> None:
        with store.write():
            wrote[name].set()

    with mine.writer(), mine.read() as rconn:
        assert not mine.book_lock_wanted(rconn)
        elsewhere = threading.Thread(target=write, args=(other, "other"))
        elsewhere.start()
        elsewhere.join(30)
        assert wrote["other"].is_set()  # another book's writer is not kept waiting
        assert not mine.book_lock_wanted(rconn)
        waiter = threading.Thread(target=write, args=(same, "same"))
        waiter.start()
        deadline = time.monotonic() + 30
        while not mine.book_lock_wanted(rconn):
            assert time.monotonic() < deadline, "the waiting writer was never seen"
            time.sleep(0.01)
        assert not wrote["same"].is_set()  # it waits for the run
    waiter.join(30)
    assert wrote["same"].is_set()  # and goes once the run ends
    for s in (mine, same, other):
        s.dispose()


def test_an_interrupt_inside_a_copy_closes_the_connection_instead_of_waiting(
    store: Store,
) -> None:
    """PostgreSQL: Ctrl-C in the middle of a COPY (exec import's bulk insert) could leave the
    connection inside the COPY, where the ROLLBACK after it waited forever for the rest of the
    data, with the session holding the book lock: the command hung and every other writer
    waited (found by an interruption audit: 1 in 4 tries). bulk_insert now closes the
    connection on an interrupt (the server rolls back and frees the lock). Here the interrupt
    comes from the rows themselves, part way through; nothing is written, the connection is
    discarded, and the next write goes through."""
    if store.dialect != "postgresql":
        pytest.skip("COPY is PostgreSQL's; SQLite's executemany has no such state")

    def rows() -> Iterator[tuple[Any, ...]]:
        for i in range(1000):
            if i == 500:
                raise KeyboardInterrupt
            yield (f"X{i}", "24/7", "USD", "0.01", "1", False, "2026-11-25 15:00:00+00", "t")

    columns = [c.name for c in instruments.columns]
    seen: list[Any] = []

    def interrupted() -> None:
        with store.write() as conn:
            seen.append(conn.connection.driver_connection)
            bulk_insert(conn, instruments, columns, rows())

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert seen[0].closed  # discarded, not rolled back and returned to the pool
    with store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(instruments)).scalar() == 0
    other = Store.open(store.engine.url.render_as_string(hide_password=False))
    with other.write() as conn:  # the book lock is free
        conn.exec_driver_sql("SELECT 1")
    other.dispose()


def _behind_an_empty_schema(db_url: str) -> tuple[Store, str, str]:
    """PostgreSQL: a Store on the book of `db_url` whose search path begins with a new, empty
    schema (as an app role's own schema on `"$user", public`); with the book's schema and the
    empty one. Skips on SQLite."""
    found = schema_of(db_url)
    if found is None:
        pytest.skip("PostgreSQL's schemas")
    conninfo, schema = found
    empty = f"e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{empty}"')
    return Store.open(schema_url(conninfo, f"{empty}%2C{schema}")), schema, empty


def test_the_book_lock_follows_the_book_s_tables_not_the_search_path(
    store: Store, db_url: str
) -> None:
    """PostgreSQL: a connection whose search path begins with another, empty schema (an app
    role with a schema of its own on `"$user", public`) works the same book and must take the
    same lock. The key came from current_schema(), so such writers did not wait for each
    other and raced for ids (a re-review: 8 of 40 deposits failed on a duplicate key)."""
    other, _, empty = _behind_an_empty_schema(db_url)
    with other.read() as conn:
        assert conn.exec_driver_sql("SELECT current_schema()").scalar() == empty
        assert conn.execute(sa.select(sa.func.count()).select_from(audit_events)).scalar()
    wrote = threading.Event()

    def deposit() -> None:
        with other.write():
            wrote.set()

    with store.writer(), store.read() as rconn:
        waiter = threading.Thread(target=deposit)
        waiter.start()
        deadline = time.monotonic() + 30
        while not store.book_lock_wanted(rconn):
            assert time.monotonic() < deadline, "the other writer did not wait for the lock"
            time.sleep(0.01)
        assert not wrote.is_set()
    waiter.join(30)
    assert wrote.is_set()
    other.dispose()


def test_a_backup_through_a_search_path_that_begins_elsewhere_holds_the_book(
    store: Store, db_url: str, tmp_path: Path
) -> None:
    """PostgreSQL: backup create run by a role whose own (empty) schema comes first on its
    search path dumped that empty schema (pg_dump --schema current_schema()), and reported
    success: a backup that could not restore the book (a re-review). It dumps the schema that
    holds the book's tables (store.book_schema), as the book lock and `db grants` use."""
    other, schema, _ = _behind_an_empty_schema(db_url)
    with other.read() as conn:
        assert book_schema(conn) == schema
    info = backup.create(other, Ctx("ops", datetime(2026, 11, 25, 15, tzinfo=UTC)),
                         tmp_path / "b.tar")  # fmt: skip
    assert info.manifest["schema"] == schema
    assert info.manifest["tables"]["audit_events"] >= 1
    other.dispose()


@pytest.mark.parametrize("pad", ["\t", "\n", " \t\r\n", "\u00a0", "\u3000 "])
def test_a_legacy_reference_padded_with_any_whitespace_is_found_again(
    store: Store, pad: str
) -> None:
    """A deposit booked before references were trimmed keeps its padding in the journal; its
    retry, trimmed, is found again whatever the padding (SQL's trim took spaces only: a tab
    or line end padded reference was booked a second time)."""
    ctx = Ctx("t", datetime(2026, 11, 24, 15, tzinfo=UTC))
    book.open_account(store, ctx, make_account("L1", "USD", None, "cash", None))
    legacy = ledger.deposit("L1", "USD", Decimal("100"), ctx.now.date(), f"{pad}W-7{pad}")
    with store.write() as conn:  # as an older tieout booked it: untrimmed
        (entry_id,) = book.post_entries(conn, ctx, [legacy])
    again = book.deposit(store, ctx, "L1", Decimal("100"), f"W-7{pad}")
    assert (again.duplicate, again.entry_id, again.balance.balance) == (
        True, entry_id, Decimal("100"))
    inner = book.deposit(store, ctx, "L1", Decimal("100"), f"W{pad}7")  # not padding: another
    assert (inner.duplicate, inner.balance.balance) == (False, Decimal("200"))


def _init_racer(url: str, start: Any, said: Any) -> None:
    store = Store.open(url, check_schema=False)
    with store.read() as conn:  # connected, and what an init imports loaded
        conn.exec_driver_sql("SELECT 1").all()
    alembic_config()
    start.wait(60)
    try:
        said.put(repr(store.init("deploy")))
    except Exception as exc:  # what the racer met, for the assertion
        said.put(f"{type(exc).__name__}: {exc}")


def test_two_inits_of_one_new_database_at_once_make_the_schema_once(db_url: str) -> None:
    """Two deploy jobs starting together (a race audit): both made the schema, and one failed
    with a duplicate key of PostgreSQL's catalogue (8 of 8 times), or "database is locked" at
    once on SQLite (7 of 8). Init takes the book's lock: the second waits, and finds the
    schema made."""
    spawn = multiprocessing.get_context("spawn")
    start, said = spawn.Barrier(2), spawn.Queue()
    procs = [spawn.Process(target=_init_racer, args=(db_url, start, said)) for _ in range(2)]
    for p in procs:
        p.start()
    answers = sorted(said.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(60)
    assert answers == sorted([repr((None, HEAD)), repr((HEAD, HEAD))]), answers
    store = Store.open(db_url)
    with store.read() as conn:
        upgrades = conn.execute(
            sa.select(sa.func.count())
            .select_from(audit_events)
            .where(audit_events.c.action == "schema.upgrade")
        ).scalar()
        assert audit.verify_store(conn).ok
    store.dispose()
    assert upgrades == 1
