"""operators: accounts with roles, login sessions, withdrawal destinations, approval requests

Operator accounts (argon2 password hash, TOTP secret and the last time step used), their login
sessions (only the token's SHA-256), the whitelisted withdrawal destinations of each account,
and the pending approvals of commands that need a second operator.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 12:20:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import oms.schema

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operators",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("totp_secret", sa.String(length=64), nullable=False),
        sa.Column("last_totp_step", sa.BigInteger(), nullable=True),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", oms.schema.UTCDateTime(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", oms.schema.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", oms.schema.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_operators")),
    )
    op.create_table(
        "op_sessions",
        sa.Column("session_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=False, nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("operator", sa.String(length=64), nullable=False),
        sa.Column("client", sa.String(length=200), nullable=False),
        sa.Column("created_at", oms.schema.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", oms.schema.UTCDateTime(), nullable=False),
        sa.Column("ended_at", oms.schema.UTCDateTime(), nullable=True),
        sa.Column("end_reason", sa.String(length=16), nullable=True),
        sa.Column("ended_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["operator"], ["operators.name"],
                                name=op.f("fk_op_sessions_operator_operators")),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_op_sessions")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_op_sessions_token_sha256")),
    )
    with op.batch_alter_table("op_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_op_sessions_operator", ["operator"], unique=False)

    op.create_table(
        "destinations",
        sa.Column("destination_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=False, nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("destination", sa.String(length=200), nullable=False),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("added_at", oms.schema.UTCDateTime(), nullable=False),
        sa.Column("added_by", sa.String(length=64), nullable=False),
        sa.Column("removed_at", oms.schema.UTCDateTime(), nullable=True),
        sa.Column("removed_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["account"], ["accounts.account_id"],
                                name=op.f("fk_destinations_account_accounts")),
        sa.PrimaryKeyConstraint("destination_id", name=op.f("pk_destinations")),
    )
    with op.batch_alter_table("destinations", schema=None) as batch_op:
        batch_op.create_index("ix_destinations_account", ["account"], unique=False)

    op.create_table(
        "approval_requests",
        sa.Column("request_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=False, nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("requested_at", oms.schema.UTCDateTime(), nullable=False),
        sa.Column("expires_at", oms.schema.UTCDateTime(), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", oms.schema.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_approval_requests")),
    )
    with op.batch_alter_table("approval_requests", schema=None) as batch_op:
        batch_op.create_index("ix_approval_requests_status", ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("approval_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_approval_requests_status")
    op.drop_table("approval_requests")
    with op.batch_alter_table("destinations", schema=None) as batch_op:
        batch_op.drop_index("ix_destinations_account")
    op.drop_table("destinations")
    with op.batch_alter_table("op_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_op_sessions_operator")
    op.drop_table("op_sessions")
    op.drop_table("operators")
