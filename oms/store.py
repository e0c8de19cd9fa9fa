"""The store adapter: engines for SQLite and PostgreSQL, the schema check, the book lock and bulk
writes. The only module of oms that opens database connections.

Every write is one transaction that first takes the book lock (BEGIN IMMEDIATE on SQLite, a
transaction-scoped advisory lock on PostgreSQL, one per book: book_lock_key of the schema
that holds its tables): writers are serialised, so the audit chain and the ids tieout assigns
itself never race. A run of write transactions that no other writer may
come between (the pipelined group commit of `order submit --file`) uses Store.writer, which on
PostgreSQL holds the same lock at session level for the run, and gives way between its
transactions to a writer waiting for it (book_lock_wanted). Readers are never blocked
(WAL on SQLite, MVCC on PostgreSQL).

Connections are pooled for the life of the Store (a process running many transactions, such as
`order submit --file`, the scheduler or a benchmark, opens one connection, not one per
transaction: on SQLite, closing the last connection also checkpoints the WAL into the database
and removes it, an fsync of its own). A Store made by `open` releases its pool when it is
garbage-collected; a forked child never uses its parent's connections (they are discarded at
checkout), and a connection that sat idle in the pool is pinged before use, so a database
restarted meanwhile costs a reconnect, not a failed command.

Durability: an acknowledged commit survives a power cut. PostgreSQL with its own settings
(fsync on, synchronous_commit on: the defaults; `tieout` does not change them). SQLite in WAL
mode with synchronous=FULL, set on every connection: each COMMIT syncs the WAL to disk before it
returns. (synchronous=NORMAL in WAL mode syncs only at checkpoints: a commit survives a crash of
the process but may be lost in a power cut, so it is not used.)
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
import weakref
import zlib
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Engine, Table, create_engine, event, func, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.pool import QueuePool

import migrations
from oms.errors import COMMIT_UNKNOWN, UNVERIFIED, BadInput, DatabaseNotReady

if TYPE_CHECKING:
    import polars as pl


def driver_errors(name: str) -> tuple[type[Exception], ...]:
    """The drivers' own exception class `name` (a DBAPI name: Error, IntegrityError, ...):
    sqlite3's, and psycopg's once psycopg is loaded (by a PostgreSQL engine): before that none
    of its errors can be raised, and a command on SQLite does not import it (about 60 ms of its
    start-up). Called in an `except` clause, when an exception is matched."""
    pg = sys.modules.get("psycopg")
    sqlite: type[Exception] = getattr(sqlite3, name)
    return (sqlite,) if pg is None else (sqlite, getattr(pg, name))


def database_errors() -> tuple[type[Exception], ...]:
    """The database failing a statement: through SQLAlchemy, or from the driver itself (the
    bulk paths write on the raw connection: executemany, pipelines, COPY)."""
    return (DBAPIError, *driver_errors("Error"))


def database_reason(exc: BaseException) -> str:
    """The first line of what the database said, without SQLAlchemy's wrapping; for a commit
    whose outcome is unknown (commit_unknown), said so."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    reason = text.splitlines()[0] if text else type(exc).__name__
    if commit_unknown(exc):
        reason += f" ({COMMIT_UNKNOWN})"
    return reason


def commit_unknown(exc: BaseException) -> bool:
    """Whether `exc` is a PostgreSQL connection lost while a transaction committed (marked by
    Store.write): the server may have committed it before the connection went, so "nothing
    was changed" would be a guess."""
    return bool(getattr(exc, "tieout_commit_unknown", False))


@contextmanager
def transaction(conn: Connection) -> Iterator[None]:
    """`conn.begin()`, whose COMMIT, when a PostgreSQL connection is lost during it, marks the
    error (commit_unknown): the server may have committed before the connection went. Every
    write transaction begins here (Store.write, an order file's group commits)."""
    committing = False
    try:
        with conn.begin():
            yield
            committing = True  # the body is done: leaving the block commits
    except database_errors() as exc:
        if committing and conn.dialect.name == "postgresql" and _lost_at_commit(exc):
            exc.tieout_commit_unknown = True  # type: ignore[attr-defined]
        raise


_MEMO = "tieout_tx_memo"
_T = TypeVar("_T")


