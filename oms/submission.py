"""Order submission, the OMS's hot path: one order (`order submit`) or a file of them (`order
submit --file`), with the same code and therefore the same decisions.

Orders are taken in *groups*, each one transaction holding the book lock: a single submission
is a group of one; a file is cut into groups of `CHUNK` orders (group commit). Inside a group:

- what the decisions need is read once, with plain indexed queries (no Order JSON parsed): the
  settings (limits, kill switches, paper terms), the next ids, and per account on first use its
  cash per currency (the sum of its cash postings), its live orders (reserved cash per
  currency, open quantities per symbol), per symbol its position (the sum of its fills;
  corrections and busts are resolved by oms.lots when there are any), the number of its
  orders in the rate window, and the orders
  with the same symbol, side and type in the duplicate window (the only duplicate candidates);
  on PostgreSQL a single submission sends these reads in two pipelines (one round trip for
  those that need no setting, one for the rate count and the candidates, which need windows);
  cash and positions are read as a running sum kept up to a row id plus the rows after it
  (table running_sums; executions and postings are append-only with growing ids): a single
  submission that read many rows after the kept sum keeps a new one with its rows, so an
  account's order costs the same with ten or a million executions behind it;
- each order is decided by the pure core (oms.orders, oms.risk, the paper venue) against that
  state, and the state is then moved on in memory exactly as reading it again from the database
  would find it (cash by the cash postings written, reservations and open quantities by a live
  order's leaves, the position by its fill, the rate count by one, the candidates by the order);
- every row (orders, client ids, order events, executions, journal entries and postings, audit
  events) is collected, in the form the database stores it, and written at the end of the group
  in one bulk insert per table.

An order that cannot be taken (unknown account or instrument, bad terms, a client order id
used with other terms) writes nothing and leaves the state as it was, so the rest of the group
goes on: the equivalent of a savepoint per order, without one. A group commits whole or not at
all; its acknowledgements are given only after its commit.

A file of more than one group is pipelined (`_pipeline`): the state is read once, on a read
connection, and carried in memory from group to group (with the audit chain's head), and the
groups are written on a connection of their own, by a writer that inserts and commits group N
while group N+1 is decided, so that the other core does that work: on PostgreSQL a thread (the
server works meanwhile), on SQLite a forked process (_ProcessWriter: a thread would hold the
GIL, see _Inline). Group N is acknowledged once its commit is known, before group N+1 goes to
the writer; groups commit in order. No other writer may come between two groups: on
PostgreSQL the writer's connection holds the book lock for the whole pipeline; on SQLite (whose
write lock ends at each commit) each group checks first, under the lock, that no other
connection committed since the pipeline began (PRAGMA data_version) and that the audit trail
ends where its chain starts. A group that fails either check, or whose rows the database
refuses, is dropped with everything decided after it, and done again as the code without a
pipeline does it (afresh, or one order per transaction), and a new pipeline starts after it.
"""

from __future__ import annotations

import dataclasses
import gc
import marshal
import multiprocessing
import os
import pickle
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, localcontext
from functools import partial
from itertools import takewhile
from typing import Any, Protocol, cast

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from oms import audit, book, ledger, lots, orders, paper, risk, risk_limits
from oms import executions as executions_book
from oms.book import Ctx
from oms.calendars import (
    DEFAULT_SETTLEMENT_DAYS,
    canonical_exchange,
    settlement_date,
    trade_date,
)
from oms.errors import BadInput, NotFound, Refused
from oms.interrupts import die_with, interrupts_held
from oms.order_book import (
    EXECUTION_COLUMNS,
    PAPER,
    REPLACE_MAY_BE_OPEN,
    OrderRequest,
    RiskRejected,
    Submitted,
    Total,
    charge_held,
    command_payload,
    expiry_due,
    fill_booking,
    find,
    find_many,
    gtd_can_trade,
    load_state,
    market_state,
    order_reservation,
    order_state,
    places_text,
    reservation_price,
    standing,
    submitted_text,
    total_of,
)
from oms.orders import ClientOrderId, Order, OrderId, OrderStatus, SubmitOrder, Transition
from oms.schema import PRICED_EACH_INDEX, PRICED_EACH_WHERE, ROUTED_WHERE
from oms.store import (
    Store,
    bulk_insert,
    dispose_all,
    driver_errors,
    stop_lock_waits,
    transaction,
)
from oms.values import (
    ZERO,
    AccountId,
    AccountType,
    OrdType,
    Side,
    Symbol,
    TimeInForce,
    Venue,
    dec_str,
    utc_iso,
)

CHUNK = 1_000  # orders per transaction in `submit_file`
_ZERO = Decimal(0)
_COPY_FROM = 64  # PostgreSQL: tables with at least this many new rows go by COPY

# the rows a group writes, table by table, in the order they must be inserted (foreign keys)
ORDER_COLUMNS = (
    "order_id",
    "client_order_id",
    "account",
    "symbol",
    "side",
    "type",
    "tif",
    "quantity",
    "limit_price",
    "stop_price",
    "expire_at",
    "venue",
    "status",
    "cum_qty",
    "leaves_qty",
    "avg_px",
    "reject_reason",
    "created_at",
    "updated_at",
    "created_by",
    "state",
)
TABLES: dict[str, tuple[str, ...]] = {
    "executions": ("id", *EXECUTION_COLUMNS),
    "journal_entries": book.ENTRY_COLUMNS,
    "journal_postings": book.POSTING_COLUMNS,
    "orders": ORDER_COLUMNS,
    "order_client_ids": ("account", "client_order_id", "order_id"),
    "order_events": (
        "event_id",
        "order_id",
        "at",
        "actor",
        "event",
        "status",
        "reason",
        "payload",
        "exec_id",
    ),
    "audit_events": audit.AUDIT_COLUMNS,
    "paper_bar_takes": ("symbol", "bar_time", "order_id", "quantity"),
}
# the order totals rows a group moved (inserted or replaced after the rows of TABLES)
TOTALS = "order_totals"


# ---- the database, raw -------------------------------------------------------------------------


