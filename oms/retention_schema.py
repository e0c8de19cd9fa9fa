"""The tables of retention (oms.retention, oms.retention_book), on the book's metadata.

- legal_holds / legal_hold_releases: a hold keeps records from being archived and removed, for
  one account or every account, for one retention class or all of them. Both tables are
  append-only (migrations.triggers): a hold is never edited or deleted, it is released by a row
  of its own, so no application role can quietly lift one.
- archives: one row per `tieout retention apply` that moved records out of the live tables: where
  the Parquet files and their manifest went, the manifest's SHA-256, the cut-off of each class,
  the rows per table, and the audit-chain anchor (the last archived event's seq and hash) from
  which `audit verify` checks the live chain. Append-only too.
- position_carry_forward: what the executions an archive took out of the live book realized,
  per account and symbol (realized P&L, commissions, fees, the fills and their trade dates),
  written in the same transaction as their removal. `tieout positions` adds it to what the live
  executions give, so that a symbol whose whole (flat) history was archived is still listed,
  flat, with its realized P&L. Insert-only like the ledger's carry_forward entries: a later
  archive of the same symbol adds a row, nothing is ever updated.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from oms.schema import ExactDecimal, UTCDateTime, metadata

legal_holds = Table(
    "legal_holds",
    metadata,
    Column(
        "hold_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
        autoincrement=False,
    ),
    Column("matter", String(200), nullable=False),  # the case or request the hold serves
    Column("account", String(64), nullable=True),  # None: every account
    Column("record_class", String(16), nullable=True),  # None: every retention class
    Column("reason", Text, nullable=False),
    Column("placed_at", UTCDateTime, nullable=False),
    Column("placed_by", String(64), nullable=False),
)

legal_hold_releases = Table(
    "legal_hold_releases",
    metadata,
    Column(
        "hold_id",
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("legal_holds.hold_id"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("reason", Text, nullable=False),
    Column("released_at", UTCDateTime, nullable=False),
    Column("released_by", String(64), nullable=False),
)

archives = Table(
    "archives",
    metadata,
    Column(
        "archive_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
        autoincrement=False,
    ),
    Column("created_at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("location", Text, nullable=False),  # the archive's folder, as written
    Column("manifest_sha256", String(64), nullable=False),
    Column("cutoffs", Text, nullable=False),  # canonical JSON {class: ISO time}
    Column("counts", Text, nullable=False),  # canonical JSON {table: rows archived}
    # the audit events archived (None when none were): the live chain starts after last_seq,
    # from last_hash
    Column("audit_first_seq", BigInteger, nullable=True),
    Column("audit_last_seq", BigInteger, nullable=True),
    Column("audit_last_hash", String(64), nullable=True),
    Index("ix_archives_audit_last_seq", "audit_last_seq"),
)

position_carry_forward = Table(
    "position_carry_forward",
    metadata,
    Column(
        "carry_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
        autoincrement=False,
    ),
    Column(
        "archive_id",
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("archives.archive_id"),
        nullable=False,
    ),
    Column("account", String(64), ForeignKey("accounts.account_id"), nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("realized_pnl", ExactDecimal, nullable=False),
    Column("commissions", ExactDecimal, nullable=False),
    Column("fees", ExactDecimal, nullable=False),
    Column("fills", Integer, nullable=False),  # effective fills archived
    Column("first_trade_date", Date, nullable=False),
    Column("last_trade_date", Date, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_position_carry_forward_account", "account", "symbol"),
)

RETENTION_APPEND_ONLY_TABLES = ("legal_holds", "legal_hold_releases", "archives")
POSITIONS_APPEND_ONLY_TABLES = ("position_carry_forward",)
