"""The tables of service accounts (oms.service_access), on the book's metadata (migration 0011).

- service_accounts: non-interactive identities for unattended work (the scheduler, cron). No
  password, no TOTP secret, no sessions: a service account authenticates with a token. Its name
  shares the namespace of operators (the audit trail's actors), which tieout checks both ways.
  Disabling one keeps its row (disabled_at, disabled_by): a name is never reused.
- service_tokens: the tokens of a service account, only their SHA-256 (the token is a 256-bit
  random value shown or written once); rotating a token revokes the previous one (revoked_at,
  revoke_reason) and keeps its row, so that a later use of an old token is recognised and
  audited as such.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
)

from oms.schema import UTCDateTime, metadata

service_accounts = Table(
    "service_accounts",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("role", String(16), nullable=False),  # service
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("disabled_at", UTCDateTime, nullable=True),
    Column("disabled_by", String(64), nullable=True),
)

service_tokens = Table(
    "service_tokens",
    metadata,
    Column(
        "token_id",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("account", String(64), ForeignKey("service_accounts.name"), nullable=False),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("revoked_by", String(64), nullable=True),
    Column("revoke_reason", String(16), nullable=True),  # rotated | disabled
    Index("ix_service_tokens_account", "account"),
)