class Db:
    """The group's connection at the DBAPI level (the statements here are few and fixed; the
    caller's transaction is the SQLAlchemy one). Placeholders are written `?` and turned into
    `%s` for psycopg. Values come back as the driver gives them: PostgreSQL gives Decimals and
    aware datetimes; SQLite the stored text, turned into them here."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.pg = conn.dialect.name == "postgresql"
        raw = conn.connection.driver_connection
        if raw is None:
            raise RuntimeError("no DBAPI connection")
        self.raw: Any = raw
        self._sql: dict[str, str] = {}
        self._fetched: dict[tuple[str, tuple[Any, ...]], list[Any]] = {}

    statements = 0  # statements sent, all groups of the process (benchmarks read it)

    def _text(self, sql: str) -> str:
        text = self._sql.get(sql)
        if text is None:
            text = self._sql[sql] = sql.replace("?", "%s") if self.pg else sql
        return text

    def prefetch(self, queries: Sequence[tuple[str, Sequence[Any]]]) -> None:
        """PostgreSQL: send the queries in one pipeline (one round trip) and keep their rows for
        `all` to hand out when it is asked the same query with the same parameters (inside the
        transaction, under the book lock: what it would read then). Elsewhere nothing.
        (One multi-statement query with client-side binding costs this process about a fifth
        less CPU, but the server plans every statement anew instead of running psycopg's
        prepared ones: measured slower end to end on a 2-core machine, so not used.)"""
        if not self.pg or not queries:
            return
        Db.statements += len(queries)
        with self.raw.pipeline() as pipeline:
            cursors = []
            for sql, params in queries:
                cur = self.raw.cursor()
                cur.execute(self._text(sql), params, prepare=False if sql in _UNPREPARED else None)
                cursors.append(cur)
            pipeline.sync()
            for (sql, params), cur in zip(queries, cursors, strict=True):
                self._fetched[(sql, tuple(params))] = list(cur.fetchall())
                cur.close()

    def peek(self, sql: str, params: Sequence[Any]) -> list[Any] | None:
        """The rows `prefetch` kept for this query, if it did (left for `all`)."""
        return self._fetched.get((sql, tuple(params)))

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        if self._fetched:
            rows = self._fetched.pop((sql, tuple(params)), None)
            if rows is not None:
                return rows
        Db.statements += 1
        cur = self.raw.cursor()
        try:
            if self.pg and sql in _UNPREPARED:
                cur.execute(self._text(sql), params, prepare=False)
            else:
                cur.execute(self._text(sql), params)
            return list(cur.fetchall())
        finally:
            cur.close()

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = self.all(sql, params)
        return rows[0] if rows else None

    def dec(self, value: Any) -> Decimal:
        return value if self.pg else Decimal(value)

    def opt_dec(self, value: Any) -> Decimal | None:
        return None if value is None else self.dec(value)

    def time(self, value: Any) -> datetime:
        return value.astimezone(UTC) if self.pg else datetime.fromisoformat(value)

    def opt_day(self, value: Any) -> date | None:
        if value is None or self.pg:
            return value  # type: ignore[no-any-return]
        return date.fromisoformat(value)

    def p_time(self, value: datetime) -> Any:
        return value if self.pg else utc_iso(value)

    def p_dec(self, value: Decimal) -> Any:
        return value if self.pg else dec_str(value)

    def keep_sums(self, sums: dict[tuple[str, str, str], tuple[int, Decimal]]) -> None:
        """Keep (insert or replace) running sums: (kind, owner, item) -> (through_id, total)."""
        if not sums:
            return
        Db.statements += 1
        rows = [
            (kind, owner, item, through, total if self.pg else dec_str(total))
            for (kind, owner, item), (through, total) in sums.items()
        ]
        cur = self.raw.cursor()
        try:
            cur.executemany(self._text(_KEEP_SUM_SQL), rows)
        finally:
            cur.close()

    def write(self, rows: dict[str, list[tuple[Any, ...]]]) -> None:
        """Insert the collected rows, table by table in TABLES order: executemany on SQLite;
        on PostgreSQL small sets in one pipeline (one round trip), larger ones by COPY. Then
        the order totals rows (TOTALS: account, symbol, side, open quantity, held and their
        places), inserted or replaced."""
        tables = {t.name: t for t in _tables()}
        totals = rows.get(TOTALS)
        Db.statements += sum(1 for name in TABLES if rows.get(name)) + (1 if totals else 0)
        if not self.pg:  # the rows are in storage form already (Group's converters)
            for name, cols in TABLES.items():
                if rows.get(name):
                    bulk_insert(self.conn, tables[name], cols, rows[name])
            if totals:
                cur = self.raw.cursor()
                try:
                    cur.executemany(_TOTALS_UPSERT_SQL, totals)
                finally:
                    cur.close()
            return
        small = [n for n in TABLES if rows.get(n) and len(rows[n]) < _COPY_FROM]
        if small or totals:
            with self.raw.pipeline(), self.raw.cursor() as cur:
                for name in small:
                    cols = TABLES[name]
                    sql = (
                        f'INSERT INTO "{name}" ({", ".join(cols)}) '
                        f"VALUES ({', '.join(['%s'] * len(cols))})"
                    )
                    cur.executemany(sql, rows[name])
                if totals:  # no foreign keys: the order it goes with may come by COPY below
                    cur.executemany(self._text(_TOTALS_UPSERT_SQL), totals)
        for name, cols in TABLES.items():
            if rows.get(name) and len(rows[name]) >= _COPY_FROM:
                bulk_insert(self.conn, tables[name], cols, rows[name])


def _tables() -> tuple[Any, ...]:
    from oms import schema

    return (
        schema.executions,
        schema.journal_entries,
        schema.journal_postings,
        schema.orders,
        schema.order_client_ids,
        schema.order_events,
        schema.audit_events,
        schema.paper_bar_takes,
    )


# a group's rows carry the same few times (its `now`) many times over: their text is kept
# (equal aware datetimes are the same instant, so the same UTC text)
_TIME_TEXT: dict[datetime, str] = {}


def _sqlite_value(value: Any) -> Any:
    kind = type(value)
    if kind is str or value is None:  # most of a row: as it is
        return value
    if kind is Decimal:
        return dec_str(value)
    if kind is datetime:
        text = _TIME_TEXT.get(value)
        if text is None:
            if len(_TIME_TEXT) > 4096:
                _TIME_TEXT.clear()
            text = _TIME_TEXT[value] = utc_iso(value)
        return text
    if kind is date:
        return value.isoformat()
    return value


def _sqlite_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(map(_sqlite_value, row))


def _same(value: Any) -> Any:
    return value


def _opt_dec_text(value: Decimal | None) -> str | None:
    return None if value is None else dec_str(value)


def _opt_day_text(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True, slots=True)
class Storage:
    """How a group's values go into its rows: as they are for psycopg (Decimal, datetime and
    date are its own types), as the column types store them on SQLite (canonical decimal text,
    UTC time text, ISO dates: what _sqlite_value gives)."""

    dec: Callable[[Decimal], Any]
    opt_dec: Callable[[Decimal | None], Any]
    time: Callable[[datetime], Any]
    day: Callable[[date], Any]
    opt_day: Callable[[date | None], Any]
    row: Callable[[tuple[Any, ...]], tuple[Any, ...]]  # every value of a row of Python values


_PG_STORAGE = Storage(_same, _same, _same, _same, _same, _same)
_SQLITE_STORAGE = Storage(
    dec_str, _opt_dec_text, _sqlite_value, _sqlite_value, _opt_day_text, _sqlite_row
)


# the canonical text of a decimal without trailing fractional zeros, in SQL (SQLite keeps
# decimals as canonical fixed-point text): equal values give equal text
_NORMAL_SQL = (
    "(CASE WHEN instr(quantity, '.') > 0 THEN rtrim(rtrim(quantity, '0'), '.') ELSE quantity END)"
)


def _normal_text(value: Decimal) -> str:
    text = dec_str(value)
    return text.rstrip("0").rstrip(".") if "." in text else text


def _terms_key(
    symbol: str,
    side: Side,
    kind: Any,
    quantity: Decimal,
    limit: Decimal | None,
    stop: Decimal | None,
    tif: Any,
    expire_at: date | None,
) -> tuple[Any, ...]:
    """What the duplicate check compares (decimals hash and compare by value)."""
    return (symbol, side.value, kind.value, quantity, limit, stop, tif.value, expire_at)


# the reads of a group (constants, so that a prefetched query is known again by its text)
# (the settlement cycles too: a single submission that fills reads them, and a query of its
# own for them cost about 0.3 ms an order, 15-20% of its CPU)
_SETTINGS_SQL = "SELECT key, value FROM settings WHERE key LIKE ? OR key LIKE ? OR key LIKE ?"
_SETTINGS_PARAMS = (risk_limits.PREFIX + "%", paper.PREFIX + "%", book.SETTLEMENT_PREFIX + "%")
# order ids are "O" and 8 digits: max(order_id) as text is the highest number up to here
_LAST_ORDER_NUMBER = 99_999_999
_IDS_SQL = (
    "SELECT (SELECT max(order_id) FROM orders), (SELECT max(event_id) FROM order_events),"
    " (SELECT max(id) FROM executions), (SELECT max(entry_id) FROM journal_entries),"
    " (SELECT max(posting_id) FROM journal_postings)"
)
_ACCOUNT_SQL = "SELECT account_id, name, currency, type, tier FROM accounts WHERE account_id = ?"
# Cash and positions are sums over append-only rows whose ids only grow: the sum kept in
# running_sums up to a row id (its through_id), plus the rows after it (see running_sums in
# oms.schema). A single submission that read many rows after it keeps a new sum (KEEP_AFTER).
_CASH, _POSITION = book.RUNNING_CASH, "position"
_SUM_SQL = "SELECT through_id, total FROM running_sums WHERE kind = ? AND owner = ? AND item = ?"
# the cash sum in the currency of an instrument: what a single submission on PostgreSQL
# prefetches before it knows the instrument
_CASH_SUM_OF_SQL = (
    f"SELECT through_id, total FROM running_sums WHERE kind = '{_CASH}' AND owner = ?"
    " AND item = (SELECT currency FROM instruments WHERE symbol = ?)"
)
_CASH_AFTER_SQL = (
    "SELECT amount FROM journal_postings WHERE ledger_account = ? AND currency = ?"
    " AND posting_id > ?"
)
# PostgreSQL sums in the database (exact NUMERIC)
_PG_CASH_AFTER_SQL = (
    "SELECT coalesce(sum(amount), 0), count(*) FROM journal_postings WHERE ledger_account = ?"
    " AND currency = ? AND posting_id > ?"
)
_KEEP_SUM_SQL = (
    "INSERT INTO running_sums (kind, owner, item, through_id, total) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (kind, owner, item) DO UPDATE SET through_id = excluded.through_id,"
    " total = excluded.total"
)
KEEP_AFTER = 64  # rows read after a kept sum that make a single submission keep a new one
# ids of executions after a kept position that make it kept again (SQLite reads them by the
# primary key's range, all accounts' rows after the kept id), and the most it reads that way
KEEP_SCAN = 20_000
SCAN_AT_MOST = 200_000
# the account's order totals (schema.order_totals), and its live buys whose hold is priced each
# time (schema.PRICED_EACH_WHERE, by its index), with the currency they trade in (their
# instrument's): what they reserve is cash in that currency
_TOTALS_SQL = (
    "SELECT t.symbol, t.side, t.open_qty, t.held, t.open_places, t.held_places, i.currency"
    " FROM order_totals t JOIN instruments i ON i.symbol = t.symbol WHERE t.account = ?"
)
_REPLACING = ", ".join(f"'{s}'" for s in REPLACE_MAY_BE_OPEN)  # a replace may be open
_PRICED_EACH = (
    "SELECT orders.symbol, leaves_qty, limit_price, stop_price, i.currency,"
    f" CASE WHEN status IN ({_REPLACING}) THEN state END, venue,"
    " cum_qty, order_id"
    " FROM orders{indexed} JOIN instruments i ON i.symbol = orders.symbol"
    f" WHERE account = ? AND {PRICED_EACH_WHERE}"
)
# by backend (Db.pg): SQLite's planner, without statistics, would walk the account's live
# orders by ix_orders_account_status instead (and INDEXED BY fails loudly if it cannot be used)
_PRICED_EACH_SQL = {
    False: _PRICED_EACH.format(indexed=f" INDEXED BY {PRICED_EACH_INDEX}"),
    True: _PRICED_EACH.format(indexed=""),
}
_TOTALS_UPSERT_SQL = (
    "INSERT INTO order_totals (account, symbol, side, open_qty, held, open_places, held_places)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (account, symbol, side) DO UPDATE SET open_qty = excluded.open_qty,"
    " held = excluded.held, open_places = excluded.open_places,"
    " held_places = excluded.held_places"
)
_STATES_SQL = "SELECT state FROM orders WHERE order_id IN ({})"
_IN_CHUNK = 500  # ids in one IN list
# the orders the rate limit counts: those not rejected (see oms.risk, order_rate)
_RATE_SQL = (
    "SELECT count(*) FROM orders WHERE account = ? AND created_at > ? AND status <> 'rejected'"
)
_INSTRUMENT_SQL = (
    "SELECT symbol, exchange, currency, tick_size, lot_size, restricted FROM instruments"
    " WHERE symbol = ?"
)
_IMMEDIATE = (TimeInForce.IOC, TimeInForce.FOK)
# orders the duplicate check does not compare with: they can no longer trade (canceled or
# expired, an ioc/fok canceled at once among them) or never could (rejected), so the same terms
# again are a new order, not a second click
_NO_DUPLICATE = (OrderStatus.REJECTED, OrderStatus.CANCELED, OrderStatus.EXPIRED)
_BAR_TAKEN_SQL = "SELECT quantity FROM paper_bar_takes WHERE symbol = ? AND bar_time = ?"
_LAST_BAR_SQL = (
    "SELECT close, time, volume FROM market_bars WHERE symbol = ? ORDER BY time DESC LIMIT 1"
)
# an account's executions in a symbol after a row id: by the account's index, or (SQLite, a
# kept sum not far behind) by the primary key's range (`+` keeps SQLite off the account index)
_POSITION_AFTER_SQL = (
    "SELECT side, quantity, exec_type FROM executions WHERE account = ? AND symbol = ? AND id > ?"
)
_POSITION_RANGE_SQL = (
    "SELECT side, quantity, exec_type FROM executions WHERE id > ? AND +account = ? AND +symbol = ?"
)
# PostgreSQL plans this one for its parameters each time (never a generic plan, which cannot
# see that `id > ?` leaves a few rows): the primary key's range or the account's index
_PG_POSITION_AFTER_SQL = (
    "SELECT coalesce(sum(CASE WHEN side = 'buy' THEN quantity ELSE -quantity END), 0),"
    f" count(*) FILTER (WHERE exec_type <> '{lots.FILL}'), count(*)"
    " FROM executions WHERE account = ? AND symbol = ? AND id > ?"
)
_UNPREPARED = frozenset({_PG_POSITION_AFTER_SQL})
_CLIENT_ID_SQL = "SELECT order_id FROM order_client_ids WHERE account = ? AND client_order_id = ?"
# whether the book has routed an order to a venue written so (ix_orders_routed_venue): a
# spelling it has is never refused, so its spellings need not be read
_ROUTED_TO_SQL = f"SELECT 1 FROM orders WHERE venue = ? AND {ROUTED_WHERE} LIMIT 1"
_HEAD_SQL = "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1"
# PostgreSQL: which (account, client order id) pairs are taken, the pairs given as two arrays
_TAKEN_PAIRS_SQL = (
    "SELECT c.account, c.client_order_id, c.order_id FROM order_client_ids c"
    " JOIN unnest(?::text[], ?::text[]) AS w(account, client_order_id)"
    " ON c.account = w.account AND c.client_order_id = w.client_order_id"
)
_PAIRS_CHUNK = 5_000
_EVENT_HASH_SQL = "SELECT hash FROM audit_events WHERE seq = ?"


# ---- the state a group works on ------------------------------------------------------------------


@dataclass(slots=True)
class AccountBook:
    """An account as the risk checks see it, loaded once per group and moved on in memory by
    each order the group takes."""

    info: book.Account
    killed: bool
    # currency -> the sum of its cash postings in it (read when first needed: Group.cash)
    cash: dict[str, Decimal]
    # currency -> cash held for its live buy orders in instruments of that currency
    reserved: dict[str, Decimal]
    open_qty: dict[tuple[str, str], Decimal]  # (symbol, side) -> leaves of live orders
    rate_count: int  # its orders with now - created_at < rate window, not rejected
    # (symbol, side) -> its order_totals row as the group moved it on
    totals: dict[tuple[str, str], Total] = field(default_factory=dict)
    positions: dict[str, Decimal] = field(default_factory=dict)  # symbol -> quantity
    # terms (_terms_key) -> its orders in the duplicate window with them (not _NO_DUPLICATE),
    # oldest first; and the (symbol, side, type) whose orders were all read (a group of many
    # orders)
    candidates: dict[tuple[Any, ...], list[risk.RecentOrder]] = field(default_factory=dict)
    candidates_read: set[tuple[str, str, str]] = field(default_factory=set)
    # a group of many orders: the rows read per terms, made into RecentOrders when an order
    # with those terms comes (most never do: only the terms are compared, not every row), their
    # stored times parsed by parse_time (the Db's)
    unread: dict[tuple[Any, ...], list[tuple[Any, ...]]] = field(default_factory=dict)
    parse_time: Callable[[Any], datetime] = datetime.fromisoformat

    def known(
        self, key: tuple[Any, ...], wide: tuple[str, str, str]
    ) -> list[risk.RecentOrder] | None:
        """The candidates with terms `key` if they are known (read, or all of `wide` read)."""
        found = self.candidates.get(key)
        if found is None and wide in self.candidates_read:
            rows = self.unread.pop(key, ())
            time = self.parse_time
            found = self.candidates[key] = [
                risk.RecentOrder(
                    time(at),
                    key[0],
                    Side(key[1]),
                    qty,
                    OrdType(key[2]),
                    limit,
                    stop,
                    cid,
                    TimeInForce(key[6]),
                    key[7],
                )
                for at, qty, limit, stop, cid in rows
            ]
        return found


@dataclass(frozen=True, slots=True)
class Market:
    instrument: book.Instrument
    state: risk.MarketState


@dataclass(slots=True)
class Outcome:
    """What became of one request: the order (None when none was made), whether it is the
    first order returned for a repeated client order id, and the refusal if any."""

    order: Order | None
    duplicate: bool = False
    error: Exception | None = None


class Group:
    """One transaction's worth of submissions (see the module docstring)."""

    def __init__(
        self,
        conn: Connection,
        ctx: Ctx,
        *,
        bulk: bool = False,
        first: OrderRequest | None = None,
        keep_sums: bool = False,
    ) -> None:
        """`first`: the one order of a single submission, whose reads PostgreSQL is sent in two
        pipelines (those that need no setting, then those that need the windows and the kept
        sums). `keep_sums`: the group writes (flush) in the transaction it reads in, and keeps
        the running sums it found far behind."""
        self.bulk = bulk  # many orders: read per account what they may need, in few queries
        self.keep_sums = keep_sums
        self.kept: dict[tuple[str, str, str], tuple[int, Decimal]] = {}
        self.db = db = Db(conn)
        self.conn, self.ctx, self.now = conn, ctx, ctx.now
        if first is not None and db.pg:
            db.prefetch(self._reads(first))
        stored = {str(k): str(v) for k, v in db.all(_SETTINGS_SQL, _SETTINGS_PARAMS)}
        self.risk_settings = {
            k.removeprefix(risk_limits.PREFIX): v
            for k, v in stored.items()
            if k.startswith(risk_limits.PREFIX)
        }
        self.limits = risk_limits.limits_from(self.risk_settings)
        self.terms = paper.terms_from(stored)
        # (book.settlement_days, read with the group's other settings)
        self.cycles = book.cycles_from(stored.items())
        self.terms_charge = paper.charges(self.terms)  # whether the paper venue charges at all
        ids = db.one(_IDS_SQL)
        self.next_order = int(ids[0][1:]) + 1 if ids[0] else 1
        self.next_event, self.next_exec, self.next_entry, self.next_posting = (
            int(x or 0) + 1 for x in ids[1:]
        )
        # the last execution and posting before the group's own: what a sum kept now covers
        self.last_exec, self.last_posting = self.next_exec - 1, self.next_posting - 1
        self.accounts: dict[str, AccountBook] = {}
        self.markets: dict[str, Market] = {}
        self.last: dict[str, tuple[Decimal, datetime] | None] = {}
        self.volume: dict[str, Decimal] = {}  # the last bar's volume (ioc/fok liquidity)
        # what the paper venue has given out of a bar's share: (symbol, bar time) -> quantity
        self.taken: dict[tuple[str, datetime], Decimal] = {}
        self.settle: dict[str, tuple[date, date]] = {}  # exchange -> (trade, settle) dates
        self.client_ids: dict[tuple[str, str], str] = {}  # known in this group (or looked up)
        self.looked_up: set[str] = set()  # accounts whose client ids of the group were fetched
        self.made: dict[str, Order] = {}  # orders made in this group (a pipeline: see take)
        # the external venues' spellings (executions_book.venue_spellings), read when the group
        # first routes an order, with those its own orders add
        self.venues: dict[str, set[str]] | None = None
        self.routed_to: set[str] = set()  # spellings the book routes orders to (probed)
        self.first_made = self.next_order  # the number of the first order this group makes
        self.cuts: list[int] = []  # a pipeline's: the number of the next order at each cut
        # a pipeline's: reads orders its parts committed (take forgets them), those of a part
        # that repeats their client order ids read at its start (recalled)
        self.committed_orders: Callable[[Sequence[str]], dict[str, Order]] | None = None
        self.recalled: dict[str, Order] = {}
        self.moved: set[tuple[str, str, str]] = set()  # order totals it moved, not yet cut
        self.rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in TABLES}
        self.put = _PG_STORAGE if db.pg else _SQLITE_STORAGE
        self.now_stored = self.put.time(self.now)
        self.audit: list[audit.NewEvent] = []
        if first is not None and db.pg:
            db.prefetch(
                [
                    self._rate_query(first.account),
                    self._candidates_query(first.account, first),
                    *self._sum_reads(first),
                ]
            )

    def _reads(self, req: OrderRequest) -> list[tuple[str, Sequence[Any]]]:
        """What deciding `req` reads that does not depend on the settings."""
        out: list[tuple[str, Sequence[Any]]] = [
            (_SETTINGS_SQL, _SETTINGS_PARAMS),
            (_IDS_SQL, ()),
            (_ACCOUNT_SQL, (req.account,)),
            (_CASH_SUM_OF_SQL, (ledger.cash_account(req.account), req.symbol)),
            (_TOTALS_SQL, (req.account,)),
            (_PRICED_EACH_SQL[self.db.pg], (req.account,)),
            (_INSTRUMENT_SQL, (req.symbol,)),
            (_LAST_BAR_SQL, (req.symbol,)),
            (_SUM_SQL, (_POSITION, req.account, req.symbol)),
            (_HEAD_SQL, ()),
        ]
        if req.client_order_id is not None:
            out.append((_CLIENT_ID_SQL, (req.account, req.client_order_id)))
        return out

    def _sum_reads(self, req: OrderRequest) -> list[tuple[str, Sequence[Any]]]:
        """The rows after the kept cash and position sums of `req` (whose kept sums, and
        instrument, the first pipeline read)."""
        db, owner = self.db, ledger.cash_account(req.account)
        out: list[tuple[str, Sequence[Any]]] = []
        inst = db.peek(_INSTRUMENT_SQL, (req.symbol,))
        cash = db.peek(_CASH_SUM_OF_SQL, (owner, req.symbol))
        if inst and cash is not None:
            through = int(cash[0][0]) if cash else 0
            out.append((_PG_CASH_AFTER_SQL, (owner, inst[0][2], through)))
        position = db.peek(_SUM_SQL, (_POSITION, req.account, req.symbol))
        if position is not None:
            through = int(position[0][0]) if position else 0
            out.append((_PG_POSITION_AFTER_SQL, (req.account, req.symbol, through)))
        return out

    def _rate_query(self, account: str) -> tuple[str, Sequence[Any]]:
        return _RATE_SQL, (account, self.db.p_time(self.now - self.limits.rate_window))

    # -- reading -------------------------------------------------------------------------------

    def market(self, symbol: str) -> Market:
        found = self.markets.get(symbol)
        if found is not None:
            return found
        db = self.db
        row = db.one(_INSTRUMENT_SQL, (symbol,))
        if row is None:
            raise NotFound("instrument", symbol)
        inst = book.Instrument(row[0], row[1], row[2], db.dec(row[3]), db.dec(row[4]), bool(row[5]))
        state = market_state(inst, self.last_price(symbol), self.now, self.volume.get(symbol))
        found = self.markets[symbol] = Market(inst, state)
        return found

    def last_price(self, symbol: str) -> tuple[Decimal, datetime] | None:
        """The close of the symbol's latest bar and its time (as md_book.last_price)."""
        if symbol not in self.last:
            row = self.db.one(_LAST_BAR_SQL, (symbol,))
            self.last[symbol] = None if row is None else (self.db.dec(row[0]), self.db.time(row[1]))
            if row is not None:
                self.volume[symbol] = self.db.dec(row[2])
        return self.last[symbol]

    def bar_taken(self, symbol: str, at: datetime) -> Decimal:
        """What the paper venue has given out of the share of the symbol's bar at `at`."""
        key = (symbol, at)
        found = self.taken.get(key)
        if found is None:
            rows = self.db.all(_BAR_TAKEN_SQL, (symbol, self.db.p_time(at)))
            found = self.taken[key] = sum((self.db.dec(r[0]) for r in rows), Decimal(0))
        return found

    def last_close(self, symbol: str) -> Decimal | None:
        last = self.last_price(symbol)
        return last[0] if last else None

    def account(self, account: str) -> AccountBook:
        found = self.accounts.get(account)
        if found is not None:
            return found
        db = self.db
        row = db.one(_ACCOUNT_SQL, (account,))
        if row is None:
            raise NotFound("account", account)
        info = book.Account(row[0], row[1], row[2], AccountType(row[3]), row[4])
        reserved: dict[str, Decimal] = {}
        open_qty: dict[tuple[str, str], Decimal] = {}
        totals: dict[tuple[str, str], Total] = {}
        for symbol, side, open_, held_, open_places, held_places, currency in db.all(
            _TOTALS_SQL, (account,)
        ):
            kept = totals[(symbol, side)] = total_of(
                db.dec(open_), db.dec(held_), open_places, held_places
            )
            shown_open, shown_held = kept.shown()
            if kept.open_places:
                open_qty[(symbol, side)] = shown_open
            if kept.held_places:
                reserved[currency] = reserved.get(currency, _ZERO) + shown_held
        # the live buys priced each time (their leaves are in the totals' open quantity)
        each = db.all(_PRICED_EACH_SQL[db.pg], (account,))
        buffer = self.limits.market_buffer_pct
        terms = self.terms if self.terms_charge else None
        filled_in_part: dict[str, str] = {}  # charged paper buys that filled in part: currency
        for symbol, leaves_text, limit, stop, currency, replacing, venue, cum, oid in each:
            leaves = db.dec(leaves_text)
            last = partial(self.last_close, symbol)
            charged = terms is not None and venue == PAPER
            if replacing is not None:  # a replace may be pending: its new terms count too
                held = order_reservation(
                    load_state(replacing, db.conn), last, buffer, terms, currency=currency
                )
            elif charged and db.dec(cum) > 0:  # its commission counts what filled already
                filled_in_part[oid] = currency
                continue
            else:
                limit_, stop_ = db.opt_dec(limit), db.opt_dec(stop)
                held = leaves * reservation_price(limit_, stop_, last, buffer)
                if charged and terms is not None:
                    held += charge_held(
                        terms, _ZERO, _ZERO, leaves, limit_, stop_, last, currency=currency
                    )
            reserved[currency] = reserved.get(currency, _ZERO) + held
        ids = list(filled_in_part)  # their fills, from their stored state: few reads for all
        for at in range(0, len(ids), _IN_CHUNK):
            part = ids[at : at + _IN_CHUNK]
            for (state,) in db.all(_STATES_SQL.format(", ".join("?" * len(part))), part):
                order = load_state(state, db.conn)
                last = partial(self.last_close, order.symbol)
                currency = filled_in_part[order.order_id]
                held = order_reservation(order, last, buffer, terms, currency=currency)
                reserved[currency] = reserved.get(currency, _ZERO) + held
        count = db.one(*self._rate_query(account))[0]
        found = self.accounts[account] = AccountBook(
            info=info,
            killed=risk_limits.killed_in(self.risk_settings, account),
            cash={},
            reserved=reserved,
            open_qty=open_qty,
            rate_count=int(count),
            totals=totals,
            parse_time=db.time,
        )
        return found

    def cash(self, acct: AccountBook, currency: str, symbol: str | None = None) -> Decimal:
        """The account's cash in `currency` (`symbol`: an instrument that trades in it), read
        the first time it is needed and moved on in memory by the group's postings after that
        (from the state the group read: never after one of its own postings in it)."""
        found = acct.cash.get(currency)
        if found is not None:
            return found
        db, owner = self.db, ledger.cash_account(acct.info.account)
        if db.pg and symbol is not None:  # the form a single submission prefetches
            kept = db.one(_CASH_SUM_OF_SQL, (owner, symbol))
        else:
            kept = db.one(_SUM_SQL, (_CASH, owner, currency))
        through, found = (int(kept[0]), db.dec(kept[1])) if kept else (0, _ZERO)
        if db.pg:
            total, after = db.one(_PG_CASH_AFTER_SQL, (owner, currency, through))
            found += Decimal(total)
        else:
            rows = db.all(_CASH_AFTER_SQL, (owner, currency, through))
            after = len(rows)
            found = sum(map(Decimal, (r[0] for r in rows)), found)
        if after >= KEEP_AFTER:
            self._keep((_CASH, owner, currency), self.last_posting, found)
        acct.cash[currency] = found
        return found

    def _keep(self, key: tuple[str, str, str], through: int, total: Decimal) -> None:
        """Keep a running sum (written with the group's rows) if this group may write."""
        if self.keep_sums:
            self.kept[key] = (through, total)

    def position(self, acct: AccountBook, symbol: str) -> Decimal:
        found = acct.positions.get(symbol)
        if found is not None:
            return found
        db, account = self.db, acct.info.account
        kept = db.one(_SUM_SQL, (_POSITION, account, symbol))
        through, qty = (int(kept[0]), db.dec(kept[1])) if kept else (0, _ZERO)
        behind = self.last_exec - through  # ids after the kept sum (every account's)
        if db.pg:  # summed by the database (exact NUMERIC), when every execution is a fill
            total, others, after = db.one(_PG_POSITION_AFTER_SQL, (account, symbol, through))
            simple = others == 0
            qty += Decimal(total)
        else:
            ranged = kept is not None and behind <= SCAN_AT_MOST
            sql = _POSITION_RANGE_SQL if ranged else _POSITION_AFTER_SQL
            rows = db.all(sql, (through, account, symbol) if ranged else (account, symbol, through))
            after = len(rows)
            simple = all(kind == lots.FILL for _, _, kind in rows)
            if simple:
                buy = Side.BUY.value
                for side, quantity, _ in rows:
                    qty += Decimal(quantity) if side == buy else -Decimal(quantity)
        if not simple:  # corrections or busts: resolved as positions resolve them, from all rows
            recs = executions_book.records(self.conn, account=account, symbol=symbol)
            qty = lots.net_quantity(recs)
        if not simple or after >= KEEP_AFTER or behind >= KEEP_SCAN:
            self._keep((_POSITION, account, symbol), self.last_exec, qty)
        acct.positions[symbol] = qty
        return qty

    def candidates(self, acct: AccountBook, req: OrderRequest) -> list[risk.RecentOrder]:
        """The account's orders that a duplicate check of `req` compares with: live or filled
        (not rejected, canceled or expired: _NO_DUPLICATE), in the duplicate window, with the
        same terms (symbol, side, type, quantity, limit and stop price, decimals by value),
        oldest first. A group of many orders reads each (symbol, side, type) once; a single
        order reads only those with its quantity."""
        key = _terms_key(
            req.symbol,
            req.side,
            req.type,
            req.quantity,
            req.limit_price,
            req.stop_price,
            req.tif,
            req.expire_at,
        )
        wide = (req.symbol, req.side.value, req.type.value)
        found = acct.known(key, wide)
        if found is not None:
            return found
        db = self.db
        rows = db.all(*self._candidates_query(acct.info.account, req))
        kind = risk.OrdType(req.type.value)
        if self.bulk:  # by terms, oldest first; RecentOrders made when asked for (known)
            unread, dec, opt_dec, opt_day = acct.unread, db.dec, db.opt_dec, db.opt_day
            prefix = (req.symbol, req.side.value, kind.value)
            for at, qty_, limit_, stop_, cid, tif, expire in rows:
                qty, limit, stop = dec(qty_), opt_dec(limit_), opt_dec(stop_)
                # the stored time as read: parsed only if an order with these terms comes
                unread.setdefault((*prefix, qty, limit, stop, tif, opt_day(expire)), []).append(
                    (at, qty, limit, stop, cid)
                )
            acct.candidates_read.add(wide)
            found = acct.known(key, wide)
            assert found is not None
            return found
        for at, qty, limit, stop, cid, tif, expire in rows:
            recent = risk.RecentOrder(
                db.time(at),
                req.symbol,
                req.side,
                db.dec(qty),
                kind,
                db.opt_dec(limit),
                db.opt_dec(stop),
                cid,
                TimeInForce(tif),
                db.opt_day(expire),
            )
            k = _terms_key(
                req.symbol,
                req.side,
                kind,
                recent.quantity,
                recent.limit_price,
                recent.stop_price,
                recent.tif,
                recent.expire_at,
            )
            if k == key:
                acct.candidates.setdefault(k, []).append(recent)
        return acct.candidates.setdefault(key, [])

    def _candidates_query(self, account: str, req: OrderRequest) -> tuple[str, Sequence[Any]]:
        db = self.db
        sql = (
            "SELECT created_at, quantity, limit_price, stop_price, client_order_id, tif, expire_at"
            " FROM orders"
            " WHERE account = ? AND created_at > ? AND symbol = ? AND side = ? AND type = ?"
            " AND status NOT IN (?, ?, ?)"
        )
        params: list[Any] = [
            account,
            db.p_time(self.now - self.limits.duplicate_window),
            req.symbol,
            req.side.value,
            req.type.value,
            *(s.value for s in _NO_DUPLICATE),
        ]
        if not self.bulk:  # only its quantity (by value: SQLite compares the canonical text)
            sql += " AND quantity = ?" if db.pg else f" AND {_NORMAL_SQL} = ?"
            params.append(req.quantity if db.pg else _normal_text(req.quantity))
        return sql + " ORDER BY created_at, order_id", tuple(params)

    def prefetch_client_ids(self, requests: Iterable[OrderRequest]) -> None:
        """Look up which client order ids of a group are taken: on PostgreSQL in one query for
        the group (the pairs as two arrays: one round trip, not one per account); on SQLite
        per account in one query (no round trips to save)."""
        wanted: dict[str, set[str]] = {}
        for req in requests:
            if req.client_order_id is not None:
                wanted.setdefault(req.account, set()).add(req.client_order_id)
        if self.db.pg and wanted:
            pairs = sorted((a, c) for a, ids in wanted.items() for c in ids)
            for start in range(0, len(pairs), _PAIRS_CHUNK):
                chunk = pairs[start : start + _PAIRS_CHUNK]
                accounts, cids = [a for a, _ in chunk], [c for _, c in chunk]
                for account, cid, order_id in self.db.all(_TAKEN_PAIRS_SQL, (accounts, cids)):
                    self.client_ids[(account, cid)] = order_id
            self.looked_up.update(wanted)
            return
        for account, ids in wanted.items():
            listed = sorted(ids)
            for start in range(0, len(listed), 500):
                part = listed[start : start + 500]
                marks = ", ".join("?" for _ in part)
                for cid, order_id in self.db.all(
                    "SELECT client_order_id, order_id FROM order_client_ids"
                    f" WHERE account = ? AND client_order_id IN ({marks})",
                    (account, *part),
                ):
                    self.client_ids[(account, cid)] = order_id
            self.looked_up.add(account)

    def client_order(self, account: str, client_order_id: str) -> str | None:
        key = (account, client_order_id)
        if key in self.client_ids or account in self.looked_up:
            return self.client_ids.get(key)
        row = self.db.one(_CLIENT_ID_SQL, key)
        return None if row is None else str(row[0])

    def _own_client_id(self, account: str, order_id: OrderId) -> ClientOrderId:
        """The client order id of an order given none: its order id, unless the account gave
        that text as the client order id of another order; then the order id with the first
        free suffix (O00000002-2, -3, ...): client order ids stay unique per account."""
        candidate, n = str(order_id), 1
        while (account, candidate) in self.client_ids or (
            self.db.one(_CLIENT_ID_SQL, (account, candidate)) is not None
        ):
            n += 1
            candidate = f"{order_id}-{n}"
        return ClientOrderId(candidate)

    # -- deciding ----------------------------------------------------------------------------

    def account_state(self, acct: AccountBook, req: OrderRequest) -> risk.AccountState:
        """What the risk checks see of the account for `req`: its money in the currency the
        order trades in (its instrument's; no FX): the cash in that currency and what its live
        buy orders in that currency reserve."""
        symbol = req.symbol
        currency = self.market(symbol).instrument.currency
        return risk.AccountState(
            account_type=acct.info.type,
            tier=acct.info.tier,
            currency=currency,
            cash=self.cash(acct, currency, symbol),
            reserved=acct.reserved.get(currency, _ZERO),
            position=self.position(acct, symbol),
            open_buy_quantity=acct.open_qty.get((symbol, Side.BUY.value), _ZERO),
            open_sell_quantity=acct.open_qty.get((symbol, Side.SELL.value), _ZERO),
            recent_orders=self.candidates(acct, req),
            orders_in_rate_window=acct.rate_count,
            kill_switch=acct.killed,
        )

    def submit(self, req: OrderRequest) -> Outcome:
        """Decide one request against the group's state and collect its rows; a refusal
        (raised) leaves both untouched. Sums run in the book's exact decimal context (as
        PostgreSQL's NUMERIC sums do), not Python's default 28 digits."""
        with localcontext(lots.CONTEXT):
            outcome = self._submit(req)
        if self.venues is not None and req.venue != PAPER:  # its spelling is the book's now
            self.venues.setdefault(req.venue.lower(), set()).add(req.venue)
        return outcome

    def _submit(self, req: OrderRequest) -> Outcome:
        ctx, now = self.ctx, self.now
        if self.next_order > _LAST_ORDER_NUMBER:
            raise Refused(
                "order submit",
                f"order ids are O00000001 to O{_LAST_ORDER_NUMBER}: this book has used them all",
                "order_ids_exhausted",
            )
        acct = self.account(req.account)
        market = self.market(req.symbol)
        if req.venue != PAPER:
            self._check_venue(req.venue)
        order_id = OrderId(f"O{self.next_order:08d}")
        client_id = (
            ClientOrderId(req.client_order_id)
            if req.client_order_id
            else self._own_client_id(req.account, order_id)
        )
        command = SubmitOrder(
            order_id=order_id,
            client_order_id=client_id,
            account=AccountId(req.account),
            symbol=Symbol(req.symbol),
            side=req.side,
            quantity=req.quantity,
            type=req.type,
            tif=req.tif,
            limit_price=req.limit_price,
            stop_price=req.stop_price,
            expire_at=req.expire_at,
            venue=Venue(req.venue),
        )
        if req.client_order_id is not None:
            earlier = self.client_order(req.account, req.client_order_id)
            if earlier is not None:
                first = self.made.get(earlier) or self._earlier(earlier)
                if orders.same_terms(first, dataclasses.replace(command, order_id=first.order_id)):
                    return Outcome(first, duplicate=True)
                raise Refused(
                    f"order submit with client order id {req.client_order_id}",
                    f"account {req.account} used it already for order {first.order_id} with "
                    "other terms",
                    "duplicate_client_order_id",
                )
        steps = [orders.decide(None, command, now, ctx.actor)]
        if req.tif is TimeInForce.GTD and (
            expiry_due(steps[0].order, market.instrument.exchange, now)
            or (
                req.expire_at is not None
                and not gtd_can_trade(market.instrument.exchange, req.expire_at, now)
            )
        ):  # no session left before its expiry: it could never trade
            raise BadInput(
                "order submit",
                f"expire date {req.expire_at}: the last session it may trade in "
                f"({market.instrument.exchange}) is over; give a later date",
            )
        commands: list[Any] = [command]
        checked = risk.OrderRequest(
            req.account,
            req.symbol,
            req.side,
            req.quantity,
            req.type,
            req.tif,
            req.limit_price,
            req.stop_price,
            client_id,
            req.expire_at,
        )
        if (
            req.venue == PAPER
            and self.terms_charge
            and (req.side is Side.BUY or acct.info.type is AccountType.CASH)
        ):
            # the paper venue's commission at the price basis: a buy must afford it too, and a
            # cash account's sale must at least pay it
            basis = risk.price_basis(checked, market.state)
            if basis is not None:
                charge = paper.order_commission(
                    self.terms,
                    req.quantity,
                    req.quantity * basis,
                    currency=market.instrument.currency,
                )
                checked = dataclasses.replace(checked, charges=charge)
        result = risk.check(
            checked,
            self.account_state(acct, req),
            market.state,
            self.limits,
            now,
        )
        # from here on nothing is refused: the order is taken (accepted or risk-rejected)
        fills: list[tuple[Order, orders.ApplyFill, Decimal]] = []
        bar: datetime | None = None  # the bar whose share an ioc/fok order draws on
        if not result.ok:
            reject = orders.RejectOrder(
                reason="risk: " + "; ".join(f.message for f in result.failures),
                codes=tuple(code.value for code in result.codes),
            )
            steps.append(orders.decide(steps[-1].order, reject, now, ctx.actor))
            commands.append(reject)
        elif req.venue == PAPER:
            # the paper venue acknowledges the order, then fills or rests it, as
            # order_book's paper venue (whose answer depends on the acknowledged order's terms
            # and fills, not on the actor of the acknowledgement: decided once here)
            ack = orders.AcknowledgeOrder()
            steps.append(orders.decide(steps[-1].order, ack, now, ctx.actor))
            # an ioc/fok order shares the last bar's share with the orders before it
            bar = market.state.reference_time if req.tif in _IMMEDIATE else None
            more = paper.answer_live_order(
                steps[-1].order,
                market.state,
                self.terms,
                max_price_age=self.limits.max_price_age,
                taken=ZERO if bar is None else self.bar_taken(req.symbol, bar),
            )
            if acct.info.type is AccountType.CASH and more:
                # a cash account pays at most what it has at the fill price (slippage)
                currency = market.instrument.currency
                available = self.cash(acct, currency, req.symbol) - acct.reserved.get(
                    currency, _ZERO
                )
                more = paper.within_cash(
                    more,
                    steps[-1].order,
                    available,
                    market.instrument.lot_size,
                    self.terms,
                    currency,
                )
            answers: list[Any] = [ack, *more]
            for answer in more:
                before = steps[-1].order
                steps.append(orders.decide(before, answer, now, ctx.actor))
                if isinstance(answer, orders.ApplyFill):
                    currency = market.instrument.currency
                    fee = (  # (a schedule that charges nothing charges no fill: not computed)
                        paper.fill_charge(self.terms, before, answer, currency=currency)
                        if self.terms_charge
                        else ZERO
                    )
                    fills.append((steps[-1].order, answer, fee))
            commands += answers
        if fills:  # the settlement date may be refused: before any state changes
            self._settle(market.instrument.exchange)
        order = steps[-1].order
        self.next_order += 1
        for after, fill, fee in fills:
            self._book_fill(acct, market.instrument, after, fill, fee)
            if bar is not None:
                self._take(req.symbol, bar, after.order_id, fill.quantity)
        self._store_new(order, steps, commands)
        self.audit.append(
            audit.NewEvent(
                at=now,
                actor=ctx.actor,
                action="order.submit",
                entity_type="order",
                entity_id=order.order_id,
                payload={
                    "client_order_id": order.client_order_id,
                    "account": order.account,
                    "symbol": order.symbol,
                    "side": order.side.value,
                    "quantity": dec_str(order.quantity),  # the text the hook would give
                    "type": order.type.value,
                    "status": order.status.value,
                    "risk": [f.code.value for f in result.failures],
                },
            )
        )
        self._move_on(acct, order)
        if not result.ok:
            return Outcome(order, error=RiskRejected(order, result))
        return Outcome(order)

    def _check_venue(self, venue: str) -> None:
        """Refuse a venue the book knows in another spelling only (acme for ACME); an order
        routed to it makes its spelling known to the rest of the group (submit)."""
        if self.venues is None:
            if venue in self.routed_to:  # (a file's orders to one venue: probed once)
                return
            if self.db.all(_ROUTED_TO_SQL, (venue,)):  # the book routes orders there already
                self.routed_to.add(venue)
                return
            self.venues = executions_book.venue_spellings(self.conn)
        refused = executions_book.another_spelling(venue, self.venues)
        if refused is not None:
            raise BadInput(f"venue {venue}", refused)

    def _settle(self, exchange: str) -> tuple[date, date]:
        """The group's fills' trade date on an exchange (the session `now` falls in) and their
        settlement date."""
        found = self.settle.get(exchange)
        if found is None:
            traded = trade_date(exchange, self.now)
            cycle = self.cycles.get(canonical_exchange(exchange), DEFAULT_SETTLEMENT_DAYS)
            found = self.settle[exchange] = (traded, settlement_date(exchange, traded, cycle))
        return found

    def _move_on(self, acct: AccountBook, order: Order) -> None:
        """The account state as reading it again would find it after `order` (new)."""
        if order.status is not OrderStatus.REJECTED:
            acct.rate_count += 1
        if order.live:
            key = (order.symbol, order.side.value)
            acct.open_qty[key] = acct.open_qty.get(key, _ZERO) + order.leaves_qty
            if order.side is Side.BUY:
                last = partial(self.last_close, order.symbol)
                terms = self.terms if self.terms_charge else None
                currency = self.market(order.symbol).instrument.currency
                buffer = self.limits.market_buffer_pct
                held = order_reservation(order, last, buffer, terms, currency=currency)
                acct.reserved[currency] = acct.reserved.get(currency, _ZERO) + held
        if order.status not in _NO_DUPLICATE:
            key = _terms_key(
                order.symbol,
                order.side,
                order.type,
                order.quantity,
                order.limit_price,
                order.stop_price,
                order.tif,
                order.expire_at,
            )
            wide = (str(order.symbol), order.side.value, order.type.value)
            found = acct.known(key, wide)
            if found is not None:
                found.append(
                    risk.RecentOrder(
                        order.created_at,
                        order.symbol,
                        order.side,
                        order.quantity,
                        order.type,
                        order.limit_price,
                        order.stop_price,
                        order.client_order_id,
                        order.tif,
                        order.expire_at,
                    )
                )

    # -- collecting rows -------------------------------------------------------------------------

    def _book_fill(
        self,
        acct: AccountBook,
        inst: book.Instrument,
        order: Order,
        fill: orders.ApplyFill,
        commission: Decimal,
    ) -> None:
        """A paper fill: its execution and cash journal entry (made by order_book.fill_booking,
        as order_book._book_fill makes them), collected as rows; the entry's rows as
        book.post_entries writes them."""
        ctx, put, now = self.ctx, self.put, self.now_stored
        traded, settle = self._settle(inst.exchange)
        row, entry = fill_booking(
            order,
            fill,
            currency=inst.currency,
            exec_time=ctx.now,
            traded=traded,
            settle=settle,
            booked_at=ctx.now,
            actor=ctx.actor,
            commission=commission,
            source="paper",
        )
        exec_pk = self.next_exec
        self.next_exec += 1
        self.rows["executions"].append((exec_pk, *put.row(row)))
        entry_id = self.next_entry
        self.next_entry += 1
        self.rows["journal_entries"].append(
            (
                entry_id,
                entry.kind,
                entry.account,
                entry.currency,
                entry.ref,
                entry.destination,
                exec_pk,
                put.day(entry.value_date),
                now,
                ctx.actor,
            )
        )
        cash_account = ledger.cash_account(acct.info.account)
        for p in entry.postings:
            self.rows["journal_postings"].append(
                (self.next_posting, entry_id, p.ledger_account, p.currency, put.dec(p.amount))
            )
            self.next_posting += 1
            if p.ledger_account == cash_account:
                acct.cash[p.currency] = self.cash(acct, p.currency) + p.amount
        acct.positions[order.symbol] = (
            acct.positions[order.symbol] + fill.quantity * order.side.sign
        )

    def _take(self, symbol: str, bar: datetime, order_id: str, quantity: Decimal) -> None:
        """Record a fill given out of the share of the symbol's bar at `bar`."""
        self.taken[symbol, bar] = self.bar_taken(symbol, bar) + quantity
        put = self.put
        self.rows["paper_bar_takes"].append((symbol, put.time(bar), order_id, put.dec(quantity)))

    def _store_new(
        self, order: Order, steps: Sequence[Transition], commands: Sequence[Any]
    ) -> None:
        """The order's row, its client order id and its events (as order_book._store_order)."""
        ctx, put, now = self.ctx, self.put, self.now_stored
        submitted = submitted_text(order.submitted)
        self.rows["orders"].append(
            (
                order.order_id,
                order.client_order_id,
                order.account,
                order.symbol,
                order.side.value,
                order.type.value,
                order.tif.value,
                put.dec(order.quantity),
                put.opt_dec(order.limit_price),
                put.opt_dec(order.stop_price),
                put.opt_day(order.expire_at),
                order.venue,
                order.status.value,
                put.dec(order.cum_qty),
                put.dec(order.leaves_qty),
                put.opt_dec(order.avg_px),
                order.reject_reason,
                put.time(order.created_at),
                put.time(order.updated_at),
                ctx.actor,
                order_state(order, submitted),
            )
        )
        self.rows["order_client_ids"].append((order.account, order.client_order_id, order.order_id))
        self.client_ids[(order.account, order.client_order_id)] = order.order_id
        self.made[order.order_id] = order
        if order.live:  # its order totals row moves on (standing)
            acct = self.accounts[order.account]
            currency = self.market(order.symbol).instrument.currency
            added = standing(order, self.terms, currency=currency)
            key = (order.symbol, order.side.value)
            acct.totals[key] = acct.totals.get(key, Total()).moved((None, None), added)
            self.moved.add((order.account, *key))
        for step, command in zip(steps, commands, strict=True):
            self.rows["order_events"].append(
                (
                    self.next_event,
                    order.order_id,
                    now,
                    ctx.actor,
                    step.event.value,
                    step.order.status.value,
                    step.order.history[-1].reason if step.order.history else None,
                    command_payload(command, submitted if command is order.submitted else None),
                    None,
                )
            )
            self.next_event += 1

    def audit_head(self) -> tuple[int, str]:
        """(seq, hash) of the audit trail's last event as this group's connection reads it."""
        head = self.db.one(_HEAD_SQL)
        return (int(head[0]), str(head[1])) if head else audit.head(self.conn)

    def _chain(self, start: tuple[int, str]) -> tuple[int, str]:
        """Add the audit rows of the collected events, continuing the chain at `start`; the
        new head."""
        for e, item in zip(audit.chain(start, self.audit), self.audit, strict=True):
            self.rows["audit_events"].append(
                (
                    e.seq,
                    self.put.time(item.at),
                    e.actor,
                    e.action,
                    e.entity_type,
                    e.entity_id,
                    e.reason,
                    e.payload,
                    e.prev_hash,
                    e.hash,
                )
            )
            start = (e.seq, e.hash)
        return start

    def _cut_totals(self) -> None:
        """The order totals rows the group moved since the last cut, as they stand now."""
        put = self.put
        rows = self.rows[TOTALS] = []
        for account, symbol, side in sorted(self.moved):
            total = self.accounts[account].totals[(symbol, side)]
            rows.append(
                (
                    account,
                    symbol,
                    side,
                    put.dec(total.open_qty),
                    put.dec(total.held),
                    places_text(total.open_places),
                    places_text(total.held_places),
                )
            )
        self.moved = set()

    def flush(self) -> None:
        """Write what the group collected (inside its transaction), and the running sums it
        keeps."""
        if self.audit:
            self._chain(self.audit_head())
        self._cut_totals()
        self.db.write(self.rows)
        self.db.keep_sums(self.kept)

    def decide_all(self, part: Sequence[OrderRequest | BadInput]) -> list[Outcome]:
        """Decide a part of a file in order (a refusal is an outcome, the rest goes on)."""
        self.prefetch_client_ids(r for r in part if isinstance(r, OrderRequest))
        self._recall(part)
        done: list[Outcome] = []
        for req in part:
            if isinstance(req, BadInput):
                done.append(Outcome(None, error=req))
                continue
            try:
                done.append(self.submit(req))
            except (BadInput, Refused, NotFound) as exc:
                done.append(Outcome(None, error=exc))
        return done

    def _forgotten(self, order_id: str) -> bool:
        """Whether an order is one this pipeline made and take() forgot (it is committed): with
        `committed_orders` set, no other order is missing from `made` from `first_made` on."""
        return order_id not in self.made and int(order_id[1:]) >= self.first_made

    def _recall(self, part: Sequence[OrderRequest | BadInput]) -> None:
        """The forgotten orders whose client order ids the part repeats, read from the book at
        once (one read, not one per repeat); the last part's go."""
        self.recalled = {}
        if self.committed_orders is None:
            return
        wanted = []
        for req in part:
            if isinstance(req, OrderRequest) and req.client_order_id is not None:
                order_id = self.client_ids.get((req.account, req.client_order_id))
                if order_id is not None and self._forgotten(order_id):
                    wanted.append(order_id)
        if wanted:
            self.recalled = self.committed_orders(sorted(set(wanted)))

    def _earlier(self, order_id: str) -> Order:
        """An order made before this one: in the book as the group's reads see it, or (a
        pipeline) committed by one of its earlier parts, which the reads do not see."""
        if self.committed_orders is not None and self._forgotten(order_id):
            return self.recalled[order_id]  # _recall read it when the part began
        return find(self.conn, order_id)

    def take(
        self, head: tuple[int, str]
    ) -> tuple[dict[str, list[tuple[Any, ...]]], tuple[int, str]]:
        """A pipeline's cut: the rows collected since the last cut, with the audit rows that
        continue the chain at `head`, and the chain's new head. The state stays as the
        decisions left it (the next part is decided on it).

        The orders of the part before the last are forgotten (with `committed_orders` set): the
        pipeline acknowledged that part before it handed the last one to its writer, so they
        are in the book, and a repeat of their client order ids reads them from there. A
        pipeline holds the orders of two parts, not of the whole file."""
        new_head = self._chain(head) if self.audit else head
        if self.committed_orders is not None:
            self.cuts.append(self.next_order)
            if len(self.cuts) > 2:  # the part before the last began at cuts[-3]
                bound = self.cuts.pop(0)
                # made is in the order the orders were numbered
                for order_id in list(takewhile(lambda k: int(k[1:]) < bound, self.made)):
                    del self.made[order_id]
        self._cut_totals()
        rows = self.rows
        self.rows = {name: [] for name in TABLES}
        self.audit = []
        return rows, new_head