def tx_memo(conn: Connection) -> dict[Any, Any]:
    """What the current transaction of `conn` has read already and may read again without
    asking the database: values only it could change (an instrument, settings), which the
    business event's steps would otherwise each read again (three reads of the instrument and
    two of the settings in each drop-copy message). Bound to the transaction object: a new
    transaction, on this connection or another, starts with an empty memo; outside a
    transaction there is none kept (an empty dict each time). A write of what is kept clears
    it (`forget`)."""
    tx = conn.get_transaction()
    if tx is None:
        return {}
    kept = conn.info.get(_MEMO)
    if kept is None or kept[0] is not tx:
        kept = conn.info[_MEMO] = (tx, {})
    memo: dict[Any, Any] = kept[1]
    return memo


def remembered(conn: Connection, key: Hashable, read: Callable[[], _T]) -> _T:
    """`read()`, once in the current transaction of `conn` (tx_memo, under `key`); what it
    raises is not kept."""
    memo = tx_memo(conn)
    if key in memo:
        found: _T = memo[key]
        return found
    value = memo[key] = read()
    return value


def forget(conn: Connection) -> None:
    """Empty the transaction's memo (tx_memo): the caller wrote what it may hold."""
    conn.info.pop(_MEMO, None)


def _lost_at_commit(exc: BaseException) -> bool:
    """A failure of a PostgreSQL COMMIT with no answer from the server (no SQLSTATE: the
    connection broke). An error the server sent (a serialization failure, a deferred
    constraint) means it rolled the transaction back: its outcome is known."""
    orig = getattr(exc, "orig", exc)
    return getattr(orig, "sqlstate", None) is None


DEFAULT_DB = "sqlite:///tieout.db"
BOOK_LOCK_CLASS = 0x7469656F  # "tieo": the high 32 bits of the book lock's key


def book_lock_key(schema: str) -> int:
    """The book lock's advisory key (PostgreSQL) for the book in `schema`: one lock per book,
    so that books in other schemas of the database (tests run each in one) neither wait for
    nor stand in for it. High 32 bits BOOK_LOCK_CLASS, low 32 bits the schema name's CRC-32."""
    return (BOOK_LOCK_CLASS << 32) | zlib.crc32(schema.encode())


PING_AFTER_IDLE_S = 1.0  # a pooled connection idle longer than this is pinged before use
POOL_SIZE = 4  # connections kept open per Store (more are opened, and closed, when needed)


def _guard_pool(engine: Engine, ping: str) -> None:
    """Pool hygiene: a connection made in another process (before a fork) is never used; one
    that sat idle in the pool for more than PING_AFTER_IDLE_S is pinged first (a failed ping
    makes the pool open a fresh connection). A connection in steady use is not pinged."""

    @event.listens_for(engine, "connect")
    def _on_connect(_dbapi_conn: Any, record: Any) -> None:
        record.info["pid"] = os.getpid()

    # A forked child forgets the parent's pooled connections without closing them: closing a
    # socket or file the parent still uses (psycopg: its session) would break the parent.
    ref = weakref.ref(engine)

    def _after_fork_in_child() -> None:
        forked = ref()
        if forked is not None:
            forked.dispose(close=False)

    os.register_at_fork(after_in_child=_after_fork_in_child)

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info["idle_since"] = time.monotonic()
            record.info.pop("write", None)  # Store.write's flag is per checkout
            record.info.pop(_MEMO, None)  # (and a transaction's memo: not kept alive idle)

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, proxy: Any) -> None:
        if record.info.get("pid") != os.getpid():
            record.dbapi_connection = proxy.dbapi_connection = None
            raise DisconnectionError("connection made in another process")
        idle = record.info.pop("idle_since", None)
        if idle is not None and time.monotonic() - idle > PING_AFTER_IDLE_S:
            try:
                cur = dbapi_conn.cursor()
                cur.execute(ping)
                cur.close()
                dbapi_conn.rollback()  # psycopg began a transaction for the ping
            except Exception as exc:
                raise DisconnectionError(str(exc)) from exc


