"""surveillance: transaction-monitoring alerts with their evidence

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 12:05:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import oms.schema
from migrations.triggers import append_only_triggers, drop_append_only_triggers

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "surveil_alerts",
        sa.Column("alert_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=False, nullable=False),
        sa.Column("alert_key", sa.String(length=200), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=True),
        sa.Column("symbol", sa.String(length=64), nullable=True),
        sa.Column("score", oms.schema.ExactDecimal(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("created_at", oms.schema.UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("alert_id", name=op.f("pk_surveil_alerts")),
        sa.UniqueConstraint("alert_key", name=op.f("uq_surveil_alerts_alert_key")),
    )
    with op.batch_alter_table("surveil_alerts", schema=None) as batch_op:
        batch_op.create_index("ix_surveil_alerts_business_date", ["business_date"], unique=False)
    append_only_triggers(op.get_bind(), ("surveil_alerts",))


def downgrade() -> None:
    drop_append_only_triggers(op.get_bind(), ("surveil_alerts",))
    with op.batch_alter_table("surveil_alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_surveil_alerts_business_date")
    op.drop_table("surveil_alerts")