# ---- the commands -------------------------------------------------------------------------------


def submit(store: Store, ctx: Ctx, req: OrderRequest) -> Submitted:
    """One order, one transaction: committed before it is acknowledged (returned)."""
    with store.write() as conn:
        group = Group(conn, ctx, first=req, keep_sums=True)
        outcome = group.submit(req)
        group.flush()
    if outcome.error is not None:
        raise outcome.error
    assert outcome.order is not None
    return Submitted(outcome.order, outcome.duplicate)


def submit_many(
    store: Store,
    ctx: Ctx,
    requests: Sequence[OrderRequest | BadInput],
    on_commit: Callable[[int, list[Outcome]], None],
    chunk: int | None = None,
) -> None:
    """Requests in groups of `chunk`, one transaction each, in order; a BadInput in the list
    (a row that never became a request) is passed through as a refusal. `on_commit(start,
    outcomes)` is called after each group committed, with the index of its first request; the
    outcomes are not kept here (a large batch's orders are not all held at once), and the
    requests are taken from `requests` a group at a time.

    More than one group: pipelined (`_pipeline`): each group is decided on the state the groups
    before left in memory; a writer (PostgreSQL: a thread; SQLite: a process) inserts and
    commits group N while this thread decides group N+1. A group the pipeline could not write
    (the database refused its rows, another writer committed between two of its groups or
    waits for the book, or the writer process died before its commit) is done again as a
    group of its own, read afresh (as a single group is), and a new pipeline starts after it:
    nothing decided after a failed group is written."""
    size = chunk or CHUNK
    if len(requests) <= size or store.in_memory:
        # one group; or a database in this process's memory, whose shared cache locks tables
        # for a pipeline's reads against its writer: group after group, each read afresh
        for start in range(0, len(requests), size):
            # committed is acknowledged: Ctrl-C waits from the group's commit until then (before
            # it, waiting for the lock or deciding, it stops the group, which writes nothing)
            with ExitStack() as held:
                on_commit(
                    start, _group_or_singles(store, ctx, requests[start : start + size], held)
                )
        return
    start = 0
    while start < len(requests):
        start, refused = _pipeline(store, ctx, requests, start, size, on_commit)
        if start < len(requests):  # the group at `start` could not be written by the pipeline
            part = requests[start : start + size]
            with ExitStack() as held:  # (held from the commit, as above)
                # rows refused by the database: each order on its own, as a group that fails
                # does; another writer came between: the group afresh
                done = (
                    _singles(store, ctx, part, held)
                    if refused
                    else _group_or_singles(store, ctx, part, held)
                )
                on_commit(start, done)
            start += size


