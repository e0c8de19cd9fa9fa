"""the orders resting at the paper venue, by symbol

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 12:00:00

- ix_orders_resting: a partial index on orders (symbol) holding only the orders resting at the
  paper venue (new or partially filled). Each bar of an `md import` reads the resting orders of
  its symbol it may act on; without it that read scanned the whole orders table, every order
  ever placed, once per bar.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import oms.schema

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    where = sa.text(oms.schema.RESTING_WHERE)
    op.create_index(
        "ix_orders_resting", "orders", ["symbol"], sqlite_where=where, postgresql_where=where
    )


def downgrade() -> None:
    op.drop_index("ix_orders_resting", table_name="orders")