def resolve_url(cli_value: str | None) -> str:
    return cli_value or os.environ.get("TIEOUT_DB") or DEFAULT_DB


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise BadInput("--db", f"{url!r} is not a database URL") from None
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url,
            poolclass=QueuePool,
            pool_size=POOL_SIZE,
            connect_args={"timeout": SQLITE_LOCK_WAIT, "check_same_thread": False},
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # tieout emits BEGIN itself, below
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")  # each commit synced: see the module doc
            cur.execute("PRAGMA cache_size=-131072")  # 128 MiB: large imports stay in memory
            cur.close()

        _guard_pool(engine, "SELECT 1")

        @event.listens_for(engine, "checkout")
        def _on_checkout(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
            # a connection back from an AUTOCOMMIT checkout may have been reset by SQLAlchemy
            # to the driver's implicit transactions: tieout emits BEGIN itself
            if dbapi_conn is not None and dbapi_conn.isolation_level is not None:
                dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            if conn.info.get("write"):
                _begin_immediate(conn.connection.dbapi_connection)
            else:
                conn.exec_driver_sql("BEGIN")

        return engine
    if parsed.get_backend_name() == "postgresql":
        engine = create_engine(url, poolclass=QueuePool, pool_size=POOL_SIZE)
        _guard_pool(engine, "SELECT 1")
        return engine
    raise BadInput("--db", f"{url!r}: tieout supports sqlite:// and postgresql+psycopg:// URLs")


SQLITE_LOCK_WAIT = 60.0  # seconds a writer waits for SQLite's write lock (the busy timeout)
_LOCK_TRY_MS = 200  # ... in tries this long, between which Ctrl-C and SIGTERM are seen


class LockWaitStopped(sqlite3.OperationalError):
    """A wait for SQLite's write lock given up at a signal (stop_lock_waits): nothing began."""


_STOP_WAITING: list[bool] = [False]


def stop_lock_waits(_signum: int = 0, _frame: object = None) -> None:
    """Give up the lock waits of this process from now on (a signal handler: an order file's
    writer process, whose command was interrupted, writes no group that has not begun)."""
    _STOP_WAITING[0] = True


def _begin_immediate(raw: Any) -> None:
    """BEGIN IMMEDIATE (SQLite's write lock), waiting up to SQLITE_LOCK_WAIT for another
    writer: in short tries, since Python sees a signal only when SQLite's C call returns, and
    the busy handler's one wait of 60 s kept Ctrl-C from stopping a command that waited."""
    deadline = time.monotonic() + SQLITE_LOCK_WAIT
    raw.execute(f"PRAGMA busy_timeout = {_LOCK_TRY_MS}")
    try:
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                if _STOP_WAITING[0]:
                    raise LockWaitStopped(
                        "database is locked: the wait for the write lock was stopped"
                    ) from None
    finally:
        raw.execute(f"PRAGMA busy_timeout = {int(SQLITE_LOCK_WAIT * 1000)}")


def alembic_config(connection: Connection | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    cfg.attributes["connection"] = connection
    return cfg


def schema_revisions(conn: Connection) -> tuple[str | None, str | None]:
    """(current revision of the database: what alembic recorded in alembic_version, None if
    nothing; head revision of this code: migrations.HEAD, which a test holds equal to alembic's
    head). Read without alembic: every command checks the schema, and importing alembic and
    parsing its script directory took about 75 ms of each."""
    if not inspect(conn).has_table("alembic_version"):
        return None, migrations.HEAD
    rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars()
    found = [str(v) for v in rows if v is not None]  # (NULL: no revision, as alembic reads it)
    # alembic keeps one row per head: more than one is a branched schema, never this code's
    current = found[0] if len(found) == 1 else ",".join(sorted(found)) or None
    return current, migrations.HEAD


class Store:
    """A database holding a tieout book."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._lock_key: int | None = None  # PostgreSQL: book_lock_key of the schema, once read
        _STORES.add(self)

    @classmethod
    def open(cls, url: str, *, check_schema: bool = True) -> Store:
        store = cls(make_engine(url))
        # the pool's connections are closed when the Store is no longer used, even if no one
        # calls dispose (a command run in-process, as the CLI tests do, must not leave them)
        weakref.finalize(store, store.engine.dispose)
        if check_schema:
            store.require_schema()
        return store

    @property
    def in_memory(self) -> bool:
        """An SQLite database held in this process's memory (`:memory:`, or a URI such as
        `file::memory:`, `file:name?mode=memory` or `?vfs=memdb`): it lives only through this
        process's connections (closing the last one destroys it), and another process cannot
        reach it."""
        url = self.engine.url
        if self.dialect != "sqlite":
            return False
        database = url.database or ""
        return (
            database in ("", ":memory:")
            or database.startswith("file::memory:")
            or url.query.get("mode") == "memory"
            or url.query.get("vfs") == "memdb"
        )

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def _connect(self) -> Connection:
        try:
            return self.engine.connect()
        except OperationalError as exc:
            raise DatabaseNotReady(self.url, None, None).with_reason(str(exc.orig)) from None

    def require_schema(self, *, at_least: str | None = None) -> None:
        """The book's schema is this code's (migrations.HEAD), else DatabaseNotReady (exit 1:
        `tieout init`). `at_least`: a revision from which an older schema is enough too (for
        `tieout login`, whose tables stand as they are since then: an operator-mode book an
        upgraded tieout has not yet migrated needs an admin's session to run `init`)."""
        if self.dialect == "sqlite":
            db = self.engine.url.database
            if db and db != ":memory:" and not Path(db).exists():
                raise DatabaseNotReady(self.url, None, None)
        with self._connect() as conn:
            current, head = schema_revisions(conn)
        if current == head:
            return
        if (
            at_least is not None
            and current is not None
            and head is not None
            and current.isdigit()
            and len(current) == len(head)
            and at_least <= current < head
        ):
            return
        raise DatabaseNotReady(self.url, current, head)

    def init(
        self, actor: str = "tieout", now: datetime | None = None
    ) -> tuple[str | None, str | None]:
        """Create or upgrade the schema, and record the upgrade in the audit trail, in one
        transaction. Returns (revision before, revision after)."""
        from alembic import command

        from oms import audit

        # under the book's lock (made or not: the current schema's on PostgreSQL): two inits of
        # one database at once (two deploy jobs) made the schema twice, and one failed with a
        # duplicate key of PostgreSQL's catalogue, or "database is locked" at once on SQLite;
        # the second now waits, and finds the schema made
        with self.write() as conn:
            before, head = schema_revisions(conn)
            if before is not None and (before.endswith(UNVERIFIED) or not migrations.known(before)):
                # a failed restore, or a schema a newer tieout made (alembic would fail with a
                # traceback: it cannot find the revision)
                raise DatabaseNotReady(self.url, before, head)
            command.upgrade(alembic_config(conn), "head")
            after, _ = schema_revisions(conn)
            if before != after:
                audit.append(
                    conn,
                    at=now or datetime.now(UTC),
                    actor=actor,
                    action="schema.upgrade",
                    entity_type="database",
                    entity_id="schema",
                    payload={"from": before, "to": after},
                )
        return before, after

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read: one snapshot of the book for all its statements (PostgreSQL: REPEATABLE
        READ, so a writer committing between two of them is not half seen; SQLite: a read
        transaction sees one snapshot already)."""
        with self._connect() as conn:
            conn.info["write"] = False  # pooled: the flag of an earlier checkout is reset
            with conn.begin():
                if self.dialect == "postgresql":
                    conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One business event: a transaction holding the book lock; commits or rolls back whole.
        A PostgreSQL connection lost during its COMMIT is marked (commit_unknown): the server
        may have committed before the connection went. (SQLite's commit is local: when it
        fails, the transaction did not commit.)"""
        with self._connect() as conn:
            conn.info["write"] = True
            with transaction(conn):
                if self.dialect == "postgresql":
                    key = self.lock_key(conn)
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({key})")
                yield conn

    def lock_key(self, conn: Connection) -> int:
        """The book lock's key (PostgreSQL): that of the schema that holds the book's tables
        (where the search path finds its audit trail), whatever the role and its search path
        (an app role with a schema of its own first on `"$user", public` has another
        current_schema() than the owner, and must take the same lock). Read once per Store
        once the book exists; before (a book not made yet), the current schema's."""
        if self._lock_key is not None:
            return self._lock_key
        schema, made = _book_schema(conn)
        key = book_lock_key(schema)
        if made:
            self._lock_key = key
        return key

    @contextmanager
    def writer(self) -> Iterator[Connection]:
        """A connection for a run of write transactions (`with conn.begin():` each), such as a
        pipeline of group commits. On PostgreSQL it holds the book lock (a session-level
        advisory lock) from start to end, so that no other writer comes between its
        transactions (which need no lock of their own; a session holding the lock is granted
        it again); the caller ends the run when another writer waits (`book_lock_wanted`).
        On SQLite each transaction takes the write lock (BEGIN IMMEDIATE) and
        releases it at its commit, so another writer may commit between two of them: the
        caller has to find out (PRAGMA data_version)."""
        with self._connect() as conn:
            conn.info["write"] = True
            if self.dialect != "postgresql":
                yield conn
                return
            key = self.lock_key(conn)
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({key})")
            conn.commit()
            try:
                yield conn
            finally:
                try:
                    conn.rollback()
                    conn.exec_driver_sql(f"SELECT pg_advisory_unlock({key})")
                    conn.commit()
                except Exception:  # closing the session releases the lock
                    conn.invalidate()

    def book_lock_wanted(self, conn: Connection) -> bool:
        """Whether another session of this database waits for the book lock (PostgreSQL; on
        SQLite no lock is held between transactions: False). A pipeline that holds the lock
        for its run (`writer`) asks between its groups and gives way, so that a kill switch,
        a withdrawal or a drop copy waits for one group, not for the whole file."""
        if self.dialect != "postgresql":
            return False
        key = self.lock_key(conn)
        found = conn.exec_driver_sql(_LOCK_WANTED_SQL, (key >> 32, key & 0xFFFFFFFF)).scalar()
        return bool(found)

    def dispose(self) -> None:
        self.engine.dispose()


def book_schema(conn: Connection) -> str:
    """PostgreSQL: the schema that holds the book's tables (where the search path finds its
    audit trail), else (no book yet) the current schema. Not current_schema() alone: a role
    with a schema of its own first on `"$user", public` has that one as its current schema
    while it works the book in public."""
    return _book_schema(conn)[0]


def _book_schema(conn: Connection) -> tuple[str, bool]:
    """book_schema, and whether the book's tables are there (False: the current schema's)."""
    found = conn.exec_driver_sql(_BOOK_SCHEMA_SQL).scalar()
    if found is not None:
        return str(found), True
    current = conn.exec_driver_sql("SELECT current_schema()").scalar()
    return str(current or ""), False


# the schema of the table the search path finds as audit_events (NULL: none yet)
_BOOK_SCHEMA_SQL = (
    "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.oid = to_regclass('audit_events')"
)

# pg_locks shows an advisory lock on a bigint key as classid (its high 32 bits) and objid (its
# low 32 bits), objsubid 1
_LOCK_WANTED_SQL = (
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    " AND classid = %s::oid AND objid = %s::oid AND objsubid = 1 AND database ="
    " (SELECT oid FROM pg_database WHERE datname = current_database()))"
)


_STORES: weakref.WeakSet[Store] = weakref.WeakSet()  # every Store of this process in use


def dispose_all() -> None:
    """Close the idle pooled connections of every Store of this process (they are opened again
    when next needed) but those of in-memory databases, which they hold: before a fork whose
    child uses SQLite (no connection may cross a fork; the command line also has the Store of
    its operator check open)."""
    for store in list(_STORES):
        if not store.in_memory:  # its connections are the database
            store.engine.dispose()


def fsync_path(path: Path) -> None:
    """fsync a file, or a folder (which makes a file created or renamed in it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def next_id(conn: Connection, table: Table, column: str) -> int:
    """The next free id of a table whose ids tieout assigns (call under the book lock)."""
    query = _MAX_ID.get((table.name, column))
    if query is None:
        query = _MAX_ID[(table.name, column)] = select(func.max(table.c[column]))
    value = conn.execute(query).scalar()
    return int(value or 0) + 1


_MAX_ID: dict[tuple[str, str], Any] = {}  # next_id's statements, built once (SQLAlchemy caches)


def _frame(rows: Iterable[Sequence[Any]] | pl.DataFrame) -> pl.DataFrame | None:
    """`rows` if they are a polars frame (polars is imported only by what makes frames: not by
    every command's start-up, so a process without polars has none)."""
    polars = sys.modules.get("polars")
    return rows if polars is not None and isinstance(rows, polars.DataFrame) else None


def bulk_insert(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]] | pl.DataFrame,
) -> None:
    """Insert many rows given in storage form (text for decimals, dates and times, as the column
    types store them on SQLite; PostgreSQL parses the same text exactly), inside the caller's
    transaction: COPY on PostgreSQL (a polars frame goes over as CSV in one piece), executemany
    on SQLite."""
    cols = ", ".join(f'"{c}"' for c in columns)
    raw = conn.connection.driver_connection
    if raw is None:
        raise RuntimeError("no DBAPI connection")
    frame = _frame(rows)
    if conn.dialect.name == "postgresql":
        try:
            if frame is not None:
                sql = f'COPY "{table.name}" ({cols}) FROM STDIN WITH (FORMAT csv)'
                with raw.cursor() as cur, cur.copy(sql) as copy:
                    copy.write(frame.select(columns).write_csv(include_header=False))
                return
            sql = f'COPY "{table.name}" ({cols}) FROM STDIN'
            with raw.cursor() as cur, cur.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
        except Exception:
            raise
        except BaseException:
            # interrupted (Ctrl-C) in the middle of the COPY: the connection may be left inside
            # it, where the ROLLBACK that follows would wait forever for the rest of the data
            # while the session keeps the book lock (every other writer waiting). Closing the
            # connection ends the session: the server rolls the transaction back and frees it
            conn.invalidate()
            raise
        return
    marks = ", ".join("?" for _ in columns)
    cur = raw.cursor()
    try:
        data = rows if frame is None else frame.select(columns).iter_rows()
        cur.executemany(f'INSERT INTO "{table.name}" ({cols}) VALUES ({marks})', data)
    finally:
        cur.close()