def _group_or_singles(
    store: Store, ctx: Ctx, part: Sequence[OrderRequest | BadInput], held: ExitStack | None = None
) -> list[Outcome]:
    """One group in one transaction, read and decided afresh; if the database refuses its rows
    (it should not: every decision is taken under the book lock), each order again on its own,
    so one bad row loses no other."""
    try:
        return _group(store, ctx, part, held)
    except _refused():
        return _singles(store, ctx, part, held)


def _singles(
    store: Store, ctx: Ctx, part: Sequence[OrderRequest | BadInput], held: ExitStack | None = None
) -> list[Outcome]:
    done: list[Outcome] = []
    for item in part:
        try:
            done += _group(store, ctx, [item], held)
        except _refused() as exc:
            reason = str(getattr(exc, "orig", None) or exc)
            done.append(Outcome(None, error=Refused("order", reason, "database")))
    return done


def _refused() -> tuple[type[Exception], ...]:
    """The database refusing a group's rows: through SQLAlchemy, or from the driver itself
    (the rows go by the raw connection's executemany, pipeline or COPY, whose errors SQLAlchemy
    never sees)."""
    return (IntegrityError, *driver_errors("IntegrityError"))


class _Changed(Exception):
    """Another writer committed between two groups of a pipeline: what it decided since is
    stale."""


