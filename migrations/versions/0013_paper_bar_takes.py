"""paper venue: what each bar's share has given out

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 10:00:00

- paper_bar_takes (symbol, bar_time, order_id, quantity): one row per paper fill that a bar's
  share bounded (a resting order's fill from the bar, an ioc/fok order's fill while the bar was
  the last one). The share left of a bar is the participation rate of its volume, in whole
  lots, minus what these rows took: ioc/fok orders used to find the whole share of the last
  bar each, however much earlier orders had taken of it. Working a bar deletes the rows of
  the symbol's earlier bars: the table holds about one bar per symbol.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import oms.schema

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "paper_bar_takes",
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("bar_time", oms.schema.UTCDateTime(), nullable=False),
        sa.Column("order_id", sa.String(length=32), nullable=False),
        sa.Column("quantity", oms.schema.ExactDecimal(), nullable=False),
        sa.PrimaryKeyConstraint("symbol", "bar_time", "order_id", name=op.f("pk_paper_bar_takes")),
    )


def downgrade() -> None:
    op.drop_table("paper_bar_takes")
