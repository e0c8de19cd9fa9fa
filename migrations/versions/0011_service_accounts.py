"""service accounts: non-interactive identities for unattended work, and their tokens (hashed)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 10:00:00

- service_accounts: name, role (service), active, who created and disabled it.
- service_tokens: the SHA-256 of each token (never the token), when it was last used, when and
  why it was revoked (rotated, disabled).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import oms.schema

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_accounts",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", oms.schema.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("disabled_at", oms.schema.UTCDateTime(), nullable=True),
        sa.Column("disabled_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_service_accounts")),
    )
    op.create_table(
        "service_tokens",
        sa.Column("token_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=False, nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", oms.schema.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("last_used_at", oms.schema.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", oms.schema.UTCDateTime(), nullable=True),
        sa.Column("revoked_by", sa.String(length=64), nullable=True),
        sa.Column("revoke_reason", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(["account"], ["service_accounts.name"],
                                name=op.f("fk_service_tokens_account_service_accounts")),
        sa.PrimaryKeyConstraint("token_id", name=op.f("pk_service_tokens")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_service_tokens_token_sha256")),
    )
    with op.batch_alter_table("service_tokens", schema=None) as batch_op:
        batch_op.create_index("ix_service_tokens_account", ["account"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("service_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_service_tokens_account")
    op.drop_table("service_tokens")
    op.drop_table("service_accounts")