def _data_version(conn: Connection) -> int:
    """SQLite's count of commits made by other connections, as this connection last saw it."""
    raw: Any = conn.connection.driver_connection
    return int(raw.execute("PRAGMA data_version").fetchone()[0])


def _write_part(
    conn: Connection,
    rows: dict[str, list[tuple[Any, ...]]],
    head: tuple[int, str],
    version: int | None,
) -> None:
    """The writer thread: one group's rows in one transaction on the pipeline's connection,
    after checking that the book is as the pipeline left it: on SQLite no commit by another
    connection since the pipeline began (PRAGMA data_version, read under the write lock); on
    both the audit trail ends at `head`, where the group's chain continues. A connection lost
    during its COMMIT is marked as of unknown outcome (store.transaction)."""
    with transaction(conn):
        db = Db(conn)
        if version is not None:
            Db.statements += 1
            if _data_version(conn) != version:
                raise _Changed("another connection committed")
        found = db.one(_HEAD_SQL)
        if ((int(found[0]), str(found[1])) if found else audit.head(conn)) != head:
            raise _Changed("the audit trail moved")
        db.write(rows)


def _pipeline(
    store: Store,
    ctx: Ctx,
    requests: Sequence[OrderRequest | BadInput],
    start: int,
    size: int,
    on_commit: Callable[[int, list[Outcome]], None],
) -> tuple[int, bool]:
    """Groups of `size` from `start` on, each decided on the state the groups before left in
    memory (read once, on a read connection) and written and committed on a connection of its
    own, by a writer (`_open_writer`) that writes group N while this thread decides group N+1
    (where it overlaps). Group N is acknowledged (`on_commit`) only once its commit is known,
    before group N+1 is handed to the writer. Returns len(requests), or the start of a group
    that could not be written (its decisions and those after it are dropped; nothing after it
    was written) and whether the database refused its rows (IntegrityError) rather than found
    another writer's commit (_Changed).

    No other writer comes between the groups unseen. On PostgreSQL the writer's connection
    holds the book lock for the pipeline's run, and the run ends once another writer waits for
    it (after the group in flight is acknowledged): a `risk kill` or a withdrawal waits for a
    group, not for the file, and the rest of the file is decided on the book it left. On
    SQLite the write lock is released at each commit, so each group first checks, under the
    lock, that no other connection committed since the pipeline began its reads, and is
    refused (_Changed) if one did."""
    pending: tuple[int, list[Outcome], _Pending] | None = None

    def settle() -> tuple[int, bool] | None:
        """Wait for the group in flight: acknowledge it once committed (None), or give its
        start if it could not be written."""
        nonlocal pending
        assert pending is not None
        at, done, job = pending
        # an interrupt (Ctrl-C) waits until the group is acknowledged or known not to have
        # committed (the writer finishes a group it has begun; one still waiting for SQLite's
        # lock it gives up: stop_waiting); `pending` stays set until the outcome is known, so
        # that an error leaves the group to the `finally` below
        with interrupts_held(writer.stop_waiting):
            failed: tuple[int, bool] | None = None
            try:
                job.result()
            except _refused():
                failed = at, True
            except _Changed:
                failed = at, False
            pending = None
            if failed is not None:
                return failed
            on_commit(at, done)
            return None

    with _no_cyclic_gc(), _open_writer(store) as writer:
        try:
            with store.read() as rconn:
                group = Group(rconn, ctx, bulk=True)
                group.committed_orders = partial(_committed_orders, store)
                head = group.audit_head()
                at = start
                while at < len(requests):
                    done = group.decide_all(requests[at : at + size])
                    rows, next_head = group.take(head)
                    if pending is not None:
                        failed = settle()
                        if failed is not None:
                            return failed  # the group just decided is dropped, unwritten
                        if store.book_lock_wanted(rconn):
                            # PostgreSQL: another writer (a kill switch, say) waits for the
                            # book: it goes first; the group just decided is dropped and
                            # decided again after it
                            return at, False
                    job = writer.write(rows, head, next_head)
                    pending, head, at = (at, done, job), next_head, at + size
                    if not writer.overlaps:  # written already: acknowledged now
                        failed = settle()
                        if failed is not None:
                            return failed
            if pending is not None:
                failed = settle()
                if failed is not None:
                    return failed
            return len(requests), False
        finally:
            if pending is not None:  # this thread failed: the write in flight ends first
                at, done, job = pending
                with interrupts_held():  # (a second Ctrl-C too waits for it)
                    if job.exception() is None:
                        # it committed: acknowledged like any other, so that a caller told
                        # where the run stopped does not submit it again
                        on_commit(at, done)


