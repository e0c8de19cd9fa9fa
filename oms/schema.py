"""The tables of the book of record (SQLAlchemy Core) and the two column types that keep numbers
and times exact on both backends.

Decimals: PostgreSQL NUMERIC (unconstrained, so the stored scale is the given one) and TEXT in
canonical fixed-point form on SQLite, whose NUMERIC affinity would turn them into binary floats.
Times: TIMESTAMPTZ on PostgreSQL; fixed-width ISO 8601 UTC text with microseconds on SQLite, so
that text order is time order.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import NUMERIC, TIMESTAMP
from sqlalchemy.types import TypeDecorator, TypeEngine

from oms.values import dec_str, utc_iso


class ExactDecimal(TypeDecorator[Decimal]):
    """A Decimal stored without loss: NUMERIC on PostgreSQL, canonical text on SQLite."""

    impl = String(40)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(NUMERIC(asdecimal=True))
        return dialect.type_descriptor(String(40))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            value = Decimal(str(value)) if isinstance(value, int | str) else value
        if not isinstance(value, Decimal):
            raise TypeError(f"ExactDecimal takes Decimal, int or str, not {type(value).__name__}")
        return value if dialect.name == "postgresql" else dec_str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(value)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime with microseconds on both backends."""

    impl = String(27)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(TIMESTAMP(timezone=True))
        return dialect.type_descriptor(String(27))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise TypeError("UTCDateTime takes timezone-aware datetimes only")
        value = value.astimezone(UTC)
        # SQLite: the text values.utc_iso writes (2026-11-24T14:31:05.000000Z, a 4-digit year)
        return value if dialect.name == "postgresql" else utc_iso(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return value.astimezone(UTC)
        return datetime.fromisoformat(value)  # the stored text ends in Z: already UTC


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

settings = Table(
    "settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(64), nullable=False),
)

instruments = Table(
    "instruments",
    metadata,
    Column("symbol", String(64), primary_key=True),
    Column("exchange", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("tick_size", ExactDecimal, nullable=False),
    Column("lot_size", ExactDecimal, nullable=False),
    Column("restricted", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(64), nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("account_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("type", String(8), nullable=False),
    Column("tier", String(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(64), nullable=False),
)

imports = Table(
    "imports",
    metadata,
    Column("import_id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("file_name", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("accepted", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("skipped", Integer, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    # market data: how many of the import's bars, in (time, symbol) order, the paper venue has
    # worked its resting orders against (updated with each bar's fills, in their transaction)
    Column("bars_worked", Integer, nullable=True),
)

CHANGES_WHERE = "exec_type <> 'fill'"  # executions that correct or bust another

executions = Table(
    "executions",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    ),
    Column("exec_id", String(64), nullable=False),
    Column("venue", String(32), nullable=False),
    # No foreign keys on this, the largest table: PostgreSQL checks them row by row, which more
    # than doubles the time of a bulk import. tieout checks account, symbol and import under the
    # book lock before it inserts, and accounts and instruments are never deleted.
    Column("account", String(64), nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("side", String(4), nullable=False),
    Column("quantity", ExactDecimal, nullable=False),
    Column("price", ExactDecimal, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("trade_date", Date, nullable=False),
    Column("settle_date", Date, nullable=False),
    Column("exec_time", UTCDateTime, nullable=True),
    Column("commission", ExactDecimal, nullable=False),
    Column("fees", ExactDecimal, nullable=False),
    Column("client_order_id", String(64), nullable=True),
    Column("order_id", String(64), nullable=True),
    # fill | correct | bust: a correction or bust names the execution it changes (ref_exec_id,
    # same venue); the original row is never edited.
    Column("exec_type", String(8), nullable=False),
    Column("ref_exec_id", String(64), nullable=True),
    Column("source", String(16), nullable=False),
    Column("import_id", Integer, nullable=True),
    Column("booked_at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    UniqueConstraint("venue", "exec_id", name="uq_executions_venue_exec_id"),
    Index("ix_executions_account_trade_date", "account", "trade_date"),
    # the corrections and busts by what they name (oms.executions.superseded_by): few rows,
    # found without reading the fills
    Index(
        "ix_executions_changes",
        "venue",
        "ref_exec_id",
        sqlite_where=text(CHANGES_WHERE),
        postgresql_where=text(CHANGES_WHERE),
    ),
)

journal_entries = Table(
    "journal_entries",
    metadata,
    Column(
        "entry_id",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("kind", String(16), nullable=False),  # deposit | withdrawal | trade | ...
    Column("account", String(64), ForeignKey("accounts.account_id"), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("ref", String(200), nullable=True),
    Column("destination", String(200), nullable=True),
    Column("execution_id", BigInteger().with_variant(Integer, "sqlite"), nullable=True),
    Column("value_date", Date, nullable=False),
    Column("posted_at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Index("ix_journal_entries_account", "account"),
    Index("ix_journal_entries_account_value_date", "account", "value_date"),  # not settled yet
)

journal_postings = Table(
    "journal_postings",
    metadata,
    Column(
        "posting_id",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    Column(
        "entry_id",
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("journal_entries.entry_id"),
        nullable=False,
    ),
    Column("ledger_account", String(100), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount", ExactDecimal, nullable=False),
    # a ledger account's postings in a currency after a row id (running_sums)
    Index("ix_journal_postings_ledger_currency_id", "ledger_account", "currency", "posting_id"),
)

# The sum of an account's cash postings in a currency (kind "cash": owner the cash ledger
# account, item the currency) or of its executions in a symbol (kind "position": owner the
# account, item the symbol) over its rows with ids up to through_id. Those tables are
# append-only and their ids only grow, so the whole sum is `total` plus the rows after
# through_id (oms.running_sums). Retention, which removes rows, empties this table.
running_sums = Table(
    "running_sums",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("owner", String(100), primary_key=True),
    Column("item", String(64), primary_key=True),
    Column("through_id", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    Column("total", ExactDecimal, nullable=False),
)

market_bars = Table(
    "market_bars",
    metadata,
    Column("symbol", String(64), ForeignKey("instruments.symbol"), primary_key=True),
    Column("time", UTCDateTime, primary_key=True),
    Column("open", ExactDecimal, nullable=False),
    Column("high", ExactDecimal, nullable=False),
    Column("low", ExactDecimal, nullable=False),
    Column("close", ExactDecimal, nullable=False),
    Column("volume", ExactDecimal, nullable=False),
    Column("import_id", Integer, ForeignKey("imports.import_id"), nullable=False),
)

# What the paper venue has given out of a bar's share (the participation rate of its volume):
# one row per fill that the bar bounded, a resting order's fill from the bar (order_book.
# fill_resting) or an ioc/fok order's fill while the bar was the last one (oms.submission).
# The share left of a bar is its participation quantity minus the sum here, so that orders
# together never take more of a bar than the rate allows. Working a bar lets go of the rows of
# the symbol's earlier bars (only the last bar is offered to ioc/fok orders).
paper_bar_takes = Table(
    "paper_bar_takes",
    metadata,
    Column("symbol", String(64), primary_key=True),
    Column("bar_time", UTCDateTime, primary_key=True),
    Column("order_id", String(32), primary_key=True),
    Column("quantity", ExactDecimal, nullable=False),
)

market_bar_rejects = Table(
    "market_bar_rejects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("import_id", Integer, ForeignKey("imports.import_id"), nullable=False),
    Column("line", Integer, nullable=False),
    Column("values", Text, nullable=False),  # JSON object of the raw row
    Column("reasons", Text, nullable=False),  # JSON list of reasons
)

# Hourly and daily bars kept up to date from market_bars on every import (the equivalent of a
# TimescaleDB continuous aggregate, on both backends): only the buckets an import touches are
# recomputed, from the stored bars.
bar_aggregates = Table(
    "bar_aggregates",
    metadata,
    Column("interval", String(4), primary_key=True),  # 1h | 1d
    Column("symbol", String(64), primary_key=True),
    Column("bucket", UTCDateTime, primary_key=True),
    Column("open", ExactDecimal, nullable=False),
    Column("high", ExactDecimal, nullable=False),
    Column("low", ExactDecimal, nullable=False),
    Column("close", ExactDecimal, nullable=False),
    Column("volume", ExactDecimal, nullable=False),
    Column("bars", Integer, nullable=False),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    ),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("entity_type", String(32), nullable=False),
    Column("entity_id", String(200), nullable=False),
    Column("reason", Text, nullable=True),
    Column("payload", Text, nullable=False),  # canonical JSON
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

# an order's statuses before it is final (oms.orders: not terminal; a unit test compares)
LIVE_ORDER_STATUSES = (
    "pending_new",
    "new",
    "partially_filled",
    "pending_cancel",
    "pending_replace",
    "done_for_day",
    "suspended",
)
# the live buy orders whose cash hold depends on the market or on a pending replace: market and
# stop orders (no limit price), and any order with a replace pending (its new terms count too).
# A query finds them by its index (ix_orders_priced_each) when it says exactly this.
PRICED_EACH_WHERE = (
    "side = 'buy' AND status IN ("
    + ", ".join(f"'{s}'" for s in LIVE_ORDER_STATUSES)
    + ") AND (limit_price IS NULL OR status = 'pending_replace')"
)

PRICED_EACH_INDEX = "ix_orders_priced_each"
# the orders resting at the paper venue: what a bar of their symbol may fill (its query says
# exactly this, so that the index of only those orders serves it: ix_orders_resting)
RESTING_WHERE = "venue = 'paper' AND status IN ('new', 'partially_filled')"
# the orders routed to external venues: the spellings of the venues the book knows are read from
# their index (oms.executions.venue_spellings), which the paper venue's many orders stay out of
ROUTED_WHERE = "venue <> 'paper'"

orders = Table(
    "orders",
    metadata,
    Column("order_id", String(32), primary_key=True),
    Column("client_order_id", String(64), nullable=False),  # the id that names it now
    Column("account", String(64), ForeignKey("accounts.account_id"), nullable=False),
    Column("symbol", String(64), ForeignKey("instruments.symbol"), nullable=False),
    Column("side", String(4), nullable=False),
    Column("type", String(10), nullable=False),
    Column("tif", String(4), nullable=False),
    Column("quantity", ExactDecimal, nullable=False),
    Column("limit_price", ExactDecimal, nullable=True),
    Column("stop_price", ExactDecimal, nullable=True),
    Column("expire_at", Date, nullable=True),
    Column("venue", String(32), nullable=False),
    Column("status", String(20), nullable=False),
    Column("cum_qty", ExactDecimal, nullable=False),
    Column("leaves_qty", ExactDecimal, nullable=False),
    Column("avg_px", ExactDecimal, nullable=True),
    Column("reject_reason", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("created_by", String(64), nullable=False),
    # the whole Order value (fills, open request, condition, history) as canonical JSON: the
    # columns above are its projection for queries
    Column("state", Text, nullable=False),
    Index("ix_orders_account_status", "account", "status"),
    # the live buy orders whose hold is priced each time it is read (oms.order_book.PRICED_EACH):
    # few, found without walking the account's other live orders
    Index(
        PRICED_EACH_INDEX,
        "account",
        sqlite_where=text(PRICED_EACH_WHERE),
        postgresql_where=text(PRICED_EACH_WHERE),
    ),
    Index(
        "ix_orders_resting",
        "symbol",
        sqlite_where=text(RESTING_WHERE),
        postgresql_where=text(RESTING_WHERE),
    ),
    Index(
        "ix_orders_routed_venue",
        "venue",
        sqlite_where=text(ROUTED_WHERE),
        postgresql_where=text(ROUTED_WHERE),
    ),
)

# Per account, symbol and side: the open quantity of its live orders (their leaves) and, on the
# buy side, the cash its live buy orders hold where that does not depend on the market (limit
# and stop-limit orders with no replace pending: oms.order_book.standing). Kept in the
# transaction that changes an order, so that a pre-trade check reads a few rows instead of every
# live order of the account; the other live buys (market and stop orders, replaces pending) are
# priced each time (ix_orders_priced_each). Derived data: oms.order_book.rebuild_totals makes
# it again from the orders (a change of the paper venue's commission terms does).
order_totals = Table(
    "order_totals",
    metadata,
    Column("account", String(64), primary_key=True),
    Column("symbol", String(64), primary_key=True),
    Column("side", String(4), primary_key=True),
    Column("open_qty", ExactDecimal, nullable=False),
    Column("held", ExactDecimal, nullable=False),
    # how many of the live orders summed have amounts with each number of decimal places
    # ("2:3,6:1"): the sums are shown with the places the live orders' amounts have
    Column("open_places", Text, nullable=False),
    Column("held_places", Text, nullable=False),
)

# The older part of a long order's fills and history (an algorithm's day of drop copies): each
# list of `orders.state` past STATE_PART_ITEMS entries keeps its tail there and its full chunks
# of STATE_PART_ITEMS entries here (the text of the entries, comma-separated, as the state
# would hold them), named in the state by their digests (oms.order_book.stored_state). A report
# that changes the order rewrites its tail and the chunks that changed, not every fill it had.
order_state_parts = Table(
    "order_state_parts",
    metadata,
    Column("order_id", String(32), ForeignKey("orders.order_id"), primary_key=True),
    Column("part", String(8), primary_key=True),  # fills | history
    Column("seq", Integer, primary_key=True),  # 0, 1, ...: the chunk's place in its list
    Column("digest", String(24), nullable=False),  # what the state names it by
    Column("text", Text, nullable=False),
)

# The ExecutionReports `exec apply` refused about an order it found, each (order, ExecID) once:
# its first refusal. A later apply that can apply one (the book moved on since) applies it as the
# venue's fact and says it was refused before, so that a refused line is never booked unseen.
refused_reports = Table(
    "refused_reports",
    metadata,
    Column("order_id", String(32), primary_key=True),
    Column("exec_id", Text, primary_key=True),
    Column("refused_at", UTCDateTime, nullable=False),
    Column("file", Text, nullable=False),
    Column("line", Integer, nullable=False),
    Column("reason", Text, nullable=False),
)

# Every client order id an order has had (the first, and each cancel/replace's new one), unique
# per account: the idempotency key of submissions.
order_client_ids = Table(
    "order_client_ids",
    metadata,
    Column("account", String(64), primary_key=True),
    Column("client_order_id", String(64), primary_key=True),
    Column("order_id", String(32), ForeignKey("orders.order_id"), nullable=False),
    # a drop copy without Account (1) names its order by ClOrdID alone (it scanned every id)
    Index("ix_order_client_ids_client_order_id", "client_order_id"),
)

EXEC_ID_GIVEN = "exec_id IS NOT NULL"  # order_events of a venue's report

# The order's history, append-only: `orders` holds the current state that these events produced.
order_events = Table(
    "order_events",
    metadata,
    Column(
        "event_id",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("order_id", String(32), ForeignKey("orders.order_id"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("event", String(32), nullable=False),
    Column("status", String(20), nullable=False),
    Column("reason", Text, nullable=True),
    Column("payload", Text, nullable=False),  # canonical JSON
    Column("exec_id", String(64), nullable=True),  # the venue's ExecID (17), if it sent one
    Index("ix_order_events_order_id", "order_id"),
    UniqueConstraint("order_id", "exec_id", name="uq_order_events_order_id_exec_id"),
    # which order applied a venue's ExecID (a fill `exec import` booked first is counted on
    # one order only): the venues' reports only, not the paper venue's many events
    Index(
        "ix_order_events_exec_id",
        "exec_id",
        sqlite_where=text(EXEC_ID_GIVEN),
        postgresql_where=text(EXEC_ID_GIVEN),
    ),
)

# Row ids of these tables are assigned by tieout under the book lock (see oms.store), so that one
# business event can reference its own rows without a round trip per row.
APPEND_ONLY_TABLES = (
    "executions",
    "journal_entries",
    "journal_postings",
    "audit_events",
    "order_events",
)

# Transaction monitoring (tieout surveil run): each alert with the evidence it rests on.
# Append-only; a rerun of the same day adds only alerts whose key is new.
surveil_alerts = Table(
    "surveil_alerts",
    metadata,
    Column(
        "alert_id",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("alert_key", String(200), nullable=False, unique=True),
    Column("business_date", Date, nullable=False),
    Column("rule", String(32), nullable=False),
    Column("account", String(64), nullable=True),
    Column("symbol", String(64), nullable=True),
    Column("score", ExactDecimal, nullable=False),
    Column("details", Text, nullable=False),  # canonical JSON: the figures that fired the rule
    Column(
        "evidence", Text, nullable=False
    ),  # canonical JSON: {"orders": [...], "executions": [...]}
    Column("created_at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Index("ix_surveil_alerts_business_date", "business_date"),
)

# Operators and access control (tieout user/login/sessions/approve/destination). Passwords are
# argon2 hashes; the TOTP secret is kept to verify codes; the last TOTP time step used is kept so
# that a code is never accepted twice.
operators = Table(
    "operators",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("role", String(16), nullable=False),  # trader | ops | compliance | admin
    Column("password_hash", Text, nullable=False),
    Column("totp_secret", String(200), nullable=False),  # encrypted: oms.secret_key
    Column("last_totp_step", BigInteger, nullable=True),
    Column("failed_attempts", Integer, nullable=False),
    Column("locked_until", UTCDateTime, nullable=True),
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Login sessions: only the SHA-256 of the token is stored; the token stays in the client's file.
op_sessions = Table(
    "op_sessions",
    metadata,
    Column(
        "session_id",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("operator", String(64), ForeignKey("operators.name"), nullable=False),
    Column("client", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("end_reason", String(16), nullable=True),  # logout | revoked | disabled
    Column("ended_by", String(64), nullable=True),
    Index("ix_op_sessions_operator", "operator"),
)

# Withdrawal destinations an account may pay out to, usable 24 hours after they were added.
# A removed destination keeps its row (removed_at); adding it again starts a new waiting period.
destinations = Table(
    "destinations",
    metadata,
    Column(
        "destination_id",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("account", String(64), ForeignKey("accounts.account_id"), nullable=False),
    Column("destination", String(200), nullable=False),
    Column("label", Text, nullable=True),
    Column("added_at", UTCDateTime, nullable=False),
    Column("added_by", String(64), nullable=False),
    Column("removed_at", UTCDateTime, nullable=True),
    Column("removed_by", String(64), nullable=True),
    Index("ix_destinations_account", "account"),
)

# Four eyes for commands that need a second operator (risk set, risk release): the request holds
# the command's arguments and the state they change, bound by the SHA-256 of that content.
approval_requests = Table(
    "approval_requests",
    metadata,
    Column(
        "request_id",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("action", String(64), nullable=False),  # the command, e.g. "risk set"
    Column("content", Text, nullable=False),  # canonical JSON
    Column("content_sha256", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # pending | approved | rejected
    Column("requested_by", String(64), nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("decided_by", String(64), nullable=True),
    Column("decided_at", UTCDateTime, nullable=True),
    Index("ix_approval_requests_status", "status"),
)
