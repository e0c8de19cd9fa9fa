"""retention: legal holds and their releases, archives with the audit-chain anchor

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 13:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import oms.schema
from migrations.triggers import append_only_triggers, drop_append_only_triggers

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLES = ("legal_holds", "legal_hold_releases", "archives")


def upgrade() -> None:
    op.create_table(
        "legal_holds",
        sa.Column("hold_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=False, nullable=False),
        sa.Column("matter", sa.String(length=200), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=True),
        sa.Column("record_class", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("placed_at", oms.schema.UTCDateTime(), nullable=False),
        sa.Column("placed_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("hold_id", name=op.f("pk_legal_holds")),
    )
    op.create_table(
        "legal_hold_releases",
        sa.Column("hold_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=False, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("released_at", oms.schema.UTCDateTime(), nullable=False),
        sa.Column("released_by", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["hold_id"], ["legal_holds.hold_id"],
                                name=op.f("fk_legal_hold_releases_hold_id_legal_holds")),
        sa.PrimaryKeyConstraint("hold_id", name=op.f("pk_legal_hold_releases")),
    )
    op.create_table(
        "archives",
        sa.Column("archive_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=False, nullable=False),
        sa.Column("created_at", oms.schema.UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("manifest_sha256", sa.String(length=64), nullable=False),
        sa.Column("cutoffs", sa.Text(), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("audit_first_seq", sa.BigInteger(), nullable=True),
        sa.Column("audit_last_seq", sa.BigInteger(), nullable=True),
        sa.Column("audit_last_hash", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("archive_id", name=op.f("pk_archives")),
    )
    with op.batch_alter_table("archives", schema=None) as batch_op:
        batch_op.create_index("ix_archives_audit_last_seq", ["audit_last_seq"], unique=False)
    append_only_triggers(op.get_bind(), TABLES)


def downgrade() -> None:
    drop_append_only_triggers(op.get_bind(), TABLES)
    with op.batch_alter_table("archives", schema=None) as batch_op:
        batch_op.drop_index("ix_archives_audit_last_seq")
    op.drop_table("archives")
    op.drop_table("legal_hold_releases")
    op.drop_table("legal_holds")