def _committed_orders(store: Store, order_ids: Sequence[str]) -> dict[str, Order]:
    """Orders as committed, read on a connection of their own (a pipeline's reads do not see
    what its writer committed since they began)."""
    with store.read() as conn:
        return find_many(conn, order_ids)


_Rows = dict[str, list[tuple[Any, ...]]]  # a group's rows by table, in storage form
_Head = tuple[int, str]  # the audit trail's last event: (seq, hash)


class _Pending(Protocol):
    """A group handed to a writer: result() waits for its commit (or raises what stopped it);
    exception() waits and gives that instead."""

    def result(self) -> Any: ...

    def exception(self) -> BaseException | None: ...


class _Writer(Protocol):
    overlaps: bool  # writes a group while the next one is decided

    def write(self, rows: _Rows, head: _Head, new_head: _Head) -> _Pending: ...

    def stop_waiting(self, _signum: int = 0) -> None: ...  # an interrupt came: give up a wait


# SQLite pipelines write in a process of their own (_ProcessWriter) where forking is safe
# (_may_fork); False: in the deciding thread (_Inline), as tests compare
WRITER_PROCESS = True


def _may_fork() -> bool:
    """Whether forking is safe here: no other Python thread, which could hold a lock (SQLite's
    own, the allocator's) at the fork that the child would then wait for forever. The command
    line runs one; a program that embeds tieout with threads gets the inline writer. (Native
    pools, such as the one polars starts to read the file, sit idle by then, and never call
    SQLite or Python's allocator.)"""
    return hasattr(os, "fork") and threading.active_count() == 1


@contextmanager
def _open_writer(store: Store) -> Iterator[_Writer]:
    """The pipeline's writer. PostgreSQL: a thread on a connection holding the book lock (the
    server works on the other core meanwhile). SQLite: a forked process with its own
    connection (_ProcessWriter), or this thread (_Inline) where forking is unsafe (_may_fork).
    (An in-memory database is never pipelined: submit_many.)"""
    if store.dialect == "postgresql":
        with (
            store.writer() as conn,
            ThreadPoolExecutor(1, thread_name_prefix="tieout-writer") as pool,
        ):
            yield _ConnWriter(conn, None, pool, overlaps=True)
        return
    if WRITER_PROCESS and _may_fork():
        try:
            writer = _ProcessWriter(store)
        except OSError:  # no process to be had (limits, memory): this thread writes
            pass
        else:
            try:
                yield writer
            finally:
                writer.close()
            return
    with store.writer() as conn:
        # the commits seen before any read of this pipeline
        yield _ConnWriter(conn, _data_version(conn), _Inline(), overlaps=False)


@dataclass(slots=True)
class _ConnWriter:
    """Writes on a connection of this process, by `pool`: a thread, or _Inline."""

    conn: Connection
    version: int | None  # SQLite: PRAGMA data_version before the pipeline's reads
    pool: Executor
    overlaps: bool

    def write(self, rows: _Rows, head: _Head, new_head: _Head) -> _Pending:
        return self.pool.submit(_write_part, self.conn, rows, head, self.version)

    def stop_waiting(self, _signum: int = 0) -> None:
        """(A writer of this process: the signal reaches its lock wait as it is.)"""


class _Inline(Executor):
    """Each group written in the calling thread, when handed over. A writer thread was
    measured slower on SQLite (batch of 10,000 on an idle 2-core machine: ~6,650 orders/s with
    the thread, ~7,170 without): sqlite3 gives up the GIL around each row's step but binds the
    row's values holding it, so the two threads hand the GIL over row by row and the writer
    waits for it while this thread decides; only the COMMIT's fsync overlapped (~9 ms a
    group). Hence _ProcessWriter."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed over as a thread's future would hand it over
            future.set_exception(exc)
        return future


class _ProcessWriter:
    """SQLite's writer: a child process that inserts and commits group N while this process
    decides group N+1, so that the two cores share the work (a thread cannot: see _Inline).
    Groups go over a pipe (_pack), already in storage form (text, ints); the child answers
    each with what stopped it (None: committed) and the statements it sent.

    The child is forked: it has this process's code and settings. SQLite's rule is that a
    connection is never used across a fork, and its locks are per process: so this process
    first closes the idle pooled connections of all its Stores (store.dispose_all: SQLite then
    keeps no state of the file in the child), and the child opens its own (Store's fork
    hygiene keeps it off anything inherited). The child reads PRAGMA data_version before this
    process begins its reads, and each group checks it under the write lock (_write_part), as
    the inline writer does. SIGINT and SIGTERM do not end it (an interrupted run ends its group
    in flight, as a thread would) but make it give up a wait for the write lock (a group that
    has not begun is not written: stop_waiting); it is killed by the kernel if this process
    dies (Linux: PR_SET_PDEATHSIG), and ends when the pipe closes.

    If the child dies (killed, out of memory), whether the group in flight committed is read
    from the database: its last audit event is there (that seq with that hash) or not. Committed:
    acknowledged; not: refused as _Changed (done again afresh). Either way the next group finds
    the writer gone (_Changed), and the run goes on after it."""

    overlaps = True

    def __init__(self, store: Store) -> None:
        self.store = store
        dispose_all()  # no SQLite connection of this process crosses the fork
        self.chan, child = multiprocessing.Pipe()
        parent = os.getpid()
        try:
            self.pid = os.fork()
        except OSError:
            self.chan.close()
            child.close()
            raise
        if self.pid == 0:  # the child: never returns
            code = 1
            try:
                self.chan.close()
                die_with(parent)
                _serve_writes(store, child)
                code = 0
            finally:
                os._exit(code)
        child.close()
        self.alive = True
        try:
            error, _ = self.chan.recv()  # ready: the child read data_version
        except (EOFError, OSError):
            self.close()
            raise OSError("the writer process ended before it began") from None
        except BaseException:  # interrupted: the child is told to end, and waited for
            self.close()
            raise
        if error is not None:
            self.close()
            raise error

    def write(self, rows: _Rows, head: _Head, new_head: _Head) -> _Pending:
        reply = _Reply(self, head, new_head)
        if not self.alive:
            reply.outcome, reply.read = _Changed("the writer process ended"), True
            return reply
        # OSError: the child is gone, which the end of file in its reply's place tells
        with suppress(OSError):
            self.chan.send_bytes(_pack((rows, head)))
        return reply

    def wait(self, head: _Head, new_head: _Head) -> BaseException | None:
        """The outcome of the group in flight (None: committed)."""
        try:
            error: BaseException | None
            error, statements = self.chan.recv()
        except (EOFError, OSError):
            self.alive = False
            if new_head == head or self._committed(new_head):
                return None
            return _Changed("the writer process ended before its commit")
        Db.statements += statements
        return error

    def _committed(self, new_head: _Head) -> bool:
        """Whether the group whose last audit event is `new_head` committed: that event is in
        the trail (by its seq and hash: another writer may have appended after it, or, if it
        did not commit, taken its seq with an event of its own)."""
        seq, hash_ = new_head
        with self.store.read() as conn:
            found = conn.exec_driver_sql(_EVENT_HASH_SQL, (seq,)).first()
        return found is not None and str(found[0]) == hash_

    def stop_waiting(self, _signum: int = 0) -> None:
        """The command was interrupted: the child gives up waiting for the write lock (its
        group in flight, if it has not begun, is not written: it answers LockWaitStopped)."""
        if self.alive:
            with suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGUSR1)

    def close(self) -> None:
        """Tell the child to end and wait for it (an interrupt waits too: no zombie is left)."""
        with interrupts_held():
            if self.alive:
                with suppress(OSError):
                    self.chan.send_bytes(b"")  # the end
            self.alive = False
            self.chan.close()
            with suppress(ChildProcessError):  # reaped already (SIGCHLD ignored by the caller)
                os.waitpid(self.pid, 0)


class _Reply:
    """A group handed to _ProcessWriter; its outcome is read from the pipe once, when asked."""

    __slots__ = ("head", "new_head", "outcome", "read", "writer")

    def __init__(self, writer: _ProcessWriter, head: _Head, new_head: _Head) -> None:
        self.writer, self.head, self.new_head = writer, head, new_head
        self.outcome: BaseException | None = None
        self.read = False

    def exception(self) -> BaseException | None:
        if not self.read:  # (the pipeline holds interrupts back meanwhile: interrupts_held)
            self.outcome = self.writer.wait(self.head, self.new_head)
            self.read = True
        return self.outcome

    def result(self) -> None:
        error = self.exception()
        if error is not None:
            raise error


def _serve_writes(store: Store, chan: Any) -> None:
    """The writer process: groups from `chan`, each written by _write_part, until an empty
    message or the pipe's end. Answers (error or None, statements sent), first once when ready.
    Its connection is never closed: the process ends with os._exit, and SQLite needs nothing
    from a connection that ends with its process (it does not checkpoint for it)."""
    # a signal ends no group in flight (systemd signals every process of the unit, Ctrl-C the
    # terminal's process group): it gives up a wait for the write lock, so that a group that
    # has not begun is not written after the command was stopped (store.stop_lock_waits); the
    # command forwards its own (SIGUSR1: _ProcessWriter.stop_waiting)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
        signal.signal(sig, stop_lock_waits)
        signal.siginterrupt(sig, False)  # SQLite's system calls are restarted, not failed
    try:
        with store.writer() as conn:
            version = _data_version(conn)
            chan.send((None, 0))
            while job := chan.recv_bytes():
                rows, head = _unpack(job)
                before = Db.statements
                try:
                    _write_part(conn, rows, head, version)
                    error: BaseException | None = None
                except Exception as exc:
                    error = exc
                _answer(chan, error, Db.statements - before)
    except EOFError:  # the pipeline's process is gone
        return
    except Exception as exc:
        _answer(chan, exc, 0)


def _pack(group: tuple[_Rows, _Head]) -> bytes:
    """A group's rows for the pipe: by marshal (plain tuples of text, ints and None: 2-3x
    faster than pickle, which remembers every text it writes), or by pickle if a value is of a
    type marshal does not write (a str subclass, say)."""
    try:
        return b"M" + marshal.dumps(group)
    except ValueError:
        return b"P" + pickle.dumps(group, pickle.HIGHEST_PROTOCOL)


def _unpack(data: bytes) -> tuple[_Rows, _Head]:
    """What _pack made (in the writer process: from its parent, by their pipe)."""
    body = memoryview(data)[1:]
    if data[:1] == b"M":
        return cast(tuple[_Rows, _Head], marshal.loads(body))  # noqa: S302
    return cast(tuple[_Rows, _Head], pickle.loads(body))  # noqa: S301


def _answer(chan: Any, error: BaseException | None, statements: int) -> None:
    """Send an outcome over the pipe; an error that would not come back whole from pickle
    goes as a RuntimeError with its text."""
    if error is not None:
        try:
            pickle.loads(pickle.dumps(error))  # noqa: S301 (its own bytes)
        except Exception:
            error = RuntimeError(f"{type(error).__name__}: {error}")
    chan.send((error, statements))


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a group is decided and written: the group makes
    tens of thousands of small acyclic objects (orders, rows, texts) that stay alive until its
    end, and each collection would walk them all again (about a tenth of the CPU of a batch).
    Reference counting still frees everything; the collector runs again afterwards.

    What was made meanwhile is then put in the oldest generation in one step (gc.freeze, then
    gc.unfreeze: "put them back into the oldest generation"), where only a full collection
    looks at it: left in the youngest, the first collection after would walk it all at once
    (about 100 ms after a batch of 10,000 orders)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if not gc.get_freeze_count():  # (a program that froze objects itself keeps them so)
            gc.freeze()
            gc.unfreeze()
        gc.enable()


def _group(
    store: Store, ctx: Ctx, part: Sequence[OrderRequest | BadInput], held: ExitStack | None = None
) -> list[Outcome]:
    """One transaction. `held`: Ctrl-C and SIGTERM are held back from its commit on, until the
    caller acknowledged what committed (before, they stop it, and nothing is written)."""
    with _no_cyclic_gc(), store.write() as conn:
        group = Group(conn, ctx, bulk=len(part) > 1, keep_sums=True)
        done = group.decide_all(part)
        group.flush()
        if held is not None:
            held.enter_context(interrupts_held())
    return done
